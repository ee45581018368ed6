//! `bench-webhook`: the webhook's benchmark (what each row is and why: docs/benchmarks.md).
//!
//! ```text
//! cargo run --release -p status-reporter-tests --bin bench-webhook -- \
//!     [--seconds 5] [--connections 16] [--rate 1000] [--iterations 20000] [--grown-kib 16,64] [--handler-only]
//! cargo run --release -p status-reporter-tests --bin bench-webhook -- --profile 2000
//! ```
//!
//! The in-process handler per fixture size (`--profile N`: only N reviews, for callgrind);
//! then, on loopback, the release `serve` (or `STATUS_REPORTER_WEBHOOK_BIN`) against the
//! transport floor (`floor.rs`) and the Go peer (`tests/bench/go-webhook`, built with
//! `go build`) in alternating slices, the cost of its logging, a fixed rate and its memory;
//! `STATUS_REPORTER_WEBHOOK_BASE_BIN` adds another build's rows for an A/B.
#![forbid(unsafe_code)]

mod fixtures;
mod floor;
mod load;

use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::measure::{cpu_time, cpus, load_average, ms, status_of};
use harness::webhook_process::{Pki, SecretDir, Server};
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::logging::{self, LogFormat};
use status_reporter_webhook::{admission, server};

use fixtures::Fixture;
use load::{Client, Stats, Target};

/// The webhook's benchmark (see docs/benchmarks.md); `bench-webhook serve …` is the transport
/// floor server.
#[derive(clap::Parser)]
#[command(name = "bench-webhook")]
struct Options {
    /// Seconds per network row.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Connections per closed loop.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    connections: u16,
    /// The fixed rate, requests per second.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Handler iterations per fixture.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    iterations: u32,
    /// The sizes (KiB) the Job is grown to, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [16, 64], value_parser = clap::value_parser!(u32).range(1..))]
    grown_kib: Vec<u32>,
    /// Only the in-process handler.
    #[arg(long)]
    handler_only: bool,
    /// Only N reviews of `create-job.json`, nothing timed or printed (for a profiler).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    profile: Option<u32>,
    /// With `--profile`: each review also writes its `info` line as `serve` does (JSON, to
    /// stderr), so the profile shows what a log line costs.
    #[arg(long, requires = "profile")]
    logged: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "serve") {
        if let Err(e) = floor::run(&args[1..]) {
            eprintln!("bench-webhook serve: {e}");
            std::process::exit(2);
        }
        return;
    }
    let options = <Options as clap::Parser>::parse();
    if let Some(n) = options.profile {
        profile(n, options.logged);
        return;
    }
    let fixtures = fixtures::all(&options.grown_kib);
    println!(
        "bench-webhook at load average {} on {} CPUs",
        load_average(),
        cpus()
    );
    handler_table(&fixtures, options.iterations);
    if options.handler_only {
        return;
    }
    network_table(&fixtures, &options);
}

/// `n` reviews of `create-job.json` and nothing else, for a profiler
/// (`valgrind --tool=callgrind bench-webhook --profile 2000 [--logged] 2>/dev/null`).
fn profile(n: u32, logged: bool) {
    let config = InjectConfig::default();
    let logs = logged.then(|| logging::init(contract::LogLevel::Info, LogFormat::Json));
    for _ in 0..n {
        let reviewed = admission::review(
            std::hint::black_box(fixtures::CREATE_JOB.as_bytes()),
            &config,
        );
        if logged {
            server::log_review(&reviewed, 5);
        }
        std::hint::black_box(reviewed.into_json().expect("the answer is written"));
    }
    if let Some(logs) = logs {
        logs.finish();
    }
}

/// Servers at each log level in logging's rows.
const PER_LEVEL: usize = 3;

/// Names another build of the webhook to measure next to this one (see `network_table`).
const BASE_BIN_VAR: &str = "STATUS_REPORTER_WEBHOOK_BASE_BIN";

/// Builds the Go peer (`tests/bench/go-webhook`) next to this binary with the Go toolchain.
fn go_peer() -> std::path::PathBuf {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/go-webhook");
    let exe = std::env::current_exe().expect("current_exe");
    let out = exe.with_file_name("bench-go-webhook");
    let status = std::process::Command::new("go")
        .current_dir(source)
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .status()
        .expect("run `go build` (the Go peer needs the Go toolchain)");
    assert!(status.success(), "go build of {source}: {status}");
    out
}

