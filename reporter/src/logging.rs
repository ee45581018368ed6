//! tracing setup: level from `LOG_LEVEL`, `LOG_FORMAT=json` for one JSON object per line.

use contract::LogLevel;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

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
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .try_init(),
        LogFormat::Text => builder.finish().with(filter).try_init(),
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
