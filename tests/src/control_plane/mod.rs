//! A real Kubernetes control plane under the end-to-end suites: etcd, kube-apiserver and
//! kube-controller-manager (the real Job controller), built from the Kubernetes Go modules by
//! `tests/control-plane/build.sh` and started on loopback, one for every test process of a run
//! ([`Cluster::shared`], [`supervisor`]), each test in a
//! namespace of its own ([`Cluster::namespace`]). For the current release a real node runs
//! beside it (`node`, [`node_jobs`]); pods without a node name stay unscheduled, and tests that
//! need a state on cue play the kubelet ([`kubelet`]). The whole design: `tests/README.md`.

pub mod adapter;
pub mod admission_chain;
mod binaries;
pub mod cluster;
mod components;
pub mod helm;
pub mod images;
pub mod kubelet;
mod node;
pub mod node_jobs;
pub mod objects;
pub mod supervisor;
pub mod webhook;

use std::fmt::Debug;
use std::time::Duration;

use kube::api::{Api, PostParams};
use kube::runtime::wait::await_condition;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use binaries::bin_dir;
pub(crate) use binaries::{newest_source, target_dir, workspace_root};
pub use cluster::{AdmissionGuard, Cluster};

/// A hash of `path`: names derived from a state or run directory, so that control planes of
/// other worktrees and profiles on the machine get names of their own.
pub(crate) fn path_hash(path: &std::path::Path) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(path)
}

/// `PATH` with `dir` first.
pub fn path_with(dir: &std::path::Path) -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path));
    std::env::join_paths(dirs).unwrap_or(path)
}

/// The client configuration of the kubeconfig file `path`.
pub async fn client_config(path: &std::path::Path) -> Result<kube::Config, String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| format!("kubeconfig {}: {e}", path.display()))
}

/// Waits (bounded, on a watch) until object `name` of `api` exists and `accept` holds for it;
/// returns it then, or why not (the watch failed, or nothing within `timeout`).
pub async fn wait_object<K>(
    api: Api<K>,
    name: &str,
    timeout: Duration,
    accept: impl Fn(&K) -> bool,
) -> Result<K, String>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let url = format!("{}/{name}", api.resource_url());
    let seen = await_condition(api, name, move |o: Option<&K>| o.is_some_and(&accept));
    match tokio::time::timeout(timeout, seen).await {
        Ok(Ok(Some(o))) => Ok(o),
        Ok(Ok(None)) => Err(format!("{url} is gone")),
        Ok(Err(e)) => Err(format!("watching {url}: {e}")),
        Err(_) => Err(format!("{url}: none accepted within {timeout:?}")),
    }
}

/// Read-modify-write of `name`'s status with `change`, retried on 409 (a controller writes the
/// object too); returns what the API server stored.
pub async fn update_status<K>(api: &Api<K>, name: &str, change: impl Fn(&mut K)) -> K
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let url = format!("{}/{name}", api.resource_url());
    for _ in 0..20 {
        let mut current = api
            .get_status(name)
            .await
            .unwrap_or_else(|e| panic!("get {url}: {e}"));
        change(&mut current);
        match api
            .replace_status(name, &PostParams::default(), &current)
            .await
        {
            Ok(stored) => return stored,
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => panic!("update the status of {url}: {e}"),
        }
    }
    panic!("update the status of {url}: still conflicting after 20 tries")
}

/// Which pinned Kubernetes release (see `tests/control-plane/*/go.mod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Release {
    /// The newest stable release (`tests/control-plane/current`).
    Current,
    /// The oldest release we support (`tests/control-plane/oldest`): the manifest checks run on
    /// it too. It has no controller manager build.
    Oldest,
}

impl Release {
    /// `current` or `oldest`, as `build.sh` and the `control-plane` binary take it.
    pub fn as_str(self) -> &'static str {
        match self {
            Release::Current => "current",
            Release::Oldest => "oldest",
        }
    }
}
