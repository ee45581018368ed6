//! The HTTPS listener: hyper serves each connection with the webhook's HTTP settings (its
//! HTTP/1.1 header timeout among them) and kubert's drain tells it when to stop. Written here
//! is what those crates do not do, each for a reason the tests pin:
//! - a cap on open connections where a new connection takes the place of the one idle the
//!   longest (refused at accept, before TLS, only when every connection is busy), so clients
//!   that connect and send nothing cannot lock the API server out;
//! - one deadline from accept to a finished TLS handshake and a complete request head, and as
//!   long again between requests, on HTTP/2 as on HTTP/1.1 (hyper times heads on HTTP/1.1
//!   only);
//! - during the drain, a connection that stays idle while it closes gracefully is dropped
//!   after a second: an HTTP/2 client that never answers the GOAWAY's PING would otherwise
//!   hold the drain to its timeout.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use kubert::shutdown::Watch;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

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
/// How often connections refused at the limit are logged at most.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors), instead of spinning.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

impl Listener {
    /// Accepts connections until the drain starts, each served on a task of its own that
    /// holds `drain` until it ends; then closes the socket, so new connections are refused
    /// while the open ones drain.
    pub async fn run(self, drain: Watch) {
        let Listener {
            tcp,
            tls,
            http,
            app,
            connections,
            metrics,
            timeouts,
        } = self;
        let shared = Arc::new(Shared {
            tls,
            http,
            app,
            timeouts,
        });
        let mut stop = std::pin::pin!(drain.clone().signaled());
        let (mut refused, mut logged) = (0u64, None::<Instant>);
        loop {
            let accepted = tokio::select! {
                biased;
                _ = &mut stop => break,
                accepted = tcp.accept() => accepted,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection; retrying");
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(ACCEPT_RETRY) => continue,
                    }
                }
            };
            let slot = match connections.admit() {
                Some((slot, evicted)) => {
                    if evicted {
                        metrics.connection_evicted();
                    }
                    slot
                }
                None => {
                    // Closed before any TLS work: the cheapest answer to a flood.
                    drop(tcp);
                    metrics.connection_refused();
                    refused += 1;
                    if logged.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL) {
                        tracing::warn!(
                            refused,
                            open = connections.len(),
                            "connection limit reached and every connection busy: closing new connections at accept (--max-connections)"
                        );
                        (refused, logged) = (0, Some(Instant::now()));
                    }
                    continue;
                }
            };
            // A response can leave in more than one TLS write; with Nagle the second would
            // wait for the client's (delayed) ACK.
            let _ = tcp.set_nodelay(true);
            tokio::spawn(serve_connection(shared.clone(), tcp, slot, drain.clone()));
        }
        drop(tcp);
        tracing::info!("stopped accepting connections; draining");
    }
}

struct Shared {
    tls: TlsAcceptor,
    http: auto::Builder<TokioExecutor>,
    app: Router,
    timeouts: Timeouts,
}

