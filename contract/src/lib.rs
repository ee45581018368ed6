//! The contract between the two binaries of status-reporter — the `status-reporter` sidecar
//! and the `status-reporter-webhook` injector — written once.
//!
//! - [`settings`]: every setting the reporter reads, with its env var, its per-Job annotation
//!   (if any) and its default; [`annotations`]: the opt-in and injection-record keys.
//! - [`validate`]: the rules a setting's value must meet, returning a neutral [`validate::Invalid`]
//!   that each binary words its own way (the reporter names the env var, the webhook the
//!   annotation), so whatever the webhook admits, the reporter accepts.
//! - [`k8s_names`]: Kubernetes name rules (DNS label, DNS subdomain, qualified name).
//! - [`SidecarMode`], [`LogLevel`]: the enumerated settings.
//! - [`result`]: the adapter's result file: parsing, normalising, limits.
//!
//! No I/O here; both binaries build on these pure definitions.
#![forbid(unsafe_code)]

pub mod annotations;
pub mod k8s_names;
mod log_level;
pub mod result;
pub mod settings;
mod sidecar_mode;
pub mod validate;

pub use log_level::LogLevel;
pub use settings::Setting;
pub use sidecar_mode::SidecarMode;

/// Name of the reporter's container in the pod (injected, or in the plain-sidecar examples);
/// auto-detection of the adapter container skips it.
pub const REPORTER_CONTAINER: &str = "status-reporter";

/// Type of the pod condition in which each attempt records its own result (`kubectl describe
/// pod` shows it; aggregates over a Job's pods read it).
pub const RESULT_CONDITION: &str = concat!(annotations::prefix!(), "result");

/// Pod label the Job controller sets to its Job's uid: the injector hands it to the reporter as
/// `JOB_UID`, and the reporter lists a Job's pods by it.
pub const JOB_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
