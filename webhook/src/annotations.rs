//! The `status-reporter.hyperfleet.io/` annotations of a Job: which are there, and the
//! per-Job overrides validated with the reporter's own rules (the `contract` crate), so a Job
//! the webhook admits never has a reporter that refuses to start. The keys, the defaults and
//! the rules live in `contract`; the wording of a denial lives here.

use std::collections::BTreeMap;

use contract::settings::DEFAULT_POLL_INTERVAL_SECONDS;
use contract::validate::{self, Invalid};
use contract::{LogLevel, Setting, SidecarMode};

use crate::error::{Error, Result};
use crate::job_view::OurAnnotations;

/// The opt-in and injection-record keys, defined in `contract`, re-exported for the injector.
pub use contract::annotations::{
    INJECT, NAMESPACE_OPT_IN_ENABLED, NAMESPACE_OPT_IN_LABEL, PREFIX, STATUS, STATUS_INJECTED,
};

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
    /// `log-level`.
    pub log_level: Option<LogLevel>,
    /// `sidecar-mode`.
    pub sidecar_mode: Option<SidecarMode>,
}

impl Overrides {
    /// The max wait the reporter will use.
    pub fn effective_max_wait(&self) -> u64 {
        self.max_wait_seconds
            .unwrap_or(contract::settings::DEFAULT_MAX_WAIT_SECONDS)
    }

    /// The reporter's env vars for the overrides that are set, as (name, value).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        [
            (Setting::ConditionType, self.condition_type.clone()),
            (
                Setting::MaxWait,
                self.max_wait_seconds.map(|n| n.to_string()),
            ),
            (
                Setting::PollInterval,
                self.poll_interval_seconds.map(|n| n.to_string()),
            ),
            (
                Setting::LogLevel,
                self.log_level.map(|l| l.as_str().to_owned()),
            ),
        ]
        .into_iter()
        .filter_map(|(setting, value)| value.map(|v| (setting.env(), v)))
        .collect()
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
    parse_ours(
        job.map(OurAnnotations::of).as_ref(),
        template.map(OurAnnotations::of).as_ref(),
    )
}

/// [`parse`] for the annotations under [`PREFIX`] as a [`crate::job_view`] reads them.
pub fn parse_ours(
    job: Option<&OurAnnotations<'_>>,
    template: Option<&OurAnnotations<'_>>,
) -> Result<Annotations> {
    let mut merged: BTreeMap<&str, &str> = BTreeMap::new();
    for map in [job, template].into_iter().flatten() {
        for (k, v) in map.iter() {
            merged.insert(k, v);
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
    let (mut max_wait, mut poll) = (None, None);
    for (&key, &raw) in &merged {
        let denied = |why: Invalid| invalid(key, raw, why.accepted());
        let o = &mut out.overrides;
        match Setting::from_annotation(key) {
            Some(Setting::AdapterContainer) => {
                o.adapter_container = validate::adapter_container(Some(raw)).map_err(denied)?
            }
            Some(Setting::ConditionType) => {
                o.condition_type = Some(validate::condition_type(Some(raw)).map_err(denied)?)
            }
            Some(Setting::ResultsPath) => {
                o.results_path = Some(validate::mountable_results_path(raw).map_err(denied)?)
            }
            Some(Setting::MaxWait) => max_wait = Some(raw),
            Some(Setting::PollInterval) => poll = Some(raw),
            Some(Setting::LogLevel) => {
                o.log_level = Some(validate::log_level(Some(raw)).map_err(denied)?)
            }
            Some(Setting::SidecarMode) => {
                o.sidecar_mode = Some(validate::sidecar_mode(Some(raw)).map_err(denied)?)
            }
            _ if key == INJECT => out.inject = Some(parse_bool(key, raw)?),
            _ if key == STATUS => {}
            _ => out.unknown.push(key.to_owned()),
        }
    }
    let timing = validate::timing(poll, max_wait)
        .map_err(|(setting, why)| timing_denial(setting, why, poll, max_wait))?;
    out.overrides.max_wait_seconds = max_wait.map(|_| timing.max_wait_seconds);
    out.overrides.poll_interval_seconds = poll.map(|_| timing.poll_interval_seconds);
    Ok(out)
}

/// Blames the annotation the user can fix: the poll interval when it was given, else the max
/// wait (which then has to exceed the default poll interval).
fn timing_denial(
    setting: Setting,
    why: Invalid,
    poll: Option<&str>,
    max_wait: Option<&str>,
) -> Error {
    let key = |s: Setting| s.annotation().unwrap_or_default();
    match why {
        Invalid::PollNotBelowMaxWait {
            poll_defaulted: true,
            ..
        } => invalid(
            key(Setting::MaxWait),
            max_wait.unwrap_or_default(),
            format!(
                "an integer greater than the poll interval ({DEFAULT_POLL_INTERVAL_SECONDS}s, the default); \
                 or also set {} lower",
                key(Setting::PollInterval)
            ),
        ),
        why => {
            let raw = if setting == Setting::PollInterval {
                poll
            } else {
                max_wait
            };
            invalid(key(setting), raw.unwrap_or_default(), why.accepted())
        }
    }
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
