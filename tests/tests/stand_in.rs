//! The stand-in, driven by the real kube 5 client: if kube-rs accepts these answers, the
//! reporter (which uses the same client) sees a faithful apiserver.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use serde_json::{Value, json};
use stand_in::fixtures::{JobBuilder, PodBuilder};
use stand_in::{Fault, StandIn};

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(10);

async fn client_with(stand: &StandIn, read_timeout: Option<Duration>) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = stand.write_kubeconfig(dir.path());
    let kubeconfig = Kubeconfig::read_from(&path).expect("stand-in kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("stand-in kubeconfig is a valid config");
    assert_eq!(config.default_namespace, NS);
    if read_timeout.is_some() {
        config.read_timeout = read_timeout;
    }
    kube::Client::try_from(config).expect("client from config")
}

async fn client(stand: &StandIn) -> kube::Client {
    client_with(stand, None).await
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error Status, got {other:?}"),
    }
}

/// Asserts the Job's conditions are exactly `want` as (type, status), in order.
fn assert_conditions(job: &Job, want: &[(&str, &str)]) {
    let got: Vec<(&str, &str)> = job
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .map(|c| (c.type_.as_str(), c.status.as_str()))
        .collect();
    assert_eq!(got, want);
}

fn complete() -> Value {
    json!({"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"})
}

fn available(status: &str) -> Value {
    json!({"type": "Available", "status": status, "reason": "Checked", "message": "adapter said so"})
}

#[tokio::test]
async fn get_returns_the_job_with_server_metadata() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").annotation("a", "b").build());
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let job = jobs.get("j").await.unwrap();
    assert_eq!(job.metadata.name.as_deref(), Some("j"));
    assert!(job.metadata.uid.as_deref().is_some_and(|u| !u.is_empty()));
    assert_eq!(
        job.metadata.resource_version,
        Some(stand.resource_version().to_string())
    );
    assert!(job.metadata.creation_timestamp.is_some());
    assert_eq!(job.metadata.annotations.unwrap()["a"], "b");
}

#[tokio::test]
async fn replace_status_writes_the_status() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").condition(complete()).build());
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let mut job = jobs.get("j").await.unwrap();
    let mut with_available = job.status.clone().unwrap();
    with_available
        .conditions
        .as_mut()
        .unwrap()
        .push(serde_json::from_value(available("True")).unwrap());
    job.status = Some(with_available);
    let written = jobs
        .replace_status("j", &PostParams::default(), &job)
        .await
        .unwrap();
    assert_conditions(&written, &[("Complete", "True"), ("Available", "True")]);
    assert_eq!(
        stand.job_condition(NS, "j", "Available").unwrap()["reason"],
        "Checked"
    );
    assert_ne!(
        written.metadata.resource_version,
        job.metadata.resource_version
    );
}

