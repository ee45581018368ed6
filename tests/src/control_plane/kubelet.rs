//! A Job's pods on the real API server: waited for (bounded, driven by a watch), by the Job's
//! uid where it matters (never a re-created Job's), and the kubelet played for the states a
//! real node cannot produce on cue (an eviction overlapping its replacement, reporters
//! finishing at one instant): pod status written through `pods/status` as a node would, for
//! pods no node runs (no `nodeName`); the scheduler's part too ([`bind`]), and evictions.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Node, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{EvictParams, ListParams, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

/// The pod label the Job controller sets to its Job's uid.
const JOB_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";

/// Waits (bounded) until the Job controller has created at least `n` pods for Job `job` in
/// `namespace`; returns them oldest first.
pub async fn wait_for_pods(
    client: &kube::Client,
    namespace: &str,
    job: &str,
    n: usize,
    timeout: Duration,
) -> Vec<Pod> {
    let selector = format!("batch.kubernetes.io/job-name={job}");
    let what = format!("{n} pod(s) from the Job controller");
    wait_pods(client, namespace, &selector, &what, timeout, |pods| {
        pods.len() >= n
    })
    .await
}

/// Waits (bounded, on a watch) until `accept` holds for the pods of `namespace` matching the
/// label `selector` (oldest first); returns them. Panics naming `what`, with the pods.
pub async fn wait_pods(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
    what: &str,
    timeout: Duration,
    accept: impl Fn(&[Pod]) -> bool,
) -> Vec<Pod> {
    use futures::StreamExt;
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = || async {
        let pods = api.list(&ListParams::default().labels(selector)).await;
        let mut pods = pods.unwrap_or_else(|e| panic!("list pods {selector} in {namespace}: {e}"));
        let created = |p: &Pod| {
            (
                p.metadata.creation_timestamp.clone(),
                p.metadata.name.clone(),
            )
        };
        pods.items.sort_by_key(created);
        pods.items
    };
    let config = watcher::Config::default().labels(selector);
    let mut events = std::pin::pin!(watcher(api.clone(), config));
    let wait = async {
        loop {
            let pods = list().await;
            if accept(&pods) {
                return pods;
            }
            if events.next().await.is_none() {
                panic!("pod watch {selector} in {namespace} ended");
            }
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(pods) => pods,
        Err(_) => {
            let pods: Vec<String> = list().await.iter().map(describe).collect();
            panic!("pods {selector} in {namespace}: no {what} within {timeout:?}; now: {pods:?}")
        }
    }
}

/// Applies `change` to the pod's status (see [`super::update_status`]).
pub async fn update_status(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    change: impl Fn(&Pod, &mut PodStatus),
) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    super::update_status(&api, pod, |p| {
        let mut status = p.status.take().unwrap_or_default();
        change(p, &mut status);
        p.status = Some(status);
    })
    .await
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn status_of(name: &str, image: &str, state: ContainerState) -> ContainerStatus {
    let running = state.running.is_some();
    ContainerStatus {
        name: name.to_owned(),
        image: image.to_owned(),
        ready: running,
        started: Some(running),
        state: Some(state),
        ..ContainerStatus::default()
    }
}

fn running() -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(now()),
        }),
        ..ContainerState::default()
    }
}

