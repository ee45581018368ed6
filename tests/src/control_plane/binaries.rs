//! Where the control plane's binaries are: `build.sh` builds them once into a versioned cache
//! (reused when present) and prints that directory on its last line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::Release;

/// The one line that tells a developer how to get the control plane.
pub(crate) const HOW_TO_BUILD: &str = "the real control-plane suites need Kubernetes built from its Go modules: run `bash tests/control-plane/build.sh` (needs Go >= 1.26 and the Go module proxy)";

/// The directory holding `release`'s binaries (`kube-apiserver`, `etcd`, …).
///
/// Env `STATUS_REPORTER_CONTROL_PLANE_DIR` (current) / `STATUS_REPORTER_CONTROL_PLANE_OLDEST_DIR`
/// names a built directory; otherwise `tests/control-plane/build.sh` runs (a warm call only
/// prints the cached directory; a cold one builds, which takes many minutes).
pub fn bin_dir(release: Release) -> Result<PathBuf, String> {
    // Once per process: build.sh's cache check is cheap but prints a line each time.
    static CURRENT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static OLDEST: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let cell = match release {
        Release::Current => &CURRENT,
        Release::Oldest => &OLDEST,
    };
    cell.get_or_init(|| find_or_build(release)).clone()
}

fn find_or_build(release: Release) -> Result<PathBuf, String> {
    let var = match release {
        Release::Current => "STATUS_REPORTER_CONTROL_PLANE_DIR",
        Release::Oldest => "STATUS_REPORTER_CONTROL_PLANE_OLDEST_DIR",
    };
    if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        check(&dir, release).map_err(|e| format!("{var}={}: {e}", dir.display()))?;
        return Ok(dir.join("bin"));
    }
    let script = workspace_root().join("tests/control-plane/build.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script);
    if release == Release::Oldest {
        cmd.arg("--oldest");
    }
    // build.sh's progress goes to our stderr (a cold build takes long: say why we wait).
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}; {HOW_TO_BUILD}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}); {HOW_TO_BUILD}",
            script.display(),
            out.status
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    check(&dir, release).map_err(|e| format!("build.sh printed {}: {e}", dir.display()))?;
    Ok(dir.join("bin"))
}

fn check(dir: &Path, release: Release) -> Result<(), String> {
    let mut needed = vec!["etcd", "kube-apiserver"];
    if release == Release::Current {
        needed.extend(["kube-controller-manager", "kubectl"]);
    }
    for name in needed {
        if !dir.join("bin").join(name).is_file() {
            return Err(format!("no bin/{name} there"));
        }
    }
    Ok(())
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
