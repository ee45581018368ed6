//! Namespace opt-in: a namespace labelled `status-reporter.hyperfleet.io/inject=enabled`
//! sends its Jobs to `/mutate-namespace`, where every Job is injected unless annotated
//! `inject: "false"`; the override annotations still apply, and the injection is the same
//! one the annotation opt-in makes. The webhook configuration's two entries never both
//! call the webhook for one Job (their namespaceSelectors are complementary on the label).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::api::batch::v1::Job;
use serde_json::Value;
use status_reporter_webhook::admission::{Outcome, review_as};
use status_reporter_webhook::annotations::{
    INJECT, NAMESPACE_OPT_IN_ENABLED, NAMESPACE_OPT_IN_LABEL,
};
use status_reporter_webhook::body::{BodyBudget, BodyLimits};
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::{Injection, OptIn, SkipReason, inject_as};
use status_reporter_webhook::metrics::Metrics;
use status_reporter_webhook::offline::inject_manifests_as;
use status_reporter_webhook::server::{AppState, NAMESPACE_PATH, router};
use tower::ServiceExt;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(data(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn job(name: &str) -> Job {
    serde_yaml_ng::from_str(&read(&format!("jobs/{name}.yaml"))).unwrap()
}

fn config() -> InjectConfig {
    InjectConfig {
        reporter_image: "ghcr.io/openshift-hyperfleet/status-reporter:0.1.0".into(),
        ..InjectConfig::default()
    }
}

/// The same Job with the inject annotation removed from the Job and its pod template.
fn without_inject(job: &Job) -> Job {
    let mut job = job.clone();
    if let Some(a) = job.metadata.annotations.as_mut() {
        a.remove(INJECT);
    }
    if let Some(a) = job
        .spec
        .as_mut()
        .and_then(|s| s.template.metadata.as_mut())
        .and_then(|m| m.annotations.as_mut())
    {
        a.remove(INJECT);
    }
    job
}

/// Every opted-in fixture, with its inject annotation taken away, is injected in an opted-in
/// namespace exactly as the annotated Job is by the annotation opt-in: same patch (the
/// override annotations still apply), same warnings.
#[test]
fn namespace_opt_in_injects_what_the_annotation_opt_in_injects() {
    let mut compared = 0;
    for entry in std::fs::read_dir(data("jobs")).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".yaml"))
        else {
            continue;
        };
        let annotated = job(name);
        let Ok(Injection::Injected { patch, warnings }) =
            inject_as(&annotated, None, &config(), OptIn::Annotation)
        else {
            continue;
        };
        let bare = without_inject(&annotated);
        assert_eq!(
            inject_as(&bare, None, &config(), OptIn::Annotation).unwrap(),
            Injection::Skipped(SkipReason::NotOptedIn),
            "{name}: without the annotation the annotation opt-in must skip it"
        );
        assert_eq!(
            inject_as(&bare, None, &config(), OptIn::Namespace).unwrap(),
            Injection::Injected { patch, warnings },
            "{name}: the namespace opt-in must inject it as the annotation does"
        );
        compared += 1;
    }
    assert!(compared >= 10, "only {compared} opted-in fixtures compared");
}

/// What the namespace opt-in leaves alone or refuses, and why.
#[test]
fn namespace_opt_in_still_honours_opt_out_exclusions_reinvocation_and_refusals() {
    let ns = |name: &str| inject_as(&job(name), None, &config(), OptIn::Namespace);
    assert_eq!(
        ns("opted-out").unwrap(),
        Injection::Skipped(SkipReason::OptedOut)
    );
    assert_eq!(
        ns("already-injected").unwrap(),
        Injection::Skipped(SkipReason::AlreadyInjected)
    );
    assert!(matches!(
        ns("excluded-namespace").unwrap(),
        Injection::Skipped(SkipReason::ExcludedNamespace(_))
    ));
    // Unannotated, so skipped by the annotation opt-in whatever its other annotations; in an
    // opted-in namespace it is injected, so its bad log-level is refused.
    let err = ns("not-annotated").unwrap_err().to_string();
    assert!(err.contains("log-level=\"verbose\""), "{err}");
    let err = ns("bad-adapter-container").unwrap_err().to_string();
    assert!(err.contains("one of [adapter, proxy]"), "{err}");

    // The pod template's "false" wins over the Job's "true" in both modes.
    let mut job = job("minimal");
    job.spec.as_mut().unwrap().template.metadata = Some(
        serde_json::from_value(serde_json::json!({"annotations": {INJECT: " false "}})).unwrap(),
    );
    for opt_in in [OptIn::Annotation, OptIn::Namespace] {
        assert_eq!(
            inject_as(&job, None, &config(), opt_in).unwrap(),
            Injection::Skipped(SkipReason::OptedOut),
            "{opt_in:?}"
        );
    }

    // A value other than "true"/"false" is refused with the accepted values in both modes.
    let mut yes = without_inject(&job);
    yes.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(INJECT.into(), "yes".into());
    for opt_in in [OptIn::Annotation, OptIn::Namespace] {
        let err = inject_as(&yes, None, &config(), opt_in)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"true\" or \"false\""), "{opt_in:?}: {err}");
    }
}

