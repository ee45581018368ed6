//! What the reporter learns from the Job it reads before each write (pure): its uid, its shape
//! (single completion, Indexed with an optional `successPolicy`, or other multi-pod), and
//! whether it is suspended or past its `activeDeadlineSeconds` — the facts behind the rules of
//! [docs/job-shapes.md](../../docs/job-shapes.md).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::outcome::DEFAULT_BACKOFF_LIMIT;

/// How the Job condition relates to the Job's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `completions` unset or 1, not Indexed, at most one pod at a time: the condition
    /// describes the newest attempt.
    Single,
    /// `completionMode: Indexed`: the aggregate over the newest attempt of every index.
    Indexed {
        /// `spec.completions` (required for Indexed Jobs).
        completions: u32,
        /// `spec.successPolicy`, if any.
        success_policy: Vec<SuccessRule>,
    },
    /// NonIndexed with `completions` > 1 or `parallelism` > 1: pods have no identity across
    /// retries, so the aggregate counts them.
    Counted {
        /// `spec.completions`; `None` for a work queue.
        completions: Option<u32>,
        /// `spec.backoffLimit`.
        backoff_limit: u32,
    },
}

/// One rule of an Indexed Job's `successPolicy`, with the Job controller's semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuccessRule {
    /// `succeededIndexes`, parsed; `None`: every index.
    pub indexes: Option<BTreeSet<u32>>,
    /// `succeededCount`.
    pub count: Option<u32>,
}

impl SuccessRule {
    /// Whether the rule is met by the succeeded indexes: all of `succeededIndexes` succeeded,
    /// or at least `succeededCount` of them (of all indexes, without `succeededIndexes`).
    pub fn is_met(&self, succeeded: &BTreeSet<u32>) -> bool {
        match (&self.indexes, self.count) {
            (Some(set), None) => !set.is_empty() && set.is_subset(succeeded),
            (Some(set), Some(n)) => set.intersection(succeeded).count() >= n as usize,
            (None, Some(n)) => succeeded.len() >= n as usize,
            (None, None) => false,
        }
    }
}

/// Parses an index set as the Job API writes it (`"0,2-4"`), keeping only indexes below
/// `completions` (the API server refuses others): the set never outgrows the Job, whatever the
/// text says. `None` if malformed.
pub fn parse_index_set(text: &str, completions: u32) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (from, to): (u32, u32) = match part.split_once('-') {
            Some((from, to)) => (from.trim().parse().ok()?, to.trim().parse().ok()?),
            None => {
                let i = part.parse().ok()?;
                (i, i)
            }
        };
        if from > to {
            return None;
        }
        set.extend(from..=to.min(completions.saturating_sub(1)));
    }
    Some(set)
}

/// The Job as the write rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFacts {
    /// `metadata.uid`.
    pub uid: Option<String>,
    /// Its shape.
    pub shape: Shape,
    /// `spec.suspend` is true.
    pub suspended: bool,
    /// `spec.activeDeadlineSeconds`, when the Job has passed it.
    pub deadline_exceeded: Option<Duration>,
}

