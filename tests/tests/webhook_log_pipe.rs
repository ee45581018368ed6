//! A log pipe nobody reads (issue 23, item 2): the real `serve`, its stderr on a pipe this
//! test holds open and never reads, keeps answering reviews and `/healthz`, counts the log
//! lines it drops, ends on SIGTERM within its drain budget, and once the pipe is read again
//! says in one line how many lines it dropped. Loopback only; every wait bounded.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::webhook_process::{Pki, SecretDir, admission_fixture, http1};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;

/// The API server's wait for the webhook (`timeoutSeconds` of the webhook configuration).
const REVIEW_DEADLINE: Duration = Duration::from_secs(5);
const DRAIN_SECONDS: u64 = 5;
/// Reviews sent at most before the log writer must have dropped a line: each logs one line,
/// and the pipe (64 KiB) and the writer's queue (1,024 lines) hold fewer than 2,000.
const MAX_REVIEWS: usize = 20_000;
const CONNECTIONS: usize = 8;
const METRIC: &str = "status_reporter_webhook_log_lines_dropped_total ";

/// `serve` with its stderr on a pipe that nobody reads until [`Unread::stderr`] is taken;
/// killed on drop.
struct Unread {
    pid: u32,
    addr: SocketAddr,
    stderr: Option<ChildStderr>,
    exit: mpsc::Receiver<ExitStatus>,
    exited: bool,
}

impl Unread {
    fn start(secret: &SecretDir) -> Unread {
        let mut child = Command::new(harness::bin::path("status-reporter-webhook"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--log-level", "info"])
            .args(["--drain-timeout-seconds", &DRAIN_SECONDS.to_string()])
            .arg("--tls-cert")
            .arg(secret.cert())
            .arg("--tls-key")
            .arg(secret.key())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start status-reporter-webhook serve");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let stderr = child.stderr.take();
        let pid = child.id();
        // A thread owns the child and reports its exit, so the exit is waited on as an event.
        let (exited, exit) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = exited.send(status);
            }
        });
        let mut server = Unread {
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
            exit,
            exited: false,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("`listening on ADDR` within 30 s");
        server.addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first stdout line {line:?}"));
        server
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig} {}", self.pid);
    }

    /// Waits (bounded) for the exit.
    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let status = self
            .exit
            .recv_timeout(within)
            .unwrap_or_else(|_| panic!("still running {within:?} after SIGTERM"));
        self.exited = true;
        status
    }
}

impl Drop for Unread {
    fn drop(&mut self) {
        if !self.exited {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
            let _ = self.exit.recv_timeout(Duration::from_secs(10));
        }
    }
}

fn client_config(pki: &Pki) -> Arc<rustls::ClientConfig> {
    Arc::new(pki.client_config(&[&rustls::version::TLS13], b"http/1.1"))
}

async fn open(addr: SocketAddr, pki: &Pki) -> SendRequest<Full<Bytes>> {
    http1(addr, client_config(pki)).await
}

/// One request within the API server's deadline: its status and body.
async fn call(send: &mut SendRequest<Full<Bytes>>, path: &str, body: &Bytes) -> (u16, Bytes) {
    let request = hyper::Request::builder()
        .method(if body.is_empty() { "GET" } else { "POST" })
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .expect("request");
    let answer = async {
        send.ready().await.expect("connection");
        let res = send.send_request(request).await.expect("answer");
        let status = res.status().as_u16();
        (
            status,
            res.into_body().collect().await.expect("body").to_bytes(),
        )
    };
    tokio::time::timeout(REVIEW_DEADLINE, answer)
        .await
        .unwrap_or_else(|_| panic!("{path} not answered within {REVIEW_DEADLINE:?}"))
}

async fn dropped(addr: SocketAddr, pki: &Pki) -> u64 {
    let (status, text) = call(&mut open(addr, pki).await, "/metrics", &Bytes::new()).await;
    assert_eq!(status, 200);
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix(METRIC)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Reviews over `CONNECTIONS` connections, each answered within the deadline, until the log
/// writer has dropped lines and then `after` rounds more; returns the reviews sent.
async fn review_until_lines_drop(addr: SocketAddr, pki: &Pki, after: usize) -> usize {
    let body = Bytes::from(admission_fixture("create-job"));
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(open(addr, pki).await);
    }
    let mut sent = 0;
    let mut rounds_after = None;
    while rounds_after != Some(after) {
        assert!(sent < MAX_REVIEWS, "{sent} reviews and no log line dropped");
        let round = conns.iter_mut().map(|send| call(send, "/mutate", &body));
        for (status, answer) in futures::future::join_all(round).await {
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
            let review: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
            assert_eq!(review["response"]["allowed"], true, "{review}");
        }
        sent += CONNECTIONS;
        rounds_after = match rounds_after {
            Some(n) => Some(n + 1),
            None if sent % 400 == 0 && dropped(addr, pki).await > 0 => Some(0),
            None => None,
        };
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_pipe_nobody_reads_never_stalls_reviews_health_or_shutdown() {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let mut server = Unread::start(&secret);

    let sent = review_until_lines_drop(server.addr, &pki, 50).await;
    let (status, _) = call(
        &mut open(server.addr, &pki).await,
        "/healthz",
        &Bytes::new(),
    )
    .await;
    assert_eq!(status, 200, "/healthz with a stalled log pipe");
    let lost = dropped(server.addr, &pki).await;
    eprintln!("{sent} reviews answered with stderr unread; {lost} log lines dropped");

    let signalled = Instant::now();
    server.signal("-TERM");
    let budget = Duration::from_secs(DRAIN_SECONDS + 3);
    let exit = tokio::task::spawn_blocking(move || {
        let exit = server.wait_exit(budget);
        drop(server);
        exit
    })
    .await
    .expect("wait");
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_pipe_is_read_again_one_line_says_how_many_lines_were_dropped() {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let mut server = Unread::start(&secret);
    review_until_lines_drop(server.addr, &pki, 0).await;

    let stderr = server.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The backlog drains; the next lines that get through bring the note.
    let body = Bytes::from(admission_fixture("create-job"));
    let mut send = open(server.addr, &pki).await;
    let started = Instant::now();
    let note = loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no line about the dropped lines"
        );
        call(&mut send, "/mutate", &body).await;
        if let Some(line) = lines
            .try_iter()
            .find(|l| l.contains("log lines were dropped"))
        {
            break line;
        }
    };
    let logged: serde_json::Value =
        serde_json::from_str(&note).unwrap_or_else(|e| panic!("{e}: {note}"));
    assert_eq!(logged["level"], "WARN", "{note}");
    let said = logged["fields"]["dropped"].as_u64().expect("a count");
    let counted = dropped(server.addr, &pki).await;
    assert!(
        said > 0 && said <= counted,
        "said {said}, counted {counted}: {note}"
    );
}