/// Issue 23, item 13: in an opted-in namespace, a Job whose own settings make injection
/// impossible is refused (as the guard refuses a Job there that arrives without the
/// reporter), and the refusal says how to run it without the reporter; annotated so, it is
/// left alone. The webhook's own namespace is never injected, whatever else is configured.
#[test]
fn an_opted_in_namespace_refuses_a_job_it_cannot_inject_saying_how_to_opt_it_out() {
    let opt_out =
        r#"to run this one without it, annotate it status-reporter.hyperfleet.io/inject: "false""#;
    let plain = without_inject(&job("minimal"));
    let with = |patch: serde_json::Value| {
        let mut job = serde_json::to_value(&plain).unwrap();
        json_patch::merge(&mut job, &patch);
        job
    };
    for (what, job, cause) in [
        (
            "a relative RESULTS_PATH",
            with(
                serde_json::json!({"spec": {"template": {"spec": {"containers": [{
                "name": "adapter", "image": "a",
                "env": [{"name": "RESULTS_PATH", "value": "out/result.json"}]}]}}}}),
            ),
            "RESULTS_PATH=\"out/result.json\"",
        ),
        (
            "its own volume named like ours",
            with(
                serde_json::json!({"spec": {"template": {"spec": {"volumes": [
                {"name": "status-reporter-results", "hostPath": {"path": "/"}}]}}}}),
            ),
            "found hostPath",
        ),
        (
            "an inject value that is neither true nor false",
            with(serde_json::json!({"metadata": {"annotations": {INJECT: "yes"}}})),
            "\"true\" or \"false\"",
        ),
    ] {
        let err = inject_as(&job, None, &config(), OptIn::Namespace)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(cause) && err.contains(opt_out),
            "{what}: {err}"
        );
        // The annotation opt-in never sees these Jobs but the last, and says nothing of it.
        if let Err(e) = inject_as(&job, None, &config(), OptIn::Annotation) {
            assert!(!e.to_string().contains(opt_out), "{what}: {e}");
        }
        let mut opted_out = job.clone();
        opted_out["metadata"]["annotations"][INJECT] = "false".into();
        assert_eq!(
            inject_as(&opted_out, None, &config(), OptIn::Namespace).unwrap(),
            Injection::Skipped(SkipReason::OptedOut),
            "{what}"
        );
    }

    let own = InjectConfig {
        excluded_namespaces: Vec::new(),
        own_namespace: Some("status-reporter-system".into()),
        ..config()
    };
    let mut ours = serde_json::to_value(job("minimal")).unwrap();
    ours["metadata"]["namespace"] = "status-reporter-system".into();
    for opt_in in [OptIn::Annotation, OptIn::Namespace] {
        assert_eq!(
            inject_as(&ours, None, &own, opt_in).unwrap(),
            Injection::Skipped(SkipReason::ExcludedNamespace(
                "status-reporter-system".into()
            )),
            "{opt_in:?}"
        );
    }
}

/// `admission/create-job.json` without its inject annotation.
fn unannotated_review() -> String {
    let mut review: Value = serde_json::from_str(&read("admission/create-job.json")).unwrap();
    for path in [
        "/request/object/metadata/annotations",
        "/request/object/spec/template/metadata/annotations",
    ] {
        if let Some(map) = review.pointer_mut(path).and_then(Value::as_object_mut) {
            map.remove(INJECT);
        }
    }
    review.to_string()
}

