//! Least privilege, on the real API server: the reporter works with exactly the rules of the
//! shipped ClusterRole (`manifests/common/reporter-clusterrole.yaml`, the Helm chart's copy is
//! held to it by the manifest checks) — every request it makes is granted, and every grant is
//! used — and each rule is needed: without it, a request is refused and the run says so.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use harness::control_plane::Cluster;
use harness::control_plane::adapter::{
    AdapterNamespace, SERVICE_ACCOUNT, adapter_namespace, adapter_namespace_without, example_job,
    shipped_reporter_grants,
};
use harness::control_plane::cluster::AuditedRequest;

const WAIT: Duration = Duration::from_secs(60);
const RESULT: &str =
    r#"{"status":"success","reason":"ChecksPassed","message":"All checks passed"}"#;

/// Runs the reporter for a one-pod Job whose adapter writes a result; returns its exit code,
/// its logs and every request its ServiceAccount made (the pod watch's included: it is logged
/// once the reporter closes it).
/// `ready`: the log line that says the pod watch is set up (or refused) before the adapter acts.
async fn run(ns: &AdapterNamespace, name: &str, ready: &str) -> (i32, String, Vec<AuditedRequest>) {
    let cluster = Cluster::shared();
    ns.create_job(example_job(name, "classic", &[])).await;
    let (pod, results) = ns.running_pod(name, WAIT).await;
    let mut reporter = ns.start_reporter(&pod, &results, &[]);
    reporter.logs.wait_for(&[ready], WAIT);
    std::fs::write(results.join("adapter-result.json"), RESULT).expect("write result");
    let (code, logs) = reporter.wait_exit_with_logs(WAIT);
    // The audit log gets a request once it ends; a watch ends when the reporter closes it
    // (unless the watch was refused: then there is none to wait for).
    let watched = ready == "pod update";
    let started = Instant::now();
    loop {
        let requests = cluster.audited_requests(&ns.name, SERVICE_ACCOUNT);
        if !watched || requests.iter().any(|r| r.verb == "watch") || started.elapsed() > WAIT {
            return (code, logs, requests);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn used(requests: &[AuditedRequest]) -> BTreeSet<(String, String, String)> {
    requests
        .iter()
        .map(|r| (r.api_group.clone(), r.resource.clone(), r.verb.clone()))
        .collect()
}

#[tokio::test]
async fn the_shipped_rules_are_exactly_what_the_requests_need() {
    let cluster = Cluster::shared();
    let ns = adapter_namespace(cluster, "rbac-exact").await;
    let (code, logs, requests) = run(&ns, "rbac-exact", "pod update").await;
    assert_eq!(code, 0, "logs:\n{logs}");
    let refused: Vec<_> = requests.iter().filter(|r| r.code >= 400).collect();
    assert!(refused.is_empty(), "refused: {refused:?}\nlogs:\n{logs}");
    let granted: BTreeSet<_> = shipped_reporter_grants().into_iter().collect();
    assert_eq!(
        used(&requests),
        granted,
        "every request granted and every grant used (one run of a one-pod Job uses them all)"
    );
}

/// Takes `verb` on `resource` away: the request that needs it is refused (as the audit log
/// shows), and the reporter's logs name what is missing.
async fn without(resource: &str, verb: &str, says: &str, exit: i32) {
    let cluster = Cluster::shared();
    let name = format!("rbac-no-{verb}-{}", resource.replace('/', "-"));
    let ns = adapter_namespace_without(cluster, &name, resource, verb).await;
    let ready = match resource {
        "pods" => "cannot watch pod",
        _ => "pod update",
    };
    let (code, logs, requests) = run(&ns, &name, ready).await;
    assert!(
        requests
            .iter()
            .any(|r| r.resource == resource && r.verb == verb && r.code == 403),
        "a {verb} on {resource} refused; requests: {requests:?}"
    );
    assert!(
        logs.contains(says) && logs.contains(resource),
        "logs name it:\n{logs}"
    );
    assert_eq!(code, exit, "exit code; logs:\n{logs}");
}

/// One test per shipped grant; [`every_grant_has_a_test`] holds this list to the ClusterRole.
const RULES: &[(&str, &str, &str)] = &[
    ("batch", "jobs/status", "get"),
    ("batch", "jobs/status", "update"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "pods/status", "patch"),
    ("events.k8s.io", "events", "create"),
];

#[test]
fn every_grant_has_a_test() {
    let rules: BTreeSet<_> = RULES
        .iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect();
    let granted: BTreeSet<_> = shipped_reporter_grants().into_iter().collect();
    assert_eq!(rules, granted);
}

#[tokio::test]
async fn without_get_on_jobs_status_no_condition() {
    without("jobs/status", "get", "HTTP 403", 1).await;
}

#[tokio::test]
async fn without_update_on_jobs_status_no_condition() {
    without("jobs/status", "update", "HTTP 403", 1).await;
}

#[tokio::test]
async fn without_list_on_pods_no_pod_watch() {
    without("pods", "list", "cannot watch pod", 0).await;
}

#[tokio::test]
async fn without_watch_on_pods_no_pod_watch() {
    without("pods", "watch", "cannot watch pod", 0).await;
}

#[tokio::test]
async fn without_patch_on_pods_status_no_record_on_the_pod() {
    without(
        "pods/status",
        "patch",
        "the result is not recorded on the pod",
        0,
    )
    .await;
}

#[tokio::test]
async fn without_create_on_events_no_event() {
    without("events", "create", "event not recorded", 0).await;
}
