//! Where the control plane's binaries are: `build.sh` builds them once into a versioned cache
//! (reused when present) and prints that directory on its last line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::SystemTime;

use walkdir::WalkDir;

use super::Release;

/// The one line that tells a developer how to get the control plane.
pub(crate) const HOW_TO_BUILD: &str = "the real control-plane suites need Kubernetes and containerd built from their Go modules: run `bash tests/control-plane/build.sh` and `bash tests/control-plane/build.sh --node` (needs Go >= 1.26 and the Go module proxy)";

/// The directory holding `release`'s binaries (`kube-apiserver`, `etcd`, `kubelet`, …): env
/// `STATUS_REPORTER_CONTROL_PLANE_DIR` / `…_OLDEST_DIR`, else `tests/control-plane/build.sh`
/// (warm: prints the cached directory; cold: builds, many minutes).
pub fn bin_dir(release: Release) -> Result<PathBuf, String> {
    match release {
        Release::Current => find_or_build(
            "STATUS_REPORTER_CONTROL_PLANE_DIR",
            None,
            &[
                "etcd",
                "kube-apiserver",
                "kube-controller-manager",
                "kubectl",
                "kubelet",
            ],
        ),
        Release::Oldest => find_or_build(
            "STATUS_REPORTER_CONTROL_PLANE_OLDEST_DIR",
            Some("--oldest"),
            &["etcd", "kube-apiserver"],
        ),
    }
}

/// The directory holding the test node's containerd, its shim and `ctr`: env
/// `STATUS_REPORTER_NODE_DIR`, else `tests/control-plane/build.sh --node`.
pub fn node_bin_dir() -> Result<PathBuf, String> {
    find_or_build(
        "STATUS_REPORTER_NODE_DIR",
        Some("--node"),
        &["containerd", "containerd-shim-runc-v2", "ctr"],
    )
}

/// The `bin` directory env `var` names, else the one `build.sh arg` builds (or finds built);
/// checked to hold `needed`.
fn find_or_build(var: &'static str, arg: Option<&str>, needed: &[&str]) -> Result<PathBuf, String> {
    // Once per process: build.sh's cache check is cheap but prints a line each time.
    static FOUND: Mutex<BTreeMap<&str, Result<PathBuf, String>>> = Mutex::new(BTreeMap::new());
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = found.get(var) {
        return known.clone();
    }
    let dir = match std::env::var_os(var).filter(|d| !d.is_empty()) {
        Some(dir) => check(Path::new(&dir), needed)
            .map_err(|e| format!("{var}={}: {e}", Path::new(&dir).display())),
        None => build(arg, needed),
    };
    let bin = dir.map(|d| d.join("bin"));
    found.insert(var, bin.clone());
    bin
}

/// `build.sh arg`: the directory its last line names, checked to hold `needed`.
fn build(arg: Option<&str>, needed: &[&str]) -> Result<PathBuf, String> {
    let script = workspace_root().join("tests/control-plane/build.sh");
    // build.sh's progress goes to our stderr (a cold build takes long: say why we wait).
    let out = Command::new("bash")
        .arg(&script)
        .args(arg)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}; {HOW_TO_BUILD}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed ({}); {HOW_TO_BUILD}",
            script.display(),
            arg.unwrap_or_default(),
            out.status
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    check(&dir, needed).map_err(|e| format!("build.sh printed {}: {e}", dir.display()))
}

/// `dir`, if its `bin` holds every one of `needed`.
fn check(dir: &Path, needed: &[&str]) -> Result<PathBuf, String> {
    match needed.iter().find(|n| !dir.join("bin").join(n).is_file()) {
        Some(name) => Err(format!("no bin/{name} there")),
        None => Ok(dir.to_path_buf()),
    }
}

/// The newest modification time of the files at `paths` and under them (a `target`
/// directory left out): whether something built from them is fresh.
pub(crate) fn newest_source(paths: impl IntoIterator<Item = PathBuf>) -> SystemTime {
    let walks = paths
        .into_iter()
        .map(|p| WalkDir::new(p).follow_links(true).into_iter());
    let files = walks.flat_map(|w| w.filter_entry(|e| e.file_name() != "target").flatten());
    let times = files.filter(|e| e.file_type().is_file());
    (times.filter_map(|e| e.metadata().ok()?.modified().ok()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The cargo target directory (`CARGO_TARGET_DIR`, else `<workspace>/target`).
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        Some(t) => workspace_root().join(t),
        None => workspace_root().join("target"),
    }
}
