//! [`Cluster`]: what a test sees of the shared control plane.

use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Release, binaries, components, supervisor};

/// The shared control plane, as one test process sees it.
pub struct Cluster {
    /// Which release runs.
    pub release: Release,
    /// The run directory (kubeconfig, PKI, component logs).
    pub run_dir: PathBuf,
    /// Admin (`system:masters`) kubeconfig.
    pub kubeconfig: PathBuf,
    /// The directory with `kubectl` & co.
    pub bin_dir: PathBuf,
    /// Held for the life of the process: its end tells the supervisor we are gone.
    _connection: UnixStream,
    /// Whether the images under test are on the node (see [`Cluster::node`]).
    node_images: OnceLock<Result<(), String>>,
}

impl Cluster {
    /// The control plane of `STATUS_REPORTER_K8S_RELEASE` (`current` unless `oldest`), joined
    /// (or started) once per process. Panics when it cannot start, also outside CI (a suite on
    /// the real API server never passes by skipping), naming why and, when the binaries are
    /// missing, the command that builds them.
    pub fn shared() -> &'static Cluster {
        static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
        Cluster::get(&CLUSTER, "shared")
    }

    /// Exclusive use of a second control plane for tests that change cluster-wide admission
    /// (webhook configurations, admission policies), which every other test's Jobs would go
    /// through: they take turns on it (a lock file held until the guard drops) and clean up
    /// what they installed before.
    pub fn admission() -> AdmissionGuard {
        static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
        let cluster = Cluster::get(&CLUSTER, "admission");
        let state = supervisor::state_dir(cluster.release, "admission");
        let lock =
            supervisor::lock(&state.join("admission.lock")).unwrap_or_else(|e| panic!("{e}"));
        AdmissionGuard {
            cluster,
            _lock: lock,
        }
    }

    fn get(cell: &'static OnceLock<Result<Cluster, String>>, profile: &str) -> &'static Cluster {
        let result = cell.get_or_init(|| {
            let release = std::env::var("STATUS_REPORTER_K8S_RELEASE")
                .map_or(Ok(Release::Current), |r| {
                    clap::ValueEnum::from_str(&r, false)
                })
                .map_err(|e| format!("STATUS_REPORTER_K8S_RELEASE: {e}"))?;
            Cluster::connect(release, profile)
        });
        (result.as_ref()).unwrap_or_else(|e| panic!("cannot start the real control plane: {e}"))
    }

    /// Joins (or starts) the control plane of `release` and `profile`; for tools that report
    /// errors themselves. Tests use [`Cluster::shared`] or [`Cluster::admission`].
    pub fn connect(release: Release, profile: &str) -> Result<Cluster, String> {
        let (connection, run_dir) = supervisor::connect(release, profile)?;
        Ok(Cluster {
            release,
            kubeconfig: run_dir.join("kubeconfig"),
            bin_dir: binaries::bin_dir(release)?,
            run_dir,
            _connection: connection,
            node_images: OnceLock::new(),
        })
    }

    /// This cluster, its node ready to run pods from the images under test (`localhost/…`):
    /// built when a source changed since, imported into the node when it lacks them — once per
    /// process. Panics saying why when it cannot (the oldest release has no node).
    pub fn node(&self) -> &Cluster {
        let ready = self.node_images.get_or_init(|| match self.release {
            Release::Current => super::images::import(&self.run_dir),
            Release::Oldest => Err("the oldest release runs without a node".into()),
        });
        if let Err(e) = ready {
            panic!("the test node cannot run our images: {e}");
        }
        self
    }

    /// An admin client (a new one per call: each test runs its own tokio runtime).
    pub async fn client(&self) -> kube::Client {
        components::admin_client(&self.kubeconfig)
            .await
            .unwrap_or_else(|e| panic!("admin client: {e}"))
    }

    /// A client tool (`kubectl`, `helm`) as admin: the current release's also for the oldest
    /// (kubectl's supported skew covers it, and the oldest build has no clients).
    pub fn command(&self, name: &str) -> Command {
        let tools = binaries::bin_dir(Release::Current)
            .unwrap_or_else(|e| panic!("the control plane's client tools: {e}"));
        let mut cmd = Command::new(tools.join(name));
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Runs `kubectl args…` as admin (stdin from `input` if given); returns (success, stdout,
    /// stderr). Bounded: a hung request fails the test instead of hanging it.
    pub fn kubectl_run(&self, args: &[&str], input: Option<&str>) -> (bool, String, String) {
        let mut kubectl = self.command("kubectl");
        run(kubectl.arg("--request-timeout=60s").args(args), input)
    }

    /// A new namespace for one test, named `<prefix>-<random>`, with `labels`; returns its name
    /// once its `default` ServiceAccount exists (pods cannot be created before).
    pub async fn namespace(
        &self,
        client: &kube::Client,
        prefix: &str,
        labels: &[(&str, &str)],
    ) -> String {
        let api: Api<Namespace> = Api::all(client.clone());
        let labels: BTreeMap<_, _> = labels.iter().copied().collect();
        let ns = json!({"metadata": {"generateName": format!("{prefix}-"), "labels": labels}});
        let ns: Namespace = serde_json::from_value(ns).expect("a Namespace");
        let created = api.create(&PostParams::default(), &ns).await;
        let name = created
            .unwrap_or_else(|e| panic!("create namespace {prefix}-*: {e}"))
            .name_any();
        if self.release == Release::Current {
            let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
            super::wait_object(sas, "default", Duration::from_secs(60), |_| true)
                .await
                .unwrap_or_else(|e| panic!("namespace {name}: no default ServiceAccount: {e}"));
        }
        name
    }

    /// Writes a kubeconfig in `dir` that authenticates as ServiceAccount `namespace/name` with
    /// a token from the TokenRequest API (one hour), as a pod's projected token would.
    pub async fn service_account_kubeconfig(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
        dir: &Path,
    ) -> PathBuf {
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let request =
            json!({"spec": {"audiences": [components::ISSUER], "expirationSeconds": 3600}});
        let token: TokenRequest = sas
            .create_subresource("token", name, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"));
        let token =
            json!({"token": token.status.expect("a TokenRequest answer has a status").token});
        let (server, ca) = (self.server(), self.ca_file());
        let text = components::kubeconfig_text(&server, &ca, name, token, namespace);
        let path = dir.join(format!("kubeconfig-{namespace}-{name}"));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// The API server's URL (`https://127.X.Y.1:443`).
    pub fn server(&self) -> String {
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap_or_default();
        let config: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        config["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The CA that signed the API server's certificate, PEM path.
    pub fn ca_file(&self) -> PathBuf {
        self.run_dir.join("pki/ca.crt")
    }
}

/// Exclusive use of the admission control plane (see [`Cluster::admission`]).
pub struct AdmissionGuard {
    cluster: &'static Cluster,
    _lock: std::fs::File,
}

impl std::ops::Deref for AdmissionGuard {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        self.cluster
    }
}

/// A cleanup that failed on drop: a panic, unless the thread is panicking already (then the
/// failure is only said), so the test that left something behind fails.
pub(crate) fn cleanup_failed(e: String) {
    if std::thread::panicking() {
        eprintln!("cleanup: {e}");
    } else {
        panic!("cleanup: {e}");
    }
}

/// Runs `cmd` with `input` on stdin (from a temporary file: no pipe to keep fed); returns
/// (success, stdout, stderr).
pub(crate) fn run(cmd: &mut Command, input: Option<&str>) -> (bool, String, String) {
    use std::io::{Seek, Write};
    if let Some(input) = input {
        let mut file = tempfile::tempfile().expect("a temporary file");
        (file.write_all(input.as_bytes()))
            .and_then(|()| file.rewind())
            .expect("stdin written to a temporary file");
        cmd.stdin(file);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One request from the API server's audit log.
#[derive(Debug, Clone)]
pub struct AuditedRequest {
    /// `get`, `list`, `watch`, `update`, `patch`, `create`, …
    pub verb: String,
    /// The request URI.
    pub uri: String,
    /// The API group (`""` for the core group).
    pub api_group: String,
    /// The resource, with its subresource (`jobs/status`).
    pub resource: String,
    /// The response code.
    pub code: u16,
    /// When the API server received it.
    pub received: jiff::Timestamp,
}

impl Cluster {
    /// The requests ServiceAccount `namespace/name` made so far, from the audit log (one event
    /// per request, at its end: a watch appears once it is closed).
    pub fn audited_requests(&self, namespace: &str, name: &str) -> Vec<AuditedRequest> {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let text =
            std::fs::read_to_string(self.run_dir.join(components::AUDIT_LOG)).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["user"]["username"] == user.as_str())
            .map(|e| {
                let object = &e["objectRef"];
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                let mut resource = text(&object["resource"]);
                if let Some(sub) = object["subresource"].as_str() {
                    resource = format!("{resource}/{sub}");
                }
                AuditedRequest {
                    verb: text(&e["verb"]),
                    uri: text(&e["requestURI"]),
                    api_group: text(&object["apiGroup"]),
                    resource,
                    code: e["responseStatus"]["code"].as_u64().unwrap_or_default() as u16,
                    received: text(&e["requestReceivedTimestamp"])
                        .parse()
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Process ids of etcd, kube-apiserver, then (if they run) kube-controller-manager and the
    /// node's first process.
    pub fn component_pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.run_dir.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}
