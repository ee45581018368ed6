//! `bench-real-api`: the reporter on the real API server (kube-apiserver + etcd + the Job
//! controller of the pinned control plane; profile `bench`, a control plane of its own).
//!
//! ```text
//! cargo run --release -p status-reporter-tests --bin bench-real-api -- [--runs 20] [--scale 100]
//! ```
//!
//! The release `status-reporter` (or `STATUS_REPORTER_BIN`) as the native sidecar of Jobs
//! injected by offline `inject`, each Pod made by the Job controller and run by this program
//! playing the kubelet, the reporter on its ServiceAccount's token. Per run, result file →
//! condition and adapter exit → condition, each against its floor on the same Job (a
//! pre-connected client on the reporter's own stack), and the API requests (the audit log);
//! then the reporter's peak RSS, idle wake-ups and binary size, and N Jobs at once. What each
//! figure is and why: docs/benchmarks.md.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use harness::control_plane::adapter::{
    AdapterNamespace, SERVICE_ACCOUNT, adapter_namespace, condition, example_job, set_job_condition,
};
use harness::control_plane::kubelet::{self, pod_condition};
use harness::control_plane::{Cluster, Release, client_config};
use harness::measure::{self, cpu_time, percentile, status_field, status_of};
use harness::reporter_process::Reporter;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;

const WAIT: Duration = Duration::from_secs(120);
const RESULT: &str =
    r#"{"status":"success","reason":"ChecksPassed","message":"All checks passed"}"#;

/// The reporter on the real API server (env `STATUS_REPORTER_BIN`: a prebuilt release binary).
#[derive(clap::Parser)]
struct Args {
    /// Runs per trigger.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Concurrent Jobs in the scale run.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    scale: u16,
}

#[derive(Clone, Copy, PartialEq)]
enum Trigger {
    File,
    Exit,
}

/// A watch on `api`'s objects that `config` selects, once it has listed them: what it yields
/// next happened after this returned.
async fn synced_watch<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl futures::Stream<Item = watcher::Result<watcher::Event<K>>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let mut events = Box::pin(watcher(api, config));
    loop {
        match events.next().await {
            Some(Ok(watcher::Event::InitDone)) => return events,
            Some(Ok(_)) => {}
            other => panic!("watch: {other:?}"),
        }
    }
}

/// Waits until the watch on `job` has listed it, then runs `trigger`; returns the time from
/// the trigger's end (`from_start`: its start) to condition `type_` being seen.
async fn measure(
    ns: &AdapterNamespace,
    job: &str,
    type_: &str,
    from_start: bool,
    trigger: impl AsyncFnOnce(),
) -> Duration {
    let api: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    let config = watcher::Config::default().fields(&format!("metadata.name={job}"));
    let mut events = synced_watch(api, config).await;
    let started = Instant::now();
    trigger().await;
    let t0 = if from_start { started } else { Instant::now() };
    let seen = async {
        while let Some(ev) = events.next().await {
            if let Ok(watcher::Event::Apply(j)) = ev
                && condition(&j, type_).is_some()
            {
                return Instant::now();
            }
        }
        panic!("watch on Job {job} ended")
    };
    tokio::time::timeout(WAIT, seen)
        .await
        .expect("condition in time")
        - t0
}

/// A client as the reporter's (its own client stack, its ServiceAccount), already connected.
async fn floor_client(ns: &AdapterNamespace, job: &str) -> kube::Client {
    let config = client_config(&ns.kubeconfig).await.expect("kubeconfig");
    let client = status_reporter::client::build(config).expect("client");
    let api: Api<Job> = Api::namespaced(client.clone(), &ns.name);
    api.get_status(job).await.expect("warm-up GET");
    client
}

