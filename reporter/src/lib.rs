//! status-reporter: a sidecar that turns an adapter's result file — or its failure to write
//! one — into exactly one condition on the adapter's Kubernetes Job.
//!
//! Pure core ([`outcome`], [`aggregate`], [`attempt`], [`job_shape`], [`result_file`],
//! [`job_status::upsert_condition`], [`config`], and the shared `contract` crate: settings, their
//! rules, the result-file contract) with a thin I/O shell ([`run`], [`report`], [`retry`], [`response_limit`],
//! [`pods`], [`pod_watch`], [`result_watch`], [`read_result`], [`shutdown`]); and [`wait`], the
//! consumers' side: block until a Job's condition is final.
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod attempt;
pub mod check_result;
pub mod client;
pub mod condition;
pub mod config;
pub mod error;
pub mod events;
pub mod go_duration;
pub mod job_shape;
pub mod job_status;
pub mod logging;
pub mod outcome;
pub mod pod_watch;
pub mod pods;
pub mod read_result;
pub mod report;
pub mod response_limit;
pub mod result_file;
pub mod result_watch;
pub mod retry;
pub mod run;
pub mod shutdown;
pub mod wait;

pub use error::{Error, Result};
