//! The one generator of Jobs for the webhook's property suites (`prop_admission.rs`,
//! `properties.rs`): plausible Jobs as the apiserver would send them, with the corners JSON
//! Patch cares about, and annotation values at and around every rule's edge.
#![allow(dead_code)]

use std::collections::BTreeMap;

use contract::annotations::{INJECT, PREFIX};
use proptest::prelude::*;
use serde_json::{Value, json};
use status_reporter_webhook::config::InjectConfig;

/// Strings users put in annotations: valid values, near misses, numbers at the edges,
/// whitespace, unicode, control characters.
pub fn annotation_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "true",
            "false",
            "TRUE",
            " true ",
            "yes",
            "1",
            "",
            " ",
            "native",
            "classic",
            "Native",
            "info",
            "DEBUG",
            "warn",
            "verbose",
            "Available",
            "Complete",
            "Failed",
            "Ready",
            "/results/adapter-result.json",
            "/results/",
            "results.json",
            "/r.json",
            "/a/b/c.json",
            "0",
            "-1",
            "2",
            "300",
            "301",
            "18446744073709551615",
            "18446744073709551616",
            "1e3",
            "adapter",
            "main",
            "status-reporter",
            "nope",
            "injected",
        ])
        .prop_map(str::to_owned),
        any::<u64>().prop_map(|n| n.to_string()),
        ".{0,40}",
        "\\PC{0,200}",
    ]
}

pub fn annotation_map(keys: Vec<&'static str>) -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop_oneof![
            // Mostly foreign keys, so enough Jobs get past validation to exercise the patch.
            1 => prop::sample::select(keys).prop_map(str::to_owned),
            1 => "[a-z./-]{1,20}".prop_map(|k| format!("{PREFIX}{k}")),
            3 => "[a-z.]{1,10}/[a-z-]{1,10}",
        ],
        annotation_value(),
        0..4,
    )
}

pub fn known_keys() -> Vec<&'static str> {
    contract::annotations::known()
}

/// `None` = field absent, `Some(Null)` = explicit null; JSON Patch must cope with both.
pub fn optional_list(
    items: impl Strategy<Value = Vec<Value>>,
) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        3 => items.prop_map(|v| Some(Value::Array(v))),
    ]
}

pub fn container_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "adapter",
            "main",
            "helper",
            "status-reporter",
            "sidecar"
        ])
        .prop_map(str::to_owned),
        "[a-z][a-z0-9-]{0,10}",
    ]
}

pub fn env_var() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => ("[A-Z_]{1,10}", ".{0,20}").prop_map(|(n, v)| json!({"name": n, "value": v})),
        2 => prop::sample::select(vec![
            "/results/adapter-result.json",
            "/out/result.json",
            "/data/x/y.json",
            "relative.json",
            "/results/",
        ])
        .prop_map(|v| json!({"name": "RESULTS_PATH", "value": v})),
        1 => Just(json!({"name": "RESULTS_PATH", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})),
        1 => Just(json!({"name": "LOG", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}})),
    ]
}

pub fn volume_mount() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["results", "data", "status-reporter-results", "cfg"]),
        prop::sample::select(vec!["/results", "/results/", "/out", "/data", "/etc/cfg"]),
        prop::option::of("[a-z]{1,6}"),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(name, path, sub, ro)| {
            let mut m = json!({"name": name, "mountPath": path});
            if let Some(s) = sub {
                m["subPath"] = json!(s);
            }
            if let Some(ro) = ro {
                m["readOnly"] = json!(ro);
            }
            m
        })
}

pub fn container() -> impl Strategy<Value = Value> {
    (
        container_name(),
        prop::option::of(".{0,30}"),
        optional_list(prop::collection::vec(env_var(), 0..4)),
        optional_list(prop::collection::vec(volume_mount(), 0..3)),
        prop::option::of(prop::sample::select(vec!["Always", "Never"])),
        prop::option::of(prop::collection::vec(".{0,10}", 0..3)),
    )
        .prop_map(|(name, image, env, mounts, restart, args)| {
            let mut c = json!({"name": name});
            if let Some(i) = image {
                c["image"] = json!(i);
            }
            if let Some(e) = env {
                c["env"] = e;
            }
            if let Some(m) = mounts {
                c["volumeMounts"] = m;
            }
            if let Some(r) = restart {
                c["restartPolicy"] = json!(r);
            }
            if let Some(a) = args {
                c["args"] = json!(a);
            }
            c
        })
}

pub fn volume() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "results",
            "data",
            "cfg",
            "status-reporter-results",
            "status-reporter-token",
        ]),
        prop::sample::select(vec![
            json!({"emptyDir": {}}),
            json!({"emptyDir": {"sizeLimit": "1Mi"}}),
            json!({"configMap": {"name": "x"}}),
            json!({"secret": {"secretName": "s"}}),
        ]),
    )
        .prop_map(|(name, mut source)| {
            source["name"] = json!(name);
            source
        })
}

/// `None` = absent; otherwise a map, possibly empty or null.
pub fn optional_map(
    m: impl Strategy<Value = BTreeMap<String, String>>,
) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        4 => m.prop_map(|m| Some(json!(m))),
    ]
}

