//! Issue 13's bar for the webhook: under the probe's abuse — 1,000 idle handshaken
//! connections, 100 HTTP/2 streams of 3 MB unfinished bodies, slowloris clients — the real
//! `serve` with its shipped limits keeps answering legitimate reviews within the API
//! server's timeout, and its resident memory stays under the Deployment's 128 MiB limit.
//!
//! Loopback only; about 1,200 connections in all, every one closed by the end; every wait
//! bounded. The numbers are printed (peak RSS from the kernel's `VmHWM`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use harness::webhook_process::{
    Pki, SecretDir, Server, UnfinishedPost, admission_fixture, connect, request, unfinished_post,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const TIMEOUT: Duration = Duration::from_secs(20);
/// `resources.limits.memory` of `manifests/base/deployment.yaml`.
const MEMORY_LIMIT_KIB: u64 = 128 * 1024;
/// The API server's wait for the webhook (`timeoutSeconds` of the webhook configuration).
const REVIEW_DEADLINE: Duration = Duration::from_secs(5);

const IDLE_CONNECTIONS: usize = 1_000;
const LARGE_STREAMS: usize = 100;
/// Within the server's limit of 8 streams per connection.
const STREAMS_PER_CONNECTION: usize = 5;
const LARGE_BODY: usize = 3_000_000;
const SLOWLORIS: usize = 100;

fn config(pki: &Pki, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    Arc::new(pki.client_config(&[&rustls::version::TLS13], alpn))
}

/// What the legitimate client saw.
#[derive(Default)]
struct Legit {
    answered: usize,
    slowest: Duration,
}

impl Legit {
    /// A review over a new connection (as the API server opens them), answered in time.
    async fn review(&mut self, server: &Server, pki: &Pki, alpn: &[u8]) {
        let started = Instant::now();
        let answer = tokio::time::timeout(REVIEW_DEADLINE, async {
            let tls = connect(server.addr, config(pki, alpn))
                .await
                .expect("TLS handshake");
            request(tls, "POST", "/mutate", admission_fixture("create-job")).await
        })
        .await
        .unwrap_or_else(|_| panic!("a legitimate review took over {REVIEW_DEADLINE:?}"));
        let (status, body) = answer;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let review: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(review["response"]["allowed"], true);
        assert_eq!(review["response"]["patchType"], "JSONPatch");
        self.answered += 1;
        self.slowest = self.slowest.max(started.elapsed());
    }

    async fn reviews(&mut self, server: &Server, pki: &Pki) {
        for alpn in [&b"http/1.1"[..], b"h2", b"http/1.1", b"h2"] {
            self.review(server, pki, alpn).await;
        }
    }
}

/// `n` TLS connections that send nothing, opened 50 at a time.
async fn idle_connections(server: &Server, pki: &Pki, n: usize) -> Vec<TlsStream<TcpStream>> {
    let mut open = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(50) {
        let handshakes = batch.iter().map(|i| {
            let alpn: &[u8] = if i % 2 == 0 { b"http/1.1" } else { b"h2" };
            connect(server.addr, config(pki, alpn))
        });
        for tls in futures::future::join_all(handshakes).await {
            open.push(tls.expect("TLS handshake of an idle connection"));
        }
    }
    open
}

/// `LARGE_STREAMS` HTTP/2 streams, `STREAMS_PER_CONNECTION` per connection, each
/// announcing `LARGE_BODY` bytes and sending all but 1,000 of them.
async fn unfinished_large_bodies(server: &Server, pki: &Pki) -> Vec<UnfinishedPost> {
    let mut posts = Vec::new();
    for _ in 0..LARGE_STREAMS / STREAMS_PER_CONNECTION {
        let tls = connect(server.addr, config(pki, b"h2")).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        for _ in 0..STREAMS_PER_CONNECTION {
            posts.push(unfinished_post(&mut send, LARGE_BODY, LARGE_BODY - 1_000).await);
        }
    }
    posts
}

