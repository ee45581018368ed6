//! [`Logs`]: the stderr lines of a process under test, observable as they arrive, so a test
//! waits (bounded) on the line announcing an event instead of polling with sleeps.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Lines a process wrote to stderr, observable as they arrive.
#[derive(Clone, Default)]
pub struct Logs(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Logs {
    pub(crate) fn push(&self, line: String) {
        let (lines, cond) = &*self.0;
        lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        cond.notify_all();
    }

    /// Every line so far, joined with newlines.
    pub fn text(&self) -> String {
        self.0
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// How many lines so far (a mark for [`Logs::wait_for_since`]).
    pub fn len(&self) -> usize {
        self.0.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no line arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits (bounded) for a line containing every one of `parts` and returns it; panics with
    /// all the lines so far if none arrives within `timeout` (`Duration::ZERO`: look only at
    /// the lines already there).
    pub fn wait_for(&self, parts: &[&str], timeout: Duration) -> String {
        self.wait_for_since(0, parts, timeout)
    }

    /// [`Logs::wait_for`], looking only at lines after the first `mark` (from
    /// [`Logs::len`]): for an event that may already have been logged before.
    pub fn wait_for_since(&self, mark: usize, parts: &[&str], timeout: Duration) -> String {
        let (lines, cond) = &*self.0;
        let deadline = Instant::now() + timeout;
        let mut guard = lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(l) = guard
                .iter()
                .skip(mark)
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return l.clone();
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "no log line containing {parts:?} within {timeout:?}; logs:\n{}",
                guard.join("\n")
            );
            guard = cond
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
