//! A best-effort Kubernetes Event on the Job recording one attempt's outcome, naming the pod,
//! its index and its attempt number, so the history stays visible where the condition moved on
//! (a retry, another shard, a superseded attempt). It is sent after the condition is written,
//! with a short timeout and no retries, so a refused or slow Event never delays or blocks the
//! condition.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::api::{Failure, Payload, send, server_message};
use crate::job_status::format_time;
use crate::outcome::Outcome;

/// Component name used in `source.component` / `reportingComponent`.
pub const COMPONENT: &str = "status-reporter";

/// Which attempt an Event tells about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    /// The reporter's pod.
    pub pod: &'a str,
    /// Its completion index (Indexed Jobs).
    pub index: Option<u32>,
    /// Its attempt number (1 for the first).
    pub attempt: u32,
    /// A newer attempt's pod, which owns the Job condition (this one left it alone).
    pub superseded_by: Option<&'a str>,
}

impl Source<'_> {
    /// `(pod P, index I, attempt N)`, plus who superseded it.
    fn describe(&self) -> String {
        let index = self.index.map_or(String::new(), |i| format!(", index {i}"));
        let superseded = self.superseded_by.map_or(String::new(), |newer| {
            format!("; superseded by pod {newer}, whose result the Job condition shows")
        });
        format!(
            "(pod {}{index}, attempt {}{superseded})",
            self.pod, self.attempt
        )
    }
}

/// The core/v1 Event for `outcome` on the Job (pure).
pub fn make_event(
    namespace: &str,
    job: &str,
    job_uid: Option<&str>,
    source: &Source<'_>,
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
        "message": format!("{} {}", outcome.message, source.describe()),
        "type": if outcome.success { "Normal" } else { "Warning" },
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": source.pod,
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
    match send(
        client,
        Method::POST,
        &uri,
        Some(Payload::json(body)),
        timeout,
    )
    .await
    {
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
