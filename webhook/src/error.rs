//! The crate's one error type: every variant a user can cause names what was wrong and
//! what is accepted, because these messages reach `kubectl` as admission denials.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the webhook and the offline injector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An annotation under `status-reporter.hyperfleet.io/` has a value we refuse.
    #[error("annotation {annotation}={value:?} is invalid; accepted: {accepted}")]
    Annotation {
        /// Full annotation key.
        annotation: String,
        /// The value as written by the user.
        value: String,
        /// What would have been accepted.
        accepted: String,
    },

    /// The adapter container named by annotation is not in `spec.template.spec.containers`.
    #[error(
        "annotation status-reporter.hyperfleet.io/adapter-container={name:?} names no container of the pod template; accepted: one of [{}]",
        available.join(", ")
    )]
    AdapterNotFound {
        /// Name asked for.
        name: String,
        /// Names of the pod template's containers.
        available: Vec<String>,
    },

    /// The pod template has no regular container, so there is no adapter to watch.
    #[error(
        "the Job's pod template has no containers, so there is no adapter container to report on"
    )]
    NoContainers,

    /// A Job that its namespace opted in cannot be injected: the refusal says how to run
    /// it without the reporter.
    #[error(
        "{0}; the Job's namespace is labelled status-reporter.hyperfleet.io/inject=enabled, so its Jobs run only with the reporter: to run this one without it, annotate it status-reporter.hyperfleet.io/inject: \"false\""
    )]
    NamespaceOptIn(Box<Error>),

    /// The object is not a Job we can read (wrong shape for batch/v1 Job).
    #[error("the object is not a valid batch/v1 Job: {0}")]
    InvalidJob(String),

    /// The patch could not be written as JSON: nothing a user's input can cause (every value
    /// in it serializes), but named as what it is.
    #[error("cannot write the patch as JSON: {0}")]
    WritePatch(serde_json::Error),

    /// A webhook setting (flag or env) is invalid.
    #[error("invalid setting --{flag}={value:?}; accepted: {accepted}")]
    Config {
        /// Flag name without dashes.
        flag: &'static str,
        /// Value given.
        value: String,
        /// What would have been accepted.
        accepted: String,
    },

    /// Input of `inject -f` cannot be read or parsed.
    #[error("cannot read {source_name}: {message}")]
    Input {
        /// File name or `-` for stdin.
        source_name: String,
        /// Parser or I/O message.
        message: String,
    },

    /// Output YAML could not be produced.
    #[error("cannot write YAML output: {0}")]
    Output(String),

    /// A certificate or key file is missing, unreadable or does not match.
    #[error("TLS certificate {cert} / key {key}: {message}")]
    Tls {
        /// Certificate path.
        cert: PathBuf,
        /// Key path.
        key: PathBuf,
        /// What was wrong.
        message: String,
    },

    /// Watching the certificate directory failed.
    #[error("cannot watch {dir} for certificate changes: {message}")]
    Watch {
        /// Directory watched.
        dir: PathBuf,
        /// Underlying message.
        message: String,
    },

    /// rustls refused the server configuration (a build without usable cipher suites or
    /// protocol versions): nothing a user's input can cause, but named as what it is.
    #[error("cannot set up TLS (rustls): {0}")]
    TlsSetup(rustls::Error),

    /// Binding or serving failed.
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
}
