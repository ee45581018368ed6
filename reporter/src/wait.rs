//! `status-reporter wait job/NAME`: for CI pipelines and scripts that create an adapter Job
//! and need its outcome. One watch on the Job (no polling); each version of the Job is judged
//! by the pure [`assess`]: `True` is the answer; `False` is the answer once the Job has
//! finished (before that a retry may still succeed: the condition describes the newest
//! attempt); `Unknown` is progress (a multi-pod Job's aggregate); and a Job that failed
//! without the condition is an answer too (fail fast, like `kubectl rollout status`).
//!
//! Exit codes: 0 `True`, 1 `False` (or the Job failed without it), 3 timeout, 2 usage or access
//! errors (a missing Job, a 403).

use std::io::Write;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::condition::{Condition, Status};
use crate::config::{WaitConfig, WaitOutput};
use crate::go_duration;
use crate::job_status::format_time;

/// Exit code: the condition is `True`.
pub const EXIT_TRUE: i32 = 0;
/// Exit code: the condition is `False`, or the Job failed without it.
pub const EXIT_FALSE: i32 = 1;
/// Exit code: usage or access error (bad arguments, no such Job, forbidden).
pub const EXIT_ERROR: i32 = 2;
/// Exit code: the timeout passed first.
pub const EXIT_TIMEOUT: i32 = 3;

/// One condition as `wait` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `type`.
    pub type_: String,
    /// `status` as the API has it.
    pub status: String,
    /// `reason`.
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `lastTransitionTime` (RFC 3339), if set.
    pub last_transition_time: Option<String>,
}

impl Seen {
    fn from(c: &JobCondition) -> Seen {
        Seen {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
            last_transition_time: c.last_transition_time.as_ref().map(|t| format_time(t.0)),
        }
    }

    fn json(&self) -> Value {
        json!({
            "type": self.type_,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
        })
    }
}

/// The final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `True` or `False`.
    pub status: Status,
    /// The reporter's condition; or, when the Job failed without it, the Job's `Failed`.
    pub condition: Seen,
    /// Whether `condition` is the reporter's (false: the Job's own `Failed`).
    pub reported: bool,
    /// The Job's own `Complete` condition, if present.
    pub complete: Option<Seen>,
    /// The Job's own `Failed` condition, if present.
    pub failed: Option<Seen>,
}

/// What one version of the Job says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// Final.
    Done(Box<Answer>),
    /// Not final yet: `Unknown` (a multi-pod Job's progress), or `False` while the Job may
    /// still retry.
    Progress(Condition),
    /// No condition yet.
    Pending,
}

fn find<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Judges one version of the Job (pure).
pub fn assess(job: &Job, condition_type: &str) -> Assessment {
    let complete = find(job, "Complete").map(Seen::from);
    let failed = find(job, "Failed").map(Seen::from);
    let ours = find(job, condition_type);
    let answer = |status, condition, reported| {
        Assessment::Done(Box::new(Answer {
            status,
            condition,
            reported,
            complete: complete.clone(),
            failed: failed.clone(),
        }))
    };
    let is_true = |c: &Option<Seen>| c.as_ref().is_some_and(|c| c.status == "True");
    let finished = is_true(&complete) || is_true(&failed);
    let status = ours.and_then(|c| Status::parse(&c.status));
    if let Some(c) = ours
        && (status == Some(Status::True) || (status == Some(Status::False) && finished))
    {
        return answer(status.unwrap_or(Status::False), Seen::from(c), true);
    }
    // The Job failed and nothing will write the condition any more: fail fast.
    if let Some(f) = failed.clone().filter(|f| f.status == "True") {
        return answer(Status::False, f, false);
    }
    match ours {
        Some(c) => Assessment::Progress(Condition::new(
            status.unwrap_or(Status::Unknown),
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        )),
        None => Assessment::Pending,
    }
}

/// `value` as one line of JSON with every control character escaped: serde_json leaves DEL and
/// the C1 controls raw, which a terminal may act on. (They can only be inside strings, where
/// `\u00XX` is their JSON spelling.)
fn json_line(value: &Value) -> String {
    value
        .to_string()
        .chars()
        .map(|c| match c.is_control() {
            true => format!("\\u{:04x}", u32::from(c)),
            false => c.to_string(),
        })
        .collect()
}

/// Writes one line (and flushes); a closed stream is no reason to fail the wait. Control
/// characters others wrote (a result's message) are escaped: one answer is one line, and no
/// escape sequence reaches the terminal.
fn say(w: &mut impl Write, text: &str) {
    let _ = writeln!(w, "{}", crate::logging::printable(text)).and_then(|()| w.flush());
}

/// The answer as one line of text.
pub fn render_text(answer: &Answer, condition_type: &str) -> String {
    let c = &answer.condition;
    if answer.reported {
        format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message)
    } else {
        format!(
            "{condition_type} not reported: the Job failed: {}: {}",
            c.reason, c.message
        )
    }
}

