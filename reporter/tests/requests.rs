//! Request-level tests: a scripted apiserver (tower-test) behind `kube::Client` asserting the
//! exact method, URI and JSON body of every request the condition writer, the report around it
//! (pod record, pod list, the rules of every Job shape) and the Event make.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use status_reporter::attempt::Attempt;
use status_reporter::error::Error;
use status_reporter::events;
use status_reporter::job_status::{Change, StatusWriter};
use status_reporter::outcome::{ContainerState, Outcome, PodView};
use status_reporter::pods::Pods;
use status_reporter::report::{self, Reported};
use status_reporter::retry::{Deadline, RetryPolicy};
use tower_test::mock::{self, Handle};

type ApiHandle = Handle<Request<Body>, Response<Body>>;

const STATUS_URI: &str = "/apis/batch/v1/namespaces/ns/jobs/job/status";
const NOW: &str = "2026-11-21T22:00:00Z";

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
        request_timeout: Duration::from_secs(5),
    }
}

fn in_5s() -> Deadline {
    Deadline::after(Duration::from_secs(5))
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
    // kube's URL builder leaves an empty query (`?`) or a leading `&`: equal to none.
    let got = req.uri().to_string().replace("?&", "?");
    assert_eq!(got.trim_end_matches('?'), uri);
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
    Outcome::failed(
        "AdapterExitedWithError",
        "Adapter container exited with code 1: Error".into(),
    )
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
    let written = w.write(&failure().condition(), &in_5s()).await.unwrap();
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
    let written = w.write(&failure().condition(), &in_5s()).await.unwrap();
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
    let written = w.write(&failure().condition(), &in_5s()).await.unwrap();
    assert_eq!(written.change, Change::Updated);
    assert_eq!(written.requests, 6);
    server.await.unwrap();
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    // The hint is honoured up to the backoff's cap.
    let (w, mut api, _client) = writer(RetryPolicy {
        max: Duration::from_secs(2),
        ..fast_policy()
    });
    let server = tokio::spawn(async move {
        let (_, send, _) = expect(&mut api, Method::GET, STATUS_URI).await;
        // As the API server sends it: the hint in the Status body (and a Retry-After header).
        let mut body = status_body(429, "TooManyRequests", "slow down");
        body["details"] = json!({"retryAfterSeconds": 1});
        let mut resp = reply(429, &body);
        resp.headers_mut()
            .insert("retry-after", "1".parse().unwrap());
        send.send_response(resp);
        answer(&mut api, Method::GET, 200, &job("5", json!([]))).await;
        echo_put(&mut api).await;
    });
    let started = std::time::Instant::now();
    w.write(&failure().condition(), &in_5s()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried before Retry-After: {:?}",
        started.elapsed()
    );
    server.await.unwrap();
}

