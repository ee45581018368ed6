//! `status-reporter check-result FILE`: validates a result file for adapter authors' CI.

use std::io::{self, Write};
use std::path::Path;

use crate::outcome::Outcome;
use crate::read_result;

/// Checks `path`; returns the exit code (0 valid, 1 invalid), the text for stdout (valid:
/// the normalised result as JSON) and the text for stderr (invalid: the precise error, worded
/// as the condition message the reporter would write).
pub fn check(path: &Path) -> (i32, String, String) {
    match read_result::read_file(path) {
        Ok(r) => {
            let json = serde_json::to_string_pretty(&r).unwrap_or_default();
            (0, json, String::new())
        }
        Err(e) => (1, String::new(), Outcome::invalid(&e).message),
    }
}

/// Runs `check-result` with its output on `out` and `err`; returns the exit code. A reader
/// that goes away early (`| head -c 10`) is no failure of the check: the output just ends.
pub fn run(path: &Path, out: &mut impl Write, err: &mut impl Write) -> i32 {
    let (code, stdout, stderr) = check(path);
    if write_line(out, &stdout).is_err() || write_line(err, &stderr).is_err() {
        return 1;
    }
    code
}

/// Writes `text` and a newline (nothing for empty `text`) and flushes. A broken pipe counts as
/// written: the reader has all it wanted, as for any command-line tool.
pub fn write_line(w: &mut impl Write, text: &str) -> io::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    match writeln!(w, "{text}").and_then(|()| w.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that went away after `room` bytes.
    struct ClosedAfter {
        room: usize,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn broken_pipe_ends_quietly_other_errors_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let valid = dir.path().join("ok.json");
        std::fs::write(
            &valid,
            r#"{"status":"success","message":"long enough to be cut"}"#,
        )
        .unwrap();
        let invalid = dir.path().join("bad.json");
        std::fs::write(&invalid, "{").unwrap();
        let mut sink = Vec::new();
        assert_eq!(run(&valid, &mut ClosedAfter { room: 10 }, &mut sink), 0);
        assert_eq!(run(&invalid, &mut sink, &mut ClosedAfter { room: 0 }), 1);
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(28)) // ENOSPC
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert_eq!(run(&valid, &mut Full, &mut sink), 1);
    }
}
