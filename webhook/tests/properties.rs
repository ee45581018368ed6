//! Properties of the pure inject step over generated Jobs: the patch always applies, the
//! result is a valid Job with exactly one reporter wired to the adapter, nothing the user
//! set changes, and a second pass is a no-op.

use k8s_openapi::api::batch::v1::Job;
use proptest::prelude::*;
use serde_json::{Value, json};
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::{Injection, REPORTER_CONTAINER, SkipReason, apply, inject};

#[derive(Debug, Clone)]
struct Shape {
    containers: usize,
    adapter: Option<usize>,
    init_containers: usize,
    with_env: bool,
    with_results_env: bool,
    with_volumes: bool,
    mounts_results_dir: bool,
    automount_off: bool,
    template_metadata: u8, // 0 none, 1 metadata without annotations, 2 with annotations
    on_template: bool,
    classic: bool,
}

fn shapes() -> impl Strategy<Value = Shape> {
    (
        1usize..4,
        proptest::option::of(0usize..4),
        0usize..3,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u8..3,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                containers,
                adapter,
                init_containers,
                with_env,
                with_results_env,
                with_volumes,
                mounts_results_dir,
                automount_off,
                template_metadata,
                on_template,
                classic,
            )| Shape {
                containers,
                adapter: adapter.map(|a| a % containers),
                init_containers,
                with_env,
                with_results_env,
                with_volumes,
                mounts_results_dir,
                automount_off,
                template_metadata,
                on_template,
                classic,
            },
        )
}

fn job(s: &Shape) -> Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert("status-reporter.hyperfleet.io/inject".into(), json!("true"));
    if let Some(a) = s.adapter {
        annotations.insert(
            "status-reporter.hyperfleet.io/adapter-container".into(),
            json!(format!("c{a}")),
        );
    }
    if s.classic {
        annotations.insert(
            "status-reporter.hyperfleet.io/sidecar-mode".into(),
            json!("classic"),
        );
    }
    let containers: Vec<Value> = (0..s.containers)
        .map(|i| {
            let mut c = json!({"name": format!("c{i}"), "image": format!("example.com/c{i}:1")});
            let mut env = Vec::new();
            if s.with_env {
                env.push(json!({"name": "A", "value": "1"}));
            }
            if s.with_results_env {
                env.push(json!({"name": "RESULTS_PATH", "value": "/data/out/r.json"}));
            }
            if !env.is_empty() {
                c["env"] = Value::Array(env);
            }
            if s.mounts_results_dir {
                c["volumeMounts"] = json!([{"name": "data", "mountPath": if s.with_results_env { "/data/out" } else { "/results" }}]);
            }
            c
        })
        .collect();
    let mut pod = json!({"restartPolicy": "Never", "containers": containers});
    if s.init_containers > 0 {
        pod["initContainers"] = (0..s.init_containers)
            .map(|i| json!({"name": format!("init{i}"), "image": "example.com/init:1"}))
            .collect();
    }
    if s.with_volumes || s.mounts_results_dir {
        pod["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
    }
    if s.automount_off {
        pod["automountServiceAccountToken"] = json!(false);
    }
    let mut template = json!({"spec": pod});
    let annotations = Value::Object(annotations);
    match (s.template_metadata, s.on_template) {
        (_, true) => template["metadata"] = json!({"annotations": annotations.clone()}),
        (1, false) => template["metadata"] = json!({"labels": {"x": "y"}}),
        (2, false) => template["metadata"] = json!({"annotations": {"other": "z"}}),
        _ => {}
    }
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "ns"},
        "spec": {"template": template},
    });
    if !s.on_template {
        job["metadata"]["annotations"] = annotations;
    }
    job
}

proptest! {
    #[test]
    fn inject_applies_keeps_user_settings_and_is_idempotent(shape in shapes()) {
        let config = InjectConfig::default();
        let original = job(&shape);
        let parsed: Job = serde_json::from_value(original.clone()).unwrap();
        let injection = inject(&parsed, None, &config).unwrap();
        let Injection::Injected { patch, .. } = injection else {
            panic!("not injected: {injection:?}");
        };
        let mut patched = original.clone();
        apply(&mut patched, &patch).unwrap();
        let result: Job = serde_json::from_value(patched.clone()).unwrap();
        prop_assert_eq!(&serde_json::to_value(&result).unwrap(), &patched);

        let pod = result.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let reporters: Vec<_> = pod.containers.iter().chain(pod.init_containers.iter().flatten())
            .filter(|c| c.name == REPORTER_CONTAINER).collect();
        prop_assert_eq!(reporters.len(), 1);
        if shape.classic {
            prop_assert_eq!(&pod.containers.last().unwrap().name, REPORTER_CONTAINER);
        } else {
            prop_assert_eq!(&pod.init_containers.as_ref().unwrap()[0].name, REPORTER_CONTAINER);
        }
        let env = reporters[0].env.as_ref().unwrap();
        let value = |n: &str| env.iter().find(|e| e.name == n).and_then(|e| e.value.clone());
        let adapter = shape.adapter.unwrap_or(0);
        prop_assert_eq!(value("ADAPTER_CONTAINER_NAME"), Some(format!("c{adapter}")));
        let expected_path = if shape.with_results_env { "/data/out/r.json" } else { "/results/adapter-result.json" };
        prop_assert_eq!(value("RESULTS_PATH"), Some(expected_path.to_owned()));

        // The adapter writes where the reporter reads, and no user container lost anything.
        let a = &pod.containers[adapter];
        let dir = expected_path.rsplit_once('/').unwrap().0;
        prop_assert!(a.volume_mounts.iter().flatten().any(|m| m.mount_path == dir));
        for (i, before) in original["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().enumerate() {
            let after = &patched["spec"]["template"]["spec"]["containers"][i];
            for (k, v) in before.as_object().unwrap() {
                if k == "env" || k == "volumeMounts" {
                    let after_list = after[k].as_array().unwrap();
                    for item in v.as_array().unwrap() {
                        prop_assert!(after_list.contains(item), "{k} lost {item}");
                    }
                } else {
                    prop_assert_eq!(&after[k], v);
                }
            }
        }
        // Volume names stay unique (the apiserver would refuse duplicates).
        let mut names: Vec<_> = pod.volumes.iter().flatten().map(|v| v.name.clone()).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        prop_assert_eq!(names.len(), count);

        prop_assert_eq!(inject(&result, None, &config).unwrap(), Injection::Skipped(SkipReason::AlreadyInjected));
    }
}
