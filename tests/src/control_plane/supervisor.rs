//! One control plane shared by every test process of a run: a supervisor (`control-plane
//! serve`) starts the components and serves a Unix socket that every test process holds a
//! connection to for its life, a lock file serialising "connect, or start a supervisor"; once
//! the last connection has been closed for [`LINGER`] (or on SIGTERM or SIGINT), it stops
//! everything.
//!
//! Protocol: on connect, the supervisor writes one line — the run directory — and then only
//! watches for the connection's end. A test process never writes.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

use super::{Release, binaries, components};

/// How long a new supervisor may take to report ready (build excluded: that happens before).
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// `<target>/control-plane/<release>-<profile>`: lock file, supervisor log, run directories.
pub(crate) fn state_dir(release: Release, profile: &str) -> PathBuf {
    binaries::target_dir()
        .join("control-plane")
        .join(format!("{}-{profile}", release.as_str()))
}

/// The supervisor's socket. In the temp directory, not the state directory: a Unix socket path
/// is limited to 107 bytes and target directories can be deep.
pub(crate) fn socket_path(state: &Path) -> PathBuf {
    let hash = super::path_hash(state);
    std::env::temp_dir().join(format!("status-reporter-cp-{hash:016x}.sock"))
}

/// Locks `path` (created, with its directory, if missing), waiting for it; unlocked when the
/// file is dropped.
pub(crate) fn lock(path: &Path) -> Result<File, String> {
    open_lock(path)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))
}

/// [`lock`] if nobody holds it.
pub(crate) fn try_lock(path: &Path) -> Option<File> {
    let file = open_lock(path).ok()?;
    file.try_lock().ok().map(|()| file)
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    std::fs::create_dir_all(path.parent().unwrap_or(path))?;
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Connects to the supervisor of `release` and `profile` (separate profiles are separate
/// control planes), starting one (building the control plane first if need be) if there is
/// none; returns the connection to hold and the run directory.
pub(crate) fn connect(release: Release, profile: &str) -> Result<(UnixStream, PathBuf), String> {
    let state = state_dir(release, profile);
    let socket = socket_path(&state);
    // Held until connected: no supervisor goes away meanwhile, and one started here waits.
    let _lock = lock(&state.join("lock"))?;
    // One that went away just before may have left its socket: try again.
    let mut last = String::new();
    for _ in 0..3 {
        match UnixStream::connect(&socket) {
            Ok(stream) => match read_run_dir(&stream) {
                Ok(run) => return Ok((stream, run)),
                Err(e) => last = e,
            },
            Err(e) => {
                last = format!("{}: {e}", socket.display());
                start_supervisor(release, &state)?;
            }
        }
    }
    Err(format!("cannot reach a control-plane supervisor: {last}"))
}

/// The supervisor's one line on `stream`: the run directory.
fn read_run_dir(stream: &UnixStream) -> Result<PathBuf, String> {
    let stream = stream
        .try_clone()
        .map_err(|e| format!("a supervisor connection: {e}"))?;
    let line = crate::process::first_line(stream, Duration::from_secs(10)).unwrap_or_default();
    let said = (!line.is_empty()).then(|| PathBuf::from(line));
    said.ok_or_else(|| "the supervisor closed the connection or said nothing within 10 s".into())
}

/// Starts `control-plane serve` in its own process group (so a test's end or timeout does not
/// take it down with the test) and waits for its `ready` line.
fn start_supervisor(release: Release, state: &Path) -> Result<(), String> {
    let bin = binaries::bin_dir(release)?;
    if release == Release::Current {
        // The node's runtime, built here where the wait is visible to the test.
        binaries::node_bin_dir()?;
    }
    let supervisor = supervisor_bin();
    let log_path = state.join("supervisor.log");
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut child = Command::new(&supervisor)
        .args(["serve", "--release", release.as_str(), "--bin-dir"])
        .arg(&bin)
        .arg("--state-dir")
        .arg(state)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", supervisor.display()))?;
    let stdout = child.stdout.take().ok_or("no supervisor stdout")?;
    let line = crate::process::first_line(stdout, START_TIMEOUT).unwrap_or_default();
    if line.starts_with("ready ") {
        return Ok(());
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut why = format!(
        "the control plane did not start within {START_TIMEOUT:?}: {line}\n{}",
        tail(&log, 30)
    );
    // The tail of every component log of its run directory.
    let run = state.join(format!("run-{}", child.id()));
    for name in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "containerd",
        "kubelet",
    ] {
        if let Ok(text) = std::fs::read_to_string(run.join(format!("{name}.log"))) {
            why.push_str(&format!("\n--- {name}.log (tail) ---\n{}", tail(&text, 15)));
        }
    }
    Err(why)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The `control-plane` binary beside the running test binary (cargo builds it for the
/// integration tests) unless `STATUS_REPORTER_CONTROL_PLANE_BIN` names one, else `bin::path`'s.
fn supervisor_bin() -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/control-plane
    let exe = std::env::current_exe().ok();
    let beside = exe.and_then(|exe| Some(exe.parent()?.parent()?.join("control-plane")));
    let named =
        std::env::var_os("STATUS_REPORTER_CONTROL_PLANE_BIN").is_some_and(|p| !p.is_empty());
    (beside.filter(|p| p.is_file() && !named)).unwrap_or_else(|| crate::bin::path("control-plane"))
}

/// Removes the run directories of supervisors that are gone (killed before they could clean
/// up), killing components they left behind.
pub(crate) fn clean_stale_runs(state: &Path) {
    let Ok(entries) = std::fs::read_dir(state) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("run-") else {
            continue;
        };
        if pid == std::process::id().to_string() || cmdline_contains(pid, "control-plane") {
            continue;
        }
        let run = entry.path();
        let run_text = run.to_string_lossy().into_owned();
        for left in std::fs::read_to_string(run.join("pids"))
            .unwrap_or_default()
            .lines()
        {
            // Only a process whose command line names this run directory (pids are reused).
            if cmdline_contains(left, &run_text) {
                let _ = Command::new("kill").args(["-KILL", left]).status();
            }
        }
        super::node::clean_stale(&run);
        let _ = std::fs::remove_dir_all(&run);
    }
}

fn cmdline_contains(pid: &str, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(needle))
        .unwrap_or(false)
}

/// How long the supervisor waits for the next test after the last connection closed (nextest
/// starts the next one within milliseconds).
pub const LINGER: Duration = Duration::from_secs(5);

/// Runs the supervisor for `release`, binaries in `bin`, state under `state`; prints `ready
/// <run dir>` (or `failed <why>`) on stdout; returns the exit code.
pub async fn serve(release: Release, bin: &Path, state: &Path) -> i32 {
    clean_stale_runs(state);
    let Err(e) = supervise(release, bin, state).await else {
        return 0;
    };
    eprintln!("control-plane: {e}");
    println!("failed {e}");
    1
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

    let socket = socket_path(state);
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
    let reason = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut stream, _)) => {
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
            _ = tokio::time::sleep(LINGER), if clients.is_empty() => {
                // Idle for the whole linger time. Only while no test process holds the start
                // lock (it may be connecting right now), so none connects to a supervisor
                // that is going away.
                if let Some(lock) = try_lock(&state.join("lock")) {
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
    // The last run's logs stay in `state/last-run/` for a look after the suite; its data goes.
    let last = state.join("last-run");
    let _ = std::fs::remove_dir_all(&last);
    for data in ["etcd", "node"] {
        let _ = std::fs::remove_dir_all(run.join(data));
    }
    let _ = std::fs::rename(&run, &last);
    Ok(())
}