#[tokio::test]
async fn transient_errors_give_up_at_the_deadline() {
    let (w, mut api, client) = writer(fast_policy());
    let server = tokio::spawn(async move {
        let mut served = 0;
        while let Some((_, send)) = api.next_request().await {
            send.send_response(reply(500, &status_body(500, "InternalError", "down")));
            served += 1;
        }
        served
    });
    let err = w
        .write(
            &failure().condition(),
            &Deadline::after(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
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
    let err = w.write(&failure().condition(), &in_5s()).await.unwrap_err();
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
    let err = w.write(&failure().condition(), &in_5s()).await.unwrap_err();
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
    let written = w.write(&failure().condition(), &in_5s()).await.unwrap();
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
    let source = events::Source {
        pod: "job-pod",
        index: None,
        attempt: 1,
        superseded_by: None,
    };
    let event = events::make_event(&source, &failure());
    let regarding = events::job_reference("ns", "job", Some("uid-1"));
    // One Event per process: each recorder below publishes once (the recorder would turn a
    // second Event of the same reason into a series, a PATCH the reporter never sends).
    let recorder = events::recorder(client.clone(), "job-pod");
    let refused = events::recorder(client, "job-pod");
    let server = tokio::spawn(async move {
        let (body, send, _) = expect(&mut api, Method::POST, EVENTS_URI).await;
        assert_eq!(
            body["regarding"],
            json!({"apiVersion": "batch/v1", "kind": "Job", "name": "job", "namespace": "ns", "uid": "uid-1"})
        );
        assert_eq!(body["reason"], "AdapterExitedWithError");
        assert_eq!(
            body["note"],
            "Adapter container exited with code 1: Error (pod job-pod, attempt 1)"
        );
        assert_eq!(body["type"], "Warning");
        assert_eq!(body["action"], "ReportOutcome");
        assert_eq!(body["reportingController"], "status-reporter");
        assert_eq!(body["reportingInstance"], "job-pod");
        send.send_response(reply(201, &body));
        let (_, send, _) = expect(&mut api, Method::POST, EVENTS_URI).await;
        send.send_response(reply(
            403,
            &status_body(403, "Forbidden", "cannot create events"),
        ));
    });
    assert!(events::record(&recorder, &event, &regarding, Duration::from_secs(5)).await);
    assert!(!events::record(&refused, &event, &regarding, Duration::from_secs(5)).await);
    server.await.unwrap();
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
    let written = w.write(&failure().condition(), &in_5s()).await.unwrap();
    assert_eq!(written.change, Change::Updated);
    assert_eq!(written.requests, 3);
    server.await.unwrap();
}

// The report around the write (docs/job-shapes.md): request by request.

const POD_STATUS_URI: &str = "/api/v1/namespaces/ns/pods/job-a1/status";
const POD_LIST_URI: &str = "/api/v1/namespaces/ns/pods?labelSelector=batch.kubernetes.io%2Fcontroller-uid%3Duid-1&limit=100";
const EVENTS_URI: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";

fn context(job_uid: Option<&str>) -> (report::Context, ApiHandle) {
    let (w, api, client) = writer(fast_policy());
    let ctx = report::Context {
        namespace: "ns".into(),
        job: "job".into(),
        pod: "job-a1".into(),
        job_uid: job_uid.map(str::to_owned),
        writer: w,
        pods: Pods::new(client.clone(), "ns", fast_policy()),
        recorder: events::recorder(client, "job-a1"),
        record_budget: Duration::from_secs(5),
        event_timeout: Duration::from_secs(5),
    };
    (ctx, api)
}

/// The reporter's own pod as last watched: running (or `done`), on `index`.
fn view(index: Option<u32>, done: bool) -> PodView {
    PodView {
        name: "job-a1".into(),
        phase: "Running".into(),
        reason: String::new(),
        message: String::new(),
        deleting: done,
        restarts_in_place: false,
        adapter: "adapter".into(),
        adapter_missing: None,
        adapter_state: ContainerState::Running,
        adapter_logs_fallback: false,
        restart_count: 0,
        attempt: Attempt {
            index,
            created: Some("2026-11-21T21:00:00Z".parse().unwrap()),
            done,
            ..Attempt::named("job-a1")
        },
        result_since: None,
    }
}

fn listed(
    name: &str,
    created: &str,
    index: Option<u32>,
    result: Option<(&str, &str, &str)>,
) -> Value {
    let mut pod = json!({"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created}, "status": {"phase": "Running"}});
    if let Some(i) = index {
        pod["metadata"]["labels"] =
            json!({"batch.kubernetes.io/job-completion-index": i.to_string()});
    }
    if let Some((status, reason, message)) = result {
        pod["status"]["conditions"] = json!([{"type": "status-reporter.hyperfleet.io/result", "status": status, "reason": reason, "message": message}]);
    }
    pod
}

fn pod_list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "9"}, "items": items})
}

