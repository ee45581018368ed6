//! The transport floor: a server on the webhook's own stack (tokio, axum-server over rustls
//! with the webhook's TLS configuration, `TCP_NODELAY`, hyper with the same HTTP/1.1
//! settings, axum with the same body limit and timeout layers) that reads the request body
//! and answers with a body of a given size, without looking at it. What `/mutate` costs
//! above this server for the same bytes is the review's own cost.
//!
//! It runs as `bench-webhook serve --listen ADDR --tls-cert CERT --tls-key KEY`, the same
//! command line as the webhook's, so the harness that starts the webhook starts it too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use status_reporter_webhook::server::DEFAULT_MAX_BODY_BYTES;
use status_reporter_webhook::tls;
use tower_http::timeout::TimeoutLayer;

/// Request header naming how many bytes the floor answers with. The benchmark sends it to
/// the webhook too (which ignores it), so both servers read the same request bytes.
pub const RESPONSE_BYTES_HEADER: &str = "x-response-bytes";

/// The largest answer the floor gives (larger than any fixture's response).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// Runs the floor server until it is killed; `args` are what follows `serve`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut listen: Option<SocketAddr> = None;
    let mut cert: Option<PathBuf> = None;
    let mut key: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .clone();
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|e| format!("--listen: {e}"))?),
            "--tls-cert" => cert = Some(value.into()),
            "--tls-key" => key = Some(value.into()),
            other => {
                return Err(format!(
                    "serve: unknown argument {other:?}; accepted: --listen ADDR, --tls-cert FILE, --tls-key FILE"
                ));
            }
        }
    }
    let (Some(listen), Some(cert), Some(key)) = (listen, cert, key) else {
        return Err("serve needs --listen, --tls-cert and --tls-key".into());
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pair = tls::load_pair(&cert, &key).map_err(|e| e.to_string())?;
    let config =
        tls::server_config(Arc::new(tls::CertResolver::new(pair))).map_err(|e| e.to_string())?;
    // The same runtime as the webhook's `main`.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(serve(listen, config))
}

async fn serve(listen: SocketAddr, config: rustls::ServerConfig) -> Result<(), String> {
    let filler = Bytes::from(vec![b' '; MAX_RESPONSE]);
    let app = Router::new()
        .route(
            "/mutate",
            post(move |headers: HeaderMap, body: Bytes| answer(filler.clone(), headers, body)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(DEFAULT_MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ));
    let listener = std::net::TcpListener::bind(listen).map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {addr}");
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
    )
    .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let mut server = axum_server::from_tcp(listener)
        .map_err(|e| e.to_string())?
        .acceptor(acceptor);
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    server
        .http_builder()
        .http2()
        .timer(hyper_util::rt::TokioTimer::new());
    server
        .serve(app.into_make_service())
        .await
        .map_err(|e| e.to_string())
}

/// The body is read in full (the extractor) and dropped; the answer is a slice of a shared
/// buffer, so the floor allocates nothing per request beyond what the stack does.
async fn answer(filler: Bytes, headers: HeaderMap, body: Bytes) -> Response {
    std::hint::black_box(&body);
    let n = headers
        .get(RESPONSE_BYTES_HEADER)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_RESPONSE);
    (
        [(header::CONTENT_TYPE, "application/json")],
        filler.slice(..n),
    )
        .into_response()
}
