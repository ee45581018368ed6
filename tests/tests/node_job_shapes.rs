//! Job shapes ([docs/job-shapes.md](../../docs/job-shapes.md)) on the real node: the real Job controller retries,
//! indexes, counts, suspends and fails Jobs whose pods the kubelet runs, each with the
//! injected reporter from its image. What a real node cannot produce on cue (an eviction
//! overlapping its replacement, reporters finishing at the same instant, states at a chosen
//! moment) stays in `real_job_shapes.rs`, which plays the kubelet.
//!
//! The Job controller waits 10 s before it retries a failed pod (its fixed first back-off), so
//! the retry takes that long.

use std::time::Duration;

use harness::control_plane::Cluster;
use harness::control_plane::adapter::{AdapterNamespace, adapter_namespace, condition};
use harness::control_plane::kubelet::{index, name, wait_job_pods, wait_pod_condition};
use harness::control_plane::node_jobs::{
    Attempts, adapter_job, container_state, ended_pods, exit, phase, wait_finished,
};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
const RESULT: &str = "status-reporter.hyperfleet.io/result";

fn write(json: &str) -> String {
    format!("printf '%s' '{json}' > \"$RESULTS_PATH\"")
}

const PASSED: &str =
    r#"{"status":"success","reason":"ChecksPassed","message":"All checks passed"}"#;
const DNS_MISSING: &str = r#"{"status":"failure","reason":"DnsMissing","message":"no A record"}"#;

async fn create(ns: &AdapterNamespace, mut job: Value, spec: Value) -> String {
    let Value::Object(fields) = spec else {
        panic!("spec must be an object")
    };
    for (k, v) in fields {
        job["spec"][k] = v;
    }
    ns.create_job(job)
        .await
        .metadata
        .uid
        .expect("a created Job has a uid")
}

/// Waits for the Job's `Available` with `status` and `message`; returns (reason, Job).
async fn wait_available(ns: &AdapterNamespace, job: &str, status: &str, message: &str) -> String {
    let j = ns
        .wait_job(job, &format!("Available={status} {message:?}"), WAIT, |j| {
            condition(j, "Available")
                .is_some_and(|c| c.status == status && c.message.as_deref() == Some(message))
        })
        .await;
    condition(&j, "Available")
        .and_then(|c| c.reason)
        .unwrap_or_default()
}

/// (status, reason, message) of the result the reporter recorded on `pod`.
async fn recorded(ns: &AdapterNamespace, pod: &str) -> [String; 3] {
    let c = wait_pod_condition(&ns.client, &ns.name, pod, RESULT, WAIT).await;
    [
        c.status,
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    ]
}

/// Attempt 1's adapter exits 1 → `False`; the Job controller's second pod succeeds → `True`;
/// each pod keeps its own result; the Job completes beside ours.
#[tokio::test]
async fn a_retry_is_a_second_real_pod_and_the_newest_attempt_wins() {
    let ns = adapter_namespace(Cluster::shared().node(), "node-retry").await;
    let attempts = Attempts::default();
    let mut job = adapter_job(
        "retry",
        "native",
        &[],
        &Attempts::script("exit 1", &write(PASSED)),
    );
    attempts.mount(&mut job);
    let uid = create(&ns, job, json!({"backoffLimit": 1})).await;
    let failed = "Adapter container exited with code 1: Error";
    assert_eq!(
        wait_available(&ns, "retry", "False", failed).await,
        "AdapterExitedWithError"
    );
    assert_eq!(
        wait_available(&ns, "retry", "True", "All checks passed").await,
        "ChecksPassed"
    );
    let (verdict, _) = wait_finished(&ns, "retry", WAIT).await;
    assert_eq!(verdict, "Complete");
    let pods = ended_pods(&ns, &uid, 2, WAIT).await;
    assert_eq!(
        pods.iter().map(phase).collect::<Vec<_>>(),
        ["Failed", "Succeeded"]
    );
    assert_eq!(
        recorded(&ns, &name(&pods[0])).await,
        ["False", "AdapterExitedWithError", failed]
    );
    assert_eq!(
        recorded(&ns, &name(&pods[1])).await,
        ["True", "ChecksPassed", "All checks passed"]
    );
}

/// Two Indexed Jobs of two real pods each: both indexes pass → `True`, one reports a failure →
/// `False` naming the index (the Job completes: in native mode only the adapters' exits count).
#[tokio::test]
async fn indexed_pods_aggregate_per_index() {
    let ns = adapter_namespace(Cluster::shared().node(), "node-indexed").await;
    let ok = r#"{"status":"success","reason":"ShardChecked","message":"zone ok"}"#;
    let missing = r#"{"status":"failure","reason":"ZoneMissing","message":"zone b not found"}"#;
    let indexed = json!({"completions": 2, "parallelism": 2, "completionMode": "Indexed"});
    let pass = adapter_job("shards-pass", "native", &[], &write(ok));
    let fail_one = adapter_job(
        "shards-fail",
        "native",
        &[],
        &format!(
            "if [ \"$JOB_COMPLETION_INDEX\" = 1 ]; then {}; else {}; fi",
            write(missing),
            write(ok)
        ),
    );
    let (pass_uid, _) = futures::join!(
        create(&ns, pass, indexed.clone()),
        create(&ns, fail_one, indexed)
    );
    let (pass_reason, fail_reason) = futures::join!(
        wait_available(&ns, "shards-pass", "True", "2/2 indexes succeeded: zone ok"),
        wait_available(&ns, "shards-fail", "False", "index 1: zone b not found"),
    );
    assert_eq!(
        (pass_reason.as_str(), fail_reason.as_str()),
        ("ShardChecked", "ZoneMissing")
    );
    for job in ["shards-pass", "shards-fail"] {
        assert_eq!(wait_finished(&ns, job, WAIT).await.0, "Complete", "{job}");
    }
    let pods = ended_pods(&ns, &pass_uid, 2, WAIT).await;
    let mut indexes: Vec<_> = pods.iter().map(index).collect();
    indexes.sort();
    assert_eq!(indexes, [Some(0), Some(1)]);
}

