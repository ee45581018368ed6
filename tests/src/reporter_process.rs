//! Running the real `status-reporter` binary against the stand-in.
//!
//! [`reporter_command`] builds its command with a clean environment (the test runner's
//! reporter env vars cannot leak in); [`Reporter`] is the running process, with its stderr lines
//! observable as they arrive ([`Logs::wait_for`]), a bounded wait for its exit and signals
//! (SIGTERM, SIGINT); [`Rig`] is a stand-in holding one Job and its running pod, plus a results
//! directory and a kubeconfig, ready to start the sidecar against. Every wait is bounded and
//! waits on the event itself (a log line, an exit, a stand-in change) — never a sleep.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::StandIn;
use crate::fixtures::{JobBuilder, PodBuilder};
pub use crate::logs::Logs;
use crate::process::Process;

/// Env vars the reporter reads (every [`contract::Setting`]); [`reporter_command`] clears them
/// so the test runner's environment cannot leak in.
pub fn reporter_vars() -> impl Iterator<Item = &'static str> {
    contract::Setting::ALL.iter().map(|s| s.env())
}

/// The sidecar command of `bin` (a `status-reporter` binary) for pod `namespace/pod` of Job
/// `job`, reading `results_path`, with a clean environment: [`reporter_vars`] cleared, then
/// `KUBECONFIG`, `JOB_NAME`, `JOB_NAMESPACE`, `POD_NAME`, `RESULTS_PATH`, `LOG_LEVEL=debug` and
/// `SIDECAR_MODE=classic` set. Callers override any of them with [`Command::env`].
pub fn reporter_command(
    bin: &Path,
    kubeconfig: &Path,
    namespace: &str,
    job: &str,
    pod: &str,
    results_path: &Path,
) -> Command {
    let mut cmd = Command::new(bin);
    for var in reporter_vars() {
        cmd.env_remove(var);
    }
    cmd.env("KUBECONFIG", kubeconfig)
        .env("JOB_NAME", job)
        .env("JOB_NAMESPACE", namespace)
        .env("POD_NAME", pod)
        .env("RESULTS_PATH", results_path)
        .env("LOG_LEVEL", "debug")
        .env("SIDECAR_MODE", "classic");
    cmd
}

/// A running reporter process (stdin and stdout null, stderr captured into [`Reporter::logs`]);
/// killed on drop if still running.
pub struct Reporter {
    /// Its stderr, line by line.
    pub logs: Logs,
    process: Process,
}

impl Reporter {
    /// Starts `cmd` (see [`reporter_command`]); panics if it cannot be started.
    pub fn spawn(mut cmd: Command) -> Reporter {
        let process = Process::spawn(cmd.stdout(Stdio::null()), "status-reporter");
        Reporter {
            logs: process.logs.clone(),
            process,
        }
    }

    /// The process id (e.g. to read `/proc/<pid>`).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Sends a signal (see [`Process::signal`]).
    pub fn signal(&self, sig: &str) {
        self.process.signal(sig);
    }

    /// Waits (bounded) for the process to exit; returns its exit code. Panics with the logs
    /// if it does not exit in time or dies by a signal. Afterwards `logs` holds all of stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        self.process
            .wait_exit(timeout)
            .code()
            .unwrap_or_else(|| panic!("killed by a signal; logs:\n{}", self.logs.text()))
    }

    /// [`Reporter::wait_exit`], returning all of stderr too.
    pub fn wait_exit_with_logs(&mut self, timeout: Duration) -> (i32, String) {
        let code = self.wait_exit(timeout);
        (code, self.logs.text())
    }

    /// Whether the process has not exited yet (does not wait).
    pub fn still_running(&mut self) -> bool {
        self.process.still_running()
    }
}

/// How many pod watches the stand-in has answered 200 so far.
pub fn pod_watches(api: &StandIn) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.watch && r.path.ends_with("/pods") && r.status == 200)
        .count()
}

/// A stand-in with a Job and its pod (phase Running, container `adapter` running), a results
/// directory and a kubeconfig; the files live as long as the rig.
pub struct Rig {
    /// The API stand-in.
    pub api: StandIn,
    /// The temporary directory holding `results/` and the kubeconfig.
    pub dir: tempfile::TempDir,
    /// The results directory (`RESULTS_PATH` is `results/adapter-result.json`).
    pub results: PathBuf,
    /// The kubeconfig pointing at the stand-in.
    pub kubeconfig: PathBuf,
    namespace: String,
    job: String,
    pod: String,
}

impl Rig {
    /// Job `namespace/job` and pod `namespace/pod` with containers `adapter` and
    /// `status-reporter` (a classic sidecar).
    pub fn new(namespace: &str, job: &str, pod: &str) -> Rig {
        Rig::with(
            namespace,
            job,
            pod,
            JobBuilder::new(namespace, job),
            PodBuilder::new(namespace, pod)
                .job_name(job)
                .container("adapter")
                .container("status-reporter"),
        )
    }

    /// Creates `job_spec` and `pod_spec` as given (their names must be `job` and `pod` in
    /// `namespace`, the pod must have an `adapter` container), then sets the pod Running and
    /// its adapter running.
    pub fn with(
        namespace: &str,
        job: &str,
        pod: &str,
        job_spec: JobBuilder,
        pod_spec: PodBuilder,
    ) -> Rig {
        let api = StandIn::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let results = dir.path().join("results");
        std::fs::create_dir(&results).expect("results dir");
        let kubeconfig = api.write_kubeconfig(dir.path());
        api.create_job(job_spec.build());
        api.create_pod(pod_spec.build());
        api.set_pod_phase(namespace, pod, "Running", None, None);
        api.set_container_running(namespace, pod, "adapter");
        Rig {
            api,
            dir,
            results,
            kubeconfig,
            namespace: namespace.to_owned(),
            job: job.to_owned(),
            pod: pod.to_owned(),
        }
    }

    /// `RESULTS_PATH`: `adapter-result.json` in the results directory.
    pub fn result_path(&self) -> PathBuf {
        self.results.join("adapter-result.json")
    }

    /// The reporter's command for this rig ([`reporter_command`] with the rig's kubeconfig,
    /// names and result path), then `env` on top.
    pub fn command(&self, env: &[(&str, &str)]) -> Command {
        let mut cmd = reporter_command(
            &crate::bin::path("status-reporter"),
            &self.kubeconfig,
            &self.namespace,
            &self.job,
            &self.pod,
            &self.result_path(),
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the reporter with `env` on top of [`Rig::command`] and waits (bounded by
    /// `timeout`) until its pod watch is open — it is then fully set up.
    pub fn start(&self, env: &[(&str, &str)], timeout: Duration) -> Reporter {
        let r = Reporter::spawn(self.command(env));
        self.wait_pod_watches(1, timeout);
        r
    }

    /// Waits (bounded) until at least `n` pod watches have been answered 200.
    pub fn wait_pod_watches(&self, n: usize, timeout: Duration) {
        self.api
            .wait_for_blocking(&format!("{n} pod watch(es)"), timeout, |s| {
                (pod_watches(s) >= n).then_some(())
            });
    }

    /// Writes the result file in place.
    pub fn write_result(&self, body: &str) {
        std::fs::write(self.result_path(), body).expect("write result");
    }

    /// Waits (bounded) for the Job's condition `type_` and returns it.
    pub fn condition(&self, type_: &str, timeout: Duration) -> Value {
        self.api
            .wait_for_blocking(&format!("condition {type_}"), timeout, |s| {
                s.job_condition(&self.namespace, &self.job, type_)
            })
    }
}
