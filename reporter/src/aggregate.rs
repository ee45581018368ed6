//! The pure decision for the Job condition in every Job shape: given the Job's [`Shape`], this
//! reporter's own attempt (with the result it just decided) and the Job's pods as attempts
//! (with the results their reporters recorded), which condition the Job gets — or none,
//! because a newer attempt owns it ([docs/job-shapes.md](../../docs/job-shapes.md), "What the
//! condition means in each shape").

use std::collections::{BTreeMap, BTreeSet};

use crate::attempt::{Attempt, newest};
use crate::condition::{Condition, Status};
use crate::job_shape::Shape;

/// Reason while a multi-pod Job is still waiting for results.
pub const REASON_AWAITING_RESULTS: &str = "AwaitingResults";
/// Reason when every index succeeded with different reasons.
pub const REASON_ALL_INDEXES_SUCCEEDED: &str = "AllIndexesSucceeded";
/// Reason when a `successPolicy` rule is met (not every index succeeded) with different reasons.
pub const REASON_SUCCESS_POLICY_MET: &str = "SuccessPolicyMet";
/// Reason when enough pods of a NonIndexed Job succeeded with different reasons.
pub const REASON_COMPLETIONS_SUCCEEDED: &str = "CompletionsSucceeded";

/// What the Job condition becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Write this condition on the Job.
    Write(Condition),
    /// Another pod is a newer attempt (of the same index): the Job condition is its to write.
    Superseded {
        /// The newer pod.
        newer: String,
    },
}

/// The Job condition after this reporter's attempt `own` decided `result`, among `pods` (the
/// Job's pods as listed: `own` may or may not be among them, and its entry there may predate
/// its result).
pub fn aggregate(shape: &Shape, own: &Attempt, result: &Condition, pods: &[Attempt]) -> Verdict {
    let own = &Attempt {
        result: Some(result.clone()),
        ..own.clone()
    };
    let attempts: Vec<&Attempt> = pods
        .iter()
        .filter(|a| a.name != own.name)
        .chain(std::iter::once(own))
        .collect();
    match shape {
        Shape::Indexed {
            completions,
            success_policy,
        } if own.index.is_some() => indexed(own, &attempts, *completions, |succeeded| {
            success_policy.iter().any(|rule| rule.is_met(succeeded))
        }),
        // An Indexed pod without its index label cannot be placed: treat it as its own Job.
        Shape::Single | Shape::Indexed { .. } => single(own, result, &attempts),
        Shape::Counted {
            completions,
            backoff_limit,
        } => counted(&attempts, *completions, *backoff_limit),
    }
}

/// Single completion: the newest attempt's result, written only by the newest attempt.
fn single(own: &Attempt, result: &Condition, attempts: &[&Attempt]) -> Verdict {
    match newest(attempts.iter().copied()) {
        Some(n) if n.name != own.name => Verdict::Superseded {
            newer: n.name.clone(),
        },
        _ => Verdict::Write(result.clone()),
    }
}

fn awaiting(message: String) -> Condition {
    Condition::new(Status::Unknown, REASON_AWAITING_RESULTS, message)
}

/// The one value every item shares, if they share one.
fn shared<'a>(mut items: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let first = items.next()?;
    items.all(|x| x == first).then_some(first)
}

