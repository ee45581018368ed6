//! The webhook deployed as users deploy it, on the test node: the shipped kustomization through
//! the overlay `status-reporter-webhook certs` writes, applied with kubectl; the Deployment
//! controllers make its pod, the kubelet runs its image, the API server calls its Service.
//!
//! Changed for the node, and nothing else: one replica on it (`nodeName`, the host network, so
//! Pod Security `restricted` only warns), the node's images, and the call kept on loopback: an
//! explicit cluster IP in the loopback service network, port 8443 (no kube-proxy: the API
//! server dials it itself; a non-root process cannot listen on 443), where the webhook and its
//! probes listen.

use serde_json::{Value, json};

use super::{AdmissionGuard, Cluster, images, node};

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
        super::webhook::run_certs(&dir, &super::webhook::manifests(), &[]);
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