#[tokio::test]
async fn strategic_patch_merges_conditions_by_type() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").condition(complete()).build());
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let patch = json!({"status": {"conditions": [available("False")]}});
    let written = jobs
        .patch_status("j", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    assert_conditions(&written, &[("Complete", "True"), ("Available", "False")]);
    // Same type again: updated in place, not appended.
    let patch = json!({"status": {"conditions": [available("True")]}});
    let written = jobs
        .patch_status("j", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    assert_conditions(&written, &[("Complete", "True"), ("Available", "True")]);
}

#[tokio::test]
async fn strategic_patch_with_a_stale_resource_version_conflicts() {
    let stand = StandIn::start();
    let created = stand.create_job(JobBuilder::new(NS, "j").build());
    stand.job_controller_set_condition(NS, "j", complete());
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let stale = created["metadata"]["resourceVersion"].as_str().unwrap();
    let patch = json!({"metadata": {"resourceVersion": stale}, "status": {"conditions": [available("True")]}});
    let status = api_error(
        jobs.patch_status("j", &PatchParams::default(), &Patch::Strategic(&patch))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(stand.job_condition(NS, "j", "Available").is_none());
}

#[tokio::test]
async fn stale_put_is_a_conflict_with_the_real_message() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").build());
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let mut job = jobs.get("j").await.unwrap();
    stand.job_controller_set_condition(NS, "j", complete());
    job.status = Some(serde_json::from_value(json!({"conditions": [available("True")]})).unwrap());
    let status = api_error(jobs.replace_status("j", &PostParams::default(), &job).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on jobs.batch \"j\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let details = status.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("j", "batch", "jobs")
    );
    // The Job controller's condition survived the refused write.
    assert!(stand.job_condition(NS, "j", "Complete").is_some());
    assert!(stand.job_condition(NS, "j", "Available").is_none());
}

#[tokio::test]
async fn missing_objects_are_not_found() {
    let stand = StandIn::start();
    let c = client(&stand).await;
    let status = api_error(Api::<Job>::namespaced(c.clone(), NS).get("nope").await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "jobs.batch \"nope\" not found");
    let patch = json!({"status": {"conditions": [available("True")]}});
    let status = api_error(
        Api::<Job>::namespaced(c.clone(), NS)
            .patch_status("nope", &PatchParams::default(), &Patch::Strategic(&patch))
            .await,
    );
    assert_eq!(status.code, 404);
    let status = api_error(Api::<Pod>::namespaced(c, NS).get("nope").await);
    assert_eq!(status.message, "pods \"nope\" not found");
}

#[tokio::test]
async fn invalid_results_are_rejected_with_a_field_path() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").condition(complete()).build());
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let bad_status = json!({"status": {"conditions": [{"type": "Available", "status": "Maybe"}]}});
    let status = api_error(
        jobs.patch_status("j", &PatchParams::default(), &Patch::Strategic(&bad_status))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("status.conditions[1].status"),
        "{}",
        status.message
    );
    // The reporter writes with PUT: the whole status, validated the same way.
    let put = |status: Value| {
        let mut job = serde_json::to_value(JobBuilder::new(NS, "j").build()).unwrap();
        job["status"] = status;
        serde_json::from_value::<Job>(job).unwrap()
    };
    let no_type = put(json!({"conditions": [{"status": "True"}]}));
    let status = api_error(
        jobs.replace_status("j", &PostParams::default(), &no_type)
            .await,
    );
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("status.conditions[0]"),
        "{}",
        status.message
    );
    // A field of the wrong type cannot be built with the typed client: send the bytes.
    let mut wrong_type = stand.job(NS, "j").unwrap();
    wrong_type["status"]["succeeded"] = json!("many");
    let (code, body) = raw(
        &stand,
        "PUT",
        "/apis/batch/v1/namespaces/default/jobs/j/status",
        Some("application/json"),
        &wrong_type.to_string(),
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("\"reason\":\"Invalid\"") && body.contains("status.succeeded"),
        "{body}"
    );
    assert_eq!(
        stand.job(NS, "j").unwrap()["status"]["conditions"],
        json!([complete()])
    );
}

#[test]
fn non_json_bodies_and_unknown_media_types_are_refused() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").build());
    let path = "/apis/batch/v1/namespaces/default/jobs/j/status";
    let (code, body) = raw(
        &stand,
        "PATCH",
        path,
        Some("application/strategic-merge-patch+json"),
        "{not json",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"reason\":\"BadRequest\""), "{body}");
    // What the reporter never sends is refused, not half-implemented.
    for other in [
        "text/plain",
        "application/merge-patch+json",
        "application/json-patch+json",
    ] {
        let (code, body) = raw(&stand, "PATCH", path, Some(other), "{}");
        assert_eq!(code, 415, "{other}: {body}");
        assert!(body.contains("UnsupportedMediaType"), "{body}");
    }
    let (code, body) = raw(
        &stand,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments",
        None,
        "",
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("\"kind\":\"Status\""), "{body}");
}

