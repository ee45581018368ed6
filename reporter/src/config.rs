//! Configuration from the environment (names, defaults and rules as the original Go reporter)
//! with an equivalent CLI flag for each variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};

/// Default `RESULTS_PATH`.
pub const DEFAULT_RESULTS_PATH: &str = "/results/adapter-result.json";
/// Default `POLL_INTERVAL_SECONDS`.
pub const DEFAULT_POLL_INTERVAL_SECONDS: i64 = 2;
/// Default `MAX_WAIT_TIME_SECONDS`.
pub const DEFAULT_MAX_WAIT_TIME_SECONDS: i64 = 300;
/// Default `CONDITION_TYPE`.
pub const DEFAULT_CONDITION_TYPE: &str = "Available";
/// The reporter's own container name; skipped when auto-detecting the adapter container.
pub const REPORTER_CONTAINER_NAME: &str = "status-reporter";
/// Condition types the Job controller owns; writing them would confuse it.
pub const RESERVED_CONDITION_TYPES: [&str; 5] = [
    "Complete",
    "Failed",
    "FailureTarget",
    "SuccessCriteriaMet",
    "Suspended",
];

/// Command line: the sidecar (no subcommand) or `check-result FILE`.
#[derive(Debug, Parser)]
#[command(
    name = "status-reporter",
    version,
    about = "Turns an adapter's result file (or its failure to write one) into a condition on its Kubernetes Job"
)]
pub struct Cli {
    /// Optional subcommand; without one the reporter runs as the sidecar.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Sidecar settings (each also read from its env var).
    #[command(flatten)]
    pub raw: RawConfig,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an adapter result file against the contract; prints the normalised result
    /// as JSON (exit 0) or the precise error (exit 1).
    CheckResult {
        /// Path of the result file.
        file: PathBuf,
    },
}

/// Settings as given (untrimmed, unvalidated). Every flag also reads its env var.
#[derive(Debug, Default, Clone, Args)]
pub struct RawConfig {
    /// Name of the Job to write the condition on (required).
    #[arg(long, env = "JOB_NAME")]
    pub job_name: Option<String>,
    /// Namespace of the Job and pod (required).
    #[arg(long, env = "JOB_NAMESPACE")]
    pub job_namespace: Option<String>,
    /// Name of this pod (required; downward API `metadata.name`).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Absolute path of the adapter result file [default: /results/adapter-result.json].
    #[arg(long, env = "RESULTS_PATH")]
    pub results_path: Option<String>,
    /// Polling interval in seconds, used only when file notifications are unavailable; > 0 and < max wait [default: 2].
    #[arg(long, env = "POLL_INTERVAL_SECONDS")]
    pub poll_interval_seconds: Option<String>,
    /// How long to wait for a result, in seconds; > 0 [default: 300].
    #[arg(long, env = "MAX_WAIT_TIME_SECONDS")]
    pub max_wait_time_seconds: Option<String>,
    /// Condition type to write; not one the Job controller owns [default: Available].
    #[arg(long, env = "CONDITION_TYPE")]
    pub condition_type: Option<String>,
    /// Log level: trace, debug, info, warn, error [default: info].
    #[arg(long, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Adapter container name [default: first container that is not status-reporter].
    #[arg(long, env = "ADAPTER_CONTAINER_NAME")]
    pub adapter_container_name: Option<String>,
    /// classic (regular container, exits after reporting) or native (restartable init container, idles until SIGTERM) [default: classic].
    #[arg(long, env = "SIDECAR_MODE")]
    pub sidecar_mode: Option<String>,
}

/// How the reporter runs in the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarMode {
    /// Regular container: exit after reporting (0 for True, 1 otherwise).
    Classic,
    /// Restartable init container: never exit after reporting; exit 0 on SIGTERM.
    Native,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Job to write on.
    pub job_name: String,
    /// Namespace of Job and pod.
    pub namespace: String,
    /// This pod.
    pub pod_name: String,
    /// Result file.
    pub results_path: PathBuf,
    /// Poll interval for the fallback poller.
    pub poll_interval: Duration,
    /// Deadline for a result.
    pub max_wait: Duration,
    /// Condition type written.
    pub condition_type: String,
    /// Log level (lowercase).
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Adapter container; `None` = auto-detect.
    pub adapter_container: Option<String>,
    /// Sidecar mode.
    pub mode: SidecarMode,
}

