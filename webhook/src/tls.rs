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
    let not_after = leaf.validity().not_after.timestamp();
    let serial = leaf.raw_serial_as_string();
    let certified = CertifiedKey::from_der(chain, private, &provider()).map_err(|e| {
        fail(format!(
            "certificate and key do not form a usable pair: {e}"
        ))
    })?;
    Ok(LoadedCert {
        key: Arc::new(certified),
        not_after,
        serial,
    })
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
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Serve(std::io::Error::other(format!("TLS setup: {e}"))))?
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

/// Loads the pair again and swaps it in if it is new and usable.
pub fn reload(resolver: &CertResolver, cert: &Path, key: &Path, metrics: &Metrics) {
    match load_pair(cert, key) {
        Ok(next) => {
            let current = resolver.current();
            if current.key.cert == next.key.cert {
                return;
            }
            // Logged after the swap: the line means new handshakes get this certificate.
            let (serial, not_after) = (next.serial.clone(), next.not_after);
            metrics.cert_expiry.set(not_after);
            metrics.reload(true);
            resolver.store(next);
            tracing::info!(%serial, not_after, "serving a new TLS certificate");
        }
        Err(e) => {
            // Secrets are written in steps; a later event usually brings the complete pair.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k, cert.der().to_vec())
    }

    #[test]
    fn loads_a_pair_and_reads_expiry_and_serial() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k, der) = pair(dir.path(), "a");
        let loaded = load_pair(&c, &k).unwrap();
        assert_eq!(loaded.key.cert[0].as_ref(), der.as_slice());
        assert!(loaded.not_after > 1_700_000_000, "{}", loaded.not_after);
        assert!(!loaded.serial.is_empty());
    }

    #[test]
    fn bad_pairs_are_refused_naming_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, _, _) = pair(dir.path(), "a");
        let (_, k2, _) = pair(dir.path(), "b");
        let missing = dir.path().join("missing.crt");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not pem").unwrap();
        for (cert, key, expected) in [
            (&c1, &k2, "do not form a usable pair"),
            (&missing, &k2, "cannot read the certificate"),
            (&garbage, &k2, "no CERTIFICATE block"),
            (&c1, &garbage, "key is not a PEM private key"),
        ] {
            let err = load_pair(cert, key).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains(&cert.display().to_string()), "{err}");
        }
    }

    #[test]
    fn reload_swaps_only_for_a_new_usable_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, k1, der1) = pair(dir.path(), "a");
        let (c2, k2, der2) = pair(dir.path(), "b");
        let resolver = CertResolver::new(load_pair(&c1, &k1).unwrap());
        let metrics = Metrics::new();
        reload(&resolver, &c2, &k1, &metrics);
        assert_eq!(resolver.current().key.cert[0].as_ref(), der1.as_slice());
        reload(&resolver, &c2, &k2, &metrics);
        assert_eq!(resolver.current().key.cert[0].as_ref(), der2.as_slice());
        let text = metrics.encode();
        assert!(
            text.contains("certificate_reloads_total{result=\"failure\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("certificate_reloads_total{result=\"success\"} 1"),
            "{text}"
        );
    }
}
