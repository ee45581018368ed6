//! The real `status-reporter-webhook serve` under sustained load (loopback only, a few
//! thousand requests, every wait bounded): concurrent TLS clients post AdmissionReviews while
//! the serving certificate is rotated (and once replaced by a broken pair), then SIGTERM
//! arrives mid-load.
//!
//! Asserted: no request fails before SIGTERM; every answer is a correct review; new
//! connections get the last rotated certificate (the broken pair is never served); the server
//! exits 0 after draining; resident memory after a burst is not grossly above the level
//! before it (numbers are printed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::webhook_process::{self, Pki, SecretDir, Server};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use tokio::sync::{Mutex, Notify};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Concurrent client connections.
const CLIENTS: usize = 8;
/// Requests per connection before reconnecting (so new handshakes see rotated certificates).
const PER_CONNECTION: usize = 25;
/// Successful requests in the warm-up burst.
const WARMUP_REQUESTS: u64 = 400;
/// Certificate rotations in the measured burst (the fourth one writes a broken pair).
const ROTATIONS: u32 = 10;
/// Successful requests between two rotations: phases are counted in requests, not timed, so
/// every rotation happens under load however fast or slow the machine is.
const REQUESTS_PER_ROTATION: u64 = 200;

/// A client config trusting `pki`, HTTP/1.1, full handshakes only: a resumed session reports
/// the certificate of the session it resumed, which would hide whether the server serves the
/// rotated one.
fn client_config(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let mut config = pki.client_config(rustls::DEFAULT_VERSIONS, b"http/1.1");
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

fn start_server(secret: &SecretDir) -> Server {
    Server::start(
        &harness::bin::path("status-reporter-webhook"),
        secret,
        &[
            // `info`: the certificate reloads to wait on (and one line per review).
            "--log-level",
            "info",
            "--log-format",
            "text",
            "--drain-timeout-seconds",
            "10",
        ],
        TIMEOUT,
    )
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    /// Woken at every successful request (see [`Tally::wait_ok`]).
    progress: Notify,
    /// Failures while the server was meant to serve: each one fails the test.
    failures: Mutex<Vec<String>>,
    /// Failures after SIGTERM was sent (refused/closed connections are by design then).
    after_sigterm: AtomicU64,
    /// Distinct serving certificates seen by new connections.
    certs: Mutex<Vec<CertificateDer<'static>>>,
}

impl Tally {
    /// Counts one successful request.
    fn ok(&self) {
        self.ok.fetch_add(1, Ordering::Relaxed);
        self.progress.notify_waiters();
    }

    /// Waits (bounded by `TIMEOUT`) until at least `n` requests have succeeded in total.
    async fn wait_ok(&self, n: u64) {
        let wait = async {
            loop {
                // Registered before the check, so an increment in between still wakes it.
                let notified = self.progress.notified();
                if self.ok.load(Ordering::Relaxed) >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {n} requests succeeded within {TIMEOUT:?}",
                    self.ok.load(Ordering::Relaxed)
                )
            });
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    tally: &Tally,
) -> Result<Sender, String> {
    let stream = webhook_process::connect(addr, tls)
        .await
        .map_err(|e| format!("connect and TLS handshake: {e}"))?;
    if let Some(cert) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        let mut certs = tally.certs.lock().await;
        if !certs.contains(cert) {
            certs.push(cert.clone().into_owned());
        }
    }
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(send)
}

