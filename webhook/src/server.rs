//! `serve`: the routes and the process around them. The router is public so tests can drive
//! it in-process with `tower::ServiceExt::oneshot`; [`serve`] adds TLS, the limits on
//! connections and request bodies ([`crate::listener`], [`crate::body`]) and the SIGTERM
//! drain.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower_http::timeout::TimeoutLayer;

use crate::admission;
use crate::body::{BodyBudget, BodyLimits, BodyRefusal, SMALL_BODY_BYTES, read_body};
use crate::config::{InjectConfig, InjectorArgs};
use crate::error::{Error, Result};
use crate::files;
use crate::inject::OptIn;
use crate::listener::{Connections, Listener, Timeouts};
use crate::metrics::Metrics;
use crate::tls::{self, CertResolver, Validity};

/// The apiserver caps request bodies at 3 MiB; an AdmissionReview can be a bit larger
/// than the object it carries, so allow a little headroom by default.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024 + 64 * 1024;

/// Default `--max-body-memory-bytes`: see "Memory" in `docs/injection.md` for how it and
/// [`DEFAULT_MAX_CONNECTIONS`] fit the Deployment's 128 MiB limit.
pub const DEFAULT_MAX_BODY_MEMORY_BYTES: usize = 32 * 1024 * 1024;

/// Default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// HTTP/2 streams one connection may have open at once. Bodies are bounded by the shared
/// budget whatever this is; it bounds what else one connection can pin (stream state, and
/// answers a client does not read). The API server opens another connection when it needs
/// more.
pub const MAX_CONCURRENT_STREAMS: u32 = 8;

/// Largest request head: the HTTP/1.1 read buffer and the HTTP/2 header list. Also the
/// HTTP/2 flow-control windows, so what one connection can buffer before the handler
/// reads is small.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// HTTP/2 flow-control window, per stream and per connection: the protocol's default, so a
/// connection buffers at most this much body the handler has not taken yet.
const H2_WINDOW_BYTES: u32 = 64 * 1024;
/// What one HTTP/2 stream may queue for sending (reviews answer in a few KiB).
const H2_SEND_BUFFER_BYTES: usize = 64 * 1024;

/// Flags of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is printed as the
    /// first line on stdout: `listening on ADDR`.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// PEM certificate chain (watched: its directory is reloaded on change).
    #[arg(long, env = "TLS_CERT", default_value = "/etc/webhook/certs/tls.crt")]
    pub tls_cert: PathBuf,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TLS_KEY", default_value = "/etc/webhook/certs/tls.key")]
    pub tls_key: PathBuf,

    /// Largest accepted request body in bytes; larger ones get 413 (by Content-Length before
    /// anything is read, so before `100 Continue`).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES, value_parser = at_least_one::<usize>())]
    pub max_body_bytes: usize,

    /// Request body bytes held in memory at once, over all requests; a quarter is kept for
    /// bodies up to 64 KiB. A body that does not fit gets 503.
    #[arg(long, env = "MAX_BODY_MEMORY_BYTES", default_value_t = DEFAULT_MAX_BODY_MEMORY_BYTES)]
    pub max_body_memory_bytes: usize,

    /// Connections open at once. At the limit a new connection takes the place of the one
    /// idle the longest; if every connection is busy, it is closed at accept.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = at_least_one::<usize>())]
    pub max_connections: usize,

    /// Seconds a connection gets from accept to finish its TLS handshake and send a complete
    /// request head (HTTP/1.1 and HTTP/2), and may then stay idle between requests.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = at_least_one::<u64>())]
    pub header_read_timeout_seconds: u64,

    /// Seconds a whole request may take, body included; then 408.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 10, value_parser = at_least_one::<u64>())]
    pub request_timeout_seconds: u64,

    /// Seconds to drain open connections after SIGTERM before closing them.
    #[arg(long, env = "DRAIN_TIMEOUT_SECONDS", default_value_t = 20)]
    pub drain_timeout_seconds: u64,

    /// The namespace the webhook runs in (the Deployment sets it from the downward API): its
    /// Jobs are never injected, whatever --excluded-namespaces says.
    #[arg(long, env = "POD_NAMESPACE")]
    pub webhook_namespace: Option<String>,

    /// How the reporter container is built.
    #[command(flatten)]
    pub injector: InjectorArgs,
}

