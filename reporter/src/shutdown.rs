//! SIGTERM / SIGINT as an async stream of "shutdown requested" notifications: the reporter's
//! one signal helper, installed once at start and used for the whole run (the last look before
//! an outcome, and a native sidecar's idling after it).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The termination signals; a handler that could not be installed never fires.
pub struct Signals {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl Signals {
    /// Installs the handlers (do this early so a SIGTERM during start-up is not lost). One that
    /// cannot be installed is logged and left out: the signal then ends the process the default
    /// way (without a last look), which beats not reporting at all.
    pub fn install() -> Signals {
        let install = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(signal = name, error = %e, "cannot install the signal handler; this signal will end the reporter without a last look");
                None
            }
        };
        Signals {
            term: install(SignalKind::terminate(), "SIGTERM"),
            int: install(SignalKind::interrupt(), "SIGINT"),
        }
    }

    /// Resolves on the next SIGTERM or SIGINT, with its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            Some(()) = next(&mut self.term) => "SIGTERM",
            Some(()) = next(&mut self.int) => "SIGINT",
            // Both streams ended (tokio never ends them): no signal will come.
            else => std::future::pending().await,
        }
    }
}

/// The next delivery of `signal`; pending forever when it has no handler.
async fn next(signal: &mut Option<Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
