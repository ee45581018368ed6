//! Request-level tests of the router, in process (`tower::ServiceExt::oneshot`): status
//! codes, body limit, readiness and metrics without TLS or sockets.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::metrics::Metrics;
use status_reporter_webhook::server::{AppState, router};
use tower::ServiceExt;

const LIMIT: usize = 64 * 1024;

fn app() -> (Arc<AppState>, axum::Router) {
    let state = Arc::new(AppState::new(
        InjectConfig::default(),
        Arc::new(Metrics::new()),
    ));
    let app = router(state.clone(), LIMIT, Duration::from_secs(5));
    (state, app)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/data/admission/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, body)
}

fn post(body: impl Into<Body>) -> Request<Body> {
    Request::post("/mutate")
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn mutate_answers_every_body_with_200_and_a_review() {
    let (_, app) = app();
    for (body, allowed, has_patch) in [
        (fixture("create-job"), true, true),
        (fixture("update-job"), true, false),
        (fixture("create-job-bad-annotation"), false, false),
        (fixture("malformed"), false, false),
        (b"not json at all".to_vec(), false, false),
        (Vec::new(), false, false),
    ] {
        let (status, out) = call(&app, post(body.clone())).await;
        assert_eq!(status, StatusCode::OK);
        let review: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(review["kind"], "AdmissionReview");
        assert_eq!(
            review["response"]["allowed"],
            allowed,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(review["response"].get("patch").is_some(), has_patch);
    }
}

#[tokio::test]
async fn oversized_body_is_413_and_the_router_keeps_serving() {
    let (_, app) = app();
    let (status, _) = call(&app, post(vec![b' '; LIMIT + 1])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = call(&app, post(fixture("create-job"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let (state, app) = app();
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    assert_eq!(call(&app, get("/healthz")).await.0, StatusCode::OK);
    assert_eq!(
        call(&app, get("/readyz")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    state.ready.store(true, Ordering::Relaxed);
    assert_eq!(call(&app, get("/readyz")).await.0, StatusCode::OK);
    assert_eq!(call(&app, get("/nope")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&app, get("/mutate")).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn metrics_count_outcomes() {
    let (_, app) = app();
    for f in [
        "create-job",
        "create-job",
        "update-job",
        "create-job-bad-annotation",
        "malformed",
    ] {
        call(&app, post(fixture(f))).await;
    }
    let (status, body) = call(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    for line in [
        "status_reporter_webhook_admission_requests_total{outcome=\"injected\"} 2",
        "status_reporter_webhook_admission_requests_total{outcome=\"skipped\"} 1",
        "status_reporter_webhook_admission_requests_total{outcome=\"denied\"} 1",
        "status_reporter_webhook_admission_requests_total{outcome=\"invalid\"} 1",
        "status_reporter_webhook_admission_duration_seconds_count 5",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
