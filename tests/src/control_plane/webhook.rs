//! The real webhook installed on the admission control plane: its certificate from `certs`,
//! `serve` on loopback, and the shipped kustomization applied with only each webhook entry's
//! `clientConfig` pointed there. Dropped, it is uninstalled and the chain plain again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::AdmissionGuard;
use super::admission_chain::InstalledAdmission;
use super::cluster::run;
use crate::webhook_process::{SecretDir, Server, connect, request};

/// A webhook serving the admission control plane.
pub struct InstalledWebhook<'a> {
    /// The running `serve` (stop it to see the API server fail closed).
    pub server: Option<Server>,
    /// `certs` output (in `certs/`): `ca.crt`, `tls.crt`, `tls.key`, the generated overlay.
    pub certs: tempfile::TempDir,
    /// The admission objects applied, deleted on drop (the chain is plain again).
    _installed: InstalledAdmission<'a>,
    _secret: SecretDir,
}

impl<'a> InstalledWebhook<'a> {
    /// Issues a certificate with `certs`, starts `serve` with it (plus `serve_args`), applies
    /// `base` (a kustomization, e.g. `manifests`) through the `certs` overlay (see the module).
    pub fn install(cluster: &'a AdmissionGuard, base: &Path, serve_args: &[&str]) -> Self {
        let certs = tempfile::tempdir().expect("tempdir");
        let dir = certs.path().join("certs");
        run_certs(&dir, base, &["--extra-san", "127.0.0.1,localhost"]);
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("certs {f}: {e}"))
        };
        let secret = SecretDir::from_pem(&read("tls.crt"), &read("tls.key"));
        let bin = crate::bin::path("status-reporter-webhook");
        let server = Server::start(&bin, &secret, serve_args, Duration::from_secs(30));

        // Only clientConfig changes, entry by entry.
        let mut objects = cluster.kustomize(&dir);
        let mut hooks = 0;
        for obj in objects
            .iter_mut()
            .filter(|o| o["kind"] == "MutatingWebhookConfiguration")
        {
            for hook in obj["webhooks"].as_array_mut().into_iter().flatten() {
                let config = hook["clientConfig"].as_object_mut().expect("clientConfig");
                let service = config.remove("service").unwrap_or_default();
                let path = service["path"].as_str().unwrap_or("/mutate");
                let url = format!("https://127.0.0.1:{}{path}", server.addr.port());
                config.insert("url".into(), json!(url));
                hooks += 1;
            }
        }
        assert!(hooks > 0, "{}: no webhook", base.display());
        let installed = InstalledAdmission::track(cluster, &objects);
        let (ok, out, err) = cluster.apply(&objects, false);
        assert!(
            ok,
            "kubectl apply (shipped manifests, loopback clientConfig): {err}\n{out}"
        );
        InstalledWebhook {
            server: Some(server),
            certs,
            _installed: installed,
            _secret: secret,
        }
    }

    /// The webhook's `/metrics` text, scraped over TLS (trusting the `certs` CA).
    pub async fn metrics(&self) -> String {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let server = self.server.as_ref().expect("the webhook runs");
        let ca = self.certs.path().join("certs/ca.crt");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&ca).expect("ca.crt"))
            .expect("the CA");
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let scrape = async {
            let tls = connect(server.addr, Arc::new(config))
                .await
                .expect("connect");
            request(tls, "GET", "/metrics", Vec::new()).await
        };
        let (status, text) = tokio::time::timeout(Duration::from_secs(10), scrape)
            .await
            .expect("scrape /metrics within 10 s");
        let text = String::from_utf8_lossy(&text).into_owned();
        assert_eq!(status, 200, "/metrics: {text}");
        text
    }

    /// The sum of `status_reporter_webhook_admission_requests_total` over all labels.
    pub async fn reviews(&self) -> u64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with("status_reporter_webhook_admission_requests_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// Stops `serve` (SIGTERM, bounded wait).
    pub fn stop_server(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.signal("-TERM");
            server.wait_exit(Duration::from_secs(30));
        }
    }
}

/// The workspace's `manifests/` directory.
pub fn manifests() -> PathBuf {
    super::binaries::workspace_root().join("manifests")
}

/// `status-reporter-webhook certs --out-dir out --kustomize-base base` plus `args`; panics
/// with its message.
pub(crate) fn run_certs(out: &Path, base: &Path, args: &[&str]) {
    let (ok, _, err) = run(
        std::process::Command::new(crate::bin::path("status-reporter-webhook"))
            .args(["certs", "--log-format", "text", "--out-dir"])
            .arg(out)
            .arg("--kustomize-base")
            .arg(base)
            .args(args),
        None,
    );
    assert!(ok, "status-reporter-webhook certs: {err}");
}
