//! Reading an image archive back, as an importer would: every reference followed and checked
//! (`index.json` → manifest → configuration and layer; digests, sizes, `rootfs.diff_ids`), and
//! a command run from the unpacked layer with the layer as its root, to show that the image
//! holds everything its binary loads.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest, MediaType, OciLayout};

use crate::error::{Error, Result};
use crate::oci::{ANNOTATION_CONTAINERD_NAME, sha256};

/// An archive that passed [`inspect`].
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The archive.
    pub archive: PathBuf,
    /// The name in the `io.containerd.image.name` annotation.
    pub name: String,
    /// The manifest digest.
    pub digest: String,
    /// The image configuration.
    pub config: ImageConfiguration,
    /// The layer, uncompressed (a tar).
    pub layer: Vec<u8>,
}

/// Reads `archive` and checks that it is one consistent single-image OCI layout: the layout
/// marker, one manifest in the index with its name annotation, every blob's digest and size
/// as its descriptor says, a gzip layer whose uncompressed digest is the configuration's
/// diff_id, and no blob that nothing references.
pub fn inspect(archive: &Path) -> Result<Inspected> {
    let problem = |problem: String| Error::Layout {
        archive: archive.to_owned(),
        problem,
    };
    let mut files = read_files(archive)?;

    let layout: OciLayout = json(&files, "oci-layout", archive)?;
    if layout.image_layout_version() != "1.0.0" {
        return Err(problem(format!(
            "oci-layout: version {}, expected 1.0.0",
            layout.image_layout_version()
        )));
    }
    files.remove("oci-layout");
    let index: ImageIndex = json(&files, "index.json", archive)?;
    files.remove("index.json");
    let [manifest_descriptor] = index.manifests().as_slice() else {
        return Err(problem(format!(
            "index.json: {} manifests, expected 1",
            index.manifests().len()
        )));
    };
    expect_media_type(
        manifest_descriptor.media_type(),
        &MediaType::ImageManifest,
        "index.json manifest",
    )
    .map_err(&problem)?;
    let name = manifest_descriptor
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_CONTAINERD_NAME))
        .ok_or_else(|| {
            problem(format!(
                "index.json: no {ANNOTATION_CONTAINERD_NAME} annotation"
            ))
        })?
        .clone();

    let mut take_blob = |descriptor: &oci_spec::image::Descriptor| -> Result<Vec<u8>> {
        let digest = descriptor.digest().to_string();
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| problem(format!("{digest}: not a sha256 digest")))?;
        let path = format!("blobs/sha256/{hex}");
        let blob = files
            .remove(&path)
            .ok_or_else(|| problem(format!("{path}: missing (or referenced twice)")))?;
        if sha256(&blob) != hex {
            return Err(problem(format!(
                "{path}: content does not match its digest"
            )));
        }
        if blob.len() as u64 != descriptor.size() {
            return Err(problem(format!(
                "{path}: {} bytes, its descriptor says {}",
                blob.len(),
                descriptor.size()
            )));
        }
        Ok(blob)
    };

    let manifest = ImageManifest::from_reader(take_blob(manifest_descriptor)?.as_slice())?;
    if let Some(media_type) = manifest.media_type() {
        expect_media_type(media_type, &MediaType::ImageManifest, "manifest").map_err(&problem)?;
    }
    expect_media_type(
        manifest.config().media_type(),
        &MediaType::ImageConfig,
        "manifest config",
    )
    .map_err(&problem)?;
    let config = ImageConfiguration::from_reader(take_blob(manifest.config())?.as_slice())?;
    let [layer_descriptor] = manifest.layers().as_slice() else {
        return Err(problem(format!(
            "manifest: {} layers, expected 1",
            manifest.layers().len()
        )));
    };
    expect_media_type(
        layer_descriptor.media_type(),
        &MediaType::ImageLayerGzip,
        "layer",
    )
    .map_err(&problem)?;
    let compressed = take_blob(layer_descriptor)?;
    let mut layer = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut layer)
        .map_err(|e| problem(format!("layer: not gzip: {e}")))?;
    if config.rootfs().typ() != "layers" {
        return Err(problem(format!(
            "config: rootfs.type {:?}, expected \"layers\"",
            config.rootfs().typ()
        )));
    }
    let diff_id = format!("sha256:{}", sha256(&layer));
    if config.rootfs().diff_ids().as_slice() != std::slice::from_ref(&diff_id) {
        return Err(problem(format!(
            "config: rootfs.diff_ids {:?}, the layer's uncompressed digest is {diff_id}",
            config.rootfs().diff_ids()
        )));
    }
    if let Some(stray) = files.keys().find(|p| p.starts_with("blobs/sha256/")) {
        return Err(problem(format!("{stray}: referenced by nothing")));
    }
    if let Some(other) = files.keys().next() {
        return Err(problem(format!("{other}: not part of an OCI layout")));
    }
    Ok(Inspected {
        archive: archive.to_owned(),
        name,
        digest: manifest_descriptor.digest().to_string(),
        config,
        layer,
    })
}

