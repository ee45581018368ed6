//! Log lines from every thread, appended to one buffer that one writer thread writes out.
//!
//! What `tracing-appender`'s `NonBlocking` does, for a fraction of the cost a line: it copies
//! each line into a `Vec` of its own and sends that through a channel, and its writer thread
//! receives, copies and frees each one (callgrind: about 700 instructions a line, 15 % of the
//! webhook's review log line). Here a line is appended to the shared buffer under a mutex,
//! and the writer thread swaps the whole buffer out and writes it in one `write(2)`.
//!
//! The buffer is bounded and nothing is dropped: a logger that finds it full waits for the
//! writer. The writer thread sleeps until a line arrives in an empty buffer; loggers wake it
//! only then (a `futex` call), not for every line. Before it takes the buffer, it lingers
//! [`LINGER`] (unless the buffer is half full), so that a steady stream of lines is written a
//! few milliseconds' worth at a time. Without the linger, a server on one core had its writer
//! runnable for nearly every line, paying a context switch and a `write(2)` each (+32 to
//! +39 % CPU per review at `info`); with 1 ms the writer thread took 1.4 % of the server's
//! CPU samples under load, with 5 ms 0.7 % (`perf record -p`). An idle server's writer
//! sleeps; no timer wakes it.

use std::io::{self, Write};
use std::mem;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Hands log lines to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it wrote everything queued. Lines logged
/// afterwards are written directly.
#[must_use = "dropping this stops the log writer thread"]
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// How long the woken writer thread lets lines gather before it writes them: a line reaches
/// stderr this much later at most, plus the time to write what is ahead of it.
const LINGER: Duration = Duration::from_millis(5);

struct Shared {
    state: Mutex<State>,
    /// The writer thread waits here for lines.
    lines: Condvar,
    /// Loggers wait here for room.
    room: Condvar,
    /// Where lines go; the writer thread holds it while it writes.
    out: Mutex<Box<dyn Write + Send>>,
    /// Queued bytes a logger waits below before adding its line.
    limit: usize,
}

struct State {
    queued: Vec<u8>,
    /// The writer thread waits on `lines` (so the next line must wake it).
    writer_waiting: bool,
    /// Loggers waiting on `room`.
    loggers_waiting: usize,
    /// The writer thread was told to stop (it still writes what is queued).
    closed: bool,
    /// The writer thread has written everything and returned: lines are written directly.
    /// Not `closed`, so that a line logged while the writer drains still goes after the
    /// lines queued before it.
    stopped: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still guards a consistent buffer.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_out(&self, bytes: &[u8]) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // Where could a failure to write the log be reported? Nowhere: the line is lost,
        // as it would be written synchronously.
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }

    /// Queues `line`, waiting while the queue is at its limit.
    fn queue(&self, line: &[u8]) {
        let mut state = self.state();
        while state.queued.len() >= self.limit && !state.closed {
            state.loggers_waiting += 1;
            state = self
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.loggers_waiting -= 1;
        }
        if state.stopped {
            drop(state);
            self.write_out(line);
            return;
        }
        state.queued.extend_from_slice(line);
        if state.writer_waiting {
            state.writer_waiting = false;
            self.lines.notify_one();
        }
    }

    /// The writer thread: takes whatever is queued, writes it, until closed and empty.
    fn run(&self) {
        let mut batch = Vec::new();
        loop {
            let mut state = self.state();
            while state.queued.is_empty() {
                if state.closed {
                    state.stopped = true;
                    return;
                }
                state.writer_waiting = true;
                state = self
                    .lines
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.writer_waiting = false;
            if !state.closed && state.queued.len() < self.limit / 2 {
                drop(state);
                // Deliberate: lines gather for one write (see the module comment).
                std::thread::sleep(LINGER);
                state = self.state();
            }
            mem::swap(&mut state.queued, &mut batch);
            if state.loggers_waiting > 0 {
                self.room.notify_all();
            }
            drop(state);
            self.write_out(&batch);
            batch.clear();
            // One burst does not keep its memory.
            if batch.capacity() > 2 * self.limit {
                batch = Vec::new();
            }
        }
    }
}

/// Starts the writer thread for `out`. Loggers wait while `limit` bytes are queued.
pub fn spawn(out: Box<dyn Write + Send>, limit: usize) -> io::Result<(BatchWriter, Flusher)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queued: Vec::new(),
            writer_waiting: false,
            loggers_waiting: 0,
            closed: false,
            stopped: false,
        }),
        lines: Condvar::new(),
        room: Condvar::new(),
        out: Mutex::new(out),
        limit,
    });
    let writer = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("log-writer".to_owned())
        .spawn(move || writer.run())?;
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        Flusher {
            shared,
            thread: Some(thread),
        },
    ))
}

impl Drop for Flusher {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state();
            state.closed = true;
            self.shared.lines.notify_one();
            self.shared.room.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            // The writer thread only panics if writing does; its lines are lost either way.
            let _ = thread.join();
        }
    }
}

/// What the formatting layer writes one event's line to.
pub struct LineSink<'a> {
    shared: &'a Shared,
}

impl Write for LineSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.queue(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineSink<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineSink {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::Captured;

    #[test]
    fn every_line_from_every_thread_is_written_whole_and_in_order_per_thread() {
        let out = Captured::default();
        // A limit of one line: loggers wait for the writer again and again.
        let (writer, flusher) = spawn(Box::new(out.clone()), 16).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let writer = writer.clone();
                s.spawn(move || {
                    for i in 0..500 {
                        writer
                            .make_writer()
                            .write_all(format!("thread {t} line {i:03}\n").as_bytes())
                            .unwrap();
                    }
                });
            }
        });
        drop(flusher);
        let text = out.text();
        for t in 0..4 {
            let lines: Vec<_> = text
                .lines()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<_> = (0..500)
                .map(|i| format!("thread {t} line {i:03}"))
                .collect();
            assert_eq!(lines, expected);
        }
        assert_eq!(text.lines().count(), 2000);
    }

    #[test]
    fn lines_logged_after_the_writer_stopped_are_written_directly() {
        let out = Captured::default();
        let (writer, flusher) = spawn(Box::new(out.clone()), 1024).unwrap();
        writer.make_writer().write_all(b"before\n").unwrap();
        drop(flusher);
        assert_eq!(out.text(), "before\n");
        writer.make_writer().write_all(b"after\n").unwrap();
        assert_eq!(out.text(), "before\nafter\n");
    }
}
