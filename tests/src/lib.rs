//! A Kubernetes API stand-in for end-to-end tests and benchmarks.
//!
//! [`StandIn`] is a small, in-process HTTP server that speaks the parts of the kube-apiserver
//! protocol the product touches (Jobs and their status subresource, Pods with list and watch,
//! Events in both APIs), faithfully enough that the real `kube` client and the real binaries
//! cannot tell the difference: resourceVersions and 409 conflicts, strategic/merge/JSON patches,
//! real `Status` error bodies, watch resume, bookmarks and 410 Gone. Tests drive it as the
//! kubelet and the Job controller would, inject faults, and observe every request.
#![forbid(unsafe_code)]

pub mod bin;
pub mod control_plane;
mod fault;
pub mod fault_proxy;
pub mod fixtures;
mod kubeconfig;
mod kubelet;
mod logs;
mod patch;
pub mod process;
pub mod reporter_process;
mod routes;
mod selector;
mod server;
mod status;
mod store;
mod strategic_merge;
mod wait;
mod watch;
pub mod webhook_process;

pub use fault::{Fault, FaultKind, MethodMatch};
pub use server::{LoggedRequest, StandIn};
