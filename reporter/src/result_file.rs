//! What the reporter knows about the result file, and when invalid content counts as final.
//!
//! A pure state machine: each read of the file is fed in with the time it was made and why it
//! was made (no clock, no I/O here), so the settle rules are table-tested like [`crate::outcome`]:
//! - a valid result is final at once; a missing file is not a verdict;
//! - invalid content read because the writer is done (close-write, rename into place, the
//!   adapter's exit, shutdown) is final at once;
//! - invalid content read on a change notification waits for the close-write that follows;
//! - invalid content that nothing will announce the end of — read at start, on a poll tick, or
//!   not a regular file at all (a FIFO, a directory or a device gets no close-write) — is final
//!   once it has stayed the same for the settle time;
//! - final invalid content stays final (with its first `since`) while it stays the same.
//!
//! What happens next — the grace period in which an abnormal adapter exit still wins — is
//! [`crate::outcome::decide`]'s.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use contract::result::{self, ResultError};

use crate::outcome::{FileState, later};

/// Why the file is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The writer is done: it closed the file or renamed it into place, the adapter exited,
    /// or the reporter is shutting down.
    Finished,
    /// A change notification; a close-write notification follows when the writer is done.
    Changed,
    /// Nothing will announce the end of writing: the read at start, a poll tick, the settle timer.
    Unannounced,
}

/// The result file as last read.
#[derive(Debug)]
pub struct ResultFile {
    settle: Duration,
    state: FileState,
    fingerprint: Option<u64>,
    /// When the content (or the reason it cannot be read) last changed.
    changed_at: Option<Instant>,
    /// While invalid content may still change: when to read it again to settle it.
    settle_at: Option<Instant>,
}

impl ResultFile {
    /// Nothing read yet; unannounced invalid content settles after `settle`.
    pub fn new(settle: Duration) -> ResultFile {
        ResultFile {
            settle,
            state: FileState::Missing,
            fingerprint: None,
            changed_at: None,
            settle_at: None,
        }
    }

    /// What is known about the file.
    pub fn state(&self) -> &FileState {
        &self.state
    }

    /// When to read the file again ([`Read::Unannounced`]) so unchanged content settles.
    pub fn settle_at(&self) -> Option<Instant> {
        self.settle_at
    }

    /// Takes in one read made at `now`: the file's bytes, or why they could not be read.
    pub fn observe(&mut self, read: Result<Vec<u8>, ResultError>, why: Read, now: Instant) {
        // Errors are fingerprinted too, so an unchanged empty, too-large or non-regular file
        // settles like unchanged invalid content.
        let mut h = DefaultHasher::new();
        let parsed = match read {
            Ok(bytes) => {
                bytes.hash(&mut h);
                result::parse(&bytes)
            }
            Err(e) => {
                e.to_string().hash(&mut h);
                Err(e)
            }
        };
        let fingerprint = match &parsed {
            Err(ResultError::NotFound { .. }) => None,
            _ => Some(h.finish()),
        };
        let unchanged = fingerprint.is_some() && fingerprint == self.fingerprint;
        if !unchanged {
            self.changed_at = Some(now);
        }
        self.fingerprint = fingerprint;
        self.settle_at = None;
        let previous = std::mem::replace(&mut self.state, FileState::Missing);
        self.state = match parsed {
            Ok(r) => FileState::Valid(r),
            Err(ResultError::NotFound { .. }) => FileState::Missing,
            Err(error) => match previous {
                FileState::Invalid { since, .. } if unchanged => {
                    FileState::Invalid { error, since }
                }
                _ if why == Read::Finished => FileState::Invalid { error, since: now },
                _ => self.unfinished(error, why, now),
            },
        };
    }

