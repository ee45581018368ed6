//! The termination-message result channel ([docs/reporter.md](../../docs/reporter.md), "Result channels") with the real reporter
//! on the real API server: the adapter writes its result to its termination message
//! (`terminationMessagePath`) instead of the shared file. With no valid result file, a valid
//! result there is used; when both exist the file wins; anything else there (a log tail, an
//! invalid result) is no result, and the original's message for the case stands unchanged.

use harness::control_plane::kubelet::pod_condition;
use harness::reporter_process::{Rig, WAIT};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

/// A classic reporter for Job `name`; the adapter optionally writes `file`, then terminates
/// with `code` and termination `message`. Returns (status, reason, message) of the condition,
/// the reporter's exit code and the rig.
async fn run(
    name: &str,
    file: Option<&str>,
    code: i32,
    message: &str,
) -> ((String, String, String), i32, Rig) {
    let rig = Rig::new(name, "classic").await;
    let mut r = rig.start(&[]).await;
    if let Some(body) = file {
        rig.write_result(body);
    }
    let reason = if code == 0 { "Completed" } else { "Error" };
    rig.terminate(code, reason, Some(message)).await;
    let c = rig.condition("Available").await;
    let fields = (
        c.status,
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    );
    (fields, r.wait_exit(WAIT), rig)
}

fn fields(f: &(String, String, String)) -> (&str, &str, &str) {
    (&f.0, &f.1, &f.2)
}

#[tokio::test]
async fn a_valid_result_in_the_termination_message_is_used_when_there_is_no_file() {
    let (c, code, rig) = run(
        "message-failure",
        None,
        1,
        r#"{"status":"failure","reason":"QuotaLow","message":"2 of 10 left"}"#,
    )
    .await;
    assert_eq!(fields(&c), ("False", "QuotaLow", "2 of 10 left"));
    assert_eq!(code, 1);
    // The pod's own record says the same.
    let pods: Api<Pod> = Api::namespaced(rig.ns.client.clone(), &rig.ns.name);
    let pod = pods.get(rig.pod_name()).await.expect("pod");
    let record = pod_condition(&pod, "status-reporter.hyperfleet.io/result").expect("recorded");
    let record = (
        record.status,
        record.reason.unwrap_or_default(),
        record.message.unwrap_or_default(),
    );
    assert_eq!(fields(&record), ("False", "QuotaLow", "2 of 10 left"));

    let (c, code, _) = run("message-success", None, 0, r#"{"status":"success"}"#).await;
    assert_eq!(
        fields(&c),
        ("True", "NoReasonProvided", "No message provided")
    );
    assert_eq!(code, 0);
}

/// The adapter writes the file, then exits with another result in its termination message:
/// the file's result is the condition (when both are seen at once, the decision table's
/// "the file wins when both exist" case in `reporter/src/outcome.rs` decides the same).
#[tokio::test]
async fn the_file_wins_when_both_exist() {
    let (c, code, _) = run(
        "file-and-message",
        Some(r#"{"status":"success","reason":"FromFile","message":"the file"}"#),
        1,
        r#"{"status":"failure","reason":"FromMessage","message":"the message"}"#,
    )
    .await;
    assert_eq!(fields(&c), ("True", "FromFile", "the file"));
    assert_eq!(code, 0);
}

#[tokio::test]
async fn anything_else_in_the_termination_message_leaves_the_original_message() {
    // A log tail, as FallbackToLogsOnError puts there.
    let log_tail = "panic: dial tcp 10.0.0.1:443: connection refused\n";
    let (c, _, _) = run("message-log-tail", None, 1, log_tail).await;
    assert_eq!(
        fields(&c),
        (
            "False",
            "AdapterExitedWithError",
            "Adapter container exited with code 1: Error"
        )
    );
    // An invalid result.
    let (c, _, _) = run("message-invalid", None, 0, r#"{"status":"maybe"}"#).await;
    assert_eq!(
        fields(&c),
        (
            "False",
            "AdapterMissingResults",
            "Adapter container exited successfully (code 0) but did not produce a valid result file: Completed"
        )
    );
}