/// The answer as JSON (`schema/wait-output.schema.json`): the condition's fields at the top
/// (`status` is `False` and `reported` false when the Job failed without the condition),
/// plus the Job's own `Complete`/`Failed` when present.
pub fn render_json(answer: &Answer, namespace: &str, job: &str, condition_type: &str) -> Value {
    let c = &answer.condition;
    let mut out = json!({
        "job": {"namespace": namespace, "name": job},
        "type": condition_type,
        "status": answer.status.as_str(),
        "reason": c.reason,
        "message": c.message,
        "lastTransitionTime": c.last_transition_time,
        "reported": answer.reported,
    });
    if let Some(complete) = &answer.complete {
        out["complete"] = complete.json();
    }
    if let Some(failed) = &answer.failed {
        out["failed"] = failed.json();
    }
    out
}

/// A progress line for stderr.
fn progress_line(condition_type: &str, p: &Condition) -> String {
    let line = format!("{condition_type}={} {}: {}", p.status, p.reason, p.message);
    match p.status {
        Status::False => format!("{line} (the Job has not finished: a retry may still succeed)"),
        _ => line,
    }
}

/// Why a watch error ends the wait (`Some`: permanent, with the message) or not (`None`).
fn permanent(error: &watcher::Error, namespace: &str, job: &str) -> Option<String> {
    match crate::retry::watch_refusal(error)? {
        (code @ (401 | 403), message) => Some(format!(
            "cannot watch job {namespace}/{job}: HTTP {code}: {message} (needs verbs list and watch on resource jobs in namespace {namespace})"
        )),
        (404, message) => Some(format!(
            "cannot watch job {namespace}/{job}: HTTP 404: {message} (is the namespace right?)"
        )),
        _ => None,
    }
}