/// The admission review path: the same unannotated Job CREATE is skipped under the
/// annotation opt-in and injected under the namespace opt-in.
#[test]
fn review_as_takes_the_opt_in_as_an_input() {
    let body = unannotated_review();
    let by_annotation = review_as(body.as_bytes(), &config(), OptIn::Annotation);
    assert_eq!(
        by_annotation.outcome,
        Outcome::Skipped,
        "{}",
        by_annotation.detail
    );
    let by_namespace = review_as(body.as_bytes(), &config(), OptIn::Namespace);
    assert_eq!(
        by_namespace.outcome,
        Outcome::Injected,
        "{}",
        by_namespace.detail
    );
    let review: Value = serde_json::from_slice(by_namespace.json().unwrap()).unwrap();
    assert_eq!(review["response"]["allowed"], true);
    assert!(review["response"]["patch"].is_string());
}

async fn post(app: &axum::Router, path: &str, body: String) -> Value {
    let res = app
        .clone()
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// The router: `/mutate-namespace` injects the unannotated Job, `/mutate` does not; an
/// opted-out Job is left alone on both.
#[tokio::test]
async fn the_namespace_path_is_routed_to_the_namespace_opt_in() {
    let limits = BodyLimits {
        per_request: 1 << 20,
        budget: BodyBudget::new(4 << 20),
    };
    let state = Arc::new(AppState::new(config(), Arc::new(Metrics::new()), limits));
    let app = router(state, Duration::from_secs(5));
    let plain = unannotated_review();

    let review = post(&app, NAMESPACE_PATH, plain.clone()).await;
    assert_eq!(review["response"]["allowed"], true);
    assert!(review["response"]["patch"].is_string(), "{review}");
    let review = post(&app, "/mutate", plain.clone()).await;
    assert_eq!(review["response"]["allowed"], true);
    assert!(review["response"].get("patch").is_none(), "{review}");

    let mut opted_out: Value = serde_json::from_str(&plain).unwrap();
    opted_out["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({INJECT: "false"});
    let review = post(&app, NAMESPACE_PATH, opted_out.to_string()).await;
    assert_eq!(review["response"]["allowed"], true);
    assert!(review["response"].get("patch").is_none(), "{review}");
}

/// `inject -f --namespace-opt-in` renders what the namespace path injects.
#[test]
fn offline_namespace_opt_in_injects_unannotated_jobs() {
    let input = serde_yaml_ng::to_string(&without_inject(&job("minimal"))).unwrap();
    let by_annotation =
        inject_manifests_as(&input, "minimal.yaml", &config(), OptIn::Annotation).unwrap();
    assert_eq!(by_annotation.injected, 0);
    let by_namespace =
        inject_manifests_as(&input, "minimal.yaml", &config(), OptIn::Namespace).unwrap();
    assert_eq!(by_namespace.injected, 1);
    assert!(
        by_namespace.yaml.contains("name: status-reporter\n"),
        "{}",
        by_namespace.yaml
    );
}

/// The shipped webhook configuration: the annotation entry calls `/mutate` and skips
/// namespaces labelled for injection; the namespace entry calls the namespace path and takes
/// exactly those. Complementary selectors on the label mean a Job matches at most one entry.
/// (.ci/check-manifests.sh evaluates the selectors and CEL on a matrix of Jobs.)
#[test]
fn the_two_webhook_entries_split_namespaces_on_the_label() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../manifests/base/mutatingwebhookconfiguration.yaml"),
    )
    .unwrap();
    let mwc: Value = serde_yaml_ng::from_str(&text).unwrap();
    let hooks = mwc["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2);
    let label_rule = |hook: &Value| -> (String, Vec<String>) {
        let rule = hook["namespaceSelector"]["matchExpressions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == NAMESPACE_OPT_IN_LABEL)
            .unwrap_or_else(|| panic!("{}: no rule on {NAMESPACE_OPT_IN_LABEL}", hook["name"]));
        let values = rule["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        (rule["operator"].as_str().unwrap().to_owned(), values)
    };
    let enabled = vec![NAMESPACE_OPT_IN_ENABLED.to_owned()];
    assert_eq!(hooks[0]["clientConfig"]["service"]["path"], "/mutate");
    assert_eq!(label_rule(&hooks[0]), ("NotIn".to_owned(), enabled.clone()));
    assert_eq!(hooks[1]["clientConfig"]["service"]["path"], NAMESPACE_PATH);
    assert_eq!(label_rule(&hooks[1]), ("In".to_owned(), enabled));
    // Everything else about the two entries' scope is the same.
    for key in [
        "rules",
        "failurePolicy",
        "reinvocationPolicy",
        "sideEffects",
        "matchPolicy",
    ] {
        assert_eq!(hooks[0][key], hooks[1][key], "{key}");
    }
}
