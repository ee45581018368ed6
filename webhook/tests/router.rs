//! Request-level tests of the router, in process (`tower::ServiceExt::oneshot`): status
//! codes, body limits, readiness and metrics without TLS or sockets.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use status_reporter_webhook::body::{BodyBudget, BodyLimits};
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::metrics::Metrics;
use status_reporter_webhook::server::{AppState, OPENMETRICS_CONTENT_TYPE, router};
use status_reporter_webhook::tls::{CertResolver, load_pair};
use tower::ServiceExt;

const LIMIT: usize = 64 * 1024;

fn state() -> AppState {
    AppState::new(
        InjectConfig::default(),
        Arc::new(Metrics::new()),
        BodyLimits {
            per_request: LIMIT,
            budget: BodyBudget::new(1024 * 1024),
        },
    )
}

fn app_with(state: AppState) -> (Arc<AppState>, axum::Router) {
    let state = Arc::new(state);
    let app = router(state.clone(), Duration::from_secs(5));
    (state, app)
}

fn app() -> (Arc<AppState>, axum::Router) {
    app_with(state())
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

/// A Content-Length over the limit is answered 413 without reading the body (so, over
/// HTTP/1.1, before `100 Continue` would be sent): a body that fails when read proves it.
#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_before_the_body_is_read() {
    let (state, app) = app();
    let unreadable = Body::from_stream(futures::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::other("the body was read"))
    }));
    let request = Request::post("/mutate")
        .header("content-type", "application/json")
        .header("expect", "100-continue")
        .header("content-length", (LIMIT + 1).to_string())
        .body(unreadable)
        .unwrap();
    let (status, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.contains(&format!("over the limit of {LIMIT} bytes")),
        "{body}"
    );
    assert!(
        state.metrics.encode().contains(
            "status_reporter_webhook_requests_refused_total{reason=\"body_too_large\"} 1"
        )
    );
}

#[tokio::test]
async fn a_body_the_memory_budget_cannot_hold_now_is_503() {
    // A budget whose large pool (three quarters) is smaller than the per-request limit.
    let (state, app) = app_with(AppState::new(
        InjectConfig::default(),
        Arc::new(Metrics::new()),
        BodyLimits {
            per_request: 4 * LIMIT,
            budget: BodyBudget::new(4 * LIMIT),
        },
    ));
    let (status, body) = call(&app, post(vec![b' '; 3 * LIMIT + 1])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        String::from_utf8_lossy(&body).contains("--max-body-memory-bytes"),
        "{body:?}"
    );
    assert!(
        state
            .metrics
            .encode()
            .contains("status_reporter_webhook_requests_refused_total{reason=\"body_memory\"} 1")
    );
    let (status, _) = call(&app, post(fixture("create-job"))).await;
    assert_eq!(status, StatusCode::OK, "small reviews still pass");
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

/// The served certificate expiring makes the pod not ready, so it leaves the Service's
/// endpoints instead of failing every handshake.
#[tokio::test]
async fn readiness_fails_once_the_served_certificate_has_expired() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let day = Duration::from_secs(86_400);
    params.not_before = (std::time::SystemTime::now() - 30 * day).into();
    params.not_after = (std::time::SystemTime::now() - day).into();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    let resolver = Arc::new(CertResolver::new(load_pair(&c, &k).unwrap()));

    let (state, app) = app_with(state().with_certificate(resolver));
    state.ready.store(true, Ordering::Relaxed);
    let (status, body) = call(&app, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("the served certificate expired at"), "{body}");
}

#[tokio::test]
async fn metrics_are_served_as_openmetrics_text() {
    let (_, app) = app();
    let res = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(res.headers()["content-type"], OPENMETRICS_CONTENT_TYPE);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    // What makes the body OpenMetrics rather than Prometheus 0.0.4 text: the closing
    // `# EOF` line and `_total` counters declared under their base name.
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in [
        "# TYPE status_reporter_webhook_connections_refused counter",
        "status_reporter_webhook_connections_refused_total 0",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
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
