//! Property tests for the admission path: arbitrary bodies, arbitrary (plausible) Jobs and
//! arbitrary annotation values never panic; every answer is a well-formed AdmissionReview;
//! every patch applies cleanly to the object it came from and yields a Job; injecting twice
//! equals injecting once.
//!
//! Case counts are bounded (256) so these run in the normal test command.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use proptest::prelude::*;
use serde_json::{Value, json};
use status_reporter_webhook::admission::{Outcome, review};
use status_reporter_webhook::annotations;
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::{Injection, inject};

#[path = "../../fuzz/checks/admission.rs"]
mod checks;
#[path = "../../fuzz/checks/regressions.rs"]
mod regressions;
mod support;

use checks::Exercised;
use support::{annotation_value, inject_config, job, known_keys};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Regressions are kept as explicit tests, not in proptest-regressions files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

use contract::annotations::PREFIX;

// ---------------------------------------------------------------------------------------------
// Reviews

fn admission_review(object: &Value, namespace: Option<&str>, operation: &str) -> Value {
    let mut request = json!({
        "uid": "3f1b2c4d-0000-4000-8000-000000000001",
        "kind": {"group": "batch", "version": "v1", "kind": "Job"},
        "resource": {"group": "batch", "version": "v1", "resource": "jobs"},
        "operation": operation,
        "userInfo": {"username": "prop"},
        "object": object,
        "oldObject": null,
        "dryRun": false,
    });
    if let Some(ns) = namespace {
        request["namespace"] = json!(ns);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

// ---------------------------------------------------------------------------------------------
// Checks

/// The response must be an admission.k8s.io/v1 AdmissionReview with a response block.
fn well_formed(bytes: &[u8]) -> Result<Value, TestCaseError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| TestCaseError::fail(format!("response is not JSON: {e}")))?;
    prop_assert_eq!(&v["apiVersion"], "admission.k8s.io/v1", "{}", v);
    prop_assert_eq!(&v["kind"], "AdmissionReview", "{}", v);
    let r = &v["response"];
    prop_assert!(r["uid"].is_string(), "no uid: {v}");
    prop_assert!(r["allowed"].is_boolean(), "no allowed: {v}");
    if r["allowed"] == false {
        let msg = r["status"]["message"].as_str().unwrap_or_default();
        prop_assert!(!msg.is_empty(), "refusal without a message: {v}");
        prop_assert!(r.get("patch").is_none(), "refusal with a patch: {v}");
    }
    Ok(v)
}

/// Decodes the response patch; JSON `[]byte` is an array of numbers or a base64 string.
fn patch_of(response: &Value) -> Result<Option<json_patch::Patch>, TestCaseError> {
    let Some(raw) = response.get("patch") else {
        return Ok(None);
    };
    prop_assert_eq!(&response["patchType"], "JSONPatch");
    // base64, as the apiserver reads a `[]byte`.
    let bytes = serde_json::from_value::<k8s_openapi::ByteString>(raw.clone())
        .map_err(|e| TestCaseError::fail(format!("patch is not base64 bytes: {e}")))?
        .0;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| TestCaseError::fail(format!("patch is not a JSON Patch: {e}")))
}

/// Applies `patch` to `object` as received and checks the result is a Job.
fn apply_to(object: &Value, patch: &json_patch::Patch) -> Result<(Value, Job), TestCaseError> {
    checks::apply_to(object, patch).map_err(TestCaseError::fail)
}