/// Runs `wait`; returns the exit code. Progress and errors go to `err`, the answer to `out`.
pub async fn run(
    cfg: &WaitConfig,
    client: kube::Client,
    default_namespace: &str,
    out: &mut impl Write,
    err: &mut impl Write,
) -> i32 {
    let namespace = cfg.namespace.as_deref().unwrap_or(default_namespace);
    let job = cfg.job.as_str();
    let api: kube::Api<Job> = kube::Api::namespaced(client, namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={job}"));
    let mut stream = watcher(api, config).default_backoff().boxed();
    let mut last_progress: Option<Condition> = None;
    let mut seen = false;
    let watch = async {
        while let Some(event) = stream.next().await {
            let job_now = match event {
                Ok(watcher::Event::Apply(j) | watcher::Event::InitApply(j)) => j,
                Ok(watcher::Event::Init) => continue,
                Ok(watcher::Event::InitDone) if !seen => {
                    say(
                        err,
                        &format!("status-reporter wait: job {namespace}/{job} not found"),
                    );
                    return EXIT_ERROR;
                }
                Ok(watcher::Event::InitDone) => continue,
                Ok(watcher::Event::Delete(_)) => {
                    say(
                        err,
                        &format!(
                            "status-reporter wait: job {namespace}/{job} was deleted while waiting for {}",
                            cfg.condition_type
                        ),
                    );
                    return EXIT_ERROR;
                }
                Err(e) => {
                    if let Some(message) = permanent(&e, namespace, job) {
                        say(err, &format!("status-reporter wait: {message}"));
                        return EXIT_ERROR;
                    }
                    say(
                        err,
                        &format!("status-reporter wait: watch interrupted ({e}); resuming"),
                    );
                    continue;
                }
            };
            // Only the Job asked for: a server that ignores the field selector must not make
            // us report another Job's condition.
            if job_now.metadata.name.as_deref() != Some(job)
                || job_now
                    .metadata
                    .namespace
                    .as_deref()
                    .is_some_and(|ns| ns != namespace)
            {
                continue;
            }
            seen = true;
            match assess(&job_now, &cfg.condition_type) {
                Assessment::Done(answer) => {
                    let text = match cfg.output {
                        WaitOutput::Text => render_text(&answer, &cfg.condition_type),
                        WaitOutput::Json => {
                            json_line(&render_json(&answer, namespace, job, &cfg.condition_type))
                        }
                    };
                    say(out, &text);
                    return match answer.status {
                        Status::True => EXIT_TRUE,
                        _ => EXIT_FALSE,
                    };
                }
                Assessment::Progress(p) => {
                    if last_progress.as_ref() != Some(&p) {
                        say(err, &progress_line(&cfg.condition_type, &p));
                        last_progress = Some(p);
                    }
                }
                Assessment::Pending => {}
            }
        }
        say(err, "status-reporter wait: the watch ended");
        EXIT_ERROR
    };
    match tokio::time::timeout(cfg.timeout, watch).await {
        Ok(code) => code,
        Err(_) => {
            let last = last_progress.map_or_else(
                || format!("no {} condition yet", cfg.condition_type),
                |p| format!("last: {}", progress_line(&cfg.condition_type, &p)),
            );
            say(
                err,
                &format!(
                    "status-reporter wait: timed out after {} waiting for {} on job {namespace}/{job} ({last})",
                    go_duration::format(cfg.timeout),
                    cfg.condition_type
                ),
            );
            EXIT_TIMEOUT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(conditions: Value) -> Job {
        serde_json::from_value(
            json!({"metadata": {"name": "j"}, "status": {"conditions": conditions}}),
        )
        .unwrap()
    }

    fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-11-30T10:00:00Z"})
    }

    /// (conditions on the Job) → what `wait` makes of them: `Some((status, reported))` for an
    /// answer, `None` for progress or nothing yet.
    #[test]
    fn what_each_job_state_means() {
        let cases = [
            (
                "ours True",
                json!([cond("Available", "True", "Ok", "fine")]),
                Some(("True", true)),
            ),
            (
                "ours False while the Job may still retry is progress",
                json!([cond("Available", "False", "Bad", "no")]),
                None,
            ),
            (
                "ours False once the Job failed",
                json!([
                    cond("Available", "False", "Bad", "no"),
                    cond("Failed", "True", "BackoffLimitExceeded", "")
                ]),
                Some(("False", true)),
            ),
            (
                "ours False beats the Job's Complete (native mode, adapter exit 0)",
                json!([
                    cond("Available", "False", "Bad", "no"),
                    cond("Complete", "True", "", "")
                ]),
                Some(("False", true)),
            ),
            ("nothing yet", json!([]), None),
            (
                "progress",
                json!([cond(
                    "Available",
                    "Unknown",
                    "AwaitingResults",
                    "1/3 indexes reported"
                )]),
                None,
            ),
            (
                "the Job failed without ours: fail fast",
                json!([cond(
                    "Failed",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit"
                )]),
                Some(("False", false)),
            ),
            (
                "the Job failed with ours still Unknown: fail fast",
                json!([
                    cond(
                        "Available",
                        "Unknown",
                        "AwaitingResults",
                        "1/3 indexes reported"
                    ),
                    cond(
                        "Failed",
                        "True",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline"
                    )
                ]),
                Some(("False", false)),
            ),
            (
                "another type only",
                json!([cond("DNSReady", "True", "Ok", "fine")]),
                None,
            ),
        ];
        for (name, conditions, want) in cases {
            let got = match assess(&job(conditions), "Available") {
                Assessment::Done(a) => Some((a.status.as_str(), a.reported)),
                Assessment::Progress(_) | Assessment::Pending => None,
            };
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(
            assess(
                &job(json!([cond(
                    "Available",
                    "Unknown",
                    "AwaitingResults",
                    "1/3 indexes reported"
                )])),
                "Available"
            ),
            Assessment::Progress(Condition::new(
                Status::Unknown,
                "AwaitingResults",
                "1/3 indexes reported"
            ))
        );
    }

    #[test]
    fn json_output_is_one_line_with_every_control_escaped() {
        let v = json!({"message": "a\nb\u{1b}[31m\u{85}\u{7f}"});
        let line = json_line(&v);
        assert_eq!(line, r#"{"message":"a\nb\u001b[31m\u0085\u007f"}"#);
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), v);
    }

    #[test]
    fn rendering() {
        let Assessment::Done(ok) = assess(
            &job(json!([
                cond("Available", "True", "ChecksPassed", "All checks passed"),
                cond(
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods"
                )
            ])),
            "Available",
        ) else {
            panic!("final");
        };
        assert_eq!(
            render_text(&ok, "Available"),
            "Available=True ChecksPassed: All checks passed"
        );
        assert_eq!(
            render_json(&ok, "ns", "j", "Available"),
            json!({
                "job": {"namespace": "ns", "name": "j"},
                "type": "Available", "status": "True", "reason": "ChecksPassed", "message": "All checks passed",
                "lastTransitionTime": "2026-11-30T10:00:00Z", "reported": true,
                "complete": {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastTransitionTime": "2026-11-30T10:00:00Z"}
            })
        );
        let Assessment::Done(failed) = assess(
            &job(json!([cond(
                "Failed",
                "True",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit"
            )])),
            "Available",
        ) else {
            panic!("final");
        };
        assert_eq!(
            render_text(&failed, "Available"),
            "Available not reported: the Job failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
        );
        let j = render_json(&failed, "ns", "j", "Available");
        assert_eq!(
            (&j["status"], &j["reported"], &j["reason"]),
            (
                &json!("False"),
                &json!(false),
                &json!("BackoffLimitExceeded")
            )
        );
        assert_eq!(j["failed"]["type"], "Failed");
    }
}
