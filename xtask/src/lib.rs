//! `cargo xtask`: the repository's automation, in Rust (the xtask convention).
//!
//! Its one job today: OCI image archives of the two binaries, and of the real-node tests'
//! pause and adapter images, written without a container engine or registry, reproducibly
//! (the same inputs give the same digest). `ctr images import`, `docker load` and
//! `podman load` read them.
//!
//! - [`oci`]: the archive writer (layout, index, manifest, configuration, one gzip layer).
//! - [`images`]: what goes in each image.
//! - [`runtime_deps`]: the loader and shared libraries a binary needs, read from its ELF.
//! - [`check`]: an archive read back and checked; a command run from its unpacked layer.
//! - [`images_json`]: `target/images/images.json`, the list of built archives.
//! - [`workspace`]: `cargo metadata` and the release build.
//!
//! The functions below are what the command line runs; a test harness may call them in-process.

#![forbid(unsafe_code)]

pub mod check;
pub mod error;
pub mod images;
pub mod images_json;
pub mod oci;
pub mod reference;
pub mod runtime_deps;
pub mod workspace;

use std::path::PathBuf;

pub use error::{Error, Result};
use images::{PRODUCTS, Product};
use images_json::Record;
use reference::Reference;
use workspace::Workspace;

/// How `cargo xtask images` names and labels the product images.
#[derive(Debug, Clone)]
pub struct ProductOptions {
    /// Registry and optional path the names start with, e.g. `localhost` (the default) or
    /// `ghcr.io/openshift-hyperfleet`.
    pub registry: String,
    /// The tag; `None` for each package's version.
    pub tag: Option<String>,
    /// The `org.opencontainers.image.revision` label.
    pub revision: String,
    /// Package the binaries already in `<target>/release` instead of building them.
    pub skip_build: bool,
}

impl Default for ProductOptions {
    fn default() -> Self {
        Self {
            registry: "localhost".to_owned(),
            tag: None,
            revision: "unknown".to_owned(),
            skip_build: false,
        }
    }
}

/// Builds the release binaries (unless `skip_build`) and writes
/// `<target>/images/status-reporter.oci.tar` and `status-reporter-webhook.oci.tar`; records
/// them in `images.json`.
pub fn product_images(workspace: &Workspace, options: &ProductOptions) -> Result<Vec<Record>> {
    // Names are checked before the (slow) build.
    let names = PRODUCTS
        .iter()
        .map(|product| {
            let tag = match &options.tag {
                Some(tag) => tag.clone(),
                None => workspace.package(product.package)?.version.clone(),
            };
            Reference::new(&options.registry, product.package, &tag)
        })
        .collect::<Result<Vec<_>>>()?;
    let binaries = PRODUCTS
        .iter()
        .map(|product| release_binary(workspace, product, options.skip_build))
        .collect::<Result<Vec<_>>>()?;
    let images_dir = workspace.images_dir();
    let mut records = Vec::new();
    for ((product, name), binary) in PRODUCTS.iter().zip(names).zip(binaries) {
        let image = product.image(workspace, name, &options.revision, &binary)?;
        let archive = product.archive(&images_dir);
        let summary = oci::write(&image, &archive)?;
        records.push(Record::new(&images_dir, &archive, summary));
    }
    images_json::update(&images_dir, &records)?;
    Ok(records)
}

fn release_binary(workspace: &Workspace, product: &Product, skip_build: bool) -> Result<PathBuf> {
    if !skip_build {
        return workspace.build_release(product.package, product.binary());
    }
    let path = workspace.release_binary(product.binary());
    if !path.is_file() {
        return Err(Error::NotBuilt {
            path,
            package: product.package.to_owned(),
        });
    }
    Ok(path)
}

/// Writes the real-node tests' images: `<target>/images/test/pause.oci.tar`
/// ([`images::PAUSE_NAME`]) and `adapter.oci.tar` ([`images::ADAPTER_NAME`]); records them in
/// `images.json`.
pub fn test_images(workspace: &Workspace) -> Result<Vec<Record>> {
    let images_dir = workspace.images_dir();
    let test_dir = images::test_images_dir(&images_dir);
    // Check for busybox before compiling anything.
    let adapter = images::adapter()?;
    let pause = images::pause(workspace, &test_dir.join("build"))?;
    let mut records = Vec::new();
    for (image, file) in [(pause, "pause.oci.tar"), (adapter, "adapter.oci.tar")] {
        let archive = test_dir.join(file);
        let summary = oci::write(&image, &archive)?;
        records.push(Record::new(&images_dir, &archive, summary));
    }
    images_json::update(&images_dir, &records)?;
    Ok(records)
}