/// A denial names what was wrong: an annotation under our prefix, or the Job's shape.
fn denial_names_cause(message: &str) -> bool {
    message.contains(PREFIX)
        || message.contains("not a valid batch/v1 Job")
        || message.contains("no containers")
        || message.contains("RESULTS_PATH")
        || message.contains("carries no object")
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes: never a panic, always a well-formed review answer.
    #[test]
    fn arbitrary_body_gets_a_review(body in prop::collection::vec(any::<u8>(), 0..1024)) {
        let answer = review(&body, &InjectConfig::default());
        let v = well_formed(answer.json().unwrap())?;
        prop_assert_eq!(answer.outcome, Outcome::Invalid, "{}", v);
    }

    /// A real review with noise spliced in (truncated, bytes inserted): never a panic, and the
    /// answer is well-formed whatever part of the review survived.
    #[test]
    fn mangled_review_gets_a_review(
        object in job(known_keys()),
        cut in any::<prop::sample::Index>(),
        noise in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut body = serde_json::to_vec(&admission_review(&object, Some("adapters"), "CREATE")).unwrap_or_default();
        let at = cut.index(body.len() + 1);
        body.splice(at..at, noise);
        well_formed(review(&body, &InjectConfig::default()).json().unwrap())?;
    }

    /// Any plausible Job through the full admission path: well-formed answer; a patch applies
    /// to the object as sent and yields a Job; reviewing the patched Job again is a no-op.
    #[test]
    fn every_patch_applies_and_is_idempotent(
        object in job(known_keys()),
        ns in prop::option::of(prop::sample::select(vec!["adapters", "kube-system"])),
        cfg in inject_config(),
    ) {
        let body = serde_json::to_vec(&admission_review(&object, ns, "CREATE")).unwrap_or_default();
        let answer = review(&body, &cfg);
        let v = well_formed(answer.json().unwrap())?;
        let response = &v["response"];
        prop_assert_eq!(&response["uid"], "3f1b2c4d-0000-4000-8000-000000000001");
        match answer.outcome {
            Outcome::Injected => {
                let patch = patch_of(response)?.ok_or_else(|| TestCaseError::fail("injected without a patch"))?;
                prop_assert!(!patch.0.is_empty());
                let (patched, job) = apply_to(&object, &patch)?;
                let pod = job.spec.as_ref().and_then(|s| s.template.spec.as_ref());
                let reporters = pod.map_or(0, |p| {
                    p.containers.iter().chain(p.init_containers.iter().flatten())
                        .filter(|c| c.name == "status-reporter").count()
                });
                prop_assert_eq!(reporters, 1, "{}", patched);
                // Reinvocation: the patched Job gets an empty patch.
                let again = review(
                    &serde_json::to_vec(&admission_review(&patched, ns, "CREATE")).unwrap_or_default(),
                    &cfg,
                );
                prop_assert_eq!(again.outcome, Outcome::Skipped, "second review: {}", again.detail);
                let v2 = well_formed(again.json().unwrap())?;
                prop_assert!(v2["response"].get("patch").is_none(), "second patch: {v2}");
            }
            Outcome::Skipped => {
                prop_assert_eq!(&response["allowed"], true);
                prop_assert!(response.get("patch").is_none());
            }
            Outcome::Denied => {
                prop_assert_eq!(&response["allowed"], false);
                let msg = response["status"]["message"].as_str().unwrap_or_default();
                prop_assert!(denial_names_cause(msg), "unclear denial: {msg}");
            }
            Outcome::Invalid => prop_assert!(false, "a well-formed review was called invalid: {}", answer.detail),
        }
    }

    /// Anything that is not a CREATE is allowed unchanged.
    #[test]
    fn non_create_is_allowed_unchanged(
        object in job(known_keys()),
        op in prop::sample::select(vec!["UPDATE", "DELETE", "CONNECT"]),
    ) {
        let body = serde_json::to_vec(&admission_review(&object, Some("adapters"), op)).unwrap_or_default();
        let answer = review(&body, &InjectConfig::default());
        let v = well_formed(answer.json().unwrap())?;
        prop_assert_eq!(answer.outcome, Outcome::Skipped);
        prop_assert_eq!(&v["response"]["allowed"], true);
        prop_assert!(v["response"].get("patch").is_none());
    }

    /// The pure step directly: inject twice == inject once.
    #[test]
    fn inject_twice_equals_inject_once(object in job(known_keys()), cfg in inject_config()) {
        checks::inject_twice(&object, &cfg).map_err(TestCaseError::fail)?;
    }

    /// Arbitrary values for every known annotation on an otherwise fine Job: never a panic;
    /// either accepted (with an applicable patch) or refused naming an annotation.
    #[test]
    fn arbitrary_annotation_values(
        job_annotations in prop::collection::btree_map(
            prop::sample::select(known_keys()).prop_map(str::to_owned), annotation_value(), 0..9),
        template_annotations in prop::collection::btree_map(
            prop::sample::select(known_keys()).prop_map(str::to_owned), annotation_value(), 0..9),
    ) {
        let object = checks::annotated_job(&job_annotations, &template_annotations);
        checks::injected_or_refused_clearly(&object).map_err(TestCaseError::fail)?;
        let Ok(job) = serde_json::from_value::<Job>(object) else {
            return Err(TestCaseError::fail("fixture is not a Job"));
        };
        let parsed = annotations::parse(Some(&job_annotations_of(&job)), None);
        if let Err(e) = parsed {
            prop_assert!(e.to_string().contains(PREFIX), "{e}");
        }
    }
}

