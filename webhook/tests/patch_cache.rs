//! The patch cache never answers a Job with another shape's patch. Each pair of Jobs below
//! differs in exactly one input of the patch (one field of `inject::Shape`), and the second
//! is answered right after the first, so a key that left that input out would hand it the
//! first one's cached patch. Both answers are held to the path that caches nothing
//! (`review_typed`), and (in the debug builds tests run) the cache also checks each hit itself.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{Value, json};
use status_reporter_webhook::admission::{Outcome, review_as, review_typed};
use status_reporter_webhook::config::{InjectConfig, PullPolicy, Resources};
use status_reporter_webhook::inject::OptIn;

const CREATE_JOB: &str = include_str!("../../tests/data/admission/create-job.json");
const PREFIX: &str = contract::annotations::PREFIX;

/// Changes one input of the patch, in the review or in the configuration.
type Change = fn(&mut Value, &mut InjectConfig);

fn pod(review: &mut Value) -> &mut Value {
    &mut review["request"]["object"]["spec"]["template"]["spec"]
}

fn adapter(review: &mut Value) -> &mut Value {
    &mut pod(review)["containers"][0]
}

fn annotate(review: &mut Value, key: &str, value: &str) {
    review["request"]["object"]["metadata"]["annotations"][format!("{PREFIX}{key}")] = json!(value);
}

fn nothing(_: &mut Value, _: &mut InjectConfig) {}

