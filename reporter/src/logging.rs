//! tracing setup: level from `LOG_LEVEL`, `LOG_FORMAT=json` for one JSON object per line.

use contract::LogLevel;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber (stderr). Our crate logs at `level`; dependencies at warn.
pub fn init(level: LogLevel, format: LogFormat) {
    let filter = EnvFilter::new(format!("warn,status_reporter={}", level.as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
