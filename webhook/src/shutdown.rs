//! SIGTERM and SIGINT, registered once for the life of `serve`: the first starts the drain,
//! a second one closes everything at once.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The process's shutdown signals.
pub struct ShutdownSignals {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl ShutdownSignals {
    /// Registers the handlers. One that cannot be registered is logged, and the webhook then
    /// runs until it is killed by the other signal (or by SIGKILL), never draining on it.
    pub fn install() -> Self {
        let register = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(error) => {
                tracing::error!(%error, signal = name, "cannot install the shutdown signal handler; this signal will not drain the webhook");
                None
            }
        };
        ShutdownSignals {
            term: register(SignalKind::terminate(), "SIGTERM"),
            int: register(SignalKind::interrupt(), "SIGINT"),
        }
    }

    /// Waits for the next SIGTERM or SIGINT (forever if neither could be registered).
    pub async fn recv(&mut self) {
        async fn next(signal: &mut Option<Signal>) {
            match signal {
                Some(s) => {
                    // `None` means the signal driver is gone, which only happens when the
                    // runtime shuts down; nothing more will arrive.
                    if s.recv().await.is_none() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = next(&mut self.term) => {},
            _ = next(&mut self.int) => {},
        }
    }
}
