//! The end-to-end harness: the real binaries ([`bin`], [`process`]) on a real control plane
//! ([`control_plane`]), a fault proxy in front of it ([`fault_proxy`]); tests/README.md.
#![forbid(unsafe_code)]

pub mod bin;
pub mod control_plane;
pub mod fault_proxy;
pub mod measure;
pub mod process;
pub mod reporter_process;
pub mod webhook_process;
