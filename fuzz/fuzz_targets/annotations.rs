//! Arbitrary values for the known annotations (one per input line, on the Job and on the pod
//! template): never a panic; either injected with a patch that applies, or refused with a
//! message naming the annotation and what is accepted.
#![no_main]

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use status_reporter_webhook::annotations::{KNOWN, PREFIX};
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::{Injection, inject};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut on_job = BTreeMap::new();
    let mut on_template = BTreeMap::new();
    for (i, value) in text.split('\n').enumerate().take(2 * KNOWN.len()) {
        // An empty line leaves that annotation unset.
        if value.is_empty() {
            continue;
        }
        let map = if i < KNOWN.len() {
            &mut on_job
        } else {
            &mut on_template
        };
        map.insert(KNOWN[i % KNOWN.len()].to_owned(), value.to_owned());
    }
    let object = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "fuzz", "annotations": on_job},
        "spec": {"template": {
            "metadata": {"annotations": on_template},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "adapter", "image": "a"}]}
        }}
    });
    let job: Job = serde_json::from_value(object.clone()).expect("fixture is a Job");
    match inject(&job, None, &InjectConfig::default()) {
        Ok(Injection::Injected { patch, .. }) => {
            let mut patched = object.clone();
            json_patch::patch(&mut patched, &patch).expect("patch applies");
            serde_json::from_value::<Job>(patched).expect("patched object is a Job");
        }
        Ok(Injection::Skipped(_)) => {}
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(PREFIX),
                "refusal does not name the annotation: {msg}"
            );
            assert!(
                msg.contains("accepted"),
                "refusal does not say what is accepted: {msg}"
            );
        }
    }
});
