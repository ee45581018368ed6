//! End to end over HTTPS with the real `status-reporter-webhook serve` binary:
//! certificates generated here (rcgen) in a Secret-like directory (`..data` symlink),
//! a real rustls client over TLS 1.2, TLS 1.3 and HTTP/2, rotation without restart,
//! bad bodies, and the SIGTERM drain. Loopback only; every wait is bounded.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use harness::process::Process;
use harness::webhook_process::{
    Pair, Pki, SecretDir, Server, admission_fixture, connect, post_head_until_continue,
    read_status, request,
};
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const TIMEOUT: Duration = Duration::from_secs(20);
const BODY_LIMIT: usize = 1024 * 1024;

fn spawn_server(secret: &SecretDir) -> Server {
    spawn_server_with(secret, &[])
}

fn spawn_server_with(secret: &SecretDir, extra: &[&str]) -> Server {
    let limit = BODY_LIMIT.to_string();
    let mut args = vec!["--log-format", "text", "--max-body-bytes", &limit];
    args.extend_from_slice(extra);
    Server::start(
        &harness::bin::path("status-reporter-webhook"),
        secret,
        &args,
        TIMEOUT,
    )
}

fn client_config(
    pki: &Pki,
    version: &'static rustls::SupportedProtocolVersion,
    alpn: &[u8],
) -> Arc<rustls::ClientConfig> {
    Arc::new(pki.client_config(&[version], alpn))
}

fn served_cert(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

async fn post_review(server: &Server, pki: &Pki, body: Vec<u8>) -> (u16, Value) {
    let tls = connect(
        server.addr,
        client_config(pki, &rustls::version::TLS13, b"http/1.1"),
    )
    .await
    .unwrap();
    let (status, body) = request(tls, "POST", "/mutate", body).await;
    let review = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, review)
}

/// Posts `body`: answered 200, the review refused with a message containing `needle`.
async fn expect_refused(server: &Server, pki: &Pki, body: Vec<u8>, needle: &str) {
    let (status, out) = post_review(server, pki, body).await;
    assert_eq!(status, 200);
    assert_eq!(out["response"]["allowed"], false);
    let message = out["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message}");
}

async fn get(server: &Server, pki: &Pki, path: &str) -> (u16, String) {
    let tls = connect(
        server.addr,
        client_config(pki, &rustls::version::TLS13, b"http/1.1"),
    )
    .await
    .unwrap();
    let (status, body) = request(tls, "GET", path, Vec::new()).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn serves_reviews_over_tls12_tls13_and_http2() {
    let pki = Pki::default();
    let pair = pki.issue();
    let secret = SecretDir::new(&pair);
    let server = spawn_server(&secret);
    let review = admission_fixture("create-job");
    let uid = serde_json::from_slice::<Value>(&review).unwrap()["request"]["uid"].clone();

    for (version, alpn) in [
        (&rustls::version::TLS12, &b"http/1.1"[..]),
        (&rustls::version::TLS13, &b"http/1.1"[..]),
        (&rustls::version::TLS13, &b"h2"[..]),
        (&rustls::version::TLS12, &b"h2"[..]),
    ] {
        let tls = connect(server.addr, client_config(&pki, version, alpn))
            .await
            .unwrap();
        let conn = tls.get_ref().1;
        assert_eq!(conn.protocol_version(), Some(version.version));
        assert_eq!(conn.alpn_protocol(), Some(alpn));
        assert_eq!(served_cert(&tls), pair.der);
        let (status, body) = request(tls, "POST", "/mutate", review.clone()).await;
        assert_eq!(status, 200, "{version:?} {alpn:?}");
        let out: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(out["response"]["uid"], uid);
        assert_eq!(out["response"]["allowed"], true);
        assert_eq!(out["response"]["patchType"], "JSONPatch");
    }

    // TLS 1.1 and older are not offered; a client limited to them cannot connect. rustls
    // cannot speak them either, so check the server refuses a TLS 1.0 ClientHello by hand.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&TLS10_CLIENT_HELLO).await.unwrap();
    let mut reply = [0u8; 7];
    let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut reply))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(
        n == 0 || reply[0] == 0x15,
        "expected an alert or close, got {:?}",
        &reply[..n]
    );
}

