//! The pure decision core: what the reporter knows → the one condition to write, or how long
//! to keep waiting. No I/O, no clock: `now` is passed in so every rule is table-tested.

use std::time::{Duration, Instant};

use contract::Setting;
use contract::result::{AdapterResult, MAX_RESULT_FILE_SIZE, ResultError, ResultStatus, parse};

use crate::attempt::Attempt;
use crate::condition::{Condition, Status};
use crate::go_duration;

/// Condition reason for an unparseable/invalid result file.
pub const REASON_INVALID_RESULT_FORMAT: &str = "InvalidResultFormat";
/// Condition reason when nothing happened before the deadline.
pub const REASON_ADAPTER_TIMEOUT: &str = "AdapterTimeout";
/// Condition reason for a non-zero adapter exit.
pub const REASON_ADAPTER_EXITED_WITH_ERROR: &str = "AdapterExitedWithError";
/// Condition reason for an OOM-killed adapter.
pub const REASON_ADAPTER_OOM_KILLED: &str = "AdapterOOMKilled";
/// Condition reason for an adapter that exited 0 without a valid result.
pub const REASON_ADAPTER_MISSING_RESULTS: &str = "AdapterMissingResults";
/// Condition reason for an adapter image that cannot be pulled.
pub const REASON_ADAPTER_IMAGE_PULL_FAILED: &str = "AdapterImagePullFailed";
/// Condition reason for an adapter container that cannot be created/run.
pub const REASON_ADAPTER_CONFIG_ERROR: &str = "AdapterConfigError";
/// Condition reason for an adapter in a crash loop / out of restarts.
pub const REASON_ADAPTER_CRASH_LOOPING: &str = "AdapterCrashLooping";
/// Condition reason for a pod evicted/deleted/shut down before a result.
pub const REASON_ADAPTER_TERMINATED: &str = "AdapterTerminated";

/// Kubernetes' default Job `backoffLimit`, used when the Job's is unknown.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;

/// `t + d`, saturating: a deadline too far for `Instant` to hold is a century away (or `t`
/// itself on a clock that close to its end), never an overflow panic.
pub fn later(t: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    t.checked_add(d)
        .or_else(|| t.checked_add(CENTURY))
        .unwrap_or(t)
}

/// One attempt's final outcome: the condition to write for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `true` → `status: "True"`.
    pub success: bool,
    /// Condition reason.
    pub reason: String,
    /// Condition message.
    pub message: String,
    /// The adapter's own result (file or termination message), not one the reporter inferred
    /// from the adapter's exit or the pod's end: only an inferred outcome can be explained by
    /// the Job's suspension or deadline.
    pub from_result: bool,
}

impl Outcome {
    /// A failure the reporter inferred (not the adapter's own result).
    pub fn failed(reason: &str, message: String) -> Outcome {
        Outcome {
            success: false,
            reason: reason.to_string(),
            message,
            from_result: false,
        }
    }

    /// The condition for a valid adapter result.
    pub fn from_result(result: &AdapterResult) -> Outcome {
        Outcome {
            success: result.status == ResultStatus::Success,
            reason: result.reason.clone(),
            message: result.message.clone(),
            from_result: true,
        }
    }

    /// The outcome of a pod killed because its Job passed `activeDeadlineSeconds`.
    pub fn job_deadline_exceeded(deadline: Duration) -> Outcome {
        Outcome::failed(
            REASON_ADAPTER_TIMEOUT,
            format!(
                "Job exceeded its activeDeadlineSeconds ({})",
                go_duration::format(deadline)
            ),
        )
    }

    /// The condition this outcome writes.
    pub fn condition(&self) -> Condition {
        let status = if self.success {
            Status::True
        } else {
            Status::False
        };
        Condition::new(status, self.reason.clone(), self.message.clone())
    }

    /// The condition for an invalid result file (message as the original).
    pub fn invalid(error: &ResultError) -> Outcome {
        Outcome::failed(
            REASON_INVALID_RESULT_FORMAT,
            format!("Failed to parse adapter result: {error}"),
        )
    }

    /// `"True"` or `"False"`.
    pub fn status(&self) -> &'static str {
        if self.success { "True" } else { "False" }
    }
}

