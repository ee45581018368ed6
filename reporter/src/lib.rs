//! status-reporter: a sidecar that turns an adapter's result file — or its failure to write
//! one — into exactly one condition on the adapter's Kubernetes Job.
//!
//! Pure core ([`outcome`], [`result_file`], [`job_status::upsert_condition`], [`config`], and the
//! shared `contract` crate: settings, their rules, the result-file contract) with a thin I/O
//! shell ([`run`], [`api`], [`pod_watch`], [`result_watch`], [`read_result`], [`shutdown`]).
#![forbid(unsafe_code)]

pub mod api;
pub mod check_result;
pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod go_duration;
pub mod job_status;
pub mod logging;
pub mod outcome;
pub mod pod_watch;
pub mod read_result;
pub mod result_file;
pub mod result_watch;
pub mod run;
pub mod shutdown;

pub use error::{Error, Result};
