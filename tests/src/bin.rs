//! Locating (and building once per test process) the workspace's real binaries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The workspace root (the parent of this crate's directory).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The package and env override of each binary we know.
fn package_of(name: &str) -> (&'static str, &'static str) {
    match name {
        "status-reporter" => ("status-reporter", "STATUS_REPORTER_BIN"),
        "status-reporter-webhook" => ("status-reporter-webhook", "STATUS_REPORTER_WEBHOOK_BIN"),
        "control-plane" => ("status-reporter-tests", "STATUS_REPORTER_CONTROL_PLANE_BIN"),
        other => panic!(
            "stand-in: unknown binary {other:?}; accepted: \"status-reporter\", \"status-reporter-webhook\", \"control-plane\""
        ),
    }
}

/// Path of a workspace binary (`"status-reporter"` | `"status-reporter-webhook"`). Env
/// `STATUS_REPORTER_BIN` / `STATUS_REPORTER_WEBHOOK_BIN` names a prebuilt binary. Otherwise the
/// binary cargo built for this test run (`target/debug/<name>`, which a workspace test build
/// makes) is used when it is newer than every source it is built from; else it is built once
/// per test process with `cargo build -p <package> --bin <name>` (honours `CARGO_TARGET_DIR`,
/// and `--release` when env `STAND_IN_RELEASE=1`). Rebuilding only when stale matters: a
/// package-only build resolves features differently from the workspace test build, so
/// building every time would make the two overwrite each other's binary on every run. Panics
/// with cargo's output if the build fails.
pub fn path(name: &str) -> PathBuf {
    let (package, override_var) = package_of(name);
    if let Some(p) = std::env::var_os(override_var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "stand-in: {override_var}={} is not a file",
            p.display()
        );
        return p;
    }
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let root = workspace_root();
    let release = std::env::var("STAND_IN_RELEASE").is_ok_and(|v| v == "1");
    let target = target_dir(&root);
    let existing = target
        .join(if release { "release" } else { "debug" })
        .join(name);
    if fresh(&existing, &root, package) {
        built.insert(name.to_owned(), existing.clone());
        return existing;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--quiet", "-p", package, "--bin", name]);
    if release {
        cmd.arg("--release");
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("stand-in: cannot run cargo to build {name}: {e}"));
    assert!(
        output.status.success(),
        "stand-in: `cargo build -p {package} --bin {name}` failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = target
        .join(if release { "release" } else { "debug" })
        .join(name);
    assert!(
        path.is_file(),
        "stand-in: built {name} but {} does not exist",
        path.display()
    );
    built.insert(name.to_owned(), path.clone());
    path
}

/// The release build of a workspace binary, for the benchmarks: the env override of [`path`]
/// when set, else `cargo build --release -p <package> --bin <name>` — the package alone, as the
/// Dockerfiles build it (a workspace build would unify other crates' features into it).
/// Panics if cargo fails.
pub fn release_path(name: &str) -> PathBuf {
    let (package, override_var) = package_of(name);
    if let Some(p) = std::env::var_os(override_var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            package,
            "--bin",
            name,
        ])
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
    assert!(
        status.success(),
        "cargo build --release -p {package} --bin {name} failed"
    );
    target_dir(&root).join("release").join(name)
}

/// `CARGO_TARGET_DIR` (relative to the workspace root), else `target`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        Some(t) => root.join(t),
        None => root.join("target"),
    }
}

/// Whether `binary` exists and is newer than every source of `package`: its crate directory,
/// the `contract` crate both binaries build on, and the workspace manifests.
fn fresh(binary: &Path, root: &Path, package: &str) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let crate_dir = match package {
        "status-reporter" => "reporter",
        "status-reporter-webhook" => "webhook",
        _ => "tests",
    };
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut stack = vec![
        root.join(crate_dir),
        root.join("contract"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(modified);
        }
    }
    built > newest
}