/// One review round trip; checks the answer is the expected injection.
async fn post(send: &mut Sender, body: &Bytes) -> Result<(), String> {
    let req = Request::post("/mutate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .expect("request");
    send.ready().await.map_err(|e| format!("connection: {e}"))?;
    let res = send
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = res.status();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    if status != 200 {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    let r = &v["response"];
    if r["uid"] != "705ab4f5-6393-11e8-b7cc-42010a800002"
        || r["allowed"] != true
        || r["patchType"] != "JSONPatch"
    {
        return Err(format!("unexpected review: {v}"));
    }
    Ok(())
}

/// A client loop: connections of `PER_CONNECTION` requests until `stop`.
async fn client(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    body: Bytes,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    sigterm_sent: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let result = async {
            let mut send = connect(addr, tls.clone(), &tally).await?;
            for _ in 0..PER_CONNECTION {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                post(&mut send, &body).await?;
                tally.ok();
            }
            Ok::<_, String>(())
        }
        .await;
        if let Err(e) = result {
            if sigterm_sent.load(Ordering::SeqCst) {
                tally.after_sigterm.fetch_add(1, Ordering::Relaxed);
                // The server is going away: this client is done.
                return;
            }
            tally.failures.lock().await.push(e);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_with_rotation_and_sigterm() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = Pki::default();
    let mut secret = SecretDir::new(&pki.issue());
    let server = start_server(&secret);
    let body = Bytes::from(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/admission/create-job.json"
        ))
        .expect("fixture"),
    );
    let tls = client_config(&pki);
    let tally = Arc::new(Tally::default());
    let sigterm_sent = Arc::new(AtomicBool::new(false));

    let run = |stop: Arc<AtomicBool>| {
        (0..CLIENTS)
            .map(|_| {
                tokio::spawn(client(
                    server.addr,
                    tls.clone(),
                    body.clone(),
                    tally.clone(),
                    stop.clone(),
                    sigterm_sent.clone(),
                ))
            })
            .collect::<Vec<_>>()
    };
    let join = |tasks: Vec<tokio::task::JoinHandle<()>>| async move {
        for t in tasks {
            tokio::time::timeout(TIMEOUT, t)
                .await
                .expect("client finished in time")
                .expect("client task");
        }
    };

    // 1. Warm-up burst (allocator arenas, TLS session caches, lazy statics), then a baseline.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = run(stop.clone());
    tally.wait_ok(WARMUP_REQUESTS).await;
    stop.store(true, Ordering::Relaxed);
    join(tasks).await;
    let rss_before = server.rss_kib();
    let warmup = tally.ok.load(Ordering::Relaxed);

    // 2. The measured burst, with the certificate rotated every REQUESTS_PER_ROTATION
    //    successful requests, once to a broken pair.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks = run(stop.clone());
    let mut last_valid = None;
    for rotation in 1..=ROTATIONS {
        tally
            .wait_ok(tally.ok.load(Ordering::Relaxed) + REQUESTS_PER_ROTATION)
            .await;
        if rotation == 4 {
            // A half-written Secret: the server must keep serving the current pair.
            secret.write("-----BEGIN CERTIFICATE-----\nbroken\n", "not a key");
        } else {
            let pair = pki.issue();
            secret.write(&pair.cert_pem, &pair.key_pem);
            last_valid = Some(pair);
        }
    }
    stop.store(true, Ordering::Relaxed);
    join(tasks).await;
    let burst = tally.ok.load(Ordering::Relaxed) - warmup;
    let burst_secs = started.elapsed().as_secs_f64();
    let rss_after = server.rss_kib();
    let failures = tally.failures.lock().await.clone();
    assert!(
        failures.is_empty(),
        "{} failed requests under load: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let certs_seen = tally.certs.lock().await.len();
    // The reload is asynchronous (inotify): new connections must present the last valid
    // pair within a bounded time, whatever the load did to the timing above.
    let last_valid = last_valid.expect("at least one valid rotation");
    server.logs.wait_for(
        &["serving a new TLS certificate", &last_valid.serial],
        TIMEOUT,
    );
    let stream = webhook_process::connect(server.addr, tls.clone())
        .await
        .expect("TLS handshake after the rotations");
    let served = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first().cloned());
    assert_eq!(
        served.as_ref(),
        Some(&last_valid.der),
        "the server logged serving the last rotated certificate but served another"
    );

    // 3. SIGTERM while clients keep going: the server drains and exits 0.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = run(stop.clone());
    // SIGTERM must land mid-load: wait until every client's worth of requests got through.
    tally
        .wait_ok(tally.ok.load(Ordering::Relaxed) + CLIENTS as u64)
        .await;
    let before_term = tally.ok.load(Ordering::Relaxed);
    sigterm_sent.store(true, Ordering::SeqCst);
    server.signal("-TERM");
    let mut server = server;
    // Waited on a blocking thread: the clients keep running on the runtime meanwhile.
    let exit = tokio::task::spawn_blocking(move || server.wait_exit(TIMEOUT)).await;
    stop.store(true, Ordering::Relaxed);
    join(tasks).await;
    let exit = exit.expect("server exited within the drain timeout after SIGTERM");

    let failures = tally.failures.lock().await.clone();
    let after_term = tally.after_sigterm.load(Ordering::Relaxed);
    eprintln!(
        "webhook load: {burst} reviews in {burst_secs:.2}s ({:.0}/s) over {CLIENTS} connections; \
         {ROTATIONS} rotations (1 broken), {certs_seen} certificates served; \
         VmRSS before burst {rss_before} KiB, after {rss_after} KiB; \
         {} ok in the SIGTERM phase before the signal, {after_term} client(s) cut off after it",
        burst as f64 / burst_secs,
        before_term.saturating_sub(warmup + burst),
    );
    assert!(
        failures.is_empty(),
        "failed requests before SIGTERM: {failures:?}"
    );
    assert_eq!(exit.code(), Some(0), "exit status after SIGTERM: {exit:?}");
    assert!(burst > 0, "no request succeeded during the burst");
    assert!(
        rss_after <= 2 * rss_before + 8 * 1024,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB over one burst"
    );
}
