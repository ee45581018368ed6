//! A best-effort Kubernetes Event on the Job recording one attempt's outcome, naming the pod,
//! its index and its attempt number, so the history stays visible where the condition moved on
//! (a retry, another shard, a superseded attempt). It is published through kube's events
//! [`Recorder`] (`events.k8s.io/v1`) after the condition is written, with a short timeout and
//! no retries, so a refused or slow Event never delays or blocks the condition.

use std::time::Duration;

use contract::result::truncate_utf8;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::outcome::Outcome;

/// Component name: the Event's `reportingController`.
pub const COMPONENT: &str = "status-reporter";

/// The Event's `action` (what the reporter did).
pub const ACTION: &str = "ReportOutcome";

/// The API server refuses an `events.k8s.io` note longer than this (bytes).
pub const NOTE_LIMIT: usize = 1024;

/// The API server refuses a `reportingInstance` longer than this.
const INSTANCE_LIMIT: usize = 128;

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

/// The Event for `outcome` (pure): the outcome's message, cut so that the note with the
/// attempt's description after it stays within [`NOTE_LIMIT`].
pub fn make_event(source: &Source<'_>, outcome: &Outcome) -> Event {
    let tail = source.describe();
    let room = NOTE_LIMIT.saturating_sub(tail.len() + 1);
    let note = format!("{} {tail}", truncate_utf8(&outcome.message, room));
    Event {
        type_: if outcome.success {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: outcome.reason.clone(),
        note: Some(truncate_utf8(&note, NOTE_LIMIT).to_owned()),
        action: ACTION.to_owned(),
        secondary: None,
    }
}

/// The Job as the Event's `regarding` object.
pub fn job_reference(namespace: &str, job: &str, uid: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".to_owned()),
        kind: Some("Job".to_owned()),
        name: Some(job.to_owned()),
        namespace: Some(namespace.to_owned()),
        uid: uid.map(str::to_owned),
        ..Default::default()
    }
}

/// The recorder for Events this pod publishes.
pub fn recorder(client: kube::Client, pod: &str) -> Recorder {
    Recorder::new(
        client,
        Reporter {
            controller: COMPONENT.to_owned(),
            instance: Some(truncate_utf8(pod, INSTANCE_LIMIT).to_owned()),
        },
    )
}

/// Publishes the Event; logs and swallows any failure. Returns whether it was recorded.
pub async fn record(
    recorder: &Recorder,
    event: &Event,
    regarding: &ObjectReference,
    timeout: Duration,
) -> bool {
    match tokio::time::timeout(timeout, recorder.publish(event, regarding)).await {
        Ok(Ok(())) => true,
        Ok(Err(kube::Error::Api(status))) => {
            tracing::warn!(
                code = status.code,
                error = %status.message,
                "event not recorded (needs verb create on resource events in API group events.k8s.io); the condition is written regardless"
            );
            false
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "event not recorded; the condition is written regardless");
            false
        }
        Err(_) => {
            tracing::warn!(
                timeout = %crate::go_duration::format(timeout),
                "event not recorded in time; the condition is written regardless"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(message: &str) -> Outcome {
        Outcome::failed("AdapterExitedWithError", message.to_owned())
    }

    #[test]
    fn the_note_names_the_attempt_and_the_type_follows_the_outcome() {
        let source = Source {
            pod: "dns-7xk2p",
            index: Some(2),
            attempt: 3,
            superseded_by: None,
        };
        let e = make_event(
            &source,
            &failed("Adapter container exited with code 1: Error"),
        );
        assert_eq!(e.type_, EventType::Warning);
        assert_eq!(e.reason, "AdapterExitedWithError");
        assert_eq!(
            e.note.as_deref(),
            Some("Adapter container exited with code 1: Error (pod dns-7xk2p, index 2, attempt 3)")
        );
    }

    #[test]
    fn a_long_message_is_cut_so_the_attempt_survives_within_the_limit() {
        let source = Source {
            pod: "p",
            index: None,
            attempt: 1,
            superseded_by: Some("q"),
        };
        let e = make_event(&source, &failed(&"é".repeat(1024)));
        let note = e.note.unwrap();
        assert!(note.len() <= NOTE_LIMIT, "{}", note.len());
        assert!(note.ends_with(
            "(pod p, attempt 1; superseded by pod q, whose result the Job condition shows)"
        ));
    }
}
