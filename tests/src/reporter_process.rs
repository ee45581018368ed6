//! The real `status-reporter` as a process under test ([`Reporter`]), and [`Rig`]: an adapter
//! Job on the real API server whose pod the test runs (playing the kubelet), the reporter's
//! ServiceAccount reaching the API server through a [`FaultProxy`] the test scripts.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::batch::v1::JobCondition;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use crate::control_plane::Cluster;
use crate::control_plane::adapter::{AdapterNamespace, adapter_namespace, example_job};
use crate::control_plane::kubelet;
use crate::fault_proxy::{FaultProxy, Route};
use crate::process::Process;

/// How long a [`Rig`] waits for anything.
pub const WAIT: Duration = Duration::from_secs(30);

/// Env vars the reporter reads (every [`contract::Setting`]); cleared before a reporter runs,
/// so the test runner's environment cannot leak in.
pub fn reporter_vars() -> impl Iterator<Item = &'static str> {
    contract::Setting::ALL.iter().map(|s| s.env())
}

/// A running reporter: a [`Process`] (stdin and stdout null, stderr in `logs`) whose exit is
/// its code; killed on drop if still running.
pub struct Reporter(Process);

impl std::ops::Deref for Reporter {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.0
    }
}

impl std::ops::DerefMut for Reporter {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.0
    }
}

impl Reporter {
    /// Starts `cmd`; panics if it cannot be started.
    pub fn spawn(mut cmd: Command) -> Reporter {
        Reporter(Process::spawn(cmd.stdout(Stdio::null()), "status-reporter"))
    }

    /// Waits (bounded) for the process to exit; returns its exit code. Panics with the logs
    /// if it does not exit in time or dies by a signal. Afterwards `logs` holds all of stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        self.0
            .wait_exit(timeout)
            .code()
            .unwrap_or_else(|| panic!("killed by a signal; logs:\n{}", self.logs.text()))
    }

    /// [`Reporter::wait_exit`], returning all of stderr too.
    pub fn wait_exit_with_logs(&mut self, timeout: Duration) -> (i32, String) {
        let code = self.wait_exit(timeout);
        (code, self.logs.text())
    }
}

/// An injected example Job in a namespace of its own, its pod running, an empty results
/// directory, and a proxy in front of the API server for the reporter.
pub struct Rig {
    /// The namespace: admin client, scratch space, and the ServiceAccount's kubeconfig
    /// (through [`Rig::proxy`]).
    pub ns: AdapterNamespace,
    /// Between the reporter and the API server.
    pub proxy: FaultProxy,
    /// The Job's name.
    pub job: String,
    /// The pod, as it was when it started running.
    pub pod: Pod,
    /// The results directory.
    pub results: PathBuf,
}

impl Rig {
    /// Job `name` injected in sidecar `mode` (`classic` or `native`).
    pub async fn new(name: &str, mode: &str) -> Rig {
        Rig::with(name, example_job(name, mode, &[])).await
    }

    /// `job` (from [`example_job`] or `shaped_job`, named `name`) created, its pod running.
    pub async fn with(name: &str, job: Value) -> Rig {
        let cluster = Cluster::shared();
        let mut ns = adapter_namespace(cluster, name).await;
        let proxy = FaultProxy::start(cluster);
        ns.kubeconfig = proxy.kubeconfig(&ns.kubeconfig);
        ns.create_job(job).await;
        let (pod, results) = ns.running_pod(name, WAIT).await;
        Rig {
            ns,
            proxy,
            job: name.to_owned(),
            pod,
            results,
        }
    }

    /// The pod's name.
    pub fn pod_name(&self) -> &str {
        self.pod.metadata.name.as_deref().expect("a pod name")
    }

    /// The reporter's command: the env its container gets on this pod, through the proxy,
    /// with `env` on top.
    pub fn command(&self, env: &[(&str, &str)]) -> Command {
        let bin = crate::bin::path("status-reporter");
        self.ns
            .reporter_command(&bin, &self.pod, &self.results, env)
    }

    /// Starts the reporter with `env` and waits until its pod watch is open: it is then set up.
    pub async fn start(&self, env: &[(&str, &str)]) -> Reporter {
        let reporter = Reporter::spawn(self.command(env));
        self.wait_pod_watches(1).await;
        reporter
    }

    /// The reporter's pod watch.
    pub fn pod_watch(&self) -> Route {
        Route::new("GET", &format!("/namespaces/{}/pods", self.ns.name)).query("watch=true")
    }

    /// Waits until `n` pod watches have been answered 200.
    pub async fn wait_pod_watches(&self, n: usize) {
        self.proxy
            .wait_answered(self.pod_watch(), 200, n, WAIT)
            .await;
    }

    /// The Job's status subresource, as a route.
    pub fn job_status(&self, method: &str) -> Route {
        Route::new(method, &format!("/jobs/{}/status", self.job))
    }

    /// The codes answered to `route`, in order.
    pub fn answers(&self, route: Route) -> Vec<u16> {
        let on = self.proxy.requests_on(route);
        on.iter().map(|r| r.status).collect()
    }

    /// `RESULTS_PATH`.
    pub fn result_path(&self) -> PathBuf {
        self.results.join("adapter-result.json")
    }

    /// Writes the result file in place.
    pub fn write_result(&self, body: &str) {
        std::fs::write(self.result_path(), body).expect("write result");
    }

    /// Waits (bounded) for the Job's condition `type_` and returns it.
    pub async fn condition(&self, type_: &str) -> JobCondition {
        self.ns.wait_condition(&self.job, type_, WAIT).await
    }

    /// The adapter terminates (the kubelet's write).
    pub async fn terminate(&self, code: i32, reason: &str, message: Option<&str>) {
        let (client, ns, pod) = (&self.ns.client, &self.ns.name, self.pod_name());
        kubelet::terminate(client, ns, pod, "adapter", code, reason, message).await;
    }

    /// The adapter waits with `reason` and `message` (the kubelet's write).
    pub async fn waiting(&self, reason: &str, message: &str) {
        let (client, ns) = (&self.ns.client, &self.ns.name);
        kubelet::waiting(client, ns, self.pod_name(), "adapter", reason, message).await;
    }
}
