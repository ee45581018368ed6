//! `status-reporter-webhook certs`: makes the webhook's serving certificate without
//! cert-manager or openssl (see `certs/README.md` for the rotation procedure).
//!
//! It writes a private CA and a serving certificate for the webhook Service's DNS names,
//! the `kubernetes.io/tls` Secret the Deployment mounts, and the `caBundle` the API server
//! needs to trust the webhook — as a kustomize patch for the MutatingWebhookConfiguration,
//! plus a ready overlay (`kustomization.yaml`) over the manifests, and printed base64 on stdout.
//!
//! Re-running it in the same directory re-issues the serving certificate with the existing
//! CA, so the `caBundle` does not change; `--rotate-ca` makes a new CA and keeps the old one
//! in the bundle (`ca.previous.crt`) until it is deleted.
//!
//! One file per concern: [`args`] (the command line and its validation), [`issue`](mod@issue) (pure
//! issuance, the clock passed in), [`render`] (Secret, caBundle, overlay) and [`out_dir`] (the
//! thin file-system shell, [`run`]).

use std::path::PathBuf;

pub mod args;
pub mod issue;
pub mod out_dir;
pub mod render;

pub use args::{CertsArgs, defaults, validate};
pub use issue::{CaPem, Issued, issue};
pub use out_dir::run;

/// Errors of the `certs` subcommand; each names what was wrong and what is accepted.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A Kubernetes object name or DNS name flag is malformed.
    #[error("--{flag} {value:?} is not valid: {reason}")]
    InvalidName {
        /// The flag, without dashes.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        reason: &'static str,
    },
    /// A validity period is out of range.
    #[error("--{flag} {value} is out of range: accepted 1 to {max} days")]
    InvalidDays {
        /// The flag, without dashes.
        flag: &'static str,
        /// The value given.
        value: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// An `--extra-san` entry is neither an IP address nor a DNS name.
    #[error(
        "--extra-san {value:?} is not valid: expected a DNS name (lowercase labels of letters, digits, '-', optionally starting with '*.') or an IP address"
    )]
    InvalidSan {
        /// The value given.
        value: String,
    },
    /// The out dir could not be created.
    #[error("cannot create the out dir {path}: {source} (choose a writable --out-dir)")]
    CreateDir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source} (is the out dir writable?)")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Only one half of an existing CA is present.
    #[error(
        "{present} exists but {missing} does not: restore it, or delete {present} (or pass --rotate-ca) to make a new CA"
    )]
    IncompleteCa {
        /// The file found.
        present: PathBuf,
        /// The file missing.
        missing: PathBuf,
    },
    /// The existing CA files cannot be used.
    #[error(
        "the existing CA in {dir} cannot be used: {reason} (pass --rotate-ca to make a new one)"
    )]
    BadCa {
        /// Out dir holding the CA.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The existing CA would expire before the new serving certificate.
    #[error(
        "the existing CA expires at {ca_not_after}, before the new serving certificate would ({cert_not_after}): pass --rotate-ca, or a smaller --days"
    )]
    CaExpiresTooSoon {
        /// CA expiry.
        ca_not_after: jiff::Timestamp,
        /// Serving certificate expiry.
        cert_not_after: jiff::Timestamp,
    },
    /// `--kustomize-base` does not point at a kustomization.
    #[error(
        "--kustomize-base {path}: no kustomization.yaml there (expected the manifests/ directory or one of its overlays)"
    )]
    KustomizeBase {
        /// Path given.
        path: PathBuf,
    },
    /// Key or certificate generation failed.
    #[error("generating the certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A validity period does not fit the calendar (far beyond any accepted `--days`).
    #[error("certificate validity out of range: {0}")]
    Time(#[from] jiff::Error),
    /// Rendering a manifest failed.
    #[error("rendering a manifest failed: {0}")]
    Render(#[from] serde_yaml_ng::Error),
}

/// Result alias for this module.
pub type Result<T, E = CertsError> = std::result::Result<T, E>;