/// Per field of `inject::Shape`, named after it: a Job (`before`, applied to
/// `create-job.json`) and a change (`after`, applied on top) that moves that field alone.
const CHANGES: &[(&str, Change, Change)] = &[
    ("reporter_image", nothing, |_, c| {
        c.reporter_image = "registry.example/r:2".into()
    }),
    ("image_pull_policy", nothing, |_, c| {
        c.image_pull_policy = PullPolicy::Always
    }),
    ("resources", nothing, |_, c| {
        let limits = BTreeMap::from([("memory".to_owned(), Quantity("32Mi".into()))]);
        c.resources = Resources::new(ResourceRequirements {
            limits: Some(limits),
            ..ResourceRequirements::default()
        });
    }),
    ("resources (none)", nothing, |_, c| {
        c.resources = Resources::new(ResourceRequirements::default())
    }),
    ("results_volume_size_limit", nothing, |_, c| {
        c.results_volume_size_limit = Quantity("32Mi".into())
    }),
    ("has_volumes", nothing, |r, _| {
        pod(r)["volumes"] = json!([{"name": "scratch", "emptyDir": {}}])
    }),
    ("has_init_containers", nothing, |r, _| {
        pod(r)["initContainers"] = json!([{"name": "init", "image": "busybox"}])
    }),
    (
        "adapter_has_mounts",
        |r, _| pod(r)["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]),
        |r, _| adapter(r)["volumeMounts"] = json!([{"name": "scratch", "mountPath": "/scratch"}]),
    ),
    ("adapter_has_env", nothing, |r, _| {
        adapter(r)["env"] = json!([{"name": "A", "value": "b"}])
    }),
    ("has_template_metadata", nothing, |r, _| {
        if let Some(template) = r["request"]["object"]["spec"]["template"].as_object_mut() {
            template.remove("metadata");
        }
    }),
    ("has_template_annotations", nothing, |r, _| {
        r["request"]["object"]["spec"]["template"]["metadata"]["annotations"] = json!({"a": "b"})
    }),
    (
        "adapter_token",
        |r, _| annotate(r, "adapter-container", "adapter"),
        |r, _| {
            let first = adapter(r).clone();
            let containers = &mut pod(r)["containers"];
            containers[0]["name"] = json!("proxy");
            if let Some(containers) = containers.as_array_mut() {
                containers.push(first);
            }
        },
    ),
    ("adapter_name", nothing, |r, _| {
        adapter(r)["name"] = json!("checker")
    }),
    ("mode", nothing, |r, _| {
        annotate(r, "sidecar-mode", "classic")
    }),
    ("mode (from the configuration)", nothing, |_, c| {
        c.sidecar_mode = contract::SidecarMode::Classic
    }),
    ("results_path", nothing, |r, _| {
        annotate(r, "results-path", "/results/other.json")
    }),
    (
        "results_volume",
        |r, _| {
            pod(r)["volumes"] =
                json!([{"name": "out", "emptyDir": {}}, {"name": "other", "emptyDir": {}}]);
            adapter(r)["volumeMounts"] = json!([{"name": "out", "mountPath": "/results"}]);
        },
        |r, _| adapter(r)["volumeMounts"][0]["name"] = json!("other"),
    ),
    (
        "results_sub_path",
        |r, _| {
            pod(r)["volumes"] = json!([{"name": "out", "emptyDir": {}}]);
            adapter(r)["volumeMounts"] = json!([{"name": "out", "mountPath": "/results"}]);
        },
        |r, _| adapter(r)["volumeMounts"][0]["subPath"] = json!("r"),
    ),
    (
        "add_results_volume",
        |r, _| pod(r)["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]),
        |r, _| {
            let volume = json!({"name": "status-reporter-results", "emptyDir": {}});
            if let Some(volumes) = pod(r)["volumes"].as_array_mut() {
                volumes.push(volume);
            }
        },
    ),
    (
        "add_adapter_mount",
        |r, _| {
            pod(r)["volumes"] = json!([
                {"name": "scratch", "emptyDir": {}},
                {"name": "status-reporter-results", "emptyDir": {}},
            ]);
            adapter(r)["volumeMounts"] = json!([{"name": "scratch", "mountPath": "/scratch"}]);
        },
        |r, _| {
            let mount = json!({"name": "status-reporter-results", "mountPath": "/results"});
            if let Some(mounts) = adapter(r)["volumeMounts"].as_array_mut() {
                mounts.push(mount);
            }
        },
    ),
    (
        "add_adapter_env",
        |r, _| adapter(r)["env"] = json!([{"name": "A", "value": "b"}]),
        |r, _| {
            // The default path, so only whether the injector adds the var changes.
            let var = json!({"name": "RESULTS_PATH", "value": "/results/adapter-result.json"});
            if let Some(env) = adapter(r)["env"].as_array_mut() {
                env.push(var);
            }
        },
    ),
    ("add_token", nothing, |r, _| {
        pod(r)["automountServiceAccountToken"] = json!(false)
    }),
    ("override_env", nothing, |r, _| {
        annotate(r, "condition-type", "DnsReady")
    }),
    (
        "override_env (another value)",
        |r, _| annotate(r, "condition-type", "DnsReady"),
        |r, _| annotate(r, "condition-type", "DnsChecked"),
    ),
    (
        "override_env (two)",
        |r, _| annotate(r, "condition-type", "DnsReady"),
        |r, _| annotate(r, "max-wait-seconds", "60"),
    ),
];

/// The patch of an answer: the bytes between `"patch":"` and the next quote.
fn patch_of(answer: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(answer);
    let start = text.find(r#""patch":""#).expect("a patch") + 9;
    let end = start + text[start..].find('"').expect("the patch's end");
    text.as_bytes()[start..end].to_vec()
}

/// The review's answer, checked against the path that caches nothing.
fn answer(review: &Value, config: &InjectConfig, what: &str) -> Vec<u8> {
    let body = serde_json::to_vec(review).expect("serialize");
    let cached = review_as(&body, config, OptIn::Annotation);
    let typed = review_typed(&body, config, OptIn::Annotation);
    assert_eq!(
        cached.outcome,
        Outcome::Injected,
        "{what}: {}",
        cached.detail
    );
    assert_eq!(
        String::from_utf8_lossy(&cached.to_json()),
        String::from_utf8_lossy(&typed.to_json()),
        "{what}"
    );
    assert_eq!(cached.detail, typed.detail, "{what}");
    cached.to_json().to_vec()
}

#[test]
fn a_patch_is_reused_only_for_its_own_shape() {
    let captured: Value = serde_json::from_str(CREATE_JOB).expect("create-job.json");
    for (field, before, after) in CHANGES {
        let (mut base, mut base_config) = (captured.clone(), InjectConfig::default());
        before(&mut base, &mut base_config);
        let (mut review, mut config) = (base.clone(), base_config.clone());
        after(&mut review, &mut config);
        // The base's patch is cached, and so is the changed Job's after its first answer.
        let base_patch = patch_of(&answer(&base, &base_config, &format!("{field}: before")));
        let first = patch_of(&answer(&review, &config, field));
        assert_ne!(
            first, base_patch,
            "{field}: the change must change the patch"
        );
        let again = patch_of(&answer(&review, &config, field));
        assert_eq!(again, first, "{field}, answered again");
    }
}

#[test]
fn more_shapes_than_the_cache_keeps_are_all_answered_right() {
    let base: Value = serde_json::from_str(CREATE_JOB).expect("create-job.json");
    // Twenty shapes, in turn, three times: entries are replaced, oldest first, all along.
    for round in 0..3 {
        for i in 0..20 {
            let mut review = base.clone();
            annotate(&mut review, "condition-type", &format!("Check{i}"));
            answer(
                &review,
                &InjectConfig::default(),
                &format!("shape {i}, round {round}"),
            );
        }
    }
}
