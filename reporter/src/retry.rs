//! Retrying one API call within a deadline: which failures are worth another try (5xx, 429,
//! transport trouble, no answer in time), capped exponential backoff with jitter (on `backon`),
//! the server's `Retry-After` hint honoured but never past the deadline, and a per-request
//! timeout that never outlives the deadline either.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::time::Instant;

use crate::go_duration;
use crate::response_limit::TooLarge;

/// Retry timing for API calls.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First backoff delay.
    pub initial: Duration,
    /// Backoff cap.
    pub max: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Backoff delays with full jitter, so reporters of one Job that collide (409) or meet the
    /// same outage do not retry in lockstep.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }
}

/// When a piece of work must be done by, and the budget it was given (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The instant it passes.
    pub at: Instant,
    /// How long it was from its start.
    pub budget: Duration,
}

impl Deadline {
    /// `budget` from now (saturating: a budget too long for the clock is as good as none).
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            at: crate::outcome::later(Instant::now().into_std(), budget).into(),
            budget,
        }
    }

    /// The earlier of the two.
    pub fn min(self, other: Deadline) -> Deadline {
        if other.at < self.at { other } else { self }
    }

    /// Time left from now.
    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The budget as Go writes durations (`1m0s`), for messages.
    pub fn budget_text(&self) -> String {
        go_duration::format(self.budget)
    }
}

/// Why one call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth another try, after the server's hint if it gave one.
    Transient {
        /// What went wrong.
        what: String,
        /// The server's `retryAfterSeconds`.
        retry_after: Option<Duration>,
    },
    /// Another try cannot help (403, 404, 409, 422, a broken response...).
    Permanent {
        /// HTTP status (0 when the server did not answer with one).
        code: u16,
        /// The server's message, or what was wrong with its answer.
        message: String,
    },
}

impl Failure {
    /// The HTTP status of a permanent failure.
    pub fn code(&self) -> Option<u16> {
        match self {
            Failure::Permanent { code, .. } => Some(*code),
            Failure::Transient { .. } => None,
        }
    }
}

/// Sorts a kube error into transient or permanent.
pub fn classify(error: &kube::Error) -> Failure {
    if let kube::Error::Api(status) = error {
        let code = status.code;
        if code >= 500 || code == 429 {
            let hint = status.details.as_ref().map_or(0, |d| d.retry_after_seconds);
            return Failure::Transient {
                what: format!("HTTP {code}: {}", status.message),
                retry_after: (hint > 0).then(|| Duration::from_secs(u64::from(hint))),
            };
        }
        return Failure::Permanent {
            code,
            message: status.message.clone(),
        };
    }
    // A response too large to be an object is broken or hostile, and will be again.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(too_large) = e.downcast_ref::<TooLarge>() {
            return Failure::Permanent {
                code: 0,
                message: too_large.to_string(),
            };
        }
        source = e.source();
    }
    match error {
        kube::Error::SerdeError(e) => Failure::Permanent {
            code: 0,
            message: format!("the API server's answer is not what was asked for: {e}"),
        },
        other => Failure::Transient {
            what: other.to_string(),
            retry_after: None,
        },
    }
}

/// The delay before the next try: the server's hint if it gave one (up to `cap`, the backoff's
/// own cap: a server asking for minutes gets another try within the deadline rather than
/// none), else the backoff's; `None` when that try could not start before `deadline`. Any
/// number a server sends is clamped: it never overflows a clock or outlives the deadline.
pub fn next_delay(
    failure: &Failure,
    backoff: Option<Duration>,
    cap: Duration,
    now: Instant,
    deadline: Instant,
) -> Option<Duration> {
    let wait = match failure {
        Failure::Transient {
            retry_after: Some(hint),
            ..
        } => (*hint).min(cap),
        Failure::Transient { .. } => backoff?,
        Failure::Permanent { .. } => return None,
    };
    let left = deadline.saturating_duration_since(now);
    (wait < left).then_some(wait)
}

/// How a retried call ended without success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp {
    /// The server refused it for good.
    Permanent {
        /// HTTP status (0 when the server did not answer with one).
        code: u16,
        /// The server's message.
        message: String,
    },
    /// Transient failures did not clear before the deadline.
    Deadline {
        /// Tries made.
        attempts: u32,
        /// The last failure, prefixed with the call's label.
        last: String,
    },
}

