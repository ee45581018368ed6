//! Logs on stderr, as JSON (for clusters) or text, leaving through tracing-appender's writer
//! thread in lossy mode: a log pipe that does not keep up never stalls a request or the
//! shutdown. What it cannot take is dropped and counted ([`dropped_lines`], the
//! `log_lines_dropped_total` metric), and once it takes lines again one line says how many
//! were lost.
//!
//! Field values come from requests (a review's uid, denial messages quoting annotations), so
//! the text format escapes control characters in them as the JSON format does: a newline in a
//! uid cannot forge a log line, nor an escape sequence reach a terminal.

use std::fmt;
use std::io::{IsTerminal as _, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use contract::LogLevel;
use tracing::field::{Field, Visit};
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for clusters).
    Json,
    /// Human-readable lines.
    Text,
}

/// `--log-level` as clap reads it: the reporter's levels (`contract::LogLevel`), any case.
pub fn parse_level(value: &str) -> Result<LogLevel, String> {
    LogLevel::parse(value.trim())
        .ok_or_else(|| format!("accepted: {}", LogLevel::ACCEPTED.join(", ")))
}

/// Log lines queued for the writer thread at most (a few hundred KiB); beyond, lines are
/// dropped rather than wait for stderr.
const QUEUED_LINES: usize = 1024;

/// Lines dropped so far by the one log writer of the process (0 before [`init`]).
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// The log writer thread; see [`Logs::finish`].
#[must_use = "lines still queued when the process ends are lost unless `finish` is called"]
pub struct Logs {
    guard: WorkerGuard,
    writer: LossyStderr,
}

impl Logs {
    /// Waits (a second at most) for the lines still queued to be written, unless stderr has
    /// been losing lines since it last said so: then it may never take them, and the process
    /// ends without waiting.
    pub fn finish(self) {
        if self.writer.unreported() > 0 {
            // tracing-appender's guard would wait for room to queue its stop message and,
            // failing that, print to stdout; neither may hold up the exit.
            std::mem::forget(self.guard);
        }
    }
}

/// Installs the process-wide subscriber: our crate logs at `level`, dependencies at `warn`
/// (the reporter's rule, so `LOG_LEVEL` means the same in both binaries).
pub fn init(level: LogLevel, format: LogFormat) -> Logs {
    let (stderr, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(Batches(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        )));
    let _ = DROPPED.set(stderr.error_counter());
    let writer = LossyStderr {
        counter: stderr.error_counter(),
        stderr,
        reported: Arc::default(),
    };
    let filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("status_reporter_webhook", level_filter(level));
    // Nothing above the most verbose level `filter` lets through is even looked at.
    let builder = tracing_subscriber::fmt()
        .with_max_level(level_filter(level).max(LevelFilter::WARN))
        .with_ansi(std::io::stderr().is_terminal())
        .with_timer(Clock)
        .with_writer(writer.clone());
    // Fails only when a subscriber is already installed (tests that call `init` twice).
    let _ = match format {
        LogFormat::Json => builder
            .event_format(JsonLine(Clock))
            .finish()
            .with(filter)
            .try_init(),
        LogFormat::Text => builder
            .fmt_fields(TextFields)
            .finish()
            .with(filter)
            .try_init(),
    };
    Logs { guard, writer }
}

/// `level` as tracing's filter (the contract spells levels as tracing does).
fn level_filter(level: LogLevel) -> LevelFilter {
    level.as_str().parse().unwrap_or(LevelFilter::INFO)
}

/// The time of a line as tracing-subscriber writes it (RFC 3339, UTC, microseconds), the part
/// up to the second formatted once a second per thread (its own clock: all of it every line).
struct Clock;

impl FormatTime for Clock {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        thread_local! {
            static SECOND: std::cell::RefCell<(i64, String)> =
                const { std::cell::RefCell::new((i64::MIN, String::new())) };
        }
        let now = jiff::Timestamp::now();
        SECOND.with_borrow_mut(|(second, prefix)| {
            if *second != now.as_second() {
                *second = now.as_second();
                let whole = jiff::Timestamp::from_second(*second).unwrap_or(now);
                // `YYYY-MM-DDTHH:MM:SSZ` for a whole second: the `Z` is left out here.
                *prefix = whole.to_string().trim_end_matches('Z').to_owned();
            }
            write!(w, "{prefix}.{:06}Z", now.subsec_microsecond())
        })
    }
}

/// The JSON format: tracing-subscriber's line byte for byte (no spans: the webhook opens none),
/// time from `T`, serialized, then handed over once (tracing-subscriber's `Json` hands over each
/// fragment on its own, checked as UTF-8: two thirds of what a line cost).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLine<T>(pub T);

/// One line, its keys in tracing-subscriber's order.
#[derive(serde::Serialize)]
struct Line<'a, F> {
    timestamp: &'a str,
    level: &'a str,
    fields: F,
    target: &'a str,
}

impl<S, N, T: FormatTime> FormatEvent<S, N> for JsonLine<T>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        use tracing_serde::fields::AsMap as _;
        let mut timestamp = String::with_capacity(32);
        self.0.format_time(&mut Writer::new(&mut timestamp))?;
        let meta = event.metadata();
        let line = Line {
            timestamp: &timestamp,
            level: meta.level().as_str(),
            fields: event.field_map(),
            target: meta.target(),
        };
        writer.write_str(&serde_json::to_string(&line).map_err(|_| fmt::Error)?)?;
        writer.write_char('\n')
    }
}

/// How long the writer thread lets lines gather after writing a batch.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// stderr as the writer thread sees it: lines gathered in a buffer, written once per batch,
/// then a few milliseconds' pause, so that under load a line neither wakes the thread nor
/// costs a `write(2)` of its own (tracing-appender's thread writes each line as it arrives,
/// which cost the server more CPU per review than the target allows).
struct Batches(std::io::BufWriter<std::io::Stderr>);

impl Write for Batches {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.0.write(line)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        std::thread::sleep(LINGER);
        Ok(())
    }
}

/// tracing-appender's lossy writer, plus the one line that says how many lines it dropped,
/// written once a line gets through again (no crate writes that line).
#[derive(Clone)]
struct LossyStderr {
    stderr: NonBlocking,
    counter: ErrorCounter,
    /// Dropped lines already said.
    reported: Arc<AtomicUsize>,
}

impl LossyStderr {
    /// Lines dropped and not said yet.
    fn unreported(&self) -> usize {
        self.counter
            .dropped_lines()
            .saturating_sub(self.reported.load(Ordering::Acquire))
    }
}

impl Write for LossyStderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let before = self.counter.dropped_lines();
        let written = self.stderr.write(line)?;
        if self.counter.dropped_lines() == before && self.unreported() > 0 {
            // This line got through: the sink takes lines again.
            let lost = before.saturating_sub(self.reported.swap(before, Ordering::AcqRel));
            if lost > 0 {
                tracing::warn!(
                    dropped = lost,
                    "stderr did not keep up: {lost} log lines were dropped"
                );
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LossyStderr {
    type Writer = LossyStderr;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Field formatting of the text format: `message` bare, then `name=value` separated by
/// spaces, with control characters in values escaped (`\n`, `\r`, `\t`, `\u{1b}` …). A
/// `message` given as a field (`message = "…"`) is written bare as well.
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
