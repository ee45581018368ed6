//! A watch on the one pod (field selector `metadata.name=<pod>`), resumed by kube's watcher
//! after disconnects and 410 Gone, published as the latest [`PodView`].

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use contract::REPORTER_CONTAINER;

use crate::attempt::{Attempt, RESULT_CONDITION};
use crate::outcome::{ContainerState, PodView};

/// The adapter container: the configured name, else the first regular container that is not the reporter.
pub fn adapter_name(pod: &Pod, configured: Option<&str>) -> Option<String> {
    if let Some(name) = configured {
        return Some(name.to_string());
    }
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .map(|c| c.name.clone())
        .find(|n| n != REPORTER_CONTAINER)
}

/// The adapter's container spec, regular or init.
fn adapter_spec<'a>(pod: &'a Pod, adapter: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == adapter)
}

/// The pod's container names, regular then init.
fn container_names(pod: &Pod) -> Vec<String> {
    pod.spec.as_ref().map_or_else(Vec::new, |spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .map(|c| c.name.clone())
            .collect()
    })
}

fn container_state(cs: &ContainerStatus) -> ContainerState {
    let Some(state) = cs.state.as_ref() else {
        return ContainerState::Unknown;
    };
    if let Some(t) = &state.terminated {
        return ContainerState::Terminated {
            exit_code: t.exit_code,
            reason: t.reason.clone().unwrap_or_default(),
            message: t.message.clone().unwrap_or_default(),
        };
    }
    if let Some(w) = &state.waiting {
        return ContainerState::Waiting {
            reason: w.reason.clone().unwrap_or_default(),
            message: w.message.clone().unwrap_or_default(),
        };
    }
    if state.running.is_some() {
        return ContainerState::Running;
    }
    ContainerState::Unknown
}

/// The decision-relevant view of a pod (pure).
pub fn pod_view(pod: &Pod, configured_adapter: Option<&str>) -> PodView {
    let status = pod.status.as_ref();
    let adapter = adapter_name(pod, configured_adapter).unwrap_or_default();
    let containers = container_names(pod);
    // A pod without a spec (a partial object) proves nothing about its containers.
    let adapter_missing =
        (configured_adapter.is_some() && pod.spec.is_some() && !containers.contains(&adapter))
            .then_some(containers);
    let cs = status.and_then(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
            .find(|c| c.name == adapter)
    });
    let adapter_logs_fallback = adapter_spec(pod, &adapter)
        .and_then(|c| c.termination_message_policy.as_deref())
        == Some("FallbackToLogsOnError");
    PodView {
        name: pod.metadata.name.clone().unwrap_or_default(),
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        reason: status.and_then(|s| s.reason.clone()).unwrap_or_default(),
        message: status.and_then(|s| s.message.clone()).unwrap_or_default(),
        deleting: pod.metadata.deletion_timestamp.is_some(),
        restarts_in_place: pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref())
            == Some("OnFailure"),
        adapter,
        adapter_missing,
        adapter_state: cs.map_or(ContainerState::Unknown, container_state),
        adapter_logs_fallback,
        restart_count: cs.map_or(0, |c| c.restart_count),
        attempt: Attempt::from_pod(pod),
        result_since: status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == RESULT_CONDITION))
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| crate::job_status::format_time(t.0)),
    }
}

/// Starts watching; the receiver always holds the latest view (`None` until the pod is seen).
/// Abort the returned handle to close the watch once it is no longer needed.
pub fn spawn(
    client: kube::Client,
    namespace: &str,
    pod_name: &str,
    configured_adapter: Option<String>,
) -> (watch::Receiver<Option<PodView>>, tokio::task::AbortHandle) {
    let (tx, rx) = watch::channel(None);
    let api: kube::Api<Pod> = kube::Api::namespaced(client, namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={pod_name}"));
    let pod_name = pod_name.to_string();
    let namespace = namespace.to_string();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, config).default_backoff().boxed();
        let mut listed = false;
        let mut warned_missing = false;
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(e) => e,
                // A 403 is RBAC: retrying cannot grant the verb, and a warning every backoff
                // step for the rest of the run would bury the one line that says what to fix.
                // Stopping closes the channel: the run goes on with the result file only.
                Err(e) => match crate::retry::watch_refusal(&e) {
                    Some((403, message)) => {
                        tracing::error!(
                            pod = %pod_name,
                            "cannot watch pod {namespace}/{pod_name}: HTTP 403: {message} (RBAC: the reporter's service account needs verbs list and watch on resource pods in namespace {namespace}); watching the result file only, so an adapter that crashes, is OOM-killed or cannot pull its image is reported without its exit code or reason (as a timeout after MAX_WAIT_TIME_SECONDS, or as the pod shutting down)"
                        );
                        return;
                    }
                    _ => {
                        tracing::warn!(pod = %pod_name, error = %e, "pod watch interrupted; resuming");
                        continue;
                    }
                },
            };
            let publish = |pod: &Pod, deleted: bool| {
                let mut view = pod_view(pod, configured_adapter.as_deref());
                view.deleting |= deleted;
                view.attempt.done |= deleted;
                tracing::debug!(pod = %view.name, phase = %view.phase, adapter = %view.adapter, state = ?view.adapter_state, restarts = view.restart_count, deleting = view.deleting, "pod update");
                tx.send_replace(Some(view));
            };
            match event {
                watcher::Event::Init => listed = false,
                watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                    listed = true;
                    let view = pod_view(&pod, configured_adapter.as_deref());
                    if !warned_missing {
                        if let Some(containers) = &view.adapter_missing {
                            warned_missing = true;
                            tracing::error!(pod = %pod_name, adapter = %view.adapter, containers = %containers.join(", "), "ADAPTER_CONTAINER_NAME names no container of the pod");
                        } else if view.adapter.is_empty() {
                            warned_missing = true;
                            tracing::warn!(pod = %pod_name, "no adapter container found (set ADAPTER_CONTAINER_NAME); watching the result file only");
                        }
                    }
                    publish(&pod, false);
                }
                watcher::Event::Delete(pod) => publish(&pod, true),
                watcher::Event::InitDone => {
                    // A re-list that no longer contains a pod we saw means it was deleted meanwhile.
                    if !listed {
                        tx.send_if_modified(|v| match v {
                            Some(view) if !view.deleting => {
                                view.deleting = true;
                                view.attempt.done = true;
                                true
                            }
                            _ => false,
                        });
                    }
                }
            }
        }
    });
    (rx, task.abort_handle())
}