/// NonIndexed `completions: 2, parallelism: 2`: both pass → `True`; with `backoffLimit: 0`
/// one failure → `False` naming its pod.
#[tokio::test]
async fn nonindexed_pairs_count_real_pods() {
    let ns = adapter_namespace(Cluster::shared().node(), "node-pair").await;
    let pair = json!({"completions": 2, "parallelism": 2, "backoffLimit": 0});
    let attempts = Attempts::default();
    // The first pod to take the directory fails; mkdir is atomic.
    let mut one_fails = adapter_job(
        "pair-fails",
        "native",
        &[],
        &format!(
            "if mkdir /attempts/failed; then {}; exit 1; else {}; fi",
            write(DNS_MISSING),
            write(PASSED)
        ),
    );
    attempts.mount(&mut one_fails);
    let (_, fails_uid) = futures::join!(
        create(
            &ns,
            adapter_job("pair", "native", &[], &write(PASSED)),
            pair.clone()
        ),
        create(&ns, one_fails, pair),
    );
    assert_eq!(
        wait_available(&ns, "pair", "True", "2/2 pods succeeded: All checks passed").await,
        "ChecksPassed"
    );
    assert_eq!(wait_finished(&ns, "pair", WAIT).await.0, "Complete");

    assert_eq!(wait_finished(&ns, "pair-fails", WAIT).await.0, "Failed");
    // The Job controller creates a Job's pods in batches (one, then more): once the first pod
    // has failed a Job with `backoffLimit: 0`, the second may never be made. One pod failed.
    let failed_exit =
        |p: &k8s_openapi::api::core::v1::Pod| exit(p, "adapter").map(|e| e.0) == Some(1);
    let pods = wait_job_pods(
        &ns.client,
        &ns.name,
        &fails_uid,
        "the failed pod",
        WAIT,
        |pods| pods.iter().any(failed_exit),
    )
    .await;
    let failed = pods
        .iter()
        .find(|p| failed_exit(p))
        .expect("one adapter exited 1");
    let message = format!("pod {}: no A record", name(failed));
    assert_eq!(
        wait_available(&ns, "pair-fails", "False", &message).await,
        "DnsMissing"
    );
}

/// docs/job-shapes.md's `podFailurePolicy` example: in native mode an adapter that exits 42
/// after a failure result fails the Job at once (no retry, although `backoffLimit` allows
/// three), with our `False` beside the controller's `Failed`.
#[tokio::test]
async fn a_pod_failure_policy_scoped_to_the_adapter_fails_the_job_at_once() {
    let ns = adapter_namespace(Cluster::shared().node(), "node-policy").await;
    let job = adapter_job(
        "policy",
        "native",
        &[],
        &format!("{}; exit 42", write(DNS_MISSING)),
    );
    let spec = json!({
        "backoffLimit": 3,
        "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "adapter", "operator": "In", "values": [42]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
        ]}
    });
    let uid = create(&ns, job, spec).await;
    assert_eq!(
        wait_available(&ns, "policy", "False", "no A record").await,
        "DnsMissing"
    );
    let (verdict, failed) = wait_finished(&ns, "policy", WAIT).await;
    assert_eq!(verdict, "Failed");
    assert_eq!(
        condition(&failed, "Failed").and_then(|c| c.reason),
        Some("PodFailurePolicy".into())
    );
    assert_eq!(ended_pods(&ns, &uid, 1, WAIT).await.len(), 1, "no retry");
}

/// Suspended while its adapter runs: the controller deletes the pod, whose reporter writes
/// nothing; resumed, the new pod reports.
#[tokio::test]
async fn a_suspension_writes_nothing_and_the_resumed_jobs_pod_reports() {
    let ns = adapter_namespace(Cluster::shared().node(), "node-suspend").await;
    let attempts = Attempts::default();
    let mut job = adapter_job(
        "suspend",
        "native",
        &[],
        &Attempts::script("trap 'exit 143' TERM; sleep 600 & wait", &write(PASSED)),
    );
    attempts.mount(&mut job);
    let uid = create(&ns, job, json!({"backoffLimit": 2})).await;
    wait_job_pods(
        &ns.client,
        &ns.name,
        &uid,
        "the adapter running",
        WAIT,
        |pods| {
            pods.first()
                .is_some_and(|p| container_state(p, "adapter").running.is_some())
        },
    )
    .await;
    let jobs: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    let suspend = |on: bool| Patch::Merge(json!({"spec": {"suspend": on}}));
    jobs.patch("suspend", &PatchParams::default(), &suspend(true))
        .await
        .expect("suspend");
    // Gone: the kubelet stopped it, so its reporter has had its last look.
    wait_job_pods(&ns.client, &ns.name, &uid, "no pod", WAIT, <[_]>::is_empty).await;
    ns.wait_condition("suspend", "Suspended", WAIT).await;
    let j = jobs.get("suspend").await.expect("job");
    assert_eq!(
        condition(&j, "Available"),
        None,
        "nothing written while suspended"
    );

    jobs.patch("suspend", &PatchParams::default(), &suspend(false))
        .await
        .expect("resume");
    assert_eq!(
        wait_available(&ns, "suspend", "True", "All checks passed").await,
        "ChecksPassed"
    );
    assert_eq!(wait_finished(&ns, "suspend", WAIT).await.0, "Complete");
}
