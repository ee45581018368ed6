//! Reporting one attempt's outcome, after [`crate::outcome::decide`]: the rules of
//! [docs/job-shapes.md](../../docs/job-shapes.md) in order, around one conflict-safe Job write
//! ([`StatusWriter::write_with`]).
//!
//! The Job condition is the product, so it goes first and owns its deadline. On the Job as
//! read before each write: the identity check (`JOB_UID`), the suspension and deadline rules;
//! then, for shapes that aggregate, the attempt's result recorded on its own pod (so
//! concurrent finishers see each other) and the Job's pods listed; then the PUT. A 409 starts
//! over from the GET, so the pods are re-read before the aggregate is recomputed. The pod
//! record (where not needed before) and the Event come after the condition, each on a budget of
//! its own: neither can take the condition's time.

use std::time::Duration;

use kube::runtime::events::Recorder;
use serde_json::Value;

use crate::aggregate::{Verdict, aggregate};
use crate::attempt::{self, Attempt, record_patch};
use crate::condition::Condition;
use crate::error::{Error, Result};
use crate::events::{self, Source};
use crate::job_shape::{self, Shape};
use crate::job_status::{Change, StatusWriter, format_time};
use crate::outcome::{Outcome, PodView};
use crate::pods::Pods;
use crate::retry::Deadline;

/// What a report needs besides the outcome.
#[derive(Clone)]
pub struct Context {
    /// Namespace of the Job and the pod.
    pub namespace: String,
    /// The Job's name.
    pub job: String,
    /// This pod's name.
    pub pod: String,
    /// `JOB_UID`, when injected.
    pub job_uid: Option<String>,
    /// Writes the Job condition.
    pub writer: StatusWriter,
    /// Records on pods and lists them.
    pub pods: Pods,
    /// Publishes the Event.
    pub recorder: Recorder,
    /// Budget of the pod record (its own, beside the condition's).
    pub record_budget: Duration,
    /// Timeout for the best-effort Event.
    pub event_timeout: Duration,
}

/// What happened to the Job condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// Written (`Updated`) or already so (`Unchanged`).
    Written {
        /// The condition on the Job now.
        condition: Condition,
        /// Whether a PUT changed it.
        change: Change,
    },
    /// A newer attempt owns the Job condition: recorded on the pod and in the Event only.
    Superseded {
        /// The newer attempt's pod.
        newer: String,
    },
    /// The Job is suspended (its pods were deleted for that): nothing written anywhere.
    Suspended,
}

/// The end of a report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The attempt's outcome as recorded (the deadline rule may have replaced the decided one).
    pub outcome: Outcome,
    /// What happened on the Job.
    pub reported: Reported,
    /// API requests made (the Event's not counted).
    pub requests: u32,
}

/// This pod as an attempt: the freshest of its listed entry and its watched view.
fn own_attempt(pod: &str, view: Option<&PodView>, listed: &[Attempt]) -> Attempt {
    let watched = view.map(|v| v.attempt.clone());
    let mut own = listed
        .iter()
        .find(|a| a.name == pod)
        .cloned()
        .or_else(|| watched.clone())
        .unwrap_or_else(|| Attempt::named(pod));
    own.done |= watched.is_some_and(|w| w.done);
    own
}

