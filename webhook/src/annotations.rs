//! The `status-reporter.hyperfleet.io/` annotations: parsing and validation with the same
//! rules the reporter applies to its environment, so a Job the webhook admits never has a
//! reporter that refuses to start.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Prefix of every annotation the injector reads or writes.
pub const PREFIX: &str = "status-reporter.hyperfleet.io/";
/// `"true"` opts a Job in, `"false"` opts it out.
pub const INJECT: &str = "status-reporter.hyperfleet.io/inject";
/// Name of the container the reporter watches.
pub const ADAPTER_CONTAINER: &str = "status-reporter.hyperfleet.io/adapter-container";
/// Condition type the reporter writes (`CONDITION_TYPE`).
pub const CONDITION_TYPE: &str = "status-reporter.hyperfleet.io/condition-type";
/// Result file path (`RESULTS_PATH`).
pub const RESULTS_PATH: &str = "status-reporter.hyperfleet.io/results-path";
/// Maximum wait for a result (`MAX_WAIT_TIME_SECONDS`).
pub const MAX_WAIT_SECONDS: &str = "status-reporter.hyperfleet.io/max-wait-seconds";
/// Poll interval fallback (`POLL_INTERVAL_SECONDS`).
pub const POLL_INTERVAL_SECONDS: &str = "status-reporter.hyperfleet.io/poll-interval-seconds";
/// Reporter log level (`LOG_LEVEL`).
pub const LOG_LEVEL: &str = "status-reporter.hyperfleet.io/log-level";
/// `native` or `classic` sidecar for this Job.
pub const SIDECAR_MODE: &str = "status-reporter.hyperfleet.io/sidecar-mode";
/// Written by the injector on the pod template: `injected`.
pub const STATUS: &str = "status-reporter.hyperfleet.io/status";
/// Value of [`STATUS`] once the reporter has been added.
pub const STATUS_INJECTED: &str = "injected";
/// Namespace label that opts every Job of the namespace in (value [`NAMESPACE_OPT_IN_ENABLED`]).
/// The webhook never reads it: the webhook configuration selects on it and calls the
/// namespace path (`/mutate-namespace`), so the webhook needs no API permission.
pub const NAMESPACE_OPT_IN_LABEL: &str = "status-reporter.hyperfleet.io/inject";
/// Value of [`NAMESPACE_OPT_IN_LABEL`] that opts a namespace in.
pub const NAMESPACE_OPT_IN_ENABLED: &str = "enabled";

/// Every annotation key under [`PREFIX`] the injector understands.
pub const KNOWN: [&str; 9] = [
    INJECT,
    ADAPTER_CONTAINER,
    CONDITION_TYPE,
    RESULTS_PATH,
    MAX_WAIT_SECONDS,
    POLL_INTERVAL_SECONDS,
    LOG_LEVEL,
    SIDECAR_MODE,
    STATUS,
];

/// The reporter's defaults (DESIGN.md "Reporter configuration"); validation of overrides
/// must use the same numbers the reporter will.
pub mod reporter_defaults {
    /// `RESULTS_PATH` default.
    pub const RESULTS_PATH: &str = "/results/adapter-result.json";
    /// `MAX_WAIT_TIME_SECONDS` default.
    pub const MAX_WAIT_SECONDS: u64 = 300;
    /// `POLL_INTERVAL_SECONDS` default.
    pub const POLL_INTERVAL_SECONDS: u64 = 2;
}

/// Condition types the Job controller owns; the reporter must never write them.
pub const RESERVED_CONDITION_TYPES: [&str; 5] = [
    "Complete",
    "Failed",
    "FailureTarget",
    "SuccessCriteriaMet",
    "Suspended",
];

/// Accepted reporter log levels.
pub const LOG_LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

/// Where the reporter runs in the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SidecarMode {
    /// First init container with `restartPolicy: Always` (Kubernetes ≥ 1.29).
    Native,
    /// An extra regular container that exits after reporting.
    Classic,
}

impl SidecarMode {
    /// The value used in annotations and in the reporter's `SIDECAR_MODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            SidecarMode::Native => "native",
            SidecarMode::Classic => "classic",
        }
    }
}

/// Per-Job overrides read from the annotations; `None` means "reporter default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `adapter-container`.
    pub adapter_container: Option<String>,
    /// `condition-type`.
    pub condition_type: Option<String>,
    /// `results-path`.
    pub results_path: Option<String>,
    /// `max-wait-seconds`.
    pub max_wait_seconds: Option<u64>,
    /// `poll-interval-seconds`.
    pub poll_interval_seconds: Option<u64>,
    /// `log-level`, lower-cased.
    pub log_level: Option<String>,
    /// `sidecar-mode`.
    pub sidecar_mode: Option<SidecarMode>,
}

impl Overrides {
    /// The max wait the reporter will use.
    pub fn effective_max_wait(&self) -> u64 {
        self.max_wait_seconds
            .unwrap_or(reporter_defaults::MAX_WAIT_SECONDS)
    }
}

