//! Waiting for the stand-in's state to reach a condition, without polling.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::server::StandIn;

/// A change counter bumped on every state change and request, observable from async code
/// (a `tokio::sync::watch`) and from blocking code (a `Condvar`).
pub(crate) struct Signal {
    tx: tokio::sync::watch::Sender<u64>,
    generation: Mutex<u64>,
    cond: Condvar,
}

impl Signal {
    pub(crate) fn new() -> Signal {
        Signal {
            tx: tokio::sync::watch::Sender::new(0),
            generation: Mutex::new(0),
            cond: Condvar::new(),
        }
    }

    pub(crate) fn notify(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        *g += 1;
        self.tx.send_replace(*g);
        self.cond.notify_all();
    }

    fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until the generation moves past `seen`; false at the deadline.
    fn wait_past(&self, seen: u64, deadline: Instant) -> bool {
        let mut g = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        while *g == seen {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self
                .cond
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl StandIn {
    /// Waits (bounded) until `check` returns `Some`; `check` is re-evaluated on every state
    /// change and every request. Panics with `what` and a dump of the request log on timeout.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&StandIn) -> Option<T>,
    ) -> T {
        let mut changes = self.shared().signal.tx.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if let Some(value) = check(self) {
                return value;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => self.timed_out(what, timeout),
            }
        }
    }

    /// Blocking twin of [`StandIn::wait_for`], for sync tests and threads outside a runtime.
    pub fn wait_for_blocking<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&StandIn) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.shared().signal.generation();
            if let Some(value) = check(self) {
                return value;
            }
            if !self.shared().signal.wait_past(seen, deadline) {
                self.timed_out(what, timeout);
            }
        }
    }

    fn timed_out(&self, what: &str, timeout: Duration) -> ! {
        let log: Vec<String> = self.requests().iter().map(ToString::to_string).collect();
        panic!(
            "stand-in: timed out after {timeout:?} waiting for {what}\nrequest log ({} requests):\n  {}",
            log.len(),
            log.join("\n  ")
        );
    }
}