#[tokio::test]
async fn status_writes_do_not_change_spec_or_labels() {
    let stand = StandIn::start();
    stand.create_job(
        JobBuilder::new(NS, "j")
            .label("team", "a")
            .backoff_limit(1)
            .build(),
    );
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let mut job = jobs.get("j").await.unwrap();
    job.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("team".into(), "b".into());
    job.spec.as_mut().unwrap().backoff_limit = Some(9);
    job.status = Some(serde_json::from_value(json!({"conditions": [available("True")]})).unwrap());
    jobs.replace_status("j", &PostParams::default(), &job)
        .await
        .unwrap();
    let patch = json!({"metadata": {"labels": {"team": "c"}}, "spec": {"backoffLimit": 7}, "status": {"active": 1}});
    jobs.patch_status("j", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let stored = stand.job(NS, "j").unwrap();
    assert_eq!(stored["metadata"]["labels"]["team"], "a");
    assert_eq!(stored["spec"]["backoffLimit"], 1);
    assert_eq!(stored["status"]["active"], 1);
    assert_eq!(stored["status"]["conditions"][0]["type"], "Available");
    // And the main resource ignores .status.
    let patch = json!({"metadata": {"labels": {"team": "d"}}, "status": {"active": 5}});
    jobs.patch("j", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let stored = stand.job(NS, "j").unwrap();
    assert_eq!(
        (
            stored["metadata"]["labels"]["team"].clone(),
            stored["status"]["active"].clone()
        ),
        (json!("d"), json!(1))
    );
}

#[tokio::test]
async fn identical_writes_are_no_ops() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").build());
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let patch = json!({"status": {"conditions": [available("True")]}});
    let first = jobs
        .patch_status("j", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let second = jobs
        .patch_status("j", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    assert_eq!(
        first.metadata.resource_version,
        second.metadata.resource_version
    );
}

#[tokio::test]
async fn pods_list_by_field_and_label_selector() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").build());
    stand.create_pod(PodBuilder::new(NS, "p1").job_name("j").build());
    stand.create_pod(PodBuilder::new(NS, "p2").job_name("other").build());
    stand.create_pod(PodBuilder::new("elsewhere", "p1").build());
    let pods: Api<Pod> = Api::namespaced(client(&stand).await, NS);
    let list = pods
        .list(&ListParams::default().fields("metadata.name=p1"))
        .await
        .unwrap();
    let names: Vec<_> = list
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["p1"]);
    assert_eq!(
        list.metadata.resource_version,
        Some(stand.resource_version().to_string())
    );
    let owner = &list.items[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        Some(owner.uid.clone()),
        stand.job(NS, "j").unwrap()["metadata"]["uid"]
            .as_str()
            .map(String::from)
    );
    let list = pods
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=other"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("p2"));
}

/// Polls the watcher until `pred` holds for the pod, skipping errors (which a cut produces).
async fn next_matching<S>(stream: &mut S, pred: impl Fn(&Pod) -> bool) -> Pod
where
    S: futures::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Unpin,
{
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = stream.next().await {
            let pods = match event {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => vec![p],
                _ => continue,
            };
            if let Some(p) = pods.into_iter().find(|p| pred(p)) {
                return Some(p);
            }
        }
        None
    })
    .await;
    found
        .expect("timed out waiting for a watch event")
        .expect("watch stream ended")
}

/// Keeps polling the watcher (a lazy stream) until its watch request is open on the server.
async fn drive_until_watching<S>(stream: &mut S, stand: &StandIn)
where
    S: futures::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Unpin,
{
    tokio::select! {
        () = stand.wait_for("the watch to open", WAIT, |s| (s.open_watches() == 1).then_some(())) => {}
        () = async { while stream.next().await.is_some() {} } => panic!("the watcher stream ended"),
    }
}

fn adapter_state(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let state = statuses
        .iter()
        .find(|s| s.name == "adapter")?
        .state
        .as_ref()?;
    if let Some(t) = &state.terminated {
        return Some(format!(
            "terminated:{}:{}",
            t.exit_code,
            t.reason.clone().unwrap_or_default()
        ));
    }
    if let Some(w) = &state.waiting {
        return Some(format!("waiting:{}", w.reason.clone().unwrap_or_default()));
    }
    state.running.as_ref().map(|_| "running".to_owned())
}

fn count(stand: &StandIn, f: impl Fn(&stand_in::LoggedRequest) -> bool) -> usize {
    stand.requests().iter().filter(|r| f(r)).count()
}

fn is_list(r: &stand_in::LoggedRequest) -> bool {
    r.method == "GET" && r.path.ends_with("/pods") && !r.watch
}

