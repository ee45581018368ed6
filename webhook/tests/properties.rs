//! Properties of the pure inject step over generated Jobs (the generator shared with
//! `prop_admission.rs`): when a Job is injected, exactly one reporter is added where its sidecar
//! mode puts it, wired to the adapter and to the result file the adapter writes, and nothing a
//! user container had is lost. (That every patch applies, yields a Job and is idempotent is
//! `prop_admission.rs`'s.)

use contract::{REPORTER_CONTAINER, Setting, SidecarMode};
use k8s_openapi::api::batch::v1::Job;
use proptest::prelude::*;
use serde_json::Value;
use status_reporter_webhook::annotations;
use status_reporter_webhook::inject::{Injection, apply, inject};

mod support;

proptest! {
    #[test]
    fn injected_reporter_is_wired_to_the_adapter_and_user_settings_survive(
        original in support::job(support::known_keys()),
        config in support::inject_config(),
    ) {
        let Ok(parsed) = serde_json::from_value::<Job>(original.clone()) else {
            return Ok(());
        };
        let Ok(Injection::Injected { patch, .. }) = inject(&parsed, Some("adapters"), &config) else {
            return Ok(());
        };
        let mut patched = original.clone();
        apply(&mut patched, &patch).unwrap();
        let result: Job = serde_json::from_value(patched.clone()).unwrap();
        let template = &parsed.spec.as_ref().unwrap().template;
        let overrides = annotations::parse(
            parsed.metadata.annotations.as_ref(),
            template.metadata.as_ref().and_then(|m| m.annotations.as_ref()),
        )
        .unwrap()
        .overrides;

        let pod = result.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let reporters: Vec<_> = pod.containers.iter().chain(pod.init_containers.iter().flatten())
            .filter(|c| c.name == REPORTER_CONTAINER).collect();
        prop_assert_eq!(reporters.len(), 1);
        match overrides.sidecar_mode.unwrap_or(config.sidecar_mode) {
            SidecarMode::Classic => prop_assert_eq!(&pod.containers.last().unwrap().name, REPORTER_CONTAINER),
            SidecarMode::Native => prop_assert_eq!(&pod.init_containers.as_ref().unwrap()[0].name, REPORTER_CONTAINER),
        }

        // Wired to the adapter: the one annotated, else the first container.
        let before = template.spec.as_ref().unwrap();
        let adapter = overrides.adapter_container.clone().unwrap_or_else(|| before.containers[0].name.clone());
        let env = reporters[0].env.as_ref().unwrap();
        let value = |s: Setting| env.iter().find(|e| e.name == s.env()).and_then(|e| e.value.clone());
        prop_assert_eq!(value(Setting::AdapterContainer), Some(adapter.clone()));

        // ... and to the file the adapter writes: the annotated path, else the adapter's own
        // RESULTS_PATH, else the default; the adapter mounts its directory.
        let adapter_before = before.containers.iter().find(|c| c.name == adapter).unwrap();
        let adapter_env = adapter_before.env.iter().flatten()
            .find(|e| e.name == Setting::ResultsPath.env())
            .and_then(|e| e.value.as_deref().map(|v| v.trim().to_owned()));
        let expected = overrides.results_path.clone()
            .or(adapter_env)
            .unwrap_or_else(|| Setting::ResultsPath.default_value().unwrap().to_owned());
        prop_assert_eq!(value(Setting::ResultsPath), Some(expected.clone()));
        let dir = expected.rsplit_once('/').unwrap().0;
        let adapter_after = pod.containers.iter().find(|c| c.name == adapter).unwrap();
        prop_assert!(adapter_after.volume_mounts.iter().flatten().any(|m| m.mount_path.trim_end_matches('/') == dir));

        // No user container lost anything: env and mounts only grow, the rest is as it was.
        let containers_before = original["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        for (i, before) in containers_before.iter().enumerate() {
            let after = &patched["spec"]["template"]["spec"]["containers"][i];
            for (k, v) in before.as_object().unwrap() {
                match (k.as_str(), v) {
                    ("env" | "volumeMounts", Value::Array(items)) => {
                        let after_list = after[k].as_array().unwrap();
                        for item in items {
                            prop_assert!(after_list.contains(item), "{k} lost {item}");
                        }
                    }
                    // A null list may be replaced by the list the injector adds.
                    ("env" | "volumeMounts", Value::Null) => {}
                    _ => prop_assert_eq!(&after[k], v),
                }
            }
        }
    }
}
