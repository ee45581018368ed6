//! The webhook's log formats (`status_reporter_webhook::logging`): text lines that a request
//! cannot forge, and `LOG_LEVEL` as the reporter reads it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use contract::LogLevel;
use status_reporter_webhook::logging::{JsonLine, TextFields, parse_level};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// A log writer the tests read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
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

/// One time for both formats, so their lines can be compared byte for byte.
#[derive(Clone, Copy)]
struct Fixed;

impl FormatTime for Fixed {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        w.write_str("2026-12-06T16:00:00.000001Z")
    }
}

/// What each format writes for the same events.
fn json_lines(custom: bool) -> String {
    let out = Captured::default();
    let writer = out.clone();
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_timer(Fixed)
        .with_writer(move || writer.clone());
    let events = || {
        let uid = "quote\" back\\slash\n\u{1b}[31m é 😀";
        let detail = String::from("tab\there");
        tracing::info!(message = "admission review", uid = %uid, outcome = "injected", detail = %detail, micros = 7u64);
        tracing::warn!(
            dropped = 3usize,
            negative = -4i64,
            ratio = 0.5f64,
            flag = true,
            "stderr did not keep up: {} log lines",
            3
        );
        tracing::error!(error = ?Some("debug value"), "cannot answer a review");
        tracing::debug!("no fields");
    };
    if custom {
        tracing::subscriber::with_default(builder.event_format(JsonLine(Fixed)).finish(), events);
    } else {
        let json = builder
            .json()
            .with_current_span(false)
            .with_span_list(false);
        tracing::subscriber::with_default(json.finish(), events);
    }
    String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn json_lines_are_tracing_subscribers_byte_for_byte() {
    let ours = json_lines(true);
    assert_eq!(ours.lines().count(), 4, "{ours}");
    assert_eq!(ours, json_lines(false));
    for line in ours.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["timestamp"], "2026-12-06T16:00:00.000001Z");
    }
}

#[test]
fn levels_are_the_reporters_in_any_case() {
    assert_eq!(parse_level("WARNING"), Ok(LogLevel::Warn));
    assert_eq!(parse_level(" debug "), Ok(LogLevel::Debug));
    let err = parse_level("info,hyper=debug").unwrap_err();
    assert_eq!(err, "accepted: trace, debug, info, warn, error");
}
