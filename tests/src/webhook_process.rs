//! Running the real `status-reporter-webhook serve` over TLS, for the webhook suites and
//! `bench-webhook`: a private CA ([`Pki`]), a certificate directory laid out and rotated the
//! way the kubelet mounts a Secret ([`SecretDir`]), the running server ([`Server`]), and
//! clients that talk to it through hyper ([`request`]) or by hand ([`read_status`], …).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::process::{Process, first_line};

/// A private CA: serving certificates for `localhost`, and whatever the control plane needs.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key.
pub struct Pair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
    /// The certificate, DER (to compare with what a connection was served).
    pub der: CertificateDer<'static>,
    /// The serial number as the webhook logs it (lowercase hex bytes joined by `:`), to wait
    /// for its `serving a new TLS certificate` line.
    pub serial: String,
}

impl Default for Pki {
    /// A new self-signed CA.
    fn default() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        Pki {
            ca: CertifiedIssuer::self_signed(params, key).expect("CA"),
        }
    }
}

impl Pki {
    /// The CA's certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A new serving pair for `localhost`, signed by the CA.
    pub fn issue(&self) -> Pair {
        self.sign(&["localhost"], |_| {})
    }

    /// A new serving pair for `localhost`, valid from `not_before` to `not_after` only.
    pub fn issue_valid_between(&self, not_before: SystemTime, not_after: SystemTime) -> Pair {
        self.sign(&["localhost"], |params| {
            params.not_before = not_before.into();
            params.not_after = not_after.into();
        })
    }

    /// A new pair for the subject alternative `names`, shaped by `shape` (its subject, key
    /// usages, validity), signed by the CA.
    pub fn sign(&self, names: &[&str], shape: impl FnOnce(&mut CertificateParams)) -> Pair {
        // A serial unique in this process, first byte 0x01 so DER encodes the bytes as they
        // are (no leading zero stripped or added) and the logged form is predictable.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let mut serial = vec![0x01];
        serial.extend_from_slice(&std::process::id().to_be_bytes());
        serial.extend_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        let key = KeyPair::generate().expect("key");
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).expect("params");
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        shape(&mut params);
        let cert = params.signed_by(&key, &self.ca).expect("sign");
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            serial: serial
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        }
    }

    /// A client config trusting the CA, offering only `versions` and ALPN `alpn`.
    pub fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[u8],
    ) -> rustls::ClientConfig {
        // ring is the only provider compiled in; installing it is idempotent.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("root");
        let mut config = rustls::ClientConfig::builder_with_protocol_versions(versions)
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        config
    }
}

/// A directory laid out like a mounted Secret: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..<version>`, updated by an atomic rename of the `..data` symlink.
pub struct SecretDir {
    dir: tempfile::TempDir,
    version: u32,
}

impl SecretDir {
    /// A new directory holding `pair`.
    pub fn new(pair: &Pair) -> SecretDir {
        SecretDir::from_pem(&pair.cert_pem, &pair.key_pem)
    }

    /// A new directory holding the PEM `cert` and `key` (e.g. from `certs`).
    pub fn from_pem(cert: &str, key: &str) -> SecretDir {
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

    /// Rotates to `cert`/`key` (any text, valid or not) the way the kubelet does: a new
    /// versioned directory, then an atomic rename of `..data`.
    pub fn write(&mut self, cert: &str, key: &str) {
        self.version += 1;
        let pid = std::process::id();
        let version = format!("..2026_11_21_00_00_{:02}.{pid}", self.version);
        let root = self.dir.path();
        std::fs::create_dir(root.join(&version)).expect("mkdir");
        std::fs::write(root.join(&version).join("tls.crt"), cert).expect("write cert");
        std::fs::write(root.join(&version).join("tls.key"), key).expect("write key");
        let tmp = root.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).expect("symlink");
        std::fs::rename(&tmp, root.join("..data")).expect("swap ..data");
    }

    /// `tls.crt`.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    /// `tls.key`.
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }
}

/// A running `status-reporter-webhook serve`: a [`Process`] (its stderr in `logs`) and the
/// address it listens on; killed on drop if still running.
pub struct Server {
    /// The address it listens on (loopback, port chosen by the OS).
    pub addr: SocketAddr,
    process: Process,
}

impl std::ops::Deref for Server {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

impl Server {
    /// Starts `bin serve --listen 127.0.0.1:0 --tls-cert CERT --tls-key KEY` plus `extra`
    /// arguments and waits up to `timeout` for its `listening on ADDR` line.
    pub fn start(bin: &Path, secret: &SecretDir, extra: &[&str], timeout: Duration) -> Server {
        Server::start_command(&mut serve_command(bin, secret, extra), timeout)
    }

    /// [`Server::start`] for a command built by the caller (say, [`serve_command`] behind
    /// `bash -c 'ulimit …; exec "$@"'`).
    pub fn start_command(command: &mut Command, timeout: Duration) -> Server {
        let what = format!("{command:?}");
        let mut process = Process::spawn(command.stdout(Stdio::piped()), &what);
        let stdout = process.take_stdout().expect("stdout piped");
        let line = first_line(stdout, timeout).unwrap_or_default();
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok());
        let addr = addr.unwrap_or_else(|| {
            let logs = process.logs.text();
            panic!("server did not print `listening on ADDR` within {timeout:?} (it printed {line:?}); logs:\n{logs}")
        });
        Server { addr, process }
    }
}

