//! The user's paths on the real node, every step real: the webhook deployed from the shipped
//! manifests and run from its image, an annotated Job created with kubectl, the Job
//! controller's pod run by the kubelet with the injected reporter, the condition written
//! through in-cluster config with the shipped RBAC; the plain-sidecar examples as they are
//! (image names substituted); and our containers running under Pod Security `restricted`.

use std::time::Duration;

use harness::control_plane::adapter::{adapter_namespace, condition};
use harness::control_plane::node_jobs::{
    container_state, ended_pods, exit, on_node, phase, wait_finished,
};
use harness::control_plane::objects::yaml_docs;
use harness::control_plane::webhook::DeployedWebhook;
use harness::control_plane::{Cluster, images, kubelet};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);

fn example(file: &str, name: &str, namespace: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/examples")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut job = yaml_docs(&text, file).remove(0);
    job["metadata"]["name"] = json!(name);
    job["metadata"]["namespace"] = json!(namespace);
    on_node(&mut job["spec"]["template"]["spec"]);
    job
}

/// `kubectl create -f -` of `object`; returns kubectl's stderr (its warnings).
fn kubectl_create(cluster: &Cluster, object: &Value) -> String {
    let (ok, out, err) = cluster.kubectl_run(&["create", "-f", "-"], Some(&object.to_string()));
    assert!(ok, "kubectl create: {err}\n{out}");
    err
}

#[tokio::test]
async fn an_annotated_job_created_with_kubectl_gets_its_condition_from_the_webhooks_reporter() {
    let cluster = Cluster::admission();
    let _webhook = DeployedWebhook::deploy(&cluster);
    let ns = adapter_namespace(&cluster, "user-path").await;
    let job = example("job.yaml", "user-path", &ns.name);
    kubectl_create(&cluster, &job);

    let ours = ns.wait_condition("user-path", "Available", WAIT).await;
    assert_eq!(
        (ours.status.as_str(), ours.reason.as_deref()),
        ("True", Some("ChecksPassed")),
        "{ours:?}"
    );
    let (verdict, done) = wait_finished(&ns, "user-path", WAIT).await;
    assert_eq!(verdict, "Complete");
    let uid = done.metadata.uid.expect("uid");
    let pod = ended_pods(&ns, &uid, 1, WAIT).await.remove(0);
    let spec = pod.spec.as_ref().expect("spec");
    let reporter = spec
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == "status-reporter")
        .expect("the webhook injected the reporter as a native sidecar");
    assert_eq!(reporter.image.as_deref(), Some(images::reporter().as_str()));
    assert_eq!(phase(&pod), "Succeeded");
    assert_eq!(exit(&pod, "status-reporter"), Some((0, "Completed".into())));
}

#[tokio::test]
async fn the_plain_sidecar_examples_run_as_they_are() {
    let cluster = Cluster::shared().node();
    let ns = adapter_namespace(cluster, "plain-sidecar").await;
    for (file, name) in [
        ("plain-sidecar-native.yaml", "plain-native"),
        ("plain-sidecar-classic.yaml", "plain-classic"),
    ] {
        kubectl_create(cluster, &example(file, name, &ns.name));
    }
    for name in ["plain-native", "plain-classic"] {
        let ours = ns.wait_condition(name, "Available", WAIT).await;
        assert_eq!(
            (ours.status.as_str(), ours.reason.as_deref()),
            ("True", Some("ChecksPassed")),
            "{name}: {ours:?}"
        );
        let (verdict, job) = wait_finished(&ns, name, WAIT).await;
        assert_eq!(verdict, "Complete", "{name}");
        assert!(condition(&job, "Available").is_some(), "{name}: ours stays");
    }
}

/// The uid and whether the root filesystem is read-only, of the process whose environment
/// holds `POD_NAME=pod` and whose program is `program`.
fn process_of(pod: &str, program: &str) -> Option<(String, bool)> {
    let needle = format!("POD_NAME={pod}");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let dir = entry.path();
        let Ok(exe) = std::fs::read_link(dir.join("exe")) else {
            continue;
        };
        if !exe.ends_with(program) {
            continue;
        }
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        if !environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))?
            .trim()
            .to_owned();
        let mounts = std::fs::read_to_string(dir.join("mountinfo")).ok()?;
        let root_ro = mounts
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.get(4) == Some(&"/"))
            .is_some_and(|f| f.get(5).is_some_and(|o| o.split(',').any(|o| o == "ro")));
        return Some((uid, root_ro));
    }
    None
}

#[tokio::test]
async fn a_restricted_namespace_runs_our_containers_non_root_on_a_read_only_root() {
    let cluster = Cluster::shared().node();
    let ns = adapter_namespace(cluster, "restricted").await;
    // Warn, not enforce: the test node has no pod network, so its pods use the host network,
    // which `restricted` forbids — that must be the only thing it finds.
    let (ok, _, err) = cluster.kubectl_run(
        &[
            "label",
            "namespace",
            &ns.name,
            "pod-security.kubernetes.io/warn=restricted",
            "pod-security.kubernetes.io/warn-version=latest",
        ],
        None,
    );
    assert!(ok, "label namespace: {err}");
    let mut job = harness::control_plane::node_jobs::adapter_job(
        "restricted",
        "native",
        &[],
        // Long enough to look at the running reporter.
        "sleep 5; printf '%s' '{\"status\":\"success\",\"reason\":\"ChecksPassed\",\"message\":\"ok\"}' > \"$RESULTS_PATH\"",
    );
    job["metadata"]["namespace"] = json!(ns.name);
    let warnings = kubectl_create(cluster, &job);
    let violations: Vec<&str> = warnings
        .lines()
        .filter_map(|l| l.split_once("would violate PodSecurity \"restricted:latest\": "))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        violations,
        ["host namespaces (hostNetwork=true)"],
        "only the test node's host network; kubectl said:\n{warnings}"
    );

    let uid = ns
        .wait_job("restricted", "its uid", WAIT, |_| true)
        .await
        .metadata
        .uid
        .expect("uid");
    let pod = kubelet::wait_job_pods(
        &ns.client,
        &ns.name,
        &uid,
        "the reporter running",
        WAIT,
        |pods| {
            pods.first()
                .is_some_and(|p| container_state(p, "status-reporter").running.is_some())
        },
    )
    .await
    .remove(0);
    let name = kubelet::name(&pod);
    let (uids, read_only) = process_of(&name, "status-reporter")
        .unwrap_or_else(|| panic!("no status-reporter process of pod {name} on this machine"));
    assert_eq!(
        uids.split_whitespace().collect::<Vec<_>>(),
        ["65532"; 4],
        "real, effective, saved, fs uid"
    );
    assert!(read_only, "the reporter's root filesystem is read-only");

    let ours = ns.wait_condition("restricted", "Available", WAIT).await;
    assert_eq!(ours.status, "True", "{ours:?}");
    let (verdict, _) = wait_finished(&ns, "restricted", WAIT).await;
    assert_eq!(verdict, "Complete");
}