impl ServeArgs {
    /// The body limits, checked: the memory budget must hold at least one largest body in
    /// its large pool and one small body in its small pool.
    pub fn body_limits(&self) -> Result<BodyLimits> {
        let memory = self.max_body_memory_bytes;
        let least =
            (self.max_body_bytes + self.max_body_bytes.div_ceil(3)).max(4 * SMALL_BODY_BYTES);
        if memory < least || u32::try_from(memory).is_err() {
            return Err(Error::Config {
                flag: "max-body-memory-bytes",
                value: memory.to_string(),
                accepted: format!(
                    "{least} to {} bytes: three quarters must hold one body of --max-body-bytes ({}), a quarter one of 64 KiB",
                    u32::MAX,
                    self.max_body_bytes
                ),
            });
        }
        Ok(BodyLimits {
            per_request: self.max_body_bytes,
            budget: BodyBudget::new(memory),
        })
    }

    /// The timeouts.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            header_read: Duration::from_secs(self.header_read_timeout_seconds),
            request: Duration::from_secs(self.request_timeout_seconds),
        }
    }
}

/// A number above 0, checked where clap reads it.
fn at_least_one<T: TryFrom<u64> + Clone + Send + Sync + 'static>()
-> clap::builder::RangedU64ValueParser<T> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// State shared by the handlers.
pub struct AppState {
    /// Injector configuration.
    pub config: InjectConfig,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Ready once certificates are loaded; false again while draining.
    pub ready: AtomicBool,
    /// Limits on request bodies.
    pub bodies: BodyLimits,
    /// The certificate being served, when there is one: readiness fails once it expires.
    pub certificate: Option<Arc<CertResolver>>,
}

impl AppState {
    /// State that is not ready yet.
    pub fn new(config: InjectConfig, metrics: Arc<Metrics>, bodies: BodyLimits) -> Self {
        AppState {
            config,
            metrics,
            ready: AtomicBool::new(false),
            bodies,
            certificate: None,
        }
    }

    /// Readiness also requires that the certificate `resolver` serves has not expired.
    pub fn with_certificate(mut self, resolver: Arc<CertResolver>) -> Self {
        self.certificate = Some(resolver);
        self
    }
}

/// Path of the webhook entry for namespaces labelled for injection (every Job there is
/// injected unless annotated `inject: "false"`); `/mutate` is the annotation opt-in.
pub const NAMESPACE_PATH: &str = "/mutate-namespace";

/// The webhook's routes: `POST /mutate`, `POST /mutate-namespace`, `GET /healthz`,
/// `GET /readyz`, `GET /metrics`.
pub fn router(state: Arc<AppState>, request_timeout: Duration) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route(
            NAMESPACE_PATH,
            post(|state, body| mutate_as(OptIn::Namespace, state, body)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .with_state(state)
}

async fn mutate(state: State<Arc<AppState>>, request: Request) -> Response {
    mutate_as(OptIn::Annotation, state, request).await
}

async fn mutate_as(
    opt_in: OptIn,
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    // Held until the answer is built: the body's bytes count against the budget until then.
    let (body, _held) = match read_body(&parts.headers, body, &state.bodies).await {
        Ok(read) => read,
        Err(refusal) => return refuse(&state, refusal),
    };
    let started = Instant::now();
    let reviewed = admission::review_as(&body, &state.config, opt_in);
    let elapsed = started.elapsed().as_secs_f64();
    state.metrics.observe(reviewed.outcome, elapsed);
    log_review(&reviewed, (elapsed * 1e6) as u64);
    answer(reviewed.into_json())
}

/// The HTTP answer to a review: 200 with the review, or, when it could not be written, 500
/// with the reason (the API server then applies the webhook's `failurePolicy` and shows the
/// reason), never an empty 200.
fn answer(json: std::result::Result<bytes::Bytes, String>) -> Response {
    match json {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(why) => {
            tracing::error!(error = %why, "cannot answer a review");
            (StatusCode::INTERNAL_SERVER_ERROR, why).into_response()
        }
    }
}

/// The `info` line of one review, which took `micros` (public for the benchmark's profile).
pub fn log_review(reviewed: &admission::Reviewed, micros: u64) {
    // Every value a `str` (the message too): no trip through `core::fmt`, and in the text
    // format the request's values are quoted, so a uid cannot forge another field either.
    tracing::info!(
        message = "admission review",
        uid = reviewed.uid.as_str(),
        outcome = reviewed.outcome.as_str(),
        detail = reviewed.detail.as_str(),
        micros,
    );
}

fn refuse(state: &AppState, refusal: BodyRefusal) -> Response {
    let status = match refusal {
        BodyRefusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyRefusal::OverBudget => StatusCode::SERVICE_UNAVAILABLE,
        BodyRefusal::Read(_) => StatusCode::BAD_REQUEST,
    };
    state.metrics.request_refused(&refusal);
    tracing::debug!(%refusal, status = status.as_u16(), "request refused");
    (status, refusal.to_string()).into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if !state.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response();
    }
    if let Some(resolver) = &state.certificate {
        let served = resolver.current();
        if served.validity(tls::unix_now()) == Validity::Expired {
            let message = format!(
                "not ready: the served certificate expired at {}",
                tls::rfc3339(served.not_after)
            );
            return (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
        }
    }
    (StatusCode::OK, "ok").into_response()
}

/// The content type of what `prometheus_client`'s text encoder writes.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

/// HTTP/1.1 and HTTP/2 settings: timers for the timeouts, and small buffers and windows so
/// what a connection can hold before its handler reads is bounded (see [`MAX_HEAD_BYTES`]).
/// Public for the benchmark's transport floor, which serves on the same settings.
pub fn http_builder(timeouts: Timeouts) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .max_buf_size(MAX_HEAD_BYTES);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_stream_window_size(H2_WINDOW_BYTES)
        .initial_connection_window_size(H2_WINDOW_BYTES)
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .max_send_buf_size(H2_SEND_BUFFER_BYTES);
    http
}

