//! Locating (and building once per test process) the workspace's real binaries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::control_plane::{newest_source, target_dir, workspace_root};

/// The package, crate directory and env override of each binary we know.
fn package_of(name: &str) -> (&'static str, &'static str, &'static str) {
    match name {
        "status-reporter" => ("status-reporter", "reporter", "STATUS_REPORTER_BIN"),
        "status-reporter-webhook" => (
            "status-reporter-webhook",
            "webhook",
            "STATUS_REPORTER_WEBHOOK_BIN",
        ),
        "control-plane" => (
            "status-reporter-tests",
            "tests",
            "STATUS_REPORTER_CONTROL_PLANE_BIN",
        ),
        other => panic!(
            "unknown binary {other:?}; accepted: \"status-reporter\", \"status-reporter-webhook\", \"control-plane\""
        ),
    }
}

/// Path of a workspace binary (`"status-reporter"` | `"status-reporter-webhook"` |
/// `"control-plane"`): the prebuilt one env `STATUS_REPORTER_BIN` /
/// `STATUS_REPORTER_WEBHOOK_BIN` / `STATUS_REPORTER_CONTROL_PLANE_BIN` names, else the workspace
/// test build's `target/debug/<name>` when newer than its sources, else built once per process
/// (`cargo build -p <package> --bin <name>`, `--release` with `STATUS_REPORTER_TESTS_RELEASE=1`).
/// Only when stale: a package-only build resolves features differently from the workspace
/// test build, and the two would overwrite each other's binary on every run.
pub fn path(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let (package, crate_dir, override_var) = package_of(name);
    if let Some(p) = std::env::var_os(override_var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{override_var}={} is not a file", p.display());
        return p;
    }
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let path = built.entry(name.to_owned()).or_insert_with(|| {
        let release = std::env::var("STATUS_REPORTER_TESTS_RELEASE").is_ok_and(|v| v == "1");
        let path = target_dir()
            .join(if release { "release" } else { "debug" })
            .join(name);
        if !fresh(&path, crate_dir) {
            cargo_build(package, name, release);
        }
        path
    });
    path.clone()
}

/// The release build of a workspace binary, for the benchmarks: the env override of [`path`]
/// when set, else `cargo build --release -p <package> --bin <name>` — the package alone, as the
/// Dockerfiles build it (a workspace build would unify other crates' features into it).
pub fn release_path(name: &str) -> PathBuf {
    let (package, _, override_var) = package_of(name);
    if let Some(p) = std::env::var_os(override_var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    cargo_build(package, name, true);
    target_dir().join("release").join(name)
}

/// `cargo build [--release] -p package --bin name`; panics with cargo's output if it fails.
fn cargo_build(package: &str, name: &str, release: bool) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "-p", package, "--bin", name])
        .args(release.then_some("--release"));
    let (ok, _, err) = crate::control_plane::cluster::run(&mut cmd, None);
    assert!(ok, "`cargo build -p {package} --bin {name}` failed:\n{err}");
}

/// Whether `binary` is newer than its crate, `contract` and the workspace manifests.
fn fresh(binary: &Path, crate_dir: &str) -> bool {
    let root = workspace_root();
    let sources = [crate_dir, "contract", "Cargo.toml", "Cargo.lock"].map(|p| root.join(p));
    binary
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|built| built > newest_source(sources))
}
