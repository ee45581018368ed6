//! Test helpers that act as the kubelet (pod status) and the Job controller (Job conditions).
//! Each call is one write: a new resourceVersion and one MODIFIED watch event.

use serde_json::{Map, Value, json};

use crate::server::StandIn;
use crate::store::{Key, Resource, now};

/// Which status list (`containerStatuses` or `initContainerStatuses`) a container's status
/// lives in, and its image; panics naming the containers the pod does have.
fn container_slot(pod: &Value, container: &str) -> (&'static str, String) {
    for (spec_list, status_list) in [
        ("containers", "containerStatuses"),
        ("initContainers", "initContainerStatuses"),
    ] {
        let found = pod
            .pointer(&format!("/spec/{spec_list}"))
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
            });
        if let Some(c) = found {
            return (
                status_list,
                c.get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            );
        }
    }
    let names: Vec<&str> = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| pod.pointer(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    panic!(
        "stand-in: the pod has no container or init container named {container:?}; it has {names:?}"
    );
}

fn container_id(pod: &Value, container: &str, restart_count: i64) -> String {
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    format!(
        "containerd://{}-{container}-{restart_count}",
        uid.replace('-', "")
    )
}

impl StandIn {
    fn edit_or_panic(
        &self,
        resource: Resource,
        ns: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Value {
        let key = Key::new(resource, ns, name);
        self.shared()
            .change(|s| s.edit(&key, edit))
            .unwrap_or_else(|e| {
                panic!(
                    "stand-in: cannot update {} {ns}/{name}: {e}",
                    resource.kind()
                )
            })
    }

    /// Sets one container's state, like the kubelet: leaving a terminated state means the
    /// container was restarted, so `restartCount` goes up and `lastState` keeps the old state.
    fn set_container_state(&self, ns: &str, pod: &str, container: &str, state: Value) {
        self.edit_or_panic(Resource::Pods, ns, pod, |p| {
            let (list, image) = container_slot(p, container);
            let uid_source = p.clone();
            let status = p
                .as_object_mut()
                .expect("a stored pod is an object")
                .entry("status")
                .or_insert_with(|| json!({}));
            if !status.get(list).is_some_and(Value::is_array) {
                status[list] = json!([]);
            }
            let statuses = status[list].as_array_mut().expect("made an array above");
            let index = match statuses
                .iter()
                .position(|c| c.get("name").and_then(Value::as_str) == Some(container))
            {
                Some(i) => i,
                None => {
                    statuses.push(json!({
                        "name": container, "image": image, "imageID": "", "ready": false,
                        "restartCount": 0, "started": false, "state": {}, "lastState": {},
                    }));
                    statuses.len() - 1
                }
            };
            let entry = &mut statuses[index];
            let old_state = entry.get("state").cloned().unwrap_or_else(|| json!({}));
            let mut restarts = entry
                .get("restartCount")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if old_state.get("terminated").is_some() {
                restarts += 1;
                entry["restartCount"] = restarts.into();
                entry["lastState"] = old_state;
            }
            let mut state = state;
            let running = state.get("running").is_some();
            if running || state.get("terminated").is_some() {
                let id = container_id(&uid_source, container, restarts);
                if let Some(t) = state.get_mut("terminated").and_then(Value::as_object_mut) {
                    t.insert("containerID".into(), id.clone().into());
                }
                entry["containerID"] = id.into();
                entry["imageID"] = format!("{image}@sha256:0000").into();
            }
            entry["state"] = state;
            entry["ready"] = running.into();
            entry["started"] = running.into();
        });
    }

    /// The container is waiting (e.g. `ErrImagePull`, `CrashLoopBackOff`).
    pub fn set_container_waiting(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        reason: &str,
        message: &str,
    ) {
        let mut waiting = Map::new();
        waiting.insert("reason".into(), reason.into());
        if !message.is_empty() {
            waiting.insert("message".into(), message.into());
        }
        self.set_container_state(ns, pod, container, json!({ "waiting": waiting }));
    }

    /// The container is running (started now).
    pub fn set_container_running(&self, ns: &str, pod: &str, container: &str) {
        self.set_container_state(
            ns,
            pod,
            container,
            json!({ "running": { "startedAt": now() } }),
        );
    }

    /// The container terminated with `exit_code` (reason e.g. `Error`, `OOMKilled`,
    /// `Completed`). Also increments restartCount when the container had terminated before
    /// (OnFailure restarts): any state after a terminated one counts as a restart.
    pub fn set_container_terminated(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        exit_code: i32,
        reason: &str,
        message: &str,
    ) {
        let mut terminated = Map::new();
        terminated.insert("exitCode".into(), exit_code.into());
        terminated.insert("reason".into(), reason.into());
        if !message.is_empty() {
            terminated.insert("message".into(), message.into());
        }
        let at = now();
        terminated.insert("startedAt".into(), at.clone().into());
        terminated.insert("finishedAt".into(), at.into());
        self.set_container_state(ns, pod, container, json!({ "terminated": terminated }));
    }

    /// Sets `.status.phase` and its reason/message (removed when `None`).
    pub fn set_pod_phase(
        &self,
        ns: &str,
        pod: &str,
        phase: &str,
        reason: Option<&str>,
        message: Option<&str>,
    ) {
        self.update_pod_status(ns, pod, |status| {
            status["phase"] = phase.into();
            for (field, value) in [("reason", reason), ("message", message)] {
                match value {
                    Some(v) => status[field] = v.into(),
                    None => {
                        if let Some(o) = status.as_object_mut() {
                            o.remove(field);
                        }
                    }
                }
            }
        });
    }

    /// Arbitrary status edit of a pod as one write: `edit` gets the pod's `.status` object
    /// (created empty if absent), not the whole pod. It runs under the stand-in's lock, so it
    /// must not call back into the [`StandIn`]. Panics if the pod is missing or the result is
    /// not a valid Pod.
    pub fn update_pod_status(&self, ns: &str, pod: &str, edit: impl FnOnce(&mut Value)) {
        self.edit_or_panic(Resource::Pods, ns, pod, |p| {
            let status = p
                .as_object_mut()
                .expect("a stored pod is an object")
                .entry("status")
                .or_insert_with(|| json!({}));
            edit(status);
        });
    }

    /// Sets deletionTimestamp (MODIFIED) and then removes the pod (DELETED), like a real
    /// graceful deletion that the kubelet completes.
    pub fn delete_pod(&self, ns: &str, pod: &str) {
        self.edit_or_panic(Resource::Pods, ns, pod, |p| {
            p["metadata"]["deletionTimestamp"] = now().into();
            p["metadata"]["deletionGracePeriodSeconds"] = 30.into();
        });
        let key = Key::new(Resource::Pods, ns, pod);
        self.shared()
            .change(|s| s.delete(&key))
            .unwrap_or_else(|e| panic!("stand-in: cannot delete pod {ns}/{pod}: {e}"));
    }

    /// Upserts a condition by type on the Job status (e.g. `Complete`), like the Job
    /// controller: a read-modify-write that gets its own resourceVersion, so a client holding
    /// the older one gets 409 on its next PUT. Missing `lastProbeTime`/`lastTransitionTime`
    /// are set to now; `lastTransitionTime` is kept when the status does not change.
    pub fn job_controller_set_condition(&self, ns: &str, job: &str, condition: Value) {
        let type_ = condition
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("stand-in: a condition needs a \"type\", got {condition}"))
            .to_owned();
        self.edit_or_panic(Resource::Jobs, ns, job, |j| {
            let status = j
                .as_object_mut()
                .expect("a stored job is an object")
                .entry("status")
                .or_insert_with(|| json!({}));
            if !status.get("conditions").is_some_and(Value::is_array) {
                status["conditions"] = json!([]);
            }
            let conditions = status["conditions"]
                .as_array_mut()
                .expect("made an array above");
            let existing = conditions
                .iter()
                .position(|c| c.get("type").and_then(Value::as_str) == Some(&type_));
            let mut condition = condition;
            let at = now();
            if condition.get("lastProbeTime").is_none() {
                condition["lastProbeTime"] = at.clone().into();
            }
            if condition.get("lastTransitionTime").is_none() {
                let kept = existing
                    .map(|i| &conditions[i])
                    .filter(|old| old.get("status") == condition.get("status"))
                    .and_then(|old| old.get("lastTransitionTime").cloned());
                condition["lastTransitionTime"] = kept.unwrap_or_else(|| at.into());
            }
            match existing {
                Some(i) => conditions[i] = condition,
                None => conditions.push(condition),
            }
        });
    }
}
