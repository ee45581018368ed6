//! The load generator: tokio + hyper over rustls (TLS 1.3, HTTP/1.1 keep-alive), loopback
//! only, every loop bounded in time. A closed loop (each connection sends its next request as
//! soon as the answer arrives) and a fixed rate (latency counted from the scheduled start).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::join_all;
use harness::webhook_process::{Pki, Server, http1};
use http_body_util::{BodyExt, Full};
use hyper::Request;

use crate::floor::RESPONSE_BYTES_HEADER;

/// A `POST /mutate` of a review; the floor answers `response_bytes` bytes.
#[derive(Clone)]
pub struct Target {
    /// The AdmissionReview body.
    pub body: Bytes,
    /// Size of the webhook's answer to it.
    pub response_bytes: usize,
}

impl Target {
    fn request(&self) -> Request<Full<Bytes>> {
        Request::post("/mutate")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header(RESPONSE_BYTES_HEADER, self.response_bytes.to_string())
            .body(Full::new(self.body.clone()))
            .expect("request")
    }
}

/// One open connection.
pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Connects to one server.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    /// The server's process id, for its CPU time.
    pub pid: u32,
}

impl Client {
    /// A client of `server`, trusting `pki`.
    pub fn new(server: &Server, pki: &Pki) -> Client {
        Client {
            addr: server.addr,
            tls: Arc::new(pki.client_config(&[&rustls::version::TLS13], b"http/1.1")),
            pid: server.pid(),
        }
    }

    async fn connect(&self) -> Sender {
        http1(self.addr, self.tls.clone()).await
    }

    /// One request; returns the answer's body.
    async fn once(send: &mut Sender, target: &Target) -> Bytes {
        send.ready().await.expect("connection closed");
        let res = send
            .send_request(target.request())
            .await
            .expect("request failed");
        assert!(res.status().is_success(), "status {}", res.status());
        res.into_body().collect().await.expect("body").to_bytes()
    }

    /// The server's answer to one `target`, on a connection of its own.
    pub async fn answer(&self, target: &Target) -> Bytes {
        Client::once(&mut self.connect().await, target).await
    }

    /// `n` connections, each TLS- and HTTP-handshaken.
    pub async fn connect_many(&self, n: usize) -> Vec<Sender> {
        join_all((0..n).map(|_| self.connect())).await
    }

    /// Every connection of `senders` (open already, so no handshake falls inside the
    /// measurement) sends its next request as soon as the previous answer arrives; gives them
    /// back for the next run.
    pub async fn closed_loop_on(
        senders: Vec<Sender>,
        target: &Target,
        duration: Duration,
    ) -> (Stats, Vec<Sender>) {
        let start = Instant::now();
        let end = start + duration;
        let tasks = senders.into_iter().map(|mut send| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    Client::once(&mut send, &target).await;
                    samples.push(t.elapsed());
                }
                (samples, send)
            })
        });
        let done = join_all(tasks).await.into_iter().map(|t| t.expect("task"));
        let (samples, senders): (Vec<Vec<Duration>>, _) = done.unzip();
        (Stats::new(samples.concat(), start.elapsed()), senders)
    }

    /// Sends at a fixed total rate spread over a few connections; latency counts from the
    /// scheduled start, so a slow answer also delays (and penalises) the ones behind it.
    pub async fn fixed_rate(&self, target: &Target, rate: u64, duration: Duration) -> Stats {
        let connections = 4u64.min(rate);
        let per_connection = Duration::from_secs_f64(connections as f64 / rate as f64);
        let total = rate * duration.as_secs() / connections;
        let start = Instant::now();
        let tasks = (0..connections).map(|i| {
            let client = self.clone();
            let target = target.clone();
            tokio::spawn(async move {
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
                    Client::once(&mut send, &target).await;
                    samples.push(started.elapsed());
                }
                samples
            })
        });
        let all = join_all(tasks)
            .await
            .into_iter()
            .flat_map(|t| t.expect("task"));
        Stats::new(all.collect(), start.elapsed())
    }
}

/// Latency samples of one run.
pub struct Stats {
    /// The samples, in no order.
    pub samples: Vec<Duration>,
    wall: Duration,
}

impl Stats {
    /// Samples taken over `wall`.
    pub fn new(samples: Vec<Duration>, wall: Duration) -> Stats {
        Stats { samples, wall }
    }

    /// The runs together: their samples, and the sum of their wall times.
    pub fn merge(parts: Vec<Stats>) -> Stats {
        let wall = parts.iter().map(|p| p.wall).sum();
        Stats::new(parts.into_iter().flat_map(|p| p.samples).collect(), wall)
    }

    /// Requests per second of wall time.
    pub fn rps(&self) -> f64 {
        self.samples.len() as f64 / self.wall.as_secs_f64()
    }

    /// The `p`th percentile (nearest rank).
    pub fn percentile(&self, p: f64) -> Duration {
        harness::measure::percentile(&mut self.samples.clone(), p)
    }
}
