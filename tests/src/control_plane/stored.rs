//! Objects as the API server stores them, compared modulo the server's bookkeeping and the
//! installing tool's marks: two install paths that store the same objects compare equal, any
//! other difference is named by its dotted path.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Cluster;
use super::objects::{describe, list};

/// The labels a Helm chart carries and kustomize does not (the chart's `helmLabels`).
pub const HELM_LABELS: [&str; 4] = [
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
    let mut out = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let value = value.unwrap_or_else(|e| panic!("{what}: not JSON: {e}\n{text}"));
        match value["items"].as_array() {
            Some(items) if value["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                out.extend(items.iter().cloned())
            }
            _ => out.push(value),
        }
    }
    out
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
    let at = |p: &str| {
        if p.is_empty() {
            "(top)".to_owned()
        } else {
            p.to_owned()
        }
    };
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
        _ => out.push(format!("{}: {a} != {b}", at(&path))),
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
