//! The Job shapes ([docs/job-shapes.md](../../docs/job-shapes.md)) whose states a real node
//! cannot produce on cue: an evicted pod still terminating when its replacement has reported, a
//! Job re-created while
//! its old pod's reporter runs, three reporters finishing at the same instant, Indexed results
//! landing in a chosen order, a success policy met while other indexes run. The real Job
//! controller creates, replaces and indexes the pods; the test plays the kubelet (runs,
//! terminates and finishes pods) and starts one real reporter per pod, with the Job
//! ServiceAccount's token bound to the shipped ClusterRole. Each test checks the Job condition
//! as the API server stores it, each pod's own result condition, and the Events. The shapes a
//! real node does produce run on it in `node_job_shapes.rs`.
//!
//! The Job controller waits 10 s before it retries a failed pod (its fixed first back-off), so
//! the retry tests take that long.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use harness::control_plane::Cluster;
use harness::control_plane::adapter::{AdapterNamespace, adapter_namespace, condition, shaped_job};
use harness::control_plane::kubelet::{
    self, bind, evict, index, job_pods, name, pod_condition, wait_job_pods, wait_pod_condition,
};
use harness::process::Process;
use harness::reporter_process::{Reporter, reporter_vars};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PropagationPolicy};
use kube::runtime::watcher;
use serde_json::json;

/// Long enough for the Job controller's 10 s retry back-off on a loaded machine.
const WAIT: Duration = Duration::from_secs(90);
const ADAPTER: &str = "adapter";
const RESULT: &str = "status-reporter.hyperfleet.io/result";
const PASSED: &str =
    r#"{"status":"success","reason":"ChecksPassed","message":"All checks passed"}"#;

/// One pod of the Job, running, with its own (native sidecar) reporter.
struct Attempt {
    name: String,
    results: PathBuf,
    reporter: Reporter,
}

/// Plays the kubelet for `pod`: it runs, and its reporter starts with the env the kubelet would
/// give it (its own results directory); returns once the reporter's pod watch delivered it.
async fn start(ns: &AdapterNamespace, pod: &Pod) -> Attempt {
    let pod_name = name(pod);
    let pod = kubelet::run_pod(&ns.client, &ns.name, &pod_name).await;
    start_reporter(ns, &pod)
}

/// Starts `pod`'s reporter as it is now (e.g. already terminating).
fn start_reporter(ns: &AdapterNamespace, pod: &Pod) -> Attempt {
    let pod_name = name(pod);
    let results = ns.results_dir(&pod_name);
    let reporter = ns.start_reporter(pod, &results, &[]);
    reporter.logs.wait_for(&["pod update"], WAIT);
    Attempt {
        name: pod_name,
        results,
        reporter,
    }
}

impl Attempt {
    /// The adapter writes `result` (renamed into place, as a careful adapter does).
    fn write(&self, result: &str) {
        let tmp = self.results.join(".partial");
        std::fs::write(&tmp, result).expect("write result");
        std::fs::rename(&tmp, self.results.join("adapter-result.json")).expect("rename");
    }

    /// The adapter writes `result`, then exits with `code`.
    async fn adapter_writes(&self, ns: &AdapterNamespace, result: &str, code: i32) {
        self.write(result);
        self.adapter_exits(ns, code).await;
    }

    /// The adapter exits with `code` (and no result file).
    async fn adapter_exits(&self, ns: &AdapterNamespace, code: i32) {
        let reason = if code == 0 { "Completed" } else { "Error" };
        kubelet::terminate(
            &ns.client, &ns.name, &self.name, ADAPTER, code, reason, None,
        )
        .await;
    }

    /// Waits for the reporter's report line (`reported: …`) containing `what`.
    fn reported(&self, what: &str) -> String {
        self.reporter.logs.wait_for(&["reported: ", what], WAIT)
    }

    /// The kubelet stops the native sidecar (it exits 0) and the pod ends in `phase`.
    async fn end(mut self, ns: &AdapterNamespace, phase: &str) {
        self.stop();
        kubelet::finish(&ns.client, &ns.name, &self.name, phase).await;
    }

