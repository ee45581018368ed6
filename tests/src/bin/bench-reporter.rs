//! `bench-reporter`: the reporter's benchmark.
//!
//! ```text
//! cargo run --release -p status-reporter-tests --bin bench-reporter -- [--runs 30]
//! ```
//!
//! Builds the release `status-reporter` (or uses `STATUS_REPORTER_BIN`), then for each run starts
//! it as a native sidecar against the Kubernetes API stand-in with a fresh Job and pod, and
//! measures:
//! 1. result file renamed into place → `Available` condition visible on the Job;
//! 2. adapter container set to terminated (one pod write) → condition visible;
//! 3. API requests per run, from the stand-in's request log;
//! 4. peak RSS (`VmHWM` from `/proc/<pid>/status`, read while the reporter idles after
//!    reporting, i.e. just before its SIGTERM exit);
//! 5. wake-ups while waiting: context switches of all reporter threads over an idle window;
//! 6. the stripped release binary size.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use stand_in::StandIn;
use stand_in::fixtures::{JobBuilder, PodBuilder};
use stand_in::reporter_process::{Reporter, reporter_command};

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(30);

fn runs_from_args() -> Result<usize, String> {
    let mut runs = 30;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|v| *v > 0)
                    .ok_or("--runs needs a positive integer")?
            }
            "-h" | "--help" => {
                println!(
                    "bench-reporter [--runs N]   (default 30; env STATUS_REPORTER_BIN to use a prebuilt binary)"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}; accepted: --runs N")),
        }
    }
    Ok(runs)
}

fn proc_field(pid: u32, file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Voluntary + involuntary context switches over all threads of `pid`.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .map(|t| {
            let tid = t.file_name().to_string_lossy().to_string();
            let f = format!("task/{tid}/status");
            proc_field(pid, &f, "voluntary_ctxt_switches:").unwrap_or(0)
                + proc_field(pid, &f, "nonvoluntary_ctxt_switches:").unwrap_or(0)
        })
        .sum()
}

struct Run {
    latency: Duration,
    requests: usize,
    hwm_kib: u64,
}

enum Trigger {
    File,
    AdapterExit,
}