#[tokio::test]
async fn watcher_sees_the_kubelet_helpers_changes() {
    let stand = StandIn::start();
    stand.create_pod(
        PodBuilder::new(NS, "p1")
            .container("adapter")
            .init_sidecar("reporter")
            .build(),
    );
    stand.create_pod(PodBuilder::new(NS, "p2").build());
    let pods: Api<Pod> = Api::namespaced(client(&stand).await, NS);
    let mut stream = watcher(pods, watcher::Config::default().fields("metadata.name=p1")).boxed();
    next_matching(&mut stream, |p| p.metadata.name.as_deref() == Some("p1")).await;
    stand.set_container_waiting(NS, "p1", "adapter", "ErrImagePull", "pull failed");
    next_matching(&mut stream, |p| {
        adapter_state(p).as_deref() == Some("waiting:ErrImagePull")
    })
    .await;
    stand.set_container_running(NS, "p1", "adapter");
    next_matching(&mut stream, |p| {
        adapter_state(p).as_deref() == Some("running")
    })
    .await;
    stand.set_container_running(NS, "p1", "reporter");
    let pod = next_matching(&mut stream, |p| {
        p.status
            .as_ref()
            .and_then(|s| s.init_container_statuses.as_ref())
            .is_some_and(|s| s[0].started == Some(true))
    })
    .await;
    assert_eq!(
        pod.status.unwrap().init_container_statuses.unwrap()[0].name,
        "reporter"
    );
    stand.set_container_terminated(NS, "p1", "adapter", 137, "OOMKilled", "");
    next_matching(&mut stream, |p| {
        adapter_state(p).as_deref() == Some("terminated:137:OOMKilled")
    })
    .await;
    stand.set_pod_phase(NS, "p1", "Failed", Some("Evicted"), Some("low on memory"));
    let pod = next_matching(&mut stream, |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
    })
    .await;
    assert_eq!(pod.status.unwrap().reason.as_deref(), Some("Evicted"));
    stand.update_pod_status(NS, "p2", |s| s["phase"] = "Running".into());
    stand.delete_pod(NS, "p1");
    let deleted = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(watcher::Event::Delete(p))) = stream.next().await {
                return p;
            }
        }
    })
    .await
    .expect("a Delete event for p1");
    assert!(deleted.metadata.deletion_timestamp.is_some());
    assert!(stand.pod(NS, "p1").is_none());
}

#[test]
fn restarts_are_counted_like_the_kubelet() {
    let stand = StandIn::start();
    stand.create_pod(PodBuilder::new(NS, "p").restart_policy("OnFailure").build());
    let restarts = |s: &StandIn| {
        s.pod(NS, "p").unwrap()["status"]["containerStatuses"][0]["restartCount"].clone()
    };
    stand.set_container_running(NS, "p", "adapter");
    stand.set_container_terminated(NS, "p", "adapter", 1, "Error", "");
    assert_eq!(restarts(&stand), 0);
    stand.set_container_terminated(NS, "p", "adapter", 1, "Error", "");
    assert_eq!(restarts(&stand), 1);
    stand.set_container_waiting(NS, "p", "adapter", "CrashLoopBackOff", "back-off");
    assert_eq!(restarts(&stand), 2);
    let pod = stand.pod(NS, "p").unwrap();
    assert_eq!(
        pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        1
    );
}

#[tokio::test]
async fn bookmarks_arrive_for_writes_the_watch_does_not_see() {
    let stand = StandIn::start();
    stand.create_pod(PodBuilder::new(NS, "p1").build());
    let pods: Api<Pod> = Api::namespaced(client(&stand).await, NS);
    let wp = WatchParams::default()
        .fields("metadata.name=p1")
        .timeout(60);
    let mut stream = pods.watch(&wp, "0").await.unwrap().boxed();
    let first = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(first, WatchEvent::Added(ref p) if p.metadata.name.as_deref() == Some("p1")),
        "{first:?}"
    );
    stand.create_pod(PodBuilder::new(NS, "p2").build());
    let next = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match next {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata.resource_version,
            stand.resource_version().to_string()
        ),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    let logged = stand.requests().into_iter().find(|r| r.watch).unwrap();
    assert!(logged.query.unwrap().contains("allowWatchBookmarks=true"));
    assert_eq!(logged.status, 200);
}

