//! [`Process`]: a real binary under test as a child process: its stderr lines observable as
//! they arrive ([`Logs`]), so a test waits (bounded) on the line announcing an event instead of
//! sleeping; a bounded exit wait; signals; killed on drop, so a failing test leaves nothing.

use std::io::{BufRead, BufReader, Read};
use std::process::{ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running child process (stdin null, stderr captured into [`Process::logs`], stdout as
/// the caller configured it); killed on drop if still running.
pub struct Process {
    /// What it is, for panic messages (e.g. `status-reporter`).
    what: String,
    pid: u32,
    /// Its stderr, line by line, as it arrives.
    pub logs: Logs,
    stdout: Option<ChildStdout>,
    exit: mpsc::Receiver<ExitStatus>,
    exited: Option<ExitStatus>,
    /// Drains stderr; joined after exit so every line is in `logs`.
    reader: Option<JoinHandle<()>>,
}

impl Process {
    /// Starts `cmd`; panics naming `what` if it cannot be started.
    pub fn spawn(cmd: &mut Command, what: &str) -> Process {
        let mut child = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let pid = child.id();
        let logs = Logs::default();
        let stderr = child.stderr.take().expect("stderr piped");
        let sink = logs.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.push(line);
            }
        });
        let stdout = child.stdout.take();
        // A thread owns the child and reports its exit: waits below are bounded channel receives.
        let (tx, exit) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = tx.send(status);
            }
        });
        Process {
            what: what.to_owned(),
            pid,
            logs,
            stdout,
            exit,
            exited: None,
            reader: Some(reader),
        }
    }

    /// Its stdout, if the command piped it (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// The process id (e.g. to read `/proc/<pid>`).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends a signal with `kill` (`sig` as `kill` takes it: `"-TERM"`, `"-INT"`); panics if
    /// `kill` fails.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {} failed", self.pid);
    }

    /// Waits (bounded) for the process to exit and returns its status; panics with the logs
    /// if it does not exit within `timeout`. Afterwards `logs` holds all of stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let status = *self.exited.get_or_insert_with(|| {
            self.exit.recv_timeout(timeout).unwrap_or_else(|_| {
                let (what, logs) = (&self.what, self.logs.text());
                panic!("{what} did not exit within {timeout:?}; logs:\n{logs}")
            })
        });
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }

    /// Whether the process has not exited yet (does not wait).
    pub fn still_running(&mut self) -> bool {
        if self.exited.is_none()
            && let Ok(status) = self.exit.try_recv()
        {
            self.exited = Some(status);
        }
        self.exited.is_none()
    }

    /// Resident set size in KiB, from `/proc/PID/status`.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// The highest resident set size so far in KiB (`VmHWM`, kept by the kernel, so no
    /// peak between two looks is missed).
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = format!("/proc/{}/status", self.pid);
        crate::measure::status_field(&status, field)
            .unwrap_or_else(|| panic!("{field} in {status}"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.still_running() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
    }
}

/// The first line `out` gives (trimmed), if it gives one within `timeout`: how a started server
/// says where it is (`listening on ADDR`, `ready DIR`).
pub fn first_line(out: impl Read + Send + 'static, timeout: Duration) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line.trim().to_owned());
    });
    rx.recv_timeout(timeout).ok()
}

/// Lines a process wrote to stderr, observable as they arrive.
#[derive(Clone, Default)]
pub struct Logs(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Logs {
    fn lines(&self) -> MutexGuard<'_, Vec<String>> {
        self.0.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: String) {
        self.lines().push(line);
        self.0.1.notify_all();
    }

    /// Every line so far, joined with newlines.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// How many lines so far (a mark for [`Logs::wait_for_since`]).
    pub fn count(&self) -> usize {
        self.lines().len()
    }

    /// Waits (bounded) for a line containing every one of `parts` and returns it; panics with
    /// all the lines so far if none arrives within `timeout` (`Duration::ZERO`: look only at
    /// the lines already there).
    pub fn wait_for(&self, parts: &[&str], timeout: Duration) -> String {
        self.wait_for_since(0, parts, timeout)
    }

    /// [`Logs::wait_for`], looking only at lines after the first `mark` (from
    /// [`Logs::count`]): for an event that may already have been logged before.
    pub fn wait_for_since(&self, mark: usize, parts: &[&str], timeout: Duration) -> String {
        let found = |lines: &Vec<String>| {
            let mut after = lines.iter().skip(mark);
            after.find(|l| parts.iter().all(|p| l.contains(p))).cloned()
        };
        let (lines, _) = (self.0.1)
            .wait_timeout_while(self.lines(), timeout, |lines| found(lines).is_none())
            .unwrap_or_else(|e| e.into_inner());
        found(&lines).unwrap_or_else(|| {
            let logs = lines.join("\n");
            panic!("no log line containing {parts:?} within {timeout:?}; logs:\n{logs}")
        })
    }
}
