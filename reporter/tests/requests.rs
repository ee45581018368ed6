//! Request-level tests: a scripted apiserver (tower-test) behind `kube::Client` asserting the
//! exact method, URI and JSON body of every request the condition writer and the Event make.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use status_reporter::api::RetryPolicy;
use status_reporter::error::Error;
use status_reporter::events;
use status_reporter::job_status::{Change, StatusWriter};
use status_reporter::outcome::Outcome;
use tower_test::mock::{self, Handle};

type ApiHandle = Handle<Request<Body>, Response<Body>>;

const STATUS_URI: &str = "/apis/batch/v1/namespaces/ns/jobs/job/status";
const NOW: &str = "2026-11-21T22:00:00Z";

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
        deadline: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    }
}

fn writer(policy: RetryPolicy) -> (StatusWriter, ApiHandle, kube::Client) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let now: jiff::Timestamp = NOW.parse().unwrap();
    let w = StatusWriter::new(
        client.clone(),
        "ns",
        "job",
        "Available",
        policy,
        Arc::new(move || now),
    );
    (w, handle, client)
}

fn job(rv: &str, conditions: Value) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "job", "namespace": "ns", "uid": "uid-1", "resourceVersion": rv},
        "spec": {"backoffLimit": 6, "template": {"spec": {"containers": [{"name": "adapter", "image": "a"}], "restartPolicy": "Never"}}},
        "status": {"conditions": conditions, "active": 1}
    })
}

fn reply(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code})
}

