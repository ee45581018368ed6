//! The rules a setting's value must meet, written once for both binaries: the reporter checks
//! its environment at start, the webhook checks the annotations at admission, with the same
//! functions — so whatever the webhook admits, the reporter accepts.
//!
//! Each function takes the raw value (`None`: unset, so the table's default applies; values
//! are trimmed) and returns the parsed value or an [`Invalid`]: a neutral description of the
//! broken rule, which each binary words its own way (the reporter as the original Go reporter
//! did, naming the env var; the webhook naming the annotation and [`Invalid::accepted`]).

use crate::k8s_names::NameRule;
use crate::settings::Setting;
use crate::{LogLevel, REPORTER_CONTAINER, SidecarMode};

/// Longest accepted `MAX_WAIT_TIME_SECONDS`: 365 days. Far beyond any Job's sensible wait, and
/// far below where deadline arithmetic could overflow.
pub const MAX_WAIT_LIMIT_SECONDS: u64 = 365 * 24 * 60 * 60;

/// Condition types the Job controller owns; the reporter must never write them.
pub const RESERVED_CONDITION_TYPES: [&str; 5] = [
    "Complete",
    "Failed",
    "FailureTarget",
    "SuccessCriteriaMet",
    "Suspended",
];

/// Directories of a Linux container that the results directory must neither be nor be inside:
/// the injector mounts the results volume there in the adapter container, hiding what the
/// image put there (programs, libraries, configuration) or what the runtime and the kubelet
/// mount there (`/dev`, `/proc`, `/sys`, `/run`, and the service-account token under
/// `/var/run/secrets`). `/` itself is refused too (everything else is inside it).
pub const SYSTEM_DIRECTORIES: [&str; 14] = [
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/run/secrets",
];

/// Why a value breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Required (or present), but empty.
    Missing,
    /// Not a whole number.
    NotAnInteger,
    /// A whole number, but not above 0.
    NotPositive(i64),
    /// A whole number above the limit ([`MAX_WAIT_LIMIT_SECONDS`]).
    AboveLimit {
        /// The value given.
        value: i64,
        /// The limit.
        max: u64,
    },
    /// The poll interval is not below the max wait.
    PollNotBelowMaxWait {
        /// The poll interval in force.
        poll: u64,
        /// The max wait in force.
        max_wait: u64,
        /// The poll interval is the default (only the max wait was given).
        poll_defaulted: bool,
    },
    /// Not one of the accepted words.
    Unknown {
        /// The accepted words.
        accepted: &'static [&'static str],
    },
    /// A path that ends in `/`.
    PathEndsInSlash,
    /// A path that does not start with `/`.
    PathNotAbsolute,
    /// A path the injector cannot mount the directory of (see [`mountable_results_path`]).
    PathNotMountable,
    /// The results directory is `/`, or is or is inside one of [`SYSTEM_DIRECTORIES`].
    SystemDirectory {
        /// The results directory (normalised).
        dir: String,
    },
    /// One of [`RESERVED_CONDITION_TYPES`].
    ReservedConditionType,
    /// Not a Kubernetes name of the kind the rule asks for.
    BadName(NameRule),
    /// The adapter container named is the reporter's own.
    ReporterContainer,
}