/// GET + PUT of the Job's status with one more condition (`Floor`), as the reporter writes.
async fn get_put(client: &kube::Client, ns: &str, job: &str) {
    let floor = serde_json::json!({"type": "Floor", "status": "True", "reason": "Floor",
        "message": "floor", "lastTransitionTime": "2026-01-01T00:00:00Z"});
    set_job_condition(client, ns, job, floor).await;
}

/// The floor of the file path: a pre-connected client's GET + PUT, timed from the GET's start
/// to the condition seen.
async fn floor(ns: &AdapterNamespace, job: &str) -> Duration {
    let client = floor_client(ns, job).await;
    measure(ns, job, "Floor", true, async || {
        get_put(&client, &ns.name, job).await
    })
    .await
}

/// The floor of the exit path: a pre-connected client watching the pod does GET + PUT when a
/// pod-status write reaches it; timed, as the reporter is, from that write to the condition.
async fn exit_floor(ns: &AdapterNamespace, job: &str, pod: &str) -> Duration {
    let client = floor_client(ns, job).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let config = watcher::Config::default().fields(&format!("metadata.name={pod}"));
    let mut events = synced_watch(pods, config).await;
    let (namespace, job_name) = (ns.name.clone(), job.to_owned());
    let writer = tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            if let Ok(watcher::Event::Apply(p)) = ev
                && pod_condition(&p, "FloorTrigger").is_some()
            {
                get_put(&client, &namespace, &job_name).await;
                return;
            }
        }
    });
    let took = measure(ns, job, "Floor", false, async || {
        kubelet::update_status(&ns.client, &ns.name, pod, |_, status| {
            status.conditions.get_or_insert_with(Vec::new).push(
                serde_json::from_value(
                    serde_json::json!({"type": "FloorTrigger", "status": "True"}),
                )
                .expect("condition"),
            );
        })
        .await;
    })
    .await;
    writer.await.expect("floor writer");
    took
}

/// One run's measurements.
struct Run {
    latency: Duration,
    /// The reporter's API requests.
    requests: usize,
    /// Its peak RSS in KiB.
    hwm_kib: u64,
    /// The floor, on the same Job right after.
    floor: Duration,
    /// With `idle`: the reporter's context switches over [`IDLE`] before the trigger.
    idle_switches: Option<u64>,
}

/// The window over which an idle reporter's wake-ups are counted.
const IDLE: Duration = Duration::from_secs(2);

/// One run (see [`Run`]).
async fn one_run(cluster: &Cluster, bin: &Path, i: usize, trigger: Trigger, idle: bool) -> Run {
    let name = format!(
        "bench-{}-{i}",
        ["exit", "file"][usize::from(trigger == Trigger::File)]
    );
    let ns = adapter_namespace(cluster, &name).await;
    ns.create_job(example_job(&name, "native", &[])).await;
    let (pod, results) = ns.running_pod(&name, WAIT).await;
    let pod_name = kubelet::name(&pod);
    let mut reporter = Reporter::spawn(ns.reporter_command(bin, &pod, &results, &[]));
    reporter.logs.wait_for(&["pod update"], WAIT);
    let idle_switches = idle.then(|| {
        // Nothing happens, and that is the measurement: the sleep is the window.
        let before = context_switches(reporter.pid());
        std::thread::sleep(IDLE);
        context_switches(reporter.pid()) - before
    });
    let latency = measure(&ns, &name, "Available", false, async || match trigger {
        Trigger::File => write_result(&results),
        Trigger::Exit => {
            kubelet::terminate(&ns.client, &ns.name, &pod_name, "adapter", 1, "Error", None).await;
        }
    })
    .await;
    // After the condition, the pod record and the Event: the whole run.
    reporter
        .logs
        .wait_for(&["idling until the pod shuts down"], WAIT);
    let hwm_kib = reporter.peak_rss_kib();
    reporter.signal("-TERM");
    reporter.wait_exit(WAIT);
    let requests = cluster.audited_requests(&ns.name, SERVICE_ACCOUNT).len();
    // The floor on the same Job, once the reporter is gone (it uses the same ServiceAccount).
    let floor = match trigger {
        Trigger::File => floor(&ns, &name).await,
        Trigger::Exit => exit_floor(&ns, &name, &pod_name).await,
    };
    Run {
        latency,
        requests,
        hwm_kib,
        floor,
        idle_switches,
    }
}