/// Next request: asserts method and URI, returns its JSON body (Null when empty) and the responder.
async fn expect(
    handle: &mut ApiHandle,
    method: Method,
    uri: &str,
) -> (Value, mock::SendResponse<Response<Body>>, Request<()>) {
    let (req, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("request within 5s")
        .expect("a request");
    assert_eq!(req.method(), method);
    assert_eq!(req.uri().to_string(), uri);
    let (parts, body) = req.into_parts();
    let bytes = body.collect_bytes().await.unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (value, send, Request::from_parts(parts, ()))
}

/// Next request: asserts method and URI (the Job's status), answers `code` with `body`;
/// returns the request's JSON body.
async fn answer(api: &mut ApiHandle, method: Method, code: u16, body: &Value) -> Value {
    let (request, send, _) = expect(api, method, STATUS_URI).await;
    send.send_response(reply(code, body));
    request
}

/// Next request: a PUT of the Job's status, answered 200 with what was put (a successful
/// write); returns its JSON body.
async fn echo_put(api: &mut ApiHandle) -> Value {
    let (body, send, _) = expect(api, Method::PUT, STATUS_URI).await;
    send.send_response(reply(200, &body));
    body
}

fn failure() -> Outcome {
    Outcome {
        success: false,
        reason: "AdapterExitedWithError".into(),
        message: "Adapter container exited with code 1: Error".into(),
    }
}

fn available(status: &str, reason: &str, message: &str, ltt: &str) -> Value {
    json!({"type": "Available", "status": status, "reason": reason, "message": message, "lastTransitionTime": ltt})
}

#[tokio::test]
async fn get_then_put_keeps_other_conditions() {
    let (w, mut api, _client) = writer(fast_policy());
    let complete =
        json!({"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-21T21:00:00Z"});
    let server = tokio::spawn(async move {
        let (body, send, _) = expect(&mut api, Method::GET, STATUS_URI).await;
        assert_eq!(body, Value::Null);
        send.send_response(reply(200, &job("5", json!([complete.clone()]))));
        let (body, send, req) = expect(&mut api, Method::PUT, STATUS_URI).await;
        assert_eq!(req.headers()["content-type"], "application/json");
        let mut want = job(
            "5",
            json!([
                complete,
                available(
                    "False",
                    "AdapterExitedWithError",
                    "Adapter container exited with code 1: Error",
                    NOW
                )
            ]),
        );
        assert_eq!(body, want);
        want["metadata"]["resourceVersion"] = json!("6");
        send.send_response(reply(200, &want));
    });
    let written = w.write(&failure()).await.unwrap();
    assert_eq!(written.change, Change::Updated);
    assert_eq!(written.uid.as_deref(), Some("uid-1"));
    assert_eq!(written.requests, 2);
    server.await.unwrap();
}

#[tokio::test]
async fn conflict_rereads_and_retries() {
    let (w, mut api, _client) = writer(fast_policy());
    let server = tokio::spawn(async move {
        answer(&mut api, Method::GET, 200, &job("5", json!([]))).await;
        let (body, send, _) = expect(&mut api, Method::PUT, STATUS_URI).await;
        assert_eq!(body["metadata"]["resourceVersion"], "5");
        send.send_response(reply(
            409,
            &status_body(409, "Conflict", "Operation cannot be fulfilled on jobs.batch \"job\": the object has been modified; please apply your changes to the latest version and try again"),
        ));
        // Meanwhile the Job controller wrote Complete.
        let complete = json!({"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-21T21:59:59Z"});
        answer(
            &mut api,
            Method::GET,
            200,
            &job("7", json!([complete.clone()])),
        )
        .await;
        let (body, send, _) = expect(&mut api, Method::PUT, STATUS_URI).await;
        assert_eq!(body["metadata"]["resourceVersion"], "7");
        assert_eq!(
            body["status"]["conditions"],
            json!([
                complete,
                available(
                    "False",
                    "AdapterExitedWithError",
                    "Adapter container exited with code 1: Error",
                    NOW
                )
            ])
        );
        send.send_response(reply(200, &body));
    });
    let written = w.write(&failure()).await.unwrap();
    assert_eq!(written.change, Change::Updated);
    assert_eq!(written.requests, 4);
    server.await.unwrap();
}

#[tokio::test]
async fn server_errors_then_success() {
    let (w, mut api, _client) = writer(fast_policy());
    let server = tokio::spawn(async move {
        for code in [500, 503, 500] {
            answer(
                &mut api,
                Method::GET,
                code,
                &status_body(code, "InternalError", "etcd is sad"),
            )
            .await;
        }
        answer(&mut api, Method::GET, 200, &job("5", json!([]))).await;
        answer(
            &mut api,
            Method::PUT,
            500,
            &status_body(500, "InternalError", "again"),
        )
        .await;
        echo_put(&mut api).await;
    });
    let written = w.write(&failure()).await.unwrap();
    assert_eq!(written.change, Change::Updated);
    assert_eq!(written.requests, 6);
    server.await.unwrap();
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let (w, mut api, _client) = writer(fast_policy());
    let server = tokio::spawn(async move {
        let (_, send, _) = expect(&mut api, Method::GET, STATUS_URI).await;
        let mut resp = reply(429, &status_body(429, "TooManyRequests", "slow down"));
        resp.headers_mut()
            .insert("retry-after", "1".parse().unwrap());
        send.send_response(resp);
        answer(&mut api, Method::GET, 200, &job("5", json!([]))).await;
        echo_put(&mut api).await;
    });
    let started = std::time::Instant::now();
    w.write(&failure()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried before Retry-After: {:?}",
        started.elapsed()
    );
    server.await.unwrap();
}

#[tokio::test]
async fn transient_errors_give_up_at_the_deadline() {
    let policy = RetryPolicy {
        deadline: Duration::from_millis(200),
        ..fast_policy()
    };
    let (w, mut api, client) = writer(policy);
    let server = tokio::spawn(async move {
        let mut served = 0;
        while let Some((_, send)) = api.next_request().await {
            send.send_response(reply(500, &status_body(500, "InternalError", "down")));
            served += 1;
        }
        served
    });
    let err = w.write(&failure()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::WriteDeadline { .. }), "{text}");
    assert!(
        text.starts_with("gave up writing condition on job ns/job after "),
        "{text}"
    );
    assert!(
        text.ends_with("within 200ms: last error: get jobs/status: HTTP 500: down"),
        "{text}"
    );
    drop(w);
    drop(client);
    let served = server.await.unwrap();
    assert!(served >= 2, "expected retries, got {served} requests");
}

#[tokio::test]
async fn not_found_is_permanent_and_clear() {
    let (w, mut api, client) = writer(fast_policy());
    let server = tokio::spawn(async move {
        answer(
            &mut api,
            Method::GET,
            404,
            &status_body(404, "NotFound", "jobs.batch \"job\" not found"),
        )
        .await;
        // No retry follows.
        assert!(api.next_request().await.is_none());
    });
    let err = w.write(&failure()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "get jobs/status ns/job failed with HTTP 404: jobs.batch \"job\" not found (check JOB_NAME and JOB_NAMESPACE: no Job ns/job)"
    );
    drop(w);
    drop(client);
    server.await.unwrap();
}

