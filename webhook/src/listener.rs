//! The HTTPS listener: accepts TCP connections within the connection limit (refusing the
//! excess before TLS), bounds the TLS handshake and the wait for a request, closes idle
//! connections, and drains them on shutdown.
//!
//! Every connection gets the header-read timeout from accept to finish its TLS handshake and
//! send a complete request head, whatever the protocol (HTTP/1.1 or HTTP/2, with or without
//! the preface); after that, it may stay idle between requests for as long again. Then it is
//! closed: at once if it never sent a request, else gracefully (HTTP/2 GOAWAY).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep_until};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::connections::{Admission, Connections, Slot};
use crate::metrics::Metrics;

/// How long connections and requests may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From accept to a complete request head (TLS handshake included), and the longest a
    /// connection may sit idle between requests.
    pub header_read: Duration,
    /// The longest a request may take; also how long a connection being closed gracefully
    /// gets to finish the request in progress.
    pub request: Duration,
}

/// Everything a connection's task needs.
pub struct Listener {
    /// The bound socket.
    pub tcp: TcpListener,
    /// TLS with the hot-reloaded certificate.
    pub tls: TlsAcceptor,
    /// HTTP/1.1 and HTTP/2 settings.
    pub http: auto::Builder<TokioExecutor>,
    /// The routes.
    pub app: Router,
    /// The open connections and their limit.
    pub connections: Arc<Connections>,
    /// Counts refused and evicted connections.
    pub metrics: Arc<Metrics>,
    /// Timeouts.
    pub timeouts: Timeouts,
}

/// How long an idle connection being closed gracefully gets to finish the exchange (HTTP/2:
/// GOAWAY, the client's PING answer, the final GOAWAY) before it is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How often a connection refused at the limit is logged at most.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors), instead of spinning.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

impl Listener {
    /// Accepts connections until `drain` is cancelled, each served on a task of `tracker`;
    /// then closes the socket, so new connections are refused while the open ones drain.
    pub async fn run(self, drain: CancellationToken, tracker: TaskTracker) {
        let shared = Arc::new(Shared {
            tls: self.tls,
            http: self.http,
            app: self.app,
            timeouts: self.timeouts,
            drain: drain.clone(),
        });
        let mut refusals = RefusalLog::default();
        loop {
            let accepted = tokio::select! {
                biased;
                _ = drain.cancelled() => break,
                accepted = self.tcp.accept() => accepted,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection; retrying");
                    tokio::select! {
                        _ = drain.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_RETRY) => continue,
                    }
                }
            };
            let slot = match self.connections.admit() {
                Admission::Admitted(slot) => slot,
                Admission::Evicted(slot) => {
                    self.metrics.connection_evicted();
                    tracing::debug!("at the connection limit: closed the longest-idle connection");
                    slot
                }
                Admission::Refused => {
                    // Closed before any TLS work: the cheapest answer to a flood.
                    drop(tcp);
                    self.metrics.connection_refused();
                    refusals.note(self.connections.len());
                    continue;
                }
            };
            // A response can leave in more than one TLS write; with Nagle the second would
            // wait for the client's (delayed) ACK.
            let _ = tcp.set_nodelay(true);
            tracker.spawn(serve_connection(shared.clone(), tcp, slot));
        }
        drop(self.tcp);
        tracing::info!("stopped accepting connections; draining");
    }
}

struct Shared {
    tls: TlsAcceptor,
    http: auto::Builder<TokioExecutor>,
    app: Router,
    timeouts: Timeouts,
    drain: CancellationToken,
}

/// Logs refusals at the connection limit at most once per [`REFUSAL_LOG_INTERVAL`].
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    since_last: u64,
}

impl RefusalLog {
    fn note(&mut self, open: usize) {
        self.since_last += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL)
        {
            tracing::warn!(
                refused = self.since_last,
                open,
                "connection limit reached and every connection busy: closing new connections at accept (--max-connections)"
            );
            self.last = Some(now);
            self.since_last = 0;
        }
    }
}

/// One connection from accept to close.
async fn serve_connection(shared: Arc<Shared>, tcp: TcpStream, slot: Slot) {
    let conn = slot.connection().clone();
    let timeouts = shared.timeouts;
    let first_request_by = Instant::now() + timeouts.header_read;

    let tls = tokio::select! {
        biased;
        _ = conn.closed() => return,
        _ = shared.drain.cancelled() => return,
        handshake = tokio::time::timeout_at(first_request_by, shared.tls.accept(tcp)) => match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                tracing::debug!(%error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake not finished within the header-read timeout; closing");
                return;
            }
        },
    };

    let service = {
        let (app, conn) = (shared.app.clone(), conn.clone());
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let started = conn.request_started();
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await;
                drop(started);
                response
            }
        })
    };
    let http = shared.http.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(http);

    // When the connection has been idle too long (`None` while a request is in progress),
    // and, once a graceful close has begun, when it is dropped anyway: after the request in
    // progress (bounded by the request timeout), or a moment after going idle.
    let mut idle_until = Some(first_request_by);
    let mut closing_until: Option<Instant> = None;
    let close_by = |busy: bool| Instant::now() + if busy { timeouts.request } else { CLOSE_GRACE };
    loop {
        tokio::select! {
            biased;
            _ = conn.closed() => break,
            _ = http.as_mut() => break,
            _ = shared.drain.cancelled(), if closing_until.is_none() => {
                if !conn.has_served() && !conn.is_busy() {
                    break; // nothing to finish
                }
                // HTTP/1.1: closes now if idle, after the response if not; HTTP/2: GOAWAY.
                http.as_mut().graceful_shutdown();
                closing_until = Some(close_by(conn.is_busy()));
            }
            _ = conn.activity() => {
                let busy = conn.is_busy();
                idle_until = (!busy).then(|| Instant::now() + timeouts.header_read);
                // While closing no new request can start, so this ends.
                if let Some(until) = closing_until.as_mut() {
                    *until = if busy { close_by(true) } else { (*until).min(close_by(false)) };
                }
            }
            _ = sleep_until(idle_until.unwrap_or_else(Instant::now)), if idle_until.is_some() && closing_until.is_none() => {
                if !conn.has_served() {
                    tracing::debug!("no complete request head within the header-read timeout; closing");
                    break;
                }
                http.as_mut().graceful_shutdown();
                closing_until = Some(close_by(false));
            }
            _ = sleep_until(closing_until.unwrap_or_else(Instant::now)), if closing_until.is_some() => break,
        }
    }
    // Dropping the connection closes the socket.
}
