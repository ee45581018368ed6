//! The real reporter on the real API server: every row of the outcome table ends with the
//! right condition on the Job as the API server stores it, written with the token of the Job's
//! ServiceAccount bound to the shipped ClusterRole; then the test (playing the kubelet)
//! finishes the Pod and the real Job controller adds its own conditions, and both are there —
//! in both sidecar modes. A RoleBinding missing a verb gives a real 403.

use std::time::Duration;

use harness::control_plane::Cluster;
use harness::control_plane::adapter::{
    adapter_namespace, adapter_namespace_without, condition, condition_types, example_job,
};
use harness::control_plane::kubelet;
use k8s_openapi::api::batch::v1::Job;

const WAIT: Duration = Duration::from_secs(60);
const ADAPTER: &str = "adapter";

/// What the adapter does in a scenario.
#[derive(Clone, Copy)]
enum Adapter {
    /// Writes this result file, then exits 0.
    Writes(&'static str),
    /// Terminates with (exit code, reason) and no result file.
    Exits(i32, &'static str),
    /// Cannot start: waiting with this reason.
    Waits(&'static str, &'static str),
    /// Does nothing until the reporter's deadline.
    Hangs,
}

struct Expect {
    status: &'static str,
    reason: &'static str,
    message: &'static str,
}

/// One row of the outcome table in one sidecar mode, from Job creation to the Job
/// controller's own verdict.
async fn outcome(name: &str, mode: &str, adapter: Adapter, expect: Expect) {
    let cluster = Cluster::shared();
    let ns = adapter_namespace(cluster, name).await;
    let mut annotations = vec![];
    if matches!(adapter, Adapter::Hangs) {
        annotations.push(("status-reporter.hyperfleet.io/max-wait-seconds", "3"));
        annotations.push(("status-reporter.hyperfleet.io/poll-interval-seconds", "1"));
    }
    ns.create_job(example_job(name, mode, &annotations)).await;
    let (pod, results) = ns.running_pod(name, WAIT).await;
    let pod_name = pod.metadata.name.clone().expect("pod name");
    let mut reporter = ns.start_reporter(&pod, &results, &[]);
    // Set up (its watch on the pod delivered the pod) before the adapter acts.
    reporter.logs.wait_for(&["pod update"], WAIT);

    let adapter_exit = match adapter {
        Adapter::Writes(body) => {
            let tmp = results.join(".partial");
            std::fs::write(&tmp, body).expect("write result");
            std::fs::rename(&tmp, results.join("adapter-result.json")).expect("rename");
            kubelet::terminate(
                &ns.client,
                &ns.name,
                &pod_name,
                ADAPTER,
                0,
                "Completed",
                None,
            )
            .await;
            0
        }
        Adapter::Exits(code, reason) => {
            kubelet::terminate(&ns.client, &ns.name, &pod_name, ADAPTER, code, reason, None).await;
            code
        }
        Adapter::Waits(reason, message) => {
            kubelet::waiting(&ns.client, &ns.name, &pod_name, ADAPTER, reason, message).await;
            1
        }
        Adapter::Hangs => 1,
    };

    let ours = ns.wait_condition(name, "Available", WAIT).await;
    assert_eq!(
        (
            ours.status.as_str(),
            ours.reason.as_deref(),
            ours.message.as_deref()
        ),
        (expect.status, Some(expect.reason), Some(expect.message)),
        "{name} ({mode}): the stored condition; reporter logs:\n{}",
        reporter.logs.text()
    );

    // The kubelet's part: in native mode the reporter idles until the pod shuts down.
    let reporter_code = if mode == "native" {
        if adapter_exit == 1 && !matches!(adapter, Adapter::Exits(..)) {
            kubelet::terminate(&ns.client, &ns.name, &pod_name, ADAPTER, 1, "Error", None).await;
        }
        reporter.signal("-TERM");
        let code = reporter.wait_exit(WAIT);
        assert_eq!(code, 0, "native sidecar exits 0 on SIGTERM");
        0
    } else {
        let code = reporter.wait_exit(WAIT);
        let expected = i32::from(expect.status != "True");
        assert_eq!(
            code,
            expected,
            "classic sidecar exit code; logs:\n{}",
            reporter.logs.text()
        );
        code
    };
    // Classic: a False outcome fails the pod (exit 1) as in the original; native: only the
    // adapter's exit code counts.
    let failed = adapter_exit != 0 || reporter_code != 0;
    let phase = if failed { "Failed" } else { "Succeeded" };
    kubelet::finish(&ns.client, &ns.name, &pod_name, phase).await;
    let (target, terminal) = if failed {
        ("FailureTarget", "Failed")
    } else {
        ("SuccessCriteriaMet", "Complete")
    };
    let job = ns
        .wait_job(name, terminal, WAIT, |j: &Job| {
            condition(j, terminal).is_some()
        })
        .await;
    let types = condition_types(&job);
    assert!(
        types.contains(&"Available".to_owned()) && types.contains(&target.to_owned()),
        "{name} ({mode}): the Job controller's and our conditions side by side: {types:?}"
    );
    let ours_after = condition(&job, "Available").expect("ours is kept");
    assert_eq!(ours_after.status, ours.status);
    assert_eq!(ours_after.message, ours.message);
}

macro_rules! outcome_tests {
    ($($name:ident: $adapter:expr => $status:literal, $reason:literal, $message:literal;)*) => {
        mod native {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    outcome(&format!("{}-n", stringify!($name).replace('_', "-")), "native", $adapter, Expect { status: $status, reason: $reason, message: $message }).await;
                }
            )*
        }
        mod classic {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    outcome(&format!("{}-c", stringify!($name).replace('_', "-")), "classic", $adapter, Expect { status: $status, reason: $reason, message: $message }).await;
                }
            )*
        }
    };
}

outcome_tests! {
    valid_success: Adapter::Writes(r#"{"status":"success","reason":"ChecksPassed","message":"All checks passed"}"#)
        => "True", "ChecksPassed", "All checks passed";
    valid_failure: Adapter::Writes(r#"{"status":"failure","reason":"DnsMissing","message":"no A record"}"#)
        => "False", "DnsMissing", "no A record";
    invalid_result: Adapter::Writes(r#"{"status":"maybe"}"#)
        => "False", "InvalidResultFormat", "Failed to parse adapter result: invalid result format: status: must be either 'success' or 'failure'";
    timeout: Adapter::Hangs
        => "False", "AdapterTimeout", "Adapter did not produce results within 3s";
    exit_non_zero: Adapter::Exits(1, "Error")
        => "False", "AdapterExitedWithError", "Adapter container exited with code 1: Error";
    oom_killed: Adapter::Exits(137, "OOMKilled")
        => "False", "AdapterOOMKilled", "Adapter container was killed due to out of memory (OOMKilled)";
    exit_zero_without_result: Adapter::Exits(0, "Completed")
        => "False", "AdapterMissingResults", "Adapter container exited successfully (code 0) but did not produce a valid result file: Completed";
    image_pull_failure: Adapter::Waits("ImagePullBackOff", "Back-off pulling image \"busybox:1.36\"")
        => "False", "AdapterImagePullFailed", "Adapter container adapter cannot start: ImagePullBackOff: Back-off pulling image \"busybox:1.36\"";
}

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
