//! The reproducible OCI image-layout archive: what `ctr images import` (and `docker load`,
//! `podman load`, `skopeo copy oci-archive:`) read, written without a container engine.
//!
//! One archive holds `oci-layout`, `index.json` (one manifest, named by the
//! `io.containerd.image.name` annotation), and under `blobs/sha256/` the manifest, the
//! configuration and one gzip layer. The same [`Image`] always gives the same bytes: every tar
//! header has fixed times, owners and order, gzip carries no timestamp, JSON objects are written
//! with sorted keys.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use flate2::Compression;
use oci_spec::image::{
    ANNOTATION_REF_NAME, Arch, ConfigBuilder, Descriptor, DescriptorBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType,
    OciLayoutBuilder, Os, RootFsBuilder, SCHEMA_VERSION, Sha256Digest,
};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::reference::Reference;

/// The annotation containerd reads the image name from when it imports an archive.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Every timestamp in the image: the Unix epoch, so that a rebuild changes no byte.
pub const EPOCH: &str = "1970-01-01T00:00:00Z";

/// The file tree of the image's one layer. Paths are absolute (`/usr/local/bin/x`); parent
/// directories are added (mode 0755, owned by root) when not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rootfs {
    entries: BTreeMap<String, Node>,
}

/// One entry of a [`Rootfs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// File, directory or symbolic link.
    pub kind: Kind,
    /// Permission bits (e.g. `0o755`, `0o1777`).
    pub mode: u32,
    /// Owner uid, also used as the gid.
    pub owner: u32,
}

/// What a [`Node`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file with these contents.
    File(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
}

impl Rootfs {
    /// A directory with its own mode and owner.
    pub fn dir(&mut self, path: &str, mode: u32, owner: u32) -> &mut Self {
        self.insert(path, Kind::Dir, mode, owner)
    }

    /// A regular file owned by root.
    pub fn file(&mut self, path: &str, contents: Vec<u8>, mode: u32) -> &mut Self {
        self.insert(path, Kind::File(contents), mode, 0)
    }

    /// A symbolic link owned by root.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.insert(path, Kind::Symlink(target.to_owned()), 0o777, 0)
    }

    /// The entries, by path without the leading `/`, in the order the layer holds them.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries
            .iter()
            .map(|(path, node)| (path.as_str(), node))
    }

    fn insert(&mut self, path: &str, kind: Kind, mode: u32, owner: u32) -> &mut Self {
        let relative = path.trim_start_matches('/').trim_end_matches('/');
        debug_assert!(
            path.starts_with('/') && relative.split('/').all(|c| !matches!(c, "" | "." | "..")),
            "image paths are absolute and normalised: {path:?}"
        );
        let mut parent = relative;
        while let Some((up, _)) = parent.rsplit_once('/') {
            self.entries.entry(up.to_owned()).or_insert(Node {
                kind: Kind::Dir,
                mode: 0o755,
                owner: 0,
            });
            parent = up;
        }
        self.entries
            .insert(relative.to_owned(), Node { kind, mode, owner });
        self
    }

    /// The layer as an uncompressed tar, byte for byte the same for the same entries.
    pub fn to_tar(&self) -> std::io::Result<Vec<u8>> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, node) in &self.entries {
            let mut header = fixed_header(node.mode, node.owner);
            match &node.kind {
                Kind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut header, format!("{path}/"), std::io::empty())?;
                }
                Kind::File(contents) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(contents.len() as u64);
                    tar.append_data(&mut header, path, contents.as_slice())?;
                }
                Kind::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    tar.append_link(&mut header, path, target)?;
                }
            }
        }
        tar.into_inner()
    }
}

/// A tar header with nothing taken from the machine that writes it.
fn fixed_header(mode: u32, owner: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_mode(mode);
    header.set_uid(owner.into());
    header.set_gid(owner.into());
    header.set_mtime(0);
    header.set_size(0);
    header
}

/// How a container of the image runs, and what the image says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    /// The CPU architecture, as Go names it (`amd64`, `arm64`).
    pub architecture: String,
    /// `uid:gid` (numeric, so that Kubernetes' `runAsNonRoot` can check it), or `None` for root.
    pub user: Option<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// The command; empty for none.
    pub entrypoint: Vec<String>,
    /// Its default arguments; empty for none.
    pub cmd: Vec<String>,
    /// `port/protocol`, e.g. `8443/tcp`.
    pub exposed_ports: Vec<String>,
    /// `org.opencontainers.image.*` and other labels.
    pub labels: BTreeMap<String, String>,
}

/// One image: its name, how it runs, and its one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The name containerd gives it on import.
    pub name: Reference,
    /// Configuration.
    pub config: RunConfig,
    /// The layer's files.
    pub rootfs: Rootfs,
}