impl Invalid {
    /// What the broken rule accepts, in words either binary can frame.
    pub fn accepted(&self) -> String {
        match self {
            Invalid::Missing => "a non-empty value".to_owned(),
            Invalid::NotAnInteger | Invalid::NotPositive(_) | Invalid::AboveLimit { .. } => {
                format!(
                    "an integer number of seconds greater than 0 and at most {MAX_WAIT_LIMIT_SECONDS} (365 days)"
                )
            }
            Invalid::PollNotBelowMaxWait { max_wait, .. } => {
                format!("a poll interval less than the max wait ({max_wait}s)")
            }
            Invalid::Unknown { accepted } => accepted.join(", "),
            Invalid::PathEndsInSlash | Invalid::PathNotAbsolute => {
                "an absolute file path, not ending in '/'".to_owned()
            }
            Invalid::PathNotMountable => {
                "an absolute file path inside a directory, not ending in '/', \
                 without '.', '..' or empty segments or control characters, \
                 e.g. /results/adapter-result.json"
                    .to_owned()
            }
            Invalid::SystemDirectory { .. } => format!(
                "a file whose directory is not / and neither is nor is inside a system directory ({})",
                SYSTEM_DIRECTORIES.join(", ")
            ),
            Invalid::ReservedConditionType => format!(
                "a condition type other than the Job controller's own ({})",
                RESERVED_CONDITION_TYPES.join(", ")
            ),
            Invalid::BadName(rule) => rule.describe().to_owned(),
            Invalid::ReporterContainer => {
                format!(
                    "the adapter container's name, not the reporter's own ({REPORTER_CONTAINER})"
                )
            }
        }
    }
}

/// The value in force: the given one, else the table's default; trimmed; empty is [`Invalid::Missing`].
fn value(setting: Setting, raw: Option<&str>) -> Result<&str, Invalid> {
    match raw.or(setting.default_value()).map(str::trim) {
        None | Some("") => Err(Invalid::Missing),
        Some(v) => Ok(v),
    }
}

fn required_name(setting: Setting, raw: Option<&str>, rule: NameRule) -> Result<String, Invalid> {
    let name = value(setting, raw)?;
    if rule.check(name) {
        Ok(name.to_owned())
    } else {
        Err(Invalid::BadName(rule))
    }
}

/// `JOB_NAME`: a Job name (DNS subdomain). It becomes a segment of API paths.
pub fn job_name(raw: Option<&str>) -> Result<String, Invalid> {
    required_name(Setting::JobName, raw, NameRule::DnsSubdomain)
}

/// `JOB_NAMESPACE`: a namespace (DNS label).
pub fn job_namespace(raw: Option<&str>) -> Result<String, Invalid> {
    required_name(Setting::JobNamespace, raw, NameRule::DnsLabel)
}

/// `POD_NAME`: a Pod name (DNS subdomain).
pub fn pod_name(raw: Option<&str>) -> Result<String, Invalid> {
    required_name(Setting::PodName, raw, NameRule::DnsSubdomain)
}

/// `POLL_INTERVAL_SECONDS` and `MAX_WAIT_TIME_SECONDS` in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Poll interval, seconds: > 0 and < `max_wait_seconds`.
    pub poll_interval_seconds: u64,
    /// Max wait, seconds: > 0 and ≤ [`MAX_WAIT_LIMIT_SECONDS`].
    pub max_wait_seconds: u64,
}

/// The poll interval and the max wait, checked together in the original's order (both parse,
/// both positive, then the new limit on the max wait, then poll below max wait). The error
/// names the setting it blames.
pub fn timing(
    poll_interval: Option<&str>,
    max_wait: Option<&str>,
) -> Result<Timing, (Setting, Invalid)> {
    let whole = |setting: Setting, raw: Option<&str>| {
        let text = value(setting, raw).map_err(|e| (setting, e))?;
        text.parse::<i64>()
            .map_err(|_| (setting, Invalid::NotAnInteger))
    };
    let poll = whole(Setting::PollInterval, poll_interval)?;
    let max = whole(Setting::MaxWait, max_wait)?;
    if poll <= 0 {
        return Err((Setting::PollInterval, Invalid::NotPositive(poll)));
    }
    if max <= 0 {
        return Err((Setting::MaxWait, Invalid::NotPositive(max)));
    }
    if max.unsigned_abs() > MAX_WAIT_LIMIT_SECONDS {
        return Err((
            Setting::MaxWait,
            Invalid::AboveLimit {
                value: max,
                max: MAX_WAIT_LIMIT_SECONDS,
            },
        ));
    }
    let (poll, max) = (poll.unsigned_abs(), max.unsigned_abs());
    if poll >= max {
        return Err((
            Setting::PollInterval,
            Invalid::PollNotBelowMaxWait {
                poll,
                max_wait: max,
                poll_defaulted: poll_interval.is_none(),
            },
        ));
    }
    Ok(Timing {
        poll_interval_seconds: poll,
        max_wait_seconds: max,
    })
}

