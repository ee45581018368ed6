//! The webhook validates the reporter's settings at admission (annotations), the reporter at
//! start (env), both with the `contract` crate's one definition. This property holds the two
//! ends together where they meet: whatever the webhook admits, the reporter it injects starts
//! with (no admitted Job ever gets a reporter that exits 2).

use std::collections::BTreeMap;

use clap::Parser;
use contract::Setting;
use contract::annotations::INJECT;
use k8s_openapi::api::batch::v1::Job;
use proptest::prelude::*;
use serde_json::{Value, json};
use status_reporter::config::{Cli, Config};
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::{Injection, apply, inject};

/// The reporter's env as the kubelet would resolve it for the injected container.
fn reporter_env(job: &Value) -> BTreeMap<String, String> {
    let spec = &job["spec"]["template"]["spec"];
    let reporter = ["initContainers", "containers"]
        .iter()
        .filter_map(|list| spec[list].as_array())
        .flatten()
        .find(|c| c["name"] == contract::REPORTER_CONTAINER)
        .expect("an injected Job has a reporter container");
    let mut env = BTreeMap::new();
    for var in reporter["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap().to_owned();
        let value = match (&var["value"], &var["valueFrom"]["fieldRef"]["fieldPath"]) {
            (Value::String(v), _) => v.clone(),
            // What the kubelet puts there for the Job's pod.
            (_, Value::String(path)) if path == "metadata.namespace" => "default".to_owned(),
            (_, Value::String(_)) => "adapter-x7k2p".to_owned(),
            other => panic!("env {name} is neither a value nor a fieldRef: {other:?}"),
        };
        env.insert(name, value);
    }
    env
}

/// The reporter's configuration from that env, through its real command line: each setting's
/// flag is its env var's name, lower-kebab-cased.
fn reporter_config(env: &BTreeMap<String, String>) -> Result<Config, String> {
    let mut args = vec!["status-reporter".to_owned()];
    for (name, value) in env {
        let setting = Setting::ALL
            .iter()
            .find(|s| s.env() == name)
            .unwrap_or_else(|| {
                panic!("the webhook sets {name}, which is no setting of the reporter")
            });
        args.push(format!(
            "--{}={value}",
            setting.env().to_ascii_lowercase().replace('_', "-")
        ));
    }
    let cli = Cli::try_parse_from(&args).map_err(|e| format!("{args:?}: {e}"))?;
    Config::from_raw(&cli.raw).map_err(|e| e.to_string())
}

fn job_with(annotations: &BTreeMap<String, String>) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "adapter", "namespace": "default", "annotations": annotations},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "adapter", "image": "example.com/adapter:1"}]
        }}}
    })
}

/// Values that are near the rules' edges, valid and invalid, plus arbitrary text.
fn value_for(setting: Setting) -> BoxedStrategy<String> {
    let long_type = "A".repeat(64);
    let edges: Vec<String> = match setting {
        Setting::ResultsPath => vec![
            "/results/adapter-result.json",
            "/r/x.json",
            "relative/x.json",
            "/results/",
            "/",
            "/a/../b.json",
            "/etc/r.json",
            "/run/secrets/x/r.json",
            "/var/run/secrets/kubernetes.io/serviceaccount/r.json",
            " /results/padded.json ",
        ],
        Setting::MaxWait | Setting::PollInterval => vec![
            "1",
            "2",
            "3",
            "300",
            "0",
            "-1",
            "abc",
            " 5 ",
            "31536000",
            "31536001",
            "9223372036854775807",
            "18446744073709551615",
            "99999999999999999999",
        ],
        Setting::ConditionType => vec![
            "Available",
            "Complete",
            "Failed",
            "Ready",
            " ",
            "a b",
            "a/b c",
            "example.com/Ready",
            &long_type,
        ],
        Setting::LogLevel => vec!["info", "DEBUG", "warn", "warning", "verbose", ""],
        Setting::SidecarMode => vec!["native", "classic", "Native", "sidecar"],
        Setting::AdapterContainer => vec!["adapter", " adapter ", "status-reporter", "other", ""],
        _ => vec![],
    }
    .into_iter()
    .map(str::to_owned)
    .collect();
    prop_oneof![
        3 => proptest::sample::select(edges),
        1 => "\\PC{0,12}",
    ]
    .boxed()
}

fn annotations() -> impl Strategy<Value = BTreeMap<String, String>> {
    let per_key: Vec<_> = Setting::ALL
        .iter()
        .filter_map(|s| s.annotation().map(|key| (*s, key)))
        .map(|(s, key)| proptest::option::of(value_for(s)).prop_map(move |v| (key, v)))
        .collect();
    per_key.prop_map(|pairs| {
        let mut map = BTreeMap::from([(INJECT.to_owned(), "true".to_owned())]);
        for (k, v) in pairs {
            if let Some(v) = v {
                map.insert(k.to_owned(), v);
            }
        }
        map
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever the webhook admits, the reporter it injects starts with.
    #[test]
    fn admitted_settings_are_accepted_by_the_reporter(annotations in annotations()) {
        let mut job = job_with(&annotations);
        let typed: Job = serde_json::from_value(job.clone()).unwrap();
        match inject(&typed, None, &InjectConfig::default()) {
            Err(_) => {} // refused at admission: the reporter never sees it
            Ok(Injection::Skipped(reason)) => prop_assert!(false, "opted-in Job skipped: {reason:?}"),
            Ok(injection) => {
                apply(&mut job, &injection.patch()).unwrap();
                let env = reporter_env(&job);
                let started = reporter_config(&env);
                prop_assert!(
                    started.is_ok(),
                    "admitted annotations {annotations:?} gave env {env:?}, which the reporter refuses: {:?}",
                    started.err()
                );
            }
        }
    }
}

/// Guards the property above against vacuity: annotated overrides do reach the reporter's env,
/// and the edges of the new rules are admitted exactly as far as the reporter accepts them.
#[test]
fn annotated_overrides_reach_the_reporter_env() {
    let key = |s: Setting| s.annotation().unwrap().to_owned();
    let annotations = BTreeMap::from([
        (INJECT.to_owned(), "true".to_owned()),
        (key(Setting::MaxWait), " 31536000 ".to_owned()),
        (key(Setting::PollInterval), "5".to_owned()),
        (
            key(Setting::ConditionType),
            "example.com/DNSReady".to_owned(),
        ),
        (key(Setting::LogLevel), "WARNING".to_owned()),
    ]);
    let mut job = job_with(&annotations);
    let typed: Job = serde_json::from_value(job.clone()).unwrap();
    let injection = inject(&typed, None, &InjectConfig::default()).unwrap();
    apply(&mut job, &injection.patch()).unwrap();
    let config = reporter_config(&reporter_env(&job)).unwrap();
    assert_eq!(config.max_wait, std::time::Duration::from_secs(31_536_000));
    assert_eq!(config.poll_interval, std::time::Duration::from_secs(5));
    assert_eq!(config.condition_type, "example.com/DNSReady");
    assert_eq!(config.log_level, contract::LogLevel::Warn);
    assert_eq!(config.adapter_container.as_deref(), Some("adapter"));
}