/// A client that sends a request one byte every 250 ms until `stop`: a head that takes
/// forever (`body: false`), or a complete head and then a small body that does.
async fn slowloris(server: &Server, pki: &Pki, body: bool, stop: Arc<AtomicBool>) {
    let Ok(mut tls) = connect(server.addr, config(pki, b"http/1.1")).await else {
        return;
    };
    let (head, text): (&[u8], Vec<u8>) = if body {
        (
            b"POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-length: 60000\r\n\r\n",
            vec![b' '; 60_000],
        )
    } else {
        (
            b"",
            b"POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
                .to_vec(),
        )
    };
    if tls.write_all(head).await.is_err() {
        return;
    }
    for byte in text {
        if stop.load(Ordering::Relaxed) || tls.write_all(&[byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_abuse_the_webhook_keeps_serving_within_its_memory_limit() {
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    // The shipped limits: only the log format differs from the Deployment.
    let server = Server::start(
        &harness::bin::path("status-reporter-webhook"),
        &secret,
        &["--log-format", "text", "--log-level", "warn"],
        TIMEOUT,
    );
    let started = Instant::now();
    let mut legit = Legit::default();
    legit.reviews(&server, &pki).await;
    let rss_start = server.rss_kib();

    // 1. A thousand connections that finish the handshake and send nothing: the oldest
    //    make room for the newest and for the legitimate client.
    let idle = idle_connections(&server, &pki, IDLE_CONNECTIONS).await;
    legit.reviews(&server, &pki).await;
    let rss_idle = server.rss_kib();

    // 2. A hundred HTTP/2 streams of 3 MB bodies that never finish, while the idle ones are
    //    still open: what the budget cannot hold is refused at once (503).
    let mut posts = unfinished_large_bodies(&server, &pki).await;
    let sending = posts.iter_mut().map(|p| &mut p.sending);
    tokio::time::timeout(TIMEOUT, futures::future::join_all(sending))
        .await
        .expect("the large bodies were neither taken nor refused");
    let mut refused = 0;
    for post in &mut posts {
        // The held ones answer 408 only after the request timeout: don't wait for them.
        if let Ok(Ok(status)) =
            tokio::time::timeout(Duration::from_millis(50), &mut post.answer).await
        {
            assert_eq!(status, 503, "a large body was answered {status}");
            refused += 1;
        }
    }
    legit.reviews(&server, &pki).await;
    let rss_bodies = server.rss_kib();

    // 3. Slowloris, heads and small bodies, on top.
    let stop = Arc::new(AtomicBool::new(false));
    let slow = futures::future::join_all(
        (0..SLOWLORIS).map(|i| slowloris(&server, &pki, i % 2 == 1, stop.clone())),
    );
    let reviews = async {
        // Let every slow client connect and start dribbling first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        legit.reviews(&server, &pki).await;
        stop.store(true, Ordering::Relaxed);
    };
    tokio::time::timeout(TIMEOUT, futures::future::join(slow, reviews))
        .await
        .expect("slowloris phase did not end");
    let rss_slowloris = server.rss_kib();
    let peak = server.peak_rss_kib();
    drop((idle, posts));

    eprintln!(
        "webhook abuse: {} legitimate reviews answered (slowest {:?}); {IDLE_CONNECTIONS} idle \
         connections, {LARGE_STREAMS} unfinished 3 MB bodies ({refused} refused with 503), \
         {SLOWLORIS} slowloris clients; VmRSS KiB: start {rss_start}, after idle {rss_idle}, \
         after bodies {rss_bodies}, after slowloris {rss_slowloris}; peak (VmHWM) {peak} KiB \
         of a {MEMORY_LIMIT_KIB} KiB limit; {:.1}s",
        legit.answered,
        legit.slowest,
        started.elapsed().as_secs_f64()
    );
    assert!(
        peak < MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB reached the {MEMORY_LIMIT_KIB} KiB memory limit"
    );
    assert!(
        refused >= LARGE_STREAMS / 2,
        "only {refused} of {LARGE_STREAMS} large bodies were refused: is the budget in force?"
    );
}
