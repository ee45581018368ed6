//! Process-level tests: the real `status-reporter` binary against the Kubernetes API stand-in,
//! one test per outcome row and failure mode. Waiting is always on an event (stand-in change,
//! a reporter log line, process exit) with a bounded timeout — never a sleep.

use std::io::Write;
use std::ops::Deref;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use stand_in::Fault;
use stand_in::fixtures::{JobBuilder, PodBuilder};
use stand_in::reporter_process::{self, Reporter};

const NS: &str = "default";
const JOB: &str = "adapter-job";
const POD: &str = "adapter-job-x7k2p";
const WAIT: Duration = Duration::from_secs(20);

/// A stand-in with the Job (plus another reporter's condition that must survive) and its pod,
/// in classic or native sidecar mode; the shared rig underneath does the rest.
struct Rig(reporter_process::Rig);

impl Deref for Rig {
    type Target = reporter_process::Rig;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Classic,
    Native,
}

impl Rig {
    fn new(mode: Mode) -> Rig {
        Rig::with(mode, JobBuilder::new(NS, JOB), PodBuilder::new(NS, POD))
    }

    fn with(mode: Mode, job: JobBuilder, pod: PodBuilder) -> Rig {
        // Another reporter's condition that must survive.
        let job = job.condition(json!({"type": "DNSReady", "status": "True", "reason": "Done", "message": "dns ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}));
        let pod = pod.job_name(JOB).container("adapter");
        let pod = match mode {
            Mode::Classic => pod.container("status-reporter"),
            Mode::Native => pod.init_sidecar("status-reporter"),
        };
        Rig(reporter_process::Rig::with(NS, JOB, POD, job, pod))
    }

    fn command(&self, mode: Mode, env: &[(&str, &str)]) -> Command {
        let mut cmd = self.0.command(&[(
            "SIDECAR_MODE",
            if mode == Mode::Native {
                "native"
            } else {
                "classic"
            },
        )]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the reporter and waits until its pod watch is open (it is then fully set up).
    fn start(&self, mode: Mode, env: &[(&str, &str)]) -> Reporter {
        let r = Reporter::spawn(self.command(mode, env));
        self.wait_pod_watches(1, WAIT);
        r
    }

    fn condition(&self, type_: &str) -> Value {
        self.0.condition(type_, WAIT)
    }

    /// Waits for the condition and checks status/reason/message and that the other condition survived.
    fn expect_condition(&self, status: &str, reason: &str, message: &str) -> Value {
        let c = self.condition("Available");
        assert_eq!(
            (
                c["status"].as_str(),
                c["reason"].as_str(),
                c["message"].as_str()
            ),
            (Some(status), Some(reason), Some(message)),
            "condition {c}"
        );
        assert!(c["lastTransitionTime"].is_string(), "{c}");
        let other = self
            .api
            .job_condition(NS, JOB, "DNSReady")
            .expect("DNSReady condition preserved");
        assert_eq!(other["message"], "dns ok");
        c
    }

    fn expect_event(&self, type_: &str, reason: &str) {
        self.api
            .wait_for_blocking(&format!("{type_} event {reason}"), WAIT, |s| {
                s.events().into_iter().find(|e| {
                    e["type"] == type_
                        && e["reason"] == reason
                        && e["involvedObject"]["name"] == JOB
                        && e["involvedObject"]["kind"] == "Job"
                })
            });
    }

    fn status_writes(&self) -> usize {
        self.api
            .requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.ends_with("/status") && r.status == 200)
            .count()
    }
}

/// The shape most outcome tests share: a classic reporter against a fresh rig; `act` writes the
/// result or drives the pod (with the running reporter at hand); then the condition must read
/// `status`/`reason`/`message` (the other reporter's condition preserved) and the reporter must
/// exit with `exit`. Returns the rig for further checks.
fn reports(
    act: impl FnOnce(&Rig, &Reporter),
    status: &str,
    reason: &str,
    message: &str,
    exit: i32,
) -> Rig {
    let rig = Rig::new(Mode::Classic);
    let mut r = rig.start(Mode::Classic, &[]);
    act(&rig, &r);
    rig.expect_condition(status, reason, message);
    assert_eq!(r.wait_exit(WAIT), exit);
    rig
}

const INVALID_STATUS: &str = "Failed to parse adapter result: invalid result format: status: must be either 'success' or 'failure'";

#[test]
fn success_result() {
    let rig = reports(
        |rig, _| {
            rig.write_result(r#"{"status":"success","reason":"AllChecksPassed","message":"All 3 checks passed","details":{"checks":3}}"#)
        },
        "True",
        "AllChecksPassed",
        "All 3 checks passed",
        0,
    );
    rig.expect_event("Normal", "AllChecksPassed");
}

#[test]
fn failure_result() {
    let rig = reports(
        |rig, _| {
            rig.write_result(r#"{"status":"failure","reason":"DNSZoneMissing","message":"  zone example.com not found  "}"#)
        },
        "False",
        "DNSZoneMissing",
        "zone example.com not found",
        1,
    );
    rig.expect_event("Warning", "DNSZoneMissing");
}

#[test]
fn invalid_result_then_adapter_exits_zero() {
    reports(
        |rig, _| {
            rig.write_result(r#"{"status":"done"}"#);
            rig.api
                .set_container_terminated(NS, POD, "adapter", 0, "Completed", "");
        },
        "False",
        "InvalidResultFormat",
        INVALID_STATUS,
        1,
    );
}

#[test]
fn invalid_result_while_adapter_keeps_running() {
    reports(
        |rig, _| {
            rig.write_result("not json");
        },
        "False",
        "InvalidResultFormat",
        "Failed to parse adapter result: failed to parse JSON: expected ident at line 1 column 2",
        1,
    );
}

#[test]
fn timeout_with_short_max_wait() {
    let rig = Rig::new(Mode::Classic);
    let mut r = rig.start(
        Mode::Classic,
        &[
            ("MAX_WAIT_TIME_SECONDS", "2"),
            ("POLL_INTERVAL_SECONDS", "1"),
        ],
    );
    rig.expect_condition(
        "False",
        "AdapterTimeout",
        "Adapter did not produce results within 2s",
    );
    assert_eq!(r.wait_exit(WAIT), 1);
    rig.expect_event("Warning", "AdapterTimeout");
}

#[test]
fn adapter_exit_code_one() {
    reports(
        |rig, _| {
            rig.api
                .set_container_terminated(NS, POD, "adapter", 1, "Error", "");
        },
        "False",
        "AdapterExitedWithError",
        "Adapter container exited with code 1: Error",
        1,
    );
}

#[test]
fn adapter_oom_killed() {
    reports(
        |rig, _| {
            rig.api
                .set_container_terminated(NS, POD, "adapter", 137, "OOMKilled", "");
        },
        "False",
        "AdapterOOMKilled",
        "Adapter container was killed due to out of memory (OOMKilled)",
        1,
    );
}

#[test]
fn adapter_exit_zero_without_file() {
    reports(
        |rig, _| {
            rig.api
                .set_container_terminated(NS, POD, "adapter", 0, "Completed", "");
        },
        "False",
        "AdapterMissingResults",
        "Adapter container exited successfully (code 0) but did not produce a valid result file: Completed",
        1,
    );
}

#[test]
fn valid_file_wins_over_nonzero_exit() {
    reports(
        |rig, _| {
            rig.write_result(r#"{"status":"success","reason":"Ok","message":"fine"}"#);
            rig.api
                .set_container_terminated(NS, POD, "adapter", 3, "Error", "");
        },
        "True",
        "Ok",
        "fine",
        0,
    );
}

#[test]
fn image_pull_failure_fails_fast() {
    reports(
        |rig, _| {
            rig.api.set_container_waiting(
                NS,
                POD,
                "adapter",
                "ImagePullBackOff",
                "Back-off pulling image \"registry.example/adapter:nope\"",
            );
        },
        "False",
        "AdapterImagePullFailed",
        "Adapter container adapter cannot start: ImagePullBackOff: Back-off pulling image \"registry.example/adapter:nope\"",
        1,
    );
}

#[test]
fn config_error_fails_fast() {
    reports(
        |rig, _| {
            rig.api.set_container_waiting(
                NS,
                POD,
                "adapter",
                "CreateContainerConfigError",
                "secret \"creds\" not found",
            );
        },
        "False",
        "AdapterConfigError",
        "Adapter container adapter cannot start: CreateContainerConfigError: secret \"creds\" not found",
        1,
    );
}

#[test]
fn crash_loop_under_on_failure_waits_for_backoff_limit() {
    let rig = Rig::with(
        Mode::Classic,
        JobBuilder::new(NS, JOB)
            .backoff_limit(2)
            .restart_policy("OnFailure"),
        PodBuilder::new(NS, POD).restart_policy("OnFailure"),
    );
    let mut r = rig.start(Mode::Classic, &[]);
    // First failure: restarted in place, not final.
    rig.api
        .set_container_terminated(NS, POD, "adapter", 1, "Error", "");
    rig.api.set_container_waiting(
        NS,
        POD,
        "adapter",
        "CrashLoopBackOff",
        "back-off 10s restarting failed container",
    );
    rig.api
        .set_container_terminated(NS, POD, "adapter", 1, "Error", "");
    rig.api.set_container_waiting(
        NS,
        POD,
        "adapter",
        "CrashLoopBackOff",
        "back-off 20s restarting failed container",
    );
    rig.expect_condition(
        "False",
        "AdapterCrashLooping",
        "Adapter container adapter is crash looping (restarts: 2, backoffLimit: 2): CrashLoopBackOff: back-off 20s restarting failed container",
    );
    assert_eq!(r.wait_exit(WAIT), 1);
    // The reporter read the Job's backoffLimit once.
    let gets = rig
        .api
        .requests()
        .iter()
        .filter(|q| q.method == "GET" && q.path.contains("/jobs/"))
        .count();
    assert!(
        gets >= 2,
        "expected a Job GET for backoffLimit and one for the write"
    );
}

#[test]
fn pod_deleted() {
    reports(
        |rig, _| {
            rig.api.delete_pod(NS, POD);
        },
        "False",
        "AdapterTerminated",
        &format!("Pod {POD} was deleted before the adapter produced a result"),
        1,
    );
}

#[test]
fn pod_evicted() {
    reports(
        |rig, _| {
            rig.api.set_pod_phase(
                NS,
                POD,
                "Failed",
                Some("Evicted"),
                Some("The node was low on resource: memory."),
            );
        },
        "False",
        "AdapterTerminated",
        &format!(
            "Pod {POD} was terminated before the adapter produced a result: Evicted: The node was low on resource: memory."
        ),
        1,
    );
}

#[test]
fn slowly_written_file_is_not_judged_early() {
    reports(
        |rig, r| {
            let mut f = std::fs::File::create(rig.result_path()).unwrap();
            f.write_all(br#"{"status":"succ"#).unwrap();
            f.flush().unwrap();
            // The reporter has seen the half-written file and holds it as "still being written".
            r.logs.wait_for(&["result file read", "Writing"], WAIT);
            f.write_all(br#"ess","reason":"Slow","message":"written in two parts"}"#)
                .unwrap();
            drop(f);
        },
        "True",
        "Slow",
        "written in two parts",
        0,
    );
}

#[test]
fn atomic_rename_into_place() {
    reports(
        |rig, _| {
            let tmp = rig.results.join(".adapter-result.json.tmp");
            std::fs::write(
                &tmp,
                r#"{"status":"success","reason":"Renamed","message":"atomic"}"#,
            )
            .unwrap();
            std::fs::rename(&tmp, rig.result_path()).unwrap();
        },
        "True",
        "Renamed",
        "atomic",
        0,
    );
}

#[test]
fn result_present_before_start() {
    let rig = Rig::new(Mode::Classic);
    rig.write_result(r#"{"status":"success","reason":"Early","message":"before the reporter"}"#);
    let mut r = Reporter::spawn(rig.command(Mode::Classic, &[]));
    rig.expect_condition("True", "Early", "before the reporter");
    assert_eq!(r.wait_exit(WAIT), 0);
}

#[test]
fn job_controller_writes_concurrently_and_both_survive() {
    let rig = Rig::new(Mode::Classic);
    let mut r = rig.start(Mode::Classic, &[]);
    let api = rig.api.clone();
    let controller = std::thread::spawn(move || {
        for i in 0..40 {
            api.job_controller_set_condition(NS, JOB, json!({"type": "Complete", "status": "True", "reason": "Done", "message": format!("write {i}")}));
        }
    });
    rig.write_result(
        r#"{"status":"success","reason":"Raced","message":"with the job controller"}"#,
    );
    controller.join().unwrap();
    rig.expect_condition("True", "Raced", "with the job controller");
    assert_eq!(r.wait_exit(WAIT), 0);
    let complete = rig
        .api
        .job_condition(NS, JOB, "Complete")
        .expect("Complete survives");
    assert_eq!(complete["message"], "write 39");
    let types: Vec<Value> = rig.api.job(NS, JOB).unwrap()["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].clone())
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "Available").count(),
        1,
        "{types:?}"
    );
}

#[test]
fn api_errors_then_recovery() {
    let rig = reports(
        |rig, _| {
            // The original lost the outcome after three 500s.
            rig.api
                .inject_fault(Fault::status("GET", "/jobs/adapter-job/status", 500, 2));
            rig.api.inject_fault(
                Fault::status("PUT", "/jobs/adapter-job/status", 503, 1).retry_after(1),
            );
            rig.api
                .inject_fault(Fault::drop("PUT", "/jobs/adapter-job/status", 1));
            rig.write_result(
                r#"{"status":"success","reason":"Recovered","message":"after API errors"}"#,
            );
        },
        "True",
        "Recovered",
        "after API errors",
        0,
    );
    let failed = rig
        .api
        .requests()
        .iter()
        .filter(|q| q.path.ends_with("/status") && q.status >= 500)
        .count();
    assert_eq!(failed, 3, "the three injected 5xx were seen and retried");
}

#[test]
fn watch_cut_mid_stream_resumes() {
    let rig = Rig::new(Mode::Classic);
    let mut r = rig.start(Mode::Classic, &[]);
    rig.api.cut_watches();
    rig.api.set_container_running(NS, POD, "adapter");
    rig.api.compact_history();
    rig.api.cut_watches();
    rig.api
        .set_container_terminated(NS, POD, "adapter", 2, "Error", "");
    rig.expect_condition(
        "False",
        "AdapterExitedWithError",
        "Adapter container exited with code 2: Error",
    );
    assert_eq!(r.wait_exit(WAIT), 1);
    let watches = rig.api.requests().iter().filter(|q| q.watch).count();
    assert!(
        watches >= 2,
        "watch was re-established ({watches} watch requests)"
    );
}

#[test]
fn sigterm_classic_reports_and_exits() {
    reports(
        |_, r| {
            r.signal("-TERM");
        },
        "False",
        "AdapterTerminated",
        &format!(
            "Pod {POD} is shutting down (reporter received SIGTERM) before the adapter produced a result"
        ),
        1,
    );
}

#[test]
fn sigterm_classic_takes_a_last_look_at_the_file() {
    let rig = Rig::new(Mode::Classic);
    let mut r = rig.start(Mode::Classic, &[]);
    // Half-written and still open: not judged until SIGTERM makes it final.
    let mut f = std::fs::File::create(rig.result_path()).unwrap();
    f.write_all(br#"{"status":"succ"#).unwrap();
    f.flush().unwrap();
    r.logs.wait_for(&["result file read", "Writing"], WAIT);
    r.signal("-TERM");
    rig.expect_condition(
        "False",
        "InvalidResultFormat",
        "Failed to parse adapter result: failed to parse JSON: EOF while parsing a string at line 1 column 15",
    );
    assert_eq!(r.wait_exit(WAIT), 1);
    drop(f);
}

#[test]
fn native_idles_after_reporting_until_sigterm() {
    let rig = Rig::new(Mode::Native);
    let mut r = rig.start(Mode::Native, &[]);
    rig.write_result(r#"{"status":"failure","reason":"Checked","message":"native sidecar"}"#);
    rig.expect_condition("False", "Checked", "native sidecar");
    r.logs.wait_for(&["idling until the pod shuts down"], WAIT);
    assert!(
        r.still_running(),
        "a native sidecar must not exit after reporting"
    );
    r.signal("-TERM");
    assert_eq!(r.wait_exit(WAIT), 0);
    assert_eq!(rig.status_writes(), 1);
}

#[test]
fn native_sigterm_waits_for_adapter_state() {
    let rig = Rig::new(Mode::Native);
    let mut r = rig.start(Mode::Native, &[]);
    // The kubelet stops sidecars after the adapter ended; its status may reach the API later.
    r.signal("-TERM");
    r.logs.wait_for(&["shutdown requested"], WAIT);
    rig.api
        .set_container_terminated(NS, POD, "adapter", 1, "Error", "");
    rig.expect_condition(
        "False",
        "AdapterExitedWithError",
        "Adapter container exited with code 1: Error",
    );
    assert_eq!(r.wait_exit(WAIT), 0);
}

#[test]
fn job_not_found_is_reported_clearly() {
    let rig = Rig::new(Mode::Classic);
    let mut r = Reporter::spawn(rig.command(Mode::Classic, &[("JOB_NAME", "no-such-job")]));
    rig.write_result(r#"{"status":"success"}"#);
    assert_eq!(r.wait_exit(WAIT), 1);
    let logs = r.logs.text();
    assert!(
        logs.contains("get jobs/status default/no-such-job failed with HTTP 404"),
        "{logs}"
    );
}

#[test]
fn bad_env_values_exit_2_naming_the_variable() {
    let rig = Rig::new(Mode::Classic);
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

#[test]
fn few_api_requests_per_run() {
    let rig = Rig::new(Mode::Classic);
    let mut r = rig.start(Mode::Classic, &[]);
    rig.write_result(r#"{"status":"success","reason":"Quiet","message":"few requests"}"#);
    rig.expect_condition("True", "Quiet", "few requests");
    assert_eq!(r.wait_exit(WAIT), 0);
    let log: Vec<String> = rig
        .api
        .requests()
        .iter()
        .map(|q| format!("{} {}", q.method, q.path))
        .collect();
    // LIST + WATCH pods, GET status, PATCH the pod's result condition, PUT status, POST event.
    assert!(log.len() <= 6, "{log:#?}");
}

#[test]
fn polling_fallback_when_results_directory_is_missing() {
    let rig = Rig::new(Mode::Classic);
    let dir = rig.results.join("later");
    let path = dir.join("adapter-result.json");
    let path_text = path.to_str().unwrap().to_string();
    let mut r = Reporter::spawn(rig.command(
        Mode::Classic,
        &[("RESULTS_PATH", &path_text), ("POLL_INTERVAL_SECONDS", "1")],
    ));
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
    rig.expect_condition("True", "Polled", "found by polling");
    assert_eq!(r.wait_exit(WAIT), 0);
}

#[test]
fn fifo_at_results_path_is_invalid_and_never_blocks() {
    let rig = Rig::new(Mode::Classic);
    let mut r = rig.start(Mode::Classic, &[]);
    let status = Command::new("mkfifo")
        .arg(rig.result_path())
        .status()
        .unwrap();
    assert!(status.success());
    rig.api
        .set_container_terminated(NS, POD, "adapter", 0, "Completed", "");
    rig.expect_condition(
        "False",
        "InvalidResultFormat",
        &format!(
            "Failed to parse adapter result: result file is not a regular file: path={} type=fifo (expected a regular JSON file)",
            rig.result_path().display()
        ),
    );
    assert_eq!(r.wait_exit(WAIT), 1);
}

#[test]
fn json_logs() {
    let rig = Rig::new(Mode::Classic);
    let mut r = rig.start(
        Mode::Classic,
        &[("LOG_FORMAT", "json"), ("LOG_LEVEL", "info")],
    );
    rig.write_result(r#"{"status":"success","reason":"Json","message":"structured"}"#);
    rig.expect_condition("True", "Json", "structured");
    assert_eq!(r.wait_exit(WAIT), 0);
    let logs = r.logs.text();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let decided = lines
        .iter()
        .find(|l| l["message"] == "outcome decided")
        .unwrap_or_else(|| panic!("{logs}"));
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

#[test]
fn forbidden_status_write_names_verb_and_resource() {
    let rig = Rig::new(Mode::Classic);
    let mut r = rig.start(Mode::Classic, &[]);
    rig.api
        .inject_fault(Fault::status("PUT", "/jobs/adapter-job/status", 403, 1));
    rig.write_result(r#"{"status":"success"}"#);
    assert_eq!(r.wait_exit(WAIT), 1);
    let logs = r.logs.text();
    assert!(
        logs.contains("update jobs/status default/adapter-job failed with HTTP 403")
            && logs.contains("needs verbs get and update on resource jobs/status"),
        "{logs}"
    );
    assert!(rig.api.job_condition(NS, JOB, "Available").is_none());
}

#[test]
fn native_second_signal_stops_waiting() {
    let rig = Rig::new(Mode::Native);
    let mut r = rig.start(Mode::Native, &[]);
    r.signal("-TERM");
    r.logs.wait_for(&["shutdown requested"], WAIT);
    // The adapter's state never arrives; a second signal reports what is known at once.
    r.signal("-INT");
    // Without the second signal the reporter would wait 10 s for the adapter's state; 5 s
    // (far below that, far above the few ms it takes) tells the two apart.
    let c = rig.api.wait_for_blocking(
        "condition after the second signal",
        Duration::from_secs(5),
        |s| s.job_condition(NS, JOB, "Available"),
    );
    assert_eq!(c["reason"], "AdapterTerminated");
    assert_eq!(
        c["message"],
        format!(
            "Pod {POD} is shutting down (reporter received SIGTERM) before the adapter produced a result"
        )
    );
    assert_eq!(r.wait_exit(WAIT), 0);
}

/// Starts the reporter with `env` on top of the rig's and expects it to stop at start with
/// exit 2 and `want` in its message, before any request on the Job.
fn refused_at_start(rig: &Rig, env: &[(&str, &str)], want: &str) {
    let mut r = Reporter::spawn(rig.command(Mode::Classic, env));
    assert_eq!(r.wait_exit(WAIT), 2, "{env:?}");
    let logs = r.logs.text();
    assert!(
        logs.contains(&format!("status-reporter: invalid configuration: {want}")),
        "{env:?}: {logs}"
    );
    assert!(
        rig.api
            .requests()
            .iter()
            .all(|q| !q.path.contains("/jobs/")),
        "no API request on the Job with bad configuration"
    );
}

/// Issue 13, item 5: the max wait has one upper bound (365 days); above it the reporter
/// stops with exit 2 (it used to panic on the `Instant` overflow at 2^63-1); at it, it runs.
#[test]
fn max_wait_has_one_upper_bound_and_never_panics() {
    let rig = Rig::new(Mode::Classic);
    for value in ["9223372036854775807", "31536001"] {
        refused_at_start(
            &rig,
            &[("MAX_WAIT_TIME_SECONDS", value)],
            &format!("MAX_WAIT_TIME_SECONDS: must be at most 31536000 (365 days), got: {value}"),
        );
    }
    let mut r = rig.start(Mode::Classic, &[("MAX_WAIT_TIME_SECONDS", "31536000")]);
    rig.write_result(r#"{"status":"success","reason":"Year","message":"within a year"}"#);
    rig.expect_condition("True", "Year", "within a year");
    assert_eq!(r.wait_exit(WAIT), 0);
}

/// Issue 13, item 6: a results directory that is, or is inside, a system directory is
/// refused, with the list in the message.
#[test]
fn results_directory_over_a_system_directory_exits_2() {
    let rig = Rig::new(Mode::Classic);
    for path in [
        "/etc/adapter-result.json",
        "/proc/self/r.json",
        "/run/secrets/x/r.json",
        "/results/../dev/r.json",
        "/r.json",
    ] {
        refused_at_start(
            &rig,
            &[("RESULTS_PATH", path)],
            &format!(
                "RESULTS_PATH: must be a file whose directory is not / and neither is nor is inside a system directory (/bin, /boot, /dev, /etc, /lib, /lib32, /lib64, /libx32, /proc, /run, /sbin, /sys, /usr, /var/run/secrets), got: {path:?}"
            ),
        );
    }
}

/// Issue 13, item 10: the reporter is never its own adapter.
#[test]
fn adapter_container_naming_the_reporter_exits_2() {
    let rig = Rig::new(Mode::Classic);
    refused_at_start(
        &rig,
        &[("ADAPTER_CONTAINER_NAME", "status-reporter")],
        "ADAPTER_CONTAINER_NAME: must be the adapter container's name, not the reporter's own (status-reporter), got: \"status-reporter\"",
    );
}

/// Issue 13, item 10: an adapter the pod does not have is reported as a configuration error
/// once the pod is seen (naming the pod's containers), instead of waiting out the deadline.
#[test]
fn adapter_container_missing_from_the_pod_reports_a_config_error() {
    let rig = Rig::new(Mode::Classic);
    // Reported from the first list of the pod, before any watch opens.
    let mut r = Reporter::spawn(rig.command(Mode::Classic, &[("ADAPTER_CONTAINER_NAME", "main")]));
    rig.expect_condition(
        "False",
        "AdapterConfigError",
        &format!(
            "Adapter container main is not in pod {POD}, whose containers are: adapter, status-reporter; set ADAPTER_CONTAINER_NAME to one of them"
        ),
    );
    assert_eq!(r.wait_exit(WAIT), 1);
    r.logs.wait_for(
        &[
            "ADAPTER_CONTAINER_NAME names no container of the pod",
            "adapter, status-reporter",
        ],
        Duration::ZERO,
    );
}

/// Issue 13, item 11: a directory at RESULTS_PATH (there before the reporter, like a file it
/// finds at start) follows the invalid-file rule: the adapter's abnormal exit wins. It used to
/// be reported as invalid at once, before the pod was even seen.
#[test]
fn non_regular_file_at_results_path_waits_like_an_invalid_file() {
    let rig = Rig::new(Mode::Classic);
    std::fs::create_dir(rig.result_path()).unwrap();
    rig.api
        .set_container_terminated(NS, POD, "adapter", 1, "Error", "");
    let mut r = Reporter::spawn(rig.command(Mode::Classic, &[]));
    rig.expect_condition(
        "False",
        "AdapterExitedWithError",
        "Adapter container exited with code 1: Error",
    );
    assert_eq!(r.wait_exit(WAIT), 1);
}

/// Issue 13, item 12: JOB_NAME, JOB_NAMESPACE and POD_NAME are Kubernetes names (they become
/// API path segments: `a/../../b` used to reach the server as a path).
#[test]
fn job_and_pod_names_are_validated_as_kubernetes_names() {
    let rig = Rig::new(Mode::Classic);
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
#[test]
fn condition_type_must_be_a_qualified_name() {
    let rig = Rig::new(Mode::Classic);
    for value in ["a/b c".to_owned(), "A".repeat(1000)] {
        refused_at_start(
            &rig,
            &[("CONDITION_TYPE", &value)],
            "CONDITION_TYPE: must be a qualified name: at most 63 characters",
        );
    }
    let mut r = rig.start(Mode::Classic, &[("CONDITION_TYPE", "example.com/DNSReady")]);
    rig.write_result(r#"{"status":"success"}"#);
    let c = rig.condition("example.com/DNSReady");
    assert_eq!(c["status"], "True");
    assert_eq!(r.wait_exit(WAIT), 0);
}

/// Issue 11: the Job GET for `backoffLimit` (OnFailure pods only) runs beside the event loop:
/// while it hangs (for the 10 s request timeout), a result file is still reported at once.
#[test]
fn hung_backoff_limit_read_never_delays_the_result() {
    let rig = Rig::with(
        Mode::Classic,
        JobBuilder::new(NS, JOB)
            .backoff_limit(2)
            .restart_policy("OnFailure"),
        PodBuilder::new(NS, POD).restart_policy("OnFailure"),
    );
    let status = format!("/jobs/{JOB}/status");
    rig.api.inject_fault(Fault::hang("GET", &status, 1));
    let mut r = Reporter::spawn(rig.command(Mode::Classic, &[]));
    rig.api
        .wait_for_blocking("the hung backoffLimit read", WAIT, |s| {
            s.requests()
                .iter()
                .any(|q| q.method == "GET" && q.path.ends_with(&status) && q.status == 0)
                .then_some(())
        });
    rig.write_result(r#"{"status":"success","reason":"Prompt","message":"not held up"}"#);
    // Far below the 10 s the hung read lasts, far above the milliseconds a report takes.
    let c = rig.api.wait_for_blocking(
        "the condition while the read hangs",
        Duration::from_secs(5),
        |s| s.job_condition(NS, JOB, "Available"),
    );
    assert_eq!(
        (c["reason"].as_str(), c["status"].as_str()),
        (Some("Prompt"), Some("True"))
    );
    assert_eq!(r.wait_exit(WAIT), 0);
}