fn success(reason: &str, message: &str) -> Outcome {
    Outcome {
        success: true,
        reason: reason.into(),
        message: message.into(),
        from_result: true,
    }
}

/// Next request: the pod's status patch (a strategic merge of the one result condition).
async fn expect_record(api: &mut ApiHandle, status: &str, reason: &str, message: &str) {
    let (body, send, req) = expect(api, Method::PATCH, POD_STATUS_URI).await;
    assert_eq!(
        req.headers()["content-type"],
        "application/strategic-merge-patch+json"
    );
    assert_eq!(
        body,
        json!({"status": {"conditions": [{"type": "status-reporter.hyperfleet.io/result", "status": status, "reason": reason, "message": message, "lastTransitionTime": NOW}]}})
    );
    send.send_response(reply(200, &json!({"kind": "Pod"})));
}

/// Next request: the Event; returns its note.
async fn expect_event(api: &mut ApiHandle) -> String {
    let (body, send, _) = expect(api, Method::POST, EVENTS_URI).await;
    send.send_response(reply(201, &body));
    body["note"].as_str().unwrap().to_owned()
}

fn indexed_job(rv: &str, completions: u32, conditions: Value) -> Value {
    let mut j = job(rv, conditions);
    j["spec"]["completions"] = json!(completions);
    j["spec"]["parallelism"] = json!(completions);
    j["spec"]["completionMode"] = json!("Indexed");
    j
}

#[tokio::test]
async fn single_pod_job_writes_the_job_first_then_records_on_the_pod() {
    let (ctx, mut api) = context(Some("uid-1"));
    let server = tokio::spawn(async move {
        answer(&mut api, Method::GET, 200, &job("5", json!([]))).await;
        let put = echo_put(&mut api).await;
        assert_eq!(
            put["status"]["conditions"],
            json!([available(
                "False",
                "AdapterExitedWithError",
                "Adapter container exited with code 1: Error",
                NOW
            )])
        );
        expect_record(
            &mut api,
            "False",
            "AdapterExitedWithError",
            "Adapter container exited with code 1: Error",
        )
        .await;
        assert_eq!(
            expect_event(&mut api).await,
            "Adapter container exited with code 1: Error (pod job-a1, attempt 1)"
        );
    });
    let r = report::report(&ctx, failure(), Some(&view(None, false)), &in_5s())
        .await
        .unwrap();
    assert!(matches!(
        r.reported,
        Reported::Written {
            change: Change::Updated,
            ..
        }
    ));
    // GET + PUT + PATCH pod: a running single-completion pod cannot have been replaced, so
    // no pod list.
    assert_eq!(r.requests, 3);
    server.await.unwrap();
}

#[tokio::test]
async fn a_superseded_attempt_records_on_its_pod_and_leaves_the_job_alone() {
    let (ctx, mut api) = context(Some("uid-1"));
    let server = tokio::spawn(async move {
        let mut j = job(
            "5",
            json!([available(
                "True",
                "ChecksPassed",
                "All checks passed",
                "2026-11-21T21:30:00Z"
            )]),
        );
        j["status"]["failed"] = json!(1);
        answer(&mut api, Method::GET, 200, &j).await;
        let (_, send, _) = expect(&mut api, Method::GET, POD_LIST_URI).await;
        send.send_response(reply(
            200,
            &pod_list(vec![
                listed("job-a1", "2026-11-21T21:00:00Z", None, None),
                listed(
                    "job-b2",
                    "2026-11-21T21:00:11Z",
                    None,
                    Some(("True", "ChecksPassed", "All checks passed")),
                ),
            ]),
        ));
        // No PUT: the record on its own pod, then the Event.
        expect_record(
            &mut api,
            "False",
            "AdapterTerminated",
            "Pod job-a1 was deleted before the adapter produced a result",
        )
        .await;
        assert_eq!(
            expect_event(&mut api).await,
            "Pod job-a1 was deleted before the adapter produced a result (pod job-a1, attempt 1; superseded by pod job-b2, whose result the Job condition shows)"
        );
    });
    let outcome = Outcome::failed(
        "AdapterTerminated",
        "Pod job-a1 was deleted before the adapter produced a result".into(),
    );
    let r = report::report(&ctx, outcome, Some(&view(None, true)), &in_5s())
        .await
        .unwrap();
    assert_eq!(
        r.reported,
        Reported::Superseded {
            newer: "job-b2".into()
        }
    );
    server.await.unwrap();
}

