//! Process-level tests: the real `status-reporter` binary on the real API server (through the
//! fault proxy, as the Job's ServiceAccount), one test per outcome row and failure mode. The
//! test plays the kubelet (`control_plane::kubelet`). Waiting is always on an event (an API
//! object, a request through the proxy, a reporter log line, the process's exit) with a bounded
//! timeout — never a sleep.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use harness::control_plane::adapter::{condition, condition_types, example_job, set_job_condition};
use harness::control_plane::kubelet;
use harness::fault_proxy::{Fault, Hostile};
use harness::reporter_process::{Reporter, Rig, WAIT};
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde_json::{Value, json};

/// The requests of one run that reports a result file, in order: the reporter's write path.
/// Change it here when the write path changes.
const ONE_RUN: [&str; 6] = [
    "GET pods (list)",
    "GET pods (watch)",
    "GET jobs/status",
    "PUT jobs/status",
    "PATCH pods/status",
    "POST events",
];

/// Another reporter's condition on the Job, which must survive.
fn dns_ready() -> Value {
    json!({"type": "DNSReady", "status": "True", "reason": "Done", "message": "dns ok", "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

/// A rig whose Job already carries [`dns_ready`].
async fn rig(name: &str, mode: &str) -> Rig {
    rig_with(name, example_job(name, mode, &[])).await
}

async fn rig_with(name: &str, job: Value) -> Rig {
    let rig = Rig::with(name, job).await;
    set_job_condition(&rig.ns.client, &rig.ns.name, name, dns_ready()).await;
    rig
}

/// Waits for the condition, checks status/reason/message and that the other condition survived.
async fn expect_condition(rig: &Rig, status: &str, reason: &str, message: &str) -> JobCondition {
    let c = rig.condition("Available").await;
    let got = (c.status.as_str(), c.reason.as_deref(), c.message.as_deref());
    assert_eq!(got, (status, Some(reason), Some(message)), "{c:?}");
    assert!(c.last_transition_time.is_some(), "{c:?}");
    let job = job(rig).await;
    let other = condition(&job, "DNSReady").expect("DNSReady condition preserved");
    assert_eq!(other.message.as_deref(), Some("dns ok"));
    c
}

async fn job(rig: &Rig) -> Job {
    let api: Api<Job> = Api::namespaced(rig.ns.client.clone(), &rig.ns.name);
    api.get(&rig.job).await.expect("get Job")
}

/// The Event the reporter recorded on the Job (after it exited: it records it first).
async fn expect_event(rig: &Rig, type_: &str, reason: &str) {
    let api: Api<Event> = Api::namespaced(rig.ns.client.clone(), &rig.ns.name);
    let fields = format!("involvedObject.name={},involvedObject.kind=Job", rig.job);
    let events = api
        .list(&ListParams::default().fields(&fields))
        .await
        .expect("events");
    assert!(
        events
            .items
            .iter()
            .any(|e| e.type_.as_deref() == Some(type_) && e.reason.as_deref() == Some(reason)),
        "no {type_} event {reason}: {:?}",
        events
            .items
            .iter()
            .map(|e| (&e.type_, &e.reason))
            .collect::<Vec<_>>()
    );
}

/// The shape most outcome tests share: a classic reporter against a fresh rig; `act` writes the
/// result or drives the pod (with the running reporter at hand); then the condition must read
/// `status`/`reason`/`message` (the other reporter's condition preserved) and the reporter must
/// exit with `exit` (`{pod}` in `message` stands for the pod's name). Returns the rig.
async fn reports(
    name: &str,
    act: impl AsyncFnOnce(&Rig, &Reporter),
    (status, reason, message): (&str, &str, &str),
    exit: i32,
) -> Rig {
    let rig = rig(name, "classic").await;
    let mut r = rig.start(&[]).await;
    act(&rig, &r).await;
    let message = message.replace("{pod}", rig.pod_name());
    expect_condition(&rig, status, reason, &message).await;
    assert_eq!(r.wait_exit(WAIT), exit, "{}", r.logs.text());
    rig
}

const INVALID_STATUS: &str = "Failed to parse adapter result: invalid result format: status: must be either 'success' or 'failure'";

#[tokio::test]
async fn success_result() {
    let result = r#"{"status":"success","reason":"AllChecksPassed","message":"All 3 checks passed","details":{"checks":3}}"#;
    let expected = ("True", "AllChecksPassed", "All 3 checks passed");
    let rig = reports(
        "success",
        async |rig, _| rig.write_result(result),
        expected,
        0,
    )
    .await;
    expect_event(&rig, "Normal", "AllChecksPassed").await;
}

#[tokio::test]
async fn failure_result() {
    let result = r#"{"status":"failure","reason":"DNSZoneMissing","message":"  zone example.com not found  "}"#;
    let expected = ("False", "DNSZoneMissing", "zone example.com not found");
    let rig = reports(
        "failure",
        async |rig, _| rig.write_result(result),
        expected,
        1,
    )
    .await;
    expect_event(&rig, "Warning", "DNSZoneMissing").await;
}

#[tokio::test]
async fn invalid_result_then_adapter_exits_zero() {
    let act = async |rig: &Rig, _: &Reporter| {
        rig.write_result(r#"{"status":"done"}"#);
        rig.terminate(0, "Completed", None).await;
    };
    reports(
        "invalid-exit",
        act,
        ("False", "InvalidResultFormat", INVALID_STATUS),
        1,
    )
    .await;
}

#[tokio::test]
async fn invalid_result_while_adapter_keeps_running() {
    let message =
        "Failed to parse adapter result: failed to parse JSON: expected ident at line 1 column 2";
    let act = async |rig: &Rig, _: &Reporter| rig.write_result("not json");
    reports(
        "invalid-running",
        act,
        ("False", "InvalidResultFormat", message),
        1,
    )
    .await;
}

#[tokio::test]
async fn timeout_with_short_max_wait() {
    let rig = rig("timeout", "classic").await;
    let env = [
        ("MAX_WAIT_TIME_SECONDS", "2"),
        ("POLL_INTERVAL_SECONDS", "1"),
    ];
    let mut r = rig.start(&env).await;
    let message = "Adapter did not produce results within 2s";
    expect_condition(&rig, "False", "AdapterTimeout", message).await;
    assert_eq!(r.wait_exit(WAIT), 1);
    expect_event(&rig, "Warning", "AdapterTimeout").await;
}

/// The adapter terminates with `code` and `reason`, no result file.
async fn adapter_exits(name: &str, code: i32, reason: &str, expected: (&str, &str, &str)) {
    let act = async |rig: &Rig, _: &Reporter| rig.terminate(code, reason, None).await;
    reports(name, act, expected, 1).await;
}

#[tokio::test]
async fn adapter_exit_code_one() {
    let message = "Adapter container exited with code 1: Error";
    adapter_exits(
        "exit-1",
        1,
        "Error",
        ("False", "AdapterExitedWithError", message),
    )
    .await;
}

#[tokio::test]
async fn adapter_oom_killed() {
    let message = "Adapter container was killed due to out of memory (OOMKilled)";
    adapter_exits(
        "oom",
        137,
        "OOMKilled",
        ("False", "AdapterOOMKilled", message),
    )
    .await;
}

#[tokio::test]
async fn adapter_exit_zero_without_file() {
    let message = "Adapter container exited successfully (code 0) but did not produce a valid result file: Completed";
    adapter_exits(
        "exit-0",
        0,
        "Completed",
        ("False", "AdapterMissingResults", message),
    )
    .await;
}

#[tokio::test]
async fn valid_file_wins_over_nonzero_exit() {
    let act = async |rig: &Rig, _: &Reporter| {
        rig.write_result(r#"{"status":"success","reason":"Ok","message":"fine"}"#);
        rig.terminate(3, "Error", None).await;
    };
    reports("file-wins", act, ("True", "Ok", "fine"), 0).await;
}

#[tokio::test]
async fn image_pull_failure_fails_fast() {
    let pulling = "Back-off pulling image \"registry.example/adapter:nope\"";
    let act = async |rig: &Rig, _: &Reporter| rig.waiting("ImagePullBackOff", pulling).await;
    let message = format!("Adapter container adapter cannot start: ImagePullBackOff: {pulling}");
    reports(
        "image-pull",
        act,
        ("False", "AdapterImagePullFailed", &message),
        1,
    )
    .await;
}

#[tokio::test]
async fn config_error_fails_fast() {
    let missing = "secret \"creds\" not found";
    let act =
        async |rig: &Rig, _: &Reporter| rig.waiting("CreateContainerConfigError", missing).await;
    let message =
        format!("Adapter container adapter cannot start: CreateContainerConfigError: {missing}");
    reports(
        "config-error",
        act,
        ("False", "AdapterConfigError", &message),
        1,
    )
    .await;
}

/// `example_job` restarted in place (`OnFailure`) up to `backoffLimit: 2`.
fn on_failure_job(name: &str) -> Value {
    let mut job = example_job(name, "classic", &[]);
    job["spec"]["backoffLimit"] = json!(2);
    job["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
    job
}

/// The kubelet counts a restart when the restarted container runs (its `restartCount` is the
/// attempt number of the newest instance); here the last crash shows only as the back-off.
#[tokio::test]
async fn crash_loop_under_on_failure_waits_for_backoff_limit() {
    let rig = rig_with("crash-loop", on_failure_job("crash-loop")).await;
    let mut r = rig.start(&[]).await;
    let (client, ns, pod) = (&rig.ns.client, &rig.ns.name, rig.pod_name());
    for backoff in ["10s", "20s"] {
        // A failure is restarted in place: not final.
        rig.terminate(1, "Error", None).await;
        let message = format!("back-off {backoff} restarting failed container");
        rig.waiting("CrashLoopBackOff", &message).await;
        kubelet::run_pod(client, ns, pod).await;
    }
    rig.waiting(
        "CrashLoopBackOff",
        "back-off 40s restarting failed container",
    )
    .await;
    let message = "Adapter container adapter is crash looping (restarts: 2, backoffLimit: 2): CrashLoopBackOff: back-off 40s restarting failed container";
    expect_condition(&rig, "False", "AdapterCrashLooping", message).await;
    assert_eq!(r.wait_exit(WAIT), 1);
    let gets = rig.proxy.requests_on(("GET", "/jobs/crash-loop")).len();
    assert!(
        gets >= 2,
        "expected a Job GET for backoffLimit and one for the write"
    );
}

#[tokio::test]
async fn pod_deleted() {
    let act = async |rig: &Rig, _: &Reporter| {
        let pods: Api<Pod> = Api::namespaced(rig.ns.client.clone(), &rig.ns.name);
        pods.delete(rig.pod_name(), &DeleteParams::default())
            .await
            .expect("delete pod");
    };
    let message = "Pod {pod} was deleted before the adapter produced a result";
    reports("deleted", act, ("False", "AdapterTerminated", message), 1).await;
}

#[tokio::test]
async fn pod_evicted() {
    let act = async |rig: &Rig, _: &Reporter| {
        let (client, ns) = (&rig.ns.client, &rig.ns.name);
        kubelet::update_status(client, ns, rig.pod_name(), |_, status| {
            status.phase = Some("Failed".into());
            status.reason = Some("Evicted".into());
            status.message = Some("The node was low on resource: memory.".into());
        })
        .await;
    };
    let message = "Pod {pod} was terminated before the adapter produced a result: Evicted: The node was low on resource: memory.";
    reports("evicted", act, ("False", "AdapterTerminated", message), 1).await;
}

/// Writes a half result and keeps the file open: the reporter reads it and waits.
fn half_written(rig: &Rig, r: &Reporter) -> std::fs::File {
    let mut f = std::fs::File::create(rig.result_path()).unwrap();
    f.write_all(br#"{"status":"succ"#).unwrap();
    f.flush().unwrap();
    r.logs.wait_for(&["result file read", "Writing"], WAIT);
    f
}

#[tokio::test]
async fn slowly_written_file_is_not_judged_early() {
    let act = async |rig: &Rig, r: &Reporter| {
        let mut f = half_written(rig, r);
        f.write_all(br#"ess","reason":"Slow","message":"written in two parts"}"#)
            .unwrap();
    };
    reports(
        "slow-write",
        act,
        ("True", "Slow", "written in two parts"),
        0,
    )
    .await;
}

#[tokio::test]
async fn atomic_rename_into_place() {
    let act = async |rig: &Rig, _: &Reporter| {
        let tmp = rig.results.join(".adapter-result.json.tmp");
        std::fs::write(
            &tmp,
            r#"{"status":"success","reason":"Renamed","message":"atomic"}"#,
        )
        .unwrap();
        std::fs::rename(&tmp, rig.result_path()).unwrap();
    };
    reports("rename", act, ("True", "Renamed", "atomic"), 0).await;
}

#[tokio::test]
async fn result_present_before_start() {
    let rig = rig("early", "classic").await;
    rig.write_result(r#"{"status":"success","reason":"Early","message":"before the reporter"}"#);
    let mut r = Reporter::spawn(rig.command(&[]));
    expect_condition(&rig, "True", "Early", "before the reporter").await;
    assert_eq!(r.wait_exit(WAIT), 0);
}

/// Another writer of the Job's status (another reporter, say) races the reporter's write:
/// optimistic concurrency keeps both. (The Job controller's own `Complete` cannot be written
/// by anyone else on the real API server: it validates the Job's status.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_controller_writes_concurrently_and_both_survive() {
    let rig = rig("concurrent", "classic").await;
    let mut r = rig.start(&[]).await;
    let other = tokio::spawn({
        let (ns, job) = (rig.ns.name.clone(), rig.job.clone());
        let client = rig.ns.client.clone();
        async move {
            for i in 0..40 {
                let c = json!({"type": "example.com/Other", "status": "True", "reason": "Done", "message": format!("write {i}")});
                set_job_condition(&client, &ns, &job, c).await;
            }
        }
    });
    rig.write_result(
        r#"{"status":"success","reason":"Raced","message":"with the job controller"}"#,
    );
    other.await.expect("the other writer");
    expect_condition(&rig, "True", "Raced", "with the job controller").await;
    assert_eq!(r.wait_exit(WAIT), 0);
    let job = job(&rig).await;
    let other = condition(&job, "example.com/Other").expect("the other condition survives");
    assert_eq!(other.message.as_deref(), Some("write 39"));
    let types = condition_types(&job);
    assert_eq!(
        types.iter().filter(|t| *t == "Available").count(),
        1,
        "{types:?}"
    );
}

#[tokio::test]
async fn api_errors_then_recovery() {
    let act = async |rig: &Rig, _: &Reporter| {
        // The original lost the outcome after three 500s.
        rig.proxy
            .inject(Fault::status(rig.job_status("GET"), 500).times(2));
        rig.proxy
            .inject(Fault::status(rig.job_status("PUT"), 503).retry_after("1"));
        rig.proxy
            .inject(Fault::drop_connection(rig.job_status("PUT")));
        rig.write_result(
            r#"{"status":"success","reason":"Recovered","message":"after API errors"}"#,
        );
    };
    let rig = reports(
        "api-errors",
        act,
        ("True", "Recovered", "after API errors"),
        0,
    )
    .await;
    let failed = rig
        .proxy
        .requests()
        .iter()
        .filter(|q| q.path.ends_with("/status") && q.status >= 500)
        .count();
    assert_eq!(failed, 3, "the three injected 5xx were seen and retried");
}

/// The watch is cut mid-stream, then resumed from a resourceVersion the API server no longer
/// keeps (410 Expired: the watcher lists again), then cut again; the exit is still seen.
#[tokio::test]
async fn watch_cut_mid_stream_resumes() {
    let rig = rig("watch-cut", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.proxy.cut_watches();
    rig.wait_pod_watches(2).await;
    rig.proxy
        .inject(Fault::respond(rig.pod_watch(), 200, Hostile::expired()));
    rig.proxy.cut_watches();
    // The expired resume, then the watch after the new list.
    rig.wait_pod_watches(4).await;
    rig.proxy.cut_watches();
    rig.terminate(2, "Error", None).await;
    let message = "Adapter container exited with code 2: Error";
    expect_condition(&rig, "False", "AdapterExitedWithError", message).await;
    assert_eq!(r.wait_exit(WAIT), 1);
}

#[tokio::test]
async fn sigterm_classic_reports_and_exits() {
    let message = "Pod {pod} is shutting down (reporter received SIGTERM) before the adapter produced a result";
    let act = async |_: &Rig, r: &Reporter| r.signal("-TERM");
    reports("sigterm", act, ("False", "AdapterTerminated", message), 1).await;
}

#[tokio::test]
async fn sigterm_classic_takes_a_last_look_at_the_file() {
    let rig = rig("sigterm-look", "classic").await;
    let mut r = rig.start(&[]).await;
    // Half-written and still open: not judged until SIGTERM makes it final.
    let f = half_written(&rig, &r);
    r.signal("-TERM");
    let message = "Failed to parse adapter result: failed to parse JSON: EOF while parsing a string at line 1 column 15";
    expect_condition(&rig, "False", "InvalidResultFormat", message).await;
    assert_eq!(r.wait_exit(WAIT), 1);
    drop(f);
}

#[tokio::test]
async fn native_idles_after_reporting_until_sigterm() {
    let rig = rig("native-idle", "native").await;
    let mut r = rig.start(&[]).await;
    rig.write_result(r#"{"status":"failure","reason":"Checked","message":"native sidecar"}"#);
    expect_condition(&rig, "False", "Checked", "native sidecar").await;
    r.logs.wait_for(&["idling until the pod shuts down"], WAIT);
    assert!(
        r.still_running(),
        "a native sidecar must not exit after reporting"
    );
    r.signal("-TERM");
    assert_eq!(r.wait_exit(WAIT), 0);
    assert_eq!(rig.answers(rig.job_status("PUT")), [200]);
}

#[tokio::test]
async fn native_sigterm_waits_for_adapter_state() {
    let rig = rig("native-sigterm", "native").await;
    let mut r = rig.start(&[]).await;
    // The kubelet stops sidecars after the adapter ended; its status may reach the API later.
    r.signal("-TERM");
    r.logs.wait_for(&["shutdown requested"], WAIT);
    rig.terminate(1, "Error", None).await;
    let message = "Adapter container exited with code 1: Error";
    expect_condition(&rig, "False", "AdapterExitedWithError", message).await;
    assert_eq!(r.wait_exit(WAIT), 0);
}

#[tokio::test]
async fn job_not_found_is_reported_clearly() {
    let rig = rig("no-job", "classic").await;
    let mut r = Reporter::spawn(rig.command(&[("JOB_NAME", "no-such-job")]));
    rig.write_result(r#"{"status":"success"}"#);
    assert_eq!(r.wait_exit(WAIT), 1);
    let logs = r.logs.text();
    let want = format!(
        "get jobs/status {}/no-such-job failed with HTTP 404",
        rig.ns.name
    );
    assert!(logs.contains(&want), "{logs}");
}

/// Starts the reporter with `env` on top of the rig's and expects it to stop at start with
/// exit 2 and `want` in its message, before any request on the Job.
fn refused_at_start(rig: &Rig, env: &[(&str, &str)], want: &str) {
    let mut r = Reporter::spawn(rig.command(env));
    assert_eq!(r.wait_exit(WAIT), 2, "{env:?}");
    let logs = r.logs.text();
    let want = format!("status-reporter: invalid configuration: {want}");
    assert!(logs.contains(&want), "{env:?}: {logs}");
    let on_job = rig.proxy.requests_on(("*", "/jobs/"));
    assert!(
        on_job.is_empty(),
        "no API request on the Job with bad configuration: {on_job:?}"
    );
}

#[tokio::test]
async fn bad_env_values_exit_2_naming_the_variable() {
    let rig = rig("bad-env", "classic").await;
    let cases: [(&str, &str, &str); 8] = [
        ("JOB_NAME", "  ", "JOB_NAME: required"),
        (
            "POLL_INTERVAL_SECONDS",
            "abc",
            "POLL_INTERVAL_SECONDS: must be a valid integer, got: abc",
        ),
        (
            "MAX_WAIT_TIME_SECONDS",
            "0",
            "MAX_WAIT_TIME_SECONDS: must be positive, got: 0",
        ),
        (
            "POLL_INTERVAL_SECONDS",
            "400",
            "POLL_INTERVAL_SECONDS: must be less than MAX_WAIT_TIME_SECONDS (400 >= 300)",
        ),
        (
            "RESULTS_PATH",
            "results/out.json",
            "RESULTS_PATH: path must be absolute, got: results/out.json",
        ),
        (
            "RESULTS_PATH",
            "/results/",
            "RESULTS_PATH: path must be a file, not a directory, got: /results/",
        ),
        (
            "CONDITION_TYPE",
            "Complete",
            "CONDITION_TYPE: Complete is owned by the Job controller",
        ),
        (
            "SIDECAR_MODE",
            "both",
            "SIDECAR_MODE: unknown mode \"both\"; accepted: classic, native",
        ),
    ];
    for (var, value, want) in cases {
        refused_at_start(&rig, &[(var, value)], want);
    }
}

/// The requests of a run, as `ONE_RUN` names them.
fn run_requests(rig: &Rig) -> Vec<String> {
    let kind = |path: &str| {
        let parts: Vec<&str> = path.rsplit('/').collect();
        match parts.as_slice() {
            ["status", _, kind, ..] => format!("{kind}/status"),
            [kind, ..] if !kind.is_empty() => (*kind).to_owned(),
            _ => path.to_owned(),
        }
    };
    let requests = rig.proxy.requests();
    requests
        .iter()
        .map(|q| match (q.method.as_str(), q.path.ends_with("/pods")) {
            ("GET", true) => format!("GET pods ({})", if q.watch { "watch" } else { "list" }),
            (method, _) => format!("{method} {}", kind(&q.path)),
        })
        .collect()
}

#[tokio::test]
async fn few_api_requests_per_run() {
    let rig = rig("few-requests", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.write_result(r#"{"status":"success","reason":"Quiet","message":"few requests"}"#);
    expect_condition(&rig, "True", "Quiet", "few requests").await;
    assert_eq!(r.wait_exit(WAIT), 0);
    assert_eq!(run_requests(&rig), ONE_RUN, "{:#?}", rig.proxy.requests());
}

#[tokio::test]
async fn polling_fallback_when_results_directory_is_missing() {
    let rig = rig("polling", "classic").await;
    let dir = rig.results.join("later");
    let path = dir.join("adapter-result.json");
    let path_text = path.to_str().unwrap().to_string();
    let env = [
        ("RESULTS_PATH", path_text.as_str()),
        ("POLL_INTERVAL_SECONDS", "1"),
    ];
    let mut r = Reporter::spawn(rig.command(&env));
    r.logs.wait_for(
        &["file notifications unavailable; polling the result file"],
        WAIT,
    );
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        &path,
        r#"{"status":"success","reason":"Polled","message":"found by polling"}"#,
    )
    .unwrap();
    expect_condition(&rig, "True", "Polled", "found by polling").await;
    assert_eq!(r.wait_exit(WAIT), 0);
}

#[tokio::test]
async fn fifo_at_results_path_is_invalid_and_never_blocks() {
    let rig = rig("fifo", "classic").await;
    let mut r = rig.start(&[]).await;
    let status = Command::new("mkfifo")
        .arg(rig.result_path())
        .status()
        .unwrap();
    assert!(status.success());
    rig.terminate(0, "Completed", None).await;
    let message = format!(
        "Failed to parse adapter result: result file is not a regular file: path={} type=fifo (expected a regular JSON file)",
        rig.result_path().display()
    );
    expect_condition(&rig, "False", "InvalidResultFormat", &message).await;
    assert_eq!(r.wait_exit(WAIT), 1);
}

#[tokio::test]
async fn json_logs() {
    let rig = rig("json-logs", "classic").await;
    let mut r = rig
        .start(&[("LOG_FORMAT", "json"), ("LOG_LEVEL", "info")])
        .await;
    rig.write_result(r#"{"status":"success","reason":"Json","message":"structured"}"#);
    expect_condition(&rig, "True", "Json", "structured").await;
    assert_eq!(r.wait_exit(WAIT), 0);
    let logs = r.logs.text();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let decided = lines.iter().find(|l| l["message"] == "outcome decided");
    let decided = decided.unwrap_or_else(|| panic!("{logs}"));
    assert_eq!(decided["level"], "INFO");
    assert_eq!(decided["reason"], "Json");
    // The condition's message must not shadow the log line's own "message" key.
    assert_eq!(decided["condition_message"], "structured");
    assert_eq!(
        logs.matches("\"message\":").count(),
        lines.len(),
        "one message key per line"
    );
}

/// The result's reason and message are the adapter's text: in the default text logs a newline
/// in them cannot start a forged log line, nor an escape sequence reach the terminal (and no
/// colour codes go to a stderr that is not a terminal).
#[tokio::test]
async fn text_logs_escape_what_the_adapter_wrote() {
    let rig = rig("log-forging", "classic").await;
    let mut r = rig.start(&[("LOG_LEVEL", "info")]).await;
    rig.write_result(
        r#"{"status":"failure","reason":"Forged","message":"ok\n2026-12-06T00:00:00Z ERROR status reporter failed\u001b[2J\r"}"#,
    );
    expect_condition(
        &rig,
        "False",
        "Forged",
        "ok\n2026-12-06T00:00:00Z ERROR status reporter failed\u{1b}[2J",
    )
    .await;
    assert_eq!(r.wait_exit(WAIT), 1);
    let logs = r.logs.text();
    assert!(
        !logs.lines().any(|l| l.starts_with("2026-12-06T00:00:00Z")),
        "a forged line:\n{logs}"
    );
    assert!(
        !logs.contains('\u{1b}') && !logs.contains('\r'),
        "raw control characters:\n{logs:?}"
    );
    assert!(
        logs.contains(r"ok\n2026-12-06T00:00:00Z ERROR status reporter failed\u{1b}[2J"),
        "the message, escaped:\n{logs}"
    );
}

#[tokio::test]
async fn forbidden_status_write_names_verb_and_resource() {
    let rig = rig("forbidden-put", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.proxy.inject(Fault::status(rig.job_status("PUT"), 403));
    rig.write_result(r#"{"status":"success"}"#);
    assert_eq!(r.wait_exit(WAIT), 1);
    let logs = r.logs.text();
    let line = format!(
        "update jobs/status {}/{} failed with HTTP 403",
        rig.ns.name, rig.job
    );
    assert!(
        logs.contains(&line) && logs.contains("needs verbs get and update on resource jobs/status"),
        "{logs}"
    );
    assert!(condition(&job(&rig).await, "Available").is_none());
}

#[tokio::test]
async fn native_second_signal_stops_waiting() {
    let rig = rig("second-signal", "native").await;
    let mut r = rig.start(&[]).await;
    r.signal("-TERM");
    r.logs.wait_for(&["shutdown requested"], WAIT);
    // The adapter's state never arrives; a second signal reports what is known at once.
    r.signal("-INT");
    // Without the second signal the reporter would wait 10 s for the adapter's state; 5 s
    // (far below that, far above the few ms it takes) tells the two apart.
    let c = rig
        .ns
        .wait_condition(&rig.job, "Available", Duration::from_secs(5))
        .await;
    assert_eq!(c.reason.as_deref(), Some("AdapterTerminated"));
    let message = format!(
        "Pod {} is shutting down (reporter received SIGTERM) before the adapter produced a result",
        rig.pod_name()
    );
    assert_eq!(c.message, Some(message));
    assert_eq!(r.wait_exit(WAIT), 0);
}

/// Issue 13, item 5: the max wait has one upper bound (365 days); above it the reporter
/// stops with exit 2 (it used to panic on the `Instant` overflow at 2^63-1); at it, it runs.
#[tokio::test]
async fn max_wait_has_one_upper_bound_and_never_panics() {
    let rig = rig("max-wait", "classic").await;
    for value in ["9223372036854775807", "31536001"] {
        let want =
            format!("MAX_WAIT_TIME_SECONDS: must be at most 31536000 (365 days), got: {value}");
        refused_at_start(&rig, &[("MAX_WAIT_TIME_SECONDS", value)], &want);
    }
    let mut r = rig.start(&[("MAX_WAIT_TIME_SECONDS", "31536000")]).await;
    rig.write_result(r#"{"status":"success","reason":"Year","message":"within a year"}"#);
    expect_condition(&rig, "True", "Year", "within a year").await;
    assert_eq!(r.wait_exit(WAIT), 0);
}

/// Issue 13, item 6: a results directory that is, or is inside, a system directory is
/// refused, with the list in the message.
#[tokio::test]
async fn results_directory_over_a_system_directory_exits_2() {
    let rig = rig("system-dir", "classic").await;
    for path in [
        "/etc/adapter-result.json",
        "/proc/self/r.json",
        "/run/secrets/x/r.json",
        "/results/../dev/r.json",
        "/r.json",
    ] {
        let want = format!(
            "RESULTS_PATH: must be a file whose directory is not / and neither is nor is inside a system directory (/bin, /boot, /dev, /etc, /lib, /lib32, /lib64, /libx32, /proc, /run, /sbin, /sys, /usr, /var/run/secrets), got: {path:?}"
        );
        refused_at_start(&rig, &[("RESULTS_PATH", path)], &want);
    }
}

/// Issue 13, item 10: the reporter is never its own adapter.
#[tokio::test]
async fn adapter_container_naming_the_reporter_exits_2() {
    let rig = rig("self-adapter", "classic").await;
    let want = "ADAPTER_CONTAINER_NAME: must be the adapter container's name, not the reporter's own (status-reporter), got: \"status-reporter\"";
    refused_at_start(&rig, &[("ADAPTER_CONTAINER_NAME", "status-reporter")], want);
}

/// Issue 13, item 10: an adapter the pod does not have is reported as a configuration error
/// once the pod is seen (naming the pod's containers), instead of waiting out the deadline.
#[tokio::test]
async fn adapter_container_missing_from_the_pod_reports_a_config_error() {
    let rig = rig("no-adapter", "classic").await;
    // Reported from the first list of the pod, before any watch opens.
    let mut r = Reporter::spawn(rig.command(&[("ADAPTER_CONTAINER_NAME", "main")]));
    let message = format!(
        "Adapter container main is not in pod {}, whose containers are: adapter, status-reporter; set ADAPTER_CONTAINER_NAME to one of them",
        rig.pod_name()
    );
    expect_condition(&rig, "False", "AdapterConfigError", &message).await;
    assert_eq!(r.wait_exit(WAIT), 1);
    let line = [
        "ADAPTER_CONTAINER_NAME names no container of the pod",
        "adapter, status-reporter",
    ];
    r.logs.wait_for(&line, Duration::ZERO);
}

/// Issue 13, item 11: a directory at RESULTS_PATH (there before the reporter, like a file it
/// finds at start) follows the invalid-file rule: the adapter's abnormal exit wins. It used to
/// be reported as invalid at once, before the pod was even seen.
#[tokio::test]
async fn non_regular_file_at_results_path_waits_like_an_invalid_file() {
    let rig = rig("dir-result", "classic").await;
    std::fs::create_dir(rig.result_path()).unwrap();
    rig.terminate(1, "Error", None).await;
    let mut r = Reporter::spawn(rig.command(&[]));
    let message = "Adapter container exited with code 1: Error";
    expect_condition(&rig, "False", "AdapterExitedWithError", message).await;
    assert_eq!(r.wait_exit(WAIT), 1);
}

/// Issue 13, item 12: JOB_NAME, JOB_NAMESPACE and POD_NAME are Kubernetes names (they become
/// API path segments: `a/../../b` used to reach the server as a path).
#[tokio::test]
async fn job_and_pod_names_are_validated_as_kubernetes_names() {
    let rig = rig("bad-names", "classic").await;
    let subdomain = "a DNS subdomain: at most 253 characters";
    for (var, value, rule) in [
        ("JOB_NAME", "a/../../b", subdomain),
        (
            "JOB_NAMESPACE",
            "default/../kube-system",
            "a DNS label: at most 63 characters",
        ),
        ("POD_NAME", "Pod_1", subdomain),
    ] {
        refused_at_start(&rig, &[(var, value)], &format!("{var}: must be {rule}"));
    }
}

/// Issue 13, item 13: CONDITION_TYPE is a condition type Kubernetes tooling can use.
#[tokio::test]
async fn condition_type_must_be_a_qualified_name() {
    let rig = rig("condition-type", "classic").await;
    for value in ["a/b c".to_owned(), "A".repeat(1000)] {
        let want = "CONDITION_TYPE: must be a qualified name: at most 63 characters";
        refused_at_start(&rig, &[("CONDITION_TYPE", &value)], want);
    }
    let mut r = rig
        .start(&[("CONDITION_TYPE", "example.com/DNSReady")])
        .await;
    rig.write_result(r#"{"status":"success"}"#);
    let c = rig.condition("example.com/DNSReady").await;
    assert_eq!(c.status, "True");
    assert_eq!(r.wait_exit(WAIT), 0);
}

/// Issue 11: the Job GET for `backoffLimit` (OnFailure pods only) runs beside the event loop:
/// while it hangs (for the 10 s request timeout), a result file is still reported at once.
#[tokio::test]
async fn hung_backoff_limit_read_never_delays_the_result() {
    let rig = rig_with("hung-read", on_failure_job("hung-read")).await;
    rig.proxy.inject(Fault::hang(rig.job_status("GET")));
    let mut r = Reporter::spawn(rig.command(&[]));
    let hung = rig.job_status("GET");
    rig.proxy
        .wait_for("the hung backoffLimit read", WAIT, |log| {
            log.iter().find(|q| hung.matches(q)).cloned()
        })
        .await;
    rig.write_result(r#"{"status":"success","reason":"Prompt","message":"not held up"}"#);
    // Far below the 10 s the hung read lasts, far above the milliseconds a report takes.
    let c = rig
        .ns
        .wait_condition(&rig.job, "Available", Duration::from_secs(5))
        .await;
    assert_eq!(
        (c.reason.as_deref(), c.status.as_str()),
        (Some("Prompt"), "True")
    );
    assert_eq!(r.wait_exit(WAIT), 0);
}
