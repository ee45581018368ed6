//! `status-reporter wait job/NAME` against the stand-in: the real binary, one watch on the Job,
//! the condition written as the reporter (or the Job controller) would; every exit code (0 True,
//! 1 False once the Job finished or when it failed without the condition, 3 timeout, 2 missing
//! Job or forbidden), progress on stderr, and `-o json` checked against
//! `schema/wait-output.schema.json`. Waits are on the stand-in's request log and the process's
//! exit, bounded — never a sleep.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use stand_in::fixtures::JobBuilder;
use stand_in::process::Process;
use stand_in::reporter_process::reporter_vars;
use stand_in::{Fault, StandIn};

const NS: &str = "ci";
const JOB: &str = "dns-check";
const WAIT: Duration = Duration::from_secs(20);

struct Rig {
    api: StandIn,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Rig {
    fn new() -> Rig {
        let api = StandIn::start();
        api.create_job(JobBuilder::new(NS, JOB).build());
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.write_kubeconfig(dir.path());
        Rig {
            api,
            _dir: dir,
            kubeconfig,
        }
    }

    /// Starts `status-reporter wait` with `args` (stdout piped).
    fn start(&self, args: &[&str]) -> Process {
        let mut cmd = command(&self.kubeconfig, args);
        Process::spawn(cmd.stdout(Stdio::piped()), "status-reporter wait")
    }

    /// [`Rig::start`], then waits until its watch on the Job is open (so what the test writes
    /// next arrives as a change).
    fn start_watching(&self, args: &[&str]) -> Process {
        let p = self.start(args);
        self.api
            .wait_for_blocking("the wait's Job watch", WAIT, |s| {
                s.requests()
                    .iter()
                    .any(|r| r.watch && r.path.ends_with("/jobs") && r.status == 200)
                    .then_some(())
            });
        p
    }

    fn set(&self, condition: Value) {
        self.api.job_controller_set_condition(NS, JOB, condition);
    }
}

fn command(kubeconfig: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(stand_in::bin::path("status-reporter"));
    for var in reporter_vars().chain(["WAIT_NAMESPACE", "WAIT_TIMEOUT", "WAIT_OUTPUT"]) {
        cmd.env_remove(var);
    }
    cmd.env("KUBECONFIG", kubeconfig)
        .args(["wait", &format!("job/{JOB}"), "-n", NS])
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

fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/wait-output.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn check_schema(out: &str) -> Value {
    let value: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let errors: Vec<String> = schema()
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{value}: {errors:?}");
    value
}

#[test]
fn true_exits_0_after_progress_on_stderr() {
    let rig = Rig::new();
    let p = rig.start_watching(&[]);
    rig.set(cond(
        "Available",
        "Unknown",
        "AwaitingResults",
        "1/3 indexes reported",
    ));
    rig.set(cond(
        "Available",
        "Unknown",
        "AwaitingResults",
        "2/3 indexes reported",
    ));
    rig.set(cond(
        "Available",
        "True",
        "Ok",
        "3/3 indexes succeeded: fine",
    ));
    let (code, out, err) = finish(p);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Available=True Ok: 3/3 indexes succeeded: fine\n");
    assert!(
        err.contains("Available=Unknown AwaitingResults: 1/3 indexes reported")
            && err.contains("Available=Unknown AwaitingResults: 2/3 indexes reported"),
        "{err}"
    );
    let watches = rig.api.requests().iter().filter(|r| r.watch).count();
    assert_eq!(watches, 1, "one watch, no polling");
}

#[test]
fn false_exits_1_once_the_job_finished_and_json_matches_the_schema() {
    let rig = Rig::new();
    let p = rig.start_watching(&["-o", "json"]);
    rig.set(cond("Available", "False", "DnsMissing", "no A record"));
    // Not final yet: the Job may retry.
    p.logs.wait_for(&["a retry may still succeed"], WAIT);
    rig.set(cond(
        "Failed",
        "True",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    ));
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
    assert_eq!(v["job"], json!({"namespace": NS, "name": JOB}));
}

#[test]
fn true_as_json_matches_the_schema() {
    let rig = Rig::new();
    rig.set(cond(
        "Available",
        "True",
        "ChecksPassed",
        "All checks passed",
    ));
    rig.set(cond(
        "Complete",
        "True",
        "CompletionsReached",
        "Reached expected number of succeeded pods",
    ));
    let (code, out, err) = finish(rig.start(&["-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let v = check_schema(&out);
    assert_eq!(v["complete"]["type"], "Complete");
    assert_eq!(v["lastTransitionTime"], "2026-11-30T10:00:00Z");
}

#[test]
fn a_job_that_failed_without_the_condition_fails_fast() {
    let rig = Rig::new();
    let p = rig.start_watching(&["-o", "json"]);
    rig.set(cond(
        "Failed",
        "True",
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    ));
    let (code, out, err) = finish(p);
    assert_eq!(code, 1, "{err}");
    let v = check_schema(&out);
    assert_eq!(
        (&v["status"], &v["reported"], &v["reason"]),
        (&json!("False"), &json!(false), &json!("DeadlineExceeded"))
    );
    let rig = Rig::new();
    rig.set(cond(
        "Failed",
        "True",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    ));
    let (code, out, _) = finish(rig.start(&[]));
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "Available not reported: the Job failed: BackoffLimitExceeded: Job has reached the specified backoff limit\n"
    );
}

#[test]
fn timeout_exits_3_naming_the_last_progress() {
    let rig = Rig::new();
    rig.set(cond(
        "Available",
        "Unknown",
        "AwaitingResults",
        "0/2 indexes reported",
    ));
    let (code, out, err) = finish(rig.start(&["--timeout", "1s"]));
    assert_eq!(code, 3, "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains(&format!("timed out after 1s waiting for Available on job {NS}/{JOB} (last: Available=Unknown AwaitingResults: 0/2 indexes reported)")),
        "{err}"
    );
}

#[test]
fn a_missing_job_exits_2_clearly() {
    let rig = Rig::new();
    rig.api.delete_job(NS, JOB);
    let (code, out, err) = finish(rig.start(&[]));
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains(&format!("status-reporter wait: job {NS}/{JOB} not found")),
        "{err}"
    );
}

#[test]
fn forbidden_exits_2_naming_the_permission() {
    let rig = Rig::new();
    rig.api.inject_fault(Fault::status("GET", "/jobs", 403, 1));
    let mut cmd = command(&rig.kubeconfig, &[]);
    let p = Process::spawn(cmd.stdout(Stdio::piped()), "status-reporter wait");
    let (code, _, err) = finish(p);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("HTTP 403")
            && err.contains("needs verbs list and watch on resource jobs in namespace ci"),
        "{err}"
    );
}

#[test]
fn bad_arguments_exit_2_saying_what_is_accepted() {
    let rig = Rig::new();
    let (code, _, err) = finish(rig.start(&["--timeout", "soon"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("--timeout: must be a positive duration like 90s, 10m or 1h30m"),
        "{err}"
    );
}