/// Trimmed value; empty counts as unset (as the original).
fn value(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn required(v: &Option<String>, name: &'static str) -> Result<String> {
    value(v).map(str::to_string).ok_or(Error::Config {
        name,
        problem: "required (set the environment variable or the matching --flag)".to_string(),
    })
}

fn int(v: &Option<String>, name: &'static str, default: i64) -> Result<i64> {
    match value(v) {
        None => Ok(default),
        Some(s) => s.parse::<i64>().map_err(|_| Error::Config {
            name,
            problem: format!("must be a valid integer, got: {s}"),
        }),
    }
}

impl Config {
    /// Validates raw settings with the original's rules (and order), then the additions.
    pub fn from_raw(raw: &RawConfig) -> Result<Config> {
        let job_name = required(&raw.job_name, "JOB_NAME")?;
        let namespace = required(&raw.job_namespace, "JOB_NAMESPACE")?;
        let pod_name = required(&raw.pod_name, "POD_NAME")?;
        let results_path = value(&raw.results_path)
            .unwrap_or(DEFAULT_RESULTS_PATH)
            .to_string();
        let poll = int(
            &raw.poll_interval_seconds,
            "POLL_INTERVAL_SECONDS",
            DEFAULT_POLL_INTERVAL_SECONDS,
        )?;
        let max_wait = int(
            &raw.max_wait_time_seconds,
            "MAX_WAIT_TIME_SECONDS",
            DEFAULT_MAX_WAIT_TIME_SECONDS,
        )?;
        if poll <= 0 {
            return Err(Error::Config {
                name: "POLL_INTERVAL_SECONDS",
                problem: format!("must be positive, got: {poll}"),
            });
        }
        if max_wait <= 0 {
            return Err(Error::Config {
                name: "MAX_WAIT_TIME_SECONDS",
                problem: format!("must be positive, got: {max_wait}"),
            });
        }
        if poll >= max_wait {
            return Err(Error::Config {
                name: "POLL_INTERVAL_SECONDS",
                problem: format!("must be less than MAX_WAIT_TIME_SECONDS ({poll} >= {max_wait})"),
            });
        }
        if results_path.ends_with('/') {
            return Err(Error::Config {
                name: "RESULTS_PATH",
                problem: format!("path must be a file, not a directory, got: {results_path}"),
            });
        }
        if !results_path.starts_with('/') {
            return Err(Error::Config {
                name: "RESULTS_PATH",
                problem: format!("path must be absolute, got: {results_path}"),
            });
        }
        let condition_type = value(&raw.condition_type)
            .unwrap_or(DEFAULT_CONDITION_TYPE)
            .to_string();
        if RESERVED_CONDITION_TYPES.contains(&condition_type.as_str()) {
            return Err(Error::Config {
                name: "CONDITION_TYPE",
                problem: format!(
                    "{condition_type} is owned by the Job controller; use another type (default {DEFAULT_CONDITION_TYPE}), not one of {}",
                    RESERVED_CONDITION_TYPES.join(", ")
                ),
            });
        }
        let log_level = value(&raw.log_level).unwrap_or("info").to_ascii_lowercase();
        let log_level = match log_level.as_str() {
            "trace" | "debug" | "info" | "warn" | "error" => log_level,
            "warning" => "warn".to_string(),
            other => {
                return Err(Error::Config {
                    name: "LOG_LEVEL",
                    problem: format!(
                        "unknown level {other:?}; accepted: trace, debug, info, warn, error"
                    ),
                });
            }
        };
        let log_format = match value(&raw.log_format)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(Error::Config {
                    name: "LOG_FORMAT",
                    problem: format!("unknown format {other:?}; accepted: text, json"),
                });
            }
        };
        let mode = match value(&raw.sidecar_mode) {
            None | Some("classic") => SidecarMode::Classic,
            Some("native") => SidecarMode::Native,
            Some(other) => {
                return Err(Error::Config {
                    name: "SIDECAR_MODE",
                    problem: format!("unknown mode {other:?}; accepted: classic, native"),
                });
            }
        };
        Ok(Config {
            job_name,
            namespace,
            pod_name,
            results_path: PathBuf::from(results_path),
            poll_interval: Duration::from_secs(poll as u64),
            max_wait: Duration::from_secs(max_wait as u64),
            condition_type,
            log_level,
            log_format,
            adapter_container: value(&raw.adapter_container_name).map(str::to_string),
            mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RawConfig {
        RawConfig {
            job_name: Some("job".into()),
            job_namespace: Some("ns".into()),
            pod_name: Some("pod".into()),
            ..RawConfig::default()
        }
    }

    #[test]
    fn defaults() {
        let c = Config::from_raw(&base()).unwrap();
        assert_eq!(c.results_path, PathBuf::from(DEFAULT_RESULTS_PATH));
        assert_eq!(c.poll_interval, Duration::from_secs(2));
        assert_eq!(c.max_wait, Duration::from_secs(300));
        assert_eq!(c.condition_type, "Available");
        assert_eq!(c.log_level, "info");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.adapter_container, None);
        assert_eq!(c.mode, SidecarMode::Classic);
    }

    #[test]
    fn trims_and_overrides() {
        let mut r = base();
        r.job_name = Some("  job-a \n".into());
        r.results_path = Some(" /out/r.json ".into());
        r.poll_interval_seconds = Some(" 1 ".into());
        r.max_wait_time_seconds = Some("90".into());
        r.condition_type = Some(" DNSReady ".into());
        r.adapter_container_name = Some(" adapter ".into());
        r.sidecar_mode = Some(" native ".into());
        r.log_level = Some("DEBUG".into());
        r.log_format = Some("json".into());
        r.results_path = Some(" /out/r.json ".into());
        let c = Config::from_raw(&r).unwrap();
        assert_eq!(c.job_name, "job-a");
        assert_eq!(c.results_path, PathBuf::from("/out/r.json"));
        assert_eq!(c.poll_interval, Duration::from_secs(1));
        assert_eq!(c.max_wait, Duration::from_secs(90));
        assert_eq!(c.condition_type, "DNSReady");
        assert_eq!(c.adapter_container.as_deref(), Some("adapter"));
        assert_eq!(c.mode, SidecarMode::Native);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.log_format, LogFormat::Json);
        // Whitespace-only counts as unset: default applies.
        let mut r = base();
        r.results_path = Some("   ".into());
        assert_eq!(
            Config::from_raw(&r).unwrap().results_path,
            PathBuf::from(DEFAULT_RESULTS_PATH)
        );
    }

    #[test]
    fn errors() {
        type Edit = fn(&mut RawConfig);
        let cases: [(Edit, &str); 16] = [
            (
                |r| r.job_name = None,
                "invalid configuration: JOB_NAME: required (set the environment variable or the matching --flag)",
            ),
            (
                |r| r.job_namespace = Some("  ".into()),
                "invalid configuration: JOB_NAMESPACE: required (set the environment variable or the matching --flag)",
            ),
            (
                |r| r.pod_name = None,
                "invalid configuration: POD_NAME: required (set the environment variable or the matching --flag)",
            ),
            (
                |r| r.poll_interval_seconds = Some("abc".into()),
                "invalid configuration: POLL_INTERVAL_SECONDS: must be a valid integer, got: abc",
            ),
            (
                |r| r.max_wait_time_seconds = Some("1.5".into()),
                "invalid configuration: MAX_WAIT_TIME_SECONDS: must be a valid integer, got: 1.5",
            ),
            (
                |r| r.poll_interval_seconds = Some("0".into()),
                "invalid configuration: POLL_INTERVAL_SECONDS: must be positive, got: 0",
            ),
            (
                |r| r.max_wait_time_seconds = Some("-5".into()),
                "invalid configuration: MAX_WAIT_TIME_SECONDS: must be positive, got: -5",
            ),
            (
                |r| {
                    r.poll_interval_seconds = Some("10".into());
                    r.max_wait_time_seconds = Some("10".into())
                },
                "invalid configuration: POLL_INTERVAL_SECONDS: must be less than MAX_WAIT_TIME_SECONDS (10 >= 10)",
            ),
            (
                |r| r.poll_interval_seconds = Some("301".into()),
                "invalid configuration: POLL_INTERVAL_SECONDS: must be less than MAX_WAIT_TIME_SECONDS (301 >= 300)",
            ),
            (
                |r| r.results_path = Some("results/out.json".into()),
                "invalid configuration: RESULTS_PATH: path must be absolute, got: results/out.json",
            ),
            (
                |r| r.results_path = Some("/results/".into()),
                "invalid configuration: RESULTS_PATH: path must be a file, not a directory, got: /results/",
            ),
            (
                |r| r.condition_type = Some("Complete".into()),
                "invalid configuration: CONDITION_TYPE: Complete is owned by the Job controller; use another type (default Available), not one of Complete, Failed, FailureTarget, SuccessCriteriaMet, Suspended",
            ),
            (
                |r| r.sidecar_mode = Some("sidecar".into()),
                "invalid configuration: SIDECAR_MODE: unknown mode \"sidecar\"; accepted: classic, native",
            ),
            (
                |r| r.log_level = Some("verbose".into()),
                "invalid configuration: LOG_LEVEL: unknown level \"verbose\"; accepted: trace, debug, info, warn, error",
            ),
            (
                |r| r.log_format = Some("xml".into()),
                "invalid configuration: LOG_FORMAT: unknown format \"xml\"; accepted: text, json",
            ),
            (
                |r| r.condition_type = Some("Failed".into()),
                "invalid configuration: CONDITION_TYPE: Failed is owned by the Job controller; use another type (default Available), not one of Complete, Failed, FailureTarget, SuccessCriteriaMet, Suspended",
            ),
        ];
        for (edit, want) in cases {
            let mut r = base();
            edit(&mut r);
            assert_eq!(Config::from_raw(&r).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "status-reporter",
            "--job-name",
            "j",
            "--job-namespace",
            "n",
            "--pod-name",
            "p",
            "--max-wait-time-seconds",
            "30",
        ])
        .unwrap();
        let c = Config::from_raw(&cli.raw).unwrap();
        assert_eq!(
            (c.job_name.as_str(), c.max_wait),
            ("j", Duration::from_secs(30))
        );
        let cli = Cli::try_parse_from(["status-reporter", "check-result", "/tmp/x.json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::CheckResult { .. })));
    }
}
