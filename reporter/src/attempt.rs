//! A pod as one attempt of its Job: its completion index, when it was created, whether the Job
//! controller may already have replaced it, and the result its reporter recorded on it (the pod
//! condition [`RESULT_CONDITION`]). Pure: what the aggregate reads, and the status patch that
//! records an attempt's result.

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::condition::{Condition, Status};

pub use contract::RESULT_CONDITION;
/// Pod label the Job controller sets to an Indexed Job pod's completion index.
pub const COMPLETION_INDEX_LABEL: &str = "batch.kubernetes.io/job-completion-index";
/// Pod annotation the Job controller sets (with `backoffLimitPerIndex`) to the number of
/// earlier failures of the pod's index.
pub const INDEX_FAILURE_COUNT_ANNOTATION: &str = "batch.kubernetes.io/job-index-failure-count";

/// One pod of the Job, as the aggregate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Pod name.
    pub name: String,
    /// Completion index (Indexed Jobs).
    pub index: Option<u32>,
    /// `metadata.creationTimestamp` (whole seconds).
    pub created: Option<jiff::Timestamp>,
    /// Failed, succeeded or being deleted: only such a pod can have been replaced.
    pub done: bool,
    /// The result its reporter recorded (`True` or `False`), if any yet.
    pub result: Option<Condition>,
    /// Earlier failures of its index, as the Job controller counted them.
    pub index_failures: Option<u32>,
}

impl Attempt {
    /// An attempt known only by name (no index, no time, running, no result).
    pub fn named(name: &str) -> Attempt {
        Attempt {
            name: name.to_owned(),
            index: None,
            created: None,
            done: false,
            result: None,
            index_failures: None,
        }
    }

    /// The attempt a pod stands for.
    pub fn from_pod(pod: &Pod) -> Attempt {
        let meta = &pod.metadata;
        let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key));
        let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key));
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        Attempt {
            name: meta.name.clone().unwrap_or_default(),
            index: label(COMPLETION_INDEX_LABEL).and_then(|v| v.parse().ok()),
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
            done: meta.deletion_timestamp.is_some()
                || matches!(phase, Some("Failed") | Some("Succeeded")),
            result: recorded_result(pod),
            index_failures: annotation(INDEX_FAILURE_COUNT_ANNOTATION).and_then(|v| v.parse().ok()),
        }
    }

    /// Older first: by creation time; within the same second a pod that is done is older than
    /// one that is not (the Job controller replaces only failed or terminating pods); then by
    /// name, so the order is total.
    pub fn age_order(&self, other: &Attempt) -> Ordering {
        self.created
            .cmp(&other.created)
            .then(other.done.cmp(&self.done))
            .then(self.name.cmp(&other.name))
    }
}

/// The result recorded on `pod` by its reporter (`True`/`False` only).
pub fn recorded_result(pod: &Pod) -> Option<Condition> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == RESULT_CONDITION)?;
    let status = Status::parse(&condition.status).filter(|s| *s != Status::Unknown)?;
    Some(Condition::new(
        status,
        condition.reason.clone().unwrap_or_default(),
        condition.message.clone().unwrap_or_default(),
    ))
}

/// The newest of `attempts` (see [`Attempt::age_order`]).
pub fn newest<'a>(attempts: impl IntoIterator<Item = &'a Attempt>) -> Option<&'a Attempt> {
    attempts.into_iter().max_by(|a, b| a.age_order(b))
}

/// The attempt number of `own` (1 for the first): its index's failure count plus one when the
/// Job controller counts them (`backoffLimitPerIndex`), else one plus the pods of the same
/// index (or of the Job, when not Indexed) created before it.
pub fn number(own: &Attempt, attempts: &[Attempt]) -> u32 {
    if let Some(failures) = own.index_failures {
        return failures.saturating_add(1);
    }
    let earlier = attempts
        .iter()
        .filter(|a| a.name != own.name && a.index == own.index)
        .filter(|a| a.age_order(own) == Ordering::Less)
        .count();
    u32::try_from(earlier).unwrap_or(u32::MAX).saturating_add(1)
}