/// What the reporter knows about the result file.
#[derive(Debug, Clone, PartialEq)]
pub enum FileState {
    /// Not there (yet).
    Missing,
    /// A valid result.
    Valid(AdapterResult),
    /// Invalid content that may still be being written: not a verdict yet.
    Writing(ResultError),
    /// Invalid and final: closed after writing, renamed into place, or stable for the settle time.
    /// `since` is when it became final.
    Invalid {
        /// Why it is invalid.
        error: ResultError,
        /// When it settled.
        since: Instant,
    },
}

impl FileState {
    fn error(&self) -> Option<&ResultError> {
        match self {
            FileState::Writing(e) | FileState::Invalid { error: e, .. } => Some(e),
            _ => None,
        }
    }
}

/// The adapter container's state as last seen in the pod status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// No status yet.
    Unknown,
    /// Waiting, with the kubelet's reason (e.g. `ImagePullBackOff`) and message.
    Waiting {
        /// Waiting reason.
        reason: String,
        /// Waiting message.
        message: String,
    },
    /// Running.
    Running,
    /// Terminated (this attempt).
    Terminated {
        /// Exit code.
        exit_code: i32,
        /// Reason (`Completed`, `Error`, `OOMKilled`, ...).
        reason: String,
        /// The termination message (`terminationMessagePath`): a result channel of its own.
        message: String,
    },
}

/// The parts of the pod the decision (and the report after it) needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// `status.phase`.
    pub phase: String,
    /// Pod-level `status.reason` (e.g. `Evicted`).
    pub reason: String,
    /// Pod-level `status.message`.
    pub message: String,
    /// `metadata.deletionTimestamp` set, or the pod was deleted.
    pub deleting: bool,
    /// `spec.restartPolicy` is `OnFailure`: a failed adapter is restarted in place.
    pub restarts_in_place: bool,
    /// Adapter container name (resolved).
    pub adapter: String,
    /// The configured adapter container is not in the pod: the names of the pod's containers
    /// (regular and init), to report instead of waiting for an adapter that never runs.
    pub adapter_missing: Option<Vec<String>>,
    /// Adapter container state.
    pub adapter_state: ContainerState,
    /// The adapter's `terminationMessagePolicy` is `FallbackToLogsOnError`: after a non-zero
    /// exit the kubelet may have copied the log tail into the termination message.
    pub adapter_logs_fallback: bool,
    /// Adapter container restart count.
    pub restart_count: i32,
    /// The pod as one attempt of its Job (index, creation, recorded result).
    pub attempt: Attempt,
    /// When the recorded result last changed status (its `lastTransitionTime`).
    pub result_since: Option<String>,
}

/// Everything the decision looks at.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The result file.
    pub file: &'a FileState,
    /// The pod, once seen.
    pub pod: Option<&'a PodView>,
    /// The Job's `backoffLimit` (only matters for `OnFailure` pods).
    pub backoff_limit: i32,
    /// `MAX_WAIT_TIME_SECONDS` (for the timeout message).
    pub max_wait: Duration,
    /// When `max_wait` runs out.
    pub deadline: Instant,
    /// SIGTERM received: stop waiting for the adapter's terminated state at this instant.
    pub shutdown_until: Option<Instant>,
    /// How long a settled invalid file waits for the adapter's own exit (abnormal exits win).
    pub invalid_grace: Duration,
    /// The current time.
    pub now: Instant,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write this condition.
    Report(Outcome),
    /// Nothing decided; decide again on the next event or at `until` at the latest.
    Wait {
        /// Next time-based re-evaluation.
        until: Instant,
    },
}

