//! `bench-node`: the reporter on the real node — our images run by the kubelet beside the
//! pinned control plane (profile `bench-node`, a cluster of its own).
//!
//! ```text
//! cargo run -p status-reporter-tests --bin bench-node -- [--runs 5] [--pods 50]
//! ```
//!
//! Measures, with the example Job injected as users inject it and a busybox adapter (what each
//! figure is and why: docs/benchmarks.md):
//! 1. node start: the images built, supervisor start → node `Ready`, import;
//! 2. the Job wall time the sidecar adds in each mode, and where it goes;
//! 3. result written → condition, adapter exit → condition (the adapter held on a FIFO);
//! 4. pod created → the reporter's pod watch (the audit log);
//! 5. the reporter's peak memory and CPU as its container's cgroup counts them;
//! 6. `--pods` Jobs at once on the one node.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::Either;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use harness::control_plane::adapter::{
    AdapterNamespace, SERVICE_ACCOUNT, adapter_namespace, condition, example_job,
};
use harness::control_plane::node_jobs::{
    Attempts, adapter_job, container_state, container_status, ended,
};
use harness::control_plane::{Cluster, Release, images, wait_object};
use harness::measure::{self, cpu_time, percentile, status_of};
use harness::reporter_process::Reporter;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(180);

/// The reporter on the real node.
#[derive(clap::Parser)]
struct Args {
    /// Runs per measurement.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Jobs at once in the last measurement.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
    pods: u16,
}
const LOG_LEVEL: &str = "status-reporter.hyperfleet.io/log-level";
const RESULT: &str = r#"{"status":"success","reason":"ChecksPassed","message":"ok"}"#;

/// The moments a watch saw, from the Job's creation.
#[derive(Default, Debug)]
struct Timeline {
    reporter_running: Option<Duration>,
    adapter_exited: Option<Duration>,
    reporter_exited: Option<Duration>,
    pod_ended: Option<Duration>,
    condition: Option<Duration>,
    complete: Option<Duration>,
}

/// Creates `job` in `ns` and follows it to `Complete`/`Failed`, calling `running` with its pod
/// once a watch sees the reporter and the adapter both running.
async fn follow(
    ns: &AdapterNamespace,
    job: Value,
    running: impl FnOnce(&Pod),
) -> (Timeline, Instant) {
    let name = job["metadata"]["name"].as_str().expect("name").to_owned();
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let jobs: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    let pod_events = watcher(
        pods,
        watcher::Config::default().labels(&format!("batch.kubernetes.io/job-name={name}")),
    )
    .applied_objects()
    .map_ok(Either::Left);
    let job_events = watcher(
        jobs,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .applied_objects()
    .map_ok(Either::Right);
    let mut events = std::pin::pin!(futures::stream::select(pod_events, job_events));
    let start = Instant::now();
    ns.create_job(job).await;
    let mut t = Timeline::default();
    let mut running = Some(running);
    let follow = async {
        while let Some(event) = events.next().await {
            let now = Some(start.elapsed());
            // The first moment `seen` holds.
            let mark = |moment: &mut Option<Duration>, seen: bool| {
                *moment = moment.or(now.filter(|_| seen));
            };
            match event.expect("watch") {
                Either::Left(pod) => {
                    let reporter = container_state(&pod, "status-reporter");
                    let adapter = container_state(&pod, "adapter");
                    mark(&mut t.reporter_running, reporter.running.is_some());
                    mark(&mut t.adapter_exited, adapter.terminated.is_some());
                    mark(&mut t.reporter_exited, reporter.terminated.is_some());
                    mark(&mut t.pod_ended, ended(&pod));
                    if t.reporter_running.is_some()
                        && adapter.running.is_some()
                        && let Some(running) = running.take()
                    {
                        running(&pod);
                    }
                }
                Either::Right(job) => {
                    mark(&mut t.condition, condition(&job, "Available").is_some());
                    let done = ["Complete", "Failed"]
                        .iter()
                        .any(|c| condition(&job, c).is_some_and(|c| c.status == "True"));
                    if done {
                        t.complete = now;
                        return;
                    }
                }
            }
        }
    };
    tokio::time::timeout(WAIT, follow)
        .await
        .unwrap_or_else(|_| panic!("Job {name} did not finish within {WAIT:?}"));
    (t, start)
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.0}", measure::ms(d)))
}