#[tokio::test]
async fn watcher_resumes_after_cut_watches_without_relisting() {
    let stand = StandIn::start();
    stand.create_pod(PodBuilder::new(NS, "p1").build());
    let pods: Api<Pod> = Api::namespaced(client(&stand).await, NS);
    let mut stream = watcher(pods, watcher::Config::default().fields("metadata.name=p1")).boxed();
    next_matching(&mut stream, |p| p.metadata.name.as_deref() == Some("p1")).await;
    drive_until_watching(&mut stream, &stand).await;
    // The watcher is lazy: while we don't poll it, the cut and the write happen "offline".
    stand.cut_watches();
    stand.set_container_running(NS, "p1", "adapter");
    next_matching(&mut stream, |p| {
        adapter_state(p).as_deref() == Some("running")
    })
    .await;
    assert_eq!(count(&stand, is_list), 1, "{:#?}", stand.requests());
    assert!(count(&stand, |r| r.watch) >= 2);
}

#[tokio::test]
async fn watch_from_a_compacted_version_gets_410_and_the_watcher_relists() {
    let stand = StandIn::start();
    let created = stand.create_pod(PodBuilder::new(NS, "p1").build());
    let old_rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    stand.set_container_running(NS, "p1", "adapter");
    stand.compact_history();
    let pods: Api<Pod> = Api::namespaced(client(&stand).await, NS);
    // A raw resume from before the compaction: an ERROR event carrying 410 Expired.
    let wp = WatchParams::default().fields("metadata.name=p1");
    let mut raw = pods.watch(&wp, &old_rv).await.unwrap().boxed();
    match tokio::time::timeout(WAIT, raw.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // The watcher: cut while it is not polled, write, compact: its resume gets 410, it relists.
    let mut stream = watcher(pods, watcher::Config::default().fields("metadata.name=p1")).boxed();
    next_matching(&mut stream, |p| {
        adapter_state(p).as_deref() == Some("running")
    })
    .await;
    drive_until_watching(&mut stream, &stand).await;
    stand.cut_watches();
    stand.set_container_terminated(NS, "p1", "adapter", 0, "Completed", "");
    stand.compact_history();
    next_matching(&mut stream, |p| {
        adapter_state(p).as_deref() == Some("terminated:0:Completed")
    })
    .await;
    assert_eq!(count(&stand, is_list), 2, "{:#?}", stand.requests());
}

#[tokio::test]
async fn watch_timeout_seconds_ends_the_stream() {
    let stand = StandIn::start();
    let pods: Api<Pod> = Api::namespaced(client(&stand).await, NS);
    let wp = WatchParams::default().timeout(1);
    let mut stream = pods.watch(&wp, "0").await.unwrap().boxed();
    let end = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .expect("stream should end after 1s");
    assert!(matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test]
async fn fault_500_then_success() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").build());
    stand.inject_fault(Fault::status("GET", "/jobs/j", 500, 1));
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let status = api_error(jobs.get("j").await);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (500, "InternalError")
    );
    jobs.get("j").await.unwrap();
    let codes: Vec<u16> = stand.requests().iter().map(|r| r.status).collect();
    assert_eq!(codes, [500, 200]);
}

#[tokio::test]
async fn fault_429_carries_retry_after() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").build());
    let path = "/apis/batch/v1/namespaces/default/jobs/j/status";
    stand.inject_fault(Fault::status(None, "/status", 429, 1).retry_after(3));
    let (code, response) = raw(&stand, "GET", path, None, "");
    assert_eq!(code, 429, "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 3\r\n"),
        "{response}"
    );
    assert!(
        response.contains("\"reason\":\"TooManyRequests\""),
        "{response}"
    );
    // kube 5 clients retry 429/503/504 themselves, honouring Retry-After: the caller sees success.
    stand.inject_fault(Fault::status(None, "/status", 429, 1).retry_after(0));
    Api::<Job>::namespaced(client(&stand).await, NS)
        .get_status("j")
        .await
        .unwrap();
    let logged: Vec<u16> = stand.requests().into_iter().map(|r| r.status).collect();
    assert_eq!(logged, [429, 429, 200]);
}

