//! Adapter Jobs whose pods the test node runs (the example Job injected as users inject it, its
//! adapter a shell script), and what the kubelet made of them.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, Pod};
use serde_json::{Value, json};

use super::adapter::{AdapterNamespace, condition, example_job};
use super::{images, kubelet, node};

/// The injected example Job named `name` in sidecar `mode` (`none`: not injected), with
/// `annotations`, its adapter running `script` (`sh -c`), on the test node.
pub fn adapter_job(name: &str, mode: &str, annotations: &[(&str, &str)], script: &str) -> Value {
    let mut job = example_job(name, mode, annotations);
    let spec = &mut job["spec"]["template"]["spec"];
    on_node(spec);
    let adapter = containers(spec)
        .find(|c| c["name"] == "adapter")
        .expect("the example has an adapter container");
    adapter["command"] = json!(["sh", "-c", script]);
    job
}

/// Moves a pod spec onto the test node: `nodeName` (no scheduler runs), the host network (no
/// pod network exists), every image the node's own and never pulled (the adapter's becomes the
/// test adapter image, unless it is already under `localhost/`).
pub fn on_node(spec: &mut Value) {
    spec["nodeName"] = json!(node::NAME);
    spec["hostNetwork"] = json!(true);
    let reporter = images::reporter();
    for c in containers(spec) {
        let image = c["image"].as_str().unwrap_or_default();
        if c["name"] == "status-reporter" || image.contains("/status-reporter:") {
            c["image"] = json!(reporter);
        } else if !image.starts_with("localhost/") {
            c["image"] = json!(images::ADAPTER);
        }
        c["imagePullPolicy"] = json!("Never");
    }
}

/// The init containers and containers of a pod spec.
pub fn containers(spec: &mut Value) -> impl Iterator<Item = &mut Value> {
    let Value::Object(fields) = spec else {
        panic!("a pod spec is an object")
    };
    fields
        .iter_mut()
        .filter(|(k, _)| *k == "initContainers" || *k == "containers")
        .flat_map(|(_, list)| list.as_array_mut().into_iter().flatten())
}

/// Waits (bounded) for the Job controller's verdict: `Complete` or `Failed`.
pub async fn wait_finished(ns: &AdapterNamespace, job: &str, timeout: Duration) -> (String, Job) {
    let verdict = |j: &Job| {
        let mut verdicts = ["Complete", "Failed"].into_iter();
        verdicts.find(|t| condition(j, t).is_some_and(|c| c.status == "True"))
    };
    let done = ns
        .wait_job(job, "Complete or Failed", timeout, |j| verdict(j).is_some())
        .await;
    (verdict(&done).expect("accepted").to_owned(), done)
}

/// Waits (bounded) until every pod of the Job with uid `uid` has ended, at least `n`.
pub async fn ended_pods(ns: &AdapterNamespace, uid: &str, n: usize, timeout: Duration) -> Vec<Pod> {
    kubelet::wait_job_pods(
        &ns.client,
        &ns.name,
        uid,
        &format!("{n} ended pod(s)"),
        timeout,
        |pods| pods.len() >= n && pods.iter().all(ended),
    )
    .await
}

/// Whether the pod has ended (`Succeeded` or `Failed`).
pub fn ended(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// The pod's phase.
pub fn phase(pod: &Pod) -> &str {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

/// The status of `container` (or init container) as the kubelet reported it.
pub fn container_status<'a>(pod: &'a Pod, container: &str) -> Option<&'a ContainerStatus> {
    let status = pod.status.as_ref()?;
    let all = status
        .container_statuses
        .iter()
        .chain(&status.init_container_statuses);
    all.flatten().find(|s| s.name == container)
}

/// The state of `container` (or init container) as the kubelet reported it (empty before).
pub fn container_state(pod: &Pod, container: &str) -> ContainerState {
    let status = container_status(pod, container);
    status.and_then(|s| s.state.clone()).unwrap_or_default()
}

/// The terminated state of `container`, if it has terminated.
pub fn terminated(pod: &Pod, container: &str) -> Option<ContainerStateTerminated> {
    container_state(pod, container).terminated
}

/// `(exit code, reason)` of [`terminated`], for assertions.
pub fn exit(pod: &Pod, container: &str) -> Option<(i32, String)> {
    terminated(pod, container).map(|t| (t.exit_code, t.reason.unwrap_or_default()))
}

/// A directory of the machine that the adapter sees at `/attempts` (a `hostPath` volume), so
/// that its script can tell its Job's first attempt from a later one (a retry, the pod of a
/// resumed Job): the state a real flaky adapter keeps outside its pod.
pub struct Attempts {
    dir: tempfile::TempDir,
}

impl Default for Attempts {
    /// A new, empty directory any container user can write.
    fn default() -> Attempts {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod 777");
        Attempts { dir }
    }
}

impl Attempts {
    /// The directory on the machine.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Mounts the directory into `job`'s adapter at `/attempts`.
    pub fn mount(&self, job: &mut Value) {
        let spec = &mut job["spec"]["template"]["spec"];
        let volumes = spec["volumes"]
            .as_array_mut()
            .expect("the injected Job has volumes");
        volumes.push(json!({"name": "attempts", "hostPath":
            {"path": self.dir.path(), "type": "Directory"}}));
        let adapter = containers(spec)
            .find(|c| c["name"] == "adapter")
            .expect("adapter");
        adapter["volumeMounts"]
            .as_array_mut()
            .expect("the injected adapter mounts the results")
            .push(json!({"name": "attempts", "mountPath": "/attempts"}));
    }

    /// A script that runs `first` on the first attempt and `later` on every other.
    pub fn script(first: &str, later: &str) -> String {
        format!("if [ -e /attempts/seen ]; then {later}; else touch /attempts/seen; {first}; fi")
    }
}