/// The review as the server runs it, in process: bytes in, response bytes out.
fn handler(body: &[u8], config: &InjectConfig) -> Bytes {
    admission::review(body, config)
        .into_json()
        .expect("the answer is written")
}

fn handler_table(fixtures: &[Fixture], iterations: u32) {
    let config = InjectConfig::default();
    println!(
        "\nin-process handler (AdmissionReview bytes -> response bytes), {iterations} iterations per fixture:"
    );
    for f in fixtures {
        let answer = handler(&f.body, &config).as_ref().len();
        let mut samples = Vec::new();
        for _ in 0..iterations {
            let start = Instant::now();
            std::hint::black_box(handler(std::hint::black_box(&f.body), &config));
            samples.push(start.elapsed());
        }
        let stats = Stats::new(samples, Duration::ZERO);
        println!(
            "  {:<22} -> {:>8}  p50 {:>7.2} us  p99 {:>7.2} us{}",
            f.label,
            fixtures::size(answer),
            us(stats.percentile(50.0)),
            us(stats.percentile(99.0)),
            if f.body == fixtures::CREATE_JOB.as_bytes() {
                "  (target: p50 <= 8 us)"
            } else {
                ""
            },
        );
    }
}

/// One closed-loop row: the client's view and the server's CPU time over it.
struct Row {
    stats: Stats,
    cpu: Duration,
}

impl Row {
    /// Rows' requests and CPU time as one row.
    fn merge(rows: Vec<Row>) -> Row {
        let cpu = rows.iter().map(|r| r.cpu).sum();
        let stats = Stats::merge(rows.into_iter().map(|r| r.stats).collect());
        Row { stats, cpu }
    }

    /// The server's CPU time per request.
    fn cpu_per_request(&self) -> Duration {
        self.cpu / self.stats.samples.len().max(1) as u32
    }

    fn print(&self, what: &str, note: &str) {
        println!(
            "  {what:<44} {:>8.0} {:>8.3} {:>8.3} {:>11.1} us{note}",
            self.stats.rps(),
            ms(self.stats.percentile(50.0)),
            ms(self.stats.percentile(99.0)),
            us(self.cpu_per_request()),
        );
    }
}