/// Indexed: the newest attempt per index; the aggregate over the newest attempt of every index.
fn indexed(
    own: &Attempt,
    attempts: &[&Attempt],
    completions: u32,
    policy_met: impl Fn(&BTreeSet<u32>) -> bool,
) -> Verdict {
    let mut by_index: BTreeMap<u32, Vec<&Attempt>> = BTreeMap::new();
    for a in attempts {
        if let Some(i) = a.index {
            by_index.entry(i).or_default().push(a);
        }
    }
    let newest_of: BTreeMap<u32, &Attempt> = by_index
        .iter()
        .filter_map(|(i, list)| newest(list.iter().copied()).map(|a| (*i, a)))
        .collect();
    if let Some(n) = own.index.and_then(|i| newest_of.get(&i))
        && n.name != own.name
    {
        return Verdict::Superseded {
            newer: n.name.clone(),
        };
    }
    let results: BTreeMap<u32, &Condition> = newest_of
        .iter()
        .filter(|(i, _)| **i < completions)
        .filter_map(|(i, a)| a.result.as_ref().map(|r| (*i, r)))
        .collect();
    let succeeded: BTreeMap<u32, &Condition> = results
        .iter()
        .filter(|(_, r)| r.status == Status::True)
        .map(|(i, r)| (*i, *r))
        .collect();
    let succeeded_set: BTreeSet<u32> = succeeded.keys().copied().collect();
    let all = succeeded.len() as u64 == u64::from(completions);
    if all || policy_met(&succeeded_set) {
        let default = if all {
            REASON_ALL_INDEXES_SUCCEEDED
        } else {
            REASON_SUCCESS_POLICY_MET
        };
        let reason = shared(succeeded.values().map(|r| r.reason.as_str())).unwrap_or(default);
        let mut message = format!("{}/{completions} indexes succeeded", succeeded.len());
        if let Some(m) = shared(succeeded.values().map(|r| r.message.as_str())) {
            message = format!("{message}: {m}");
        }
        return Verdict::Write(Condition::new(Status::True, reason, message));
    }
    let mut failed = results.iter().filter(|(_, r)| r.status == Status::False);
    if let Some((index, first)) = failed.next() {
        let more = failed.count();
        let mut message = format!("index {index}: {}", first.message);
        if more > 0 {
            message = format!("{message} (+{more} more failed)");
        }
        return Verdict::Write(Condition::new(Status::False, first.reason.clone(), message));
    }
    Verdict::Write(awaiting(format!(
        "{}/{completions} indexes reported",
        results.len()
    )))
}

