//! SIGTERM / SIGINT as an async stream of "shutdown requested" notifications.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::{Error, Result};

/// Termination signals.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers (do this early so a SIGTERM during start-up is not lost).
    pub fn install() -> Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(Error::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(Error::Signal)?,
        })
    }

    /// Resolves on the next SIGTERM or SIGINT, with its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
