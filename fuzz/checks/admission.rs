//! What must hold for the injector's inputs: checked by the `inject_job` and `annotations`
//! fuzz targets and by `webhook/tests/prop_admission.rs` (which includes this file), so the two
//! cannot drift apart.
#![allow(dead_code)]

use std::collections::BTreeMap;

use contract::annotations::{PREFIX, known};
use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::{Injection, SkipReason, inject};

/// What an input exercised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exercised {
    /// It does not read as a batch/v1 Job.
    NotAJob(String),
    /// Not injected (skipped or refused), with why.
    NotInjected(String),
    /// Injected: the patch applied, and injecting the result again was a no-op.
    Injected,
}

/// Applies `patch` to `object` as received and reads the result as a Job.
pub fn apply_to(object: &Value, patch: &json_patch::Patch) -> Result<(Value, Job), String> {
    let mut patched = object.clone();
    json_patch::patch(&mut patched, patch).map_err(|e| {
        format!(
            "patch does not apply: {e}\nobject: {object}\npatch: {}",
            serde_json::to_string(patch).unwrap_or_default()
        )
    })?;
    let job: Job = serde_json::from_value(patched.clone())
        .map_err(|e| format!("patched object is not a Job: {e}\n{patched}"))?;
    Ok((patched, job))
}

/// When `object` reads as a Job and gets injected: the patch applies, yields a Job, and a
/// second injection is a no-op. Says what the input exercised, so a replayed regression input
/// that stops exercising the patch can be told apart.
pub fn inject_twice(object: &Value, cfg: &InjectConfig) -> Result<Exercised, String> {
    let job = match serde_json::from_value::<Job>(object.clone()) {
        Ok(job) => job,
        Err(e) => return Ok(Exercised::NotAJob(e.to_string())),
    };
    match inject(&job, Some("adapters"), cfg) {
        Ok(Injection::Injected { patch, .. }) => {
            let (patched, again) = apply_to(object, &patch)?;
            match inject(&again, Some("adapters"), cfg) {
                Ok(Injection::Skipped(SkipReason::AlreadyInjected)) => Ok(Exercised::Injected),
                other => Err(format!("second inject: {other:?}\n{patched}")),
            }
        }
        Ok(Injection::Skipped(reason)) => Ok(Exercised::NotInjected(reason.to_string())),
        Err(e) => Ok(Exercised::NotInjected(e.to_string())),
    }
}

/// One value per line for each known annotation, on the Job first and then on the pod
/// template (an empty line leaves it unset): never a panic; either injected with a patch that
/// applies, or refused with a message naming the annotation and what is accepted.
pub fn annotation_lines(text: &str) -> Result<(), String> {
    let keys = known();
    let mut on_job = BTreeMap::new();
    let mut on_template = BTreeMap::new();
    for (i, value) in text.split('\n').enumerate().take(2 * keys.len()) {
        if value.is_empty() {
            continue;
        }
        let map = if i < keys.len() {
            &mut on_job
        } else {
            &mut on_template
        };
        map.insert(keys[i % keys.len()].to_owned(), value.to_owned());
    }
    injected_or_refused_clearly(&annotated_job(&on_job, &on_template))
}

/// An otherwise fine Job with these annotations on its metadata and on its pod template.
pub fn annotated_job(
    on_job: &BTreeMap<String, String>,
    on_template: &BTreeMap<String, String>,
) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "fuzz", "annotations": on_job},
        "spec": {"template": {
            "metadata": {"annotations": on_template},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "adapter", "image": "a"}]}
        }}
    })
}

/// Either injected with a patch that applies, or skipped, or refused with a message naming
/// the annotation and what is accepted.
pub fn injected_or_refused_clearly(object: &Value) -> Result<(), String> {
    let job: Job =
        serde_json::from_value(object.clone()).map_err(|e| format!("fixture is not a Job: {e}"))?;
    match inject(&job, None, &InjectConfig::default()) {
        Ok(Injection::Injected { patch, .. }) => apply_to(object, &patch).map(|_| ()),
        Ok(Injection::Skipped(_)) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            if !msg.contains(PREFIX) {
                return Err(format!("refusal does not name the annotation: {msg}"));
            }
            if !msg.contains("accepted") {
                return Err(format!("refusal does not say what is accepted: {msg}"));
            }
            Ok(())
        }
    }
}