/// Loads certificates (failing before binding if they are unusable or not valid now),
/// binds, prints `listening on ADDR`, serves until SIGTERM/SIGINT, then drains (kubert's
/// shutdown: a second signal aborts the drain). Connections still open when it returns end
/// with the runtime.
pub async fn serve(args: ServeArgs) -> Result<()> {
    let mut config = args.injector.to_config()?;
    config.own_namespace = args
        .webhook_namespace
        .as_deref()
        .map(str::trim)
        .filter(|ns| !ns.is_empty())
        .map(str::to_owned);
    let bodies = args.body_limits()?;
    let timeouts = args.timeouts();
    let max_connections = args.max_connections;
    files::reserve_for(max_connections)?;
    let initial = tls::load_pair(&args.tls_cert, &args.tls_key)?;
    tls::check_valid_at(&initial, &args.tls_cert, &args.tls_key, tls::unix_now())?;
    let metrics = Arc::new(Metrics::new());
    metrics.cert_expiry.set(initial.not_after);
    tracing::info!(serial = %initial.serial, not_after = initial.not_after, "loaded TLS certificate");
    let resolver = Arc::new(tls::CertResolver::new(initial));
    let _watch = tls::watch(
        resolver.clone(),
        args.tls_cert.clone(),
        args.tls_key.clone(),
        metrics.clone(),
    )?;
    let tls_config = tls::server_config(resolver.clone())?;

    let state = Arc::new(AppState::new(config, metrics.clone(), bodies).with_certificate(resolver));
    let app = router(state.clone(), timeouts.request);
    // Registered before binding, so a signal that arrives while starting is not lost.
    let (shutdown, drain) = kubert::shutdown::sigint_or_sigterm()
        .map_err(|e| Error::Serve(std::io::Error::other(e)))?;

    let tcp = std::net::TcpListener::bind(args.listen)?;
    tcp.set_nonblocking(true)?;
    let addr = tcp.local_addr()?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    tracing::info!(%addr, max_connections, "listening");

    let listener = Listener {
        tcp: tokio::net::TcpListener::from_std(tcp)?,
        tls: tokio_rustls::TlsAcceptor::from(Arc::new(tls_config)),
        http: http_builder(timeouts),
        app,
        connections: Connections::new(max_connections),
        metrics,
        timeouts,
    };
    let signaled = drain.clone().signaled();
    tokio::spawn(listener.run(drain));
    state.ready.store(true, Ordering::Relaxed);

    let drained = shutdown.signaled();
    tokio::pin!(drained);
    tokio::select! {
        _ = signaled => {}
        // Only when every watch is gone before any signal: nothing left to serve.
        _ = &mut drained => return Ok(()),
    }
    let drain_timeout = Duration::from_secs(args.drain_timeout_seconds);
    tracing::info!(drain = ?drain_timeout, "shutdown signal: draining connections");
    state.ready.store(false, Ordering::Relaxed);
    tokio::select! {
        drained = &mut drained => if drained.is_err() {
            tracing::warn!("second shutdown signal: closing connections now");
        },
        _ = tokio::time::sleep(drain_timeout) => {
            tracing::warn!("drain timeout passed: closing the remaining connections");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_that_cannot_be_written_is_a_500_that_says_why() {
        let response = answer(Err("cannot write the AdmissionReview answer: boom".into()));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"cannot write the AdmissionReview answer: boom");
        let response = answer(Ok(bytes::Bytes::from_static(b"{}")));
        assert_eq!(response.status(), StatusCode::OK);
    }
}