/// `bin serve --listen 127.0.0.1:0 --tls-cert CERT --tls-key KEY` plus `extra` arguments.
pub fn serve_command(bin: &Path, secret: &SecretDir, extra: &[&str]) -> Command {
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(secret.cert())
        .arg("--tls-key")
        .arg(secret.key())
        .args(extra);
    command
}

/// A TLS connection to `addr`, verifying the server as `localhost` with `config`.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
}

/// An HTTP/1.1 client over a [`connect`]ed TLS connection, its connection task spawned on the
/// current runtime; panics naming the step that failed.
pub async fn http1(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tls = connect(addr, config)
        .await
        .unwrap_or_else(|e| panic!("TLS connection to {addr}: {e}"));
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap_or_else(|e| panic!("HTTP/1.1 handshake with {addr}: {e}"));
    tokio::spawn(conn);
    send
}

/// An AdmissionReview from `tests/data/admission/NAME.json`.
pub fn admission_fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/data/admission/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One request over `tls` (HTTP/2 when `h2` was negotiated): the status and the body.
/// Panics if the connection fails.
pub async fn request(
    tls: TlsStream<TcpStream>,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let io = TokioIo::new(tls);
    let res = if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("HTTP/2 handshake");
        tokio::spawn(conn);
        send.send_request(req).await.expect("HTTP/2 request")
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(conn);
        let mut req = req;
        req.headers_mut()
            .insert("host", hyper::header::HeaderValue::from_static("localhost"));
        send.send_request(req).await.expect("HTTP/1.1 request")
    };
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.expect("response body");
    (status, body.to_bytes().to_vec())
}

/// Reads (and drops) whatever `stream` receives until the server closes it: true if that
/// happens within `within` (end of stream, or a reset), false if it is still open then.
pub async fn closed_within<S: AsyncRead + Unpin>(stream: &mut S, within: Duration) -> bool {
    let mut buf = vec![0u8; 16 * 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Sends the head of `POST /mutate` announcing `content_length` body bytes with
/// `Expect: 100-continue`, and waits (bounded) for `100 Continue`: the server has read the head
/// and waits for the body, so the request is in progress.
pub async fn post_head_until_continue(
    tls: &mut TlsStream<TcpStream>,
    content_length: usize,
    timeout: Duration,
) {
    let head = format!(
        "POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: {content_length}\r\n\r\n"
    );
    tls.write_all(head.as_bytes())
        .await
        .expect("write the head");
    tls.flush().await.expect("flush the head");
    let mut interim = [0u8; 25];
    tokio::time::timeout(timeout, tls.read_exact(&mut interim))
        .await
        .expect("no 100 Continue")
        .expect("read 100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Waits (bounded) for the start of an HTTP/1.1 answer and returns it, e.g. `HTTP/1.1 408`.
pub async fn read_status(tls: &mut TlsStream<TcpStream>, timeout: Duration) -> String {
    let mut status = [0u8; 12];
    tokio::time::timeout(timeout, tls.read_exact(&mut status))
        .await
        .expect("no answer")
        .expect("read the status line");
    String::from_utf8_lossy(&status).into_owned()
}

/// A request body the test feeds chunk by chunk.
pub type FedBody = StreamBody<ReceiverStream<Result<Frame<Bytes>, std::io::Error>>>;

/// A `POST /mutate` whose body does not end while [`UnfinishedPost::feed`] lives.
pub struct UnfinishedPost {
    /// Keeps the body open; drop it to end the body short.
    pub feed: tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
    /// Ends once every byte to send was taken by the connection, or the stream was refused.
    pub sending: JoinHandle<()>,
    /// The response status (0 if the stream failed without one).
    pub answer: JoinHandle<u16>,
}

/// Starts `POST /mutate` on `send` announcing `len` body bytes, and sends `sent` of them in
/// 64 KiB chunks (as fast as flow control lets them go).
pub async fn unfinished_post(
    send: &mut hyper::client::conn::http2::SendRequest<FedBody>,
    len: usize,
    sent: usize,
) -> UnfinishedPost {
    let (feed, rx) = tokio::sync::mpsc::channel(4);
    let req = hyper::Request::post("https://localhost/mutate")
        .header("content-type", "application/json")
        .header("content-length", len.to_string())
        .body(StreamBody::new(ReceiverStream::new(rx)))
        .expect("request");
    send.ready().await.expect("HTTP/2 connection");
    let response = send.send_request(req);
    let answer = tokio::spawn(async move { response.await.map_or(0, |r| r.status().as_u16()) });
    let chunks = feed.clone();
    let sending = tokio::spawn(async move {
        let mut left = sent;
        while left > 0 {
            let n = left.min(64 * 1024);
            if chunks
                .send(Ok(Frame::data(Bytes::from(vec![b' '; n]))))
                .await
                .is_err()
            {
                return; // refused: the stream was reset
            }
            left -= n;
        }
    });
    UnfinishedPost {
        feed,
        sending,
        answer,
    }
}
