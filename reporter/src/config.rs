//! Configuration from the environment (names, defaults and rules as the original Go reporter,
//! defined once in the `contract` crate) with an equivalent CLI flag for each variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use contract::validate::{self, Invalid, RESERVED_CONDITION_TYPES};
use contract::{LogLevel, Setting, SidecarMode};

use crate::error::{Error, Result};

/// Command line: the sidecar (no subcommand), `check-result FILE` or `wait job/NAME`.
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
    /// Block until a Job's condition is final (one watch, no polling): prints progress
    /// (`Unknown` aggregates, a `False` the Job may still retry) on stderr and the final
    /// condition on stdout; exits 0 for True, 1 for False once the Job finished (or when it
    /// failed without the condition), 3 on timeout, 2 on usage or access errors.
    Wait(WaitArgs),
}

/// `wait`'s arguments as given (validated by [`WaitConfig::from_args`]).
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// The Job: job/NAME (also jobs/NAME, job.batch/NAME).
    #[arg(value_name = "job/NAME")]
    pub job: String,
    /// Namespace of the Job [default: the kubeconfig context's namespace].
    #[arg(short = 'n', long, env = "WAIT_NAMESPACE")]
    pub namespace: Option<String>,
    /// The condition type to wait for (the reporter's CONDITION_TYPE).
    #[arg(long, env = Setting::ConditionType.env(), default_value = Setting::ConditionType.default_value())]
    pub condition_type: String,
    /// How long to wait, e.g. 90s, 10m, 1h30m (or ISO 8601, PT10M).
    #[arg(long, env = "WAIT_TIMEOUT", default_value = "10m")]
    pub timeout: String,
    /// Output of the final condition on stdout: text or json.
    #[arg(short = 'o', long, env = "WAIT_OUTPUT", default_value = "text")]
    pub output: String,
}

/// `wait`'s output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutput {
    /// One line: `Type=Status Reason: message`.
    Text,
    /// One JSON object (`schema/wait-output.schema.json`).
    Json,
}

/// `wait`'s validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitConfig {
    /// The Job's name.
    pub job: String,
    /// Its namespace; `None`: the kubeconfig context's.
    pub namespace: Option<String>,
    /// The condition type to wait for.
    pub condition_type: String,
    /// How long to wait.
    pub timeout: Duration,
    /// Output format.
    pub output: WaitOutput,
}

/// A `wait` argument that is not acceptable: what was wrong and what is accepted.
fn bad_wait(name: &'static str, problem: String) -> Error {
    Error::Config { name, problem }
}

impl WaitConfig {
    /// Validates `wait`'s arguments.
    pub fn from_args(args: &WaitArgs) -> Result<WaitConfig> {
        let target = args.job.trim();
        let name = match target.split_once('/') {
            Some(("job" | "jobs" | "job.batch" | "jobs.batch", name)) => name,
            _ => {
                return Err(bad_wait(
                    "job/NAME",
                    format!(
                        "expected a Job as job/NAME (or jobs/NAME, job.batch/NAME), got: {target:?}"
                    ),
                ));
            }
        };
        let job = validate::job_name(Some(name)).map_err(|why| {
            bad_wait(
                "job/NAME",
                format!("the name must be {}, got: {name:?}", why.accepted()),
            )
        })?;
        let namespace = match value(&args.namespace) {
            None => None,
            Some(ns) => Some(validate::job_namespace(Some(ns)).map_err(|why| {
                bad_wait(
                    "--namespace",
                    format!("must be {}, got: {ns:?}", why.accepted()),
                )
            })?),
        };
        let condition_type = args.condition_type.trim();
        let condition_type = validate::condition_type(Some(condition_type))
            .map_err(|e| invalid(Setting::ConditionType, e, Some(condition_type)))?;
        let text = args.timeout.trim();
        let timeout = text
            .parse::<jiff::SignedDuration>()
            .ok()
            .filter(|d| d.is_positive())
            .and_then(|d| Duration::try_from(d).ok())
            .ok_or_else(|| {
                bad_wait(
                    "--timeout",
                    format!("must be a positive duration like 90s, 10m or 1h30m, got: {text:?}"),
                )
            })?;
        let output = match args.output.trim().to_ascii_lowercase().as_str() {
            "text" => WaitOutput::Text,
            "json" => WaitOutput::Json,
            other => {
                return Err(bad_wait(
                    "--output",
                    format!("unknown format {other:?}; accepted: text, json"),
                ));
            }
        };
        Ok(WaitConfig {
            job,
            namespace,
            condition_type,
            timeout,
            output,
        })
    }
}

