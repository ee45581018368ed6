//! The images the test node runs: OCI archives written by `cargo xtask images` (the reporter
//! and the webhook, as released) and `cargo xtask test-images` (the pause image and a busybox
//! adapter), imported into the node's containerd when it starts. Every name is under
//! `localhost/`, so a pull could only ever go to loopback; pods use `imagePullPolicy: Never`.

use std::path::PathBuf;
use std::process::Command;

/// The sandbox ("pause") image.
pub const PAUSE: &str = "localhost/test/pause:0.1";

/// The test adapter image: busybox (`sh`, `echo`, `printf`, `sleep`, `dd`, …) as entrypoint-less
/// base for adapters written as `sh -c` scripts.
pub const ADAPTER: &str = "localhost/test/adapter:0.1";

/// `<target>/images`, where the xtask writes the archives and `images.json`.
pub fn dir() -> PathBuf {
    super::binaries::target_dir().join("images")
}

/// The archives, built with the xtask unless they are newer than every source they are made
/// from (the xtask takes seconds even when cargo has nothing to build), so the node always
/// runs the sources under test.
pub fn build() -> Result<Vec<PathBuf>, String> {
    if let Ok(archives) = archives()
        && fresh(&archives)
    {
        return Ok(archives);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for task in ["images", "test-images"] {
        let out = Command::new(&cargo)
            .current_dir(super::binaries::workspace_root())
            .args(["xtask", task])
            .output()
            .map_err(|e| format!("cannot run `cargo xtask {task}`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`cargo xtask {task}` failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    archives()
}

/// The archives the two xtask commands write.
const ARCHIVES: &[&str] = &[
    "status-reporter.oci.tar",
    "status-reporter-webhook.oci.tar",
    "test/pause.oci.tar",
    "test/adapter.oci.tar",
];

/// The directories and files the images are built from.
const SOURCES: &[&str] = &[
    "reporter",
    "webhook",
    "contract",
    "xtask",
    "tests/node",
    "Cargo.toml",
    "Cargo.lock",
];

/// Whether every archive exists and `images.json` is newer than every source.
fn fresh(archives: &[PathBuf]) -> bool {
    let built = match std::fs::metadata(dir().join("images.json")).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(_) => return false,
    };
    let root = super::binaries::workspace_root();
    let mut stack: Vec<PathBuf> = SOURCES.iter().map(|s| root.join(s)).collect();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            stack.extend(
                std::fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if meta.modified().is_ok_and(|m| m >= built) {
            return false;
        }
    }
    let expected = ARCHIVES.iter().map(|a| dir().join(a));
    archives.iter().all(|a| a.is_file()) && expected.into_iter().all(|a| archives.contains(&a))
}

/// One image `images.json` lists.
#[derive(serde::Deserialize)]
struct Record {
    /// The archive, relative to [`dir`].
    archive: String,
    /// The name containerd gives the image.
    name: String,
}

fn records() -> Result<Vec<Record>, String> {
    let path = dir().join("images.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (written by `cargo xtask images`)", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The archives `images.json` lists.
pub(crate) fn archives() -> Result<Vec<PathBuf>, String> {
    Ok(records()?.iter().map(|r| dir().join(&r.archive)).collect())
}

/// The reporter image's name (`localhost/status-reporter:<version>`).
pub fn reporter() -> String {
    named("status-reporter.oci.tar")
}

/// The webhook image's name (`localhost/status-reporter-webhook:<version>`).
pub fn webhook() -> String {
    named("status-reporter-webhook.oci.tar")
}

fn named(archive: &str) -> String {
    let records = records().unwrap_or_else(|e| panic!("{e}"));
    records
        .into_iter()
        .find(|r| r.archive == archive)
        .unwrap_or_else(|| panic!("images.json lists no {archive} (run `cargo xtask images`)"))
        .name
}