fn job_annotations_of(job: &Job) -> BTreeMap<String, String> {
    job.metadata.annotations.clone().unwrap_or_default()
}

/// Guards against vacuous properties: the Job strategy reaches every admission outcome, with
/// injections common enough that the patch properties above are really exercised.
#[test]
fn job_strategy_reaches_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = job(known_keys());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..400 {
        let object = strategy.new_tree(&mut runner).expect("value").current();
        let body = serde_json::to_vec(&admission_review(&object, Some("adapters"), "CREATE"))
            .expect("serialize");
        let answer = review(&body, &InjectConfig::default());
        *counts.entry(answer.outcome.as_str()).or_default() += 1;
    }
    eprintln!("outcomes over 400 generated Jobs: {counts:?}");
    assert!(
        counts.get("injected").copied().unwrap_or(0) >= 60,
        "{counts:?}"
    );
    assert!(
        counts.get("skipped").copied().unwrap_or(0) >= 10,
        "{counts:?}"
    );
    assert!(
        counts.get("denied").copied().unwrap_or(0) >= 10,
        "{counts:?}"
    );
    assert_eq!(counts.get("invalid"), None, "{counts:?}");
}

/// Duplicates of `key` among the items of the array at `pointer` (JSON as sent).
fn duplicates(v: &Value, pointer: &str, key: &str) -> usize {
    let items = v
        .pointer(pointer)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    items
        .iter()
        .filter_map(|i| i.get(key).map(Value::to_string))
        .filter(|k| !seen.insert(k.clone()))
        .count()
}

/// Names and mount paths the apiserver requires to be unique, counted over the pod template.
fn uniqueness_violations(job: &Value) -> usize {
    let spec = "/spec/template/spec";
    let mut n = duplicates(job, &format!("{spec}/volumes"), "name");
    let all_containers: Vec<Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| {
            job.pointer(&format!("{spec}/{k}"))
                .and_then(Value::as_array)
        })
        .flatten()
        .cloned()
        .collect();
    n += duplicates(&json!({ "c": all_containers }), "/c", "name");
    for c in &all_containers {
        n += duplicates(c, "/volumeMounts", "mountPath");
        n += duplicates(c, "/env", "name");
    }
    n
}

proptest! {
    #![proptest_config(config())]

    /// The apiserver refuses a pod template with duplicate volume names, container names,
    /// env names or mount paths in one container: injection must never add such a duplicate
    /// (the Job would be refused with an error that does not name our annotation).
    #[test]
    fn patch_adds_no_duplicate_names_or_mount_paths(object in job(known_keys()), cfg in inject_config()) {
        let Ok(job) = serde_json::from_value::<Job>(object.clone()) else {
            return Ok(());
        };
        if let Ok(Injection::Injected { patch, .. }) = inject(&job, Some("adapters"), &cfg) {
            let (patched, _) = apply_to(&object, &patch)?;
            prop_assert_eq!(
                uniqueness_violations(&patched),
                uniqueness_violations(&object),
                "injection added a duplicate\nbefore: {}\nafter: {}",
                object,
                patched
            );
        }
    }
}

