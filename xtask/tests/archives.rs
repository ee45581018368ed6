//! The archive a product image is written to, read back: reproducible, consistent from
//! `index.json` down to the layer's uncompressed digest, and complete enough that the binary
//! starts with the layer as its root directory and nothing from the host.
//!
//! The binary packaged here is this crate's own (a dynamically linked Rust program like the
//! product binaries, linking the same C runtime), so the suite needs no release build;
//! `cargo xtask check-images` does the same for the real images.

use std::io::Read;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use xtask::check::{inspect, run_in_rootfs};
use xtask::images::{NONROOT, REPORTER};
use xtask::oci::{self, Image};
use xtask::reference::Reference;
use xtask::runtime_deps::read_elf;
use xtask::workspace::Workspace;

fn stand_in_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xtask"))
}

/// The reporter's image, with this crate's binary in place of the reporter's.
fn image() -> Image {
    let workspace = Workspace::current().expect("cargo metadata");
    let name = Reference::new("localhost", "status-reporter", "stand-in").unwrap();
    REPORTER
        .image(&workspace, name, "unknown", &stand_in_binary())
        .expect("image")
}

fn written(dir: &Path) -> (PathBuf, oci::Summary) {
    let path = dir.join("image.oci.tar");
    let summary = oci::write(&image(), &path).expect("write");
    (path, summary)
}

#[test]
fn the_same_inputs_give_the_same_archive_byte_for_byte() {
    // Two images from the files, read twice.
    let (first, first_summary) = oci::archive(&image()).unwrap();
    let (second, second_summary) = oci::archive(&image()).unwrap();
    assert_eq!(first_summary, second_summary);
    assert!(first == second, "two archives of the same image differ");

    let dir = tempfile::tempdir().unwrap();
    let (path, summary) = written(dir.path());
    assert_eq!(summary, first_summary);
    assert!(std::fs::read(&path).unwrap() == first);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "an ordinary readable file");
}

#[test]
fn an_archive_reads_back_consistent_and_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (path, summary) = written(dir.path());
    let inspected = inspect(&path).expect("a consistent layout");
    assert_eq!(inspected.name, "localhost/status-reporter:stand-in");
    assert_eq!(inspected.digest, summary.digest);
    assert_eq!(inspected.layer.len() as u64, summary.uncompressed_size);

    let config = inspected.config.config().clone().expect("config");
    assert_eq!(config.user().as_deref(), Some("65532:65532"));
    assert_eq!(
        config.entrypoint().as_deref(),
        Some(&["/usr/local/bin/status-reporter".to_owned()][..])
    );
    assert_eq!(inspected.config.architecture().to_string(), "amd64");
    assert_eq!(inspected.config.os().to_string(), "linux");

    // The layer: nothing from the machine that wrote it, in a fixed order.
    let interpreter = read_elf(&stand_in_binary()).unwrap().interpreter.unwrap();
    let mut tar = tar::Archive::new(inspected.layer.as_slice());
    let (mut paths, mut files) = (Vec::new(), Vec::new());
    for entry in tar.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        let path = entry.path().unwrap().display().to_string();
        let owner = if path == "home/nonroot/" {
            u64::from(NONROOT)
        } else {
            0
        };
        assert_eq!(header.mtime().unwrap(), 0, "{path}");
        assert_eq!(
            (header.uid().unwrap(), header.gid().unwrap()),
            (owner, owner),
            "{path}"
        );
        let path = format!("/{}", path.trim_end_matches('/'));
        if header.entry_type().is_file() {
            files.push(path.clone());
        }
        paths.push(path);
    }
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    // The binary, its loader and libraries, the nonroot user: nothing else (no certificates,
    // no shell, no package database).
    let libc = files
        .iter()
        .find(|p| p.ends_with("/libc.so.6"))
        .expect("libc")
        .clone();
    let lib_dir = Path::new(&libc).parent().unwrap();
    for file in &files {
        assert!(
            [
                "/usr/local/bin/status-reporter",
                interpreter.as_str(),
                "/etc/passwd",
                "/etc/group"
            ]
            .contains(&file.as_str())
                || (Path::new(file).parent() == Some(lib_dir) && file.contains(".so")),
            "{file} in the image: {files:?}"
        );
    }
    assert!(paths.contains(&"/home/nonroot".to_owned()), "{paths:?}");

    // gzip without a timestamp (bytes 4..8 of the header).
    let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
    let mut largest = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut blob = Vec::new();
        entry.unwrap().read_to_end(&mut blob).unwrap();
        if blob.len() > largest.len() {
            largest = blob;
        }
    }
    assert_eq!(&largest[..2], &[0x1f, 0x8b], "the layer is gzip");
    assert_eq!(&largest[4..8], &[0, 0, 0, 0], "gzip mtime");
}