    /// Invalid content not (yet) known to be final.
    fn unfinished(&mut self, error: ResultError, why: Read, now: Instant) -> FileState {
        let unannounced =
            why == Read::Unannounced || matches!(error, ResultError::NotRegularFile { .. });
        if !unannounced {
            return FileState::Writing(error);
        }
        let settles_at = later(self.changed_at.unwrap_or(now), self.settle);
        if now >= settles_at {
            FileState::Invalid { error, since: now }
        } else {
            self.settle_at = Some(settles_at);
            FileState::Writing(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(500);

    fn bytes(s: &str) -> Result<Vec<u8>, ResultError> {
        Ok(s.as_bytes().to_vec())
    }

    fn not_found() -> Result<Vec<u8>, ResultError> {
        Err(ResultError::NotFound {
            path: "/r/a.json".into(),
        })
    }

    fn fifo() -> Result<Vec<u8>, ResultError> {
        Err(ResultError::NotRegularFile {
            path: "/r/a.json".into(),
            kind: "fifo",
        })
    }

    /// What a step should leave: the state's kind, `since` (ms) for Invalid, and the settle
    /// timer (ms) if armed.
    #[derive(Debug, PartialEq)]
    enum Want {
        Missing,
        Valid,
        Writing { settle_at: Option<u64> },
        Invalid { since: u64 },
    }

    struct Case {
        name: &'static str,
        /// (ms after start, what was read, why)
        reads: Vec<(u64, Result<Vec<u8>, ResultError>, Read)>,
        want: Want,
    }

    #[test]
    fn settle_rules() {
        let half = || bytes(r#"{"status":"succ"#);
        let bad = || bytes(r#"{"status":"done"}"#);
        let cases = vec![
            Case {
                name: "nothing there",
                reads: vec![(0, not_found(), Read::Unannounced)],
                want: Want::Missing,
            },
            Case {
                name: "valid at once",
                reads: vec![(0, bytes(r#"{"status":"success"}"#), Read::Changed)],
                want: Want::Valid,
            },
            Case {
                name: "invalid at close-write is final",
                reads: vec![(0, bad(), Read::Finished)],
                want: Want::Invalid { since: 0 },
            },
            Case {
                name: "invalid on a change waits for close-write",
                reads: vec![(0, half(), Read::Changed)],
                want: Want::Writing { settle_at: None },
            },
            Case {
                name: "a slow writer is never judged on change notifications",
                reads: vec![(0, half(), Read::Changed), (5_000, half(), Read::Changed)],
                want: Want::Writing { settle_at: None },
            },
            Case {
                name: "present at start: settle timer",
                reads: vec![(0, bad(), Read::Unannounced)],
                want: Want::Writing {
                    settle_at: Some(500),
                },
            },
            Case {
                name: "present at start, unchanged after settle: final",
                reads: vec![
                    (0, bad(), Read::Unannounced),
                    (500, bad(), Read::Unannounced),
                ],
                want: Want::Invalid { since: 500 },
            },
            Case {
                name: "changed before settling: timer restarts",
                reads: vec![
                    (0, half(), Read::Unannounced),
                    (400, bad(), Read::Unannounced),
                ],
                want: Want::Writing {
                    settle_at: Some(900),
                },
            },
            Case {
                name: "early timer read does not settle",
                reads: vec![
                    (0, bad(), Read::Unannounced),
                    (100, bad(), Read::Unannounced),
                ],
                want: Want::Writing {
                    settle_at: Some(500),
                },
            },
            Case {
                name: "final stays final with its first since",
                reads: vec![
                    (0, bad(), Read::Finished),
                    (700, bad(), Read::Changed),
                    (900, bad(), Read::Finished),
                ],
                want: Want::Invalid { since: 0 },
            },
            Case {
                name: "final, then rewritten: not final any more",
                reads: vec![(0, bad(), Read::Finished), (700, half(), Read::Changed)],
                want: Want::Writing { settle_at: None },
            },
            Case {
                name: "final, then valid",
                reads: vec![
                    (0, bad(), Read::Finished),
                    (700, bytes(r#"{"status":"failure"}"#), Read::Finished),
                ],
                want: Want::Valid,
            },
            Case {
                name: "removed again",
                reads: vec![(0, half(), Read::Changed), (10, not_found(), Read::Changed)],
                want: Want::Missing,
            },
            // A FIFO, directory or device gets no close-write: it settles like unannounced content
            // instead of being judged at once.
            Case {
                name: "non-regular file on a change: settle timer",
                reads: vec![(0, fifo(), Read::Changed)],
                want: Want::Writing {
                    settle_at: Some(500),
                },
            },
            Case {
                name: "non-regular file unchanged after settle: final",
                reads: vec![(0, fifo(), Read::Changed), (500, fifo(), Read::Unannounced)],
                want: Want::Invalid { since: 500 },
            },
            Case {
                name: "non-regular file when the writer is done: final",
                reads: vec![(0, fifo(), Read::Finished)],
                want: Want::Invalid { since: 0 },
            },
            Case {
                name: "empty file present at start settles",
                reads: vec![
                    (0, bytes(""), Read::Unannounced),
                    (600, bytes(""), Read::Unannounced),
                ],
                want: Want::Invalid { since: 600 },
            },
        ];
        for c in cases {
            let start = Instant::now();
            let at = |ms: u64| start + Duration::from_millis(ms);
            let mut file = ResultFile::new(SETTLE);
            for (ms, read, why) in c.reads {
                file.observe(read, why, at(ms));
            }
            let ms = |t: Instant| t.duration_since(start).as_millis() as u64;
            let got = match file.state() {
                FileState::Missing => Want::Missing,
                FileState::Valid(_) => Want::Valid,
                FileState::Writing(_) => Want::Writing {
                    settle_at: file.settle_at().map(ms),
                },
                FileState::Invalid { since, .. } => Want::Invalid { since: ms(*since) },
            };
            assert_eq!(got, c.want, "case {}", c.name);
        }
    }
}
