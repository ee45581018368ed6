//! The Kubernetes client: kube's own stack (auth, base URI, connect/read/write timeouts), on a
//! connector with `TCP_NODELAY`, with every response line bounded ([`crate::response_limit`]).
//!
//! kube's default connector leaves Nagle's algorithm on. A status `PUT` whose body leaves in a
//! second TLS record then waits for the API server's delayed ACK — 40 ms on Linux — on every
//! write.

use http::Response;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use tower::ServiceBuilder;

use crate::error::{Error, Result};
use crate::response_limit::{LineLimited, MAX_LINE};

/// Infers the configuration (kubeconfig or in-cluster, as `kube::Config::infer`) and builds
/// the client. kube's own retries stay off: the reporter retries itself, bounded, so that a
/// retry never outlives the pod's grace period.
pub async fn connect() -> Result<kube::Client> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| Error::KubeConfig(e.to_string()))?;
    build(config)
}

/// Builds the client for `config`.
pub fn build(config: kube::Config) -> Result<kube::Client> {
    let err = |e: kube::Error| Error::KubeConfig(e.to_string());
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = config
        .rustls_https_connector_with_connector(http)
        .map_err(err)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http_client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(err)?)
        .layer(config.extra_headers_layer().map_err(err)?)
        .map_err(tower::BoxError::from)
        .map_response(|r: Response<hyper::body::Incoming>| r.map(|b| LineLimited::new(b, MAX_LINE)))
        .service(http_client);
    Ok(kube::Client::new(service, config.default_namespace))
}
