//! The real `status-reporter-webhook serve` against clients that take more than they give
//! (issue 13, items 1–3): connections that never send a request, more connections than the
//! limit, bodies over the limit or over the memory budget, and idle keep-alive connections
//! at SIGTERM. Loopback only; a handful of connections each; every wait is bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::process::Process;
use harness::webhook_process::{
    Pki, SecretDir, Server, admission_fixture, closed_within, connect, post_head_until_continue,
    read_status, request, serve_command, unfinished_post,
};
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const TIMEOUT: Duration = Duration::from_secs(20);

/// A CA, a pair it issued in a Secret-style directory, and `serve` on it with `extra` flags
/// (the directory lives as long as the server needs it).
fn start(extra: &[&str]) -> (Pki, SecretDir, Server) {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let mut args = vec!["--log-format", "text"];
    args.extend_from_slice(extra);
    let server = Server::start(
        &harness::bin::path("status-reporter-webhook"),
        &secret,
        &args,
        TIMEOUT,
    );
    (pki, secret, server)
}

fn config(pki: &Pki, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    Arc::new(pki.client_config(&[&rustls::version::TLS13], alpn))
}

async fn tls(server: &Server, pki: &Pki, alpn: &[u8]) -> TlsStream<TcpStream> {
    connect(server.addr, config(pki, alpn))
        .await
        .expect("TLS handshake")
}

