//! Strategic merge patch, for the fields the stand-in serves.
//!
//! Like `k8s.io/apimachinery/pkg/util/strategicpatch`: objects merge recursively, `null`
//! deletes a key, lists with a `patchMergeKey` (e.g. `status.conditions` by `type`) merge
//! item by item, every other list is replaced whole. The directives `$patch: replace|delete`
//! (on objects and list items), `$deleteFromPrimitiveList/…` are honoured;
//! `$setElementOrder/…` and `$retainKeys` are accepted and ignored.

use serde_json::{Map, Value};

/// The `patchMergeKey` of the list at `path` (dotted field names, list items transparent),
/// from the Kubernetes Go types of Job, Pod and Event; `None` means the list is replaced.
pub(crate) fn merge_key(path: &str) -> Option<&'static str> {
    let last = path.rsplit('.').next().unwrap_or(path);
    match last {
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ports" => Some("containerPort"),
        _ => None,
    }
}

/// Applies `patch` to `original` and returns the result, or a message naming what was wrong.
pub(crate) fn apply(original: &Value, patch: &Value) -> Result<Value, String> {
    let (Some(orig), Some(patch)) = (original.as_object(), patch.as_object()) else {
        return Err("a strategic merge patch must be a JSON object".to_owned());
    };
    Ok(Value::Object(
        merge_object(orig, patch, "")?.unwrap_or_default(),
    ))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Merges `patch` into `orig`; `None` means the object itself is deleted (`$patch: delete`).
fn merge_object(
    orig: &Map<String, Value>,
    patch: &Map<String, Value>,
    path: &str,
) -> Result<Option<Map<String, Value>>, String> {
    match patch.get("$patch") {
        None => {}
        Some(Value::String(d)) if d == "delete" => return Ok(None),
        Some(Value::String(d)) if d == "replace" => {
            let mut clean = patch.clone();
            clean.remove("$patch");
            return merge_object(&Map::new(), &clean, path);
        }
        Some(other) => {
            return Err(format!(
                "{}: unknown patch directive $patch: {other}; accepted: \"replace\", \"delete\"",
                display_path(path)
            ));
        }
    }
    let mut out = orig.clone();
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let remove = value.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(items)) = out.get_mut(list) {
                items.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            return Err(format!(
                "{}: unknown patch directive {key}",
                display_path(path)
            ));
        }
        let child = join(path, key);
        match value {
            Value::Null => {
                out.remove(key);
            }
            Value::Object(p) => {
                let empty = Map::new();
                let base = out.get(key).and_then(Value::as_object).unwrap_or(&empty);
                match merge_object(base, p, &child)? {
                    Some(merged) => {
                        out.insert(key.clone(), Value::Object(merged));
                    }
                    None => {
                        out.remove(key);
                    }
                }
            }
            Value::Array(items) => {
                let merged = merge_list(out.get(key).and_then(Value::as_array), items, &child)?;
                out.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                out.insert(key.clone(), scalar.clone());
            }
        }
    }
    Ok(Some(out))
}

fn is_list_replace_directive(item: &Value) -> bool {
    item.as_object()
        .is_some_and(|o| o.len() == 1 && o.get("$patch").and_then(Value::as_str) == Some("replace"))
}

