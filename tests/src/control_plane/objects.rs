//! Kubernetes objects as the suites handle them: YAML streams read into JSON values, rendered
//! kustomizations, applied (or dry-run) with the release's own `kubectl`; and as the API server
//! stores them, compared modulo its bookkeeping and the installing tool's marks ([`comparable`]):
//! two install paths that store the same objects compare equal, any other difference is named
//! by its dotted path.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::Cluster;
use super::cluster::run;

/// Every document of a YAML stream (Lists flattened), skipping empty documents; panics naming
/// `what` on bad YAML.
pub fn yaml_docs(text: &str, what: &str) -> Vec<Value> {
    let docs = serde_yaml_ng::Deserializer::from_str(text).map(|doc| {
        serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{what}: not YAML: {e}"))
    });
    docs.flat_map(items).collect()
}

/// The items of a `…List`, nothing for `null`, else `value` itself.
fn items(value: Value) -> Vec<Value> {
    let list = value["kind"].as_str().is_some_and(|k| k.ends_with("List"));
    match value["items"].as_array() {
        Some(items) if list => items.clone(),
        _ if value.is_null() => Vec::new(),
        _ => vec![value],
    }
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

/// The labels a Helm chart carries and kustomize does not (the chart's `helmLabels`).
const HELM_LABELS: [&str; 4] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];

/// Annotations the installing tool writes: `kubectl apply`'s and Helm's release record.
const TOOL_ANNOTATIONS: [&str; 3] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
];

/// Metadata the API server writes.
const SERVER_METADATA: [&str; 5] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
];

impl Cluster {
    /// `objects` as the API server stores them now (`kubectl get -f - -o json`); panics with
    /// kubectl's message if one is missing.
    pub fn stored(&self, objects: &[Value]) -> Vec<Value> {
        let (ok, out, err) =
            self.kubectl_run(&["get", "-f", "-", "-o", "json"], Some(&list(objects)));
        assert!(ok, "kubectl get of {} objects: {err}", objects.len());
        json_objects(&out, "kubectl get -o json")
    }
}

/// The objects of kubectl's `-o json` output: one object, a `List`, or (from `create` of
/// several) objects one after the other; panics naming `what` on anything else.
pub fn json_objects(text: &str, what: &str) -> Vec<Value> {
    let values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let values = values.map(|v| v.unwrap_or_else(|e| panic!("{what}: not JSON: {e}\n{text}")));
    values.flat_map(items).collect()
}

/// `obj` without the server's bookkeeping and the installing tool's marks (see the module
/// docs); empty `labels`/`annotations` maps are dropped.
pub fn comparable(obj: &Value) -> Value {
    let mut obj = obj.clone();
    let Some(root) = obj.as_object_mut() else {
        return obj;
    };
    root.remove("status");
    if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in SERVER_METADATA {
            meta.remove(key);
        }
        strip(meta, "labels", &HELM_LABELS);
        strip(meta, "annotations", &TOOL_ANNOTATIONS);
    }
    // A Service's cluster IP is allocated at creation: each install gets another.
    if root.get("kind").and_then(Value::as_str) == Some("Service")
        && let Some(spec) = root.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    obj
}

fn strip(meta: &mut Map<String, Value>, field: &str, keys: &[&str]) {
    if let Some(map) = meta.get_mut(field).and_then(Value::as_object_mut) {
        for key in keys {
            map.remove(*key);
        }
        if map.is_empty() {
            meta.remove(field);
        }
    }
}

/// `apiVersion kind namespace/name` of an object: what identifies it in a comparison.
fn key(obj: &Value) -> String {
    let meta = &obj["metadata"];
    format!(
        "{} {} {}/{}",
        obj["apiVersion"].as_str().unwrap_or("?"),
        obj["kind"].as_str().unwrap_or("?"),
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("?"),
    )
}