#[tokio::test]
async fn forbidden_names_verb_and_resource() {
    let (w, mut api, client) = writer(fast_policy());
    let server = tokio::spawn(async move {
        answer(&mut api, Method::GET, 200, &job("5", json!([]))).await;
        let (_, send, _) = expect(&mut api, Method::PUT, STATUS_URI).await;
        let msg = "jobs.batch \"job\" is forbidden: User \"system:serviceaccount:ns:default\" cannot update resource \"jobs/status\" in API group \"batch\" in the namespace \"ns\"";
        send.send_response(reply(403, &status_body(403, "Forbidden", msg)));
        assert!(api.next_request().await.is_none());
    });
    let err = w.write(&failure()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "update jobs/status ns/job failed with HTTP 403: jobs.batch \"job\" is forbidden"
        ),
        "{text}"
    );
    assert!(text.ends_with("(RBAC: the reporter's service account needs verbs get and update on resource jobs/status in namespace ns)"), "{text}");
    drop(w);
    drop(client);
    server.await.unwrap();
}

#[tokio::test]
async fn identical_condition_is_a_noop() {
    let (w, mut api, client) = writer(fast_policy());
    let server = tokio::spawn(async move {
        let (_, send, _) = expect(&mut api, Method::GET, STATUS_URI).await;
        let existing = available(
            "False",
            "AdapterExitedWithError",
            "Adapter container exited with code 1: Error",
            "2026-01-01T00:00:00Z",
        );
        send.send_response(reply(200, &job("5", json!([existing]))));
        assert!(
            api.next_request().await.is_none(),
            "no PUT for an identical condition"
        );
    });
    let written = w.write(&failure()).await.unwrap();
    assert_eq!(written.change, Change::Unchanged);
    assert_eq!(written.requests, 1);
    drop(w);
    drop(client);
    server.await.unwrap();
}

#[tokio::test]
async fn event_post_and_refusal() {
    let (service, mut api) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let now: jiff::Timestamp = NOW.parse().unwrap();
    let event = events::make_event("ns", "job", Some("uid-1"), "job-pod", &failure(), now);
    let server = tokio::spawn(async move {
        let (body, send, _) = expect(&mut api, Method::POST, "/api/v1/namespaces/ns/events").await;
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": format!("job.{:x}", now.as_nanosecond()), "namespace": "ns"},
                "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": "job", "namespace": "ns", "uid": "uid-1"},
                "reason": "AdapterExitedWithError",
                "message": "Adapter container exited with code 1: Error",
                "type": "Warning",
                "source": {"component": "status-reporter"},
                "reportingComponent": "status-reporter",
                "reportingInstance": "job-pod",
                "firstTimestamp": NOW, "lastTimestamp": NOW, "count": 1
            })
        );
        send.send_response(reply(201, &body));
        let (_, send, _) = expect(&mut api, Method::POST, "/api/v1/namespaces/ns/events").await;
        send.send_response(reply(
            403,
            &status_body(403, "Forbidden", "cannot create events"),
        ));
    });
    assert!(events::record(&client, "ns", &event, Duration::from_secs(5)).await);
    assert!(!events::record(&client, "ns", &event, Duration::from_secs(5)).await);
    server.await.unwrap();
    let ok = Outcome {
        success: true,
        reason: "Ok".into(),
        message: "m".into(),
    };
    assert_eq!(
        events::make_event("ns", "job", None, "p", &ok, now)["type"],
        "Normal"
    );
}

#[tokio::test]
async fn hung_request_times_out_and_is_retried() {
    let policy = RetryPolicy {
        request_timeout: Duration::from_millis(100),
        ..fast_policy()
    };
    let (w, mut api, _client) = writer(policy);
    let server = tokio::spawn(async move {
        // Accept the first GET and never answer it.
        let (_, hung, _) = expect(&mut api, Method::GET, STATUS_URI).await;
        answer(&mut api, Method::GET, 200, &job("5", json!([]))).await;
        echo_put(&mut api).await;
        drop(hung);
    });
    let written = w.write(&failure()).await.unwrap();
    assert_eq!(written.change, Change::Updated);
    assert_eq!(written.requests, 3);
    server.await.unwrap();
}
