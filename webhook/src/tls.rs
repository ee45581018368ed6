//! TLS for the webhook listener: rustls with the ring provider, TLS 1.2+, ALPN h2 and
//! http/1.1, and a certificate resolver whose pair is swapped in place when the mounted
//! Secret changes. A Secret update swaps the `..data` symlink, so the directory is
//! watched, not the files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// A certificate chain and key that belong together, plus facts about the leaf.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// Leaf `notBefore`, Unix seconds.
    pub not_before: i64,
    /// Leaf `notAfter`, Unix seconds.
    pub not_after: i64,
    /// Leaf serial number, hex, for logs and tests.
    pub serial: String,
}

/// The ring provider; installed process-wide by `main` and test setup too.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a PEM certificate chain and private key.
pub fn load_pair(cert: &Path, key: &Path) -> Result<LoadedCert> {
    let fail = |message: String| Error::Tls {
        cert: cert.to_owned(),
        key: key.to_owned(),
        message,
    };
    let cert_pem =
        std::fs::read(cert).map_err(|e| fail(format!("cannot read the certificate: {e}")))?;
    let key_pem = std::fs::read(key).map_err(|e| fail(format!("cannot read the key: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("certificate is not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(fail("no CERTIFICATE block in the certificate file".into()));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        fail(format!(
            "key is not a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"
        ))
    })?;
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0])
        .map_err(|e| fail(format!("certificate is not valid X.509: {e}")))?;
    let not_before = leaf.validity().not_before.timestamp();
    let not_after = leaf.validity().not_after.timestamp();
    let serial = leaf.raw_serial_as_string();
    let certified = CertifiedKey::from_der(chain, private, &provider()).map_err(|e| {
        fail(format!(
            "certificate and key do not form a usable pair: {e}"
        ))
    })?;
    Ok(LoadedCert {
        key: Arc::new(certified),
        not_before,
        not_after,
        serial,
    })
}

/// Where `now` falls in a certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// `notBefore <= now <= notAfter`.
    Valid,
    /// Before `notBefore`.
    NotYetValid,
    /// After `notAfter`.
    Expired,
}

impl LoadedCert {
    /// Where `now` (Unix seconds) falls in the leaf's validity period.
    pub fn validity(&self, now: i64) -> Validity {
        if now < self.not_before {
            Validity::NotYetValid
        } else if now > self.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }
}

/// Refuses a pair that is not valid at `now` (Unix seconds): clients would reject it, so the
/// webhook must neither start with it nor switch to it.
pub fn check_valid_at(loaded: &LoadedCert, cert: &Path, key: &Path, now: i64) -> Result<()> {
    let state = match loaded.validity(now) {
        Validity::Valid => return Ok(()),
        Validity::NotYetValid => "is not valid yet",
        Validity::Expired => "has expired",
    };
    Err(Error::Tls {
        cert: cert.to_owned(),
        key: key.to_owned(),
        message: format!(
            "the certificate {state} (now {}; notBefore {}, notAfter {}): issue a new pair (see certs/README.md)",
            rfc3339(now),
            rfc3339(loaded.not_before),
            rfc3339(loaded.not_after)
        ),
    })
}

/// Unix seconds as RFC 3339 (UTC), or the bare number when out of the calendar's range.
pub fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).map_or_else(|_| unix.to_string(), |t| t.to_string())
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Serves whatever pair is current; swapped atomically on reload.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<LoadedCert>,
}

impl CertResolver {
    /// Starts with a pair already loaded (certificates are checked before binding).
    pub fn new(initial: LoadedCert) -> Self {
        CertResolver {
            current: ArcSwap::from_pointee(initial),
        }
    }

    /// The pair being served.
    pub fn current(&self) -> Arc<LoadedCert> {
        self.current.load_full()
    }

    /// Replaces the pair.
    pub fn store(&self, next: LoadedCert) {
        self.current.store(Arc::new(next));
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

/// rustls server configuration: TLS 1.3 and 1.2 only, ALPN h2 then http/1.1.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<ServerConfig> {
    server_config_with(provider(), resolver)
}

/// [`server_config`] with a given crypto provider.
pub fn server_config_with(
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
) -> Result<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(Error::TlsSetup)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Keeps the directory watch alive; dropping it stops reloading.
pub struct CertWatch {
    _watcher: RecommendedWatcher,
}

/// Watches the directories holding `cert` and `key` and reloads the pair on change.
/// A pair that fails to load is logged and counted, and the old pair stays in service.
pub fn watch(
    resolver: Arc<CertResolver>,
    cert: PathBuf,
    key: PathBuf,
    metrics: Arc<Metrics>,
) -> Result<CertWatch> {
    let dirs: Vec<PathBuf> = {
        let mut d = vec![parent(&cert), parent(&key)];
        d.dedup();
        d
    };
    let handler = move |event: notify::Result<notify::Event>| {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "certificate directory watch error");
                return;
            }
        };
        // Our own reads of the files show up as access events: reacting to them would loop.
        if matches!(
            event.kind,
            EventKind::Access(
                AccessKind::Open(_)
                    | AccessKind::Read
                    | AccessKind::Close(AccessMode::Read | AccessMode::Execute | AccessMode::Any)
            )
        ) {
            return;
        }
        reload(&resolver, &cert, &key, &metrics);
    };
    let mut watcher = notify::recommended_watcher(handler).map_err(|e| Error::Watch {
        dir: dirs[0].clone(),
        message: e.to_string(),
    })?;
    for dir in &dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| Error::Watch {
                dir: dir.clone(),
                message: e.to_string(),
            })?;
    }
    Ok(CertWatch { _watcher: watcher })
}

/// Loads the pair again and swaps it in if it is new, usable and valid now.
pub fn reload(resolver: &CertResolver, cert: &Path, key: &Path, metrics: &Metrics) {
    reload_at(resolver, cert, key, metrics, unix_now());
}

/// [`reload`] with the clock passed in (Unix seconds).
pub fn reload_at(resolver: &CertResolver, cert: &Path, key: &Path, metrics: &Metrics, now: i64) {
    let loaded = load_pair(cert, key).and_then(|next| {
        if resolver.current().key.cert == next.key.cert {
            return Ok(None);
        }
        check_valid_at(&next, cert, key, now)?;
        Ok(Some(next))
    });
    match loaded {
        Ok(None) => {}
        Ok(Some(next)) => {
            // Logged after the swap: the line means new handshakes get this certificate.
            let (serial, not_after) = (next.serial.clone(), next.not_after);
            metrics.cert_expiry.set(not_after);
            metrics.reload(true);
            resolver.store(next);
            tracing::info!(%serial, not_after, "serving a new TLS certificate");
        }
        Err(e) => {
            // Secrets are written in steps; a later event usually brings the complete pair.
            // A pair outside its validity period is refused the same way: clients would
            // reject it, while the current one may still be good.
            // Counted before the line is logged, so whoever sees the line sees the count.
            metrics.reload(false);
            tracing::warn!(error = %e, serial = %resolver.current().serial, "new certificate pair is unusable; keeping the current one");
        }
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}