/// `RESULTS_PATH` as the reporter takes it: absolute, not ending in `/` (the original's rules,
/// in its order), and its directory (`.` and `..` resolved) not a system directory.
pub fn results_path(raw: Option<&str>) -> Result<String, Invalid> {
    let path = value(Setting::ResultsPath, raw)?;
    if path.ends_with('/') {
        return Err(Invalid::PathEndsInSlash);
    }
    if !path.starts_with('/') {
        return Err(Invalid::PathNotAbsolute);
    }
    let dir = results_dir(path);
    let system = dir == "/"
        || SYSTEM_DIRECTORIES.iter().any(|s| {
            dir == *s
                || dir
                    .strip_prefix(s)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
    if system {
        return Err(Invalid::SystemDirectory { dir });
    }
    Ok(path.to_owned())
}

/// `results-path` as the injector takes it: [`results_path`], and a plain path whose directory
/// it can mount: at least one directory, no `.`, `..` or empty segments, no control characters.
pub fn mountable_results_path(raw: &str) -> Result<String, Invalid> {
    let path = raw.trim();
    let segments: Vec<&str> = match path.strip_prefix('/') {
        Some(rest) => rest.split('/').collect(),
        None => return Err(Invalid::PathNotMountable),
    };
    let clean = segments.len() >= 2
        && segments
            .iter()
            .all(|s| !s.is_empty() && *s != "." && *s != "..")
        && !path.chars().any(char::is_control);
    if !clean {
        return Err(Invalid::PathNotMountable);
    }
    results_path(Some(path))
}

/// The directory of an absolute file path, with `.`, `..` and empty segments resolved lexically.
fn results_dir(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.pop();
    format!("/{}", parts.join("/"))
}

/// `CONDITION_TYPE`: a qualified name (as `metav1.Condition.type`) that the Job controller does
/// not own. The reserved check comes first, as in the original.
pub fn condition_type(raw: Option<&str>) -> Result<String, Invalid> {
    let ct = value(Setting::ConditionType, raw)?;
    if RESERVED_CONDITION_TYPES.contains(&ct) {
        return Err(Invalid::ReservedConditionType);
    }
    if !NameRule::QualifiedName.check(ct) {
        return Err(Invalid::BadName(NameRule::QualifiedName));
    }
    Ok(ct.to_owned())
}

/// `ADAPTER_CONTAINER_NAME`: `None` (unset) means auto-detect; never the reporter's own name.
pub fn adapter_container(raw: Option<&str>) -> Result<Option<String>, Invalid> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match raw.trim() {
        "" => Err(Invalid::Missing),
        REPORTER_CONTAINER => Err(Invalid::ReporterContainer),
        name => Ok(Some(name.to_owned())),
    }
}

/// `LOG_LEVEL`.
pub fn log_level(raw: Option<&str>) -> Result<LogLevel, Invalid> {
    LogLevel::parse(value(Setting::LogLevel, raw)?).ok_or(Invalid::Unknown {
        accepted: LogLevel::ACCEPTED,
    })
}

/// `SIDECAR_MODE`.
pub fn sidecar_mode(raw: Option<&str>) -> Result<SidecarMode, Invalid> {
    SidecarMode::parse(value(Setting::SidecarMode, raw)?).ok_or(Invalid::Unknown {
        accepted: SidecarMode::ACCEPTED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(
            timing(None, None),
            Ok(Timing {
                poll_interval_seconds: 2,
                max_wait_seconds: 300
            })
        );
        assert_eq!(
            results_path(None).as_deref(),
            Ok("/results/adapter-result.json")
        );
        assert_eq!(condition_type(None).as_deref(), Ok("Available"));
        assert_eq!(log_level(None), Ok(LogLevel::Info));
        assert_eq!(sidecar_mode(None), Ok(SidecarMode::Classic));
        assert_eq!(adapter_container(None), Ok(None));
        assert_eq!(job_name(None), Err(Invalid::Missing));
    }

    #[test]
    fn timing_rules_in_order() {
        let t = |p: Option<&str>, m: Option<&str>| timing(p, m);
        let not_int = Invalid::NotAnInteger;
        assert_eq!(
            t(Some("x"), Some("y")),
            Err((Setting::PollInterval, not_int.clone()))
        );
        assert_eq!(t(Some("0"), Some("y")), Err((Setting::MaxWait, not_int)));
        assert_eq!(
            t(Some("0"), Some("-1")),
            Err((Setting::PollInterval, Invalid::NotPositive(0)))
        );
        assert_eq!(
            t(None, Some("-1")),
            Err((Setting::MaxWait, Invalid::NotPositive(-1)))
        );
        assert_eq!(
            t(Some(" "), None),
            Err((Setting::PollInterval, Invalid::Missing))
        );
        assert_eq!(
            t(None, Some("99999999999999999999")),
            Err((Setting::MaxWait, Invalid::NotAnInteger))
        );
        let above = |v: &str| t(None, Some(v)).unwrap_err();
        for v in ["31536001", "9223372036854775807"] {
            assert!(
                matches!(
                    above(v),
                    (
                        Setting::MaxWait,
                        Invalid::AboveLimit {
                            max: 31_536_000,
                            ..
                        }
                    )
                ),
                "{v}"
            );
        }
        assert_eq!(
            t(None, Some("31536000")).unwrap().max_wait_seconds,
            MAX_WAIT_LIMIT_SECONDS
        );
        assert_eq!(
            t(None, Some("2")),
            Err((
                Setting::PollInterval,
                Invalid::PollNotBelowMaxWait {
                    poll: 2,
                    max_wait: 2,
                    poll_defaulted: true
                }
            ))
        );
        assert_eq!(
            t(Some(" 5 "), Some("6")),
            Ok(Timing {
                poll_interval_seconds: 5,
                max_wait_seconds: 6
            })
        );
    }

    #[test]
    fn results_paths() {
        let system = |dir: &str| {
            Err(Invalid::SystemDirectory {
                dir: dir.to_owned(),
            })
        };
        let cases: &[(&str, Result<&str, Invalid>)] = &[
            (
                "/results/adapter-result.json",
                Ok("/results/adapter-result.json"),
            ),
            (" /out/r.json ", Ok("/out/r.json")),
            ("/tmp/x/r.json", Ok("/tmp/x/r.json")),
            ("/var/lib/r.json", Ok("/var/lib/r.json")),
            ("/etcetera/r.json", Ok("/etcetera/r.json")),
            ("/results/", Err(Invalid::PathEndsInSlash)),
            ("results/r.json", Err(Invalid::PathNotAbsolute)),
        ];
        for (raw, want) in cases {
            assert_eq!(
                results_path(Some(raw)).as_deref(),
                want.as_ref().map(|s| *s),
                "{raw}"
            );
        }
        let refused: &[(&str, &str)] = &[
            ("/r.json", "/"),
            ("/etc/r.json", "/etc"),
            ("/proc/self/r.json", "/proc/self"),
            ("/dev/r.json", "/dev"),
            ("/run/secrets/x/r.json", "/run/secrets/x"),
            (
                "/var/run/secrets/kubernetes.io/serviceaccount/r.json",
                "/var/run/secrets/kubernetes.io/serviceaccount",
            ),
            ("/usr/local/r.json", "/usr/local"),
            ("/results/../etc/r.json", "/etc"),
            ("//etc//r.json", "/etc"),
            ("/./sys/r.json", "/sys"),
        ];
        for (raw, dir) in refused {
            assert_eq!(results_path(Some(raw)), system(dir), "{raw}");
        }
        for raw in [
            "/r.json",
            "results/x",
            "/a/../b.json",
            "/results//r.json",
            "/results/r\n.json",
            "/results/",
            "",
        ] {
            assert!(mountable_results_path(raw).is_err(), "{raw:?}");
        }
        assert_eq!(
            mountable_results_path(" /out/r.json"),
            Ok("/out/r.json".to_owned())
        );
        assert_eq!(
            mountable_results_path("/etc/cfg/r.json"),
            system("/etc/cfg")
        );
    }

    #[test]
    fn condition_types_names_and_words() {
        assert_eq!(
            condition_type(Some(" DNSReady ")).as_deref(),
            Ok("DNSReady")
        );
        assert_eq!(
            condition_type(Some("example.com/DNSReady")).as_deref(),
            Ok("example.com/DNSReady")
        );
        assert_eq!(
            condition_type(Some("Complete")),
            Err(Invalid::ReservedConditionType)
        );
        assert_eq!(condition_type(Some("")), Err(Invalid::Missing));
        for bad in ["a/b c", "a b", &"A".repeat(1000)] {
            assert_eq!(
                condition_type(Some(bad)),
                Err(Invalid::BadName(NameRule::QualifiedName)),
                "{bad}"
            );
        }
        assert_eq!(
            job_name(Some("a/../../b")),
            Err(Invalid::BadName(NameRule::DnsSubdomain))
        );
        assert_eq!(
            job_namespace(Some("a.b")),
            Err(Invalid::BadName(NameRule::DnsLabel))
        );
        assert_eq!(pod_name(Some(" job-x7k2p ")).as_deref(), Ok("job-x7k2p"));
        assert_eq!(
            adapter_container(Some("status-reporter")),
            Err(Invalid::ReporterContainer)
        );
        assert_eq!(
            adapter_container(Some(" main ")),
            Ok(Some("main".to_owned()))
        );
        assert_eq!(log_level(Some("WARNING")), Ok(LogLevel::Warn));
        assert_eq!(
            log_level(Some("verbose")),
            Err(Invalid::Unknown {
                accepted: LogLevel::ACCEPTED
            })
        );
        assert_eq!(
            sidecar_mode(Some("Native")),
            Err(Invalid::Unknown {
                accepted: SidecarMode::ACCEPTED
            })
        );
    }

    #[test]
    fn accepted_texts_read_cleanly() {
        let all = [
            Invalid::Missing,
            Invalid::NotAnInteger,
            Invalid::PollNotBelowMaxWait {
                poll: 1,
                max_wait: 1,
                poll_defaulted: false,
            },
            Invalid::Unknown {
                accepted: SidecarMode::ACCEPTED,
            },
            Invalid::PathNotAbsolute,
            Invalid::PathNotMountable,
            Invalid::SystemDirectory { dir: "/etc".into() },
            Invalid::ReservedConditionType,
            Invalid::BadName(NameRule::QualifiedName),
            Invalid::BadName(NameRule::DnsLabel),
            Invalid::BadName(NameRule::DnsSubdomain),
            Invalid::ReporterContainer,
        ];
        for invalid in all {
            let text = invalid.accepted();
            assert!(
                !text.is_empty() && !text.contains("  "),
                "{invalid:?}: {text:?}"
            );
            assert_eq!(text.trim(), text, "{invalid:?}");
        }
        let system = Invalid::SystemDirectory { dir: "/etc".into() }.accepted();
        assert!(
            SYSTEM_DIRECTORIES.iter().all(|d| system.contains(d)),
            "{system}"
        );
    }
}