fn count(job: &Value, pointer: &str) -> Option<u32> {
    job.pointer(pointer)
        .and_then(Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Reads the facts from a Job object (JSON, as the API returns it) at wall-clock `now`.
pub fn facts(job: &Value, now: jiff::Timestamp) -> JobFacts {
    JobFacts {
        uid: job
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        shape: shape(job),
        suspended: job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true),
        deadline_exceeded: deadline_exceeded(job, now),
    }
}

/// The Job's shape from its spec.
pub fn shape(job: &Value) -> Shape {
    let completions = count(job, "/spec/completions");
    let parallelism = count(job, "/spec/parallelism").unwrap_or(1);
    let indexed = job.pointer("/spec/completionMode").and_then(Value::as_str) == Some("Indexed");
    if indexed {
        let rules = job
            .pointer("/spec/successPolicy/rules")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| SuccessRule {
                        // A malformed set (the API server refuses those) matches nothing.
                        indexes: r.get("succeededIndexes").and_then(Value::as_str).map(|t| {
                            parse_index_set(t, completions.unwrap_or(1)).unwrap_or_default()
                        }),
                        count: count(r, "/succeededCount"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        return Shape::Indexed {
            completions: completions.unwrap_or(1),
            success_policy: rules,
        };
    }
    let single = match completions {
        Some(c) => c <= 1,
        None => parallelism <= 1,
    };
    if single {
        Shape::Single
    } else {
        Shape::Counted {
            completions,
            backoff_limit: count(job, "/spec/backoffLimit")
                .unwrap_or(DEFAULT_BACKOFF_LIMIT.unsigned_abs()),
        }
    }
}

/// `activeDeadlineSeconds` when the Job has passed it: the Job controller's `FailureTarget`
/// or `Failed` condition says `DeadlineExceeded`, or (the controller deletes the pods before
/// it writes that condition) `status.startTime` plus the deadline is not after `now`.
pub fn deadline_exceeded(job: &Value, now: jiff::Timestamp) -> Option<Duration> {
    let seconds = job
        .pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_u64)?;
    let deadline = Duration::from_secs(seconds);
    let said_so = job
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            matches!(
                c.get("type").and_then(Value::as_str),
                Some("FailureTarget") | Some("Failed")
            ) && c.get("status").and_then(Value::as_str) == Some("True")
                && c.get("reason").and_then(Value::as_str) == Some("DeadlineExceeded")
        });
    let passed = job
        .pointer("/status/startTime")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .and_then(|start| {
            start
                .checked_add(jiff::SignedDuration::from_secs(
                    i64::try_from(seconds).ok()?,
                ))
                .ok()
        })
        .is_some_and(|end| end <= now);
    (said_so || passed).then_some(deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> jiff::Timestamp {
        "2026-11-30T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn shapes() {
        let cases = [
            (json!({"spec": {}}), Shape::Single),
            (
                json!({"spec": {"completions": 1, "parallelism": 1}}),
                Shape::Single,
            ),
            // The controller runs one pod at a time when one completion is wanted.
            (
                json!({"spec": {"completions": 1, "parallelism": 4}}),
                Shape::Single,
            ),
            (
                json!({"spec": {"completions": 2, "parallelism": 2, "backoffLimit": 0}}),
                Shape::Counted {
                    completions: Some(2),
                    backoff_limit: 0,
                },
            ),
            (
                json!({"spec": {"parallelism": 3}}),
                Shape::Counted {
                    completions: None,
                    backoff_limit: 6,
                },
            ),
            (
                json!({"spec": {"completions": 3, "completionMode": "Indexed"}}),
                Shape::Indexed {
                    completions: 3,
                    success_policy: vec![],
                },
            ),
            (
                json!({"spec": {"completions": 1, "completionMode": "Indexed"}}),
                Shape::Indexed {
                    completions: 1,
                    success_policy: vec![],
                },
            ),
            (
                json!({"spec": {"completions": 5, "completionMode": "Indexed", "successPolicy": {"rules": [
                    {"succeededIndexes": "0,2-3"},
                    {"succeededCount": 2},
                    {"succeededIndexes": "1-4", "succeededCount": 1}
                ]}}}),
                Shape::Indexed {
                    completions: 5,
                    success_policy: vec![
                        SuccessRule {
                            indexes: Some([0, 2, 3].into()),
                            count: None,
                        },
                        SuccessRule {
                            indexes: None,
                            count: Some(2),
                        },
                        SuccessRule {
                            indexes: Some([1, 2, 3, 4].into()),
                            count: Some(1),
                        },
                    ],
                },
            ),
        ];
        for (job, want) in cases {
            assert_eq!(shape(&job), want, "{job}");
        }
    }

    #[test]
    fn success_rules_as_the_job_controller_reads_them() {
        let succeeded: BTreeSet<u32> = [0, 2].into();
        let rule = |indexes: Option<&str>, count: Option<u32>| SuccessRule {
            indexes: indexes.map(|t| parse_index_set(t, 10).unwrap()),
            count,
        };
        assert!(rule(Some("0"), None).is_met(&succeeded));
        assert!(rule(Some("0,2"), None).is_met(&succeeded));
        assert!(!rule(Some("0-2"), None).is_met(&succeeded));
        assert!(rule(Some("0-2"), Some(2)).is_met(&succeeded));
        assert!(!rule(Some("1-3"), Some(2)).is_met(&succeeded));
        assert!(rule(None, Some(2)).is_met(&succeeded));
        assert!(!rule(None, Some(3)).is_met(&succeeded));
        assert_eq!(
            parse_index_set(" 1, 3-5 ,9", 10),
            Some([1, 3, 4, 5, 9].into())
        );
        assert_eq!(parse_index_set("2-1", 10), None);
        assert_eq!(parse_index_set("x", 10), None);
        // Never larger than the Job: a hostile range, or many, stop at `completions`.
        assert_eq!(parse_index_set("8-4294967295", 10), Some([8, 9].into()));
        let many = (0..100_000)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 9))
            .collect::<Vec<_>>();
        assert_eq!(parse_index_set(&many.join(","), 3), Some([0, 1, 2].into()));
    }

    #[test]
    fn suspended_and_deadline() {
        let job = json!({
            "metadata": {"uid": "u-1"},
            "spec": {"suspend": true, "activeDeadlineSeconds": 90},
            "status": {"startTime": "2026-11-30T09:59:00Z"}
        });
        let f = facts(&job, now());
        assert_eq!(f.uid.as_deref(), Some("u-1"));
        assert!(f.suspended);
        assert_eq!(f.deadline_exceeded, None, "30 s of 90 left");
        let later: jiff::Timestamp = "2026-11-30T10:00:30Z".parse().unwrap();
        assert_eq!(
            facts(&job, later).deadline_exceeded,
            Some(Duration::from_secs(90))
        );
        let marked = json!({
            "spec": {"activeDeadlineSeconds": 600},
            "status": {"conditions": [{"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}]}
        });
        assert_eq!(
            deadline_exceeded(&marked, now()),
            Some(Duration::from_secs(600))
        );
        let other_failure = json!({
            "spec": {"activeDeadlineSeconds": 600},
            "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
        });
        assert_eq!(deadline_exceeded(&other_failure, now()), None);
        assert_eq!(deadline_exceeded(&json!({"spec": {}}), now()), None);
    }
}
