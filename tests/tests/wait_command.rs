//! `status-reporter wait job/NAME` on the real API server: the real binary as a CI pipeline's
//! ServiceAccount (allowed to get, list and watch Jobs, through the fault proxy), one watch on
//! the Job; the condition written as a reporter would, the Job's own `Complete`/`Failed` by
//! the real Job controller (the test plays the kubelet). Every exit code (0 True, 1 False once
//! the Job finished or when it failed without the condition, 3 timeout, 2 missing Job or
//! forbidden), progress on stderr, and `-o json` checked against
//! `schema/wait-output.schema.json`. Waits are on the proxy's request log, the Job and the
//! process's exit, bounded — never a sleep.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::control_plane::adapter::{condition, set_job_condition};
use harness::control_plane::{Cluster, kubelet};
use harness::fault_proxy::{FaultProxy, Route};
use harness::process::Process;
use harness::reporter_process::reporter_vars;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const JOB: &str = "dns-check";
const WAIT: Duration = Duration::from_secs(30);

/// A namespace with Job `dns-check` (one pod, `backoffLimit: 0`, plus `spec`), a `ci`
/// ServiceAccount allowed to get, list and watch Jobs there, and its kubeconfig through a
/// proxy.
struct Rig {
    ns: String,
    client: kube::Client,
    proxy: FaultProxy,
    dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
}

impl Rig {
    async fn new(prefix: &str, spec: Value) -> Rig {
        let cluster = Cluster::shared();
        let client = cluster.client().await;
        let ns = cluster.namespace(&client, prefix, &[]).await;
        let meta = |name: &str| json!({"name": name, "namespace": ns});
        let (ok, _, err) = cluster.apply(
            &[
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("ci")}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta("wait"),
                    "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]}]}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta("wait"),
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "wait"},
                    "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": ns}]}),
            ],
            false,
        );
        assert!(ok, "{err}");
        let mut job = json!({"metadata": {"name": JOB}, "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "adapter", "image": "busybox"}]}}}});
        for (k, v) in spec.as_object().expect("spec fields") {
            job["spec"][k] = v.clone();
        }
        let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
        let job = serde_json::from_value(job).expect("a Job");
        jobs.create(&PostParams::default(), &job)
            .await
            .expect("create Job");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = cluster
            .service_account_kubeconfig(&client, &ns, "ci", dir.path())
            .await;
        let proxy = FaultProxy::start(cluster);
        let kubeconfig = proxy.kubeconfig(&kubeconfig);
        Rig {
            ns,
            client,
            proxy,
            dir,
            kubeconfig,
        }
    }

    /// Starts `status-reporter wait job/dns-check` with `args` (stdout piped).
    fn start(&self, args: &[&str]) -> Process {
        let mut cmd = command(&self.kubeconfig, &self.ns, JOB, args);
        Process::spawn(cmd.stdout(Stdio::piped()), "status-reporter wait")
    }

    /// [`Rig::start`], then waits until its watch on the Job is open (so what the test writes
    /// next arrives as a change).
    async fn start_watching(&self, args: &[&str]) -> Process {
        let p = self.start(args);
        let watch = Route::new("GET", "/jobs").query("watch=true");
        self.proxy.wait_answered(watch, 200, 1, WAIT).await;
        p
    }

    /// Writes our condition on the Job, as the reporter would.
    async fn set(&self, condition: Value) {
        set_job_condition(&self.client, &self.ns, JOB, condition).await;
    }

    /// The kubelet ends the Job's pod in `phase`; waits for the Job controller's verdict.
    async fn finish(&self, phase: &str, verdict: &str) {
        let pod = kubelet::wait_for_pods(&self.client, &self.ns, JOB, 1, WAIT)
            .await
            .remove(0);
        let name = pod.metadata.name.expect("pod name");
        kubelet::finish(&self.client, &self.ns, &name, phase).await;
        self.wait_job(verdict).await;
    }

    async fn wait_job(&self, type_: &str) -> Job {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.ns);
        let done = kube::runtime::wait::await_condition(jobs, JOB, |j: Option<&Job>| {
            j.and_then(|j| condition(j, type_)).is_some()
        });
        let job = tokio::time::timeout(WAIT, done)
            .await
            .expect("in time")
            .expect("watch");
        job.expect("the Job")
    }
}

