//! A Job's pods on the real API server for the suites of every Job shape: Jobs of any shape, a
//! Job's pods by its uid (never a re-created Job's), the scheduler's part ([`bind`]), the
//! Eviction API, a pod's condition. Every wait is bounded and driven by a watch.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use kube::Api;
use kube::api::{EvictParams, PostParams};
use serde_json::{Value, json};

use super::adapter::example_job;

/// The pod label the Job controller sets to its Job's uid.
pub const JOB_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";

/// [`example_job`] (the injected `manifests/examples/job.yaml`) with `spec` merged into its
/// spec: `completions`, `completionMode`, `backoffLimit`, `successPolicy`, … (the injected pod
/// template does not depend on them).
pub fn shaped_job(name: &str, mode: &str, annotations: &[(&str, &str)], spec: Value) -> Value {
    let mut job = example_job(name, mode, annotations);
    let Value::Object(fields) = spec else {
        panic!("shaped_job: spec must be an object, got {spec}")
    };
    for (k, v) in fields {
        job["spec"][k] = v;
    }
    job
}

/// [`super::kubelet::wait_pods`] for the pods of the Job with uid `job_uid`.
pub async fn wait_job_pods(
    client: &kube::Client,
    namespace: &str,
    job_uid: &str,
    what: &str,
    timeout: Duration,
    accept: impl Fn(&[Pod]) -> bool,
) -> Vec<Pod> {
    let selector = format!("{JOB_UID_LABEL}={job_uid}");
    super::kubelet::wait_pods(client, namespace, &selector, what, timeout, accept).await
}

/// Waits (bounded) for at least `n` pods of the Job with uid `job_uid`; oldest first.
pub async fn job_pods(
    client: &kube::Client,
    namespace: &str,
    job_uid: &str,
    n: usize,
    timeout: Duration,
) -> Vec<Pod> {
    wait_job_pods(
        client,
        namespace,
        job_uid,
        &format!("{n} pod(s)"),
        timeout,
        |pods| pods.len() >= n,
    )
    .await
}

/// `name (phase, deleting?, index)` for messages.
pub fn describe(pod: &Pod) -> String {
    format!(
        "{} ({}{}{})",
        pod.metadata.name.as_deref().unwrap_or("?"),
        pod.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("no phase"),
        if pod.metadata.deletion_timestamp.is_some() {
            ", terminating"
        } else {
            ""
        },
        index(pod).map_or(String::new(), |i| format!(", index {i}")),
    )
}

/// The pod's completion index (Indexed Jobs).
pub fn index(pod: &Pod) -> Option<u32> {
    pod.metadata
        .labels
        .as_ref()?
        .get("batch.kubernetes.io/job-completion-index")?
        .parse()
        .ok()
}

/// The pod's name.
pub fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().expect("a pod has a name")
}

/// Plays the scheduler: binds `pod` to `node`. A bound pod, unlike an unscheduled one, is not
/// removed at once when deleted gracefully: it stays terminating until a kubelet confirms,
/// which none does here. The Node object is created when missing (nothing runs there; it
/// only keeps the pod garbage collector from deleting the pod as an orphan).
pub async fn bind(client: &kube::Client, namespace: &str, pod: &str, node: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let object: Node = serde_json::from_value(json!({"metadata": {"name": node}})).expect("node");
    match nodes.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create node {node}: {e}"),
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": pod, "namespace": namespace},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}
    });
    let _: Value = api
        .create_subresource("binding", pod, &PostParams::default(), &binding)
        .await
        .unwrap_or_else(|e| panic!("bind pod {namespace}/{pod} to {node}: {e}"));
}

/// Evicts `pod` through the Eviction API: the API server adds the `DisruptionTarget`
/// condition and deletes it gracefully.
pub async fn evict(client: &kube::Client, namespace: &str, pod: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    api.evict(pod, &EvictParams::default())
        .await
        .unwrap_or_else(|e| panic!("evict pod {namespace}/{pod}: {e}"));
}

/// The pod's condition of `type_`.
pub fn pod_condition(pod: &Pod, type_: &str) -> Option<PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// Waits (bounded) until `pod` has a condition of `type_`; returns it.
pub async fn wait_pod_condition(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    type_: &str,
    timeout: Duration,
) -> PodCondition {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = super::wait_object(api, pod, timeout, |p| pod_condition(p, type_).is_some())
        .await
        .unwrap_or_else(|e| panic!("no condition {type_}: {e}"));
    pod_condition(&pod, type_).expect("accepted")
}