#[tokio::test]
async fn fault_hang_times_out_the_client_but_not_other_requests() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "hung").build());
    stand.create_job(JobBuilder::new(NS, "fine").build());
    stand.inject_fault(Fault::hang("GET", "/jobs/hung", 1));
    let jobs: Api<Job> = Api::namespaced(
        client_with(&stand, Some(Duration::from_millis(1500))).await,
        NS,
    );
    let hung = tokio::spawn({
        let jobs = jobs.clone();
        async move { jobs.get("hung").await }
    });
    stand
        .wait_for("the hung request to arrive", WAIT, |s| {
            s.requests()
                .iter()
                .any(|r| r.path.ends_with("/jobs/hung"))
                .then_some(())
        })
        .await;
    // While one request hangs, another is served.
    jobs.get("fine").await.unwrap();
    assert!(!hung.is_finished());
    let result = tokio::time::timeout(WAIT, hung)
        .await
        .expect("the client gives up")
        .unwrap();
    assert!(result.is_err(), "{result:?}");
    assert!(!matches!(result, Err(kube::Error::Api(_))), "{result:?}");
    let hung_log = stand
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/jobs/hung"))
        .unwrap();
    assert_eq!(hung_log.status, 0);
}

#[tokio::test]
async fn fault_drop_connection_is_a_client_error() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").build());
    stand.inject_fault(Fault::drop("GET", "/jobs/j", 1));
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let result = jobs.get("j").await;
    assert!(
        result.is_err() && !matches!(result, Err(kube::Error::Api(_))),
        "{result:?}"
    );
    jobs.get("j").await.unwrap();
    let codes: Vec<u16> = stand.requests().iter().map(|r| r.status).collect();
    assert_eq!(codes, [0, 200]);
}

#[tokio::test]
async fn events_are_created_and_validated() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").build());
    let c = client(&stand).await;
    let event = |reason: Option<&str>| -> CoreEvent {
        serde_json::from_value(json!({
            "metadata": {"generateName": "j."},
            "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "namespace": NS},
            "reason": reason, "message": "ok", "type": "Normal",
        }))
        .unwrap()
    };
    let events_api = Api::<CoreEvent>::namespaced(c.clone(), NS);
    let created = events_api
        .create(&PostParams::default(), &event(Some("AdapterSucceeded")))
        .await
        .unwrap();
    let name = created.metadata.name.clone().unwrap();
    assert!(name.starts_with("j."), "{name}");
    let reasons: Vec<String> = stand
        .events()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons, ["AdapterSucceeded"]);
    let mut again = event(Some("AdapterSucceeded"));
    again.metadata.generate_name = None;
    again.metadata.name = Some(name);
    let status = api_error(events_api.create(&PostParams::default(), &again).await);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    let status = api_error(
        events_api
            .create(&PostParams::default(), &event(None))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(status.message.contains("reason"), "{}", status.message);
    let (code, body) = raw(
        &stand,
        "GET",
        &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
        None,
        "",
    );
    assert_eq!(code, 404, "events.k8s.io is not served: {body}");
}

#[tokio::test]
async fn request_log_records_what_was_sent() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").build());
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let patch = json!({"status": {"conditions": [available("True")]}});
    jobs.patch_status("j", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let log = stand.requests();
    assert_eq!(log.len(), 1, "{log:#?}");
    let r = &log[0];
    assert_eq!(r.method, "PATCH");
    assert_eq!(r.path, "/apis/batch/v1/namespaces/default/jobs/j/status");
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
    assert_eq!(serde_json::from_str::<Value>(&r.body).unwrap(), patch);
    assert_eq!((r.status, r.watch), (200, false));
}

#[test]
fn wait_for_blocking_wakes_on_changes_from_another_thread() {
    let stand = StandIn::start();
    stand.create_job(JobBuilder::new(NS, "j").build());
    let writer = {
        let stand = stand.clone();
        std::thread::spawn(move || stand.job_controller_set_condition(NS, "j", complete()))
    };
    let condition =
        stand.wait_for_blocking("Complete", WAIT, |s| s.job_condition(NS, "j", "Complete"));
    assert_eq!(condition["status"], "True");
    assert!(condition["lastTransitionTime"].is_string());
    writer.join().unwrap();
}