/// One connection from accept to close.
async fn serve_connection(shared: Arc<Shared>, tcp: TcpStream, slot: Slot, drain: Watch) {
    let conn = slot.0.clone();
    let timeouts = shared.timeouts;
    let first_request_by = Instant::now() + timeouts.header_read;
    let mut drained = std::pin::pin!(drain.signaled());

    let tls = tokio::select! {
        biased;
        _ = conn.close.notified() => return,
        _ = &mut drained => return,
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
    let mut http = std::pin::pin!(http);

    // When the connection has been idle too long (`None` while a request is in progress),
    // and, once a graceful close has begun, when it is dropped anyway: after the request in
    // progress (bounded by the request timeout), or a moment after going idle.
    let mut idle_until = Some(first_request_by);
    let mut closing_until: Option<Instant> = None;
    // Held until the connection ends: the drain is over when every connection's is dropped.
    let mut release = None;
    let close_by = |busy: bool| Instant::now() + if busy { timeouts.request } else { CLOSE_GRACE };
    loop {
        tokio::select! {
            biased;
            _ = conn.close.notified() => break,
            _ = http.as_mut() => break,
            released = &mut drained, if release.is_none() => {
                release = Some(released);
                if !conn.served.load(Ordering::Acquire) && !conn.is_busy() {
                    break; // nothing to finish
                }
                // HTTP/1.1: closes now if idle, after the response if not; HTTP/2: GOAWAY.
                http.as_mut().graceful_shutdown();
                closing_until = Some(close_by(conn.is_busy()));
            }
            _ = conn.activity.notified() => {
                let busy = conn.is_busy();
                idle_until = (!busy).then(|| Instant::now() + timeouts.header_read);
                // While closing no new request can start, so this ends.
                if let Some(until) = closing_until.as_mut() {
                    *until = if busy { close_by(true) } else { (*until).min(close_by(false)) };
                }
            }
            _ = sleep_until(idle_until.unwrap_or_else(Instant::now)), if idle_until.is_some() && closing_until.is_none() => {
                if !conn.served.load(Ordering::Acquire) {
                    tracing::debug!("no complete request head within the header-read timeout; closing");
                    break;
                }
                http.as_mut().graceful_shutdown();
                closing_until = Some(close_by(false));
            }
            _ = sleep_until(closing_until.unwrap_or_else(Instant::now)), if closing_until.is_some() => break,
        }
    }
    // Dropping the connection closes the socket; dropping `slot` frees its place.
    drop((http, release, slot));
}

/// The open connections, at most `--max-connections`, each known to be busy (a request in
/// progress) or idle (no request yet, or between keep-alive requests).
#[derive(Debug)]
pub struct Connections {
    max: usize,
    open: Mutex<Vec<Arc<Connection>>>,
}

/// One open connection, shared by its task and the requests it serves.
#[derive(Debug, Default)]
struct Connection {
    in_flight: AtomicUsize,
    idle_since: AtomicU64,
    /// It has sent a complete request head.
    served: AtomicBool,
    /// Woken to close it at once (evicted).
    close: Notify,
    /// Woken when a request starts or ends on it.
    activity: Notify,
}

impl Connection {
    fn is_busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.activity.notify_one();
        InFlight(self.clone())
    }
}

/// A request in progress: the connection is idle again when the last one drops.
struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        if conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            conn.idle_since.store(tick(), Ordering::Release);
        }
        conn.activity.notify_one();
    }
}

/// A connection's place in the table, given back when dropped.
pub struct Slot(Arc<Connection>, Arc<Connections>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.1.open.lock().unwrap_or_else(PoisonError::into_inner);
        // An evicted connection's entry is already gone.
        open.retain(|c| !Arc::ptr_eq(c, &self.0));
    }
}

/// Orders idle periods: a connection that became idle earlier has a smaller number.
fn tick() -> u64 {
    static CLOCK: AtomicU64 = AtomicU64::new(0);
    CLOCK.fetch_add(1, Ordering::Relaxed)
}

impl Connections {
    /// A table for at most `max` connections (at least one).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Connections {
            max: max.max(1),
            open: Mutex::new(Vec::new()),
        })
    }

    /// A place for a new connection, and whether the connection idle the longest was closed
    /// to make it; `None` when every connection is busy.
    pub fn admit(self: &Arc<Self>) -> Option<(Slot, bool)> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let evicted = open.len() >= self.max;
        if evicted {
            let (at, _) = open
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.is_busy())
                .min_by_key(|(_, c)| c.idle_since.load(Ordering::Acquire))?;
            open.swap_remove(at).close.notify_one();
        }
        let connection = Arc::new(Connection {
            idle_since: AtomicU64::new(tick()),
            ..Connection::default()
        });
        open.push(connection.clone());
        Some((Slot(connection, self.clone()), evicted))
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_longest_idle_connection_makes_room_and_busy_ones_refuse() {
        let table = Connections::new(3);
        let (first, _) = table.admit().unwrap();
        let (second, _) = table.admit().unwrap();
        let (third, _) = table.admit().unwrap();
        // `first` is busy; `second` has been idle longest; `third` just finished a request.
        let busy = first.0.request_started();
        drop(third.0.request_started());

        let (_fourth, evicted) = table.admit().unwrap();
        assert!(evicted);
        assert_eq!(table.len(), 3);
        // Its task ending later does not free the place its successor took.
        drop(second);
        assert_eq!(table.len(), 3);

        let _third_busy = third.0.request_started();
        drop(busy);
        let _first_busy = first.0.request_started();
        let _fourth_busy = _fourth.0.request_started();
        assert!(table.admit().is_none(), "every connection is busy");
    }
}
