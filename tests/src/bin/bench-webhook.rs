//! `bench-webhook`: the webhook's benchmark.
//!
//! ```text
//! cargo run --release -p status-reporter-tests --bin bench-webhook -- [--seconds 5] [--connections 8] [--rate 1000]
//! ```
//!
//! Starts the release `status-reporter-webhook serve` on 127.0.0.1 with certificates made
//! here, then drives it with a small bounded client (tokio + hyper over rustls, TLS 1.3,
//! HTTP/1.1 keep-alive, loopback only) and prints:
//! 1. closed-loop throughput and p50/p99 of `POST /mutate` (an opted-in Job CREATE) next to
//!    `GET /healthz` on the same TLS listener;
//!    A third line posts a review that is allowed unchanged (a Job UPDATE of the same size),
//!    which separates the cost of moving the review over TLS from the cost of injecting;
//! 2. latency percentiles of `/mutate` at a fixed rate (default 1000 req/s), counted from
//!    the scheduled start whenever the client is behind, so a stall is not hidden;
//! 3. the pure inject step per Job, and the whole pure review (parse, inject, serialize).
//!
//! Set `STATUS_REPORTER_WEBHOOK_BIN` to benchmark a prebuilt server binary.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::batch::v1::Job;
use stand_in::webhook_process::{Pki, SecretDir, Server, connect};
use status_reporter_webhook::config::InjectConfig;

const REVIEW: &str = include_str!("../../data/admission/create-job.json");
const REVIEW_SKIPPED: &str = include_str!("../../data/admission/update-job.json");

struct Options {
    seconds: u64,
    connections: usize,
    rate: u64,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        seconds: 5,
        connections: 8,
        rate: 1000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{name} needs a positive integer"))
        };
        match flag.as_str() {
            "--seconds" => o.seconds = value("--seconds")?,
            "--connections" => o.connections = value("--connections")? as usize,
            "--rate" => o.rate = value("--rate")?,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; accepted: --seconds N, --connections N, --rate N"
                ));
            }
        }
    }
    Ok(o)
}

fn main() {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench-webhook: {e}");
            std::process::exit(2);
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    pure_inject();

    let pki = Pki::new();
    let secret = SecretDir::new(&pki.issue());
    let server = Server::start(
        &server_binary(),
        &secret,
        &["--log-level", "warn"],
        Duration::from_secs(30),
    );
    println!(
        "server: {} (pid {}), client: {} connections, TLS 1.3, HTTP/1.1 keep-alive",
        server.addr,
        server.pid(),
        options.connections
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = Client::new(server.addr, &pki);
        let seconds = Duration::from_secs(options.seconds);
        // Warm up both paths (connections, allocator, branch predictors).
        client
            .closed_loop(Target::Healthz, options.connections, Duration::from_secs(1))
            .await;
        client
            .closed_loop(Target::Mutate, options.connections, Duration::from_secs(1))
            .await;

        let health = client
            .closed_loop(Target::Healthz, options.connections, seconds)
            .await;
        let mutate = client
            .closed_loop(Target::Mutate, options.connections, seconds)
            .await;
        let skipped = client
            .closed_loop(Target::MutateSkipped, options.connections, seconds)
            .await;
        println!("\nclosed loop, {}s each:", options.seconds);
        health.print("GET /healthz");
        mutate.print("POST /mutate");
        skipped.print("  (skipped)");
        println!(
            "  mutate/healthz throughput: {:.0}% (target >= 80%)",
            100.0 * mutate.rps() / health.rps()
        );

        let fixed = client.fixed_rate(options.rate, seconds).await;
        println!(
            "\nfixed rate {} req/s for {}s, POST /mutate:",
            options.rate, options.seconds
        );
        fixed.print("POST /mutate");
        let (sum, count) = client.handler_time().await;
        println!(
            "  server-side review time (all runs, from /metrics): mean {:.1} us over {count} reviews",
            sum / count.max(1.0) * 1e6
        );
        println!(
            "  p99 {} 2 ms target",
            if fixed.percentile(99.0) < Duration::from_millis(2) {
                "meets the <"
            } else {
                "MISSES the <"
            }
        );
    });
    drop(server);
}

/// Times the pure steps in process: `inject` on a parsed Job, and `review` on raw bytes.
fn pure_inject() {
    let config = InjectConfig::default();
    let job = fixture_job();
    let iterations = 20_000;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let injection =
            status_reporter_webhook::inject::inject(&job, None, &config).expect("inject");
        std::hint::black_box(&injection);
        samples.push(start.elapsed());
    }
    let inject = Stats::new(samples, Duration::ZERO);
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let reviewed = status_reporter_webhook::admission::review(REVIEW.as_bytes(), &config);
        std::hint::black_box(reviewed.to_json());
        samples.push(start.elapsed());
    }
    let review = Stats::new(samples, Duration::ZERO);
    println!("pure steps, {iterations} iterations each (no I/O):");
    println!(
        "  inject(Job) -> patch:              mean {:>6.1} us  p50 {:>6.1} us  p99 {:>6.1} us",
        us(inject.mean()),
        us(inject.percentile(50.0)),
        us(inject.percentile(99.0))
    );
    println!(
        "  review(bytes) -> response bytes:   mean {:>6.1} us  p50 {:>6.1} us  p99 {:>6.1} us",
        us(review.mean()),
        us(review.percentile(50.0)),
        us(review.percentile(99.0))
    );
}

