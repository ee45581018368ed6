//! The fault proxy in front of the real API server, driven by the real `kube` client with a
//! ServiceAccount's token: requests reach the API server as that ServiceAccount (its RBAC
//! applies), are logged, and every fault kind does what the tests that build on it expect.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use harness::control_plane::adapter::{AdapterNamespace, adapter_namespace};
use harness::control_plane::{Cluster, client_config};
use harness::fault_proxy::{Fault, FaultProxy, Hostile, Route};
use http::Request;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::client::Body;
use kube::{Api, Client};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A namespace with the reporter's ServiceAccount, a proxy, and a client (kube's own retries
/// off) that reaches the API server through the proxy with the ServiceAccount's token.
async fn setup(name: &str) -> (AdapterNamespace, FaultProxy, Client) {
    let cluster = Cluster::shared();
    let ns = adapter_namespace(cluster, name).await;
    let proxy = FaultProxy::start(cluster);
    let kubeconfig = proxy.kubeconfig(&ns.kubeconfig);
    let mut config = client_config(&kubeconfig)
        .await
        .expect("the proxy's kubeconfig");
    config.default_retry = false;
    (ns, proxy, Client::try_from(config).expect("client"))
}

async fn create_pod(ns: &AdapterNamespace, name: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .expect("pod");
    let api: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
}

/// GET `path` through the proxy: (status, Retry-After, body).
async fn get(client: &Client, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let request = Request::get(path).body(Body::empty()).expect("request");
    let response = client.send(request).await.expect("an answer");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().into());
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .expect("body")
        .to_vec();
    (status, retry_after, body)
}

#[tokio::test]
async fn requests_reach_the_api_server_as_the_service_account_and_are_logged() {
    let (ns, proxy, client) = setup("proxy-auth").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    pods.list(&ListParams::default())
        .await
        .expect("the role grants list pods");
    let configmaps: Api<ConfigMap> = Api::namespaced(client, &ns.name);
    match configmaps.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 403, "{e:?}");
            assert!(e.message.contains("status-reporter-example"), "{e:?}");
        }
        other => panic!("configmaps are not in the role: {other:?}"),
    }
    let log: Vec<(String, u16, bool)> = proxy
        .requests()
        .iter()
        .map(|r| (format!("{} {}", r.method, r.path), r.status, r.watch))
        .collect();
    let base = format!("/api/v1/namespaces/{}", ns.name);
    assert_eq!(
        log,
        [
            (format!("GET {base}/pods"), 200, false),
            (format!("GET {base}/configmaps"), 403, false)
        ]
    );
}

#[tokio::test]
async fn status_faults_with_retry_after_then_the_real_answer() {
    let (ns, proxy, client) = setup("proxy-status").await;
    let path = format!("/api/v1/namespaces/{}/pods", ns.name);
    let huge = "9223372036854775808";
    proxy.inject(Fault::status(("GET", "/pods"), 500).times(2));
    proxy.inject(Fault::status(("GET", "/pods"), 429).retry_after(huge));
    proxy.inject(Fault::status(("*", "/pods"), 409));
    for (code, retry_after, reason) in [
        (500, None, "InternalError"),
        (500, None, "InternalError"),
        (429, Some(huge.to_owned()), "TooManyRequests"),
        (409, None, "Conflict"),
        (200, None, ""),
    ] {
        let (status, header, body) = get(&client, &path).await;
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!((status, header), (code, retry_after), "{body}");
        if code != 200 {
            assert_eq!(
                (body["kind"].as_str(), body["code"].as_u64()),
                (Some("Status"), Some(code as u64))
            );
            assert_eq!(body["reason"], reason);
        }
    }
    let statuses: Vec<u16> = proxy
        .requests_on(("GET", "/pods"))
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [500, 500, 429, 409, 200]);
}