    /// SIGTERM to the native sidecar, which exits 0.
    fn stop(&mut self) {
        self.reporter.signal("-TERM");
        let (code, logs) = self.reporter.wait_exit_with_logs(WAIT);
        assert_eq!(code, 0, "native sidecar exits 0 on SIGTERM; logs:\n{logs}");
    }
}

fn uid(job: &Job) -> String {
    job.metadata.uid.clone().expect("a created Job has a uid")
}

/// Waits for the Job's `Available` condition with `status` and `message`; returns the Job.
async fn wait_available(ns: &AdapterNamespace, job: &str, status: &str, message: &str) -> Job {
    ns.wait_job(job, &format!("Available={status} {message:?}"), WAIT, |j| {
        condition(j, "Available")
            .is_some_and(|c| c.status == status && c.message.as_deref() == Some(message))
    })
    .await
}

/// (status, reason, message) of the Job's `Available` condition.
fn available(job: &Job) -> (String, String, String) {
    let c = condition(job, "Available").expect("Available");
    (
        c.status,
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    )
}

/// (status, reason, message) of the result the reporter recorded on `pod` (waits for it).
async fn recorded(ns: &AdapterNamespace, pod: &str) -> (String, String, String) {
    let c = wait_pod_condition(&ns.client, &ns.name, pod, RESULT, WAIT).await;
    (
        c.status,
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    )
}

/// The messages of the reporter's Events on Job `job`.
async fn event_messages(ns: &AdapterNamespace, job: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(ns.client.clone(), &ns.name);
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(job)
                && e.reporting_component.as_deref() == Some("status-reporter")
        })
        .filter_map(|e| e.message)
        .collect()
}

/// Waits (bounded) for an Event on `job` whose message contains `part` (the Event follows the
/// write, best effort): looks again on every change of the namespace's Events.
async fn wait_event(ns: &AdapterNamespace, job: &str, part: &str) -> String {
    let api: Api<Event> = Api::namespaced(ns.client.clone(), &ns.name);
    let wait = async {
        let mut changes = std::pin::pin!(watcher(api, watcher::Config::default()));
        loop {
            if let Some(m) = event_messages(ns, job)
                .await
                .into_iter()
                .find(|m| m.contains(part))
            {
                return m;
            }
            if changes.next().await.is_none() {
                panic!("the Event watch in {} ended", ns.name);
            }
        }
    };
    match tokio::time::timeout(WAIT, wait).await {
        Ok(message) => message,
        Err(_) => panic!(
            "no Event on Job {job} containing {part:?} within {WAIT:?}; its Events: {:?}",
            event_messages(ns, job).await
        ),
    }
}

/// ★ Replacement overlap: attempt 1's pod is evicted (`DisruptionTarget`) and stays
/// terminating; the real controller (`podReplacementPolicy: TerminatingOrFailed`, the default)
/// replaces it at once, the replacement succeeds, and attempt 1's last look comes later: it
/// records its outcome on its own pod and in an Event, and leaves `True` alone.
#[tokio::test]
async fn a_late_look_of_an_evicted_attempt_does_not_overwrite_its_replacement() {
    let ns = adapter_namespace(Cluster::shared(), "overlap").await;
    let job = ns
        .create_job(shaped_job(
            "overlap",
            "native",
            &[],
            json!({"backoffLimit": 2}),
        ))
        .await;
    assert_eq!(
        job.spec
            .as_ref()
            .and_then(|s| s.pod_replacement_policy.as_deref()),
        Some("TerminatingOrFailed"),
        "the default without a podFailurePolicy"
    );
    let first = job_pods(&ns.client, &ns.name, &uid(&job), 1, WAIT)
        .await
        .remove(0);
    let pod1 = name(&first);
    bind(&ns.client, &ns.name, &pod1, "status-reporter-test-node").await;
    kubelet::run_pod(&ns.client, &ns.name, &pod1).await;
    evict(&ns.client, &ns.name, &pod1).await;

    let pods = wait_job_pods(
        &ns.client,
        &ns.name,
        &uid(&job),
        "a replacement while the evicted pod terminates",
        WAIT,
        |pods| pods.len() >= 2,
    )
    .await;
    let evicted = pods.iter().find(|p| name(p) == pod1).expect("still there");
    assert!(
        evicted.metadata.deletion_timestamp.is_some()
            && pod_condition(evicted, "DisruptionTarget").is_some_and(|c| c.status == "True"),
        "attempt 1 is terminating after its eviction: {}",
        kubelet::describe(evicted)
    );
    let replacement = pods.iter().find(|p| name(p) != pod1).expect("replacement");
    let a2 = start(&ns, replacement).await;
    a2.adapter_writes(&ns, PASSED, 0).await;
    let before = wait_available(&ns, "overlap", "True", "All checks passed").await;

    // Attempt 1's reporter takes its last look only now.
    let evicted_now: Pod = Api::namespaced(ns.client.clone(), &ns.name)
        .get(&pod1)
        .await
        .expect("the evicted pod is still terminating");
    let mut a1 = start_reporter(&ns, &evicted_now);
    let line = a1.reported("superseded");
    assert!(line.contains(&a2.name), "{line}");
    let deleted = format!("Pod {pod1} was deleted before the adapter produced a result");
    assert_eq!(
        recorded(&ns, &pod1).await,
        ("False".into(), "AdapterTerminated".into(), deleted.clone())
    );
    wait_event(
        &ns,
        "overlap",
        &format!(
            "{deleted} (pod {pod1}, attempt 1; superseded by pod {}",
            a2.name
        ),
    )
    .await;
    let after: Job = Api::namespaced(ns.client.clone(), &ns.name)
        .get("overlap")
        .await
        .expect("job");
    assert_eq!(
        condition(&after, "Available"),
        condition(&before, "Available"),
        "True and its lastTransitionTime are untouched"
    );
    a1.stop();
    a2.end(&ns, "Succeeded").await;
}

