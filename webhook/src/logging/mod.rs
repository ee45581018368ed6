//! Logs on stderr, as JSON (for clusters) or text. Field values come from requests (a review's
//! uid, denial messages quoting annotations), so the text format escapes control characters
//! in them as the JSON format does: a newline in a uid cannot forge a log line.

mod batch_writer;
mod json;

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

use crate::error::{Error, Result};
pub use json::JsonLine;

/// Keeps the log writer thread alive; dropping it writes out what is still queued. Hold it
/// until the process ends.
#[must_use = "logs queued when this is dropped are written then; hold it until exit"]
pub struct LogGuard {
    _writer: batch_writer::Flusher,
}

/// Bytes of log lines queued for the writer thread at most (about a thousand lines, more than
/// the writer's linger gathers under load); a logger that finds the queue full waits.
const QUEUED_BYTES: usize = 256 * 1024;

/// Installs the process-wide subscriber: `level` is an EnvFilter directive, `format` is
/// `json` or `text`.
///
/// Lines are formatted on the thread that logs and written to stderr by one writer thread:
/// whatever queued up while it wrote the last batch goes out in the next `write(2)`, so under
/// load a request's log line costs its formatting, not a system call. The queue is bounded
/// and not lossy: a logger that outruns stderr waits for room rather than dropping lines
/// ([`batch_writer`]).
pub fn init(level: &str, format: &str) -> Result<LogGuard> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|_| Error::Config {
        flag: "log-level",
        value: level.to_owned(),
        accepted: "trace, debug, info, warn, error or an EnvFilter directive".to_owned(),
    })?;
    if !matches!(format, "json" | "text") {
        return Err(Error::Config {
            flag: "log-format",
            value: format.to_owned(),
            accepted: "json or text".to_owned(),
        });
    }
    // Fails only when the system cannot start a thread.
    let (writer, guard) = batch_writer::spawn(Box::new(std::io::stderr()), QUEUED_BYTES)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if format == "json" {
        builder.json().event_format(JsonLine).init();
    } else {
        builder.fmt_fields(TextFields).init();
    }
    Ok(LogGuard { _writer: guard })
}

/// Field formatting of the text format: `message` bare, then `name=value` separated by
/// spaces, with control characters in values escaped (`\n`, `\r`, `\t`, `\u{1b}` …). A
/// `message` given as a field (`message = "…"`, which the JSON format records without going
/// through `core::fmt`) is written bare as well.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFields;

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut text = TextVisitor {
            w: writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut text);
        text.result
    }
}

/// Writes each field for [`TextFields`].
struct TextVisitor<'w> {
    w: Writer<'w>,
    first: bool,
    /// The first write error; `Visit` methods cannot return one.
    result: fmt::Result,
}

impl TextVisitor<'_> {
    fn field(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let w = &mut self.w;
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = w.write_str(separator).and_then(|()| {
            if field.name() != "message" {
                write!(w, "{}=", field.name())?;
            }
            write_escaped(w, value)
        });
    }
}

impl Visit for TextVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, value);
        } else {
            self.field(field, &format!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, &format!("{value:?}"));
    }
}

/// Writes `text` with every control character escaped the way Rust escapes it.
fn write_escaped(w: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(w, "{}", c.escape_default())?;
        } else {
            w.write_char(c)?;
        }
    }
    Ok(())
}

/// A log writer the unit tests read back.
#[cfg(test)]
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl Captured {
    /// Everything written so far.
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[cfg(test)]
impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_logs_escape_control_characters_from_requests() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .fmt_fields(TextFields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let uid = "abc\n2026-01-01T00:00:00Z  INFO forged: admission review";
            let detail = "tab\there, bell\u{7}, escape\u{1b}[31m";
            tracing::info!(uid = %uid, detail = %detail, quoted = "cr\r", "admission review");
            tracing::info!(message = "a str message\n", outcome = "injected");
        });
        let text = out.text();
        assert_eq!(text.lines().count(), 2, "one event, one line: {text:?}");
        for expected in [
            r#"a str message\n outcome="injected""#,
            r"admission review uid=abc\n2026-01-01T00:00:00Z  INFO forged",
            r"detail=tab\there, bell\u{7}, escape\u{1b}[31m",
            r#"quoted="cr\r""#,
        ] {
            assert!(text.contains(expected), "{expected:?} not in {text:?}");
        }
    }

    #[test]
    fn printable_text_is_written_as_is() {
        let mut out = String::new();
        write_escaped(&mut out, "ünïcode \"quotes\" \\ ok").unwrap();
        assert_eq!(out, "ünïcode \"quotes\" \\ ok");
    }
}