fn median(v: impl IntoIterator<Item = Duration>) -> Duration {
    percentile(&mut v.into_iter().collect::<Vec<_>>(), 50.0)
}

/// 2: the wall time added, interleaved runs.
async fn wall_time(ns: &AdapterNamespace, runs: usize) {
    println!(
        "\n2. Job wall time (create → Complete), {runs} interleaved runs; moments in ms from create:"
    );
    println!(
        "   {:<8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "mode", "run", "adapter", "reporter", "pod", "ours", "Complete"
    );
    let script = format!("printf '%s' '{RESULT}' > \"${{RESULTS_PATH:-/dev/null}}\"");
    let mut walls: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for run in 0..runs {
        for mode in ["none", "native", "classic"] {
            let name = format!("wall-{mode}-{run}");
            let job = adapter_job(&name, mode, &[], &script);
            let (t, _) = follow(ns, job, |_| {}).await;
            println!(
                "   {mode:<8} {run:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
                ms(t.adapter_exited),
                ms(t.reporter_exited),
                ms(t.pod_ended),
                ms(t.condition),
                ms(t.complete)
            );
            walls
                .entry(mode)
                .or_default()
                .push(t.complete.unwrap_or_default());
        }
    }
    println!(
        "   (adapter, reporter, pod: when a watch saw the kubelet report the adapter's exit, the sidecar's exit, the pod's end)"
    );
    let base = median(walls["none"].iter().copied());
    for (mode, v) in walls {
        let m = median(v);
        println!(
            "   median {mode:<8} {:>6.0} ms  (+{:.0} ms over none)",
            measure::ms(m),
            measure::ms(m) - measure::ms(base)
        );
    }
}

/// The reporter's own share of a native pod's end: an idling native reporter (the release
/// binary, on this machine, for a pod nobody runs) from SIGTERM to its exit.
async fn sigterm_to_exit(ns: &AdapterNamespace, runs: usize) {
    let bin = harness::bin::release_path("status-reporter");
    let mut times = Vec::new();
    for run in 0..runs {
        let name = format!("sigterm-{run}");
        ns.create_job(example_job(&name, "native", &[])).await;
        let (pod, results) = ns.running_pod(&name, WAIT).await;
        std::fs::write(results.join("adapter-result.json"), RESULT).expect("write result");
        let mut reporter = Reporter::spawn(ns.reporter_command(&bin, &pod, &results, &[]));
        reporter
            .logs
            .wait_for(&["idling until the pod shuts down"], WAIT);
        let t = Instant::now();
        reporter.signal("-TERM");
        assert_eq!(
            reporter.wait_exit(WAIT),
            0,
            "native reporter exits 0 on SIGTERM"
        );
        times.push(t.elapsed());
    }
    let text: Vec<String> = times.iter().map(|t| ms(Some(*t))).collect();
    println!(
        "   ours: an idling native reporter from SIGTERM to exit (kill(1) included): {} ms",
        text.join(", ")
    );
}

/// [`adapter_job`] with the FIFOs `go` and `end` at its `/attempts`: its script's `cat` of one
/// waits until the benchmark opens it ([`release`]).
fn held_job(
    name: &str,
    mode: &str,
    annotations: &[(&str, &str)],
    script: &str,
) -> (Value, Attempts) {
    let attempts = Attempts::default();
    let fifos = ["go", "end"].map(|f| attempts.path().join(f));
    let made = std::process::Command::new("mkfifo")
        .args(["-m", "666"])
        .args(&fifos)
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {fifos:?}");
    let mut job = adapter_job(name, mode, annotations, script);
    attempts.mount(&mut job);
    (job, attempts)
}

/// Opens `fifo` for writing and closes it: the adapter's `cat` blocked on it returns.
async fn release(fifo: PathBuf) -> Instant {
    let opened = tokio::fs::OpenOptions::new().write(true).open(&fifo).await;
    drop(opened.expect("open fifo"));
    Instant::now()
}

/// The reporter container's cgroup files, found by its container id.
fn cgroup_of(pod: &Pod, controller: &str) -> Option<PathBuf> {
    let id = container_status(pod, "status-reporter")?
        .container_id
        .as_deref()?
        .rsplit('/')
        .next()?
        .to_owned();
    let all = walkdir::WalkDir::new(Path::new("/sys/fs/cgroup").join(controller));
    let found = all
        .into_iter()
        .flatten()
        .find(|e| e.file_name() == id.as_str());
    found.map(walkdir::DirEntry::into_path)
}