/// ★ Re-created Job: the Job is deleted (its pod orphaned, its reporter still running) and
/// re-created under the same name; the old pod's reporter writes nothing to the new Job and
/// says why, naming both uids.
#[tokio::test]
async fn a_recreated_job_gets_nothing_from_the_old_jobs_pod() {
    let ns = adapter_namespace(Cluster::shared(), "recreated").await;
    let old = ns
        .create_job(shaped_job("recreated", "classic", &[], json!({})))
        .await;
    let old_pod = job_pods(&ns.client, &ns.name, &uid(&old), 1, WAIT)
        .await
        .remove(0);
    let mut a = start(&ns, &old_pod).await;

    let jobs: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    let orphan = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteParams::default()
    };
    jobs.delete("recreated", &orphan).await.expect("delete Job");
    let old_uid = uid(&old);
    let gone = kube::runtime::wait::await_condition(
        jobs.clone(),
        "recreated",
        kube::runtime::wait::conditions::is_deleted(&old_uid),
    );
    tokio::time::timeout(WAIT, gone)
        .await
        .expect("the old Job is gone in time")
        .expect("watch");
    let new = ns
        .create_job(shaped_job("recreated", "classic", &[], json!({})))
        .await;
    let new_pods = job_pods(&ns.client, &ns.name, &uid(&new), 1, WAIT).await;
    assert_ne!(
        name(&new_pods[0]),
        a.name,
        "the new Job has a pod of its own"
    );

    a.write(PASSED);
    let (code, logs) = a.reporter.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "ends as after a permanent error; logs:\n{logs}");
    assert!(
        logs.contains(&format!("has uid {}", uid(&new)))
            && logs.contains(&format!("the Job with uid {} (JOB_UID)", uid(&old)))
            && logs
                .contains("deleted and re-created under the same name; nothing is written to it"),
        "a clear log line naming both uids; logs:\n{logs}"
    );
    let now = jobs.get("recreated").await.expect("new job");
    assert_eq!(
        condition(&now, "Available"),
        None,
        "nothing written to the new Job"
    );
    assert!(event_messages(&ns, "recreated").await.is_empty());
}

const SHARD_OK: &str = r#"{"status":"success","reason":"ShardChecked","message":"zone ok"}"#;

fn indexed(completions: u32) -> serde_json::Value {
    json!({
        "completions": completions,
        "parallelism": completions,
        "completionMode": "Indexed",
        "backoffLimit": null,
    })
}

/// The pods by index (the newest of each), running with their reporters.
async fn start_shards(ns: &AdapterNamespace, pods: &[Pod]) -> Vec<Attempt> {
    let mut by_index: Vec<&Pod> = pods.iter().collect();
    by_index.sort_by_key(|p| index(p));
    let mut shards = Vec::new();
    for p in by_index {
        shards.push(start(ns, p).await);
    }
    shards
}

