//! The JSON log line, written straight into a line buffer of its own.
//!
//! The same object `tracing-subscriber`'s JSON format writes, key for key —
//! `{"timestamp":…,"level":…,"fields":{…},"target":…}`, and `span`/`spans` inside spans — but
//! without its detour (each piece serialized by `serde_json` into an `io::Write` adaptor that
//! checks the UTF-8 of every fragment and copies it into the `fmt::Write` line): the webhook
//! logs a line per review, and that detour cost more than the review itself (2 µs a line).
//! The pieces go into a thread-local `String` by plain `push_str` and reach the layer's
//! `Writer` in one write: through the `Writer` (a `dyn fmt::Write`) each of the line's two
//! dozen pieces cost a virtual call and a reservation (callgrind: 40 % of the line).

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// Formats each event as one JSON object on one line.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLine;

/// A line buffer kept this large or smaller between events (one huge event does not keep
/// its memory).
const KEPT_LINE_CAPACITY: usize = 16 * 1024;

impl<S> FormatEvent<S, JsonFields> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                let written = write_line(&mut line, ctx, event).and_then(|()| w.write_str(&line));
                if line.capacity() > KEPT_LINE_CAPACITY {
                    *line = String::new();
                }
                written
            }
            // An event logged while this thread formats another (from a field's `Display`).
            Err(_) => {
                let mut line = String::new();
                write_line(&mut line, ctx, event)?;
                w.write_str(&line)
            }
        })
    }
}