/// A `results-path` inside the service-account token directory on a pod without token
/// automount used to give the reporter two mounts at the same path; the apiserver then refused
/// the Job with a message that does not name the annotation.
#[test]
fn results_path_in_the_token_directory_is_refused_at_admission() {
    let object = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "adapters", "annotations": {
            "status-reporter.hyperfleet.io/inject": "true",
            "status-reporter.hyperfleet.io/results-path": "/var/run/secrets/kubernetes.io/serviceaccount/result.json",
        }},
        "spec": {"template": {"spec": {
            "automountServiceAccountToken": false,
            "restartPolicy": "Never",
            "containers": [{"name": "adapter", "image": "a"}]
        }}}
    });
    let job: Job = serde_json::from_value(object.clone()).expect("Job");
    match inject(&job, None, &InjectConfig::default()) {
        Ok(Injection::Injected { patch, .. }) => {
            let mut patched = object.clone();
            json_patch::patch(&mut patched, &patch).expect("patch applies");
            assert_eq!(
                uniqueness_violations(&patched),
                0,
                "duplicate mountPath in the injected pod: {patched}"
            );
        }
        Ok(other) => panic!("not injected: {other:?}"),
        Err(e) => assert!(e.to_string().contains("results-path"), "{e}"),
    }
}

/// Issue 13, item 7: a user volume under the injector's volume name that is not an emptyDir
/// (the probe used a `hostPath: /`) is refused, never mounted into the reporter; an emptyDir
/// of that name is reused.
#[test]
fn results_volume_name_taken_by_a_non_emptydir_volume_is_refused() {
    let job = |volume: Value| {
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j", "namespace": "adapters", "annotations": {
                "status-reporter.hyperfleet.io/inject": "true",
            }},
            "spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "adapter", "image": "a"}],
                "volumes": [volume],
            }}}
        })
    };
    let host_path = job(json!({"name": "status-reporter-results", "hostPath": {"path": "/"}}));
    let typed: Job = serde_json::from_value(host_path).expect("Job");
    let err = inject(&typed, None, &InjectConfig::default())
        .expect_err("a hostPath under the results volume's name is refused")
        .to_string();
    assert!(
        err.contains("\"status-reporter-results\" is not an emptyDir") && err.contains("hostPath"),
        "{err}"
    );
    let empty_dir = job(json!({"name": "status-reporter-results", "emptyDir": {}}));
    let typed: Job = serde_json::from_value(empty_dir.clone()).expect("Job");
    match inject(&typed, None, &InjectConfig::default()) {
        Ok(Injection::Injected { patch, .. }) => {
            let (patched, _) = checks::apply_to(&empty_dir, &patch).expect("applies");
            assert_eq!(uniqueness_violations(&patched), 0, "{patched}");
        }
        other => panic!("an emptyDir of that name is reused: {other:?}"),
    }
}

#[test]
fn fuzz_regressions_admission_body() {
    for (name, bytes) in regressions::inputs("admission_body") {
        well_formed(review(&bytes, &InjectConfig::default()).json().unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Each regression Job must still be injected (in both sidecar modes): a file that stops
/// exercising the patch (no longer a Job, or skipped, or refused) fails instead of passing
/// silently.
#[test]
fn fuzz_regressions_inject_job() {
    for (name, bytes) in regressions::inputs("inject_job") {
        let object: Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        for cfg in [
            InjectConfig::default(),
            InjectConfig {
                sidecar_mode: contract::SidecarMode::Classic,
                ..InjectConfig::default()
            },
        ] {
            let exercised =
                checks::inject_twice(&object, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                exercised,
                Exercised::Injected,
                "{name} no longer exercises the patch"
            );
        }
    }
}

/// Issue 11: the replay above must fail on an input that exercises nothing.
#[test]
fn inject_twice_tells_what_an_input_exercised() {
    let cfg = InjectConfig::default();
    let not_a_job = json!({"apiVersion": "batch/v1", "kind": "Job", "spec": "nope"});
    assert!(matches!(
        checks::inject_twice(&not_a_job, &cfg),
        Ok(Exercised::NotAJob(_))
    ));
    let not_opted_in = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a"}]}}}});
    assert!(matches!(
        checks::inject_twice(&not_opted_in, &cfg),
        Ok(Exercised::NotInjected(_))
    ));
}

#[test]
fn fuzz_regressions_annotations() {
    for (name, bytes) in regressions::inputs("annotations") {
        checks::annotation_lines(&String::from_utf8_lossy(&bytes))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