fn network_table(fixtures: &[Fixture], options: &Options) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let me = std::process::id();
    // Pinned before any thread starts: the servers inherit CPU 0 at start (one tokio worker
    // each, as on the one core they get) and are then moved to CPU 1 with all their threads.
    let pinned = cpus() >= 2 && pin(me, 0);
    let pki = Pki::default();
    let secret = SecretDir::new(&pki.issue());
    let webhook = harness::bin::release_path("status-reporter-webhook");
    let start = |bin: &std::path::Path, extra: &[&str]| {
        let server = Server::start(bin, &secret, extra, Duration::from_secs(30));
        if pinned {
            assert!(pin(server.pid(), 1), "taskset on {}", server.pid());
        }
        (Client::new(&server, &pki), server)
    };
    let (floor, _floor) = start(&std::env::current_exe().expect("current_exe"), &[]);
    let (go, _go) = start(&go_peer(), &[]);
    let (quiet, _quiet) = start(&webhook, &["--log-level", "warn"]);
    // Servers of their own for logging's rows, several at each level: processes of one binary
    // at one level differ by up to 10 % in CPU per request on this VM, which a single pair
    // cannot tell from logging's cost. Their spread within each level is printed.
    let warn_servers: Vec<_> = (0..PER_LEVEL)
        .map(|_| start(&webhook, &["--log-level", "warn"]))
        .collect();
    let info_servers: Vec<_> = (0..PER_LEVEL)
        .map(|_| start(&webhook, &["--log-level", "info"]))
        .collect();
    // Another build of the server (a base commit's, say), measured in the same slices as
    // the floor and this one: an A/B of the very ratio the target is about, in one run.
    let base_bin = std::env::var_os(BASE_BIN_VAR).map(std::path::PathBuf::from);
    let base = base_bin
        .as_ref()
        .map(|bin| start(bin, &["--log-level", "warn"]));
    let placement = match pinned {
        true => "load generator pinned to CPU 0, servers to CPU 1 (taskset)",
        false => "not pinned: load generator and servers share the CPU",
    };
    println!(
        "\n{placement}; webhook {} (pid {}), floor pid {}, Go peer pid {}",
        webhook.display(),
        quiet.pid,
        floor.pid,
        go.pid
    );
    if let (Some(bin), Some((base, _))) = (&base_bin, &base) {
        println!("base webhook {} (pid {})", bin.display(), base.pid);
    }
    let base = base.as_ref().map(|(client, _)| client);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = InjectConfig::default();
        let seconds = Duration::from_secs(options.seconds);
        let n = options.connections.into();
        // Each fixture's review, and the size of the answer to it.
        let targets: Vec<(Target, usize)> = (fixtures.iter())
            .map(|f| {
                let response_bytes = handler(&f.body, &config).len();
                let body = Bytes::from(f.body.clone());
                (Target { body, response_bytes }, response_bytes)
            })
            .collect();
        let first = &targets[0].0;
        for (f, (target, response_bytes)) in fixtures.iter().zip(&targets) {
            assert_eq!(
                quiet.answer(target).await.len(),
                *response_bytes,
                "{}: the server's answer differs in size from the in-process one",
                f.label
            );
        }
        // The Go peer does the same work: its answer carries the same five operations.
        let paths = |answer: &[u8]| -> Vec<String> {
            let answer: serde_json::Value = serde_json::from_slice(answer).expect("JSON");
            let patch = answer["response"]["patch"].clone();
            let bytes: k8s_openapi::ByteString = serde_json::from_value(patch).expect("base64");
            let ops: Vec<serde_json::Value> = serde_json::from_slice(&bytes.0).expect("a JSON Patch");
            ops.iter().map(|op| op["path"].to_string()).collect()
        };
        assert_eq!(
            paths(&go.answer(first).await),
            paths(&handler(&fixtures[0].body, &config)),
            "the Go peer patches other paths"
        );
        // Warm up every server and path (connections, allocator, branch predictors).
        let logging = warn_servers.iter().chain(&info_servers).map(|(client, _)| client);
        let all = [&floor, &quiet, &go].into_iter().chain(base);
        let all: Vec<&Client> = all.chain(logging).collect();
        slices(&all, first, n, 1).await;

        // The fixed rate first, on servers that have only been warmed up, ours and (if
        // given) the base build's in turn: after the closed loops, the other servers on the
        // shared CPU (the Go peer's runtime above all) left stalls of tens of milliseconds.
        let fixed_rows = std::iter::once(("/mutate", &quiet)).chain(base.map(|b| ("base   ", b)));
        println!(
            "\nfixed rate {} req/s for {}s, {} (target: p99 < 2 ms):",
            options.rate, options.seconds, fixtures[0].label
        );
        for (what, client) in fixed_rows {
            let fixed = client.fixed_rate(first, options.rate, seconds).await;
            println!(
                "  {what}  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
                ms(fixed.percentile(50.0)),
                ms(fixed.percentile(99.0)),
                ms(fixed.percentile(100.0)),
            );
        }

        println!(
            "\nclosed loop, {n} connections, TLS 1.3, HTTP/1.1 keep-alive, {}s per row \
             (each pair of rows in alternating 1 s slices):",
            options.seconds
        );
        println!(
            "  {:<44} {:>8} {:>8} {:>8} {:>14}",
            "", "req/s", "p50 ms", "p99 ms", "server CPU/req"
        );
        let mut logging_rows = Vec::new();
        for (i, (f, (target, response_bytes))) in fixtures.iter().zip(&targets).enumerate() {
            let bytes = format!("{} -> {}", f.label, fixtures::size(*response_bytes));
            let servers: Vec<&Client> = [&floor, &quiet, &go].into_iter().chain(base).collect();
            let rows = slices(&servers, target, n, options.seconds).await;
            let [floor_row, mutate, go_row, base_row @ ..] = &rows[..] else {
                unreachable!("a row per server")
            };
            floor_row.print(&format!("floor   {bytes}"), "");
            let ratio = |row: &Row| us(row.cpu_per_request()) / us(floor_row.cpu_per_request()).max(0.001);
            mutate.print(
                &format!("/mutate {bytes}"),
                &format!("  = {:.2}x floor (target <= 2x)", ratio(mutate)),
            );
            go_row.print(
                &format!("Go peer {bytes}"),
                &format!(
                    "  = {:.2}x floor; ours: {:.2}x its req/s, {:.2}x less CPU/req (target >= 2x)",
                    ratio(go_row),
                    mutate.stats.rps() / go_row.stats.rps().max(0.001),
                    us(go_row.cpu_per_request()) / us(mutate.cpu_per_request()).max(0.001),
                ),
            );
            if let Some(base_row) = base_row.first() {
                base_row.print(
                    &format!("base    {bytes}"),
                    &format!("  = {:.2}x floor", ratio(base_row)),
                );
            }
            if i == 0 {
                // Logging's cost, on servers that have served only `create-job.json` (one
                // that has served the larger reviews carries their grown buffers and is slower
                // per request), before the Go peer's largest rows leave its runtime busy on
                // the shared CPU. Levels alternate, each server in its own slices.
                let warn = warn_servers.iter().map(|(c, _)| c);
                let info = info_servers.iter().map(|(c, _)| c);
                let servers: Vec<&Client> = warn.zip(info).flat_map(|(w, i)| [w, i]).collect();
                logging_rows = slices(&servers, first, n, options.seconds).await;
            }
        }
        // The rows alternate: warn, info, warn, info …
        let (mut warn, mut info) = (Vec::new(), Vec::new());
        let mut rows = logging_rows.into_iter();
        while let (Some(w), Some(i)) = (rows.next(), rows.next()) {
            warn.push(w);
            info.push(i);
        }
        // The widest difference in CPU/req between two servers of one level, in %.
        let spread = |rows: &[Row]| {
            let cpu = rows.iter().map(|r| us(r.cpu_per_request()));
            let (lo, hi) = cpu.fold((f64::MAX, 0.0_f64), |(lo, hi), c| (lo.min(c), hi.max(c)));
            100.0 * (hi - lo) / lo.max(0.001)
        };
        let (warn_spread, info_spread) = (spread(&warn), spread(&info));
        let (warn_row, info_row) = (Row::merge(warn), Row::merge(info));
        let label = &fixtures[0].label;
        warn_row.print(&format!("/mutate {label}, log warn x{PER_LEVEL}"), "");
        info_row.print(
            &format!("/mutate {label}, log info x{PER_LEVEL}"),
            // The server is CPU-bound on its core, so its CPU per request is the throughput
            // it can give; measured req/s also moves with whatever else the machine runs.
            &format!(
                "  CPU/req {:+.1}% (target <= +10%), req/s {:+.1}% vs warn",
                100.0 * (us(info_row.cpu_per_request()) / us(warn_row.cpu_per_request()).max(0.001) - 1.0),
                100.0 * (info_row.stats.rps() / warn_row.stats.rps() - 1.0)
            ),
        );
        println!(
            "  (x{PER_LEVEL}: servers at each level, which differ by up to {warn_spread:.1} % (warn) \
             and {info_spread:.1} % (info) in CPU/req: this comparison's noise)"
        );
        let logged_lines: usize = (info_servers.iter())
            .map(|(_, server)| server.logs.count())
            .sum();

        for (what, server) in [("log warn", quiet.pid), ("log info", info_servers[0].0.pid)] {
            println!(
                "webhook ({what}) memory after the load: VmRSS {:.1} MiB, peak VmHWM {:.1} MiB (target <= 12 MiB)",
                status_of(server, "VmRSS") as f64 / 1024.0,
                status_of(server, "VmHWM") as f64 / 1024.0
            );
        }
        println!(
            "the info-level servers wrote {logged_lines} log lines; load average now {}",
            load_average()
        );
    });
}

