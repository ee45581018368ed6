//! The supervisor (`control-plane serve`): starts the components, serves a Unix socket that
//! test processes hold a connection to, and stops everything once the last connection has
//! been closed for [`LINGER`] (or on SIGTERM/SIGINT).
//!
//! Protocol: on connect, the supervisor writes one line — the run directory — and then only
//! watches for the connection's end. A test process never writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

use super::{Release, components, shared};

/// How long the supervisor waits for the next test after the last connection closed (nextest
/// starts the next one within milliseconds).
pub const LINGER: Duration = Duration::from_secs(5);

/// How long a fresh supervisor waits for its first connection (the process that started it
/// connects at once unless it died).
const FIRST_CONNECTION: Duration = Duration::from_secs(60);

/// Runs the supervisor for `release`, binaries in `bin`, state under `state`; prints `ready
/// <run dir>` (or `failed <why>`) on stdout; returns the exit code.
pub async fn serve(release: Release, bin: &Path, state: &Path) -> i32 {
    shared::clean_stale_runs(state);
    match supervise(release, bin, state).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("control-plane: {e}");
            println!("failed {e}");
            1
        }
    }
}

async fn supervise(release: Release, bin: &Path, state: &Path) -> Result<(), String> {
    let run = state.join(format!("run-{}", std::process::id()));
    std::fs::create_dir_all(&run).map_err(|e| format!("cannot create {}: {e}", run.display()))?;
    let handler = |kind| signal(kind).map_err(|e| format!("cannot handle signals: {e}"));
    let (mut term, mut int) = (
        handler(SignalKind::terminate())?,
        handler(SignalKind::interrupt())?,
    );
    // A failure keeps the component logs for the error message (the next start cleans up).
    let components = tokio::select! {
        started = components::start(release, bin, &run) => started?,
        _ = term.recv() => return Err("stopped by SIGTERM while starting".into()),
        _ = int.recv() => return Err("stopped by SIGINT while starting".into()),
    };
    let pids: Vec<String> = components.pids().iter().map(u32::to_string).collect();
    let _ = std::fs::write(run.join("pids"), pids.join("\n"));

    let socket = shared::socket_path(state);
    let _ = std::fs::remove_file(&socket);
    let listener = match UnixListener::bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            components.stop().await;
            return Err(format!("cannot listen on {}: {e}", socket.display()));
        }
    };
    println!("ready {}", run.display());
    eprintln!("control-plane: ready: {}", run.display());

    // One task per connected test process, ending with it.
    let mut clients = tokio::task::JoinSet::new();
    let mut linger = FIRST_CONNECTION;
    let reason = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut stream, _)) => {
                    linger = LINGER;
                    let line = format!("{}\n", run.display());
                    clients.spawn(async move {
                        if stream.write_all(line.as_bytes()).await.is_ok() {
                            // Until EOF or error: the test process ended.
                            let mut buf = [0u8; 64];
                            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                        }
                    });
                }
                Err(e) => eprintln!("control-plane: accept: {e}"),
            },
            Some(_) = clients.join_next() => {}
            _ = tokio::time::sleep(linger), if clients.is_empty() => {
                // Idle for the whole linger time. Only while no test process holds the start
                // lock (it may be connecting right now), so none connects to a supervisor
                // that is going away.
                if let Some(lock) = shared::try_lock(&state.join("lock")) {
                    let _ = std::fs::remove_file(&socket);
                    drop(lock);
                    break "no test process left";
                }
            }
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
        }
    };
    eprintln!("control-plane: stopping ({reason})");
    let _ = std::fs::remove_file(&socket);
    components.stop().await;
    keep_logs(&run, state);
    let _ = std::fs::remove_dir_all(&run);
    Ok(())
}

/// Keeps the last run's component logs in `state/last-run/` for a look after the suite.
fn keep_logs(run: &Path, state: &Path) {
    let last: PathBuf = state.join("last-run");
    let _ = std::fs::remove_dir_all(&last);
    if std::fs::create_dir_all(&last).is_ok()
        && let Ok(entries) = std::fs::read_dir(run)
    {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let _ = std::fs::copy(&path, last.join(entry.file_name()));
            }
        }
    }
}