/// Where the opt-in annotation goes.
#[derive(Debug, Clone, Copy)]
pub enum OptIn {
    None,
    Job,
    Template,
    Both,
}

pub fn opt_in() -> impl Strategy<Value = OptIn> {
    prop_oneof![
        1 => Just(OptIn::None),
        3 => Just(OptIn::Job),
        3 => Just(OptIn::Template),
        1 => Just(OptIn::Both),
    ]
}

/// Plausible Jobs as the apiserver would send them, with the corners JSON Patch cares about:
/// missing vs null vs empty lists/maps, missing template metadata, existing mounts/env/volumes,
/// a reporter already present, namespaces excluded or not.
pub fn job(annotation_keys: Vec<&'static str>) -> impl Strategy<Value = Value> {
    let meta = (
        prop::option::of(prop::sample::select(vec![
            "default",
            "adapters",
            "kube-system",
        ])),
        any::<bool>(),
        optional_map(annotation_map(annotation_keys.clone())),
        optional_map(prop::collection::btree_map(
            "[a-z]{1,8}",
            "[a-z0-9]{0,8}",
            0..3,
        )),
    );
    let template_meta = prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        4 => (
            optional_map(annotation_map(annotation_keys)),
            optional_map(prop::collection::btree_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..3)),
        )
            .prop_map(|(a, l)| {
                let mut m = json!({});
                if let Some(a) = a {
                    m["annotations"] = a;
                }
                if let Some(l) = l {
                    m["labels"] = l;
                }
                Some(m)
            }),
    ];
    let pod = (
        // No container at all is one denial among many; keep it rare.
        prop_oneof![1 => Just(Vec::new()), 8 => prop::collection::vec(container(), 1..4)],
        optional_list(prop::collection::vec(container(), 0..3)),
        optional_list(prop::collection::vec(volume(), 0..3)),
        prop::option::of(prop::sample::select(vec!["Never", "OnFailure"])),
        prop::option::of(any::<bool>()),
    );
    (
        meta,
        template_meta,
        pod,
        prop::option::of(0i32..10),
        prop::option::of(prop_oneof![
            Just(1i64),
            Just(60),
            Just(100_000),
            any::<i64>()
        ]),
        opt_in(),
        prop::sample::select(vec!["true", "false", " true", "True"]),
    )
        .prop_map(
            |(
                (ns, generate, annotations, labels),
                template_meta,
                (containers, init, volumes, restart, automount),
                backoff,
                deadline,
                opt,
                opt_value,
            )| {
                let mut metadata = json!({});
                if generate {
                    metadata["generateName"] = json!("adapter-");
                } else {
                    metadata["name"] = json!("adapter-job");
                }
                if let Some(ns) = ns {
                    metadata["namespace"] = json!(ns);
                }
                if let Some(a) = annotations {
                    metadata["annotations"] = a;
                }
                if let Some(l) = labels {
                    metadata["labels"] = l;
                }
                let mut pod_spec = json!({"containers": containers});
                if let Some(i) = init {
                    pod_spec["initContainers"] = i;
                }
                if let Some(v) = volumes {
                    pod_spec["volumes"] = v;
                }
                if let Some(r) = restart {
                    pod_spec["restartPolicy"] = json!(r);
                }
                if let Some(a) = automount {
                    pod_spec["automountServiceAccountToken"] = json!(a);
                }
                let mut template = json!({"spec": pod_spec});
                if let Some(m) = template_meta {
                    template["metadata"] = m;
                }
                let mut spec = json!({"template": template});
                if let Some(b) = backoff {
                    spec["backoffLimit"] = json!(b);
                }
                if let Some(d) = deadline {
                    spec["activeDeadlineSeconds"] = json!(d);
                }
                let mut job = json!({
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": metadata,
                    "spec": spec,
                });
                let set = |job: &mut Value, at: &str| {
                    let Some(meta) = job.pointer_mut(at) else {
                        return;
                    };
                    if !meta.is_object() {
                        *meta = json!({});
                    }
                    if !meta.get("annotations").is_some_and(Value::is_object) {
                        meta["annotations"] = json!({});
                    }
                    meta["annotations"][INJECT] = json!(opt_value);
                };
                match opt {
                    OptIn::None => {}
                    OptIn::Job => set(&mut job, "/metadata"),
                    OptIn::Template => {
                        if job.pointer("/spec/template/metadata").is_none() {
                            job["spec"]["template"]["metadata"] = json!({});
                        }
                        set(&mut job, "/spec/template/metadata");
                    }
                    OptIn::Both => {
                        set(&mut job, "/metadata");
                        if job.pointer("/spec/template/metadata").is_none() {
                            job["spec"]["template"]["metadata"] = json!({});
                        }
                        set(&mut job, "/spec/template/metadata");
                    }
                }
                job
            },
        )
}

pub fn inject_config() -> impl Strategy<Value = InjectConfig> {
    any::<bool>().prop_map(|classic| {
        let mut c = InjectConfig::default();
        if classic {
            c.sidecar_mode = contract::SidecarMode::Classic;
        }
        c
    })
}