/// `status-reporter wait job/NAME -n NS -o json` with the admin kubeconfig (stdout piped).
fn start_wait(ns: &AdapterNamespace, job: &str) -> Process {
    let mut cmd = Command::new(harness::bin::path("status-reporter"));
    for var in reporter_vars().chain(["WAIT_NAMESPACE", "WAIT_TIMEOUT", "WAIT_OUTPUT"]) {
        cmd.env_remove(var);
    }
    cmd.env("KUBECONFIG", &Cluster::shared().kubeconfig)
        .args(["wait", &format!("job/{job}"), "-n", &ns.name, "-o", "json"])
        .args(["--timeout", "3m"])
        .stdout(Stdio::piped());
    Process::spawn(&mut cmd, "status-reporter wait")
}

/// ★ Indexed, `completions: 3`: 0 ✓, 1 ✓ → `Unknown 2/3`; 2 ✗ → `False index 2: …`; with
/// `backoffLimitPerIndex: 1` index 2's retry (created by the real controller) succeeds → `True`.
/// `status-reporter wait` follows it on the real API: progress on stderr (`False` is not final
/// while the Job may retry), `True` on stdout, exit 0.
#[tokio::test]
async fn indexed_shards_aggregate_per_index_and_a_retried_index_counts_its_newest_attempt() {
    let ns = adapter_namespace(Cluster::shared(), "shards").await;
    let mut spec = indexed(3);
    spec["backoffLimitPerIndex"] = json!(1);
    spec["maxFailedIndexes"] = json!(3);
    let job = ns
        .create_job(shaped_job("shards", "native", &[], spec))
        .await;
    let mut waiting = start_wait(&ns, "shards");
    let pods = job_pods(&ns.client, &ns.name, &uid(&job), 3, WAIT).await;
    let mut shards = start_shards(&ns, &pods).await.into_iter();
    let (s0, s1, s2) = (
        shards.next().expect("0"),
        shards.next().expect("1"),
        shards.next().expect("2"),
    );

    s0.adapter_writes(&ns, SHARD_OK, 0).await;
    wait_available(&ns, "shards", "Unknown", "1/3 indexes reported").await;
    s1.adapter_writes(&ns, SHARD_OK, 0).await;
    let j = wait_available(&ns, "shards", "Unknown", "2/3 indexes reported").await;
    assert_eq!(available(&j).1, "AwaitingResults");
    s2.adapter_writes(
        &ns,
        r#"{"status":"failure","reason":"ZoneMissing","message":"zone c not found"}"#,
        1,
    )
    .await;
    let j = wait_available(&ns, "shards", "False", "index 2: zone c not found").await;
    assert_eq!(available(&j).1, "ZoneMissing");
    let failed_pod = s2.name.clone();
    s0.end(&ns, "Succeeded").await;
    s1.end(&ns, "Succeeded").await;
    s2.end(&ns, "Failed").await;

    let pods = wait_job_pods(
        &ns.client,
        &ns.name,
        &uid(&job),
        "index 2's retry",
        WAIT,
        |pods| pods.iter().filter(|p| index(p) == Some(2)).count() >= 2,
    )
    .await;
    let retry = pods
        .iter()
        .find(|p| index(p) == Some(2) && name(p) != failed_pod)
        .expect("retry");
    let s2b = start(&ns, retry).await;
    s2b.adapter_writes(&ns, SHARD_OK, 0).await;
    let j = wait_available(&ns, "shards", "True", "3/3 indexes succeeded: zone ok").await;
    assert_eq!(available(&j).1, "ShardChecked");
    assert_eq!(
        recorded(&ns, &failed_pod).await,
        (
            "False".into(),
            "ZoneMissing".into(),
            "zone c not found".into()
        )
    );
    wait_event(
        &ns,
        "shards",
        &format!("zone ok (pod {}, index 2, attempt 2)", s2b.name),
    )
    .await;
    s2b.end(&ns, "Succeeded").await;
    ns.wait_job("shards", "Complete", WAIT, |j| {
        condition(j, "Complete").is_some()
    })
    .await;

    let code = waiting.wait_exit(WAIT).code();
    let mut out = String::new();
    if let Some(mut stdout) = waiting.take_stdout() {
        stdout.read_to_string(&mut out).expect("wait's stdout");
    }
    let progress = waiting.logs.text();
    assert_eq!(code, Some(0), "wait: stdout {out}; stderr:\n{progress}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(
        (&answer["status"], &answer["message"], &answer["reported"]),
        (
            &json!("True"),
            &json!("3/3 indexes succeeded: zone ok"),
            &json!(true)
        )
    );
    assert!(
        progress.contains("Available=Unknown AwaitingResults: 2/3 indexes reported")
            && progress.contains("Available=False ZoneMissing: index 2: zone c not found (the Job has not finished: a retry may still succeed)"),
        "wait's progress:\n{progress}"
    );
}

