//! Writing the one condition on the Job: pure `upsert_condition` plus a conflict-safe,
//! retrying GET `/status` → PUT `/status` with the fetched `resourceVersion`.
//!
//! The Job is handled as raw JSON so fields this client's API version does not know survive the
//! round trip, and the conditions list is edited in place so nobody else's condition (the Job
//! controller's `Complete`/`Failed`, other reporters' types) is dropped or reordered.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode, header};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::go_duration;
use crate::outcome::Outcome;

/// A source of wall-clock time for `lastTransitionTime` (injected so tests are deterministic).
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(jiff::Timestamp::now)
}

/// Kubernetes `metav1.Time`: RFC 3339, whole seconds, UTC.
pub fn format_time(ts: jiff::Timestamp) -> String {
    jiff::Timestamp::from_second(ts.as_second())
        .unwrap_or(ts)
        .to_string()
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Same status, reason and message already present: nothing to write.
    Unchanged,
    /// Condition added or updated.
    Updated,
}

/// The condition object for `outcome`.
pub fn make_condition(
    condition_type: &str,
    outcome: &Outcome,
    last_transition_time: &str,
) -> Value {
    json!({
        "type": condition_type,
        "status": outcome.status(),
        "reason": outcome.reason,
        "message": outcome.message,
        "lastTransitionTime": last_transition_time,
    })
}

