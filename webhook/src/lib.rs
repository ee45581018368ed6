//! `status-reporter-webhook`: a mutating admission webhook, and the same injection offline,
//! that add the status-reporter sidecar to Jobs annotated
//! `status-reporter.hyperfleet.io/inject: "true"`.
//!
//! The core ([`annotations`], [`review_view`], [`job_view`], [`inject`], [`patch`],
//! [`admission`]) is pure; [`server`] (with [`listener`] and [`body`]), [`tls`]
//! and [`offline`] are the thin I/O shell around it.
#![forbid(unsafe_code)]

pub mod admission;
pub mod annotations;
pub mod body;
pub mod certs;
pub mod config;
pub mod error;
pub mod files;
pub mod inject;
pub mod job_view;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod offline;
pub mod patch;
pub mod review_view;
pub mod server;
pub mod tls;

pub use error::{Error, Result};