#[test]
fn the_binary_starts_from_the_image_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = written(dir.path());
    let inspected = inspect(&path).unwrap();
    let output =
        run_in_rootfs(&inspected, &["/usr/local/bin/status-reporter", "--help"]).expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test-images"),
        "{}: stdout {stdout:?}, stderr {:?}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    // The same run without libc fails: the run above used the image's, not the host's.
    let complete = image();
    let without_libc = Image {
        rootfs: {
            let mut rootfs = xtask::oci::Rootfs::default();
            for (path, node) in complete.rootfs.entries() {
                if !path.ends_with("libc.so.6")
                    && let xtask::oci::Kind::File(contents) = &node.kind
                {
                    rootfs.file(&format!("/{path}"), contents.clone(), node.mode);
                }
            }
            rootfs
        },
        ..complete
    };
    let broken = dir.path().join("broken.oci.tar");
    oci::write(&without_libc, &broken).unwrap();
    let output = run_in_rootfs(
        &inspect(&broken).unwrap(),
        &["/usr/local/bin/status-reporter"],
    )
    .expect("run");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("libc.so.6"),
        "{:?}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Rewrites the archive at `path`, passing each file's path and contents through `change`
/// (`None` drops it), then appending `extra`.
fn rewrite(
    path: &Path,
    change: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>,
    extra: Option<(&str, &[u8])>,
) {
    let mut files = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_dir() {
            continue;
        }
        let name = entry.path().unwrap().display().to_string();
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).unwrap();
        if let Some(contents) = change(&name, contents) {
            files.push((name, contents));
        }
    }
    if let Some((name, contents)) = extra {
        files.push((name.to_owned(), contents.to_vec()));
    }
    let mut builder = tar::Builder::new(Vec::new());
    for (name, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, name, contents.as_slice())
            .unwrap();
    }
    std::fs::write(path, builder.into_inner().unwrap()).unwrap();
}

/// Breaks the archive at a path.
type Breaker<'a> = Box<dyn Fn(&Path) + 'a>;

#[test]
fn reading_back_names_each_inconsistency() {
    let dir = tempfile::tempdir().unwrap();
    let (path, summary) = written(dir.path());
    let original = std::fs::read(&path).unwrap();
    let layer_digest = {
        let inspected = inspect(&path).unwrap();
        format!("sha256:{}", oci::sha256(&inspected.layer))
    };
    assert!(!layer_digest.is_empty());
    let largest = |name: &str, contents: &Vec<u8>| {
        name.starts_with("blobs/") && contents.len() as u64 > summary.compressed_size / 2
    };

    let cases: Vec<(&str, Breaker)> = vec![
        (
            "content does not match its digest",
            Box::new(|p| {
                rewrite(
                    p,
                    |name, mut contents| {
                        if largest(name, &contents) {
                            let middle = contents.len() / 2;
                            contents[middle] ^= 0xff;
                        }
                        Some(contents)
                    },
                    None,
                )
            }),
        ),
        (
            "referenced by nothing",
            Box::new(|p| {
                let stray = b"stray";
                let name = format!("blobs/sha256/{}", oci::sha256(stray));
                rewrite(p, |_, c| Some(c), Some((&name, stray)))
            }),
        ),
        (
            "no io.containerd.image.name annotation",
            Box::new(|p| {
                rewrite(
                    p,
                    |name, contents| {
                        Some(if name == "index.json" {
                            String::from_utf8(contents)
                                .unwrap()
                                .replace("io.containerd.image.name", "x")
                                .into_bytes()
                        } else {
                            contents
                        })
                    },
                    None,
                )
            }),
        ),
        (
            "missing",
            Box::new(|p| rewrite(p, |name, c| (!largest(name, &c)).then_some(c), None)),
        ),
        (
            "oci-layout: missing",
            Box::new(|p| rewrite(p, |name, c| (name != "oci-layout").then_some(c), None)),
        ),
    ];
    for (expected, break_it) in cases {
        std::fs::write(&path, &original).unwrap();
        break_it(&path);
        let err = inspect(&path).expect_err(expected).to_string();
        assert!(err.contains(expected), "expected {expected:?}, got {err}");
    }
}
