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
        run(&mut self.release_build(package, bin), false)?;
        Ok(self.release_binary(bin))
    }

    /// `cargo build --release --locked -p <package> --bin <bin>`, in the environment of the
    /// shell `cargo xtask` was typed in.
    fn release_build(&self, package: &str, bin: &str) -> Command {
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
        // `cargo run` hands this process its own package's CARGO_MANIFEST_DIR and CARGO_PKG_*.
        // ring's build script reruns when those differ from the last build's, so this build and
        // the same command typed in a shell would invalidate each other: a full LTO rebuild of
        // the binary every time. The build gets the environment the shell had.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || matches!(
                    key.as_ref(),
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                )
            {
                command.env_remove(key.as_ref());
            }
        }
        command
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

#[cfg(test)]
mod tests {
    use super::*;

    /// cargo gives its test processes, as it gives `cargo run`, the package's variables.
    #[test]
    fn the_release_build_runs_without_the_variables_cargo_run_sets() {
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let workspace = Workspace::current().unwrap();
        let command = workspace.release_build("status-reporter", "status-reporter");
        let removed: Vec<_> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key.to_string_lossy().into_owned())
            .collect();
        for key in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
        ] {
            assert!(removed.iter().any(|k| k == key), "{key} kept: {removed:?}");
        }
        assert!(!removed.iter().any(|k| k == "CARGO_HOME" || k == "PATH"));
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
        assert_eq!(
            args,
            [
                "build",
                "--release",
                "--locked",
                "-p",
                "status-reporter",
                "--bin",
                "status-reporter"
            ]
        );
    }
}
