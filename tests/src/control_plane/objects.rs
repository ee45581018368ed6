//! Kubernetes objects as the suites handle them: YAML streams read into JSON values, rendered
//! kustomizations, applied (or dry-run) with the release's own `kubectl`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::Cluster;
use super::cluster::run;

/// Every document of a YAML stream (Lists flattened), skipping empty documents; panics naming
/// `what` on bad YAML.
pub fn yaml_docs(text: &str, what: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(doc)
            .unwrap_or_else(|e| panic!("{what}: not YAML: {e}"));
        match value {
            Value::Null => {}
            Value::Object(ref o)
                if o.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"))
                    && o.get("items").is_some_and(Value::is_array) =>
            {
                out.extend(o["items"].as_array().cloned().unwrap_or_default());
            }
            v => out.push(v),
        }
    }
    out
}

/// `kind/name` of an object, for messages.
pub fn describe(obj: &Value) -> String {
    let name = obj["metadata"]["name"]
        .as_str()
        .or_else(|| obj["metadata"]["generateName"].as_str())
        .unwrap_or("?");
    format!("{}/{name}", obj["kind"].as_str().unwrap_or("?"))
}

/// A `v1` List of `items` (what `kubectl … -f -` takes as one stream).
pub fn list(items: &[Value]) -> String {
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

impl Cluster {
    /// `kubectl kustomize dir`, as objects; panics with kubectl's message if it fails.
    pub fn kustomize(&self, dir: &Path) -> Vec<Value> {
        let (ok, out, err) = self.kubectl_run(&["kustomize", &dir.to_string_lossy()], None);
        assert!(ok, "kubectl kustomize {}: {err}", dir.display());
        yaml_docs(&out, &format!("kustomize {}", dir.display()))
    }

    /// `kubectl apply [--dry-run=server] -f -` of `objects`; returns (success, stdout, stderr).
    ///
    /// Test processes apply the same cluster-scoped objects (the reporter's ClusterRole), and a
    /// client-side apply is a GET then a CREATE: of two at once one fails with `AlreadyExists`,
    /// and applied again patches. Not server-side: that leaves no `last-applied-configuration`,
    /// and a user's later `kubectl apply -k manifests/` would warn (`real_manifests` checks).
    pub fn apply(&self, objects: &[Value], dry_run: bool) -> (bool, String, String) {
        let first = self.submit("apply", objects, dry_run);
        if first.0 || !first.2.contains("AlreadyExists") {
            return first;
        }
        self.submit("apply", objects, dry_run)
    }

    /// `kubectl create [--dry-run=server] -f -` of `objects`; returns (success, stdout, stderr).
    pub fn create(&self, objects: &[Value], dry_run: bool) -> (bool, String, String) {
        self.submit("create", objects, dry_run)
    }

    fn submit(&self, verb: &str, objects: &[Value], dry_run: bool) -> (bool, String, String) {
        let dry_run = if dry_run {
            "--dry-run=server"
        } else {
            "--dry-run=none"
        };
        self.kubectl_run(&[verb, dry_run, "-f", "-"], Some(&list(objects)))
    }

    /// Whether the API server serves `kind` in `apiVersion` (e.g. `MutatingAdmissionPolicy` in
    /// `admissionregistration.k8s.io/v1`): a group version can be served while one of its
    /// kinds is not yet (MutatingAdmissionPolicy went v1 in 1.36, long after the webhooks).
    pub fn serves(&self, api_version: &str, kind: &str) -> bool {
        static SERVED: std::sync::Mutex<BTreeMap<String, Vec<String>>> =
            std::sync::Mutex::new(BTreeMap::new());
        let mut served = SERVED.lock().unwrap_or_else(|e| e.into_inner());
        let kinds = served.entry(api_version.to_owned()).or_insert_with(|| {
            let path = match api_version.contains('/') {
                true => format!("/apis/{api_version}"),
                false => format!("/api/{api_version}"),
            };
            let (ok, out, _) = self.kubectl_run(&["get", "--raw", &path], None);
            if !ok {
                return Vec::new(); // 404: the group version is not served at all.
            }
            let list: Value = serde_json::from_str(&out).unwrap_or_default();
            list["resources"]
                .as_array()
                .into_iter()
                .flatten()
                // Subresources (`jobs/status`) share their parent's kind.
                .filter(|r| !r["name"].as_str().unwrap_or_default().contains('/'))
                .filter_map(|r| r["kind"].as_str().map(str::to_owned))
                .collect()
        });
        kinds.iter().any(|k| k == kind)
    }
}

/// `status-reporter-webhook inject -f file` (plus `args`): the injected objects; panics with
/// stderr on failure.
pub fn inject_file(file: &Path, args: &[&str]) -> Vec<Value> {
    let bin = crate::bin::path("status-reporter-webhook");
    let (ok, out, err) = run(
        std::process::Command::new(bin)
            .args(["inject", "-f"])
            .arg(file)
            .args(args),
        None,
    );
    assert!(ok, "inject -f {}: {err}", file.display());
    yaml_docs(&out, &format!("inject -f {}", file.display()))
}

/// Sets `metadata.namespace` of every namespaced object to `namespace`.
pub fn in_namespace(objects: &mut [Value], namespace: &str) {
    for obj in objects {
        if obj["metadata"].get("namespace").is_some() {
            obj["metadata"]["namespace"] = json!(namespace);
        }
        // RoleBinding subjects name the namespace of their ServiceAccount.
        if let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) {
            for s in subjects {
                if s.get("namespace").is_some() {
                    s["namespace"] = json!(namespace);
                }
            }
        }
    }
}

/// The pod template of a Job or CronJob, as a Pod the Job controller would create (the labels
/// it adds included), or `None` for other kinds.
pub fn pod_of(obj: &Value, namespace: &str) -> Option<Value> {
    let template = match obj["kind"].as_str()? {
        "Job" => &obj["spec"]["template"],
        "CronJob" => &obj["spec"]["jobTemplate"]["spec"]["template"],
        _ => return None,
    };
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    meta["name"] = json!(format!(
        "{}-pod",
        obj["metadata"]["name"].as_str().unwrap_or("job")
    ));
    meta["namespace"] = json!(namespace);
    meta["labels"]["batch.kubernetes.io/job-name"] = obj["metadata"]["name"].clone();
    meta["labels"]["batch.kubernetes.io/controller-uid"] =
        json!("00000000-0000-0000-0000-000000000000");
    Some(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template["spec"],
    }))
}
