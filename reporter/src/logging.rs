//! tracing setup: level from `LOG_LEVEL`, `LOG_FORMAT=json` for one JSON object per line; and
//! [`printable`], which keeps text that others control (a result's reason and message, a
//! server's error) from forging log lines or driving the terminal.

use std::borrow::Cow;
use std::io::IsTerminal;

use contract::LogLevel;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::debug_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// `text` with every control character escaped (`\n`, `\u{1b}`, ...): a newline in an
/// adapter's message cannot start a log line of its own, nor an escape sequence reach a
/// terminal.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c.is_control() {
                true => c.escape_default().to_string(),
                false => c.to_string(),
            })
            .collect(),
    )
}

/// Installs the global subscriber (stderr). Our crate logs at `level`; dependencies at warn.
pub fn init(level: LogLevel, format: LogFormat) {
    // Targets, not EnvFilter: the level is ours to parse (contract::LogLevel), and EnvFilter's
    // directive syntax would bring a regex engine into every adapter pod.
    let filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("status_reporter", level_filter(level));
    // The builder's own level (INFO by default) would cut below `filter`: let `filter` decide.
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        // JSON escapes control characters itself.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .try_init(),
        LogFormat::Text => {
            // Every field rendered, then escaped: `%` fields carry text others control.
            let fields = debug_fn(|w, field, value| {
                let text = format!("{value:?}");
                match field.name() {
                    "message" => write!(w, "{}", printable(&text)),
                    name => write!(w, "{name}={}", printable(&text)),
                }
            })
            .delimited(" ");
            builder
                .with_ansi(std::io::stderr().is_terminal())
                .fmt_fields(fields)
                .finish()
                .with(filter)
                .try_init()
        }
    };
}
fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Trace => LevelFilter::TRACE,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("all fine: é ✓"), "all fine: é ✓");
        assert_eq!(
            printable("ok\nlevel=ERROR forged\r\u{1b}[31mred\u{85}"),
            "ok\\nlevel=ERROR forged\\r\\u{1b}[31mred\\u{85}"
        );
    }
}