/// The decision: pure function of what is known.
pub fn decide(i: &Inputs<'_>) -> Decision {
    // A valid result always wins; the file first, then the termination message.
    if let FileState::Valid(result) = i.file {
        return Decision::Report(Outcome::from_result(result));
    }
    if let Some(result) = i.pod.and_then(termination_result) {
        return Decision::Report(Outcome::from_result(&result));
    }
    let mut until = i.deadline;

    if let Some(pod) = i.pod {
        if let Some(containers) = &pod.adapter_missing {
            return Decision::Report(Outcome::failed(
                REASON_ADAPTER_CONFIG_ERROR,
                format!(
                    "Adapter container {} is not in pod {}, whose containers are: {}; set {} to one of them",
                    pod.adapter,
                    pod.name,
                    containers.join(", "),
                    Setting::AdapterContainer.env()
                ),
            ));
        }
        if pod.deleting {
            return Decision::Report(Outcome::failed(
                REASON_ADAPTER_TERMINATED,
                format!(
                    "Pod {} was deleted before the adapter produced a result",
                    pod.name
                ),
            ));
        }
        if pod.phase == "Failed" && !pod.reason.is_empty() {
            return Decision::Report(Outcome::failed(
                REASON_ADAPTER_TERMINATED,
                with_detail(
                    format!(
                        "Pod {} was terminated before the adapter produced a result: {}",
                        pod.name, pod.reason
                    ),
                    &pod.message,
                ),
            ));
        }
        match &pod.adapter_state {
            ContainerState::Terminated {
                exit_code, reason, ..
            } => {
                let out_of_restarts = pod.restart_count >= i.backoff_limit;
                let pod_done = pod.phase == "Failed" || pod.phase == "Succeeded";
                let is_final =
                    *exit_code == 0 || !pod.restarts_in_place || out_of_restarts || pod_done;
                if is_final {
                    return Decision::Report(terminated(pod, *exit_code, reason, i));
                }
            }
            ContainerState::Waiting { reason, message } => {
                let category = match reason.as_str() {
                    // The kubelet's image errors (pkg/kubelet/images): the image cannot be had.
                    "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull"
                    | "InvalidImageName" | "ImageInspectError" => {
                        Some(REASON_ADAPTER_IMAGE_PULL_FAILED)
                    }
                    "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                        Some(REASON_ADAPTER_CONFIG_ERROR)
                    }
                    "CrashLoopBackOff"
                        if !pod.restarts_in_place || pod.restart_count >= i.backoff_limit =>
                    {
                        Some(REASON_ADAPTER_CRASH_LOOPING)
                    }
                    _ => None,
                };
                if let Some(category) = category {
                    let head = if category == REASON_ADAPTER_CRASH_LOOPING {
                        format!(
                            "Adapter container {} is crash looping (restarts: {}, backoffLimit: {}): {reason}",
                            pod.adapter, pod.restart_count, i.backoff_limit
                        )
                    } else {
                        format!("Adapter container {} cannot start: {reason}", pod.adapter)
                    };
                    return Decision::Report(Outcome::failed(category, with_detail(head, message)));
                }
            }
            ContainerState::Unknown | ContainerState::Running => {}
        }
    }

    if let FileState::Invalid { error, since } = i.file {
        // Give the adapter a moment to exit: an abnormal exit explains a bad file better. A pod
        // not seen yet may show one, so it counts as alive.
        let alive = i
            .pod
            .is_none_or(|p| !matches!(p.adapter_state, ContainerState::Terminated { .. }));
        let grace_end = later(*since, i.invalid_grace);
        if !alive || i.now >= grace_end || i.shutdown_until.is_some_and(|s| i.now >= s) {
            return Decision::Report(Outcome::invalid(error));
        }
        until = until.min(grace_end);
    }

    if i.now >= i.deadline {
        if let Some(error) = i.file.error() {
            return Decision::Report(Outcome::invalid(error));
        }
        return Decision::Report(Outcome::failed(
            REASON_ADAPTER_TIMEOUT,
            format!(
                "Adapter did not produce results within {}",
                go_duration::format(i.max_wait)
            ),
        ));
    }

    if let Some(shutdown_until) = i.shutdown_until {
        if i.now >= shutdown_until {
            if let Some(error) = i.file.error() {
                return Decision::Report(Outcome::invalid(error));
            }
            let pod = i.pod.map_or("", |p| p.name.as_str());
            return Decision::Report(Outcome::failed(
                REASON_ADAPTER_TERMINATED,
                format!(
                    "Pod {pod} is shutting down (reporter received SIGTERM) before the adapter produced a result"
                ),
            ));
        }
        until = until.min(shutdown_until);
    }
    Decision::Wait { until }
}

