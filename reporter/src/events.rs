//! A best-effort Kubernetes Event on the Job recording the outcome. It is sent after the
//! condition is written, with a short timeout and no retries, so a refused or slow Event never
//! delays or blocks the condition.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::api::{Failure, send, server_message};
use crate::job_status::format_time;
use crate::outcome::Outcome;

/// Component name used in `source.component` / `reportingComponent`.
pub const COMPONENT: &str = "status-reporter";

/// The core/v1 Event for `outcome` on the Job (pure).
pub fn make_event(
    namespace: &str,
    job: &str,
    job_uid: Option<&str>,
    pod: &str,
    outcome: &Outcome,
    now: jiff::Timestamp,
) -> Value {
    let time = format_time(now);
    // Same naming scheme as client-go's recorder: <object>.<unix nanos in hex>.
    let name = format!("{job}.{:x}", now.as_nanosecond());
    let mut involved =
        json!({"apiVersion": "batch/v1", "kind": "Job", "name": job, "namespace": namespace});
    if let Some(uid) = job_uid {
        involved["uid"] = json!(uid);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": involved,
        "reason": outcome.reason,
        "message": outcome.message,
        "type": if outcome.success { "Normal" } else { "Warning" },
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": pod,
        "firstTimestamp": time,
        "lastTimestamp": time,
        "count": 1,
    })
}

/// Posts the event; logs and swallows any failure.
pub async fn record(
    client: &kube::Client,
    namespace: &str,
    event: &Value,
    timeout: Duration,
) -> bool {
    let uri = format!("/api/v1/namespaces/{namespace}/events");
    let body = match serde_json::to_vec(event) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode event");
            return false;
        }
    };
    match send(client, Method::POST, &uri, Some(body), timeout).await {
        Ok(reply) if reply.status.is_success() => true,
        Ok(reply) => {
            tracing::warn!(
                code = reply.status.as_u16(),
                error = %server_message(&reply.body),
                "event not recorded (needs verb create on resource events); the condition is written regardless"
            );
            false
        }
        Err(Failure::Transient { what, .. }) | Err(Failure::Permanent { message: what, .. }) => {
            tracing::warn!(error = %what, "event not recorded; the condition is written regardless");
            false
        }
    }
}