/// Unpacks the layer into `dir`.
pub fn unpack(inspected: &Inspected, dir: &Path) -> Result<()> {
    tar::Archive::new(inspected.layer.as_slice())
        .unpack(dir)
        .map_err(Error::io(dir))
}

/// Runs `argv` with the unpacked layer as its root directory and the image's environment:
/// in a new user namespace as its root (`unshare --map-root-user --root`), so no privilege is
/// needed. Only the image's files are there; no `/proc`, `/dev` or network.
pub fn run_in_rootfs(inspected: &Inspected, argv: &[&str]) -> Result<Output> {
    let dir = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
    unpack(inspected, dir.path())?;
    let mut command = Command::new("unshare");
    command
        .arg("--map-root-user")
        .arg(format!("--root={}", dir.path().display()))
        .args(argv)
        .env_clear();
    for pair in inspected
        .config
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default()
    {
        if let Some((key, value)) = pair.split_once('=') {
            command.env(key, value);
        }
    }
    command.output().map_err(|e| Error::Command {
        command: format!("unshare --map-root-user --root=… {}", argv.join(" ")),
        problem: format!("could not start: {e}"),
    })
}

/// Every regular file of the archive by path; directories skipped, anything else refused.
fn read_files(archive: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let file = std::fs::File::open(archive).map_err(Error::io(archive))?;
    let mut tar = tar::Archive::new(file);
    let mut files = BTreeMap::new();
    for entry in tar.entries().map_err(Error::io(archive))? {
        let mut entry = entry.map_err(Error::io(archive))?;
        let path = entry
            .path()
            .map_err(Error::io(archive))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular => {}
            other => {
                return Err(Error::Layout {
                    archive: archive.to_owned(),
                    problem: format!("{path}: a {other:?} entry, expected files and directories"),
                });
            }
        }
        let mut contents = Vec::new();
        entry
            .read_to_end(&mut contents)
            .map_err(Error::io(archive))?;
        if files.insert(path.clone(), contents).is_some() {
            return Err(Error::Layout {
                archive: archive.to_owned(),
                problem: format!("{path}: twice in the archive"),
            });
        }
    }
    Ok(files)
}

fn json<T: serde::de::DeserializeOwned>(
    files: &BTreeMap<String, Vec<u8>>,
    path: &str,
    archive: &Path,
) -> Result<T> {
    let bytes = files.get(path).ok_or_else(|| Error::Layout {
        archive: archive.to_owned(),
        problem: format!("{path}: missing"),
    })?;
    serde_json::from_slice(bytes).map_err(|e| Error::Layout {
        archive: archive.to_owned(),
        problem: format!("{path}: {e}"),
    })
}

fn expect_media_type(found: &MediaType, expected: &MediaType, what: &str) -> Result<(), String> {
    if found == expected {
        Ok(())
    } else {
        Err(format!("{what}: media type {found}, expected {expected}"))
    }
}