fn one_run(
    api: &StandIn,
    bin: &Path,
    kubeconfig: &Path,
    i: usize,
    trigger: Trigger,
    idle_probe: Option<&mut Option<(u64, Duration)>>,
) -> Run {
    let job = format!("bench-{}-{i}", matches!(trigger, Trigger::File) as u8);
    let pod = format!("{job}-pod");
    let dir = tempfile::tempdir().expect("tempdir");
    api.create_job(JobBuilder::new(NS, &job).build());
    api.create_pod(
        PodBuilder::new(NS, &pod)
            .job_name(&job)
            .init_sidecar("status-reporter")
            .container("adapter")
            .build(),
    );
    api.set_container_running(NS, &pod, "adapter");
    let result = dir.path().join("adapter-result.json");
    let mut cmd = reporter_command(bin, kubeconfig, NS, &job, &pod, &result);
    cmd.env("SIDECAR_MODE", "native").env("LOG_LEVEL", "warn");
    let mut reporter = Reporter::spawn(cmd);
    let pid = reporter.pid();
    let selector = format!("metadata.name%3D{pod}");
    api.wait_for_blocking("the reporter's pod watch", WAIT, |s| {
        s.requests()
            .iter()
            .any(|r| {
                r.watch
                    && r.status == 200
                    && r.query.as_deref().is_some_and(|q| q.contains(&selector))
            })
            .then_some(())
    });
    if let Some(probe) = idle_probe {
        // Waiting with nothing happening: count the reporter's wake-ups over a fixed idle
        // window. The sleep is the measurement (there is no event to wait for: the point is
        // that none happens).
        let window = Duration::from_secs(2);
        let before = context_switches(pid);
        std::thread::sleep(window);
        *probe = Some((context_switches(pid) - before, window));
    }
    let started = Instant::now();
    match trigger {
        Trigger::File => {
            let tmp = dir.path().join(".tmp-result");
            std::fs::write(
                &tmp,
                r#"{"status":"success","reason":"Bench","message":"benchmark run"}"#,
            )
            .expect("write result");
            std::fs::rename(&tmp, &result).expect("rename result");
        }
        Trigger::AdapterExit => api.set_container_terminated(NS, &pod, "adapter", 1, "Error", ""),
    }
    api.wait_for_blocking("the condition", WAIT, |s| {
        s.job_condition(NS, &job, "Available")
    });
    let latency = started.elapsed();
    // Native sidecar idles after reporting; the Event is posted right after the condition.
    api.wait_for_blocking("the event", WAIT, |s| {
        s.events()
            .iter()
            .any(|e| e["involvedObject"]["name"] == job.as_str())
            .then_some(())
    });
    let hwm_kib = proc_field(pid, "status", "VmHWM:").unwrap_or(0);
    reporter.signal("-TERM");
    let (code, logs) = reporter.wait_exit_with_logs(WAIT);
    // Warnings and errors of the run (LOG_LEVEL=warn) stay visible.
    if !logs.is_empty() {
        eprintln!("{logs}");
    }
    assert_eq!(code, 0, "native sidecar exits 0 on SIGTERM");
    let requests = api
        .requests()
        .iter()
        .filter(|r| {
            r.path.contains(&job)
                || r.query.as_deref().is_some_and(|q| q.contains(&selector))
                || (r.path.ends_with("/events") && r.body.contains(&job))
        })
        .count();
    Run {
        latency,
        requests,
        hwm_kib,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn summary(name: &str, runs: &[Run]) {
    let mut lat: Vec<Duration> = runs.iter().map(|r| r.latency).collect();
    lat.sort();
    let mut reqs: Vec<usize> = runs.iter().map(|r| r.requests).collect();
    reqs.sort();
    println!(
        "{name:<34} median {:>9}   p99 {:>9}   max {:>9}   API requests/run: median {} (max {})",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap()),
        reqs[reqs.len() / 2],
        reqs.last().unwrap()
    );
}

fn main() {
    let runs = match runs_from_args() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench-reporter: {e}");
            std::process::exit(2);
        }
    };
    let bin = stand_in::bin::release_path("status-reporter");
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    let api = StandIn::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.write_kubeconfig(dir.path());
    println!(
        "status-reporter benchmark: {runs} runs per scenario, binary {} ({:.2} MiB)",
        bin.display(),
        size as f64 / 1048576.0
    );

    let mut idle = None;
    let mut file_runs = Vec::new();
    let mut exit_runs = Vec::new();
    for i in 0..runs {
        let probe = if i == 0 { Some(&mut idle) } else { None };
        file_runs.push(one_run(&api, &bin, &kubeconfig, i, Trigger::File, probe));
        exit_runs.push(one_run(
            &api,
            &bin,
            &kubeconfig,
            i,
            Trigger::AdapterExit,
            None,
        ));
    }
    summary("result file written -> condition", &file_runs);
    summary("adapter terminated -> condition", &exit_runs);
    let mut hwm: Vec<u64> = file_runs
        .iter()
        .chain(&exit_runs)
        .map(|r| r.hwm_kib)
        .collect();
    hwm.sort();
    println!(
        "peak RSS (VmHWM)                   median {:.2} MiB   max {:.2} MiB",
        hwm[hwm.len() / 2] as f64 / 1024.0,
        *hwm.last().unwrap() as f64 / 1024.0
    );
    if let Some((switches, window)) = idle {
        println!(
            "wake-ups while waiting             {switches} context switches in {window:?} idle (all threads)"
        );
    }
    let kinds: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| {
            r.path.contains("bench-1-0")
                || r.query
                    .as_deref()
                    .is_some_and(|q| q.contains("bench-1-0-pod"))
                || (r.path.ends_with("/events") && r.body.contains("bench-1-0"))
        })
        .map(|r| {
            format!(
                "{} {}{}",
                r.method,
                r.path,
                if r.watch { " (watch)" } else { "" }
            )
        })
        .collect();
    println!("requests of one file run:\n  {}", kinds.join("\n  "));
}