/// ★ Three reporters finishing at the same moment converge on the right aggregate: each
/// records on its pod, reads the Job and the pods, and a 409 makes it read both again, so the
/// last writer has seen every result. Ten rounds, each a new Indexed Job whose three results
/// land back to back.
#[tokio::test]
async fn three_reporters_finishing_at_once_converge_ten_times_out_of_ten() {
    let ns = adapter_namespace(Cluster::shared(), "converge").await;
    for round in 0..10 {
        let job_name = format!("converge-{round}");
        let job = ns
            .create_job(shaped_job(&job_name, "native", &[], indexed(3)))
            .await;
        let pods = job_pods(&ns.client, &ns.name, &uid(&job), 3, WAIT).await;
        let mut shards = start_shards(&ns, &pods).await;
        for s in &shards {
            s.write(SHARD_OK);
        }
        wait_available(&ns, &job_name, "True", "3/3 indexes succeeded: zone ok").await;
        // Every reporter is done: nothing can overwrite the aggregate any more.
        for s in &shards {
            s.reported("");
        }
        let settled: Job = Api::namespaced(ns.client.clone(), &ns.name)
            .get(&job_name)
            .await
            .expect("job");
        assert_eq!(
            available(&settled),
            (
                "True".into(),
                "ShardChecked".into(),
                "3/3 indexes succeeded: zone ok".into()
            ),
            "round {round}"
        );
        for s in &mut shards {
            s.stop();
        }
    }
}

/// ★ `successPolicy` with `succeededIndexes: "0"` → `True` once index 0 succeeded; the other
/// indexes' pods, which the real controller then deletes, leave it `True`.
#[tokio::test]
async fn a_success_policy_is_true_once_its_indexes_succeeded() {
    let ns = adapter_namespace(Cluster::shared(), "leader").await;
    let mut spec = indexed(3);
    spec["successPolicy"] = json!({"rules": [{"succeededIndexes": "0"}]});
    let job = ns
        .create_job(shaped_job("leader", "native", &[], spec))
        .await;
    let pods = job_pods(&ns.client, &ns.name, &uid(&job), 3, WAIT).await;
    let mut shards = start_shards(&ns, &pods).await.into_iter();
    let leader = shards.next().expect("0");
    let mut others: Vec<Attempt> = shards.collect();
    leader
        .adapter_writes(
            &ns,
            r#"{"status":"success","reason":"LeaderElected","message":"index 0 leads"}"#,
            0,
        )
        .await;
    let j = wait_available(
        &ns,
        "leader",
        "True",
        "1/3 indexes succeeded: index 0 leads",
    )
    .await;
    assert_eq!(available(&j).1, "LeaderElected");

    leader.end(&ns, "Succeeded").await;
    let done = ns
        .wait_job("leader", "Complete", WAIT, |j| {
            condition(j, "Complete").is_some()
        })
        .await;
    assert!(condition(&done, "SuccessCriteriaMet").is_some());
    // The controller deleted the other pods; their reporters report that, and the aggregate
    // stays True.
    for o in &others {
        o.reported("");
    }
    let after: Job = Api::namespaced(ns.client.clone(), &ns.name)
        .get("leader")
        .await
        .expect("job");
    assert_eq!(
        available(&after),
        (
            "True".into(),
            "LeaderElected".into(),
            "1/3 indexes succeeded: index 0 leads".into()
        )
    );
    for o in &mut others {
        o.stop();
    }
}