fn read_u64(path: PathBuf) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// 3–5: latencies, the watch's start, memory and CPU, per mode.
async fn latencies(cluster: &Cluster, ns: &AdapterNamespace, runs: usize) {
    println!(
        "\n3–5. per run, ms (result → condition | exit → condition [from the kubelet's report]) | create → reporter's pod watch | reporter peak memory, CPU:"
    );
    for mode in ["native", "classic"] {
        for run in 0..runs {
            // Result: the adapter waits on `go`, writes, then waits on `end`.
            let name = format!("result-{mode}-{run}");
            let script = format!(
                "cat /attempts/go >/dev/null; printf '%s' '{RESULT}' > \"$RESULTS_PATH\"; cat /attempts/end >/dev/null"
            );
            // Debug: its "pod update" line says when it watches (the benchmark waits for it).
            let (job, attempts) = held_job(&name, mode, &[(LOG_LEVEL, "debug")], &script);
            let (go, end) = (attempts.path().join("go"), attempts.path().join("end"));
            let (tx, rx) = tokio::sync::oneshot::channel();
            let followed = follow(ns, job, |pod| drop(tx.send(pod.clone())));
            let drive = async {
                let pod = rx.await.expect("the adapter and the reporter run");
                let logs_name = pod.metadata.name.clone().expect("name");
                wait_watching(ns, &logs_name).await;
                let t0 = release(go.clone()).await;
                let jobs: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
                wait_object(jobs, &name, WAIT, |j| condition(j, "Available").is_some())
                    .await
                    .expect("the condition");
                let latency = t0.elapsed();
                let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
                let pod = pods.get(&logs_name).await.expect("pod");
                let memory = cgroup_of(&pod, "memory")
                    .and_then(|c| read_u64(c.join("memory.max_usage_in_bytes")));
                let cpu =
                    cgroup_of(&pod, "cpuacct").and_then(|c| read_u64(c.join("cpuacct.usage")));
                release(end.clone()).await;
                (latency, memory, cpu, logs_name)
            };
            let ((_, created), (latency, memory, cpu, pod)) = futures::join!(followed, drive);
            let watch = watch_started(cluster, &ns.name, &pod).map(|at| at.duration_since(created));
            // Exit: the adapter waits on `go`, then exits 1 without a result.
            let name = format!("exit-{mode}-{run}");
            let (job, attempts) = held_job(&name, mode, &[], "cat /attempts/go >/dev/null; exit 1");
            let go = attempts.path().join("go");
            let mut released = None;
            let (t, created) = follow(ns, job, |_| {
                released = Some(tokio::spawn(release(go.clone())));
            })
            .await;
            let t0 = released
                .expect("released")
                .await
                .expect("join")
                .duration_since(created);
            let exit = t.condition.map(|c| c.saturating_sub(t0));
            let exit_kubelet = t
                .condition
                .zip(t.adapter_exited)
                .map(|(c, a)| c.saturating_sub(a));
            println!(
                "   {mode:<8} {run:>2}: {:>5} | {:>5} [{:>5}] | {:>6} | {}",
                ms(Some(latency)),
                ms(exit),
                ms(exit_kubelet),
                ms(watch),
                match memory.zip(cpu) {
                    Some((m, c)) => format!(
                        "{:.1} MiB, {:.0} ms CPU",
                        m as f64 / 1048576.0,
                        c as f64 / 1e6
                    ),
                    None => "- (exited before it could be read)".into(),
                },
            );
        }
    }
}

/// Until the reporter of `pod` says it watches (its log, followed through the API).
async fn wait_watching(ns: &AdapterNamespace, pod: &str) {
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let params = LogParams {
        follow: true,
        container: Some("status-reporter".into()),
        ..LogParams::default()
    };
    let log = pods
        .log_stream(pod, &params)
        .await
        .expect("the reporter's log");
    let mut lines = std::pin::pin!(log.lines());
    let watching = async {
        while let Some(line) = lines.try_next().await.expect("the reporter's log") {
            if line.contains("pod update") {
                return;
            }
        }
        panic!("the log of the reporter of {pod} ended");
    };
    tokio::time::timeout(WAIT, watching)
        .await
        .unwrap_or_else(|_| panic!("the reporter of {pod} did not start watching"));
}