/// Settings as given (untrimmed, unvalidated). Every flag also reads its env var; names and
/// defaults come from [`contract::Setting`].
#[derive(Debug, Default, Clone, Args)]
pub struct RawConfig {
    /// Name of the Job to write the condition on (required; a DNS subdomain).
    #[arg(long, env = Setting::JobName.env())]
    pub job_name: Option<String>,
    /// Namespace of the Job and pod (required; a DNS label).
    #[arg(long, env = Setting::JobNamespace.env())]
    pub job_namespace: Option<String>,
    /// Name of this pod (required; downward API `metadata.name`).
    #[arg(long, env = Setting::PodName.env())]
    pub pod_name: Option<String>,
    /// The Job's uid (downward API label `batch.kubernetes.io/controller-uid`); when set, nothing
    /// is written to a Job of that name with another uid [default: unset, no check].
    #[arg(long, env = Setting::JobUid.env())]
    pub job_uid: Option<String>,
    /// Absolute path of the adapter result file; its directory is not a system directory.
    #[arg(long, env = Setting::ResultsPath.env(), default_value = Setting::ResultsPath.default_value())]
    pub results_path: Option<String>,
    /// Polling interval in seconds, used only when file notifications are unavailable; > 0 and < max wait.
    #[arg(long, env = Setting::PollInterval.env(), default_value = Setting::PollInterval.default_value())]
    pub poll_interval_seconds: Option<String>,
    /// How long to wait for a result, in seconds; > 0 and at most 31536000 (365 days).
    #[arg(long, env = Setting::MaxWait.env(), default_value = Setting::MaxWait.default_value())]
    pub max_wait_time_seconds: Option<String>,
    /// Condition type to write: a qualified name, not one the Job controller owns.
    #[arg(long, env = Setting::ConditionType.env(), default_value = Setting::ConditionType.default_value())]
    pub condition_type: Option<String>,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long, env = Setting::LogLevel.env(), default_value = Setting::LogLevel.default_value())]
    pub log_level: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = Setting::LogFormat.env(), default_value = Setting::LogFormat.default_value())]
    pub log_format: Option<String>,
    /// Adapter container name [default: the first container that is not the reporter's].
    #[arg(long, env = Setting::AdapterContainer.env())]
    pub adapter_container_name: Option<String>,
    /// classic (regular container, exits after reporting) or native (restartable init container, idles until SIGTERM).
    #[arg(long, env = Setting::SidecarMode.env(), default_value = Setting::SidecarMode.default_value())]
    pub sidecar_mode: Option<String>,
}

/// Log output format (the reporter's own; the webhook has its own logging flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Accepted spellings (any case).
    pub const ACCEPTED: &'static [&'static str] = &["text", "json"];
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
    /// The Job's uid, if injected: a Job of that name with another uid is not ours.
    pub job_uid: Option<String>,
    /// Result file.
    pub results_path: PathBuf,
    /// Poll interval for the fallback poller.
    pub poll_interval: Duration,
    /// Deadline for a result.
    pub max_wait: Duration,
    /// Condition type written.
    pub condition_type: String,
    /// Log level.
    pub log_level: LogLevel,
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

/// The reporter's words for a broken rule: the original Go reporter's for the rules it had,
/// byte for byte; the contract's description of what is accepted for the rules it did not.
fn invalid(setting: Setting, why: Invalid, raw: Option<&str>) -> Error {
    let raw = raw.unwrap_or_default();
    let problem = match why {
        Invalid::Missing => {
            "required (set the environment variable or the matching --flag)".to_owned()
        }
        Invalid::NotAnInteger => format!("must be a valid integer, got: {raw}"),
        Invalid::NotPositive(n) => format!("must be positive, got: {n}"),
        Invalid::AboveLimit { value, max } => {
            format!("must be at most {max} (365 days), got: {value}")
        }
        Invalid::PollNotBelowMaxWait { poll, max_wait, .. } => format!(
            "must be less than {} ({poll} >= {max_wait})",
            Setting::MaxWait.env()
        ),
        Invalid::PathEndsInSlash => format!("path must be a file, not a directory, got: {raw}"),
        Invalid::PathNotAbsolute => format!("path must be absolute, got: {raw}"),
        Invalid::ReservedConditionType => format!(
            "{raw} is owned by the Job controller; use another type (default {}), not one of {}",
            Setting::ConditionType.default_value().unwrap_or_default(),
            RESERVED_CONDITION_TYPES.join(", ")
        ),
        Invalid::Unknown { accepted } => {
            let (noun, shown) = match setting {
                Setting::LogLevel => ("level", raw.to_ascii_lowercase()),
                Setting::LogFormat => ("format", raw.to_ascii_lowercase()),
                _ => ("mode", raw.to_owned()),
            };
            format!(
                "unknown {noun} {shown:?}; accepted: {}",
                accepted.join(", ")
            )
        }
        other => format!("must be {}, got: {raw:?}", other.accepted()),
    };
    Error::Config {
        name: setting.env(),
        problem,
    }
}

