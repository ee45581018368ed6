//! status-reporter: a sidecar that turns an adapter's result file — or its failure to write
//! one — into exactly one condition on the adapter's Kubernetes Job.
//!
//! Pure core ([`result`], [`outcome`], [`job_status::upsert_condition`], [`config`]) with a thin
//! I/O shell ([`run`], [`pod_watch`], [`result_watch`], [`shutdown`]).
#![forbid(unsafe_code)]

pub mod check_result;
pub mod config;
pub mod error;
pub mod events;
pub mod go_duration;
pub mod job_status;
pub mod logging;
pub mod outcome;
pub mod pod_watch;
pub mod result;
pub mod result_watch;
pub mod run;
pub mod shutdown;

pub use error::{Error, Result};