/// When the reporter of `pod` started its watch on its pod (the API server's audit log).
fn watch_started(cluster: &Cluster, namespace: &str, pod: &str) -> Option<Instant> {
    let selector = format!("metadata.name%3D{pod}");
    let requests = cluster.audited_requests(namespace, SERVICE_ACCOUNT);
    let watch = requests
        .iter()
        .find(|r| r.verb == "watch" && r.uri.contains(&selector))?;
    let ago = jiff::Timestamp::now().duration_since(watch.received);
    Instant::now().checked_sub(Duration::try_from(ago).ok()?)
}

/// (CPU time, RSS KiB) summed over the processes running `program` whose command line
/// contains `needle`.
fn process(program: &str, needle: &str) -> (Duration, u64) {
    let mut sum = (Duration::ZERO, 0);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let exe = std::fs::read_link(entry.path().join("exe")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let Ok(pid) = entry.file_name().to_string_lossy().parse() else {
            continue;
        };
        if exe.ends_with(program) && String::from_utf8_lossy(&cmdline).contains(needle) {
            sum.0 += cpu_time(pid);
            sum.1 += status_of(pid, "VmRSS");
        }
    }
    sum
}

/// 6: `n` Jobs at once.
async fn many(cluster: &Cluster, ns: &AdapterNamespace, n: usize) {
    let run = cluster.run_dir.display().to_string();
    let node = |program: &str| process(program, &run);
    let before = (node("kubelet"), node("containerd"));
    let script = format!("printf '%s' '{RESULT}' > \"$RESULTS_PATH\"");
    let start = Instant::now();
    let mut peak = (0, 0, 0);
    let jobs = futures::future::join_all((0..n).map(|i| {
        let job = adapter_job(&format!("many-{i}"), "native", &[], &script);
        follow(ns, job, |_| {})
    }));
    // The node's memory sampled every 200 ms while the Jobs run: the shims come and go with
    // their pods, so their sum at one moment has no kernel counter to read at the end.
    let sample = async {
        let mut every = tokio::time::interval(Duration::from_millis(200));
        loop {
            every.tick().await;
            peak.0 = peak.0.max(node("kubelet").1);
            peak.1 = peak.1.max(node("containerd").1);
            peak.2 = peak.2.max(node("containerd-shim-runc-v2").1);
        }
    };
    let timelines = tokio::select! {
        t = jobs => t,
        () = sample => unreachable!(),
    };
    let wall = start.elapsed().as_secs_f64();
    let after = (node("kubelet"), node("containerd"));
    let moments =
        |of: fn(&Timeline) -> Option<Duration>| timelines.iter().filter_map(move |(t, _)| of(t));
    let ours = moments(|t| t.condition).count();
    let condition = ms(Some(median(moments(|t| t.condition))));
    let complete = ms(Some(median(moments(|t| t.complete))));
    let cpu = |b: (Duration, u64), a: (Duration, u64)| (a.0 - b.0).as_secs_f64();
    println!(
        "\n6. {n} Jobs at once (native): {ours}/{n} conditions, all Complete in {wall:.1} s; median create → condition {condition} ms, → Complete {complete} ms"
    );
    println!(
        "   kubelet: {:.1} s CPU, peak RSS {} MiB; containerd: {:.1} s CPU, peak RSS {} MiB; shims: peak RSS {} MiB in all",
        cpu(before.0, after.0),
        peak.0 / 1024,
        cpu(before.1, after.1),
        peak.1 / 1024,
        peak.2 / 1024
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = <Args as clap::Parser>::parse();
    let (runs, pods) = (args.runs.into(), args.pods.into());
    let secs = |t: Instant| t.elapsed().as_secs_f64();
    let t = Instant::now();
    let archives = images::build().unwrap_or_else(|e| panic!("{e}")).len();
    println!(
        "1. images built (cargo xtask images, test-images): {:.1} s, {archives} archives",
        secs(t)
    );
    // The supervisor binary, built before the clock starts.
    harness::bin::path("control-plane");
    let t = Instant::now();
    let cluster =
        Cluster::connect(Release::Current, "bench-node").unwrap_or_else(|e| panic!("{e}"));
    println!("   control plane + node Ready: {:.1} s", secs(t));
    let t = Instant::now();
    cluster.node();
    println!("   images imported into the node: {:.1} s", secs(t));
    let ns = adapter_namespace(&cluster, "bench-node").await;
    wall_time(&ns, runs).await;
    sigterm_to_exit(&ns, runs).await;
    latencies(&cluster, &ns, runs).await;
    many(&cluster, &ns, pods).await;
}