fn terminated(exit_code: i32, reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code,
            reason: Some(reason.to_owned()),
            message: message.map(str::to_owned),
            started_at: Some(now()),
            finished_at: Some(now()),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

/// Sets `container`'s state in the right list (containers or init containers), keeping the
/// others and counting a restart when a terminated container runs again (`restartCount` is
/// the attempt number of the newest instance, as the kubelet reports it).
fn set_container(pod: &Pod, status: &mut PodStatus, container: &str, state: ContainerState) {
    let spec = pod.spec.as_ref().expect("a pod has a spec");
    let image_of = |list: &[Container]| {
        let found = list.iter().find(|c| c.name == container);
        found.map(|c| c.image.clone().unwrap_or_default())
    };
    let (list, image) = if let Some(image) = image_of(&spec.containers) {
        (&mut status.container_statuses, image)
    } else if let Some(image) = image_of(spec.init_containers.as_deref().unwrap_or_default()) {
        (&mut status.init_container_statuses, image)
    } else {
        panic!("pod has no container {container}")
    };
    let list = list.get_or_insert_with(Vec::new);
    match list.iter_mut().find(|s| s.name == container) {
        Some(s) => {
            let ended =
                |st: &Option<ContainerState>| st.as_ref().is_some_and(|st| st.terminated.is_some());
            let was_terminated = ended(&s.state);
            // A new instance starts: after a termination, or after the back-off that followed one.
            let backing_off =
                s.state.as_ref().is_some_and(|st| st.waiting.is_some()) && ended(&s.last_state);
            let restarted = state.running.is_some() && (was_terminated || backing_off);
            let restarts = s.restart_count + i32::from(restarted);
            let last = if was_terminated {
                s.state.clone()
            } else {
                s.last_state.clone()
            };
            *s = status_of(container, &image, state);
            s.restart_count = restarts;
            s.last_state = last;
        }
        None => list.push(status_of(container, &image, state)),
    }
}

/// The containers and native sidecars (init containers that restart always) of `pod`: what
/// runs while it runs.
fn long_running(pod: &Pod) -> Vec<String> {
    let spec = pod.spec.as_ref().expect("a pod has a spec");
    let sidecars = spec.init_containers.iter().flatten();
    let sidecars = sidecars.filter(|c| c.restart_policy.as_deref() == Some("Always"));
    (sidecars.chain(&spec.containers))
        .map(|c| c.name.clone())
        .collect()
}

/// The pod starts: phase `Running`, every container and native sidecar running.
pub async fn run_pod(client: &kube::Client, namespace: &str, pod: &str) -> Pod {
    update_status(client, namespace, pod, |p, status| {
        status.phase = Some("Running".into());
        status.start_time.get_or_insert_with(now);
        for name in long_running(p) {
            set_container(p, status, &name, running());
        }
    })
    .await
}

/// `container` terminates with `exit_code` and `reason` (and a termination message).
pub async fn terminate(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    exit_code: i32,
    reason: &str,
    message: Option<&str>,
) -> Pod {
    update_status(client, namespace, pod, |p, status| {
        set_container(p, status, container, terminated(exit_code, reason, message));
    })
    .await
}

/// `container` is waiting with `reason` (e.g. `ImagePullBackOff`) and `message`.
pub async fn waiting(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    reason: &str,
    message: &str,
) -> Pod {
    update_status(client, namespace, pod, |p, status| {
        let state = ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.to_owned()),
                message: Some(message.to_owned()),
            }),
            ..ContainerState::default()
        };
        set_container(p, status, container, state);
    })
    .await
}

/// The pod ends: every container still running terminates (exit 0, or 1 when `phase` is
/// `Failed`) and the pod's phase becomes `phase` (`Succeeded` or `Failed`).
pub async fn finish(client: &kube::Client, namespace: &str, pod: &str, phase: &str) -> Pod {
    let code = i32::from(phase == "Failed");
    update_status(client, namespace, pod, |p, status| {
        for name in long_running(p) {
            let all = status.container_statuses.iter();
            let mut all = all.chain(&status.init_container_statuses).flatten();
            let state = all.find(|s| s.name == name).and_then(|s| s.state.as_ref());
            if state.is_none_or(|s| s.terminated.is_none()) {
                let reason = if code == 0 { "Completed" } else { "Error" };
                set_container(p, status, &name, terminated(code, reason, None));
            }
        }
        status.phase = Some(phase.to_owned());
    })
    .await
}

/// [`wait_pods`] for the pods of the Job with uid `job_uid`.
pub async fn wait_job_pods(
    client: &kube::Client,
    namespace: &str,
    job_uid: &str,
    what: &str,
    timeout: Duration,
    accept: impl Fn(&[Pod]) -> bool,
) -> Vec<Pod> {
    let selector = format!("{JOB_UID_LABEL}={job_uid}");
    wait_pods(client, namespace, &selector, what, timeout, accept).await
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
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let deleting = pod.metadata.deletion_timestamp.as_ref();
    format!(
        "{} ({}{}{})",
        pod.metadata.name.as_deref().unwrap_or("?"),
        phase.unwrap_or("no phase"),
        deleting.map_or("", |_| ", terminating"),
        index(pod).map_or(String::new(), |i| format!(", index {i}")),
    )
}

/// The pod's completion index (Indexed Jobs).
pub fn index(pod: &Pod) -> Option<u32> {
    let labels = pod.metadata.labels.as_ref()?;
    labels
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
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == type_).cloned()
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
