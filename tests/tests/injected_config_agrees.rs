//! The webhook and the reporter validate the same settings twice: the webhook at admission
//! (annotations), the reporter at start (env). These properties hold the two together, so an
//! admitted Job never gets a reporter that refuses to start (exit 2), and the two crates'
//! copies of the contract's constants cannot drift apart.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use proptest::prelude::*;
use serde_json::{Value, json};
use status_reporter::config::{Config, RawConfig};
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::{Injection, apply, inject};

const PREFIX: &str = "status-reporter.hyperfleet.io/";

#[test]
fn both_crates_share_the_contract_constants() {
    use status_reporter::config as reporter;
    use status_reporter_webhook::annotations as webhook;
    assert_eq!(
        reporter::RESERVED_CONDITION_TYPES,
        webhook::RESERVED_CONDITION_TYPES
    );
    assert_eq!(
        reporter::DEFAULT_RESULTS_PATH,
        webhook::reporter_defaults::RESULTS_PATH
    );
    assert_eq!(
        reporter::DEFAULT_MAX_WAIT_TIME_SECONDS,
        webhook::reporter_defaults::MAX_WAIT_SECONDS as i64
    );
    assert_eq!(
        reporter::DEFAULT_POLL_INTERVAL_SECONDS,
        webhook::reporter_defaults::POLL_INTERVAL_SECONDS as i64
    );
}

/// The reporter's env as the kubelet would resolve it for the injected container.
fn reporter_env(job: &Value) -> BTreeMap<String, String> {
    let spec = &job["spec"]["template"]["spec"];
    let reporter = ["initContainers", "containers"]
        .iter()
        .filter_map(|list| spec[list].as_array())
        .flatten()
        .find(|c| c["name"] == "status-reporter")
        .expect("an injected Job has a status-reporter container");
    let mut env = BTreeMap::new();
    for var in reporter["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap().to_owned();
        let value = match (&var["value"], &var["valueFrom"]["fieldRef"]["fieldPath"]) {
            (Value::String(v), _) => v.clone(),
            (_, Value::String(path)) => format!("from-{path}"),
            other => panic!("env {name} is neither a value nor a fieldRef: {other:?}"),
        };
        env.insert(name, value);
    }
    env
}

fn raw_config(env: &BTreeMap<String, String>) -> RawConfig {
    let get = |k: &str| env.get(k).cloned();
    RawConfig {
        job_name: get("JOB_NAME"),
        job_namespace: get("JOB_NAMESPACE"),
        pod_name: get("POD_NAME"),
        results_path: get("RESULTS_PATH"),
        poll_interval_seconds: get("POLL_INTERVAL_SECONDS"),
        max_wait_time_seconds: get("MAX_WAIT_TIME_SECONDS"),
        condition_type: get("CONDITION_TYPE"),
        log_level: get("LOG_LEVEL"),
        log_format: get("LOG_FORMAT"),
        adapter_container_name: get("ADAPTER_CONTAINER_NAME"),
        sidecar_mode: get("SIDECAR_MODE"),
    }
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
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let edges: Vec<&'static str> = match key {
        "results-path" => vec![
            "/results/adapter-result.json",
            "/r/x.json",
            "relative/x.json",
            "/results/",
            "/",
            "/a/../b.json",
            "/var/run/secrets/kubernetes.io/serviceaccount/r.json",
            " /results/padded.json ",
        ],
        "max-wait-seconds" | "poll-interval-seconds" => {
            vec![
                "1",
                "2",
                "3",
                "300",
                "0",
                "-1",
                "abc",
                " 5 ",
                "99999999999999999999",
            ]
        }
        "condition-type" => vec!["Available", "Complete", "Failed", "Ready", " ", "a b"],
        "log-level" => vec!["info", "DEBUG", "warn", "verbose", ""],
        "sidecar-mode" => vec!["native", "classic", "Native", "sidecar"],
        _ => vec![],
    };
    prop_oneof![
        3 => proptest::sample::select(edges).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
    .boxed()
}

fn annotations() -> impl Strategy<Value = BTreeMap<String, String>> {
    const KEYS: [&str; 6] = [
        "results-path",
        "max-wait-seconds",
        "poll-interval-seconds",
        "condition-type",
        "log-level",
        "sidecar-mode",
    ];
    let per_key: Vec<_> = KEYS
        .into_iter()
        .map(|k| proptest::option::of(value_for(k)).prop_map(move |v| (k, v)))
        .collect();
    per_key.prop_map(|pairs| {
        let mut map = BTreeMap::from([(format!("{PREFIX}inject"), "true".to_owned())]);
        for (k, v) in pairs {
            if let Some(v) = v {
                map.insert(format!("{PREFIX}{k}"), v);
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
                let started = Config::from_raw(&raw_config(&env));
                prop_assert!(
                    started.is_ok(),
                    "admitted annotations {annotations:?} gave env {env:?}, which the reporter refuses: {:?}",
                    started.err()
                );
            }
        }
    }
}

/// Guards the property above against vacuity: annotated overrides do reach the reporter's env.
#[test]
fn annotated_overrides_reach_the_reporter_env() {
    let annotations = BTreeMap::from([
        (format!("{PREFIX}inject"), "true".to_owned()),
        (format!("{PREFIX}max-wait-seconds"), " 30 ".to_owned()),
        (format!("{PREFIX}poll-interval-seconds"), "5".to_owned()),
        (format!("{PREFIX}condition-type"), "DNSReady".to_owned()),
    ]);
    let mut job = job_with(&annotations);
    let typed: Job = serde_json::from_value(job.clone()).unwrap();
    let injection = inject(&typed, None, &InjectConfig::default()).unwrap();
    apply(&mut job, &injection.patch()).unwrap();
    let config = Config::from_raw(&raw_config(&reporter_env(&job))).unwrap();
    assert_eq!(config.max_wait, std::time::Duration::from_secs(30));
    assert_eq!(config.poll_interval, std::time::Duration::from_secs(5));
    assert_eq!(config.condition_type, "DNSReady");
}