/// How the objects of `left` and `right` (matched by apiVersion, kind, namespace and name)
/// differ after [`comparable`]: a line per missing object or differing field.
pub fn object_differences(
    left_name: &str,
    left: &[Value],
    right_name: &str,
    right: &[Value],
) -> Vec<String> {
    let index = |objs: &[Value]| -> BTreeMap<String, Value> {
        objs.iter().map(|o| (key(o), comparable(o))).collect()
    };
    let (l, r) = (index(left), index(right));
    let mut out = Vec::new();
    for (k, a) in &l {
        match r.get(k) {
            None => out.push(format!("{k}: only in {left_name}")),
            Some(b) => out.extend(
                differences(a, b)
                    .into_iter()
                    .map(|d| format!("{}: {d}", describe(a))),
            ),
        }
    }
    out.extend(
        r.keys()
            .filter(|k| !l.contains_key(*k))
            .map(|k| format!("{k}: only in {right_name}")),
    );
    out
}

/// Dotted paths where `a` and `b` differ, each with both values (`a` first).
pub fn differences(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(a, b, String::new(), &mut out);
    out
}

fn walk(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => walk(v, w, sub, out),
                    (Some(v), None) => out.push(format!("{sub}: only on the left: {v}")),
                    (None, Some(w)) => out.push(format!("{sub}: only on the right: {w}")),
                    (None, None) => {}
                }
            }
        }
        // Lists of named entries (containers, env, volumes): matched by name, so an added or
        // missing entry is named instead of shifting every one after it.
        (Value::Array(x), Value::Array(y)) if x.len() != y.len() && named(x) && named(y) => {
            let name = |v: &Value| v["name"].as_str().unwrap_or_default().to_owned();
            for v in x {
                match y.iter().find(|w| name(w) == name(v)) {
                    Some(w) => walk(v, w, format!("{path}[name={}]", name(v)), out),
                    None => out.push(format!("{path}[name={}]: only on the left: {v}", name(v))),
                }
            }
            for w in y.iter().filter(|w| !x.iter().any(|v| name(v) == name(w))) {
                out.push(format!("{path}[name={}]: only on the right: {w}", name(w)));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                walk(v, w, format!("{path}[{i}]"), out);
            }
        }
        _ if a == b => {}
        _ if path.is_empty() => out.push(format!("(top): {a} != {b}")),
        _ => out.push(format!("{path}: {a} != {b}")),
    }
}

fn named(list: &[Value]) -> bool {
    list.iter().all(|v| v["name"].is_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tools_and_servers_marks_are_not_compared_anything_else_is() {
        let kustomize = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "n", "uid": "1", "resourceVersion": "5",
                "labels": {"app.kubernetes.io/name": "x"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 443}]},
        });
        let helm = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "n", "uid": "2", "resourceVersion": "9",
                "labels": {"app.kubernetes.io/name": "x", "helm.sh/chart": "c-0.1.0",
                    "app.kubernetes.io/managed-by": "Helm"},
                "annotations": {"meta.helm.sh/release-name": "r"}},
            "spec": {"clusterIP": "10.0.0.7", "ports": [{"port": 443}]},
            "status": {"loadBalancer": {}},
        });
        assert_eq!(
            object_differences(
                "kustomize",
                std::slice::from_ref(&kustomize),
                "helm",
                std::slice::from_ref(&helm)
            ),
            Vec::<String>::new()
        );
        let mut other = helm;
        other["spec"]["ports"][0]["port"] = json!(8443);
        other["metadata"]["labels"]["team"] = json!("a");
        assert_eq!(
            object_differences("kustomize", &[kustomize], "helm", &[other]),
            vec![
                "Service/s: metadata.labels.team: only on the right: \"a\"".to_owned(),
                "Service/s: spec.ports[0].port: 443 != 8443".to_owned(),
            ]
        );
    }

    #[test]
    fn an_entry_missing_from_a_named_list_is_named() {
        let a = json!({"env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]});
        let b = json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"},
            {"name": "C", "value": "4"}]});
        assert_eq!(
            differences(&a, &b),
            vec![
                "env[name=C].value: \"3\" != \"4\"".to_owned(),
                "env[name=B]: only on the right: {\"name\":\"B\",\"value\":\"2\"}".to_owned(),
            ]
        );
    }

    #[test]
    fn a_missing_object_is_named_with_the_side_that_has_it() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}});
        assert_eq!(
            object_differences("kustomize", &[a], "helm", &[b]),
            vec![
                "v1 ConfigMap /a: only in kustomize".to_owned(),
                "v1 ConfigMap /b: only in helm".to_owned(),
            ]
        );
    }
}