/// The result written to a temporary file and renamed into place in `dir`, as adapters do.
fn write_result(dir: &Path) {
    std::fs::write(dir.join(".tmp"), RESULT).expect("write");
    std::fs::rename(dir.join(".tmp"), dir.join("adapter-result.json")).expect("rename");
}

/// Voluntary and involuntary context switches over all threads of `pid`.
fn context_switches(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    let fields = ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"];
    let switches = |t: std::fs::DirEntry| fields.map(|f| status_field(t.path().join("status"), f));
    tasks.flatten().flat_map(switches).flatten().sum()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", measure::ms(d))
}

async fn scale(cluster: &Cluster, bin: &Path, n: usize) {
    let ns = adapter_namespace(cluster, "bench-scale").await;
    let names: Vec<String> = (0..n).map(|i| format!("scale-{i}")).collect();
    let setup = Instant::now();
    let pods = futures::future::join_all(names.iter().map(|name| async {
        ns.create_job(example_job(name, "native", &[])).await;
        ns.running_pod(name, WAIT).await
    }))
    .await;
    // Every request of a reporter counts, from its first LIST on.
    let before_requests = cluster.audited_requests(&ns.name, SERVICE_ACCOUNT).len();
    let (mut reporters, dirs): (Vec<_>, Vec<_>) = (names.iter().zip(&pods))
        .map(|(name, (pod, _))| {
            let results = ns.results_dir(name);
            let command = ns.reporter_command(bin, pod, &results, &[]);
            (Reporter::spawn(command), results)
        })
        .unzip();
    for r in &reporters {
        r.logs.wait_for(&["pod update"], WAIT);
    }
    println!(
        "  setup: {n} Jobs created, their Pods made by the Job controller and running, {n} reporters watching: {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let pids = cluster.component_pids();
    let (etcd, apiserver) = (pids[0], pids[1]);
    for pid in [etcd, apiserver] {
        // Reset the peak RSS so VmHWM covers this run only.
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    }
    let cpu_before = (cpu_time(apiserver), cpu_time(etcd));

    let api: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    let mut events = synced_watch(api, watcher::Config::default()).await;
    let t0 = Instant::now();
    dirs.iter().for_each(|dir| write_result(dir));
    let mut done = std::collections::BTreeSet::new();
    let all = async {
        while done.len() < n {
            if let Some(Ok(watcher::Event::Apply(j))) = events.next().await
                && let Some(c) = condition(&j, "Available")
            {
                assert_eq!(
                    (c.status.as_str(), c.reason.as_deref()),
                    ("True", Some("ChecksPassed")),
                    "{:?}",
                    j.metadata.name
                );
                done.insert(j.metadata.name.clone().unwrap_or_default());
            }
        }
    };
    tokio::time::timeout(WAIT, all)
        .await
        .expect("every condition in time");
    let wall = ms(t0.elapsed());
    let cpu_after = (cpu_time(apiserver), cpu_time(etcd));
    for r in &reporters {
        r.signal("-TERM");
    }
    for r in &mut reporters {
        r.wait_exit(WAIT);
    }
    let requests = cluster.audited_requests(&ns.name, SERVICE_ACCOUNT).len() - before_requests;
    println!("  {n}/{n} conditions True/ChecksPassed, all written within {wall}");
    println!(
        "  API requests: {requests} for {n} Jobs = {:.1} per Job (every request of the reporters, from the audit log)",
        requests as f64 / n as f64
    );
    println!(
        "  kube-apiserver: {:.2} CPU s over the run, peak RSS {:.0} MiB; etcd: {:.2} CPU s, peak RSS {:.0} MiB",
        (cpu_after.0 - cpu_before.0).as_secs_f64(),
        status_of(apiserver, "VmHWM") as f64 / 1024.0,
        (cpu_after.1 - cpu_before.1).as_secs_f64(),
        status_of(etcd, "VmHWM") as f64 / 1024.0,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = <Args as clap::Parser>::parse();
    let bin = harness::bin::release_path("status-reporter");
    let cluster = Cluster::connect(Release::Current, "bench").unwrap_or_else(|e| {
        eprintln!("bench-real-api: {e}");
        std::process::exit(1)
    });
    let versions = std::fs::read_to_string(cluster.bin_dir.parent().expect("dir").join("versions"))
        .unwrap_or_default();
    println!(
        "reporter on the real API server ({}), release binary {}, {} cores",
        versions.split_whitespace().collect::<Vec<_>>().join(" "),
        bin.display(),
        measure::cpus()
    );
    let size = std::fs::metadata(&bin).map_or(0, |m| m.len());
    println!("binary: {:.2} MiB", size as f64 / 1048576.0);
    let (mut idle, mut peaks) = (None, Vec::new());
    for trigger in [Trigger::File, Trigger::Exit] {
        let mut runs = Vec::new();
        for i in 0..usize::from(args.runs) {
            let probe = i == 0 && trigger == Trigger::File;
            runs.push(one_run(&cluster, &bin, i, trigger, probe).await);
        }
        peaks.extend(runs.iter().map(|r| r.hwm_kib));
        idle = idle.or(runs.iter().find_map(|r| r.idle_switches));
        let mut lat: Vec<Duration> = runs.iter().map(|r| r.latency).collect();
        let mut reqs: Vec<usize> = runs.iter().map(|r| r.requests).collect();
        let mut floors: Vec<Duration> = runs.iter().map(|r| r.floor).collect();
        let mut ratios: Vec<f64> = runs
            .iter()
            .map(|r| r.latency.as_secs_f64() / r.floor.as_secs_f64())
            .collect();
        let what = match trigger {
            Trigger::File => "result file renamed into place → condition",
            Trigger::Exit => "adapter terminated (pod status written) → condition",
        };
        println!(
            "{what}: median {}, p99 {}, min {}, max {} ({} runs); API requests per run: median {}, max {}",
            ms(percentile(&mut lat, 50.0)),
            ms(percentile(&mut lat, 99.0)),
            ms(percentile(&mut lat, 0.0)),
            ms(percentile(&mut lat, 100.0)),
            args.runs,
            percentile(&mut reqs, 50.0),
            percentile(&mut reqs, 100.0),
        );
        println!(
            "  floor, same runs ({}): median {}, min {}; ours/floor per run: median {:.2}×, max {:.2}×",
            match trigger {
                Trigger::File =>
                    "a pre-connected client's GET + PUT of the Job's status → condition",
                Trigger::Exit =>
                    "a pod-status write → a pre-connected client watching the pod does GET + PUT → condition",
            },
            ms(percentile(&mut floors, 50.0)),
            ms(percentile(&mut floors, 0.0)),
            percentile(&mut ratios, 50.0),
            percentile(&mut ratios, 100.0),
        );
    }
    println!(
        "reporter peak RSS (VmHWM): median {:.2} MiB, max {:.2} MiB",
        percentile(&mut peaks, 50.0) as f64 / 1024.0,
        percentile(&mut peaks, 100.0) as f64 / 1024.0
    );
    if let Some(switches) = idle {
        println!(
            "reporter wake-ups while waiting: {switches} context switches in {IDLE:?} idle (all threads)"
        );
    }
    println!(
        "scale: {} concurrent reporters, one Job each, one control plane",
        args.scale
    );
    scale(&cluster, &bin, args.scale.into()).await;
}
