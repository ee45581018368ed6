//! `target/images/images.json`: every archive built, with the name containerd will give it, its
//! digest and sizes, for scripts and test harnesses that import the images.
//!
//! `images` and `test-images` both update it, possibly at once (parallel test processes), so
//! an update holds a lock on `images.json.lock` and replaces the file atomically.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::oci::{Summary, write_atomically};

/// One built archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The archive's path relative to the images directory, e.g. `test/pause.oci.tar`.
    pub archive: String,
    /// Name, digest and sizes.
    #[serde(flatten)]
    pub summary: Summary,
}

impl Record {
    /// The record of `archive` (a path under `images_dir`).
    pub fn new(images_dir: &Path, archive: &Path, summary: Summary) -> Self {
        Self {
            archive: archive
                .strip_prefix(images_dir)
                .unwrap_or(archive)
                .to_string_lossy()
                .into_owned(),
            summary,
        }
    }

    /// The archive's full path.
    pub fn path(&self, images_dir: &Path) -> PathBuf {
        images_dir.join(&self.archive)
    }
}

/// `<images dir>/images.json`.
pub fn path(images_dir: &Path) -> PathBuf {
    images_dir.join("images.json")
}

/// The records in `images.json`; none when it does not exist yet.
pub fn read(images_dir: &Path) -> Result<Vec<Record>> {
    let path = path(images_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Layout {
            archive: path,
            problem: format!("not an images.json this tool wrote: {e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// Replaces the records of the same archives with `records`, keeps the others, sorted by
/// archive path.
pub fn update(images_dir: &Path, records: &[Record]) -> Result<()> {
    std::fs::create_dir_all(images_dir).map_err(Error::io(images_dir))?;
    let lock_path = images_dir.join("images.json.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(Error::io(&lock_path))?;
    lock.lock().map_err(Error::io(&lock_path))?;
    let mut all = read(images_dir)?;
    all.retain(|old| !records.iter().any(|new| new.archive == old.archive));
    all.extend_from_slice(records);
    all.sort_by(|a, b| a.archive.cmp(&b.archive));
    let mut json = serde_json::to_vec_pretty(&all)?;
    json.push(b'\n');
    write_atomically(&path(images_dir), &json)
    // The lock is released when `lock` is dropped.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(archive: &str, name: &str) -> Record {
        Record {
            archive: archive.to_owned(),
            summary: Summary {
                name: name.to_owned(),
                digest: format!("sha256:{}", crate::oci::sha256(name.as_bytes())),
                compressed_size: 1,
                uncompressed_size: 2,
            },
        }
    }

    #[test]
    fn an_update_replaces_the_same_archives_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), []);
        let reporter = record("status-reporter.oci.tar", "localhost/status-reporter:0.1.0");
        let pause = record("test/pause.oci.tar", "localhost/test/pause:0.1");
        update(dir.path(), &[pause.clone(), reporter]).unwrap();
        // Another tag written to the same file replaces its record.
        let retagged = record("status-reporter.oci.tar", "localhost/status-reporter:dev");
        update(dir.path(), std::slice::from_ref(&retagged)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), [retagged.clone(), pause]);
        assert_eq!(
            retagged.path(dir.path()),
            dir.path().join("status-reporter.oci.tar")
        );
    }

    #[test]
    fn a_file_it_did_not_write_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "{}").unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("images.json: not an images.json"), "{err}");
    }
}