/// Posts the `create-job` review over a new connection: it must be injected.
async fn review_is_injected(server: &Server, pki: &Pki, alpn: &[u8]) {
    let (status, body) = request(
        tls(server, pki, alpn).await,
        "POST",
        "/mutate",
        admission_fixture("create-job"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let review: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(review["response"]["allowed"], true);
    assert_eq!(review["response"]["patchType"], "JSONPatch");
}

/// The HTTP/2 client preface and an empty SETTINGS frame: a connection in HTTP/2 that
/// never opens a stream.
const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Whether the server closes it well within the deadline it was given (one second here;
/// five leaves room for a loaded machine, and is still far from the old 10 s and never).
const CLOSED_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn connections_that_send_no_request_are_closed_after_the_header_read_timeout() {
    let (pki, _secret, server) = start(&["--header-read-timeout-seconds", "1"]);

    // TCP only: the TLS handshake never starts, or stops halfway.
    let no_handshake = TcpStream::connect(server.addr).await.unwrap();
    let mut half_handshake = TcpStream::connect(server.addr).await.unwrap();
    half_handshake
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    // Handshaken, then nothing: HTTP/1.1, HTTP/2 without and with the preface; and an
    // HTTP/1.1 request head that never ends.
    let h1_silent = tls(&server, &pki, b"http/1.1").await;
    let h2_silent = tls(&server, &pki, b"h2").await;
    let mut h2_preface = tls(&server, &pki, b"h2").await;
    h2_preface.write_all(H2_PREFACE_AND_SETTINGS).await.unwrap();
    let mut h1_partial = tls(&server, &pki, b"http/1.1").await;
    h1_partial
        .write_all(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();

    let started = Instant::now();
    let connections: [(&str, Box<dyn AsyncRead + Unpin + Send>); 6] = [
        ("no TLS handshake", Box::new(no_handshake)),
        ("half a TLS handshake", Box::new(half_handshake)),
        ("HTTP/1.1, nothing sent", Box::new(h1_silent)),
        ("HTTP/2, nothing sent", Box::new(h2_silent)),
        ("HTTP/2, preface only", Box::new(h2_preface)),
        ("HTTP/1.1, partial head", Box::new(h1_partial)),
    ];
    for (what, mut stream) in connections {
        assert!(
            closed_within(&mut stream, CLOSED_WITHIN).await,
            "{what}: still open"
        );
    }
    assert!(started.elapsed() < CLOSED_WITHIN, "{:?}", started.elapsed());

    review_is_injected(&server, &pki, b"h2").await;
}

/// A request in progress: the server has read its head and asked for the body (`100
/// Continue`), which never comes.
async fn busy_connection(server: &Server, pki: &Pki) -> TlsStream<TcpStream> {
    let mut tls = tls(server, pki, b"http/1.1").await;
    post_head_until_continue(&mut tls, 100, TIMEOUT).await;
    tls
}

#[tokio::test]
async fn at_the_connection_limit_idle_connections_make_room_and_busy_ones_refuse_the_rest() {
    let (pki, _secret, server) =
        start(&["--max-connections", "3", "--request-timeout-seconds", "3"]);

    // Three idle connections fill the table; a fourth takes the place of the oldest.
    let mut oldest = tls(&server, &pki, b"http/1.1").await;
    let _idle = [
        tls(&server, &pki, b"http/1.1").await,
        tls(&server, &pki, b"h2").await,
    ];
    review_is_injected(&server, &pki, b"http/1.1").await;
    assert!(
        closed_within(&mut oldest, Duration::from_secs(1)).await,
        "the longest-idle connection was not closed to make room"
    );

    // Three requests in progress: a fourth connection is closed at accept, before TLS.
    let mut busy = Vec::new();
    for _ in 0..3 {
        busy.push(busy_connection(&server, &pki).await);
    }
    let refused = connect(server.addr, config(&pki, b"http/1.1")).await;
    assert!(refused.is_err(), "a connection beyond the limit was served");
    server.logs.wait_for(
        &["connection limit reached and every connection busy"],
        TIMEOUT,
    );

    // Once the requests time out (408), there is room again.
    for mut tls in busy {
        assert_eq!(read_status(&mut tls, TIMEOUT).await, "HTTP/1.1 408");
    }
    let (status, metrics) = request(
        tls(&server, &pki, b"http/1.1").await,
        "GET",
        "/metrics",
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    for line in [
        "status_reporter_webhook_connections_refused_total 1",
        "status_reporter_webhook_connections_evicted_total ",
    ] {
        assert!(metrics.contains(line), "{line:?} not in\n{metrics}");
    }
}

#[tokio::test]
async fn expect_continue_over_the_body_limit_gets_413_at_once() {
    let (pki, _secret, server) = start(&["--max-body-bytes", "1000"]);
    let mut tls = tls(&server, &pki, b"http/1.1").await;
    tls.write_all(
        b"POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: 1001\r\n\r\n",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("over the limit of 1000 bytes"), "{answer}");
}

#[tokio::test]
async fn large_bodies_beyond_the_memory_budget_get_503_and_small_reviews_still_pass() {
    // Budget 12 MiB: a large pool of 9 MiB holds three bodies of 3 MiB, not four.
    let (pki, _secret, server) = start(&[
        "--max-body-bytes",
        "3145728",
        "--max-body-memory-bytes",
        "12582912",
    ]);
    let io = TokioIo::new(tls(&server, &pki, b"h2").await);
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = 3 * 1024 * 1024;
    let mut posts = Vec::new();
    for _ in 0..4 {
        posts.push(unfinished_post(&mut send, body, body - 1).await);
    }
    // Three bodies hold the large pool until the request timeout; the fourth, whichever it
    // is, is answered at once.
    let answers = posts.iter_mut().map(|p| &mut p.answer);
    let (first, ..) = tokio::time::timeout(TIMEOUT, futures::future::select_all(answers))
        .await
        .expect("no large body was refused");
    assert_eq!(first.unwrap(), 503);

    // The small pool is untouched: ordinary reviews go through over both protocols.
    review_is_injected(&server, &pki, b"h2").await;
    review_is_injected(&server, &pki, b"http/1.1").await;
    drop(posts);
}

/// The HTTP/2 preface, an empty SETTINGS, and `GET /healthz` on stream 1 (HPACK: `:method
/// GET`, `:scheme https`, `:path` and `:authority` as literals).
fn h2_get_healthz() -> Vec<u8> {
    let mut headers = vec![0x82, 0x87, 0x44, 8];
    headers.extend_from_slice(b"/healthz");
    headers.extend_from_slice(&[0x41, 9]);
    headers.extend_from_slice(b"localhost");
    let mut out = H2_PREFACE_AND_SETTINGS.to_vec();
    // HEADERS, END_STREAM | END_HEADERS, stream 1.
    out.extend_from_slice(&[0, 0, headers.len() as u8, 0x01, 0x05, 0, 0, 0, 1]);
    out.extend_from_slice(&headers);
    out
}

#[tokio::test]
async fn sigterm_closes_idle_keep_alive_connections_at_once() {
    let (pki, _secret, mut server) = start(&["--drain-timeout-seconds", "20"]);

    // An HTTP/1.1 and an HTTP/2 connection, each idle after two requests, and one that
    // never sent anything.
    let io = TokioIo::new(tls(&server, &pki, b"http/1.1").await);
    let (mut h1, h1_conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    let h1_conn = tokio::spawn(h1_conn);
    let io = TokioIo::new(tls(&server, &pki, b"h2").await);
    let (mut h2, h2_conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    let h2_conn = tokio::spawn(h2_conn);
    for path in ["/healthz", "/readyz"] {
        let get = || {
            hyper::Request::get(format!("https://localhost{path}"))
                .header("host", "localhost")
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap()
        };
        let res = h1.send_request(get()).await.unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
        let res = h2.send_request(get()).await.unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
    }
    let _silent = tls(&server, &pki, b"h2").await;
    // An HTTP/2 client that made a request and then stopped reading: it never answers the
    // GOAWAY's PING, so a graceful close alone would wait for it.
    let mut deaf = tls(&server, &pki, b"h2").await;
    deaf.write_all(&h2_get_healthz()).await.unwrap();
    let mut seen = Vec::new();
    while !seen.windows(2).any(|w| w == b"ok") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(TIMEOUT, deaf.read(&mut buf))
            .await
            .expect("no answer to the raw HTTP/2 request")
            .unwrap();
        assert!(n > 0, "closed before answering");
        seen.extend_from_slice(&buf[..n]);
    }

    let signalled = Instant::now();
    server.signal("-TERM");
    // The clients see their connections end (HTTP/2 by GOAWAY), and the server exits long
    // before its 20 s drain timeout.
    // How the client ends (cleanly or with an error) does not matter, only that it does.
    let _ = tokio::time::timeout(CLOSED_WITHIN, h1_conn)
        .await
        .expect("the idle HTTP/1.1 connection was held open");
    let _ = tokio::time::timeout(CLOSED_WITHIN, h2_conn)
        .await
        .expect("the idle HTTP/2 connection was held open");
    let status = tokio::task::spawn_blocking(move || server.wait_exit(TIMEOUT))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled.elapsed() < CLOSED_WITHIN,
        "the drain took {:?} with only idle connections",
        signalled.elapsed()
    );
}

/// `serve` (default `--max-connections 256`) behind `bash -c 'ulimit …'`: the file descriptors
/// it may open set before it starts.
fn serve_under_ulimit(ulimit: &str, secret: &SecretDir) -> std::process::Command {
    let serve = serve_command(
        &harness::bin::path("status-reporter-webhook"),
        secret,
        &["--log-format", "text"],
    );
    let mut command = std::process::Command::new("bash");
    command
        .args(["-c", &format!("ulimit {ulimit} && exec \"$@\""), "bash"])
        .arg(serve.get_program())
        .args(serve.get_args());
    command
}

/// Issue 23, item 14: 256 connections and the process's own 64 descriptors do not fit a hard
/// limit of 200: `serve` stops before it binds, naming the cap and the limit.
#[test]
fn a_hard_file_descriptor_limit_below_the_connection_cap_stops_serve_naming_both() {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let mut serve = Process::spawn(
        serve_under_ulimit("-n 200", &secret).stdout(std::process::Stdio::piped()),
        "serve under ulimit -n 200",
    );
    let status = serve.wait_exit(TIMEOUT);
    assert!(
        !status.success(),
        "started with 256 connections and 200 descriptors"
    );
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut serve.take_stdout().expect("stdout"), &mut stdout).unwrap();
    assert!(stdout.is_empty(), "it must not listen: {stdout:?}");
    let err = serve.logs.text();
    for part in [
        "--max-connections=\"256\"",
        "at most 136",
        "200 file descriptors (RLIMIT_NOFILE hard limit)",
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
}

/// A soft limit below what the cap needs, under a hard limit that has room, is raised at
/// start (as Go's runtime raises it) and the webhook serves.
#[tokio::test]
async fn a_soft_file_descriptor_limit_below_the_connection_cap_is_raised_to_fit_it() {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let server = Server::start_command(&mut serve_under_ulimit("-S -n 100", &secret), TIMEOUT);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let soft: u64 = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no soft limit in {limits}"));
    assert!(soft >= 256 + 64, "soft limit {soft}:\n{limits}");
    review_is_injected(&server, &pki, b"h2").await;
}
