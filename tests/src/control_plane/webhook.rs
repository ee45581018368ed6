//! The real webhook installed on the admission control plane ([`InstalledWebhook`]): its
//! certificate from `certs`, `serve` on loopback, and the shipped kustomization applied with
//! only each webhook entry's `clientConfig` pointed there. Dropped, it is uninstalled and the
//! chain plain again.
//!
//! Or deployed as users deploy it, on the test node ([`DeployedWebhook`]): the shipped
//! kustomization through the overlay `certs` writes, applied with kubectl; the Deployment
//! controllers make its pod, the kubelet runs its image, the API server calls its Service.
//! Changed for the node, and nothing else: one replica on it (`nodeName`, the host network, so
//! Pod Security `restricted` only warns), the node's images, and the call kept on loopback: an
//! explicit cluster IP in the loopback service network, port 8443 (no kube-proxy: the API
//! server dials it itself; a non-root process cannot listen on 443), where the webhook and its
//! probes listen.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::admission_chain::InstalledAdmission;
use super::cluster::run;
use super::{AdmissionGuard, Cluster, images, node};
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

/// The namespace of the shipped manifests.
const NAMESPACE: &str = "status-reporter-system";

/// The webhook running on the node; dropping it deletes what was applied.
pub struct DeployedWebhook<'a> {
    cluster: &'a AdmissionGuard,
    /// The objects applied.
    objects: Vec<Value>,
    _certs: tempfile::TempDir,
}

impl<'a> DeployedWebhook<'a> {
    /// Applies the shipped manifests (`manifests/`) changed as above and waits (bounded, with
    /// `kubectl rollout status`) until the webhook's pod is ready.
    pub fn deploy(cluster: &'a AdmissionGuard) -> Self {
        cluster.node();
        let ip = service_ip(cluster);
        let certs = tempfile::tempdir().expect("tempdir");
        let dir = certs.path().join("certs");
        run_certs(&dir, &manifests(), &[]);
        let mut objects = cluster.kustomize(&dir);
        for object in &mut objects {
            on_node(object, &ip);
        }
        let (ok, out, err) = cluster.apply(&objects, false);
        assert!(
            ok,
            "kubectl apply (the shipped manifests on the node): {err}\n{out}"
        );
        let deployed = DeployedWebhook {
            cluster,
            objects,
            _certs: certs,
        };
        let (ok, out, err) = cluster.kubectl_run(
            &[
                "-n",
                NAMESPACE,
                "rollout",
                "status",
                "deployment/status-reporter-webhook",
                "--timeout=120s",
            ],
            None,
        );
        assert!(ok, "the webhook's rollout: {err}\n{out}");
        deployed
    }
}

/// The change of one rendered object for the node (see the module doc).
fn on_node(object: &mut Value, ip: &str) {
    let listen = format!("{ip}:8443");
    match object["kind"].as_str().unwrap_or_default() {
        "Deployment" => {
            object["spec"]["replicas"] = json!(1);
            let spec = &mut object["spec"]["template"]["spec"];
            spec["nodeName"] = json!(node::NAME);
            spec["hostNetwork"] = json!(true);
            for c in spec["containers"].as_array_mut().into_iter().flatten() {
                c["image"] = json!(images::webhook());
                c["imagePullPolicy"] = json!("Never");
                for var in c["env"].as_array_mut().into_iter().flatten() {
                    match var["name"].as_str() {
                        Some("LISTEN") => var["value"] = json!(listen),
                        Some("REPORTER_IMAGE") => var["value"] = json!(images::reporter()),
                        Some("REPORTER_IMAGE_PULL_POLICY") => var["value"] = json!("Never"),
                        _ => {}
                    }
                }
                for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                    if c[probe]["httpGet"].is_object() {
                        c[probe]["httpGet"]["host"] = json!(ip);
                        c[probe]["httpGet"]["port"] = json!(8443);
                    }
                }
            }
        }
        "Service" => {
            object["spec"]["clusterIP"] = json!(ip);
            for port in object["spec"]["ports"].as_array_mut().into_iter().flatten() {
                port["port"] = json!(8443);
            }
        }
        "Namespace" => {
            // `restricted` forbids the host network: warned about, not enforced.
            if let Some(labels) = object["metadata"]["labels"].as_object_mut() {
                labels.remove("pod-security.kubernetes.io/enforce");
                labels.remove("pod-security.kubernetes.io/enforce-version");
            }
        }
        "MutatingWebhookConfiguration" => {
            for hook in object["webhooks"].as_array_mut().into_iter().flatten() {
                hook["clientConfig"]["service"]["port"] = json!(8443);
            }
        }
        _ => {}
    }
}

/// `127.X.Y.10` in the loopback service network the API server has the first address of.
fn service_ip(cluster: &Cluster) -> String {
    let server = cluster.server();
    let host = server.trim_start_matches("https://").split(':').next();
    let (net, _) = host
        .and_then(|h| h.rsplit_once('.'))
        .expect("an IPv4 API server");
    format!("{net}.10")
}

impl Drop for DeployedWebhook<'_> {
    fn drop(&mut self) {
        // The webhook configurations first, so no Job creation waits on a webhook going away;
        // the namespace takes the pod with it.
        let mut objects = self.objects.clone();
        objects.sort_by_key(|o| o["kind"] != "MutatingWebhookConfiguration");
        let _ = self.cluster.kubectl_run(
            &["delete", "-f", "-", "--ignore-not-found", "--timeout=120s"],
            Some(&super::objects::list(&objects)),
        );
    }
}
