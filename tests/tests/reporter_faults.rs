//! Fault tests: the real `status-reporter` binary against a misbehaving Kubernetes API
//! (the stand-in with scripted faults, or no API at all). Each test asserts the condition that
//! ends up on the Job, the exit code and the text on stderr. Waiting is always on an event
//! (a stand-in change, a log line, process exit) with a bounded timeout — never a sleep.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use stand_in::Fault;
use stand_in::reporter_process::{self, Reporter};

const NS: &str = "default";
const JOB: &str = "adapter-job";
const POD: &str = "adapter-job-f4ult";
const WAIT: Duration = Duration::from_secs(30);
const STATUS_PATH: &str = "/jobs/adapter-job/status";
const SUCCESS: &str = r#"{"status":"success","reason":"ChecksPassed","message":"all good"}"#;

// ---------------------------------------------------------------------------------------------
// Harness

/// The shared rig (a stand-in with the Job and its running pod, classic sidecar, a results dir
/// and a kubeconfig) with this suite's checks on top.
struct Rig(reporter_process::Rig);

impl Deref for Rig {
    type Target = reporter_process::Rig;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Rig {
    fn new() -> Rig {
        Rig(reporter_process::Rig::new(NS, JOB, POD))
    }

    /// The reporter's command, talking to the API named in `kubeconfig`.
    fn command(&self, kubeconfig: &std::path::Path) -> Command {
        let mut cmd = self.0.command(&[]);
        cmd.env("KUBECONFIG", kubeconfig);
        cmd
    }

    /// Starts the reporter and waits until its pod watch is open.
    fn start(&self) -> Reporter {
        self.start_with(&[])
    }

    /// Like [`Rig::start`], with extra env (e.g. `SIDECAR_MODE=native`).
    fn start_with(&self, env: &[(&str, &str)]) -> Reporter {
        self.0.start(env, WAIT)
    }

    /// Waits until at least `n` pod watches have been answered 200.
    fn wait_watches(&self, n: usize) {
        self.wait_pod_watches(n, WAIT);
    }

    fn expect_condition(&self, status: &str, reason: &str) -> Value {
        let c = self.condition("Available", WAIT);
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some(status), Some(reason)),
            "condition {c}"
        );
        c
    }

    /// Status codes the stand-in answered on the Job's status resource, in order.
    fn status_answers(&self, method: &str) -> Vec<u16> {
        self.api
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(STATUS_PATH))
            .map(|r| r.status)
            .collect()
    }
}

