//! The webhook's log formats (`status_reporter_webhook::logging`): text lines that a request
//! cannot forge, and `LOG_LEVEL` as the reporter reads it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use contract::LogLevel;
use status_reporter_webhook::logging::{TextFields, parse_level};

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

#[test]
fn levels_are_the_reporters_in_any_case() {
    assert_eq!(parse_level("WARNING"), Ok(LogLevel::Warn));
    assert_eq!(parse_level(" debug "), Ok(LogLevel::Debug));
    let err = parse_level("info,hyper=debug").unwrap_err();
    assert_eq!(err, "accepted: trace, debug, info, warn, error");
}