/// The Job inside the AdmissionReview fixture, as the webhook receives it.
fn fixture_job() -> Job {
    let review: serde_json::Value = serde_json::from_str(REVIEW).expect("fixture");
    serde_json::from_value(review["request"]["object"].clone()).expect("fixture Job")
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The release server next to this binary, built first if needed.
fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("STATUS_REPORTER_WEBHOOK_BIN") {
        return PathBuf::from(p);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "status-reporter-webhook",
            "--bin",
            "status-reporter-webhook",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .expect("cannot run cargo");
    assert!(status.success(), "building the release webhook failed");
    let exe = std::env::current_exe().expect("current_exe");
    let path = exe.with_file_name("status-reporter-webhook");
    assert!(path.is_file(), "{} not found", path.display());
    path
}

#[derive(Clone, Copy)]
enum Target {
    Healthz,
    Mutate,
    MutateSkipped,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl Client {
    fn new(addr: SocketAddr, pki: &Pki) -> Client {
        Client {
            addr,
            tls: Arc::new(pki.client_config(&[&rustls::version::TLS13], b"http/1.1")),
        }
    }

    async fn connect(&self) -> Sender {
        let tls = connect(self.addr, self.tls.clone())
            .await
            .expect("connect and TLS handshake");
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        send
    }

    async fn once(send: &mut Sender, target: Target) {
        let req = match target {
            Target::Healthz => Request::get("/healthz")
                .header("host", "localhost")
                .body(Full::new(Bytes::new())),
            Target::Mutate | Target::MutateSkipped => Request::post("/mutate")
                .header("host", "localhost")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(match target {
                    Target::Mutate => REVIEW.as_bytes(),
                    _ => REVIEW_SKIPPED.as_bytes(),
                }))),
        }
        .expect("request");
        send.ready().await.expect("connection closed");
        let res = send.send_request(req).await.expect("request failed");
        assert!(res.status().is_success(), "status {}", res.status());
        let body = res.into_body().collect().await.expect("body").to_bytes();
        std::hint::black_box(body);
    }

    /// Sum and count of the server's admission duration histogram.
    async fn handler_time(&self) -> (f64, f64) {
        let mut send = self.connect().await;
        let req = Request::get("/metrics")
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .expect("request");
        let res = send.send_request(req).await.expect("metrics");
        let body = res.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&body);
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (
            value("status_reporter_webhook_admission_duration_seconds_sum"),
            value("status_reporter_webhook_admission_duration_seconds_count"),
        )
    }

    /// Every connection sends its next request as soon as the previous answer arrives.
    async fn closed_loop(&self, target: Target, connections: usize, duration: Duration) -> Stats {
        let start = Instant::now();
        let end = start + duration;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let client = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut send = client.connect().await;
                let mut samples = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    Client::once(&mut send, target).await;
                    samples.push(t.elapsed());
                }
                samples
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        Stats::new(all, start.elapsed())
    }

    /// Sends at a fixed total rate spread over a few connections; latency counts from the
    /// scheduled start, so a slow answer also delays (and penalises) the ones behind it.
    async fn fixed_rate(&self, rate: u64, duration: Duration) -> Stats {
        let connections = 4u64.min(rate);
        let per_connection = Duration::from_secs_f64(connections as f64 / rate as f64);
        let total = rate * duration.as_secs() / connections;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..connections {
            let client = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut send = client.connect().await;
                let first = tokio::time::Instant::now()
                    + per_connection.mul_f64(i as f64 / connections as f64);
                let mut samples = Vec::with_capacity(total as usize);
                for n in 0..total {
                    let scheduled = first + per_connection * n as u32;
                    // Open-loop pacing: sleeping until the scheduled send time is the
                    // fixed request rate under measurement, not a wait for an event.
                    // On time: count from when the timer fired (tokio's timer has 1 ms
                    // granularity; its lateness is the client's, not the server's). Behind
                    // schedule because the previous answer was slow: count from the
                    // scheduled time, so the queueing shows in the percentiles.
                    let started = if tokio::time::Instant::now() < scheduled {
                        tokio::time::sleep_until(scheduled).await;
                        tokio::time::Instant::now()
                    } else {
                        scheduled
                    };
                    Client::once(&mut send, Target::Mutate).await;
                    samples.push(started.elapsed());
                }
                samples
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("task"));
        }
        Stats::new(all, start.elapsed())
    }
}

struct Stats {
    sorted: Vec<Duration>,
    wall: Duration,
}

impl Stats {
    fn new(mut samples: Vec<Duration>, wall: Duration) -> Stats {
        samples.sort_unstable();
        Stats {
            sorted: samples,
            wall,
        }
    }

    fn rps(&self) -> f64 {
        self.sorted.len() as f64 / self.wall.as_secs_f64()
    }

    fn mean(&self) -> Duration {
        let sum: Duration = self.sorted.iter().sum();
        sum / self.sorted.len().max(1) as u32
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let i = ((p / 100.0) * (self.sorted.len() - 1) as f64).round() as usize;
        self.sorted[i]
    }

    fn print(&self, what: &str) {
        println!(
            "  {what:<13} {:>8} requests  {:>8.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
            self.sorted.len(),
            self.rps(),
            self.percentile(50.0).as_secs_f64() * 1e3,
            self.percentile(99.0).as_secs_f64() * 1e3,
            self.sorted
                .last()
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e3,
        );
    }
}