/// Upserts the condition of `condition_type` in a Job object (JSON), keeping every other
/// condition where it is. `lastTransitionTime` is kept unless `status` changes.
pub fn upsert_condition(
    job: &mut Value,
    condition_type: &str,
    outcome: &Outcome,
    now: &str,
) -> Change {
    if !job.get("status").is_some_and(Value::is_object) {
        job["status"] = json!({});
    }
    let status = &mut job["status"];
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return Change::Unchanged;
    };
    let existing = conditions
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(condition_type));
    match existing {
        Some(c) => {
            let field = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
            let same_status = field(c, "status").as_deref() == Some(outcome.status());
            if same_status
                && field(c, "reason").as_deref() == Some(outcome.reason.as_str())
                && field(c, "message").as_deref() == Some(outcome.message.as_str())
            {
                return Change::Unchanged;
            }
            let ltt = match field(c, "lastTransitionTime") {
                Some(t) if same_status => t,
                _ => now.to_string(),
            };
            let mut updated = make_condition(condition_type, outcome, &ltt);
            // Keep fields we do not manage (e.g. lastProbeTime) as they were.
            if let (Some(old), Some(new)) = (c.as_object(), updated.as_object_mut()) {
                for (k, v) in old {
                    new.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            *c = updated;
        }
        None => conditions.push(make_condition(condition_type, outcome, now)),
    }
    Change::Updated
}

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

/// Result of a successful write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Whether a PUT changed the Job (false: identical condition already present).
    pub change: Change,
    /// The Job's uid (for the Event's involvedObject).
    pub uid: Option<String>,
    /// API requests made.
    pub requests: u32,
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

/// Sends one request with a timeout and classifies the outcome.
pub(crate) async fn send(
    client: &kube::Client,
    method: Method,
    uri: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> std::result::Result<Reply, Failure> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ACCEPT, "application/json");
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(body.map_or(Body::empty(), Body::from))
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

/// Server message from a `Status` body, or the raw body.
pub(crate) fn server_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

fn classify(reply: &Reply) -> Option<Failure> {
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

/// Writes the condition on one Job.
#[derive(Clone)]
pub struct StatusWriter {
    client: kube::Client,
    namespace: String,
    job: String,
    condition_type: String,
    policy: RetryPolicy,
    clock: Clock,
}

impl StatusWriter {
    /// A writer for `namespace/job`, condition `condition_type`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        job: &str,
        condition_type: &str,
        policy: RetryPolicy,
        clock: Clock,
    ) -> Self {
        StatusWriter {
            client,
            namespace: namespace.to_string(),
            job: job.to_string(),
            condition_type: condition_type.to_string(),
            policy,
            clock,
        }
    }

    /// The same writer with transient retries bounded by `deadline` instead (e.g. within a
    /// pod's termination grace period).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.policy.deadline = self.policy.deadline.min(deadline);
        self
    }

    fn status_uri(&self) -> String {
        format!(
            "/apis/batch/v1/namespaces/{}/jobs/{}/status",
            self.namespace, self.job
        )
    }

    fn api_error(&self, verb: &'static str, code: u16, message: String) -> Error {
        let hint = match code {
            403 => format!(
                " (RBAC: the reporter's service account needs verbs get and update on resource jobs/status in namespace {})",
                self.namespace
            ),
            404 => format!(
                " (check JOB_NAME and JOB_NAMESPACE: no Job {}/{})",
                self.namespace, self.job
            ),
            _ => String::new(),
        };
        Error::Api {
            verb,
            resource: "jobs/status",
            object: format!("{}/{}", self.namespace, self.job),
            code,
            message,
            hint,
        }
    }

    /// Reads the Job (via `/status`, which returns the whole object).
    pub async fn get_job(&self) -> Result<Value> {
        let reply = self.with_retries(Method::GET, None, "get").await?;
        serde_json::from_slice(&reply.body)
            .map_err(|e| self.api_error("get", 200, format!("response is not a Job: {e}")))
    }

    /// Upserts the condition: GET, edit, PUT with the fetched resourceVersion; on 409 start over.
    pub async fn write(&self, outcome: &Outcome) -> Result<Written> {
        let started = Instant::now();
        let mut requests = 0;
        loop {
            let (reply, n) = self
                .with_retries_counted(Method::GET, None, "get", started)
                .await?;
            requests += n;
            let mut job: Value = serde_json::from_slice(&reply.body)
                .map_err(|e| self.api_error("get", 200, format!("response is not a Job: {e}")))?;
            let uid = job
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            let now = format_time((self.clock)());
            if upsert_condition(&mut job, &self.condition_type, outcome, &now) == Change::Unchanged
            {
                return Ok(Written {
                    change: Change::Unchanged,
                    uid,
                    requests,
                });
            }
            let body =
                serde_json::to_vec(&job).map_err(|e| self.api_error("update", 0, e.to_string()))?;
            match self
                .with_retries_counted(Method::PUT, Some(body), "update", started)
                .await
            {
                Ok((_, n)) => {
                    requests += n;
                    return Ok(Written {
                        change: Change::Updated,
                        uid,
                        requests,
                    });
                }
                Err(Error::Api { code: 409, .. }) => {
                    // Someone else (the Job controller) wrote in between: re-read and re-apply.
                    requests += 1;
                    if started.elapsed() >= self.policy.deadline {
                        return Err(self.deadline_error(
                            requests,
                            "conflicts (HTTP 409) kept recurring".to_string(),
                        ));
                    }
                    tracing::debug!(job = %self.job, "conflict writing condition, retrying with fresh resourceVersion");
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn deadline_error(&self, attempts: u32, last: String) -> Error {
        Error::WriteDeadline {
            job: format!("{}/{}", self.namespace, self.job),
            attempts,
            deadline: go_duration::format(self.policy.deadline),
            last,
        }
    }

    async fn with_retries(
        &self,
        method: Method,
        body: Option<Vec<u8>>,
        verb: &'static str,
    ) -> Result<Reply> {
        self.with_retries_counted(method, body, verb, Instant::now())
            .await
            .map(|(r, _)| r)
    }

    /// One logical request, retried on transient failures with capped exponential backoff
    /// (honouring Retry-After) until `policy.deadline` after `started`.
    async fn with_retries_counted(
        &self,
        method: Method,
        body: Option<Vec<u8>>,
        verb: &'static str,
        started: Instant,
    ) -> Result<(Reply, u32)> {
        let uri = self.status_uri();
        let deadline = started + self.policy.deadline;
        let mut delay = self.policy.initial;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let timeout = self
                .policy
                .request_timeout
                .min(remaining.max(Duration::from_millis(1)));
            let failure =
                match send(&self.client, method.clone(), &uri, body.clone(), timeout).await {
                    Ok(reply) => match classify(&reply) {
                        None => return Ok((reply, attempts)),
                        Some(f) => f,
                    },
                    Err(f) => f,
                };
            match failure {
                Failure::Permanent { code, message } => {
                    return Err(self.api_error(verb, code, message));
                }
                Failure::Transient { what, retry_after } => {
                    // The server's Retry-After wins over our own backoff; the deadline bounds both.
                    let wait = retry_after.unwrap_or(delay);
                    let now = Instant::now();
                    if now + wait >= deadline {
                        return Err(
                            self.deadline_error(attempts, format!("{verb} jobs/status: {what}"))
                        );
                    }
                    tracing::warn!(verb, resource = "jobs/status", job = %self.job, error = %what, retry_in = %go_duration::format(wait), "transient API error, retrying");
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(self.policy.max);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(success: bool, reason: &str, message: &str) -> Outcome {
        Outcome {
            success,
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[test]
    fn upsert_keeps_other_conditions_in_order() {
        let mut job = json!({"status": {"conditions": [
            {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Available", "status": "Unknown", "reason": "Pending", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z", "lastProbeTime": "2026-01-01T00:00:00Z"},
            {"type": "DNSReady", "status": "True"}
        ]}});
        let change = upsert_condition(
            &mut job,
            "Available",
            &outcome(true, "Ok", "fine"),
            "2026-02-02T00:00:00Z",
        );
        assert_eq!(change, Change::Updated);
        assert_eq!(
            job["status"]["conditions"],
            json!([
                {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Available", "status": "True", "reason": "Ok", "message": "fine", "lastTransitionTime": "2026-02-02T00:00:00Z", "lastProbeTime": "2026-01-01T00:00:00Z"},
                {"type": "DNSReady", "status": "True"}
            ])
        );
    }

    #[test]
    fn upsert_is_idempotent_and_keeps_transition_time_on_same_status() {
        let mut job = json!({"metadata": {"name": "j"}});
        assert_eq!(
            upsert_condition(&mut job, "Available", &outcome(false, "A", "a"), "T1"),
            Change::Updated
        );
        assert_eq!(
            upsert_condition(&mut job, "Available", &outcome(false, "A", "a"), "T2"),
            Change::Unchanged
        );
        assert_eq!(job["status"]["conditions"][0]["lastTransitionTime"], "T1");
        assert_eq!(
            upsert_condition(&mut job, "Available", &outcome(false, "B", "b"), "T3"),
            Change::Updated
        );
        assert_eq!(job["status"]["conditions"][0]["lastTransitionTime"], "T1");
        assert_eq!(job["status"]["conditions"][0]["reason"], "B");
        assert_eq!(
            upsert_condition(&mut job, "Available", &outcome(true, "B", "b"), "T4"),
            Change::Updated
        );
        assert_eq!(job["status"]["conditions"][0]["lastTransitionTime"], "T4");
        assert_eq!(job["status"]["conditions"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn time_is_whole_seconds() {
        let ts: jiff::Timestamp = "2026-11-21T22:11:31.123456Z".parse().unwrap();
        assert_eq!(format_time(ts), "2026-11-21T22:11:31Z");
    }
}