/// Reports `outcome` (decided for this pod, whose last watched state is `view`); the Job
/// condition must be written by `deadline`.
pub async fn report(
    ctx: &Context,
    outcome: Outcome,
    view: Option<&PodView>,
    deadline: &Deadline,
) -> Result<Report> {
    let mut outcome = outcome;
    let mut first_look = true;
    // `Some(changed)` once the record was tried.
    let mut recorded: Option<bool> = None;
    let mut side_requests = 0;
    let mut reported: Option<Reported> = None;
    let mut source_index = view.and_then(|v| v.attempt.index);
    let mut attempt_number = 1;

    let written = ctx
        .writer
        .write_with(deadline, async |job: &Value| {
            let facts = job_shape::facts(job, ctx.writer.now());
            // Identity: another uid under our Job's name is a re-created Job.
            if let (Some(expected), Some(found)) = (&ctx.job_uid, &facts.uid)
                && expected != found
            {
                return Err(Error::JobReplaced {
                    job: format!("{}/{}", ctx.namespace, ctx.job),
                    expected: expected.clone(),
                    found: found.clone(),
                });
            }
            // A pod the suspension deleted writes nothing; the resumed Job's pods report.
            if facts.suspended && !outcome.from_result {
                reported = Some(Reported::Suspended);
                return Ok(None);
            }
            if first_look {
                first_look = false;
                // Killed at the Job's deadline.
                if !outcome.from_result
                    && let Some(d) = facts.deadline_exceeded
                {
                    outcome = Outcome::job_deadline_exceeded(d);
                }
            }
            // An aggregate reads every attempt's record: this one's goes first, so concurrent
            // finishers see each other (the last writer has seen every earlier result).
            if recorded.is_none() && facts.shape != Shape::Single {
                let (changed, n) = record(ctx, &outcome, view, deadline).await;
                recorded = Some(changed);
                side_requests += n;
            }
            let own_done = view.is_some_and(|v| v.attempt.done);
            let listed = match (&facts.shape, &facts.uid) {
                // A single-completion Job's pod that is neither done nor deleted cannot have
                // been replaced: nothing to list.
                (Shape::Single, _) if !own_done => Vec::new(),
                (_, Some(uid)) => {
                    let (listed, n) = ctx.pods.of_job(uid, deadline).await?;
                    side_requests += n;
                    listed
                }
                (_, None) => Vec::new(),
            };
            let own = own_attempt(&ctx.pod, view, &listed);
            source_index = own.index;
            attempt_number = if listed.is_empty() {
                // Every earlier attempt of a single-completion Job failed (else no retry).
                let failed = job.pointer("/status/failed").and_then(Value::as_u64);
                u32::try_from(failed.unwrap_or(0))
                    .unwrap_or(u32::MAX)
                    .saturating_add(1)
            } else {
                attempt::number(&own, &listed)
            };
            match aggregate(&facts.shape, &own, &outcome.condition(), &listed) {
                Verdict::Write(condition) => {
                    reported = Some(Reported::Written {
                        condition: condition.clone(),
                        change: Change::Unchanged,
                    });
                    Ok(Some(condition))
                }
                Verdict::Superseded { newer } => {
                    reported = Some(Reported::Superseded { newer });
                    Ok(None)
                }
            }
        })
        .await;

    // The attempt's own record, after the condition and on its own budget, where the
    // aggregate did not need it first. Nothing is recorded for a suspended or re-created Job.
    let record_now = recorded.is_none()
        && !matches!(reported, Some(Reported::Suspended))
        && !matches!(written, Err(Error::JobReplaced { .. }));
    if record_now {
        let budget = Deadline::after(ctx.record_budget);
        let (changed, n) = record(ctx, &outcome, view, &budget).await;
        recorded = Some(changed);
        side_requests += n;
    }
    let written = written?;

    // `write_with` succeeded, so the decision ran and said what it did; `None` cannot remain.
    let reported = match reported {
        Some(Reported::Written { condition, .. }) => Reported::Written {
            condition,
            change: written.change,
        },
        Some(other) => other,
        None => Reported::Suspended,
    };
    let changed = match &reported {
        Reported::Written { change, .. } => recorded == Some(true) || *change == Change::Updated,
        Reported::Superseded { .. } => true,
        Reported::Suspended => false,
    };
    if changed {
        let superseded_by = match &reported {
            Reported::Superseded { newer } => Some(newer.as_str()),
            _ => None,
        };
        let source = Source {
            pod: &ctx.pod,
            index: source_index,
            attempt: attempt_number,
            superseded_by,
        };
        let event = events::make_event(&source, &outcome);
        let regarding = events::job_reference(&ctx.namespace, &ctx.job, written.uid.as_deref());
        events::record(&ctx.recorder, &event, &regarding, ctx.event_timeout).await;
    }
    Ok(Report {
        outcome,
        reported,
        requests: written.requests + side_requests,
    })
}

/// Records `outcome` on this pod unless it is there already; returns whether it changed the
/// pod and the requests made. A refusal is logged, never fatal: the Job condition is the
/// contract, the pod's record its history.
async fn record(
    ctx: &Context,
    outcome: &Outcome,
    view: Option<&PodView>,
    deadline: &Deadline,
) -> (bool, u32) {
    let condition = outcome.condition();
    let previous = view.and_then(|v| {
        v.attempt
            .result
            .as_ref()
            .map(|c| (c, v.result_since.as_deref().unwrap_or_default()))
    });
    if previous.is_some_and(|(c, _)| *c == condition) {
        return (false, 0);
    }
    let patch = record_patch(&condition, previous, &format_time(ctx.writer.now()));
    match ctx.pods.patch_status(&ctx.pod, &patch, deadline).await {
        Ok(n) => (true, n),
        Err(e) => {
            tracing::warn!(error = %e, "the result is not recorded on the pod; the Job condition is written regardless");
            // At least the one refused request.
            (false, 1)
        }
    }
}