/// Concurrent finishers converge: a 409 on the aggregate re-reads the Job and the pods before recomputing, so the
/// last writer has seen every earlier result.
#[tokio::test]
async fn an_aggregate_conflict_rereads_the_pods_before_recomputing() {
    let (ctx, mut api) = context(Some("uid-1"));
    let server = tokio::spawn(async move {
        answer(&mut api, Method::GET, 200, &indexed_job("5", 2, json!([]))).await;
        expect_record(&mut api, "True", "Ok", "shard fine").await;
        let (_, send, _) = expect(&mut api, Method::GET, POD_LIST_URI).await;
        send.send_response(reply(
            200,
            &pod_list(vec![
                listed("job-a0", "2026-11-21T21:00:00Z", Some(0), None),
                listed("job-a1", "2026-11-21T21:00:00Z", Some(1), None),
            ]),
        ));
        let (body, send, _) = expect(&mut api, Method::PUT, STATUS_URI).await;
        assert_eq!(
            body["status"]["conditions"][0]["message"],
            "1/2 indexes reported"
        );
        send.send_response(reply(
            409,
            &status_body(409, "Conflict", "the object has been modified"),
        ));
        // Meanwhile index 0's reporter recorded its result and wrote its own aggregate.
        answer(
            &mut api,
            Method::GET,
            200,
            &indexed_job(
                "7",
                2,
                json!([available(
                    "Unknown",
                    "AwaitingResults",
                    "1/2 indexes reported",
                    "2026-11-21T21:59:00Z"
                )]),
            ),
        )
        .await;
        let (_, send, _) = expect(&mut api, Method::GET, POD_LIST_URI).await;
        send.send_response(reply(
            200,
            &pod_list(vec![
                listed(
                    "job-a0",
                    "2026-11-21T21:00:00Z",
                    Some(0),
                    Some(("True", "Ok", "shard fine")),
                ),
                listed(
                    "job-a1",
                    "2026-11-21T21:00:00Z",
                    Some(1),
                    Some(("True", "Ok", "shard fine")),
                ),
            ]),
        ));
        let put = echo_put(&mut api).await;
        assert_eq!(put["metadata"]["resourceVersion"], "7");
        assert_eq!(
            put["status"]["conditions"],
            json!([available(
                "True",
                "Ok",
                "2/2 indexes succeeded: shard fine",
                NOW
            )])
        );
        assert_eq!(
            expect_event(&mut api).await,
            "shard fine (pod job-a1, index 1, attempt 1)"
        );
    });
    let r = report::report(
        &ctx,
        success("Ok", "shard fine"),
        Some(&view(Some(1), false)),
        &in_5s(),
    )
    .await
    .unwrap();
    assert_eq!(r.requests, 7, "GET, PATCH, LIST, PUT(409), GET, LIST, PUT");
    server.await.unwrap();
}

