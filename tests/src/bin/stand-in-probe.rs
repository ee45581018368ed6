//! Measures the stand-in itself, so benchmarks that run against it know its share of the
//! latency: request round trip over a keep-alive connection, and write → watch event delivery.
//!
//! `cargo run --release -p status-reporter-tests --bin stand-in-probe [-- ROUNDS]`

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use stand_in::StandIn;
use stand_in::fixtures::PodBuilder;

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: n={} median={:?} p99={:?} max={:?}",
        samples.len(),
        pick(0.5),
        pick(0.99),
        samples[samples.len() - 1]
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("ROUNDS must be a positive integer, got {n:?}"))?,
        None => 2000,
    };
    let stand = StandIn::start();
    stand.create_pod(PodBuilder::new("default", "p").build());
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let base = stand.url();

    let get: hyper::Uri = format!("{base}/api/v1/namespaces/default/pods/p").parse()?;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let response = client.get(get.clone()).await?;
        response.into_body().collect().await?;
        samples.push(start.elapsed());
    }
    summary("GET pod round trip", samples);

    let watch: hyper::Uri = format!(
        "{base}/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name%3Dp&resourceVersion={}",
        stand.resource_version()
    )
    .parse()?;
    let mut body = client.get(watch).await?.into_body();
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let start = Instant::now();
        stand.update_pod_status("default", "p", |s| {
            s["message"] = format!("round {i}").into()
        });
        loop {
            let frame = body.frame().await.ok_or("watch ended")??;
            // Bookmarks don't count: only this pod's own MODIFIED event.
            let Some(data) = frame.data_ref() else {
                continue;
            };
            let event: serde_json::Value = serde_json::from_slice(data)?;
            if event["type"] == "MODIFIED" {
                break;
            }
        }
        samples.push(start.elapsed());
    }
    summary("write -> watch event", samples);
    Ok(())
}