/// Writes `event` as one JSON line into `line`. Fails only when a field's `Debug` or
/// `Display` does.
fn write_line<S>(
    line: &mut String,
    ctx: &FmtContext<'_, S, JsonFields>,
    event: &Event<'_>,
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // Events bridged from the `log` crate carry their real target and level as fields.
    let normalized = tracing_log::NormalizeEvent::normalized_metadata(event);
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    line.push_str(r#"{"timestamp":""#);
    timestamp(line, jiff::Timestamp::now());
    line.push_str(match *meta.level() {
        Level::ERROR => r#"","level":"ERROR","fields":{"#,
        Level::WARN => r#"","level":"WARN","fields":{"#,
        Level::INFO => r#"","level":"INFO","fields":{"#,
        Level::DEBUG => r#"","level":"DEBUG","fields":{"#,
        Level::TRACE => r#"","level":"TRACE","fields":{"#,
    });
    let mut fields = Fields {
        line: &mut *line,
        first: true,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    line.push_str(r#"},"target":"#);
    string(line, meta.target());
    let current = event
        .parent()
        .and_then(|id| ctx.span(id))
        .or_else(|| ctx.lookup_current());
    if let Some(current) = current {
        line.push_str(r#","span":"#);
        span(line, &current);
        line.push_str(r#","spans":["#);
        for (i, each) in current.scope().from_root().enumerate() {
            if i > 0 {
                line.push(',');
            }
            span(line, &each);
        }
        line.push(']');
    }
    line.push_str("}\n");
    Ok(())
}

/// `ts` as `tracing-subscriber`'s `SystemTime` writes it: RFC 3339 in UTC with microseconds
/// (`2026-11-30T08:00:00.123456Z`). The part up to the seconds is formatted once a second
/// per thread; the microseconds are six digits.
fn timestamp(line: &mut String, ts: jiff::Timestamp) {
    thread_local! {
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let second = ts.as_second();
    SECOND.with_borrow_mut(|(cached, prefix)| {
        if *cached != second {
            prefix.clear();
            // `YYYY-MM-DDTHH:MM:SSZ`: no fraction is written for a whole second. Writing
            // into a `String` cannot fail.
            let _ = write!(
                prefix,
                "{}",
                jiff::Timestamp::from_second(second).unwrap_or(ts)
            );
            prefix.pop();
            *cached = second;
        }
        line.push_str(prefix);
    });
    let mut rest = ts.subsec_microsecond().unsigned_abs();
    let mut digits = ['.', '0', '0', '0', '0', '0', '0', 'Z'];
    for digit in digits[1..7].iter_mut().rev() {
        *digit = char::from(b'0' + (rest % 10) as u8);
        rest /= 10;
    }
    line.extend(digits);
}

/// A span as `tracing-subscriber` writes it: its fields (already JSON, from [`JsonFields`]),
/// then its name.
fn span<'a, S: LookupSpan<'a>>(line: &mut String, span: &SpanRef<'a, S>) {
    let extensions = span.extensions();
    let fields = extensions
        .get::<FormattedFields<JsonFields>>()
        .and_then(|f| f.fields.strip_prefix('{')?.strip_suffix('}'))
        .unwrap_or_default();
    line.push('{');
    if !fields.is_empty() {
        line.push_str(fields);
        line.push(',');
    }
    line.push_str(r#""name":"#);
    string(line, span.name());
    line.push('}');
}

/// Writes each field as `"name":value`, comma-separated.
struct Fields<'l> {
    line: &'l mut String,
    first: bool,
    /// The first error of a field's `Debug`; `Visit` methods cannot return one.
    result: fmt::Result,
}

impl Fields<'_> {
    /// Writes the field's name and returns the line for its value.
    fn name(&mut self, field: &Field) -> &mut String {
        let line = &mut *self.line;
        // Constant pieces, so that each push is a copy the compiler writes out in place.
        if self.first {
            line.push('"');
        } else {
            line.push_str(",\"");
        }
        self.first = false;
        line.push_str(&escaped(field.name()));
        line.push_str("\":");
        line
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        string(self.name(field), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field)
            .push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's rendering (shortest round trip; NaN and infinities as null).
        let _ = write!(self.name(field), "{}", serde_json::Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let line = self.name(field);
        line.push('"');
        let written = write!(Escaping(line), "{value:?}");
        line.push('"');
        if self.result.is_ok() {
            self.result = written;
        }
    }
}

/// `s` as a JSON string.
fn string(line: &mut String, s: &str) {
    line.push('"');
    line.push_str(&escaped(s));
    line.push('"');
}

/// `s` escaped for the inside of a JSON string, as serde_json escapes it.
fn escaped(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let quoted = serde_json::to_string(s).unwrap_or_default();
    std::borrow::Cow::Owned(quoted[1..quoted.len() - 1].to_owned())
}

/// Escapes what passes through for the inside of a JSON string, as serde_json does (so a
/// value cannot end the string, or the line).
struct Escaping<'l>(&'l mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.push_str(&escaped(s));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::logging::Captured;

    /// A few events of every field type, in and out of spans.
    fn events() {
        tracing::info!(
            uid = %"abc\n\"def\"\u{1}\\",
            outcome = "injected",
            micros = 12u64,
            delta = -3i64,
            ratio = 0.25f64,
            nan = f64::NAN,
            ok = true,
            list = ?vec!["a", "b"],
            "admission review"
        );
        let outer = tracing::info_span!("outer", id = 7u64, name_of = "x\ty");
        let _outer = outer.enter();
        tracing::warn!("in one span");
        let inner = tracing::info_span!("inner");
        let _inner = inner.enter();
        tracing::error!(detail = %"two deep", "in two spans");
        // A field name that must be escaped (a string literal may hold a quote).
        tracing::info!("q\"uote" = 2u64, "escaped name");
        // The message as a `str` field, as the review's line gives it.
        tracing::info!(message = "str \"message\"", micros = 3u64);
    }

    /// The lines `events` logs through `format`, parsed, without their timestamps.
    fn logged(json_line: bool) -> Vec<Value> {
        let out = Captured::default();
        let writer = out.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .json();
        if json_line {
            tracing::subscriber::with_default(builder.event_format(JsonLine).finish(), events);
        } else {
            tracing::subscriber::with_default(builder.finish(), events);
        }
        let text = out.text();
        text.lines()
            .map(|line| {
                let mut value: Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                let timestamp = value["timestamp"].as_str().expect("a timestamp").to_owned();
                assert!(
                    timestamp.len() == "2026-11-30T08:00:00.123456Z".len()
                        && timestamp.ends_with('Z'),
                    "{timestamp}"
                );
                value.as_object_mut().unwrap().remove("timestamp");
                value
            })
            .collect()
    }

    #[test]
    fn lines_carry_what_tracing_subscribers_json_format_writes() {
        let ours = logged(true);
        assert_eq!(ours.len(), 5, "{ours:?}");
        assert_eq!(ours, logged(false));
        assert_eq!(ours[0]["fields"]["uid"], "abc\n\"def\"\u{1}\\");
        assert_eq!(ours[2]["spans"][0]["name_of"], "x\ty");
        assert_eq!(ours[4]["fields"]["message"], "str \"message\"");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds_across_seconds() {
        for (at, expected) in [
            ("2026-11-30T08:00:00.000012Z", "2026-11-30T08:00:00.000012Z"),
            (
                "2026-11-30T08:00:00.999999999Z",
                "2026-11-30T08:00:00.999999Z",
            ),
            ("2026-11-30T08:00:01Z", "2026-11-30T08:00:01.000000Z"),
            ("2026-11-30T08:00:00.5Z", "2026-11-30T08:00:00.500000Z"),
            ("1999-12-31T23:59:59.123456Z", "1999-12-31T23:59:59.123456Z"),
        ] {
            let mut line = String::new();
            timestamp(&mut line, at.parse().unwrap());
            assert_eq!(line, expected);
        }
    }

    #[test]
    fn every_control_character_is_escaped() {
        let mut line = String::new();
        string(&mut line, "a\u{0}\u{8}\u{c}\u{1f}\u{7f}é\"\\");
        assert_eq!(
            line,
            r#""a\u0000\b\f\u001f"#.to_owned() + "\u{7f}é\\\"\\\\\""
        );
        assert_eq!(
            line,
            serde_json::to_string("a\u{0}\u{8}\u{c}\u{1f}\u{7f}é\"\\").unwrap()
        );
    }
}