fn terminated(pod: &PodView, exit_code: i32, reason: &str, i: &Inputs<'_>) -> Outcome {
    if reason == "OOMKilled" {
        return Outcome::failed(
            REASON_ADAPTER_OOM_KILLED,
            "Adapter container was killed due to out of memory (OOMKilled)".to_string(),
        );
    }
    if exit_code != 0 {
        if pod.restarts_in_place && pod.restart_count > 0 && pod.restart_count >= i.backoff_limit {
            return Outcome::failed(
                REASON_ADAPTER_CRASH_LOOPING,
                format!(
                    "Adapter container {} failed after {} restarts, reaching the Job's backoffLimit {}; last exit code {exit_code}: {reason}",
                    pod.adapter, pod.restart_count, i.backoff_limit
                ),
            );
        }
        return Outcome::failed(
            REASON_ADAPTER_EXITED_WITH_ERROR,
            format!("Adapter container exited with code {exit_code}: {reason}"),
        );
    }
    // Exit 0: the writer is done, so an invalid file is final and says more than "missing".
    if let Some(error) = i.file.error() {
        return Outcome::invalid(error);
    }
    Outcome::failed(
        REASON_ADAPTER_MISSING_RESULTS,
        format!(
            "Adapter container exited successfully (code 0) but did not produce a valid result file: {reason}"
        ),
    )
}

