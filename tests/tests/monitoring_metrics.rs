//! The alerts in `manifests/monitoring/prometheusrule.yaml` read metrics that exist: every
//! `status_reporter_webhook_*` name the rules use appears as a sample in a live `/metrics`
//! scrape of the real `status-reporter-webhook serve` over TLS, after it has answered each
//! kind of review and rejected one certificate pair. The rules' other metrics come from the
//! API server and kube-state-metrics; they are listed here so a new one is a deliberate
//! change (docs/monitoring.md names their source).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use harness::webhook_process::{Pki, SecretDir, Server, http1};
use http_body_util::{BodyExt, Full};
use hyper::Request;

const TIMEOUT: Duration = Duration::from_secs(20);
const OURS: &str = "status_reporter_webhook_";
/// Metrics the rules read from elsewhere: the API server's admission metrics and
/// kube-state-metrics, plus Prometheus's own `up`.
const EXTERNAL: [&str; 4] = [
    "apiserver_admission_webhook_fail_open_count",
    "apiserver_admission_webhook_rejection_count",
    "kube_deployment_status_replicas_available",
    "up",
];

fn rules() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/monitoring/prometheusrule.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn identifier_at(text: &str, start: usize) -> &str {
    let end = text[start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .map_or(text.len(), |n| start + n);
    &text[start..end]
}

/// The `status_reporter_webhook_*` names in the rules' expressions.
fn our_metric_names(rules: &str) -> Vec<String> {
    let mut names: Vec<String> = rules
        .match_indices(OURS)
        .map(|(at, _)| identifier_at(rules, at).to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The names followed by a `{` selector that are not ours.
fn external_metric_names(rules: &str) -> Vec<String> {
    let mut names: Vec<String> = rules
        .match_indices('{')
        .filter_map(|(at, _)| {
            let before = &rules[..at];
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |n| n + 1);
            let name = &before[start..];
            let is_metric = !name.is_empty()
                && !name.starts_with(OURS)
                && name.starts_with(|c: char| c.is_ascii_lowercase());
            is_metric.then(|| name.to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

async fn call(server: &Server, pki: &Pki, method: &str, path: &str, body: Vec<u8>) -> String {
    let config = Arc::new(pki.client_config(&[&rustls::version::TLS13], b"http/1.1"));
    let mut send = http1(server.addr, config).await;
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = tokio::time::timeout(TIMEOUT, send.send_request(req))
        .await
        .expect("answer within the timeout")
        .unwrap();
    assert_eq!(res.status(), 200, "{method} {path}");
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/data/admission/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_rules_read_only_the_external_metrics_we_list() {
    let rules = rules();
    assert_eq!(external_metric_names(&rules), EXTERNAL.map(str::to_owned));
    assert!(our_metric_names(&rules).len() >= 3, "{rules}");
}

#[tokio::test]
async fn every_webhook_metric_the_rules_use_is_in_a_live_scrape() {
    let pki = Pki::default();
    let mut secret = SecretDir::new(&pki.issue());
    let server = Server::start(
        &harness::bin::path("status-reporter-webhook"),
        &secret,
        &["--log-format", "text"],
        TIMEOUT,
    );
    // One review of each outcome, and one unusable certificate pair, so every labelled
    // series the rules select exists.
    for name in [
        "create-job",
        "update-job",
        "create-job-bad-annotation",
        "malformed",
    ] {
        call(&server, &pki, "POST", "/mutate", fixture(name)).await;
    }
    secret.write("not a certificate", "not a key");
    server
        .logs
        .wait_for(&["new certificate pair is unusable"], TIMEOUT);

    let scrape = call(&server, &pki, "GET", "/metrics", Vec::new()).await;
    let samples: Vec<&str> = scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| identifier_at(l, 0))
        .collect();
    for name in our_metric_names(&rules()) {
        assert!(
            samples.contains(&name.as_str()),
            "the rules use {name}, but the webhook does not export it:\n{scrape}"
        );
    }
    // The series the rules select by label (one directory change may bring several events,
    // so the reload count is at least one).
    for series in [
        "status_reporter_webhook_admission_requests_total{outcome=\"denied\"} 1\n",
        "status_reporter_webhook_admission_requests_total{outcome=\"invalid\"} 1\n",
        "status_reporter_webhook_certificate_reloads_total{result=\"failure\"} ",
    ] {
        assert!(scrape.contains(series), "missing {series:?} in\n{scrape}");
    }
}