/// Runs `call` until it succeeds, fails permanently, or `deadline` passes; each try is cut at
/// `policy.request_timeout` or the deadline, whichever is first. Returns the value and the
/// number of tries. `label` (e.g. `get jobs/status`) names the call in logs and errors.
pub async fn retrying<T, F, Fut>(
    label: &str,
    policy: &RetryPolicy,
    deadline: Instant,
    mut call: F,
) -> Result<(T, u32), GaveUp>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempts = 0;
    let attempt = || {
        attempts += 1;
        let request = call();
        async move {
            let now = Instant::now();
            let timeout = policy
                .request_timeout
                .min(deadline.saturating_duration_since(now))
                .max(Duration::from_millis(1));
            match tokio::time::timeout(timeout, request).await {
                Err(_) => Err(Failure::Transient {
                    what: format!("no response within {}", go_duration::format(timeout)),
                    retry_after: None,
                }),
                Ok(Err(e)) => Err(classify(&e)),
                Ok(Ok(value)) => Ok(value),
            }
        }
    };
    let result = attempt
        .retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(|f| matches!(f, Failure::Transient { .. }))
        .adjust(|f, backoff| next_delay(f, backoff, policy.max, Instant::now(), deadline))
        .notify(|f, wait| {
            if let Failure::Transient { what, .. } = f {
                tracing::warn!(request = label, error = %what, retry_in = %go_duration::format(wait), "transient API error, retrying");
            }
        })
        .await;
    match result {
        Ok(value) => Ok((value, attempts)),
        Err(Failure::Permanent { code, message }) => Err(GaveUp::Permanent { code, message }),
        Err(Failure::Transient { what, .. }) => Err(GaveUp::Deadline {
            attempts,
            last: format!("{label}: {what}"),
        }),
    }
}

/// The API server's refusal behind a watch error — the `(code, message)` of a status it
/// answered — or `None` for transport trouble (a dropped connection, a timeout) that the
/// watcher's backoff rides out. The caller decides which codes are permanent: a 403 on a
/// watch is RBAC, and no number of retries grants the verb.
pub fn watch_refusal(error: &kube::runtime::watcher::Error) -> Option<(u16, &str)> {
    use kube::runtime::watcher::Error as W;
    match error {
        W::InitialListFailed(kube::Error::Api(s))
        | W::WatchStartFailed(kube::Error::Api(s))
        | W::WatchFailed(kube::Error::Api(s)) => Some((s.code, &s.message)),
        W::WatchError(s) => Some((s.code, &s.message)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: u32) -> kube::Error {
        let s = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "boom",
            "reason": "Reason", "code": code, "details": {"retryAfterSeconds": retry_after}
        });
        kube::Error::Api(Box::new(serde_json::from_value(s).unwrap()))
    }

    #[test]
    fn server_errors_and_429_are_transient_the_rest_permanent() {
        assert!(matches!(
            classify(&status(500, 0)),
            Failure::Transient {
                retry_after: None,
                ..
            }
        ));
        assert_eq!(
            classify(&status(429, 3)),
            Failure::Transient {
                what: "HTTP 429: boom".into(),
                retry_after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(classify(&status(403, 0)).code(), Some(403));
        assert_eq!(classify(&status(409, 0)).code(), Some(409));
    }

    #[test]
    fn any_retry_after_is_clamped_to_the_deadline() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(60);
        let cap = Duration::from_secs(5);
        let backoff = Some(Duration::from_millis(100));
        let huge = classify(&status(503, u32::MAX));
        assert_eq!(next_delay(&huge, backoff, cap, now, deadline), Some(cap));
        let hint = classify(&status(503, 2));
        assert_eq!(
            next_delay(&hint, backoff, cap, now, deadline),
            Some(Duration::from_secs(2))
        );
        let plain = classify(&status(500, 0));
        assert_eq!(
            next_delay(&plain, backoff, cap, now, deadline),
            Some(Duration::from_millis(100))
        );
        // Not past the deadline: a try that could not start before it is not made.
        let soon = now + Duration::from_secs(1);
        assert_eq!(next_delay(&huge, backoff, cap, now, soon), None);
        // A deadline already passed, or a clock near its end, never panics.
        assert_eq!(next_delay(&plain, Some(Duration::MAX), cap, now, now), None);
    }
}
