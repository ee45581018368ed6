//! Writing the one condition on the Job: pure [`upsert_condition`] plus a conflict-safe,
//! retrying GET `/status` → decide → PUT `/status` with the fetched `resourceVersion`, where a
//! 409 starts over — after a jittered backoff — from a fresh GET and a fresh decision.
//!
//! The Job is read and written as a [`DynamicObject`], so fields this client's API version does
//! not know survive the round trip, and the conditions list is edited in place so nobody
//! else's condition (the Job controller's `Complete`/`Failed`, other reporters' types) is
//! dropped or reordered.

use std::sync::Arc;

use backon::BackoffBuilder;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};

use crate::condition::Condition;
use crate::error::{Error, Result};
use crate::go_duration;
use crate::retry::{self, Deadline, GaveUp, RetryPolicy};

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
    /// The decision was to leave the condition alone (e.g. a newer attempt owns it).
    Left,
}

/// The condition object of `condition_type` for `condition`.
pub fn make_condition(
    condition_type: &str,
    condition: &Condition,
    last_transition_time: &str,
) -> Value {
    json!({
        "type": condition_type,
        "status": condition.status.as_str(),
        "reason": condition.reason,
        "message": condition.message,
        "lastTransitionTime": last_transition_time,
    })
}

/// Upserts the condition of `condition_type` in a Job object (JSON), keeping every other
/// condition where it is. `lastTransitionTime` is kept unless `status` changes.
pub fn upsert_condition(
    job: &mut Value,
    condition_type: &str,
    condition: &Condition,
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
            let same_status = field(c, "status").as_deref() == Some(condition.status.as_str());
            if same_status
                && field(c, "reason").as_deref() == Some(condition.reason.as_str())
                && field(c, "message").as_deref() == Some(condition.message.as_str())
            {
                return Change::Unchanged;
            }
            let ltt = match field(c, "lastTransitionTime") {
                Some(t) if same_status => t,
                _ => now.to_string(),
            };
            let mut updated = make_condition(condition_type, condition, &ltt);
            // Keep fields we do not manage (e.g. lastProbeTime) as they were.
            if let (Some(old), Some(new)) = (c.as_object(), updated.as_object_mut()) {
                for (k, v) in old {
                    new.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            *c = updated;
        }
        None => conditions.push(make_condition(condition_type, condition, now)),
    }
    Change::Updated
}

/// Result of a successful write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Whether a PUT changed the Job.
    pub change: Change,
    /// The Job's uid (for the Event's involvedObject).
    pub uid: Option<String>,
    /// API requests made.
    pub requests: u32,
}

/// Writes the condition on one Job.
#[derive(Clone)]
pub struct StatusWriter {
    api: Api<DynamicObject>,
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
            api: Api::namespaced_with(client, namespace, &ApiResource::erase::<Job>(&())),
            namespace: namespace.to_string(),
            job: job.to_string(),
            condition_type: condition_type.to_string(),
            policy,
            clock,
        }
    }

    fn object(&self) -> String {
        format!("{}/{}", self.namespace, self.job)
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
            object: self.object(),
            code,
            message,
            hint,
        }
    }

    fn gave_up(&self, verb: &'static str, gave_up: GaveUp, deadline: &Deadline) -> Error {
        match gave_up {
            GaveUp::Permanent { code, message } => self.api_error(verb, code, message),
            GaveUp::Deadline { attempts, last } => Error::WriteDeadline {
                job: self.object(),
                attempts,
                deadline: deadline.budget_text(),
                last,
            },
        }
    }

    /// Its retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// The wall-clock time now.
    pub fn now(&self) -> jiff::Timestamp {
        (self.clock)()
    }

    /// Reads the Job (through `/status`, which returns the whole object), retrying transient
    /// failures until `deadline`; returns it and the requests made.
    pub async fn get_job(&self, deadline: &Deadline) -> Result<(DynamicObject, u32)> {
        retry::retrying("get jobs/status", &self.policy, deadline.at, || {
            self.api.get_status(&self.job)
        })
        .await
        .map_err(|e| self.gave_up("get", e, deadline))
    }

    /// Upserts `condition` (see [`StatusWriter::write_with`]).
    pub async fn write(&self, condition: &Condition, deadline: &Deadline) -> Result<Written> {
        self.write_with(deadline, async |_: &Value| Ok(Some(condition.clone())))
            .await
    }

    /// Writes the condition `decide` chooses for the Job as just read (`None`: leave it
    /// alone): GET, decide, edit, PUT with the fetched resourceVersion. On 409 it starts over,
    /// after a jittered backoff, with a fresh GET and a fresh decision, so a decision that
    /// reads other objects (the Job's pods) re-reads them too: the last writer has seen every
    /// earlier writer's input. Transient failures and conflicts are retried until `deadline`.
    pub async fn write_with(
        &self,
        deadline: &Deadline,
        mut decide: impl AsyncFnMut(&Value) -> Result<Option<Condition>>,
    ) -> Result<Written> {
        let mut requests = 0;
        let mut conflicts = self.policy.backoff().build();
        loop {
            let (mut job, n) = self.get_job(deadline).await?;
            requests += n;
            let uid = job.metadata.uid.clone();
            let seen = serde_json::to_value(&job)
                .map_err(|e| self.api_error("get", 200, format!("response is not a Job: {e}")))?;
            let Some(condition) = decide(&seen).await? else {
                return Ok(Written {
                    change: Change::Left,
                    uid,
                    requests,
                });
            };
            let now = format_time((self.clock)());
            if upsert_condition(&mut job.data, &self.condition_type, &condition, &now)
                == Change::Unchanged
            {
                return Ok(Written {
                    change: Change::Unchanged,
                    uid,
                    requests,
                });
            }
            let params = PostParams::default();
            let put = retry::retrying("update jobs/status", &self.policy, deadline.at, || {
                self.api.replace_status(&self.job, &params, &job)
            })
            .await;
            match put {
                Ok((_, n)) => {
                    return Ok(Written {
                        change: Change::Updated,
                        uid,
                        requests: requests + n,
                    });
                }
                Err(GaveUp::Permanent { code: 409, .. }) => {
                    // Someone else (the Job controller, another reporter) wrote in between:
                    // back off, re-read and re-apply.
                    requests += 1;
                    let wait = conflicts.next().unwrap_or(self.policy.max);
                    if wait >= deadline.left() {
                        return Err(Error::WriteDeadline {
                            job: self.object(),
                            attempts: requests,
                            deadline: deadline.budget_text(),
                            last: "update jobs/status: conflicts (HTTP 409) kept recurring"
                                .to_string(),
                        });
                    }
                    tracing::debug!(job = %self.job, retry_in = %go_duration::format(wait), "conflict writing condition, retrying with a fresh resourceVersion");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(self.gave_up("update", e, deadline)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(success: bool, reason: &str, message: &str) -> Condition {
        let status = match success {
            true => crate::condition::Status::True,
            false => crate::condition::Status::False,
        };
        Condition::new(status, reason, message)
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