#[test]
#[should_panic(expected = "timed out after")]
fn wait_for_panics_with_the_request_log_on_timeout() {
    let stand = StandIn::start();
    stand.wait_for_blocking(
        "something that never happens",
        Duration::from_millis(50),
        |_| None::<()>,
    );
}

#[test]
fn bin_path_builds_the_reporter() {
    let path = stand_in::bin::path("status-reporter");
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.is_file());
    use std::os::unix::fs::PermissionsExt;
    assert!(
        meta.permissions().mode() & 0o111 != 0,
        "{} is not executable",
        path.display()
    );
}

/// One raw HTTP/1.1 exchange, for answers the kube client would not show verbatim.
fn raw(
    stand: &StandIn,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = stand.url().trim_start_matches("http://").to_owned();
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let ct = content_type
        .map(|c| format!("content-type: {c}\r\n"))
        .unwrap_or_default();
    write!(
        socket,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{ct}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    let code = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, response)
}

#[tokio::test]
async fn watcher_with_streaming_lists_gets_initial_events_then_changes() {
    let stand = StandIn::start();
    stand.create_pod(PodBuilder::new(NS, "p1").build());
    let pods: Api<Pod> = Api::namespaced(client(&stand).await, NS);
    let config = watcher::Config::default()
        .fields("metadata.name=p1")
        .streaming_lists();
    let mut stream = watcher(pods, config).boxed();
    next_matching(&mut stream, |p| p.metadata.name.as_deref() == Some("p1")).await;
    drive_until_watching(&mut stream, &stand).await;
    stand.set_container_running(NS, "p1", "adapter");
    next_matching(&mut stream, |p| {
        adapter_state(p).as_deref() == Some("running")
    })
    .await;
    assert_eq!(count(&stand, is_list), 0, "{:#?}", stand.requests());
    let watch = stand.requests().into_iter().find(|r| r.watch).unwrap();
    assert!(watch.query.unwrap().contains("sendInitialEvents=true"));
}

#[test]
fn dropping_the_last_clone_stops_the_server() {
    use std::io::{Read, Write};
    let stand = StandIn::start();
    let other = stand.clone();
    let addr = stand.url().trim_start_matches("http://").to_owned();
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    write!(socket, "GET /api HTTP/1.1\r\nhost: {addr}\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(stand);
    // A clone keeps it alive: the kept-alive connection still answers.
    write!(socket, "GET /api HTTP/1.1\r\nhost: {addr}\r\n\r\n").unwrap();
    let n = socket.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(other);
    // The last clone gone, the runtime shuts down and the connection is closed.
    match socket.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection to close, got {other:?}"),
    }
}

#[tokio::test]
async fn create_generates_names_and_refuses_duplicates() {
    let stand = StandIn::start();
    let jobs: Api<Job> = Api::namespaced(client(&stand).await, NS);
    let mut job: Job = serde_json::from_value(JobBuilder::new(NS, "").build()).unwrap();
    job.metadata.name = None;
    job.metadata.generate_name = Some("adapter-".into());
    let created = jobs.create(&PostParams::default(), &job).await.unwrap();
    let name = created.metadata.name.clone().unwrap();
    assert!(
        name.starts_with("adapter-") && name.len() == "adapter-".len() + 5,
        "{name}"
    );
    assert_eq!(created.metadata.generation, Some(1));
    let status = api_error(jobs.create(&PostParams::default(), &created).await);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    let mut renamed = created.clone();
    renamed.metadata.name = Some("other".into());
    let status = api_error(jobs.replace(&name, &PostParams::default(), &renamed).await);
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    assert!(
        status
            .message
            .contains("does not match the name on the URL"),
        "{}",
        status.message
    );
    // A spec change through the main resource bumps the generation.
    let mut changed = created;
    changed.spec.as_mut().unwrap().backoff_limit = Some(4);
    let replaced = jobs
        .replace(&name, &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));
}
