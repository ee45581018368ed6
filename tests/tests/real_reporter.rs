//! The real reporter on the real API server with a RoleBinding missing a verb: a real 403,
//! said as users need to read it. (Every row of the outcome table runs on real containers in
//! `node_outcomes.rs`; here the test plays the kubelet, and the reporter runs as a process
//! with the ServiceAccount's token, so its logs can be read as it goes.)

use std::time::Duration;

use harness::control_plane::Cluster;
use harness::control_plane::adapter::{adapter_namespace_without, example_job};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_missing_verb_is_a_real_403_naming_the_verb_and_resource() {
    let cluster = Cluster::shared();
    let name = "forbidden-update";
    let ns = adapter_namespace_without(cluster, name, "jobs/status", "update").await;
    ns.create_job(example_job(name, "classic", &[])).await;
    let (pod, results) = ns.running_pod(name, WAIT).await;
    std::fs::write(
        results.join("adapter-result.json"),
        r#"{"status":"success","reason":"ChecksPassed","message":"All checks passed"}"#,
    )
    .expect("write");
    let mut reporter = ns.start_reporter(&pod, &results, &[]);
    let (code, logs) = reporter.wait_exit_with_logs(WAIT);
    assert_ne!(code, 0, "a forbidden write is not a success; logs:\n{logs}");
    assert!(
        logs.contains("forbidden") && logs.contains("update") && logs.contains("jobs/status"),
        "the 403 names the verb and the resource; logs:\n{logs}"
    );
}

/// A Role that grants `list` but not `watch` on pods (an easy slip) is a real 403 on the
/// watch. Retrying cannot grant the verb: the reporter says once what is missing, stops
/// watching the pod and still reports the adapter's result file.
#[tokio::test]
async fn a_forbidden_pod_watch_is_said_once_and_the_result_file_still_reports() {
    let cluster = Cluster::shared();
    let name = "forbidden-watch";
    let ns = adapter_namespace_without(cluster, name, "pods", "watch").await;
    ns.create_job(example_job(name, "classic", &[])).await;
    let (pod, results) = ns.running_pod(name, WAIT).await;
    let mut reporter = ns.start_reporter(&pod, &results, &[]);
    // The file comes after the refusal, so the run goes on without the pod watch.
    reporter
        .logs
        .wait_for(&["cannot watch pod", "HTTP 403"], WAIT);
    std::fs::write(
        results.join("adapter-result.json"),
        r#"{"status":"success","reason":"ChecksPassed","message":"All checks passed"}"#,
    )
    .expect("write");
    let (code, logs) = reporter.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "the result file is reported; logs:\n{logs}");
    assert_eq!(
        logs.matches("cannot watch pod").count(),
        1,
        "the refusal is said once; logs:\n{logs}"
    );
    assert!(
        logs.contains("verbs list and watch on resource pods") && !logs.contains("resuming"),
        "the error names the verbs and the resource, and the watch is not retried; logs:\n{logs}"
    );
    let condition = ns.wait_condition(name, "Available", WAIT).await;
    assert_eq!(condition.status, "True");
    assert_eq!(condition.reason.as_deref(), Some("ChecksPassed"));
}