/// The parsed annotations of one Job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    /// `inject`: `Some(true)` opted in, `Some(false)` opted out, `None` not annotated.
    pub inject: Option<bool>,
    /// `status: injected` present: the reporter was already added.
    pub injected: bool,
    /// Validated overrides.
    pub overrides: Overrides,
    /// Keys under [`PREFIX`] that we do not know (likely typos), sorted.
    pub unknown: Vec<String>,
}

/// Parses the annotations of a Job and of its pod template; the pod template's value wins
/// because it is the more specific place (a CronJob's jobTemplate annotations reach both).
pub fn parse(
    job: Option<&BTreeMap<String, String>>,
    template: Option<&BTreeMap<String, String>>,
) -> Result<Annotations> {
    let mut merged: BTreeMap<&str, &str> = BTreeMap::new();
    for map in [job, template].into_iter().flatten() {
        for (k, v) in map {
            if k.starts_with(PREFIX) {
                merged.insert(k.as_str(), v.as_str());
            }
        }
    }
    // The status annotation is written on the pod template only; a Job-level copy
    // (e.g. from a manifest that was copied around) would not prove injection.
    let injected = template
        .and_then(|m| m.get(STATUS))
        .is_some_and(|v| v.trim() == STATUS_INJECTED);

    let mut out = Annotations {
        injected,
        ..Annotations::default()
    };
    for (&key, &raw) in &merged {
        match key {
            INJECT => out.inject = Some(parse_bool(key, raw)?),
            ADAPTER_CONTAINER => out.overrides.adapter_container = Some(non_empty(key, raw)?),
            CONDITION_TYPE => out.overrides.condition_type = Some(condition_type(key, raw)?),
            RESULTS_PATH => out.overrides.results_path = Some(results_path(key, raw)?),
            MAX_WAIT_SECONDS => out.overrides.max_wait_seconds = Some(positive(key, raw)?),
            POLL_INTERVAL_SECONDS => {
                out.overrides.poll_interval_seconds = Some(positive(key, raw)?)
            }
            LOG_LEVEL => out.overrides.log_level = Some(log_level(key, raw)?),
            SIDECAR_MODE => out.overrides.sidecar_mode = Some(sidecar_mode(key, raw)?),
            STATUS => {}
            _ => out.unknown.push(key.to_owned()),
        }
    }

    // Same cross-field rule as the reporter: poll interval strictly below the max wait.
    let max_wait = out.overrides.effective_max_wait();
    let poll = out
        .overrides
        .poll_interval_seconds
        .unwrap_or(reporter_defaults::POLL_INTERVAL_SECONDS);
    if poll >= max_wait {
        return Err(match out.overrides.poll_interval_seconds {
            Some(_) => Error::Annotation {
                annotation: POLL_INTERVAL_SECONDS.to_owned(),
                value: poll.to_string(),
                accepted: format!(
                    "an integer greater than 0 and less than the max wait ({max_wait}s)"
                ),
            },
            None => Error::Annotation {
                annotation: MAX_WAIT_SECONDS.to_owned(),
                value: max_wait.to_string(),
                accepted: format!(
                    "an integer greater than the poll interval ({poll}s, the default); \
                     or also set {POLL_INTERVAL_SECONDS} lower"
                ),
            },
        });
    }
    Ok(out)
}

fn invalid(annotation: &str, value: &str, accepted: impl Into<String>) -> Error {
    Error::Annotation {
        annotation: annotation.to_owned(),
        value: value.to_owned(),
        accepted: accepted.into(),
    }
}

fn parse_bool(key: &str, raw: &str) -> Result<bool> {
    match raw.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, raw, "\"true\" or \"false\"")),
    }
}

fn non_empty(key: &str, raw: &str) -> Result<String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(invalid(key, raw, "a non-empty container name"));
    }
    Ok(value.to_owned())
}

fn condition_type(key: &str, raw: &str) -> Result<String> {
    let value = raw.trim();
    if value.is_empty() || RESERVED_CONDITION_TYPES.contains(&value) {
        return Err(invalid(
            key,
            raw,
            format!(
                "a non-empty condition type other than the Job controller's own ({})",
                RESERVED_CONDITION_TYPES.join(", ")
            ),
        ));
    }
    Ok(value.to_owned())
}

fn results_path(key: &str, raw: &str) -> Result<String> {
    let value = raw.trim();
    if !is_clean_results_path(value) {
        return Err(invalid(key, raw, RESULTS_PATH_ACCEPTED));
    }
    Ok(value.to_owned())
}

/// What [`is_clean_results_path`] accepts, for messages.
pub const RESULTS_PATH_ACCEPTED: &str = "an absolute file path inside a directory, not ending in '/', without      '.', '..' or empty segments or control characters, e.g. /results/adapter-result.json";

/// The reporter's rule (absolute, not ending in `/`) plus what a volume mount needs: the
/// file's directory is mounted, so it must be a plain, normalised directory other than `/`.
pub fn is_clean_results_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    segments.len() >= 2
        && segments
            .iter()
            .all(|s| !s.is_empty() && *s != "." && *s != "..")
        && !path.chars().any(char::is_control)
}

fn positive(key: &str, raw: &str) -> Result<u64> {
    match raw.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(
            key,
            raw,
            "an integer number of seconds greater than 0",
        )),
    }
}