/// The `pods/status` strategic-merge patch recording `result` (pod conditions merge by `type`,
/// so nobody else's condition is touched). `lastTransitionTime` is kept from `previous` while
/// the status stays the same.
pub fn record_patch(result: &Condition, previous: Option<(&Condition, &str)>, now: &str) -> Value {
    let since = match previous {
        Some((old, time)) if old.status == result.status => time,
        _ => now,
    };
    json!({"status": {"conditions": [{
        "type": RESULT_CONDITION,
        "status": result.status.as_str(),
        "reason": result.reason,
        "message": result.message,
        "lastTransitionTime": since,
    }]}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn at(time: &str, name: &str, done: bool) -> Attempt {
        Attempt {
            created: Some(time.parse().unwrap()),
            done,
            ..Attempt::named(name)
        }
    }

    #[test]
    fn a_pod_as_an_attempt() {
        let p = pod(json!({
            "metadata": {
                "name": "shard-2-abcde",
                "creationTimestamp": "2026-11-30T10:00:00Z",
                "labels": {COMPLETION_INDEX_LABEL: "2"},
                "annotations": {INDEX_FAILURE_COUNT_ANNOTATION: "1"}
            },
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": RESULT_CONDITION, "status": "False", "reason": "DnsMissing", "message": "no A record"}
            ]}
        }));
        assert_eq!(
            Attempt::from_pod(&p),
            Attempt {
                name: "shard-2-abcde".into(),
                index: Some(2),
                created: Some("2026-11-30T10:00:00Z".parse().unwrap()),
                done: false,
                result: Some(Condition::new(Status::False, "DnsMissing", "no A record")),
                index_failures: Some(1),
            }
        );
        let deleting =
            pod(json!({"metadata": {"name": "p", "deletionTimestamp": "2026-11-30T10:00:00Z"}}));
        assert!(Attempt::from_pod(&deleting).done);
        let failed = pod(json!({"metadata": {"name": "p"}, "status": {"phase": "Failed"}}));
        assert!(Attempt::from_pod(&failed).done);
        let unknown = pod(json!({"metadata": {"name": "p"}, "status": {"conditions": [
            {"type": RESULT_CONDITION, "status": "Unknown"}
        ]}}));
        assert_eq!(Attempt::from_pod(&unknown).result, None);
    }

    #[test]
    fn newest_is_the_latest_created_and_within_a_second_the_one_still_running() {
        let old = at("2026-11-30T10:00:00Z", "b", true);
        let new = at("2026-11-30T10:00:11Z", "a", false);
        assert_eq!(newest([&old, &new]).unwrap().name, "a");
        let same_second_done = at("2026-11-30T10:00:00Z", "z", true);
        let same_second_running = at("2026-11-30T10:00:00Z", "a", false);
        assert_eq!(
            newest([&same_second_done, &same_second_running])
                .unwrap()
                .name,
            "a"
        );
        assert_eq!(newest(std::iter::empty::<&Attempt>()), None);
    }

    #[test]
    fn attempt_numbers() {
        let first = at("2026-11-30T10:00:00Z", "first", true);
        let second = at("2026-11-30T10:00:11Z", "second", true);
        let third = at("2026-11-30T10:00:32Z", "third", false);
        let all = [first.clone(), second.clone(), third.clone()];
        assert_eq!(number(&first, &all), 1);
        assert_eq!(number(&third, &all), 3);
        // Indexed: only the same index counts; the controller's failure count wins.
        let other_index = Attempt {
            index: Some(1),
            ..at("2026-11-30T10:00:00Z", "other", true)
        };
        let mine = Attempt {
            index: Some(0),
            ..third.clone()
        };
        assert_eq!(number(&mine, &[other_index, mine.clone()]), 1);
        let counted = Attempt {
            index_failures: Some(2),
            ..mine
        };
        assert_eq!(number(&counted, &[]), 3);
    }

    #[test]
    fn the_record_patch_keeps_the_transition_time_while_the_status_stays() {
        let result = Condition::new(Status::True, "Ok", "fine");
        let patch = record_patch(&result, None, "T2");
        assert_eq!(
            patch,
            json!({"status": {"conditions": [{"type": RESULT_CONDITION, "status": "True", "reason": "Ok", "message": "fine", "lastTransitionTime": "T2"}]}})
        );
        let old = Condition::new(Status::True, "Old", "before");
        assert_eq!(
            record_patch(&result, Some((&old, "T1")), "T2")["status"]["conditions"][0]["lastTransitionTime"],
            "T1"
        );
        let failed = Condition::new(Status::False, "Old", "before");
        assert_eq!(
            record_patch(&result, Some((&failed, "T1")), "T2")["status"]["conditions"][0]["lastTransitionTime"],
            "T2"
        );
    }
}