/// Reads back every archive `images.json` lists, checks its layout and that it is the image
/// recorded, and runs a command from its unpacked layer: the product binaries' `--version`
/// (their loader and libraries are complete), the adapter's shell. Returns one line per image.
pub fn check_images(workspace: &Workspace) -> Result<Vec<String>> {
    let images_dir = workspace.images_dir();
    let records = images_json::read(&images_dir)?;
    if records.is_empty() {
        return Err(Error::Layout {
            archive: images_json::path(&images_dir),
            problem: "lists no image: run `cargo xtask images` or `cargo xtask test-images` first"
                .to_owned(),
        });
    }
    let mut lines = Vec::new();
    for record in &records {
        let archive = record.path(&images_dir);
        let inspected = check::inspect(&archive)?;
        let mismatch = |problem: String| Error::Layout {
            archive: archive.clone(),
            problem,
        };
        if inspected.name != record.summary.name || inspected.digest != record.summary.digest {
            return Err(mismatch(format!(
                "holds {} {}, images.json says {} {}",
                inspected.name, inspected.digest, record.summary.name, record.summary.digest
            )));
        }
        let entrypoint = inspected
            .config
            .config()
            .as_ref()
            .and_then(|c| c.entrypoint().clone())
            .unwrap_or_default();
        let (argv, expected) = match PRODUCTS.iter().find(|p| entrypoint == [p.binary_path()]) {
            Some(product) => (
                vec![entrypoint[0].as_str(), "--version"],
                format!("{} ", product.binary()),
            ),
            None if inspected.name == images::ADAPTER_NAME => (
                vec!["/bin/sh", "-c", "printf 'adapter %s\\n' ok"],
                "adapter ok".to_owned(),
            ),
            // The pause program only waits for a signal: its layout is what can be checked.
            None => {
                lines.push(format!("{}  layout ok", inspected.name));
                continue;
            }
        };
        let output = check::run_in_rootfs(&inspected, &argv)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !stdout.starts_with(&expected) {
            return Err(mismatch(format!(
                "`{}` in the unpacked layer: {}, stdout {:?}, stderr {:?}",
                argv.join(" "),
                output.status,
                stdout,
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        lines.push(format!(
            "{}  layout ok, `{}` printed {:?}",
            inspected.name,
            argv.join(" "),
            stdout.trim_end()
        ));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace_with_empty_target() -> (Workspace, tempfile::TempDir) {
        let target = tempfile::tempdir().unwrap();
        let mut workspace = Workspace::current().unwrap();
        workspace.target_dir = target.path().to_owned();
        (workspace, target)
    }

    #[test]
    fn skip_build_without_a_build_names_the_binary_and_the_command() {
        let (workspace, target) = workspace_with_empty_target();
        let options = ProductOptions {
            skip_build: true,
            ..ProductOptions::default()
        };
        let err = product_images(&workspace, &options)
            .unwrap_err()
            .to_string();
        let binary = target.path().join("release/status-reporter");
        assert!(
            err.starts_with(&format!("{}: not found", binary.display()))
                && err.contains(
                    "cargo build --release --locked -p status-reporter --bin status-reporter"
                )
                && err.contains("--skip-build"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_name_is_refused_before_anything_is_built() {
        let (workspace, target) = workspace_with_empty_target();
        for (registry, tag) in [("Registry.Example.com", None), ("localhost", Some("a b"))] {
            let options = ProductOptions {
                registry: registry.to_owned(),
                tag: tag.map(str::to_owned),
                ..ProductOptions::default()
            };
            let err = product_images(&workspace, &options).unwrap_err();
            assert!(matches!(err, Error::ImageName { .. }), "{err}");
        }
        assert!(std::fs::read_dir(target.path()).unwrap().next().is_none());
    }
}