#[tokio::test]
async fn a_hung_request_leaves_other_connections_working_and_a_dropped_one_fails() {
    let (ns, proxy, client) = setup("proxy-hang").await;
    let path = format!("/api/v1/namespaces/{}/pods", ns.name);
    proxy.inject(Fault::hang(Route::new("GET", "/pods").query("limit=1")));
    let hung = tokio::spawn({
        let request = Request::get(format!("{path}?limit=1")).body(Body::empty());
        let client = client.clone();
        async move { client.send(request.expect("request")).await.is_err() }
    });
    proxy
        .wait_for("the hung request", WAIT, |log| {
            log.iter().find(|r| r.query == "limit=1").cloned()
        })
        .await;
    assert_eq!(get(&client, &path).await.0, 200, "another connection works");
    assert!(!hung.is_finished(), "the hung request is never answered");
    proxy.inject(Fault::drop_connection(("GET", "/pods")));
    let request = Request::get(&path).body(Body::empty()).expect("request");
    assert!(
        client.send(request).await.is_err(),
        "a dropped connection is an error"
    );
    proxy.inject(Fault::delay(("GET", "/pods"), Duration::from_millis(200)));
    let started = std::time::Instant::now();
    assert_eq!(get(&client, &path).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [0, 200, 0, 200], "hung and dropped stay 0");
    drop(proxy);
    let failed = tokio::time::timeout(WAIT, hung)
        .await
        .expect("ended with the proxy");
    assert!(
        failed.expect("task"),
        "the hung request fails when the proxy drops"
    );
}

#[tokio::test]
async fn watches_are_cut_after_k_events_and_on_cue() {
    let (ns, proxy, client) = setup("proxy-watch").await;
    for name in ["a", "b", "c"] {
        create_pod(&ns, name).await;
    }
    let pods: Api<Pod> = Api::namespaced(client, &ns.name);
    proxy.inject(Fault::cut_watch_after(
        Route::new("GET", "/pods").query("watch=true"),
        2,
    ));
    let events: Vec<_> = pods
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch")
        .collect()
        .await;
    let added = events
        .iter()
        .filter(|e| matches!(e, Ok(WatchEvent::Added(_))))
        .count();
    // kube ends a watch stream cut mid-answer as it ends one the server closed.
    assert_eq!(
        (added, events.len()),
        (2, 2),
        "two events, then the cut: {events:?}"
    );

    let mut stream = pods
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch")
        .boxed();
    for _ in 0..3 {
        assert!(matches!(
            stream.try_next().await,
            Ok(Some(WatchEvent::Added(_)))
        ));
    }
    proxy.cut_watches();
    let rest = tokio::time::timeout(WAIT, stream.collect::<Vec<_>>()).await;
    let bookmarks_only = |r: &Vec<_>| r.iter().all(|e| matches!(e, Ok(WatchEvent::Bookmark(_))));
    assert!(
        rest.as_ref().is_ok_and(bookmarks_only),
        "the stream ends at once: {rest:?}"
    );
    let watches: Vec<u16> = proxy
        .requests()
        .iter()
        .filter(|r| r.watch)
        .map(|r| r.status)
        .collect();
    assert_eq!(watches, [200, 200]);
}

#[tokio::test]
async fn hostile_and_rewritten_answers() {
    let (ns, proxy, client) = setup("proxy-hostile").await;
    create_pod(&ns, "real").await;
    let path = format!("/api/v1/namespaces/{}/pods", ns.name);
    proxy.inject(Fault::respond(
        ("GET", "/pods"),
        200,
        Hostile::Huge(5 << 20),
    ));
    let (_, _, body) = get(&client, &path).await;
    let value: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(
        value["metadata"]["annotations"]["pad"]
            .as_str()
            .map(str::len),
        Some(5 << 20)
    );

    proxy.inject(Fault::respond(
        ("GET", "/pods"),
        200,
        Hostile::List {
            items: 3,
            item_bytes: 1000,
        },
    ));
    let (_, _, body) = get(&client, &path).await;
    let value: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(value["items"].as_array().map(Vec::len), Some(3));

    proxy.inject(Fault::respond(("GET", "/pods"), 200, Hostile::EndlessLine));
    let request = Request::get(path.as_str())
        .body(Body::empty())
        .expect("request");
    let mut body = client.send(request).await.expect("answer").into_body();
    let mut read = 0;
    while read < 4 << 20 {
        let frame = body.frame().await.expect("more").expect("a frame");
        let data = frame.into_data().expect("data");
        assert!(!data.contains(&b'\n'), "no line end, ever");
        read += data.len();
    }
    drop(body);

    // The reporter's ServiceAccount may list pods (not get one): the rewrite edits a list.
    proxy.inject(Fault::rewrite(("GET", "/pods"), |list| {
        list["items"][0]["metadata"]["name"] = json!("forged")
    }));
    let pods: Api<Pod> = Api::namespaced(client, &ns.name);
    let names = async || -> Vec<String> {
        let list = pods.list(&Default::default()).await.expect("list");
        list.items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect()
    };
    assert_eq!(names().await, ["forged"]);
    assert_eq!(names().await, ["real"]);
}