/// Closed loops against `servers` in alternating one-second slices, so all see the same load on
/// a shared machine, on connections opened beforehand (no handshake inside a slice).
async fn slices(servers: &[&Client], target: &Target, n: usize, seconds: u64) -> Vec<Row> {
    let mut open = Vec::with_capacity(servers.len());
    for client in servers {
        open.push(client.connect_many(n).await);
    }
    let mut parts: Vec<(Vec<Stats>, Duration)> =
        servers.iter().map(|_| Default::default()).collect();
    for _ in 0..seconds {
        for ((senders, client), (stats, cpu)) in open.iter_mut().zip(servers).zip(&mut parts) {
            let before = cpu_time(client.pid);
            let (run, back) =
                Client::closed_loop_on(std::mem::take(senders), target, Duration::from_secs(1))
                    .await;
            *cpu += cpu_time(client.pid).saturating_sub(before);
            *senders = back;
            stats.push(run);
        }
    }
    (parts.into_iter())
        .map(|(stats, cpu)| Row {
            stats: Stats::merge(stats),
            cpu,
        })
        .collect()
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Pins every thread of `pid` to `cpu` (threads it starts later inherit the mask); false when
/// `taskset` is missing or refuses.
fn pin(pid: u32, cpu: usize) -> bool {
    std::process::Command::new("taskset")
        .args(["--all-tasks", "--cpu-list", "--pid"])
        .arg(cpu.to_string())
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
