//! The workspace as cargo sees it (`cargo metadata`): where build output goes, and the package
//! facts the image labels repeat (name, version, description, license, repository), so that
//! `Cargo.toml` stays their one source.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The workspace this xtask belongs to.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The directory of the root `Cargo.toml`.
    pub root: PathBuf,
    /// Cargo's target directory (`CARGO_TARGET_DIR` and `build.target-dir` honoured).
    pub target_dir: PathBuf,
    packages: Vec<Package>,
}

/// A workspace member's facts, from its `Cargo.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
    /// `description`.
    pub description: Option<String>,
    /// `license`.
    pub license: Option<String>,
    /// `repository`.
    pub repository: Option<String>,
    /// Its `Cargo.toml`.
    pub manifest_path: PathBuf,
}

#[derive(Deserialize)]
struct Metadata {
    workspace_root: PathBuf,
    target_directory: PathBuf,
    packages: Vec<Package>,
}

impl Workspace {
    /// The workspace this crate was compiled in.
    pub fn current() -> Result<Self> {
        Self::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
    }

    /// The workspace of `manifest` (a root `Cargo.toml`).
    pub fn load(manifest: &Path) -> Result<Self> {
        let mut command = cargo();
        command
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--manifest-path",
            ])
            .arg(manifest);
        let output = run(&mut command, true)?;
        let metadata: Metadata = serde_json::from_slice(&output)
            .map_err(|e| Error::Metadata(format!("unexpected output: {e}")))?;
        Ok(Self {
            root: metadata.workspace_root,
            target_dir: metadata.target_directory,
            packages: metadata.packages,
        })
    }

    /// Every member.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// The member named `name`.
    pub fn package(&self, name: &str) -> Result<&Package> {
        self.packages
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::Metadata(format!("no workspace member named {name}")))
    }

    /// Where the images go: `<target>/images`.
    pub fn images_dir(&self) -> PathBuf {
        self.target_dir.join("images")
    }

    /// Builds `bin` of `package` exactly as the Dockerfiles and CI do, and returns its path.
    pub fn build_release(&self, package: &str, bin: &str) -> Result<PathBuf> {
        let mut command = cargo();
        command.current_dir(&self.root).args([
            "build",
            "--release",
            "--locked",
            "-p",
            package,
            "--bin",
            bin,
        ]);
        run(&mut command, false)?;
        Ok(self.release_binary(bin))
    }

    /// Where `cargo build --release` leaves `bin`.
    pub fn release_binary(&self, bin: &str) -> PathBuf {
        self.target_dir.join("release").join(bin)
    }
}

/// The cargo that runs this xtask (`$CARGO`), else `cargo` from `PATH`.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `command`, its stderr passed through; returns its stdout when `capture` is set.
pub fn run(command: &mut Command, capture: bool) -> Result<Vec<u8>> {
    let line = format!("{command:?}");
    let failed = |problem: String| Error::Command {
        command: line.clone(),
        problem,
    };
    if capture {
        let output = command
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| failed(format!("could not start: {e}")))?;
        if !output.status.success() {
            return Err(failed(format!("exited with {}", output.status)));
        }
        Ok(output.stdout)
    } else {
        let status = command
            .status()
            .map_err(|e| failed(format!("could not start: {e}")))?;
        if !status.success() {
            return Err(failed(format!("exited with {status}")));
        }
        Ok(Vec::new())
    }
}
