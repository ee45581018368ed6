//! The real `status-reporter-webhook serve` under sustained load (loopback only, a few
//! seconds): concurrent TLS clients post AdmissionReviews while the serving certificate is
//! rotated (and once replaced by a broken pair), then SIGTERM arrives mid-load.
//!
//! Asserted: no request fails before SIGTERM; every answer is a correct review; new
//! connections get the last rotated certificate (the broken pair is never served); the server exits 0 after draining; resident
//! memory after a burst is not grossly above the level before it (numbers are printed).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

const TIMEOUT: Duration = Duration::from_secs(20);
/// Concurrent client connections.
const CLIENTS: usize = 8;
/// Requests per connection before reconnecting (so new handshakes see rotated certificates).
const PER_CONNECTION: usize = 25;
/// Length of the measured burst and of the rotation phase.
const BURST: Duration = Duration::from_secs(2);

/// A private CA issuing `localhost` serving certificates.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        Pki {
            ca: CertifiedIssuer::self_signed(params, key).expect("CA"),
        }
    }

    /// A new (cert PEM, key PEM, cert DER).
    fn issue(&self) -> (String, String, CertificateDer<'static>) {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .signed_by(&key, &self.ca)
            .expect("sign");
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }

    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("root");
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Full handshakes only: a resumed session reports the certificate of the session it
        // resumed, which would hide whether the server serves the rotated one.
        config.resumption = rustls::client::Resumption::disabled();
        Arc::new(config)
    }
}

/// A directory laid out like a mounted Secret (`tls.crt -> ..data/tls.crt`), updated the way
/// the kubelet does it: a new versioned directory, then an atomic rename of `..data`.
struct SecretDir {
    dir: tempfile::TempDir,
    version: u32,
}

impl SecretDir {
    fn new(cert: &str, key: &str) -> SecretDir {
        let mut s = SecretDir {
            dir: tempfile::tempdir().expect("tempdir"),
            version: 0,
        };
        s.write(cert, key);
        for f in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{f}"), s.dir.path().join(f))
                .expect("symlink");
        }
        s
    }

    fn write(&mut self, cert: &str, key: &str) {
        self.version += 1;
        let root = self.dir.path();
        let version = format!("..v{:03}", self.version);
        std::fs::create_dir(root.join(&version)).expect("mkdir");
        std::fs::write(root.join(&version).join("tls.crt"), cert).expect("write cert");
        std::fs::write(root.join(&version).join("tls.key"), key).expect("write key");
        let tmp = root.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).expect("symlink");
        std::fs::rename(&tmp, root.join("..data")).expect("swap ..data");
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(secret: &SecretDir) -> Server {
        let mut child = Command::new(stand_in::bin::path("status-reporter-webhook"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(["--log-format", "text", "--drain-timeout-seconds", "10"])
            .arg("--tls-cert")
            .arg(secret.path("tls.crt"))
            .arg("--tls-key")
            .arg(secret.path("tls.key"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start status-reporter-webhook");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(TIMEOUT)
            .expect("server did not print `listening on ADDR` in time");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first stdout line {line:?}"));
        Server { child, addr }
    }

    /// Resident set size in KiB, from `/proc/PID/status`.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    /// Failures while the server was meant to serve: each one fails the test.
    failures: Mutex<Vec<String>>,
    /// Failures after SIGTERM was sent (refused/closed connections are by design then).
    after_sigterm: AtomicU64,
    /// Distinct serving certificates seen by new connections.
    certs: Mutex<Vec<CertificateDer<'static>>>,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    tally: &Tally,
) -> Result<Sender, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let stream = TlsConnector::from(tls)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
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
                tally.ok.fetch_add(1, Ordering::Relaxed);
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
    let pki = Pki::new();
    let (cert, key, _) = pki.issue();
    let mut secret = SecretDir::new(&cert, &key);
    let server = Server::start(&secret);
    let body = Bytes::from(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/admission/create-job.json"
        ))
        .expect("fixture"),
    );
    let tls = pki.client();
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
    tokio::time::sleep(BURST / 2).await;
    stop.store(true, Ordering::Relaxed);
    join(tasks).await;
    let rss_before = server.rss_kib();
    let warmup = tally.ok.load(Ordering::Relaxed);

    // 2. The measured burst, with the certificate rotated every 200 ms and one broken pair.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks = run(stop.clone());
    let mut rotations = 0;
    let mut last_valid = None;
    while started.elapsed() < BURST {
        tokio::time::sleep(Duration::from_millis(200)).await;
        rotations += 1;
        if rotations == 4 {
            // A half-written Secret: the server must keep serving the current pair.
            secret.write("-----BEGIN CERTIFICATE-----\nbroken\n", "not a key");
        } else {
            let (cert, key, der) = pki.issue();
            secret.write(&cert, &key);
            last_valid = Some(der);
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
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let tcp = TcpStream::connect(server.addr).await.expect("connect");
        let stream = TlsConnector::from(tls.clone())
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("TLS handshake after the rotations");
        let served = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first().cloned());
        if served.as_ref() == Some(&last_valid) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server still does not serve the last rotated certificate after {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 3. SIGTERM while clients keep going: the server drains and exits 0.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = run(stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_term = tally.ok.load(Ordering::Relaxed);
    sigterm_sent.store(true, Ordering::SeqCst);
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let mut server = server;
    std::thread::spawn(move || {
        let status = server.child.wait();
        let _ = tx.send(status);
    });
    let exit = tokio::task::spawn_blocking(move || rx.recv_timeout(TIMEOUT))
        .await
        .expect("waiter");
    if exit.is_err() {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    }
    stop.store(true, Ordering::Relaxed);
    join(tasks).await;
    let exit = exit
        .expect("server exited within the drain timeout after SIGTERM")
        .expect("wait for the server");

    let failures = tally.failures.lock().await.clone();
    let after_term = tally.after_sigterm.load(Ordering::Relaxed);
    eprintln!(
        "webhook load: {burst} reviews in {burst_secs:.2}s ({:.0}/s) over {CLIENTS} connections; \
         {rotations} rotations (1 broken), {certs_seen} certificates served; \
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
