//! The real reporter on the real API server with a RoleBinding missing a verb: a real 403,
//! said as users need to read it. (Every row of the outcome table runs on real containers in
//! `node_outcomes.rs`; here the test plays the kubelet, and the reporter runs as a process
//! with the ServiceAccount's token, so its logs can be read as it goes.)

use std::time::Duration;

use stand_in::control_plane::Cluster;
use stand_in::control_plane::adapter::{AdapterNamespace, adapter_namespace, example_job};

const WAIT: Duration = Duration::from_secs(60);

/// A ClusterRole like the shipped one, missing one verb, bound instead of the shipped one.
async fn namespace_missing(
    cluster: &Cluster,
    name: &str,
    resource: &str,
    verb: &str,
) -> AdapterNamespace {
    let ns = adapter_namespace(cluster, name).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_path_buf();
    let text = std::fs::read_to_string(root.join("manifests/common/reporter-clusterrole.yaml"))
        .expect("role");
    let mut role = stand_in::control_plane::objects::yaml_docs(&text, "clusterrole")[0].clone();
    let role_name = format!(
        "status-reporter-without-{verb}-{}",
        resource.replace('/', "-")
    );
    role["metadata"]["name"] = serde_json::json!(role_name);
    let mut found = false;
    for rule in role["rules"].as_array_mut().expect("rules") {
        if rule["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == resource))
        {
            let verbs = rule["verbs"].as_array_mut().expect("verbs");
            let before = verbs.len();
            verbs.retain(|v| v != verb);
            found |= verbs.len() < before;
        }
    }
    assert!(found, "the shipped ClusterRole grants {verb} on {resource}");
    let (ok, _, err) = cluster.apply(&[role], false);
    assert!(ok, "apply {role_name}: {err}");
    // roleRef is immutable: replace the binding.
    let (ok, _, err) = cluster.kubectl_run(
        &[
            "-n",
            &ns.name,
            "delete",
            "rolebinding",
            "status-reporter-example",
        ],
        None,
    );
    assert!(ok, "delete rolebinding: {err}");
    let (ok, _, err) = cluster.kubectl_run(
        &[
            "-n",
            &ns.name,
            "create",
            "rolebinding",
            "status-reporter-example",
            &format!("--clusterrole={role_name}"),
            &format!("--serviceaccount={}:{}", ns.name, "status-reporter-example"),
        ],
        None,
    );
    assert!(ok, "create rolebinding: {err}");
    ns
}

#[tokio::test]
async fn a_missing_verb_is_a_real_403_naming_the_verb_and_resource() {
    let cluster = Cluster::shared();
    let name = "forbidden-update";
    let ns = namespace_missing(cluster, name, "jobs/status", "update").await;
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
    let ns = namespace_missing(cluster, name, "pods", "watch").await;
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