fn merge_list(
    orig: Option<&Vec<Value>>,
    patch: &[Value],
    path: &str,
) -> Result<Vec<Value>, String> {
    let replace_all = patch.iter().any(is_list_replace_directive);
    let key = merge_key(path).filter(|_| !replace_all);
    let Some(key) = key else {
        // Atomic list (or explicit replace): the patch's items, cleaned of directives.
        return patch
            .iter()
            .filter(|item| !is_list_replace_directive(item))
            .map(|item| match item {
                Value::Object(o) => Ok(Value::Object(
                    merge_object(&Map::new(), o, path)?.unwrap_or_default(),
                )),
                other => Ok(other.clone()),
            })
            .collect();
    };
    let mut out = orig.cloned().unwrap_or_default();
    for item in patch {
        let Some(obj) = item.as_object() else {
            return Err(format!(
                "{}: list items must be objects with the merge key {key:?}, got {item}",
                display_path(path)
            ));
        };
        let Some(id) = obj.get(key) else {
            return Err(format!(
                "{}: list item is missing its merge key {key:?}: {item}",
                display_path(path)
            ));
        };
        let pos = out.iter().position(|e| e.get(key) == Some(id));
        let delete = obj.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(p), true) => {
                out.remove(p);
            }
            (None, true) => {}
            (Some(p), false) => {
                let empty = Map::new();
                let base = out[p].as_object().unwrap_or(&empty);
                match merge_object(base, obj, path)? {
                    Some(merged) => out[p] = Value::Object(merged),
                    None => {
                        out.remove(p);
                    }
                }
            }
            (None, false) => {
                if let Some(merged) = merge_object(&Map::new(), obj, path)? {
                    out.push(Value::Object(merged));
                }
            }
        }
    }
    Ok(out)
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "<root>" } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job_with(conditions: Value) -> Value {
        json!({"metadata": {"name": "j", "labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"conditions": conditions, "active": 1}})
    }

    #[test]
    fn conditions_merge_by_type_keeping_others() {
        let orig = job_with(
            json!([{"type": "Complete", "status": "True"}, {"type": "Available", "status": "Unknown"}]),
        );
        let patch = json!({"status": {"conditions": [{"type": "Available", "status": "True", "reason": "Ok"}]}});
        let out = apply(&orig, &patch).unwrap();
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Complete", "status": "True"}, {"type": "Available", "status": "True", "reason": "Ok"}])
        );
        assert_eq!(out["status"]["active"], 1);
    }

    #[test]
    fn new_condition_is_appended() {
        let orig = job_with(json!([{"type": "Complete", "status": "True"}]));
        let patch = json!({"status": {"conditions": [{"type": "Available", "status": "False"}]}});
        let out = apply(&orig, &patch).unwrap();
        assert_eq!(out["status"]["conditions"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn delete_directive_removes_one_condition() {
        let orig = job_with(
            json!([{"type": "Complete", "status": "True"}, {"type": "Available", "status": "True"}]),
        );
        let patch = json!({"status": {"conditions": [{"type": "Available", "$patch": "delete"}]}});
        let out = apply(&orig, &patch).unwrap();
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Complete", "status": "True"}])
        );
    }

    #[test]
    fn replace_directive_replaces_the_list() {
        let orig = job_with(json!([{"type": "Complete", "status": "True"}]));
        let patch = json!({"status": {"conditions": [{"$patch": "replace"}, {"type": "Available", "status": "True"}]}});
        let out = apply(&orig, &patch).unwrap();
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Available", "status": "True"}])
        );
    }

    #[test]
    fn lists_without_merge_key_are_replaced_and_null_deletes() {
        let orig =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"args": ["x", "y"]}});
        let patch = json!({"metadata": {"labels": {"a": null}}, "spec": {"args": ["z"]}});
        let out = apply(&orig, &patch).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"args": ["z"]}})
        );
    }

    #[test]
    fn object_delete_and_replace_directives() {
        let orig = json!({"a": {"x": 1, "y": 2}, "b": {"x": 1}});
        let patch = json!({"a": {"$patch": "replace", "z": 3}, "b": {"$patch": "delete"}});
        assert_eq!(apply(&orig, &patch).unwrap(), json!({"a": {"z": 3}}));
    }

    #[test]
    fn bad_directives_and_missing_keys_are_explained() {
        let orig = job_with(json!([]));
        let err = apply(&orig, &json!({"status": {"$patch": "bogus"}})).unwrap_err();
        assert!(err.contains("unknown patch directive"), "{err}");
        let err = apply(
            &orig,
            &json!({"status": {"conditions": [{"status": "True"}]}}),
        )
        .unwrap_err();
        assert!(
            err.contains("status.conditions") && err.contains("\"type\""),
            "{err}"
        );
        assert!(apply(&orig, &json!([1])).is_err());
    }

    #[test]
    fn delete_from_primitive_list() {
        let orig = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}});
        assert_eq!(
            apply(&orig, &patch).unwrap(),
            json!({"metadata": {"finalizers": ["a", "c"]}})
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn condition_list() -> impl Strategy<Value = Vec<(u8, bool)>> {
        proptest::collection::btree_map(0u8..8, any::<bool>(), 0..6)
            .prop_map(|m| m.into_iter().collect())
    }

    fn conditions(list: &[(u8, bool)]) -> Value {
        list.iter()
            .map(|(t, s)| json!({"type": format!("T{t}"), "status": if *s { "True" } else { "False" }}))
            .collect()
    }

    proptest! {
        /// Patching conditions by type never drops, duplicates or reorders the others, and
        /// leaves each patched type with the patched status.
        #[test]
        fn condition_patches_touch_only_their_types(orig in condition_list(), patch in condition_list()) {
            let original = json!({"status": {"conditions": conditions(&orig)}});
            let out = apply(&original, &json!({"status": {"conditions": conditions(&patch)}})).unwrap();
            let out = out["status"]["conditions"].as_array().unwrap().clone();
            let status_of = |t: u8| out.iter().filter(|c| c["type"] == format!("T{t}")).map(|c| c["status"].clone()).collect::<Vec<_>>();
            for (t, s) in &orig {
                let expected = patch.iter().find(|(p, _)| p == t).map_or(*s, |(_, ps)| *ps);
                prop_assert_eq!(status_of(*t), vec![json!(if expected { "True" } else { "False" })]);
            }
            let original_order: Vec<Value> = orig.iter().map(|(t, _)| json!(format!("T{t}"))).collect();
            let prefix: Vec<Value> = out.iter().take(orig.len()).map(|c| c["type"].clone()).collect();
            prop_assert_eq!(prefix, original_order);
            let new_types = patch.iter().filter(|(t, _)| !orig.iter().any(|(o, _)| o == t)).count();
            prop_assert_eq!(out.len(), orig.len() + new_types);
        }

        /// Deleting a type removes exactly that condition.
        #[test]
        fn delete_directive_removes_exactly_one(orig in condition_list(), victim in 0u8..8) {
            let original = json!({"status": {"conditions": conditions(&orig)}});
            let patch = json!({"status": {"conditions": [{"type": format!("T{victim}"), "$patch": "delete"}]}});
            let out = apply(&original, &patch).unwrap();
            let types: Vec<Value> = out["status"]["conditions"].as_array().unwrap().iter().map(|c| c["type"].clone()).collect();
            let expected: Vec<Value> = orig.iter().filter(|(t, _)| *t != victim).map(|(t, _)| json!(format!("T{t}"))).collect();
            prop_assert_eq!(types, expected);
        }
    }
}