fn command(kubeconfig: &Path, ns: &str, job: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(harness::bin::path("status-reporter"));
    for var in reporter_vars().chain(["WAIT_NAMESPACE", "WAIT_TIMEOUT", "WAIT_OUTPUT"]) {
        cmd.env_remove(var);
    }
    cmd.env("KUBECONFIG", kubeconfig)
        .args(["wait", &format!("job/{job}"), "-n", ns])
        .args(args);
    cmd
}

/// Waits for the exit; returns (code, stdout, stderr).
fn finish(mut p: Process) -> (i32, String, String) {
    let code = p.wait_exit(WAIT).code().expect("exited");
    let mut out = String::new();
    if let Some(mut stdout) = p.take_stdout() {
        stdout.read_to_string(&mut out).unwrap();
    }
    (code, out, p.logs.text())
}

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-11-30T10:00:00Z"})
}

fn check_schema(out: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/wait-output.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let schema = jsonschema::validator_for(&schema).expect("schema compiles");
    let value: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let errors: Vec<String> = schema.iter_errors(&value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{value}: {errors:?}");
    value
}

#[tokio::test]
async fn true_exits_0_after_progress_on_stderr() {
    let rig = Rig::new("wait-true", json!({})).await;
    let p = rig.start_watching(&[]).await;
    rig.set(cond(
        "Available",
        "Unknown",
        "AwaitingResults",
        "1/3 indexes reported",
    ))
    .await;
    rig.set(cond(
        "Available",
        "Unknown",
        "AwaitingResults",
        "2/3 indexes reported",
    ))
    .await;
    rig.set(cond(
        "Available",
        "True",
        "Ok",
        "3/3 indexes succeeded: fine",
    ))
    .await;
    let (code, out, err) = finish(p);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Available=True Ok: 3/3 indexes succeeded: fine\n");
    assert!(
        err.contains("Available=Unknown AwaitingResults: 1/3 indexes reported")
            && err.contains("Available=Unknown AwaitingResults: 2/3 indexes reported"),
        "{err}"
    );
    let watches = rig.proxy.requests().iter().filter(|r| r.watch).count();
    assert_eq!(watches, 1, "one watch, no polling");
}

#[tokio::test]
async fn false_exits_1_once_the_job_finished_and_json_matches_the_schema() {
    let rig = Rig::new("wait-false", json!({})).await;
    let p = rig.start_watching(&["-o", "json"]).await;
    rig.set(cond("Available", "False", "DnsMissing", "no A record"))
        .await;
    // Not final yet: the Job may retry.
    p.logs.wait_for(&["a retry may still succeed"], WAIT);
    rig.finish("Failed", "Failed").await;
    let (code, out, err) = finish(p);
    assert_eq!(code, 1, "{err}");
    let v = check_schema(&out);
    assert_eq!(
        (&v["status"], &v["reason"], &v["message"], &v["reported"]),
        (
            &json!("False"),
            &json!("DnsMissing"),
            &json!("no A record"),
            &json!(true)
        )
    );
    assert_eq!(v["failed"]["reason"], "BackoffLimitExceeded");
    assert_eq!(v["job"], json!({"namespace": rig.ns, "name": JOB}));
}

#[tokio::test]
async fn true_as_json_matches_the_schema() {
    let rig = Rig::new("wait-json", json!({})).await;
    rig.set(cond(
        "Available",
        "True",
        "ChecksPassed",
        "All checks passed",
    ))
    .await;
    rig.finish("Succeeded", "Complete").await;
    let (code, out, err) = finish(rig.start(&["-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let v = check_schema(&out);
    assert_eq!(v["complete"]["type"], "Complete");
    assert_eq!(v["lastTransitionTime"], "2026-11-30T10:00:00Z");
}

/// The Job fails without our condition: while `wait` watches (the Job's deadline passes once
/// it is resumed), and before `wait` starts.
#[tokio::test]
async fn a_job_that_failed_without_the_condition_fails_fast() {
    let rig = Rig::new(
        "wait-deadline",
        json!({"suspend": true, "activeDeadlineSeconds": 1}),
    )
    .await;
    let p = rig.start_watching(&["-o", "json"]).await;
    let jobs: Api<Job> = Api::namespaced(rig.client.clone(), &rig.ns);
    let resume = Patch::Merge(json!({"spec": {"suspend": false}}));
    jobs.patch(JOB, &PatchParams::default(), &resume)
        .await
        .expect("resume");
    let (code, out, err) = finish(p);
    assert_eq!(code, 1, "{err}");
    let v = check_schema(&out);
    assert_eq!(
        (&v["status"], &v["reported"], &v["reason"]),
        (&json!("False"), &json!(false), &json!("DeadlineExceeded"))
    );

    let rig = Rig::new("wait-failed", json!({})).await;
    rig.finish("Failed", "Failed").await;
    let (code, out, _) = finish(rig.start(&[]));
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "Available not reported: the Job failed: BackoffLimitExceeded: Job has reached the specified backoff limit\n"
    );
}

#[tokio::test]
async fn timeout_exits_3_naming_the_last_progress() {
    let rig = Rig::new("wait-timeout", json!({})).await;
    rig.set(cond(
        "Available",
        "Unknown",
        "AwaitingResults",
        "0/2 indexes reported",
    ))
    .await;
    let (code, out, err) = finish(rig.start(&["--timeout", "1s"]));
    assert_eq!(code, 3, "{err}");
    assert_eq!(out, "");
    let want = format!(
        "timed out after 1s waiting for Available on job {}/{JOB} (last: Available=Unknown AwaitingResults: 0/2 indexes reported)",
        rig.ns
    );
    assert!(err.contains(&want), "{err}");
}

#[tokio::test]
async fn a_missing_job_exits_2_clearly() {
    let rig = Rig::new("wait-missing", json!({})).await;
    let mut cmd = command(&rig.kubeconfig, &rig.ns, "no-such-job", &[]);
    let (code, out, err) = finish(Process::spawn(cmd.stdout(Stdio::piped()), "wait"));
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    let want = format!("status-reporter wait: job {}/no-such-job not found", rig.ns);
    assert!(err.contains(&want), "{err}");
}

/// The namespace's `default` ServiceAccount may not read Jobs: a real 403.
#[tokio::test]
async fn forbidden_exits_2_naming_the_permission() {
    let rig = Rig::new("wait-forbidden", json!({})).await;
    let cluster = Cluster::shared();
    let default =
        cluster.service_account_kubeconfig(&rig.client, &rig.ns, "default", rig.dir.path());
    let kubeconfig = rig.proxy.kubeconfig(&default.await);
    let mut cmd = command(&kubeconfig, &rig.ns, JOB, &[]);
    let (code, _, err) = finish(Process::spawn(cmd.stdout(Stdio::piped()), "wait"));
    assert_eq!(code, 2, "{err}");
    let want = format!(
        "needs verbs list and watch on resource jobs in namespace {}",
        rig.ns
    );
    assert!(err.contains("HTTP 403") && err.contains(&want), "{err}");
}

#[tokio::test]
async fn bad_arguments_exit_2_saying_what_is_accepted() {
    let rig = Rig::new("wait-args", json!({})).await;
    let (code, _, err) = finish(rig.start(&["--timeout", "soon"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("--timeout: must be a positive duration like 90s, 10m or 1h30m"),
        "{err}"
    );
}

/// `rig`'s kubeconfig with `edit` applied (as YAML, written next to it).
fn kubeconfig_with(rig: &Rig, name: &str, edit: impl FnOnce(&mut Value)) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&rig.kubeconfig).expect("kubeconfig");
    let mut config: Value = serde_yaml_ng::from_str(&text).expect("kubeconfig YAML");
    edit(&mut config);
    let path = rig.dir.path().join(name);
    std::fs::write(&path, serde_yaml_ng::to_string(&config).expect("YAML")).expect("write");
    path
}

/// The kubeconfig's credential plugin hangs: kube runs it as a blocking child process, yet
/// `--timeout` still bounds everything `wait` does.
#[tokio::test]
async fn a_hanging_credential_plugin_is_bounded_by_the_timeout() {
    let rig = Rig::new("wait-exec", json!({})).await;
    let pid_file = rig.dir.path().join("plugin.pid");
    let script = format!("echo $$ > {}; exec sleep 60", pid_file.display());
    let kubeconfig = kubeconfig_with(&rig, "exec-kubeconfig", |c| {
        c["users"][0]["user"] = json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "sh",
            "args": ["-c", script], "interactiveMode": "Never"}});
    });
    // The plugin is ours to stop, whatever happens below.
    struct Plugin(std::path::PathBuf);
    impl Drop for Plugin {
        fn drop(&mut self) {
            if let Ok(pid) = std::fs::read_to_string(&self.0) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
    let _plugin = Plugin(pid_file);
    let started = std::time::Instant::now();
    let mut cmd = command(&kubeconfig, &rig.ns, JOB, &["--timeout", "2s"]);
    let (code, out, err) = finish(Process::spawn(cmd.stdout(Stdio::piped()), "wait"));
    let took = started.elapsed();
    assert_eq!((code, out.as_str()), (3, ""), "{err}");
    assert!(err.contains("timed out after 2s"), "{err}");
    assert!(
        took < Duration::from_secs(5),
        "returned after {took:?}: {err}"
    );
}

/// The kubeconfig context's namespace reaches request paths as `-n` does, and is held to the
/// same rule.
#[tokio::test]
async fn the_contexts_namespace_is_validated_like_n() {
    let rig = Rig::new("wait-context-ns", json!({})).await;
    let kubeconfig = kubeconfig_with(&rig, "bad-ns-kubeconfig", |c| {
        c["contexts"][0]["context"]["namespace"] = json!("../../api/v1/secrets?x=");
    });
    let mut cmd = Command::new(harness::bin::path("status-reporter"));
    for var in reporter_vars().chain(["WAIT_NAMESPACE", "WAIT_TIMEOUT", "WAIT_OUTPUT"]) {
        cmd.env_remove(var);
    }
    cmd.env("KUBECONFIG", &kubeconfig)
        .args(["wait", &format!("job/{JOB}"), "--timeout", "10s"]);
    let (code, out, err) = finish(Process::spawn(cmd.stdout(Stdio::piped()), "wait"));
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("the kubeconfig context's namespace must be") && err.contains("pass -n"),
        "{err}"
    );
    assert!(rig.proxy.requests().is_empty(), "nothing was sent");
}

/// A server that ignores the field selector (here: the proxy adds another Job, `True`, to the
/// list) cannot make `wait` report another Job's condition: only the Job asked for counts.
#[tokio::test]
async fn only_the_job_asked_for_is_judged() {
    let rig = Rig::new("wait-other-job", json!({})).await;
    rig.proxy.inject(harness::fault_proxy::Fault::rewrite(
        Route::new("GET", "/jobs"),
        |list| {
            let mut other = list["items"][0].clone();
            other["metadata"]["name"] = json!("someone-elses");
            other["status"]["conditions"] =
                json!([cond("Available", "True", "ChecksPassed", "not yours")]);
            list["items"].as_array_mut().expect("items").push(other);
        },
    ));
    let (code, out, err) = finish(rig.start(&["--timeout", "2s"]));
    assert_eq!((code, out.as_str()), (3, ""), "{err}");
    assert!(!err.contains("not yours"), "{err}");
}

/// A result's message is the adapter's text: a newline in it cannot forge a second line of
/// `wait`'s answer, nor an escape sequence reach the terminal.
#[tokio::test]
async fn control_characters_in_the_answer_are_escaped() {
    let rig = Rig::new("wait-escape", json!({})).await;
    rig.set(cond(
        "Available",
        "True",
        "ChecksPassed",
        "fine\nAvailable=False Forged: no\u{1b}[2J",
    ))
    .await;
    let (code, out, err) = finish(rig.start(&[]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "one line: {out:?}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(
        out.contains(r"fine\nAvailable=False Forged: no\u{1b}[2J"),
        "{out:?}"
    );
    let (code, out, err) = finish(rig.start(&["-o", "json"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "one line: {out:?}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
    check_schema(&out);
}
