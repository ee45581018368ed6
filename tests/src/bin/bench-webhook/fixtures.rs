//! The reviews the benchmark sends: the captured `create-job.json` (an opted-in Job CREATE as
//! the apiserver sends it), and the same Job grown to larger sizes the way real Jobs grow:
//! a `kubectl apply` record (`last-applied-configuration`), `managedFields` entries, labels
//! and many env vars on the adapter. Built here, deterministically, so the sizes stay put.

use serde_json::{Value, json};

/// The captured review, as the apiserver sends it.
pub const CREATE_JOB: &str = include_str!("../../../data/admission/create-job.json");

/// One review body of a given size.
pub struct Fixture {
    /// Short label for the tables (its size).
    pub label: String,
    /// The AdmissionReview body.
    pub body: Vec<u8>,
}

/// `create-job.json` (pretty-printed, as captured), the same review compact (as the apiserver
/// sends it), then the Job grown past each of `grown_kib` KiB.
pub fn all(grown_kib: &[u32]) -> Vec<Fixture> {
    let compact: Value = serde_json::from_str(CREATE_JOB).expect("create-job.json is JSON");
    let compact = serde_json::to_vec(&compact).expect("serialize");
    let captured = [(CREATE_JOB.into(), "create-job.json"), (compact, "compact")];
    let grown = grown_kib
        .iter()
        .map(|&kib| (grown(kib as usize * 1024), "grown"));
    (captured.into_iter().chain(grown))
        .map(|(body, what): (Vec<u8>, _)| Fixture {
            label: format!("{} {what}", size(body.len())),
            body,
        })
        .collect()
}

/// `n` bytes as `2.7 KB`.
pub fn size(n: usize) -> String {
    format!("{:.1} KB", n as f64 / 1000.0)
}

/// The captured review with its Job grown until the body is at least `target` bytes.
fn grown(target: usize) -> Vec<u8> {
    let mut review: Value = serde_json::from_str(CREATE_JOB).expect("create-job.json is JSON");
    let object = &mut review["request"]["object"];
    let applied = serde_json::to_string(object).expect("serialize");
    let metadata = &mut object["metadata"];
    metadata["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        Value::String(applied);
    metadata["labels"] = json!({
        "app.kubernetes.io/name": "dns-adapter",
        "app.kubernetes.io/part-of": "hyperfleet",
        "app.kubernetes.io/managed-by": "adapter-controller",
        "hyperfleet.io/cluster-id": "c-7f3a",
    });
    let mut i = 0;
    loop {
        let body = serde_json::to_vec(&review).expect("serialize");
        if body.len() >= target {
            return body;
        }
        // Alternate the two ways a Job grows: more env, and more field-manager records.
        let object = &mut review["request"]["object"];
        if i % 2 == 0 {
            let env = object["spec"]["template"]["spec"]["containers"][0]
                .as_object_mut()
                .expect("adapter container")
                .entry("env")
                .or_insert_with(|| json!([]));
            for j in 0..8 {
                env.as_array_mut().expect("env list").push(json!({
                    "name": format!("ADAPTER_SETTING_{i}_{j}"),
                    "value": format!("value-{i}-{j}-{}", "x".repeat(24)),
                }));
            }
        } else {
            let fields = object["metadata"]
                .as_object_mut()
                .expect("metadata")
                .entry("managedFields")
                .or_insert_with(|| json!([]));
            fields.as_array_mut().expect("managedFields").push(json!({
                "manager": format!("adapter-controller-{i}"),
                "operation": "Update",
                "apiVersion": "batch/v1",
                "time": "2026-11-21T10:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:annotations": {".": {}, "f:status-reporter.hyperfleet.io/inject": {}},
                                   "f:labels": {".": {}, "f:app.kubernetes.io/name": {}}},
                    "f:spec": {"f:backoffLimit": {}, "f:completionMode": {}, "f:completions": {},
                               "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"adapter\"}": {
                                   ".": {}, "f:args": {}, "f:image": {}, "f:imagePullPolicy": {},
                                   "f:name": {}, "f:resources": {}}}}}}
                }
            }));
        }
        i += 1;
    }
}
