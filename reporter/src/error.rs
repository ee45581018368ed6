//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the reporter, each variant saying what was wrong and, where
/// a user caused it, what is accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value (env var or flag) is missing or malformed.
    #[error("invalid configuration: {name}: {problem}")]
    Config {
        /// The env var name, e.g. `POLL_INTERVAL_SECONDS`.
        name: &'static str,
        /// What is wrong and what is accepted.
        problem: String,
    },

    /// Kubernetes client configuration could not be loaded (kubeconfig / in-cluster).
    #[error(
        "cannot configure the Kubernetes client (kubeconfig or in-cluster service account): {0}"
    )]
    KubeConfig(String),

    /// The API server refused a request permanently (403, 404, 422, ...).
    #[error("{verb} {resource} {object} failed with HTTP {code}: {message}{hint}")]
    Api {
        /// HTTP verb as RBAC names it (`get`, `update`, `create`).
        verb: &'static str,
        /// Resource as RBAC names it (`jobs/status`, `events`).
        resource: &'static str,
        /// `namespace/name` of the object.
        object: String,
        /// HTTP status code.
        code: u16,
        /// The server's message.
        message: String,
        /// Extra advice, e.g. the RBAC rule that is missing.
        hint: String,
    },

    /// Transient API failures did not clear before the write deadline.
    #[error(
        "gave up writing condition on job {job} after {attempts} attempts within {deadline}: last error: {last}"
    )]
    WriteDeadline {
        /// `namespace/name` of the Job.
        job: String,
        /// Number of attempts made.
        attempts: u32,
        /// The deadline, Go-style duration.
        deadline: String,
        /// The last transient error.
        last: String,
    },

    /// Transient API failures of a request beside the condition write did not clear in time.
    #[error("gave up on {what} after {attempts} attempts: last error: {last}")]
    Request {
        /// The request, e.g. `list pods default (Job uid ...)`.
        what: String,
        /// Number of attempts made.
        attempts: u32,
        /// The last transient error.
        last: String,
    },

    /// A SIGTERM came before the report ended, and the report did not end within the
    /// shutdown budget (the API is failing or hanging).
    #[error(
        "shutdown requested and the report did not finish within the shutdown budget of {budget} (the API server did not answer in time); the kubelet's grace period would end mid-write"
    )]
    ShutdownBudget {
        /// The budget, Go-style duration.
        budget: String,
    },

    /// The Job of that name is another Job than this pod's (deleted and re-created).
    #[error(
        "job {job} has uid {found}, but this pod belongs to the Job with uid {expected} (JOB_UID): the Job was deleted and re-created under the same name; nothing is written to it"
    )]
    JobReplaced {
        /// `namespace/name` of the Job.
        job: String,
        /// `JOB_UID`: this pod's Job.
        expected: String,
        /// The uid of the Job now under that name.
        found: String,
    },

    /// The results directory could not be watched or read.
    #[error("cannot watch results directory {path}: {source}")]
    Watch {
        /// Directory that was to be watched.
        path: PathBuf,
        /// Underlying notify error.
        source: notify::Error,
    },
}

/// Result alias with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
