//! The termination-message result channel (DESIGN "Result channels") with the real reporter
//! against the stand-in: the adapter writes its result to its termination message
//! (`terminationMessagePath`) instead of the shared file. With no valid result file, a valid
//! result there is used; when both exist the file wins; anything else there (a log tail, an
//! invalid result) is no result, and the original's message for the case stands unchanged.

use std::time::Duration;

use serde_json::Value;
use stand_in::reporter_process::Rig;

const NS: &str = "default";
const JOB: &str = "adapter-job";
const POD: &str = "adapter-job-x7k2p";
const WAIT: Duration = Duration::from_secs(20);

/// A classic reporter; the adapter optionally writes `file`, then terminates with `code` and
/// termination `message`. Returns the condition and the reporter's exit code.
fn run(file: Option<&str>, code: i32, message: &str) -> (Value, i32, Rig) {
    let rig = Rig::new(NS, JOB, POD);
    let mut r = rig.start(&[], WAIT);
    if let Some(body) = file {
        rig.write_result(body);
    }
    let reason = if code == 0 { "Completed" } else { "Error" };
    rig.api
        .set_container_terminated(NS, POD, "adapter", code, reason, message);
    let c = rig.condition("Available", WAIT);
    (c, r.wait_exit(WAIT), rig)
}

fn fields(c: &Value) -> (&str, &str, &str) {
    (
        c["status"].as_str().unwrap_or_default(),
        c["reason"].as_str().unwrap_or_default(),
        c["message"].as_str().unwrap_or_default(),
    )
}

#[test]
fn a_valid_result_in_the_termination_message_is_used_when_there_is_no_file() {
    let (c, code, rig) = run(
        None,
        1,
        r#"{"status":"failure","reason":"QuotaLow","message":"2 of 10 left"}"#,
    );
    assert_eq!(fields(&c), ("False", "QuotaLow", "2 of 10 left"));
    assert_eq!(code, 1);
    // The pod's own record says the same.
    let pod = rig.api.pod(NS, POD).expect("pod");
    let record = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "status-reporter.hyperfleet.io/result")
        .cloned()
        .expect("the result recorded on the pod");
    assert_eq!(fields(&record), ("False", "QuotaLow", "2 of 10 left"));

    let (c, code, _) = run(None, 0, r#"{"status":"success"}"#);
    assert_eq!(
        fields(&c),
        ("True", "NoReasonProvided", "No message provided")
    );
    assert_eq!(code, 0);
}

/// The adapter writes the file, then exits with another result in its termination message:
/// the file's result is the condition (when both are seen at once, the decision table's
/// "the file wins when both exist" case in `reporter/src/outcome.rs` decides the same).
#[test]
fn the_file_wins_when_both_exist() {
    let (c, code, _) = run(
        Some(r#"{"status":"success","reason":"FromFile","message":"the file"}"#),
        1,
        r#"{"status":"failure","reason":"FromMessage","message":"the message"}"#,
    );
    assert_eq!(fields(&c), ("True", "FromFile", "the file"));
    assert_eq!(code, 0);
}

#[test]
fn anything_else_in_the_termination_message_leaves_the_original_message() {
    // A log tail, as FallbackToLogsOnError puts there.
    let (c, _, _) = run(
        None,
        1,
        "panic: dial tcp 10.0.0.1:443: connection refused\n",
    );
    assert_eq!(
        fields(&c),
        (
            "False",
            "AdapterExitedWithError",
            "Adapter container exited with code 1: Error"
        )
    );
    // An invalid result.
    let (c, _, _) = run(None, 0, r#"{"status":"maybe"}"#);
    assert_eq!(
        fields(&c),
        (
            "False",
            "AdapterMissingResults",
            "Adapter container exited successfully (code 0) but did not produce a valid result file: Completed"
        )
    );
}
