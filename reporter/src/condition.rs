//! The condition the reporter writes — on the Job (`CONDITION_TYPE`: one attempt's outcome or
//! the aggregate over all of them) and on its own pod (the attempt's record) — as a status,
//! a reason and a message.

use std::fmt;

/// A condition's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `"True"`: the adapter (or every shard) succeeded.
    True,
    /// `"False"`: it failed.
    False,
    /// `"Unknown"`: a multi-pod Job still waiting for results (never a single attempt's).
    Unknown,
}

impl Status {
    /// As Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    /// Reads Kubernetes' spelling; anything else is `None`.
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "True" => Some(Status::True),
            "False" => Some(Status::False),
            "Unknown" => Some(Status::Unknown),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status, reason and message of a condition (the type and times are the writer's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `True`, `False` or `Unknown`.
    pub status: Status,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Condition {
    /// A condition from its parts.
    pub fn new(status: Status, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Condition {
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}
