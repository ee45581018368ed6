//! Every setting of the reporter in one table: its environment variable (names identical to
//! the original Go reporter), the per-Job annotation the injector turns into that variable (if
//! any) and its default. Adding a setting is one line in the table below; both binaries, their
//! tests and the docs' checks read it from here.

use crate::annotations::prefix;

/// Builds the table: the [`Setting`] enum, [`Setting::ALL`] and the lookups.
macro_rules! settings {
    ($(
        $(#[$doc:meta])*
        $variant:ident { env: $env:literal $(, annotation: $annotation:literal)? $(, default: $default:literal)? $(,)? }
    ),* $(,)?) => {
        /// One setting of the reporter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Setting {
            $( $(#[$doc])* $variant, )*
        }

        impl Setting {
            /// Every setting, in table order.
            pub const ALL: &'static [Setting] = &[$(Setting::$variant),*];

            /// The environment variable (and, lower-kebab-cased, the reporter's flag).
            pub const fn env(self) -> &'static str {
                match self {
                    $(Setting::$variant => $env,)*
                }
            }

            /// The full annotation key that overrides it per Job, if it has one.
            pub const fn annotation(self) -> Option<&'static str> {
                match self {
                    $(Setting::$variant => settings!(@annotation $($annotation)?),)*
                }
            }

            /// The default as the env var would spell it; `None`: required, or no default.
            pub const fn default_value(self) -> Option<&'static str> {
                match self {
                    $(Setting::$variant => settings!(@option $($default)?),)*
                }
            }
        }
    };
    (@annotation) => { None };
    (@annotation $suffix:literal) => { Some(concat!(prefix!(), $suffix)) };
    (@option) => { None };
    (@option $value:literal) => { Some($value) };
}

settings! {
    /// The Job to write the condition on (required; injected from the pod's
    /// `batch.kubernetes.io/job-name` label).
    JobName { env: "JOB_NAME" },
    /// Namespace of the Job and the pod (required).
    JobNamespace { env: "JOB_NAMESPACE" },
    /// The reporter's own pod (required; downward API `metadata.name`).
    PodName { env: "POD_NAME" },
    /// The Job's uid (injected from the pod's `batch.kubernetes.io/controller-uid` label); when
    /// set, the reporter writes nothing to a Job of that name with another uid (re-created).
    JobUid { env: "JOB_UID" },
    /// The container whose exit the reporter watches; unset: the first container that is not
    /// [`REPORTER_CONTAINER`](crate::REPORTER_CONTAINER).
    AdapterContainer { env: "ADAPTER_CONTAINER_NAME", annotation: "adapter-container" },
    /// The condition type written on the Job.
    ConditionType { env: "CONDITION_TYPE", annotation: "condition-type", default: "Available" },
    /// Absolute path of the adapter's result file.
    ResultsPath { env: "RESULTS_PATH", annotation: "results-path", default: "/results/adapter-result.json" },
    /// How long to wait for a result, in seconds.
    MaxWait { env: "MAX_WAIT_TIME_SECONDS", annotation: "max-wait-seconds", default: "300" },
    /// Polling interval in seconds, used only when file notifications are unavailable.
    PollInterval { env: "POLL_INTERVAL_SECONDS", annotation: "poll-interval-seconds", default: "2" },
    /// The reporter's log level.
    LogLevel { env: "LOG_LEVEL", annotation: "log-level", default: "info" },
    /// The reporter's log format: `text` or `json`.
    LogFormat { env: "LOG_FORMAT", default: "text" },
    /// Where the reporter runs in the pod: `classic` (as the original) or `native`.
    SidecarMode { env: "SIDECAR_MODE", annotation: "sidecar-mode", default: "classic" },
}

impl Setting {
    /// The setting a full annotation key overrides, if any.
    pub fn from_annotation(key: &str) -> Option<Setting> {
        Setting::ALL
            .iter()
            .copied()
            .find(|s| s.annotation() == Some(key))
    }
}

/// Default `MAX_WAIT_TIME_SECONDS`, as a number.
pub const DEFAULT_MAX_WAIT_SECONDS: u64 = default_seconds(Setting::MaxWait);
/// Default `POLL_INTERVAL_SECONDS`, as a number.
pub const DEFAULT_POLL_INTERVAL_SECONDS: u64 = default_seconds(Setting::PollInterval);

/// The table's default of `setting` read as a whole number at compile time, so the number and
/// the env text cannot disagree.
const fn default_seconds(setting: Setting) -> u64 {
    let Some(text) = setting.default_value() else {
        panic!("a seconds setting without a default");
    };
    let bytes = text.as_bytes();
    let mut n = 0u64;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "a default that is not a number");
        n = n * 10 + (bytes[i] - b'0') as u64;
        i += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_defaults_read() {
        let mut envs: Vec<_> = Setting::ALL.iter().map(|s| s.env()).collect();
        envs.sort_unstable();
        envs.dedup();
        assert_eq!(envs.len(), Setting::ALL.len());
        assert_eq!(
            (DEFAULT_MAX_WAIT_SECONDS, DEFAULT_POLL_INTERVAL_SECONDS),
            (300, 2)
        );
        assert_eq!(
            Setting::from_annotation("status-reporter.hyperfleet.io/max-wait-seconds"),
            Some(Setting::MaxWait)
        );
        assert_eq!(
            Setting::from_annotation("status-reporter.hyperfleet.io/inject"),
            None
        );
        assert_eq!(Setting::JobName.annotation(), None);
        assert_eq!(Setting::JobName.default_value(), None);
    }
}
