//! The raw Kubernetes API plumbing the reporter's writes share: one request with a timeout,
//! the classification of its reply (transient or permanent), the server's message, and one
//! logical request retried on transient failures (on `backon`) within a bounded deadline.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use http::{Method, Request, StatusCode, header};
use kube::client::Body;
use serde_json::Value;
use tokio::time::Instant;

use crate::go_duration;

/// Retry timing for API writes.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First backoff delay.
    pub initial: Duration,
    /// Backoff cap.
    pub max: Duration,
    /// Give up on transient errors after this long.
    pub deadline: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            deadline: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// A request body with its content type.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

impl Payload {
    /// A whole object (`PUT`, `POST`).
    pub fn json(bytes: Vec<u8>) -> Payload {
        Payload {
            bytes,
            content_type: "application/json",
        }
    }

    /// A strategic-merge patch (lists with a merge key, like pod conditions by `type`, merge).
    pub fn strategic_merge(bytes: Vec<u8>) -> Payload {
        Payload {
            bytes,
            content_type: "application/strategic-merge-patch+json",
        }
    }
}

/// One API response, already read.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: bytes::Bytes,
}

/// Why a request attempt failed.
pub(crate) enum Failure {
    /// Worth retrying after the given (server-suggested) delay.
    Transient {
        what: String,
        retry_after: Option<Duration>,
    },
    /// Retrying will not help.
    Permanent { code: u16, message: String },
}

/// How a retried request ended without success.
pub(crate) enum GaveUp {
    /// The server refused it for good.
    Permanent { code: u16, message: String },
    /// Transient failures did not clear before the deadline.
    Deadline { attempts: u32, last: String },
}

/// Sends one request with a timeout and classifies the outcome.
pub(crate) async fn send(
    client: &kube::Client,
    method: Method,
    uri: &str,
    body: Option<Payload>,
    timeout: Duration,
) -> Result<Reply, Failure> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ACCEPT, "application/json");
    if let Some(p) = &body {
        req = req.header(header::CONTENT_TYPE, p.content_type);
    }
    let req = req
        .body(body.map_or(Body::empty(), |p| Body::from(p.bytes)))
        .map_err(|e| Failure::Permanent {
            code: 0,
            message: format!("building request: {e}"),
        })?;
    let exchange = async {
        let resp = client.send(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp
            .into_body()
            .collect_bytes()
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(Reply {
            status,
            retry_after,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(Failure::Transient {
            what: format!("no response within {}", go_duration::format(timeout)),
            retry_after: None,
        }),
        Ok(Err(e)) => Err(Failure::Transient {
            what: e,
            retry_after: None,
        }),
        Ok(Ok(reply)) => Ok(reply),
    }
}

/// The API server's refusal behind a watch error — the `(code, message)` of a status it
/// answered — or `None` for transport trouble (a dropped connection, a timeout) that the
/// watcher's backoff rides out. The caller decides which codes are permanent: a 403 on a
/// watch is RBAC, and no number of retries grants the verb.
pub(crate) fn watch_refusal(error: &kube::runtime::watcher::Error) -> Option<(u16, &str)> {
    use kube::runtime::watcher::Error as W;
    match error {
        W::InitialListFailed(kube::Error::Api(s))
        | W::WatchStartFailed(kube::Error::Api(s))
        | W::WatchFailed(kube::Error::Api(s)) => Some((s.code, &s.message)),
        W::WatchError(s) => Some((s.code, &s.message)),
        _ => None,
    }
}

/// Server message from a `Status` body, or the raw body.
pub(crate) fn server_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

/// `None` for a success; 5xx and 429 are transient (with the server's Retry-After), the rest permanent.
pub(crate) fn classify(reply: &Reply) -> Option<Failure> {
    let s = reply.status;
    if s.is_success() {
        return None;
    }
    let message = server_message(&reply.body);
    if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS {
        Some(Failure::Transient {
            what: format!("HTTP {}: {message}", s.as_u16()),
            retry_after: reply.retry_after,
        })
    } else {
        Some(Failure::Permanent {
            code: s.as_u16(),
            message,
        })
    }
}

/// One logical request, retried on transient failures with capped exponential backoff until
/// `deadline`. A server's Retry-After replaces the backoff delay for that retry; a retry that
/// could not start before the deadline is not made. Returns the reply and the attempts made.
/// `label` (e.g. `get jobs/status`) prefixes the last error and the retry log lines.
pub(crate) async fn with_retries(
    client: &kube::Client,
    request: (Method, &str, Option<Payload>),
    policy: &RetryPolicy,
    deadline: Instant,
    label: &str,
) -> Result<(Reply, u32), GaveUp> {
    let (method, uri, body) = request;
    let attempts = AtomicU32::new(0);
    let attempt = || async {
        attempts.fetch_add(1, Ordering::Relaxed);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let timeout = policy
            .request_timeout
            .min(remaining.max(Duration::from_millis(1)));
        let reply = send(client, method.clone(), uri, body.clone(), timeout).await?;
        match classify(&reply) {
            None => Ok(reply),
            Some(failure) => Err(failure),
        }
    };
    let backoff = ExponentialBuilder::new()
        .with_min_delay(policy.initial)
        .with_max_delay(policy.max)
        .with_factor(2.0)
        .without_max_times();
    let result = attempt
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|f| matches!(f, Failure::Transient { .. }))
        .adjust(|f, backoff| {
            let wait = match f {
                Failure::Transient {
                    retry_after: Some(server),
                    ..
                } => *server,
                _ => backoff.unwrap_or(policy.max),
            };
            (Instant::now() + wait < deadline).then_some(wait)
        })
        .notify(|f, wait| {
            if let Failure::Transient { what, .. } = f {
                tracing::warn!(request = label, error = %what, retry_in = %go_duration::format(wait), "transient API error, retrying");
            }
        })
        .await;
    let attempts = attempts.load(Ordering::Relaxed);
    match result {
        Ok(reply) => Ok((reply, attempts)),
        Err(Failure::Permanent { code, message }) => Err(GaveUp::Permanent { code, message }),
        Err(Failure::Transient { what, .. }) => Err(GaveUp::Deadline {
            attempts,
            last: format!("{label}: {what}"),
        }),
    }
}
