//! The webhook's two ways through a review give the same answer, byte for byte: the borrowed
//! one-pass path every apiserver review takes (`review_as`) and the path through kube's types
//! (`review_typed`, which the first falls back to, and which writes the patch through
//! `json_patch::Patch` and `serde_json::Value` as the webhook always has). Over every captured
//! review and generated Jobs of every shape, in both sidecar modes and both opt-ins.
#![forbid(unsafe_code)]

use proptest::prelude::*;
use serde_json::{Value, json};
use status_reporter_webhook::admission::{Reviewed, review_as, review_typed};
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::OptIn;

mod support;

use support::{inject_config, job, known_keys};

fn same(body: &[u8], config: &InjectConfig, opt_in: OptIn) -> Result<(), String> {
    let fast = review_as(body, config, opt_in);
    let typed = review_typed(body, config, opt_in);
    let show = |r: &Reviewed| {
        format!(
            "{} {:?} {:?}\n    {}",
            r.outcome.as_str(),
            r.uid,
            r.detail,
            String::from_utf8_lossy(&r.to_json())
        )
    };
    if fast.to_json() == typed.to_json()
        && fast.outcome == typed.outcome
        && fast.uid == typed.uid
        && fast.detail == typed.detail
    {
        Ok(())
    } else {
        Err(format!(
            "the two paths differ for {}\n  review_as:    {}\n  review_typed: {}",
            String::from_utf8_lossy(body),
            show(&fast),
            show(&typed)
        ))
    }
}

#[test]
fn every_captured_review_gets_the_same_bytes_both_ways() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/admission");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("tests/data/admission") {
        let body = std::fs::read(entry.expect("entry").path()).expect("read");
        for opt_in in [OptIn::Annotation, OptIn::Namespace] {
            same(&body, &InjectConfig::default(), opt_in).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 20, "{n}");
}

fn admission_review(object: &Value, namespace: Option<&str>, operation: &str) -> Vec<u8> {
    let mut request = json!({
        "uid": "3f1b2c4d-0000-4000-8000-000000000001",
        "kind": {"group": "batch", "version": "v1", "kind": "Job"},
        "resource": {"group": "batch", "version": "v1", "resource": "jobs"},
        "operation": operation,
        "userInfo": {"username": "prop", "groups": ["system:authenticated"]},
        "object": object,
        "oldObject": null,
        "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
    });
    if let Some(ns) = namespace {
        request["namespace"] = json!(ns);
    }
    serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}),
    )
    .unwrap_or_default()
}

/// A generated Job in any shape: `completions`, `parallelism` and `completionMode` each
/// absent, null or set (single-pod, parallel NonIndexed, work queue, Indexed), so the
/// multi-pod warning is read the same both ways.
fn shaped_job() -> impl Strategy<Value = Value> {
    let count = || {
        prop_oneof![
            2 => Just(None),
            1 => Just(Some(Value::Null)),
            3 => (0i32..5).prop_map(|n| Some(json!(n))),
        ]
    };
    let mode = prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        2 => prop::sample::select(vec!["Indexed", "NonIndexed"]).prop_map(|m| Some(json!(m))),
    ];
    (job(known_keys()), count(), count(), mode).prop_map(|(mut job, c, p, m)| {
        for (key, value) in [
            ("completions", c),
            ("parallelism", p),
            ("completionMode", m),
        ] {
            if let Some(value) = value {
                job["spec"][key] = value;
            }
        }
        job
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any plausible Job, in any namespace, any operation, any configuration and opt-in.
    #[test]
    fn generated_reviews_get_the_same_bytes_both_ways(
        object in shaped_job(),
        ns in prop::option::of(prop::sample::select(vec!["adapters", "kube-system"])),
        op in prop::sample::select(vec!["CREATE", "CREATE", "CREATE", "UPDATE"]),
        cfg in inject_config(),
        opt_in in prop::sample::select(vec![OptIn::Annotation, OptIn::Namespace]),
    ) {
        let body = admission_review(&object, ns, op);
        same(&body, &cfg, opt_in).map_err(TestCaseError::fail)?;
    }
}