fn log_level(key: &str, raw: &str) -> Result<String> {
    let value = raw.trim().to_ascii_lowercase();
    if LOG_LEVELS.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(invalid(key, raw, LOG_LEVELS.join(", ")))
    }
}

fn sidecar_mode(key: &str, raw: &str) -> Result<SidecarMode> {
    match raw.trim() {
        "native" => Ok(SidecarMode::Native),
        "classic" => Ok(SidecarMode::Classic),
        _ => Err(invalid(key, raw, "native, classic")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse_one(key: &str, value: &str) -> Result<Annotations> {
        parse(Some(&map(&[(key, value)])), None)
    }

    #[test]
    fn good_values_are_parsed_and_trimmed() {
        let job = map(&[
            (INJECT, "true"),
            (ADAPTER_CONTAINER, " adapter "),
            (CONDITION_TYPE, "DnsReady"),
            (RESULTS_PATH, "/out/r.json"),
            (MAX_WAIT_SECONDS, "60"),
            (POLL_INTERVAL_SECONDS, " 5"),
            (LOG_LEVEL, "DEBUG"),
            (SIDECAR_MODE, "classic"),
        ]);
        let a = parse(Some(&job), None).unwrap();
        assert_eq!(a.inject, Some(true));
        assert_eq!(
            a.overrides,
            Overrides {
                adapter_container: Some("adapter".into()),
                condition_type: Some("DnsReady".into()),
                results_path: Some("/out/r.json".into()),
                max_wait_seconds: Some(60),
                poll_interval_seconds: Some(5),
                log_level: Some("debug".into()),
                sidecar_mode: Some(SidecarMode::Classic),
            }
        );
        assert!(a.unknown.is_empty());
    }

    #[test]
    fn template_wins_over_job() {
        let job = map(&[(INJECT, "true"), (LOG_LEVEL, "info")]);
        let tpl = map(&[(INJECT, "false")]);
        let a = parse(Some(&job), Some(&tpl)).unwrap();
        assert_eq!(a.inject, Some(false));
        assert_eq!(a.overrides.log_level.as_deref(), Some("info"));
    }

    #[test]
    fn bad_values_name_the_annotation_and_the_accepted_values() {
        let cases = [
            (INJECT, "yes", "\"true\" or \"false\""),
            (ADAPTER_CONTAINER, "  ", "non-empty"),
            (CONDITION_TYPE, "Complete", "Job controller"),
            (CONDITION_TYPE, "", "non-empty"),
            (RESULTS_PATH, "results/x.json", "absolute"),
            (RESULTS_PATH, "/results/", "not ending in '/'"),
            (RESULTS_PATH, "/result.json", "inside a directory"),
            (RESULTS_PATH, "/results/../etc/r.json", "'..'"),
            (RESULTS_PATH, "/results//r.json", "empty segments"),
            (RESULTS_PATH, "/results/r\n.json", "control characters"),
            (MAX_WAIT_SECONDS, "0", "greater than 0"),
            (MAX_WAIT_SECONDS, "5m", "greater than 0"),
            (POLL_INTERVAL_SECONDS, "-1", "greater than 0"),
            (LOG_LEVEL, "verbose", "trace, debug, info, warn, error"),
            (SIDECAR_MODE, "sidecar", "native, classic"),
        ];
        for (key, value, accepted) in cases {
            let err = parse_one(key, value).unwrap_err().to_string();
            assert!(err.contains(key), "{key}={value:?}: {err}");
            assert!(err.contains(accepted), "{key}={value:?}: {err}");
        }
    }

    #[test]
    fn poll_must_be_below_max_wait() {
        let a = map(&[(MAX_WAIT_SECONDS, "10"), (POLL_INTERVAL_SECONDS, "10")]);
        let err = parse(Some(&a), None).unwrap_err().to_string();
        assert!(err.contains(POLL_INTERVAL_SECONDS), "{err}");
        assert!(err.contains("less than the max wait (10s)"), "{err}");

        // The default poll (2s) also counts.
        let err = parse_one(MAX_WAIT_SECONDS, "2").unwrap_err().to_string();
        assert!(err.contains(MAX_WAIT_SECONDS), "{err}");
        assert!(parse_one(MAX_WAIT_SECONDS, "3").is_ok());
        assert!(parse_one(POLL_INTERVAL_SECONDS, "300").is_err());
        assert!(parse_one(POLL_INTERVAL_SECONDS, "299").is_ok());
    }

    #[test]
    fn unknown_keys_are_reported_and_status_only_counts_on_the_template() {
        let job = map(&[
            (INJECT, "true"),
            ("status-reporter.hyperfleet.io/max-wait", "5"),
            (STATUS, "injected"),
        ]);
        let a = parse(Some(&job), None).unwrap();
        assert_eq!(
            a.unknown,
            vec!["status-reporter.hyperfleet.io/max-wait".to_owned()]
        );
        assert!(!a.injected);
        let tpl = map(&[(STATUS, "injected")]);
        assert!(parse(Some(&job), Some(&tpl)).unwrap().injected);
    }
}