/// What an archive holds, as the command prints it and `images.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// The image name, e.g. `localhost/status-reporter:0.1.0`.
    pub name: String,
    /// The manifest digest (`sha256:…`): the image's identity in containerd.
    pub digest: String,
    /// Bytes a node pulls: the manifest, the configuration and the compressed layer.
    pub compressed_size: u64,
    /// Bytes of the unpacked layer tar.
    pub uncompressed_size: u64,
}

/// The archive of `image`, in memory, and what it holds.
pub fn archive(image: &Image) -> Result<(Vec<u8>, Summary)> {
    let layer_tar = image
        .rootfs
        .to_tar()
        .map_err(Error::io("<layer tar in memory>"))?;
    let diff_id = sha256(&layer_tar);
    let layer = gzip(&layer_tar).map_err(Error::io("<layer gzip in memory>"))?;
    let config = canonical_json(&configuration(&image.config, &diff_id)?)?;

    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config)?)
        .layers(vec![descriptor(MediaType::ImageLayerGzip, &layer)?])
        .build()?;
    let manifest = canonical_json(&manifest)?;

    let mut manifest_descriptor = descriptor(MediaType::ImageManifest, &manifest)?;
    manifest_descriptor.set_annotations(Some(
        [
            (
                ANNOTATION_CONTAINERD_NAME.to_owned(),
                image.name.to_string(),
            ),
            (ANNOTATION_REF_NAME.to_owned(), image.name.tag().to_owned()),
        ]
        .into(),
    ));
    let digest = manifest_descriptor.digest().to_string();
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_descriptor])
        .build()?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()?;

    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("oci-layout".to_owned(), canonical_json(&layout)?),
        ("index.json".to_owned(), canonical_json(&index)?),
    ];
    let summary = Summary {
        name: image.name.to_string(),
        digest,
        compressed_size: (manifest.len() + config.len() + layer.len()) as u64,
        uncompressed_size: layer_tar.len() as u64,
    };
    for blob in [manifest, config, layer] {
        files.push((format!("blobs/sha256/{}", sha256(&blob)), blob));
    }

    let mut tar = tar::Builder::new(Vec::new());
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = fixed_header(0o755, 0);
        header.set_entry_type(tar::EntryType::Directory);
        tar.append_data(&mut header, dir, std::io::empty())
            .map_err(Error::io("<archive in memory>"))?;
    }
    for (path, contents) in &files {
        let mut header = fixed_header(0o644, 0);
        header.set_size(contents.len() as u64);
        tar.append_data(&mut header, path, contents.as_slice())
            .map_err(Error::io("<archive in memory>"))?;
    }
    let bytes = tar.into_inner().map_err(Error::io("<archive in memory>"))?;
    Ok((bytes, summary))
}

/// Writes the archive of `image` to `path`, replacing it atomically (a reader never sees half
/// an archive, also when two builds write the same path at once).
pub fn write(image: &Image, path: &Path) -> Result<Summary> {
    let (bytes, summary) = archive(image)?;
    write_atomically(path, &bytes)?;
    Ok(summary)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(Error::io(dir))?;
    file.write_all(bytes).map_err(Error::io(file.path()))?;
    // A temporary file is private (0600); the result is an ordinary readable file.
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(Error::io(file.path()))?;
    file.persist(path)
        .map_err(|e| Error::io(PathBuf::from(path))(e.error))?;
    Ok(())
}

/// The image configuration: platform, run configuration, and the layer's uncompressed digest.
fn configuration(run: &RunConfig, diff_id: &str) -> Result<oci_spec::image::ImageConfiguration> {
    let mut config = ConfigBuilder::default();
    if let Some(user) = &run.user {
        config = config.user(user.clone());
    }
    if !run.env.is_empty() {
        config = config.env(run.env.clone());
    }
    if !run.entrypoint.is_empty() {
        config = config.entrypoint(run.entrypoint.clone());
    }
    if !run.cmd.is_empty() {
        config = config.cmd(run.cmd.clone());
    }
    if !run.exposed_ports.is_empty() {
        config = config.exposed_ports(run.exposed_ports.clone());
    }
    if !run.labels.is_empty() {
        config = config.labels(
            run.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    Ok(ImageConfigurationBuilder::default()
        .created(EPOCH)
        .architecture(Arch::from(run.architecture.as_str()))
        .os(Os::Linux)
        .config(config.build()?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![format!("sha256:{diff_id}")])
                .build()?,
        )
        .build()?)
}

/// A descriptor of `blob`: its media type, digest and size.
fn descriptor(media_type: MediaType, blob: &[u8]) -> Result<Descriptor> {
    Ok(DescriptorBuilder::default()
        .media_type(media_type)
        .digest(Sha256Digest::from_str(&sha256(blob))?)
        .size(blob.len() as u64)
        .build()?)
}

/// JSON with every object's keys sorted: the OCI types keep maps (labels, annotations, exposed
/// ports) in hash maps, whose order changes from run to run.
fn canonical_json(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(value)?;
    value.sort_all_objects();
    Ok(serde_json::to_vec(&value)?)
}

/// gzip at the best compression, with no file name and a zero timestamp.
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

/// The lowercase hex SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