/// A TCP forwarder to the stand-in, started on a port that refused connections until now.
fn forward(listener: TcpListener, to: SocketAddr) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { return };
            let Ok(server) = TcpStream::connect(to) else {
                return;
            };
            for (mut from, mut into) in [
                (client.try_clone(), server.try_clone()),
                (server.try_clone(), client.try_clone()),
            ]
            .into_iter()
            .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
            {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = into.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Tests

/// No API server at all when the reporter starts (connection refused); it comes up a little
/// later on the same address. The reporter keeps retrying within its deadline and reports.
#[test]
fn api_down_at_start_then_up() {
    let rig = Rig::new();
    // A port nobody listens on: connections are refused until we bind it again below.
    let reserved = TcpListener::bind("127.0.0.1:0").expect("reserve a port");
    let addr = reserved.local_addr().expect("addr");
    drop(reserved);
    let kubeconfig = rig.dir.path().join("kubeconfig-down");
    let text = std::fs::read_to_string(&rig.kubeconfig).expect("kubeconfig");
    std::fs::write(
        &kubeconfig,
        text.replace(&rig.api.url(), &format!("http://{addr}")),
    )
    .expect("write kubeconfig");

    rig.write_result(SUCCESS);
    let mut r = Reporter::spawn(rig.command(&kubeconfig));
    // The outcome is known at once; the write fails with "connection refused" and is retried.
    let line = r
        .logs
        .wait_for(&["transient API error, retrying", "jobs/status"], WAIT);
    assert!(
        line.to_lowercase().contains("connect") || line.contains("refused"),
        "retry log does not say the connection failed: {line}"
    );
    assert!(
        rig.api.requests().is_empty(),
        "nothing can have reached the API yet"
    );

    let listener = TcpListener::bind(addr).expect("bind the reserved port again");
    forward(
        listener,
        rig.api
            .url()
            .trim_start_matches("http://")
            .parse()
            .expect("addr"),
    );

    rig.expect_condition("True", "ChecksPassed");
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
}

/// Bursts of 500 and 429 on every step of the write (the Go original lost the outcome after
/// three 500s): the reporter retries, honours Retry-After, and the outcome lands once.
#[test]
fn bursts_of_500_and_429_are_retried() {
    let rig = Rig::new();
    let mut r = rig.start();
    rig.api
        .inject_fault(Fault::status("GET", STATUS_PATH, 500, 3));
    rig.api
        .inject_fault(Fault::status("GET", STATUS_PATH, 429, 1));
    rig.api
        .inject_fault(Fault::status("PUT", STATUS_PATH, 503, 1));
    rig.api
        .inject_fault(Fault::status("PUT", STATUS_PATH, 429, 1));
    rig.api
        .inject_fault(Fault::status("PUT", STATUS_PATH, 500, 2));
    rig.api.inject_fault(Fault::drop("PUT", STATUS_PATH, 1));
    rig.write_result(SUCCESS);

    let c = rig.expect_condition("True", "ChecksPassed");
    assert_eq!(c["message"], "all good");
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
    assert_eq!(rig.status_answers("GET"), [500, 500, 500, 429, 200], "GETs");
    // The dropped connection has no HTTP status; whatever the log records, one PUT succeeded.
    let puts = rig.status_answers("PUT");
    assert_eq!(
        puts.iter().filter(|&&s| s == 200).count(),
        1,
        "PUTs {puts:?}"
    );
    assert_eq!(&puts[..4], [503, 429, 500, 500], "PUTs {puts:?}");
    assert!(
        logs.contains("transient API error, retrying"),
        "logs:\n{logs}"
    );
    assert!(logs.contains("HTTP 429"), "logs:\n{logs}");
}

/// The apiserver restarts again and again: every watch is cut mid-stream, once with history
/// compacted (resume → 410 Gone → relist). The adapter's exit is still seen and reported.
#[test]
fn watch_cut_repeatedly() {
    let rig = Rig::new();
    let mut r = rig.start();
    for round in 1..=5 {
        if round == 3 {
            // Force the resume to fail with 410 Gone: the watcher must relist.
            rig.api.set_container_running(NS, POD, "adapter");
            rig.api.compact_history();
        }
        rig.api.cut_watches();
        rig.wait_watches(round + 1);
    }
    rig.api
        .set_container_terminated(NS, POD, "adapter", 1, "Error", "");
    let c = rig.expect_condition("False", "AdapterExitedWithError");
    assert_eq!(c["message"], "Adapter container exited with code 1: Error");
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
}

/// The Job is deleted while the reporter waits: the write fails with a clear 404 naming the
/// Job, without retrying a permanent error, and the process exits 1 (no outcome written).
#[test]
fn job_deleted_mid_run() {
    let rig = Rig::new();
    let mut r = rig.start();
    rig.api.delete_job(NS, JOB);
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
    assert!(logs.contains("HTTP 404"), "logs:\n{logs}");
    assert!(
        logs.contains(r#"jobs.batch \"adapter-job\" not found"#)
            || logs.contains(r#"jobs.batch "adapter-job" not found"#),
        "logs:\n{logs}"
    );
    assert!(logs.contains("default/adapter-job"), "logs:\n{logs}");
    assert_eq!(rig.status_answers("GET"), [404], "a 404 is not retried");
    assert!(rig.api.job(NS, JOB).is_none());
}

/// RBAC denies the update: the error names the verb and resource the service account lacks.
#[test]
fn rbac_403_on_update_names_verb_and_resource() {
    let rig = Rig::new();
    let mut r = rig.start();
    rig.api
        .inject_fault(Fault::status("PUT", STATUS_PATH, 403, 1));
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
    let line = r.logs.wait_for(&["HTTP 403"], Duration::ZERO);
    for part in ["update", "jobs/status", "default/adapter-job", "RBAC"] {
        assert!(line.contains(part), "403 line lacks {part:?}: {line}");
    }
    assert_eq!(rig.status_answers("PUT"), [403], "a 403 is not retried");
    assert!(rig.api.job_condition(NS, JOB, "Available").is_none());
}

/// RBAC denies the read: the error names `get` on `jobs/status`.
#[test]
fn rbac_403_on_get_names_verb_and_resource() {
    let rig = Rig::new();
    let mut r = rig.start();
    rig.api
        .inject_fault(Fault::status("GET", STATUS_PATH, 403, 1));
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
    let line = r.logs.wait_for(&["HTTP 403"], Duration::ZERO);
    for part in ["get", "jobs/status", "default/adapter-job"] {
        assert!(line.contains(part), "403 line lacks {part:?}: {line}");
    }
}

/// A refused Event (RBAC on events) never blocks or changes the condition.
#[test]
fn refused_event_does_not_block_the_condition() {
    let rig = Rig::new();
    let mut r = rig.start();
    rig.api
        .inject_fault(Fault::status("POST", "/events", 403, 10));
    rig.write_result(SUCCESS);
    rig.expect_condition("True", "ChecksPassed");
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
    assert!(rig.api.events().is_empty(), "the event was refused");
}

/// One request hangs: it is abandoned after the per-request timeout and the retry succeeds.
#[test]
fn hung_request_is_abandoned_and_retried() {
    let rig = Rig::new();
    let mut r = rig.start();
    rig.api.inject_fault(Fault::hang("GET", STATUS_PATH, 1));
    rig.write_result(SUCCESS);
    rig.expect_condition("True", "ChecksPassed");
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
    assert!(logs.contains("no response within"), "logs:\n{logs}");
}

/// The API never answers (every status request hangs): the reporter gives up at its write
/// deadline (60 s) with a message saying so, instead of hanging forever; exit 1.
#[test]
fn slow_api_beyond_the_deadline_gives_up_clearly() {
    let rig = Rig::new();
    let mut r = rig.start();
    rig.api.inject_fault(Fault::hang("*", STATUS_PATH, 1000));
    let started = Instant::now();
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(Duration::from_secs(100));
    let took = started.elapsed();
    assert_eq!(code, 1, "logs:\n{logs}");
    assert!(logs.contains("gave up writing condition"), "logs:\n{logs}");
    assert!(logs.contains("no response within"), "logs:\n{logs}");
    eprintln!("reporter gave up after {took:?}");
    assert!(rig.api.job_condition(NS, JOB, "Available").is_none());
}

/// Native sidecar: transient errors are retried, then it idles (a native sidecar must not exit
/// after reporting) until SIGTERM, and exits 0.
#[test]
fn native_mode_reports_through_errors_then_idles_until_sigterm() {
    let rig = Rig::new();
    let mut r = rig.start_with(&[("SIDECAR_MODE", "native")]);
    rig.api
        .inject_fault(Fault::status("PUT", STATUS_PATH, 500, 2));
    rig.write_result(SUCCESS);
    rig.expect_condition("True", "ChecksPassed");
    r.logs.wait_for(&["idling until the pod shuts down"], WAIT);
    r.signal("-TERM");
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
    assert_eq!(rig.status_answers("PUT"), [500, 500, 200]);
}

/// Native sidecar with a permanent error: it exits 1 at once, so the kubelet restarts it and
/// the whole report is retried (after the RBAC is fixed).
#[test]
fn native_mode_permanent_error_exits_for_a_restart() {
    let rig = Rig::new();
    let mut r = rig.start_with(&[("SIDECAR_MODE", "native")]);
    rig.api
        .inject_fault(Fault::status("PUT", STATUS_PATH, 403, 1));
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
    assert!(logs.contains("HTTP 403"), "logs:\n{logs}");
}
