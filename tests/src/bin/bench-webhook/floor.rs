//! The transport floor: a server on the webhook's own stack (its `serve` flags, [`Listener`],
//! TLS and HTTP settings, runtime, timeouts and body reader) that reads the request body and
//! answers with a body of a given size without looking at it: what `/mutate` costs above it
//! for the same bytes is the review's own. It runs as `bench-webhook serve …`, the webhook's
//! command line, so the harness that starts the webhook starts it too.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Parser;
use status_reporter_webhook::body::{BodyLimits, read_body};
use status_reporter_webhook::listener::{Connections, Listener, Timeouts};
use status_reporter_webhook::metrics::Metrics;
use status_reporter_webhook::server::{self, ServeArgs};
use status_reporter_webhook::tls;
use tower_http::timeout::TimeoutLayer;

/// Request header naming how many bytes the floor answers with. The benchmark sends it to
/// the webhook too (which ignores it), so both servers read the same request bytes.
pub const RESPONSE_BYTES_HEADER: &str = "x-response-bytes";

/// The largest answer the floor gives (larger than any fixture's response).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// `serve`'s flags, as the webhook reads them.
#[derive(Parser)]
#[command(name = "bench-webhook serve")]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Runs the floor server until it is killed; `args` are what follows `serve`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let args = std::iter::once("serve").chain(args.iter().map(String::as_str));
    let args = Cli::try_parse_from(args)?.serve;
    let bodies = args.body_limits()?;
    let timeouts = args.timeouts();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pair = tls::load_pair(&args.tls_cert, &args.tls_key)?;
    let config = tls::server_config(Arc::new(tls::CertResolver::new(pair)))?;
    // The same runtime as the webhook's `main`.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let tcp = tokio::net::TcpListener::bind(args.listen).await?;
        println!("listening on {}", tcp.local_addr()?);
        let listener = Listener {
            tcp,
            tls: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            http: server::http_builder(timeouts),
            app: app(bodies, timeouts),
            connections: Connections::new(args.max_connections),
            metrics: Arc::new(Metrics::new()),
            timeouts,
        };
        // The benchmark kills the floor; a signal would stop it as it stops the webhook.
        let (_shutdown, drain) = kubert::shutdown::sigint_or_sigterm()?;
        listener.run(drain).await;
        Ok(())
    })
}

fn app(bodies: BodyLimits, timeouts: Timeouts) -> Router {
    let filler = Bytes::from(vec![b' '; MAX_RESPONSE]);
    let bodies = Arc::new(bodies);
    Router::new()
        .route(
            "/mutate",
            post(move |request: Request| answer(filler.clone(), bodies.clone(), request)),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeouts.request,
        ))
}

/// The body is read in full, as `/mutate` reads it, and dropped; the answer is a slice of a
/// shared buffer, so the floor allocates nothing per request beyond what the stack does.
async fn answer(filler: Bytes, bodies: Arc<BodyLimits>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (body, _held) = match read_body(&parts.headers, body, &bodies).await {
        Ok(read) => read,
        Err(refusal) => return (StatusCode::BAD_REQUEST, refusal.to_string()).into_response(),
    };
    std::hint::black_box(&body);
    let n = parts
        .headers
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