/// Identity: a Job re-created under the same name is not ours: nothing is written there.
#[tokio::test]
async fn another_job_uid_under_the_same_name_gets_nothing() {
    let (ctx, mut api) = context(Some("uid-0"));
    let server = tokio::spawn(async move {
        answer(&mut api, Method::GET, 200, &job("5", json!([]))).await;
        assert!(api.next_request().await.is_none(), "nothing after the GET");
    });
    let err = report::report(
        &ctx,
        success("Ok", "fine"),
        Some(&view(None, false)),
        &in_5s(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "job ns/job has uid uid-1, but this pod belongs to the Job with uid uid-0 (JOB_UID): the Job was deleted and re-created under the same name; nothing is written to it"
    );
    drop(ctx);
    server.await.unwrap();
}

/// Suspension: a pod deleted by the Job's suspension writes nothing, not even on itself.
#[tokio::test]
async fn a_suspended_job_gets_nothing() {
    let (ctx, mut api) = context(None);
    let server = tokio::spawn(async move {
        let mut j = job("5", json!([]));
        j["spec"]["suspend"] = json!(true);
        answer(&mut api, Method::GET, 200, &j).await;
        assert!(api.next_request().await.is_none(), "nothing after the GET");
    });
    let outcome = Outcome::failed(
        "AdapterTerminated",
        "Pod job-a1 was deleted before the adapter produced a result".into(),
    );
    let r = report::report(&ctx, outcome, Some(&view(None, true)), &in_5s())
        .await
        .unwrap();
    assert_eq!(r.reported, Reported::Suspended);
    drop(ctx);
    server.await.unwrap();
}

/// Deadline: a pod killed at the Job's deadline reports AdapterTimeout naming the deadline; a
/// valid result is never replaced.
#[tokio::test]
async fn a_pod_killed_at_the_job_deadline_reports_the_deadline() {
    let (ctx, mut api) = context(None);
    let server = tokio::spawn(async move {
        let mut j = job(
            "5",
            json!([{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline", "lastTransitionTime": "2026-11-21T21:59:00Z"}]),
        );
        j["spec"]["activeDeadlineSeconds"] = json!(90);
        answer(&mut api, Method::GET, 200, &j).await;
        let (_, send, _) = expect(&mut api, Method::GET, POD_LIST_URI).await;
        send.send_response(reply(
            200,
            &pod_list(vec![listed("job-a1", "2026-11-21T21:00:00Z", None, None)]),
        ));
        let put = echo_put(&mut api).await;
        assert_eq!(
            put["status"]["conditions"][1],
            available(
                "False",
                "AdapterTimeout",
                "Job exceeded its activeDeadlineSeconds (1m30s)",
                NOW
            )
        );
        expect_record(
            &mut api,
            "False",
            "AdapterTimeout",
            "Job exceeded its activeDeadlineSeconds (1m30s)",
        )
        .await;
        expect_event(&mut api).await;
    });
    let outcome = Outcome::failed(
        "AdapterTerminated",
        "Pod job-a1 was deleted before the adapter produced a result".into(),
    );
    let r = report::report(&ctx, outcome, Some(&view(None, true)), &in_5s())
        .await
        .unwrap();
    assert_eq!(r.outcome.reason, "AdapterTimeout");
    server.await.unwrap();
}

/// Conflicts back off (with jitter) instead of hammering a server that keeps answering 409.
#[tokio::test]
async fn conflicts_back_off_between_tries() {
    let policy = RetryPolicy {
        initial: Duration::from_millis(40),
        max: Duration::from_secs(1),
        ..fast_policy()
    };
    let (w, mut api, _client) = writer(policy);
    let server = tokio::spawn(async move {
        let mut gaps = Vec::new();
        for round in 0..3 {
            answer(
                &mut api,
                Method::GET,
                200,
                &job(&round.to_string(), json!([])),
            )
            .await;
            let got = std::time::Instant::now();
            answer(
                &mut api,
                Method::PUT,
                409,
                &status_body(409, "Conflict", "the object has been modified"),
            )
            .await;
            gaps.push(got);
        }
        answer(&mut api, Method::GET, 200, &job("9", json!([]))).await;
        echo_put(&mut api).await;
        gaps
    });
    let written = w.write(&failure().condition(), &in_5s()).await.unwrap();
    assert_eq!(written.change, Change::Updated);
    let gets = server.await.unwrap();
    // Backoff 40 ms, 80 ms (each plus up to as much jitter) between the conflicting rounds.
    assert!(
        gets[1] - gets[0] >= Duration::from_millis(40),
        "{:?}",
        gets[1] - gets[0]
    );
    assert!(
        gets[2] - gets[1] >= Duration::from_millis(80),
        "{:?}",
        gets[2] - gets[1]
    );
}

/// Any `retryAfterSeconds` a server sends is clamped to the deadline: no overflow, no panic,
/// no waiting past it.
#[tokio::test]
async fn a_huge_retry_after_is_clamped_to_the_deadline() {
    let (w, mut api, client) = writer(fast_policy());
    let server = tokio::spawn(async move {
        while let Some((_, send)) = api.next_request().await {
            let mut body = status_body(503, "ServiceUnavailable", "come back much later");
            body["details"] = json!({"retryAfterSeconds": u32::MAX});
            send.send_response(reply(503, &body));
        }
    });
    let started = std::time::Instant::now();
    let err = w
        .write(
            &failure().condition(),
            &Deadline::after(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WriteDeadline { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(w);
    drop(client);
    server.await.unwrap();
}

/// The pod record an aggregate needs first has its own budget: a hung PATCH never eats the
/// condition's deadline.
#[tokio::test]
async fn a_hung_pod_record_never_takes_the_conditions_time() {
    let (mut ctx, mut api) = context(Some("uid-1"));
    ctx.record_budget = Duration::from_millis(200);
    let server = tokio::spawn(async move {
        answer(&mut api, Method::GET, 200, &indexed_job("5", 2, json!([]))).await;
        // The record hangs (accepted, never answered) until its budget is spent.
        let (_, hung, _) = expect(&mut api, Method::PATCH, POD_STATUS_URI).await;
        let (_, send, _) = expect(&mut api, Method::GET, POD_LIST_URI).await;
        send.send_response(reply(
            200,
            &pod_list(vec![listed(
                "job-a1",
                "2026-11-21T21:00:00Z",
                Some(1),
                None,
            )]),
        ));
        let put = echo_put(&mut api).await;
        assert_eq!(
            put["status"]["conditions"][0]["message"],
            "1/2 indexes reported"
        );
        expect_event(&mut api).await;
        drop(hung);
    });
    // The condition's deadline is shorter than the hung request's timeout (5 s): the record
    // must give up on its own budget for the PUT to make it.
    let r = report::report(
        &ctx,
        success("Ok", "shard fine"),
        Some(&view(Some(1), false)),
        &Deadline::after(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    assert!(matches!(
        r.reported,
        Reported::Written {
            change: Change::Updated,
            ..
        }
    ));
    server.await.unwrap();
}

/// A server that keeps sending pages of pods (or a Job with more pods than the aggregate
/// reads) is refused at the bound, naming it, instead of growing without end.
#[tokio::test]
async fn endless_pod_pages_are_refused_at_the_bound() {
    let (service, mut api) = mock::pair::<Request<Body>, Response<Body>>();
    let pods = Pods::new(kube::Client::new(service, "default"), "ns", fast_policy());
    let server = tokio::spawn(async move {
        let mut pages = 0;
        while let Some((_, send)) = api.next_request().await {
            pages += 1;
            let items: Vec<Value> = (0..100)
                .map(|i| {
                    listed(
                        &format!("p-{pages}-{i}"),
                        "2026-11-21T21:00:00Z",
                        None,
                        None,
                    )
                })
                .collect();
            let mut list = pod_list(items);
            list["metadata"]["continue"] = json!(format!("page-{pages}"));
            send.send_response(reply(200, &list));
        }
        pages
    });
    let err = pods
        .of_job("uid-1", &in_5s())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("more than 10000 pods"),
        "names the bound: {err}"
    );
    drop(pods);
    assert_eq!(
        server.await.unwrap(),
        101,
        "stops at the page that passes the bound"
    );
}