/// The adapter's own result in its termination message (the channel for adapters without a
/// shared volume), when the message can be one. A crash (non-zero exit or OOM kill) never reads
/// as success:
/// - after a clean exit (code 0, not OOM-killed) any valid result counts: the kubelet never
///   copies logs there on a clean exit, so the adapter wrote it on purpose;
/// - after a crash only a `failure` result counts, and only under `terminationMessagePolicy:
///   File`: under `FallbackToLogsOnError` the kubelet copies the log tail there on exactly this
///   kind of exit, and a log line that parses as a result cannot be told from one written on
///   purpose. A `success` after a crash is ignored: the crash is the outcome.
///
/// Anything else there (a log tail, free text, an invalid result) is no result.
fn termination_result(pod: &PodView) -> Option<AdapterResult> {
    let ContainerState::Terminated {
        exit_code,
        reason,
        message,
    } = &pod.adapter_state
    else {
        return None;
    };
    // Held to the file's limits: the kubelet keeps 4 KiB, so anything over the file's 1 MiB
    // comes from a broken or hostile server and is no result.
    if message.trim().is_empty() || message.len() as u64 > MAX_RESULT_FILE_SIZE {
        return None;
    }
    let crashed = *exit_code != 0 || reason == "OOMKilled";
    if crashed && pod.adapter_logs_fallback {
        return None;
    }
    let result = parse(message.as_bytes()).ok()?;
    (!crashed || result.status == ResultStatus::Failure).then_some(result)
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.trim().is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_WAIT: Duration = Duration::from_secs(300);
    const GRACE: Duration = Duration::from_secs(3);

    fn pod(state: ContainerState) -> PodView {
        PodView {
            name: "job-abc".into(),
            phase: "Running".into(),
            reason: String::new(),
            message: String::new(),
            deleting: false,
            restarts_in_place: false,
            adapter: "adapter".into(),
            adapter_missing: None,
            adapter_state: state,
            adapter_logs_fallback: false,
            restart_count: 0,
            attempt: Attempt::named("job-abc"),
            result_since: None,
        }
    }

    fn term(code: i32, reason: &str) -> ContainerState {
        term_msg(code, reason, "")
    }

    fn term_msg(code: i32, reason: &str, message: &str) -> ContainerState {
        ContainerState::Terminated {
            exit_code: code,
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn waiting(reason: &str, message: &str) -> ContainerState {
        ContainerState::Waiting {
            reason: reason.into(),
            message: message.into(),
        }
    }

    struct Case {
        name: &'static str,
        file: FileState,
        pod: Option<PodView>,
        /// Seconds since start.
        at: u64,
        shutdown_at: Option<u64>,
        want: Option<(&'static str, &'static str, &'static str)>,
    }

    fn run(c: &Case) -> Decision {
        let start = Instant::now();
        decide(&Inputs {
            file: &c.file,
            pod: c.pod.as_ref(),
            backoff_limit: 2,
            max_wait: MAX_WAIT,
            deadline: start + MAX_WAIT,
            shutdown_until: c.shutdown_at.map(|s| start + Duration::from_secs(s)),
            invalid_grace: GRACE,
            now: start + Duration::from_secs(c.at),
        })
    }

    fn valid(json: &str) -> FileState {
        FileState::Valid(parse(json.as_bytes()).unwrap())
    }

    /// Settled just before `run` takes its start instant.
    fn invalid_now() -> FileState {
        FileState::Invalid {
            error: ResultError::InvalidStatus,
            since: Instant::now(),
        }
    }

    #[test]
    fn outcome_table() {
        let bad = "Failed to parse adapter result: invalid result format: status: must be either 'success' or 'failure'";
        let cases = vec![
            Case {
                name: "success",
                file: valid(r#"{"status":"success","reason":"AllGood","message":"ok"}"#),
                pod: None,
                at: 1,
                shutdown_at: None,
                want: Some(("True", "AllGood", "ok")),
            },
            Case {
                name: "failure",
                file: valid(r#"{"status":"failure","reason":"DNSMissing","message":"no zone"}"#),
                pod: None,
                at: 1,
                shutdown_at: None,
                want: Some(("False", "DNSMissing", "no zone")),
            },
            Case {
                name: "valid file wins over non-zero exit",
                file: valid(r#"{"status":"success"}"#),
                pod: Some(pod(term(1, "Error"))),
                at: 1,
                shutdown_at: None,
                want: Some(("True", "NoReasonProvided", "No message provided")),
            },
            Case {
                name: "valid file wins over deletion",
                file: valid(r#"{"status":"success"}"#),
                pod: Some(PodView {
                    deleting: true,
                    ..pod(ContainerState::Running)
                }),
                at: 1,
                shutdown_at: None,
                want: Some(("True", "NoReasonProvided", "No message provided")),
            },
            Case {
                name: "timeout",
                file: FileState::Missing,
                pod: Some(pod(ContainerState::Running)),
                at: 300,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterTimeout",
                    "Adapter did not produce results within 5m0s",
                )),
            },
            Case {
                name: "still waiting",
                file: FileState::Missing,
                pod: Some(pod(ContainerState::Running)),
                at: 299,
                shutdown_at: None,
                want: None,
            },
            Case {
                name: "exit 1",
                file: FileState::Missing,
                pod: Some(pod(term(1, "Error"))),
                at: 5,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterExitedWithError",
                    "Adapter container exited with code 1: Error",
                )),
            },
            Case {
                name: "termination message: a valid result there and no file",
                file: FileState::Missing,
                pod: Some(pod(term_msg(
                    1,
                    "Error",
                    r#"{"status":"failure","reason":"QuotaLow","message":"2 of 10 left"}"#,
                ))),
                at: 1,
                shutdown_at: None,
                want: Some(("False", "QuotaLow", "2 of 10 left")),
            },
            Case {
                name: "termination message: success after exit 1 is ignored (a crash never reads as success)",
                file: FileState::Missing,
                pod: Some(pod(term_msg(
                    1,
                    "Error",
                    r#"{"status":"success","reason":"AllGood","message":"ok"}"#,
                ))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterExitedWithError",
                    "Adapter container exited with code 1: Error",
                )),
            },
            Case {
                name: "termination message: success pretty-printed by jq after exit 2 is ignored",
                file: FileState::Missing,
                pod: Some(pod(term_msg(
                    2,
                    "Error",
                    "{\n  \"status\": \"success\",\n  \"reason\": \"AllGood\"\n}\n",
                ))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterExitedWithError",
                    "Adapter container exited with code 2: Error",
                )),
            },
            Case {
                name: "termination message: success after an OOM kill is ignored",
                file: FileState::Missing,
                pod: Some(pod(term_msg(137, "OOMKilled", r#"{"status":"success"}"#))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterOOMKilled",
                    "Adapter container was killed due to out of memory (OOMKilled)",
                )),
            },
            Case {
                name: "termination message: a failure result explains an OOM kill",
                file: FileState::Missing,
                pod: Some(pod(term_msg(
                    137,
                    "OOMKilled",
                    r#"{"status":"failure","reason":"TooManyZones","message":"gave up"}"#,
                ))),
                at: 1,
                shutdown_at: None,
                want: Some(("False", "TooManyZones", "gave up")),
            },
            Case {
                name: "termination message: after a crash under FallbackToLogsOnError it may be a log tail, never a result",
                file: FileState::Missing,
                pod: Some(PodView {
                    adapter_logs_fallback: true,
                    ..pod(term_msg(
                        1,
                        "Error",
                        r#"{"status":"failure","reason":"LoggedLine","message":"from the log"}"#,
                    ))
                }),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterExitedWithError",
                    "Adapter container exited with code 1: Error",
                )),
            },
            Case {
                name: "termination message: after exit 0 under FallbackToLogsOnError it was written on purpose",
                file: FileState::Missing,
                pod: Some(PodView {
                    adapter_logs_fallback: true,
                    ..pod(term_msg(
                        0,
                        "Completed",
                        r#"{"status":"success","reason":"Done"}"#,
                    ))
                }),
                at: 1,
                shutdown_at: None,
                want: Some(("True", "Done", "No message provided")),
            },
            Case {
                name: "termination message: a valid result over the file's 1 MiB is no result",
                file: FileState::Missing,
                pod: Some(pod(term_msg(
                    0,
                    "Completed",
                    &format!(
                        r#"{{"status":"success","details":"{}"}}"#,
                        "x".repeat(1024 * 1024)
                    ),
                ))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterMissingResults",
                    "Adapter container exited successfully (code 0) but did not produce a valid result file: Completed",
                )),
            },
            Case {
                name: "termination message: the file wins when both exist",
                file: valid(r#"{"status":"success","reason":"FromFile","message":"file"}"#),
                pod: Some(pod(term_msg(
                    0,
                    "Completed",
                    r#"{"status":"failure","reason":"FromMessage","message":"msg"}"#,
                ))),
                at: 1,
                shutdown_at: None,
                want: Some(("True", "FromFile", "file")),
            },
            Case {
                name: "termination message: a valid one beats an invalid file",
                file: invalid_now(),
                pod: Some(pod(term_msg(0, "Completed", r#"{"status":"success"}"#))),
                at: 1,
                shutdown_at: None,
                want: Some(("True", "NoReasonProvided", "No message provided")),
            },
            Case {
                name: "termination message: invalid there is no result (the original's message)",
                file: FileState::Missing,
                pod: Some(pod(term_msg(
                    1,
                    "Error",
                    "panic: connection refused\ngoroutine 1 [running]:",
                ))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterExitedWithError",
                    "Adapter container exited with code 1: Error",
                )),
            },
            Case {
                name: "termination message: an invalid result there is no result either",
                file: FileState::Missing,
                pod: Some(pod(term_msg(0, "Completed", r#"{"status":"maybe"}"#))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterMissingResults",
                    "Adapter container exited successfully (code 0) but did not produce a valid result file: Completed",
                )),
            },
            Case {
                name: "oom",
                file: FileState::Missing,
                pod: Some(pod(term(137, "OOMKilled"))),
                at: 5,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterOOMKilled",
                    "Adapter container was killed due to out of memory (OOMKilled)",
                )),
            },
            Case {
                name: "oom beats half-written file",
                file: FileState::Writing(ResultError::Json("EOF".into())),
                pod: Some(pod(term(137, "OOMKilled"))),
                at: 5,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterOOMKilled",
                    "Adapter container was killed due to out of memory (OOMKilled)",
                )),
            },
            Case {
                name: "exit 1 beats invalid file",
                file: invalid_now(),
                pod: Some(pod(term(2, "Error"))),
                at: 5,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterExitedWithError",
                    "Adapter container exited with code 2: Error",
                )),
            },
            Case {
                name: "exit 0 missing",
                file: FileState::Missing,
                pod: Some(pod(term(0, "Completed"))),
                at: 5,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterMissingResults",
                    "Adapter container exited successfully (code 0) but did not produce a valid result file: Completed",
                )),
            },
            Case {
                name: "exit 0 with invalid file",
                file: FileState::Writing(ResultError::InvalidStatus),
                pod: Some(pod(term(0, "Completed"))),
                at: 5,
                shutdown_at: None,
                want: Some(("False", "InvalidResultFormat", bad)),
            },
            Case {
                name: "settled invalid, pod not seen yet: waits for grace",
                file: invalid_now(),
                pod: None,
                at: 1,
                shutdown_at: None,
                want: None,
            },
            Case {
                name: "settled invalid, pod not seen by the end of grace",
                file: invalid_now(),
                pod: None,
                at: 3,
                shutdown_at: None,
                want: Some(("False", "InvalidResultFormat", bad)),
            },
            Case {
                name: "configured adapter not in the pod",
                file: FileState::Missing,
                pod: Some(PodView {
                    adapter_missing: Some(vec!["main".into(), "status-reporter".into()]),
                    ..pod(ContainerState::Unknown)
                }),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterConfigError",
                    "Adapter container adapter is not in pod job-abc, whose containers are: main, status-reporter; set ADAPTER_CONTAINER_NAME to one of them",
                )),
            },
            Case {
                name: "settled invalid, adapter running waits for grace",
                file: invalid_now(),
                pod: Some(pod(ContainerState::Running)),
                at: 0,
                shutdown_at: None,
                want: None,
            },
            Case {
                name: "writing is not a verdict",
                file: FileState::Writing(ResultError::InvalidStatus),
                pod: Some(pod(ContainerState::Running)),
                at: 10,
                shutdown_at: None,
                want: None,
            },
            Case {
                name: "writing at deadline",
                file: FileState::Writing(ResultError::InvalidStatus),
                pod: Some(pod(ContainerState::Running)),
                at: 300,
                shutdown_at: None,
                want: Some(("False", "InvalidResultFormat", bad)),
            },
            Case {
                name: "image pull",
                file: FileState::Missing,
                pod: Some(pod(waiting(
                    "ImagePullBackOff",
                    "Back-off pulling image \"nope:1\"",
                ))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterImagePullFailed",
                    "Adapter container adapter cannot start: ImagePullBackOff: Back-off pulling image \"nope:1\"",
                )),
            },
            Case {
                name: "err image pull",
                file: FileState::Missing,
                pod: Some(pod(waiting("ErrImagePull", ""))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterImagePullFailed",
                    "Adapter container adapter cannot start: ErrImagePull",
                )),
            },
            Case {
                name: "image absent under imagePullPolicy: Never (as the real kubelet reports it)",
                file: FileState::Missing,
                pod: Some(pod(waiting(
                    "ErrImageNeverPull",
                    "Container image \"localhost/nope:1\" is not present with pull policy of Never",
                ))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterImagePullFailed",
                    "Adapter container adapter cannot start: ErrImageNeverPull: Container image \"localhost/nope:1\" is not present with pull policy of Never",
                )),
            },
            Case {
                name: "image that cannot be inspected",
                file: FileState::Missing,
                pod: Some(pod(waiting("ImageInspectError", ""))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterImagePullFailed",
                    "Adapter container adapter cannot start: ImageInspectError",
                )),
            },
            Case {
                name: "invalid image",
                file: FileState::Missing,
                pod: Some(pod(waiting("InvalidImageName", "bad ref"))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterImagePullFailed",
                    "Adapter container adapter cannot start: InvalidImageName: bad ref",
                )),
            },
            Case {
                name: "config error",
                file: FileState::Missing,
                pod: Some(pod(waiting(
                    "CreateContainerConfigError",
                    "secret \"s\" not found",
                ))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterConfigError",
                    "Adapter container adapter cannot start: CreateContainerConfigError: secret \"s\" not found",
                )),
            },
            Case {
                name: "run container error",
                file: FileState::Missing,
                pod: Some(pod(waiting("RunContainerError", "x"))),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterConfigError",
                    "Adapter container adapter cannot start: RunContainerError: x",
                )),
            },
            Case {
                name: "container creating is fine",
                file: FileState::Missing,
                pod: Some(pod(waiting("ContainerCreating", ""))),
                at: 1,
                shutdown_at: None,
                want: None,
            },
            Case {
                name: "crash loop",
                file: FileState::Missing,
                pod: Some(PodView {
                    restart_count: 1,
                    ..pod(waiting("CrashLoopBackOff", "back-off 10s"))
                }),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterCrashLooping",
                    "Adapter container adapter is crash looping (restarts: 1, backoffLimit: 2): CrashLoopBackOff: back-off 10s",
                )),
            },
            Case {
                name: "on-failure restart is not final",
                file: FileState::Missing,
                pod: Some(PodView {
                    restarts_in_place: true,
                    restart_count: 1,
                    ..pod(term(1, "Error"))
                }),
                at: 1,
                shutdown_at: None,
                want: None,
            },
            Case {
                name: "on-failure backoff not yet at limit",
                file: FileState::Missing,
                pod: Some(PodView {
                    restarts_in_place: true,
                    restart_count: 1,
                    ..pod(waiting("CrashLoopBackOff", ""))
                }),
                at: 1,
                shutdown_at: None,
                want: None,
            },
            Case {
                name: "on-failure out of restarts",
                file: FileState::Missing,
                pod: Some(PodView {
                    restarts_in_place: true,
                    restart_count: 2,
                    ..pod(term(1, "Error"))
                }),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterCrashLooping",
                    "Adapter container adapter failed after 2 restarts, reaching the Job's backoffLimit 2; last exit code 1: Error",
                )),
            },
            Case {
                name: "on-failure exit 0 is final",
                file: FileState::Missing,
                pod: Some(PodView {
                    restarts_in_place: true,
                    ..pod(term(0, "Completed"))
                }),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterMissingResults",
                    "Adapter container exited successfully (code 0) but did not produce a valid result file: Completed",
                )),
            },
            Case {
                name: "evicted",
                file: FileState::Missing,
                pod: Some(PodView {
                    phase: "Failed".into(),
                    reason: "Evicted".into(),
                    message: "The node was low on resource: memory.".into(),
                    ..pod(term(137, "Error"))
                }),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterTerminated",
                    "Pod job-abc was terminated before the adapter produced a result: Evicted: The node was low on resource: memory.",
                )),
            },
            Case {
                name: "deleted",
                file: FileState::Missing,
                pod: Some(PodView {
                    deleting: true,
                    ..pod(ContainerState::Running)
                }),
                at: 1,
                shutdown_at: None,
                want: Some((
                    "False",
                    "AdapterTerminated",
                    "Pod job-abc was deleted before the adapter produced a result",
                )),
            },
            Case {
                name: "sigterm waits for adapter",
                file: FileState::Missing,
                pod: Some(pod(ContainerState::Running)),
                at: 1,
                shutdown_at: Some(5),
                want: None,
            },
            Case {
                name: "sigterm then adapter exit",
                file: FileState::Missing,
                pod: Some(pod(term(3, "Error"))),
                at: 1,
                shutdown_at: Some(1),
                want: Some((
                    "False",
                    "AdapterExitedWithError",
                    "Adapter container exited with code 3: Error",
                )),
            },
            Case {
                name: "sigterm gives up",
                file: FileState::Missing,
                pod: Some(pod(ContainerState::Running)),
                at: 5,
                shutdown_at: Some(5),
                want: Some((
                    "False",
                    "AdapterTerminated",
                    "Pod job-abc is shutting down (reporter received SIGTERM) before the adapter produced a result",
                )),
            },
            Case {
                name: "sigterm with half file",
                file: FileState::Writing(ResultError::InvalidStatus),
                pod: Some(pod(ContainerState::Running)),
                at: 5,
                shutdown_at: Some(5),
                want: Some(("False", "InvalidResultFormat", bad)),
            },
        ];
        for c in &cases {
            let got = match run(c) {
                Decision::Report(o) => Some((o.status(), o.reason, o.message)),
                Decision::Wait { .. } => None,
            };
            let want = c.want.map(|(s, r, m)| (s, r.to_string(), m.to_string()));
            assert_eq!(got, want, "case {}", c.name);
        }
    }

    #[test]
    fn wait_until_is_the_nearest_timer() {
        let start = Instant::now();
        let file = FileState::Invalid {
            error: ResultError::InvalidStatus,
            since: start,
        };
        let p = pod(ContainerState::Running);
        let i = Inputs {
            file: &file,
            pod: Some(&p),
            backoff_limit: 6,
            max_wait: MAX_WAIT,
            deadline: start + MAX_WAIT,
            shutdown_until: None,
            invalid_grace: GRACE,
            now: start,
        };
        assert_eq!(
            decide(&i),
            Decision::Wait {
                until: start + GRACE
            }
        );
        let later = Inputs {
            now: start + GRACE,
            ..i.clone()
        };
        assert!(
            matches!(decide(&later), Decision::Report(o) if o.reason == REASON_INVALID_RESULT_FORMAT)
        );
        let missing = FileState::Missing;
        let i = Inputs {
            file: &missing,
            shutdown_until: Some(start + Duration::from_secs(7)),
            ..i
        };
        assert_eq!(
            decide(&i),
            Decision::Wait {
                until: start + Duration::from_secs(7)
            }
        );
    }

    /// Issue 13, item 5: however large the durations, deadline arithmetic never overflows.
    #[test]
    fn deadline_arithmetic_saturates_instead_of_panicking() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        let file = FileState::Invalid {
            error: ResultError::InvalidStatus,
            since: now,
        };
        let p = pod(ContainerState::Running);
        let decision = decide(&Inputs {
            file: &file,
            pod: Some(&p),
            backoff_limit: 6,
            max_wait: Duration::MAX,
            deadline: later(now, Duration::MAX),
            shutdown_until: None,
            invalid_grace: Duration::MAX,
            now,
        });
        assert!(matches!(decision, Decision::Wait { .. }), "{decision:?}");
    }
}