impl Config {
    /// Validates raw settings with the contract's rules, in the original's order, then the additions.
    pub fn from_raw(raw: &RawConfig) -> Result<Config> {
        let job_name = value(&raw.job_name);
        let job_name =
            validate::job_name(job_name).map_err(|e| invalid(Setting::JobName, e, job_name))?;
        let namespace = value(&raw.job_namespace);
        let namespace = validate::job_namespace(namespace)
            .map_err(|e| invalid(Setting::JobNamespace, e, namespace))?;
        let pod_name = value(&raw.pod_name);
        let pod_name =
            validate::pod_name(pod_name).map_err(|e| invalid(Setting::PodName, e, pod_name))?;
        let job_uid = value(&raw.job_uid).map(str::to_owned);
        let (poll, max_wait) = (
            value(&raw.poll_interval_seconds),
            value(&raw.max_wait_time_seconds),
        );
        let timing = validate::timing(poll, max_wait).map_err(|(setting, e)| {
            let given = if setting == Setting::PollInterval {
                poll
            } else {
                max_wait
            };
            invalid(setting, e, given)
        })?;
        let results_path = value(&raw.results_path);
        let results_path = validate::results_path(results_path)
            .map_err(|e| invalid(Setting::ResultsPath, e, results_path))?;
        let condition_type = value(&raw.condition_type);
        let condition_type = validate::condition_type(condition_type)
            .map_err(|e| invalid(Setting::ConditionType, e, condition_type))?;
        let log_level = value(&raw.log_level);
        let log_level =
            validate::log_level(log_level).map_err(|e| invalid(Setting::LogLevel, e, log_level))?;
        let log_format = value(&raw.log_format);
        let log_format = match log_format
            .or(Setting::LogFormat.default_value())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            _ => {
                let why = Invalid::Unknown {
                    accepted: LogFormat::ACCEPTED,
                };
                return Err(invalid(Setting::LogFormat, why, log_format));
            }
        };
        let mode = value(&raw.sidecar_mode);
        let mode =
            validate::sidecar_mode(mode).map_err(|e| invalid(Setting::SidecarMode, e, mode))?;
        let adapter = value(&raw.adapter_container_name);
        let adapter_container = validate::adapter_container(adapter)
            .map_err(|e| invalid(Setting::AdapterContainer, e, adapter))?;
        Ok(Config {
            job_name,
            namespace,
            pod_name,
            job_uid,
            results_path: PathBuf::from(results_path),
            poll_interval: Duration::from_secs(timing.poll_interval_seconds),
            max_wait: Duration::from_secs(timing.max_wait_seconds),
            condition_type,
            log_level,
            log_format,
            adapter_container,
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
        assert_eq!(
            c.results_path,
            PathBuf::from("/results/adapter-result.json")
        );
        assert_eq!(c.poll_interval, Duration::from_secs(2));
        assert_eq!(c.max_wait, Duration::from_secs(300));
        assert_eq!(c.condition_type, "Available");
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.adapter_container, None);
        assert_eq!(c.mode, SidecarMode::Classic);
        assert_eq!(c.job_uid, None);
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
        r.job_uid = Some(" 6e2f7c1a-0d4b-4a53-9c55-7b8a1f0d3e21 ".into());
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
        assert_eq!(
            c.job_uid.as_deref(),
            Some("6e2f7c1a-0d4b-4a53-9c55-7b8a1f0d3e21")
        );
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.log_format, LogFormat::Json);
        // Whitespace-only counts as unset: default applies.
        let mut r = base();
        r.results_path = Some("   ".into());
        assert_eq!(
            Config::from_raw(&r).unwrap().results_path,
            PathBuf::from("/results/adapter-result.json")
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

    /// Rules the original did not have (issue 13, items 5, 6, 10, 12, 13): the contract's
    /// words for what is accepted, after the variable's name.
    #[test]
    fn hardened_rules() {
        type Edit = fn(&mut RawConfig);
        let cases: [(Edit, &str, &str); 8] = [
            (
                |r| r.job_name = Some("a/../../b".into()),
                "JOB_NAME",
                "a DNS subdomain",
            ),
            (
                |r| r.job_namespace = Some("Default".into()),
                "JOB_NAMESPACE",
                "a DNS label",
            ),
            (
                |r| r.pod_name = Some("pod_1".into()),
                "POD_NAME",
                "a DNS subdomain",
            ),
            (
                |r| r.max_wait_time_seconds = Some("9223372036854775807".into()),
                "MAX_WAIT_TIME_SECONDS",
                "must be at most 31536000 (365 days), got: 9223372036854775807",
            ),
            (
                |r| r.results_path = Some("/etc/r.json".into()),
                "RESULTS_PATH",
                "/bin, /boot, /dev, /etc",
            ),
            (
                |r| r.results_path = Some("/r.json".into()),
                "RESULTS_PATH",
                "directory is not /",
            ),
            (
                |r| r.condition_type = Some("a/b c".into()),
                "CONDITION_TYPE",
                "a qualified name",
            ),
            (
                |r| r.adapter_container_name = Some("status-reporter".into()),
                "ADAPTER_CONTAINER_NAME",
                "not the reporter's own (status-reporter), got: \"status-reporter\"",
            ),
        ];
        for (edit, name, part) in cases {
            let mut r = base();
            edit(&mut r);
            let err = Config::from_raw(&r).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid configuration: {name}: ")),
                "{err}"
            );
            assert!(err.contains(part), "{name}: {err}");
        }
        let mut r = base();
        r.max_wait_time_seconds = Some("31536000".into());
        assert_eq!(
            Config::from_raw(&r).unwrap().max_wait,
            Duration::from_secs(31_536_000)
        );
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

    fn wait(args: &[&str]) -> Result<WaitConfig> {
        let cli = Cli::try_parse_from(["status-reporter", "wait"].iter().chain(args)).unwrap();
        let Some(Command::Wait(args)) = cli.command else {
            panic!("not wait");
        };
        WaitConfig::from_args(&args)
    }

    #[test]
    fn wait_arguments() {
        assert_eq!(
            wait(&["job/dns-check"]).unwrap(),
            WaitConfig {
                job: "dns-check".into(),
                namespace: None,
                condition_type: "Available".into(),
                timeout: Duration::from_secs(600),
                output: WaitOutput::Text,
            }
        );
        let c = wait(&[
            "jobs.batch/dns-check",
            "-n",
            "adapters",
            "--condition-type",
            "DNSReady",
            "--timeout",
            "1h30m",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(
            (
                c.namespace.as_deref(),
                c.condition_type.as_str(),
                c.timeout,
                c.output
            ),
            (
                Some("adapters"),
                "DNSReady",
                Duration::from_secs(5400),
                WaitOutput::Json
            )
        );
        let cases = [
            (
                vec!["dns-check"],
                "invalid configuration: job/NAME: expected a Job as job/NAME (or jobs/NAME, job.batch/NAME), got: \"dns-check\"",
            ),
            (
                vec!["deployment/x"],
                "invalid configuration: job/NAME: expected a Job as job/NAME (or jobs/NAME, job.batch/NAME), got: \"deployment/x\"",
            ),
            (
                vec!["job/Bad_Name"],
                "invalid configuration: job/NAME: the name must be a DNS subdomain",
            ),
            (
                vec!["job/x", "-n", "Adapters"],
                "invalid configuration: --namespace: must be a DNS label",
            ),
            (
                vec!["job/x", "--timeout", "soon"],
                "invalid configuration: --timeout: must be a positive duration like 90s, 10m or 1h30m, got: \"soon\"",
            ),
            (
                vec!["job/x", "--timeout", "0s"],
                "invalid configuration: --timeout: must be a positive duration",
            ),
            (
                vec!["job/x", "-o", "yaml"],
                "invalid configuration: --output: unknown format \"yaml\"; accepted: text, json",
            ),
            (
                vec!["job/x", "--condition-type", "Complete"],
                "invalid configuration: CONDITION_TYPE: Complete is owned by the Job controller",
            ),
        ];
        for (args, want) in cases {
            let err = wait(&args).unwrap_err().to_string();
            assert!(err.starts_with(want), "{args:?}: {err}");
        }
    }
}