/// A minimal TLS 1.0 ClientHello (one cipher suite, no extensions).
const TLS10_CLIENT_HELLO: [u8; 50] = [
    0x16, 0x03, 0x01, 0x00, 0x2d, // record: handshake, TLS 1.0, length 45
    0x01, 0x00, 0x00, 0x29, // ClientHello, length 41
    0x03, 0x01, // client_version TLS 1.0
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0,    // random
    0x00, // session id length
    0x00, 0x02, 0x00, 0x2f, // one cipher suite: TLS_RSA_WITH_AES_128_CBC_SHA
    0x01, 0x00, // compression: null
];

#[tokio::test]
async fn bad_bodies_get_the_right_answer_and_the_server_keeps_serving() {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let server = spawn_server(&secret);

    let (status, out) = post_review(&server, &pki, admission_fixture("malformed")).await;
    assert_eq!(status, 200);
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(out["response"]["status"]["reason"], "InvalidRequest");

    expect_refused(
        &server,
        &pki,
        admission_fixture("not-a-review"),
        "expected kind AdmissionReview",
    )
    .await;

    expect_refused(
        &server,
        &pki,
        admission_fixture("create-job-bad-annotation"),
        "max-wait-seconds",
    )
    .await;

    let (status, _) = post_review(&server, &pki, vec![b' '; BODY_LIMIT + 1]).await;
    assert_eq!(status, 413);

    let (status, out) = post_review(&server, &pki, admission_fixture("create-job")).await;
    assert_eq!(status, 200);
    assert_eq!(out["response"]["allowed"], true);

    assert_eq!(get(&server, &pki, "/healthz").await.0, 200);
    assert_eq!(get(&server, &pki, "/readyz").await.0, 200);
    let (status, metrics) = get(&server, &pki, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "status_reporter_webhook_admission_requests_total{outcome=\"invalid\"} 2",
        "status_reporter_webhook_admission_requests_total{outcome=\"denied\"} 1",
        "status_reporter_webhook_admission_requests_total{outcome=\"injected\"} 1",
        "status_reporter_webhook_certificate_expiry_timestamp_seconds ",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

/// The certificate a new TLS 1.3 connection is served.
async fn served_now(server: &Server, pki: &Pki) -> CertificateDer<'static> {
    let tls = connect(
        server.addr,
        client_config(pki, &rustls::version::TLS13, b"http/1.1"),
    )
    .await
    .unwrap();
    served_cert(&tls)
}

/// Waits (bounded) for the server to log that it now serves `pair`, then checks a new
/// connection is served it.
async fn expect_rotated_to(server: &Server, pki: &Pki, pair: &Pair) {
    server
        .logs
        .wait_for(&["serving a new TLS certificate", &pair.serial], TIMEOUT);
    assert_eq!(
        served_now(server, pki).await,
        pair.der,
        "logged as served, but another certificate was"
    );
}

async fn metric(server: &Server, pki: &Pki, name: &str) -> f64 {
    let (_, text) = get(server, pki, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn rotation_is_served_without_restart_and_a_broken_pair_keeps_the_old() {
    let pki = Pki::default();
    let first = pki.issue();
    let mut secret = SecretDir::new(&first);
    let server = spawn_server(&secret);
    assert_eq!(served_now(&server, &pki).await, first.der);

    let second = pki.issue();
    secret.write(&second.cert_pem, &second.key_pem);
    expect_rotated_to(&server, &pki, &second).await;

    // A pair whose key does not match its certificate: refused, the old one stays.
    let failures = "status_reporter_webhook_certificate_reloads_total{result=\"failure\"}";
    let before = metric(&server, &pki, failures).await;
    let mark = server.logs.count();
    let third = pki.issue();
    secret.write(&third.cert_pem, &first.key_pem);
    server.logs.wait_for_since(
        mark,
        &["new certificate pair is unusable; keeping the current one"],
        TIMEOUT,
    );
    // The failure is counted before it is logged.
    assert!(
        metric(&server, &pki, failures).await > before,
        "the refused pair was not counted"
    );
    let tls = connect(
        server.addr,
        client_config(&pki, &rustls::version::TLS13, b"http/1.1"),
    )
    .await
    .unwrap();
    assert_eq!(
        served_cert(&tls),
        second.der,
        "a broken pair replaced the working one"
    );
    let (status, _) = request(tls, "GET", "/healthz", Vec::new()).await;
    assert_eq!(status, 200);

    // Fixing the Secret brings the new certificate in.
    secret.write(&third.cert_pem, &third.key_pem);
    expect_rotated_to(&server, &pki, &third).await;
}

/// JSON logs: one object per line, the review's line naming its uid and outcome; lines
/// queued for the log writer are written out before the process exits.
#[tokio::test]
async fn json_logs_name_each_review_and_reach_stderr_before_exit() {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let mut server = Server::start(
        &harness::bin::path("status-reporter-webhook"),
        &secret,
        &["--log-format", "json", "--log-level", "info"],
        TIMEOUT,
    );
    let review = admission_fixture("create-job");
    let uid = serde_json::from_slice::<Value>(&review).unwrap()["request"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = post_review(&server, &pki, review).await;
    assert_eq!(status, 200);
    let line = server.logs.wait_for(&["admission review", &uid], TIMEOUT);
    let logged: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(logged["level"], "INFO", "{line}");
    // RFC 3339 in UTC with microseconds, e.g. 2026-11-30T08:00:00.123456Z.
    let at = logged["timestamp"].as_str().unwrap_or_default();
    let shape: String = at
        .chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect();
    assert_eq!(shape, "0000-00-00T00:00:00.000000Z", "{line}");
    assert!(at.parse::<jiff::Timestamp>().is_ok(), "{line}");
    assert_eq!(
        logged["target"], "status_reporter_webhook::server",
        "{line}"
    );
    assert_eq!(logged["fields"]["uid"], uid.as_str(), "{line}");
    assert_eq!(logged["fields"]["outcome"], "injected", "{line}");
    assert!(logged["fields"]["micros"].is_u64(), "{line}");

    server.signal("-TERM");
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(0));
    // `stopped` is logged last, just before `main` returns and the writer is shut down.
    let stopped = server.logs.wait_for(&["\"message\":\"stopped\""], TIMEOUT);
    assert!(serde_json::from_str::<Value>(&stopped).is_ok(), "{stopped}");
    for line in server.logs.text().lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not one JSON object: {line}"
        );
    }
}

#[tokio::test]
async fn sigterm_drains_an_in_flight_request_and_exits_zero() {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let mut server = spawn_server(&secret);
    let body = admission_fixture("create-job");

    // Start a request and send only half its body.
    let mut tls = connect(
        server.addr,
        client_config(&pki, &rustls::version::TLS13, b"http/1.1"),
    )
    .await
    .unwrap();
    // `expect: 100-continue`: the interim answer shows the server has parsed the head and
    // is reading the body, so the request is in flight before SIGTERM is sent.
    post_head_until_continue(&mut tls, body.len(), TIMEOUT).await;
    let (first, rest) = body.split_at(body.len() / 2);
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();

    server.signal("-TERM");

    // The listener closes once the drain starts: new connections are refused.
    server
        .logs
        .wait_for(&["stopped accepting connections"], TIMEOUT);
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "listener still open after it logged closing"
    );

    // The in-flight request still completes.
    tls.write_all(rest).await.unwrap();
    tls.flush().await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tls.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    let logs = || server.logs.text();
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{text}; logs:\n{}",
        logs()
    );
    assert!(
        text.contains("\"allowed\":true"),
        "{text}; logs:\n{}",
        logs()
    );

    let exit = server.wait_exit(TIMEOUT);
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn unusable_certificates_stop_the_server_before_it_binds() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("tls.crt");
    let out = Command::new(harness::bin::path("status-reporter-webhook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
        .arg("--tls-cert")
        .arg(&missing)
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "it must not listen: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("cannot read the certificate"),
        "{err}"
    );
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A pair that expired yesterday, and one valid only from tomorrow.
fn out_of_date_pairs(pki: &Pki) -> [(&'static str, Pair); 2] {
    let now = SystemTime::now();
    [
        (
            "has expired",
            pki.issue_valid_between(now - 30 * DAY, now - DAY),
        ),
        (
            "is not valid yet",
            pki.issue_valid_between(now + DAY, now + 30 * DAY),
        ),
    ]
}

#[test]
fn a_certificate_outside_its_validity_period_stops_the_server_before_it_binds() {
    let pki = Pki::default();
    for (state, pair) in out_of_date_pairs(&pki) {
        let secret = SecretDir::new(&pair);
        let mut serve = Process::spawn(
            Command::new(harness::bin::path("status-reporter-webhook"))
                .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
                .arg("--tls-cert")
                .arg(secret.cert())
                .arg("--tls-key")
                .arg(secret.key())
                .stdout(Stdio::piped()),
            "status-reporter-webhook serve",
        );
        let status = serve.wait_exit(TIMEOUT);
        assert!(!status.success(), "started with a pair that {state}");
        let mut stdout = String::new();
        serve
            .take_stdout()
            .expect("stdout piped")
            .read_to_string(&mut stdout)
            .unwrap();
        assert!(stdout.is_empty(), "it must not listen: {stdout:?}");
        let err = serve.logs.text();
        for part in [state, "notBefore ", "notAfter "] {
            assert!(err.contains(part), "{part:?} not in {err}");
        }
    }
}

#[tokio::test]
async fn rotation_to_an_expired_or_not_yet_valid_pair_keeps_the_current_one() {
    let pki = Pki::default();
    let good = pki.issue();
    let mut secret = SecretDir::new(&good);
    let server = spawn_server(&secret);
    for (state, pair) in out_of_date_pairs(&pki) {
        let mark = server.logs.count();
        secret.write(&pair.cert_pem, &pair.key_pem);
        server.logs.wait_for_since(
            mark,
            &[
                "new certificate pair is unusable; keeping the current one",
                state,
            ],
            TIMEOUT,
        );
        assert_eq!(
            served_now(&server, &pki).await,
            good.der,
            "a pair that {state} replaced the valid one"
        );
    }
    assert_eq!(get(&server, &pki, "/readyz").await.0, 200);
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_the_server_keeps_serving() {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let server = spawn_server_with(
        &secret,
        &[
            "--header-read-timeout-seconds",
            "1",
            "--request-timeout-seconds",
            "1",
        ],
    );
    let config = || client_config(&pki, &rustls::version::TLS13, b"http/1.1");

    // Headers that never end: the connection is closed without an answer.
    let mut tls = connect(server.addr, config()).await.unwrap();
    tls.write_all(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, tls.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "connection with unfinished headers was never closed"
    );

    // A body that stops halfway: 408 once the request timeout passes.
    let mut tls = connect(server.addr, config()).await.unwrap();
    tls.write_all(
        b"POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"kind\":",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    assert_eq!(read_status(&mut tls, TIMEOUT).await, "HTTP/1.1 408");

    let (status, out) = post_review(&server, &pki, admission_fixture("create-job")).await;
    assert_eq!(status, 200);
    assert_eq!(out["response"]["allowed"], true);
}

/// A uid is the client's text: with a newline in it, the text log format must still write
/// one line (the value quoted and escaped), never a second line or field the client wrote.
#[tokio::test]
async fn text_logs_escape_control_characters_from_requests() {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let server = spawn_server(&secret);
    let mut review: Value = serde_json::from_slice(&admission_fixture("create-job")).unwrap();
    review["request"]["uid"] = "abc\nFORGED INFO admission review uid=\u{1b}[31mred".into();
    let (status, out) = post_review(&server, &pki, serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(out["response"]["uid"], review["request"]["uid"]);

    let line = server
        .logs
        .wait_for(&["admission review", "uid=\"abc"], TIMEOUT);
    assert!(
        line.contains(r#"uid="abc\nFORGED INFO admission review uid=\u{1b}[31mred" "#),
        "{line}"
    );
    let logs = server.logs.text();
    assert!(
        !logs.lines().any(|l| l.starts_with("FORGED")),
        "a forged line was written:\n{logs}"
    );
}
