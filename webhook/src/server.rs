//! `serve`: the HTTPS listener. The router is public so tests can drive it in-process
//! with `tower::ServiceExt::oneshot`; [`serve`] adds TLS, timeouts and the SIGTERM drain.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

use crate::admission;
use crate::config::{InjectConfig, InjectorArgs};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::tls;

/// The apiserver caps request bodies at 3 MiB; an AdmissionReview can be a bit larger
/// than the object it carries, so allow a little headroom by default.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024 + 64 * 1024;

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

    /// Largest accepted request body in bytes; larger ones get 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Seconds a client may take to send request headers (HTTP/1.1).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_read_timeout_seconds: u64,

    /// Seconds a whole request may take, body included; then 408.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 10)]
    pub request_timeout_seconds: u64,

    /// Seconds to drain open connections after SIGTERM before closing them.
    #[arg(long, env = "DRAIN_TIMEOUT_SECONDS", default_value_t = 20)]
    pub drain_timeout_seconds: u64,

    /// How the reporter container is built.
    #[command(flatten)]
    pub injector: InjectorArgs,
}

/// State shared by the handlers.
pub struct AppState {
    /// Injector configuration.
    pub config: InjectConfig,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Ready once certificates are loaded; false again while draining.
    pub ready: AtomicBool,
}

impl AppState {
    /// State that is not ready yet.
    pub fn new(config: InjectConfig, metrics: Arc<Metrics>) -> Self {
        AppState {
            config,
            metrics,
            ready: AtomicBool::new(false),
        }
    }
}

/// The webhook's routes: `POST /mutate`, `GET /healthz`, `GET /readyz`, `GET /metrics`.
pub fn router(state: Arc<AppState>, max_body_bytes: usize, request_timeout: Duration) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .with_state(state)
}

async fn mutate(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let started = Instant::now();
    let reviewed = admission::review(&body, &state.config);
    let json = reviewed.to_json();
    let elapsed = started.elapsed().as_secs_f64();
    state.metrics.observe(reviewed.outcome, elapsed);
    tracing::info!(
        uid = %reviewed.uid,
        outcome = reviewed.outcome.as_str(),
        detail = %reviewed.detail,
        micros = (elapsed * 1e6) as u64,
        "admission review"
    );
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Loads certificates (failing before binding if they are unusable or not valid now), binds, prints
/// `listening on ADDR`, serves until SIGTERM/SIGINT, then drains. A second signal aborts
/// the drain.
pub async fn serve(args: ServeArgs) -> Result<()> {
    let config = args.injector.to_config()?;
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
    let tls_config = tls::server_config(resolver)?;

    let state = Arc::new(AppState::new(config, metrics));
    let app = router(
        state.clone(),
        args.max_body_bytes,
        Duration::from_secs(args.request_timeout_seconds),
    );

    let listener = std::net::TcpListener::bind(args.listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    tracing::info!(%addr, "listening");

    let handle = axum_server::Handle::new();
    // TCP_NODELAY: a response can leave in more than one TLS write; with Nagle the second
    // would wait for the client's (delayed) ACK.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls_config)),
    )
    .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let listener = Listener(Some(tokio::net::TcpListener::from_std(listener)?));
    let mut server = axum_server::Server::<ListenAddr>::from_listener(listener)
        .acceptor(acceptor)
        .handle(handle.clone());
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(args.header_read_timeout_seconds));
    server
        .http_builder()
        .http2()
        .timer(hyper_util::rt::TokioTimer::new());

    let drain = Duration::from_secs(args.drain_timeout_seconds);
    let signal_state = state.clone();
    tokio::spawn(async move {
        if shutdown_signal().await.is_err() {
            return;
        }
        tracing::info!(?drain, "shutdown signal: draining connections");
        signal_state.ready.store(false, Ordering::Relaxed);
        handle.graceful_shutdown(Some(drain));
        if shutdown_signal().await.is_ok() {
            tracing::warn!("second shutdown signal: closing connections now");
            handle.shutdown();
        }
    });

    state.ready.store(true, Ordering::Relaxed);
    server.serve(app.into_make_service()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The listening address as axum-server sees it; only there to give it a [`Listener`].
#[derive(Clone, Copy, Debug)]
struct ListenAddr(SocketAddr);

impl axum_server::Address for ListenAddr {
    type Stream = tokio::net::TcpStream;
    type Listener = Listener;
}

/// The TCP listener. axum-server drops it when the drain starts; it logs once the socket is
/// closed, so the log line means new connections are now refused.
struct Listener(Option<tokio::net::TcpListener>);

impl Drop for Listener {
    fn drop(&mut self) {
        drop(self.0.take());
        tracing::info!("stopped accepting connections; draining");
    }
}

impl Listener {
    fn get(&self) -> std::io::Result<&tokio::net::TcpListener> {
        self.0
            .as_ref()
            .ok_or_else(|| std::io::Error::other("listener already closed"))
    }
}

impl axum_server::AddrListener<tokio::net::TcpStream, ListenAddr> for Listener {
    async fn bind_to(addr: ListenAddr) -> std::io::Result<Self> {
        Ok(Listener(Some(tokio::net::TcpListener::bind(addr.0).await?)))
    }

    async fn accept_stream(&self) -> std::io::Result<(tokio::net::TcpStream, ListenAddr)> {
        let (stream, addr) = self.get()?.accept().await?;
        Ok((stream, ListenAddr(addr)))
    }

    fn get_local_addr(&self) -> std::io::Result<ListenAddr> {
        self.get()?.local_addr().map(ListenAddr)
    }
}

async fn shutdown_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    Ok(())
}
