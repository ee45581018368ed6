//! The reporter's log level.

/// The reporter's log level (`LOG_LEVEL`, annotation `log-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Each pod update and each read of the result file.
    Debug,
    /// Start, outcome, write.
    Info,
    /// Retries and refused Events.
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    /// Accepted spellings (any case; `warning` is also read as `warn`), in the order messages list them.
    pub const ACCEPTED: &'static [&'static str] = &["trace", "debug", "info", "warn", "error"];

    /// The lower-case name, as `tracing` filters and the env var spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// Case-insensitive; `warning` is `warn`.
    pub fn parse(value: &str) -> Option<LogLevel> {
        match value.to_ascii_lowercase().as_str() {
            "trace" => Some(LogLevel::Trace),
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "error" => Some(LogLevel::Error),
            _ => None,
        }
    }
}
