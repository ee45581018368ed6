//! The end-to-end harness: the real binaries on a real control plane.
//!
//! [`control_plane`] starts (or joins) a real etcd, kube-apiserver and kube-controller-manager
//! built from the Kubernetes Go modules, and plays the kubelet where no node runs;
//! [`fault_proxy`] sits between a binary and that API server for the faults a real server does
//! not produce on cue; [`reporter_process`] and [`webhook_process`] run the real binaries
//! ([`bin`] builds them), with their logs observable as they arrive ([`process`]).
#![forbid(unsafe_code)]

pub mod bin;
pub mod control_plane;
pub mod fault_proxy;
pub mod measure;
pub mod process;
pub mod reporter_process;
pub mod webhook_process;