/// Other multi-pod Jobs (NonIndexed) count results, as the Job controller counts pods.
fn counted(attempts: &[&Attempt], completions: Option<u32>, backoff_limit: u32) -> Verdict {
    let mut ordered = attempts.to_vec();
    ordered.sort_by(|a, b| a.age_order(b));
    let with = |status: Status| -> Vec<(&str, &Condition)> {
        ordered
            .iter()
            .filter_map(|a| a.result.as_ref().map(|r| (a.name.as_str(), r)))
            .filter(|(_, r)| r.status == status)
            .collect()
    };
    let (succeeded, failed) = (with(Status::True), with(Status::False));
    let (s, f) = (succeeded.len(), failed.len());
    let still_running = ordered.iter().any(|a| !a.done && a.result.is_none());
    let done = match completions {
        Some(c) => s as u64 >= u64::from(c),
        // A work queue is done once one pod succeeded and none is still at work.
        None => s >= 1 && !still_running,
    };
    if done {
        let reason = shared(succeeded.iter().map(|(_, r)| r.reason.as_str()))
            .unwrap_or(REASON_COMPLETIONS_SUCCEEDED);
        let mut message = match completions {
            Some(c) => format!("{s}/{c} pods succeeded"),
            None => format!("{s} pods succeeded"),
        };
        if let Some(m) = shared(succeeded.iter().map(|(_, r)| r.message.as_str())) {
            message = format!("{message}: {m}");
        }
        return Verdict::Write(Condition::new(Status::True, reason, message));
    }
    if f as u64 > u64::from(backoff_limit)
        && let Some((pod, first)) = failed.first()
    {
        let mut message = format!("pod {pod}: {}", first.message);
        if f > 1 {
            message = format!("{message} (+{} more failed)", f - 1);
        }
        return Verdict::Write(Condition::new(Status::False, first.reason.clone(), message));
    }
    Verdict::Write(awaiting(match completions {
        Some(c) => format!("{s} succeeded, {f} failed of {c}"),
        None => format!("{s} succeeded, {f} failed"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job_shape::{SuccessRule, parse_index_set};

    /// A pod created `second`s after the first one, optionally on an index, optionally done,
    /// with a recorded result `"+Reason: message"` (True) or `"-Reason: message"` (False).
    fn pod(
        name: &str,
        second: i64,
        index: Option<u32>,
        done: bool,
        result: Option<&str>,
    ) -> Attempt {
        let result = result.map(|r| {
            let (status, rest) = match r.split_at(1) {
                ("+", rest) => (Status::True, rest),
                (_, rest) => (Status::False, rest),
            };
            let (reason, message) = rest.split_once(": ").unwrap();
            Condition::new(status, reason, message)
        });
        Attempt {
            name: name.into(),
            index,
            created: Some(jiff::Timestamp::from_second(1_800_000_000 + second).unwrap()),
            done,
            result,
            index_failures: None,
        }
    }

    fn indexed(completions: u32) -> Shape {
        Shape::Indexed {
            completions,
            success_policy: vec![],
        }
    }

    fn counted(completions: Option<u32>, backoff_limit: u32) -> Shape {
        Shape::Counted {
            completions,
            backoff_limit,
        }
    }

    struct Case {
        rule: &'static str,
        shape: Shape,
        /// This reporter's attempt, with the result it decided.
        own: Attempt,
        /// The Job's other pods as listed.
        pods: Vec<Attempt>,
        /// `None`: superseded (the Job condition is left alone).
        want: Option<(&'static str, &'static str, &'static str)>,
    }

    #[test]
    fn every_job_shape() {
        let success_policy = |indexes: &str| Shape::Indexed {
            completions: 3,
            success_policy: vec![SuccessRule {
                indexes: parse_index_set(indexes, 3),
                count: None,
            }],
        };
        let cases = vec![
            // Single-completion Jobs: the newest attempt's result.
            Case {
                rule: "single, first attempt: its own result, as the original",
                shape: Shape::Single,
                own: pod(
                    "a1",
                    0,
                    None,
                    false,
                    Some("-AdapterExitedWithError: Adapter container exited with code 1: Error"),
                ),
                pods: vec![],
                want: Some((
                    "False",
                    "AdapterExitedWithError",
                    "Adapter container exited with code 1: Error",
                )),
            },
            Case {
                rule: "single, the retry succeeds: True replaces attempt 1's False",
                shape: Shape::Single,
                own: pod(
                    "a2",
                    11,
                    None,
                    false,
                    Some("+ChecksPassed: All checks passed"),
                ),
                pods: vec![pod(
                    "a1",
                    0,
                    None,
                    true,
                    Some("-AdapterExitedWithError: exit 1"),
                )],
                want: Some(("True", "ChecksPassed", "All checks passed")),
            },
            Case {
                rule: "single, a superseded (evicted, terminating) attempt leaves the Job alone",
                shape: Shape::Single,
                own: pod(
                    "a1",
                    0,
                    None,
                    true,
                    Some(
                        "-AdapterTerminated: Pod a1 was deleted before the adapter produced a result",
                    ),
                ),
                pods: vec![pod("a2", 11, None, false, Some("+ChecksPassed: ok"))],
                want: None,
            },
            Case {
                rule: "single, superseded even before the replacement reported",
                shape: Shape::Single,
                own: pod("a1", 0, None, true, Some("-AdapterTerminated: gone")),
                pods: vec![pod("a2", 11, None, false, None)],
                want: None,
            },
            Case {
                rule: "single, same second: the running pod is the newer one",
                shape: Shape::Single,
                own: pod("zz", 0, None, false, Some("+Ok: fine")),
                pods: vec![pod("aa", 0, None, true, Some("-Bad: no"))],
                want: Some(("True", "Ok", "fine")),
            },
            // Indexed Jobs.
            Case {
                rule: "indexed, 0 and 1 succeeded, 2 not yet: Unknown",
                shape: indexed(3),
                own: pod("i1", 0, Some(1), false, Some("+Ok: shard fine")),
                pods: vec![
                    pod("i0", 0, Some(0), false, Some("+Ok: shard fine")),
                    pod("i2", 0, Some(2), false, None),
                ],
                want: Some(("Unknown", "AwaitingResults", "2/3 indexes reported")),
            },
            Case {
                rule: "indexed, 2 fails: False naming index 2",
                shape: indexed(3),
                own: pod("i2", 0, Some(2), false, Some("-DnsMissing: no A record")),
                pods: vec![
                    pod("i0", 0, Some(0), true, Some("+Ok: fine")),
                    pod("i1", 0, Some(1), true, Some("+Ok: fine")),
                ],
                want: Some(("False", "DnsMissing", "index 2: no A record")),
            },
            Case {
                rule: "indexed, several fail: the lowest, and how many more",
                shape: indexed(4),
                own: pod("i3", 0, Some(3), false, Some("-Late: three")),
                pods: vec![
                    pod("i0", 0, Some(0), true, Some("+Ok: fine")),
                    pod("i1", 0, Some(1), true, Some("-Quota: one")),
                    pod("i2", 0, Some(2), true, Some("-Quota: two")),
                ],
                want: Some(("False", "Quota", "index 1: one (+2 more failed)")),
            },
            Case {
                rule: "indexed, index 2's retry succeeds: its newest attempt counts",
                shape: indexed(3),
                own: pod("i2b", 12, Some(2), false, Some("+Ok: fine")),
                pods: vec![
                    pod("i0", 0, Some(0), true, Some("+Ok: fine")),
                    pod("i1", 0, Some(1), true, Some("+Ok: fine")),
                    pod("i2a", 0, Some(2), true, Some("-DnsMissing: no A record")),
                ],
                want: Some(("True", "Ok", "3/3 indexes succeeded: fine")),
            },
            Case {
                rule: "indexed, all succeeded with different reasons and messages",
                shape: indexed(2),
                own: pod("i1", 0, Some(1), false, Some("+Quick: one")),
                pods: vec![pod("i0", 0, Some(0), false, Some("+Slow: zero"))],
                want: Some(("True", "AllIndexesSucceeded", "2/2 indexes succeeded")),
            },
            Case {
                rule: "indexed, an index's superseded attempt leaves the Job alone",
                shape: indexed(3),
                own: pod("i2a", 0, Some(2), true, Some("-AdapterTerminated: evicted")),
                pods: vec![
                    pod("i2b", 12, Some(2), false, None),
                    pod("i0", 0, Some(0), true, Some("+Ok: fine")),
                ],
                want: None,
            },
            Case {
                rule: "indexed, successPolicy succeededIndexes \"0\": True once index 0 succeeded",
                shape: success_policy("0"),
                own: pod("i0", 0, Some(0), false, Some("+Leader: elected")),
                pods: vec![
                    pod("i1", 0, Some(1), false, None),
                    pod("i2", 0, Some(2), false, Some("-Follower: lost")),
                ],
                want: Some(("True", "Leader", "1/3 indexes succeeded: elected")),
            },
            Case {
                rule: "indexed, successPolicy not met yet: the usual rules",
                shape: success_policy("0-1"),
                own: pod("i0", 0, Some(0), false, Some("+Ok: fine")),
                pods: vec![pod("i1", 0, Some(1), false, None)],
                want: Some(("Unknown", "AwaitingResults", "1/3 indexes reported")),
            },
            Case {
                rule: "indexed, successPolicy met by different reasons",
                shape: Shape::Indexed {
                    completions: 4,
                    success_policy: vec![SuccessRule {
                        indexes: None,
                        count: Some(2),
                    }],
                },
                own: pod("i0", 0, Some(0), false, Some("+A: a")),
                pods: vec![pod("i3", 0, Some(3), false, Some("+B: b"))],
                want: Some(("True", "SuccessPolicyMet", "2/4 indexes succeeded")),
            },
            // Other multi-pod Jobs count.
            Case {
                rule: "nonindexed completions 2: one success is progress",
                shape: counted(Some(2), 6),
                own: pod("p1", 0, None, false, Some("+Ok: fine")),
                pods: vec![pod("p2", 0, None, false, None)],
                want: Some(("Unknown", "AwaitingResults", "1 succeeded, 0 failed of 2")),
            },
            Case {
                rule: "nonindexed completions 2: both succeed",
                shape: counted(Some(2), 6),
                own: pod("p2", 0, None, false, Some("+Ok: fine")),
                pods: vec![pod("p1", 0, None, true, Some("+Ok: fine"))],
                want: Some(("True", "Ok", "2/2 pods succeeded: fine")),
            },
            Case {
                rule: "nonindexed, backoffLimit 0: one failure is too many",
                shape: counted(Some(2), 0),
                own: pod("p2", 1, None, false, Some("-DnsMissing: no A record")),
                pods: vec![pod("p1", 0, None, false, None)],
                want: Some(("False", "DnsMissing", "pod p2: no A record")),
            },
            Case {
                rule: "nonindexed, failures within backoffLimit are progress",
                shape: counted(Some(2), 1),
                own: pod("p2", 1, None, false, Some("-DnsMissing: no A record")),
                pods: vec![pod("p1", 0, None, false, Some("+Ok: fine"))],
                want: Some(("Unknown", "AwaitingResults", "1 succeeded, 1 failed of 2")),
            },
            Case {
                rule: "nonindexed, past backoffLimit: the first failure, and how many more",
                shape: counted(Some(3), 1),
                own: pod("p3", 5, None, false, Some("-Quota: three")),
                pods: vec![
                    pod("p1", 0, None, true, Some("-Quota: one")),
                    pod("p2", 1, None, true, Some("+Ok: fine")),
                ],
                want: Some(("False", "Quota", "pod p1: one (+1 more failed)")),
            },
            Case {
                rule: "work queue: one success while another pod still works is progress",
                shape: counted(None, 6),
                own: pod("w1", 0, None, false, Some("+Drained: queue empty")),
                pods: vec![pod("w2", 0, None, false, None)],
                want: Some(("Unknown", "AwaitingResults", "1 succeeded, 0 failed")),
            },
            Case {
                rule: "work queue: done once one succeeded and none still works",
                shape: counted(None, 6),
                own: pod("w2", 0, None, false, Some("+Drained: queue empty")),
                pods: vec![pod("w1", 0, None, true, Some("+Drained: queue empty"))],
                want: Some(("True", "Drained", "2 pods succeeded: queue empty")),
            },
        ];
        for c in &cases {
            let result = c.own.result.clone().expect("the reporter decided");
            let own = Attempt {
                result: None,
                ..c.own.clone()
            };
            let got = match aggregate(&c.shape, &own, &result, &c.pods) {
                Verdict::Write(cond) => Some((cond.status.as_str(), cond.reason, cond.message)),
                Verdict::Superseded { .. } => None,
            };
            let want = c.want.map(|(s, r, m)| (s, r.to_owned(), m.to_owned()));
            assert_eq!(got, want, "rule: {}", c.rule);
        }
    }

    /// The listed pods may show this reporter's pod before its result was recorded: its own
    /// fresh result counts, never the stale entry.
    #[test]
    fn own_result_replaces_its_listed_entry() {
        let own = pod("i1", 0, Some(1), false, None);
        let stale = pod("i1", 0, Some(1), false, Some("-Old: before"));
        let other = pod("i0", 0, Some(0), false, Some("+Ok: fine"));
        let result = Condition::new(Status::True, "Ok", "fine");
        assert_eq!(
            aggregate(&indexed(2), &own, &result, &[stale, other]),
            Verdict::Write(Condition::new(
                Status::True,
                "Ok",
                "2/2 indexes succeeded: fine"
            ))
        );
    }
}
