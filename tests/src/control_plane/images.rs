//! The images the test node runs: OCI archives of `cargo xtask images` (the reporter and the
//! webhook, as released) and `cargo xtask test-images` (pause, a busybox adapter), all under
//! `localhost/` (never pulled). Built when a test first needs the node
//! ([`super::Cluster::node`]), not when the control plane starts: after a change that is a
//! release build of minutes, which only the node suites should wait for.

use std::path::{Path, PathBuf};
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

/// Imports the images (see [`build`]) into the node of the run directory `run`, each unless
/// its containerd holds the digest.
pub(crate) fn import(run: &Path) -> Result<(), String> {
    let records = build()?;
    let ctr = super::binaries::node_bin_dir()?.join("ctr");
    let ctr = |args: &[&str]| -> Result<String, String> {
        let mut cmd = Command::new(&ctr);
        cmd.arg("--address").arg(run.join("node/containerd.sock"));
        let (ok, out, err) = super::cluster::run(cmd.args(["-n", "k8s.io"]).args(args), None);
        let failed = || format!("ctr {}: {}", args.join(" "), err.trim());
        ok.then_some(out).ok_or_else(failed)
    };
    let held = ctr(&["images", "ls"])?;
    for record in records.iter().filter(|r| !held.contains(&r.digest)) {
        ctr(&[
            "images",
            "import",
            &dir().join(&record.archive).to_string_lossy(),
        ])?;
    }
    Ok(())
}

/// The archives' records, built with the xtask unless newer than every source (the xtask
/// takes seconds even when cargo has nothing to build); one process at a time (a lock file).
pub fn build() -> Result<Vec<Record>, String> {
    let lock = super::supervisor::lock(&dir().join("harness.lock"))?;
    if let Ok(records) = records()
        && fresh(&records)
    {
        return Ok(records);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for task in ["images", "test-images"] {
        let mut xtask = Command::new(&cargo);
        xtask.current_dir(super::binaries::workspace_root());
        let (ok, _, err) = super::cluster::run(xtask.args(["xtask", task]), None);
        if !ok {
            return Err(format!("`cargo xtask {task}` failed:\n{err}"));
        }
    }
    drop(lock);
    records()
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
fn fresh(records: &[Record]) -> bool {
    let root = super::binaries::workspace_root();
    let built = std::fs::metadata(dir().join("images.json")).and_then(|m| m.modified());
    built.is_ok_and(|built| built > super::newest_source(SOURCES.iter().map(|s| root.join(s))))
        && ARCHIVES
            .iter()
            .all(|a| records.iter().any(|r| r.archive == *a))
        && records.iter().all(|r| dir().join(&r.archive).is_file())
}

/// One image `images.json` lists.
#[derive(serde::Deserialize)]
pub struct Record {
    /// The archive, relative to [`dir`].
    pub archive: String,
    /// The name containerd gives the image.
    pub name: String,
    /// The manifest digest: the image's identity in containerd.
    pub digest: String,
}

fn records() -> Result<Vec<Record>, String> {
    let path = dir().join("images.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (written by `cargo xtask images`)", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
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
