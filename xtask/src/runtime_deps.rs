//! What an ELF executable needs at run time: its dynamic loader and the shared libraries it
//! names (`DT_NEEDED`), transitively, read from the files themselves rather than from `ldd`.
//!
//! The image has no `ld.so.cache`, so its loader finds libraries only in its built-in default
//! directories. The libraries are therefore looked up in, and placed into, the directory that
//! holds the host's loader (Debian: `/usr/lib/x86_64-linux-gnu`), one of those defaults; a
//! library the host finds elsewhere (through `ld.so.conf`, `RUNPATH`) is refused by name
//! instead of giving an image that fails to start.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use object::Endianness;
use object::elf::{DT_NEEDED, EM_AARCH64, EM_X86_64, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};

use crate::error::{Error, Result};

/// The facts of one ELF file that decide what goes into an image with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    /// The CPU architecture, as Go and OCI name it (`amd64`, `arm64`).
    pub architecture: &'static str,
    /// The dynamic loader (`PT_INTERP`), e.g. `/lib64/ld-linux-x86-64.so.2`; `None` when the
    /// file is statically linked.
    pub interpreter: Option<String>,
    /// The shared libraries it names (`DT_NEEDED`), e.g. `libc.so.6`.
    pub needed: Vec<String>,
}

/// Reads the ELF facts of the file at `path` (64-bit x86_64 or aarch64).
pub fn read_elf(path: &Path) -> Result<Elf> {
    let data = std::fs::read(path).map_err(Error::io(path))?;
    let bad = |e: object::read::Error| Error::Elf {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let header = FileHeader64::<Endianness>::parse(data.as_slice()).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    let architecture = match header.e_machine(endian) {
        EM_X86_64 => "amd64",
        EM_AARCH64 => "arm64",
        machine => {
            return Err(Error::UnsupportedMachine {
                path: path.to_owned(),
                machine,
            });
        }
    };
    let mut interpreter = None;
    for segment in header
        .program_headers(endian, data.as_slice())
        .map_err(bad)?
    {
        if let Some(interp) = segment.interpreter(endian, data.as_slice()).map_err(bad)? {
            interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
    }
    let sections = header.sections(endian, data.as_slice()).map_err(bad)?;
    let dynamic = sections
        .dynamic_table(endian, data.as_slice())
        .map_err(bad)?;
    let needed = dynamic
        .iter()
        .filter(|entry| entry.tag == DT_NEEDED)
        .map(|entry| {
            dynamic
                .string(entry)
                .map(|name| String::from_utf8_lossy(name).into_owned())
        })
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    Ok(Elf {
        architecture,
        interpreter,
        needed,
    })
}

/// A file an executable needs at run time: its path in the image and the host file it is
/// copied from (symbolic links resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeFile {
    /// Absolute path inside the image.
    pub image_path: String,
    /// The real file on this machine.
    pub host_path: PathBuf,
}

/// The loader and every shared library `binary` needs, transitively, sorted by image path;
/// empty for a statically linked file.
pub fn runtime_files(binary: &Path) -> Result<Vec<RuntimeFile>> {
    let elf = read_elf(binary)?;
    let Some(interpreter) = elf.interpreter else {
        return Ok(Vec::new());
    };
    let loader = std::fs::canonicalize(&interpreter).map_err(Error::io(&interpreter))?;
    let loader_name = Path::new(&interpreter)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lib_dir = loader.parent().unwrap_or(Path::new("/")).to_owned();
    let search = search_dirs(&lib_dir);

    let mut files = BTreeMap::from([(interpreter.clone(), loader)]);
    let mut queue: VecDeque<(PathBuf, String)> = elf
        .needed
        .into_iter()
        .map(|name| (binary.to_owned(), name))
        .collect();
    while let Some((needer, name)) = queue.pop_front() {
        let image_path = format!("{}/{name}", lib_dir.display());
        // The loader is already loaded under its own name (libc names it too).
        if name == loader_name || files.contains_key(&image_path) {
            continue;
        }
        let found = (!name.contains('/'))
            .then(|| {
                search
                    .iter()
                    .map(|dir| dir.join(&name))
                    .find(|p| p.is_file())
            })
            .flatten()
            .ok_or_else(|| Error::MissingLibrary {
                binary: needer.clone(),
                library: name.clone(),
                searched: search
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let real = std::fs::canonicalize(&found).map_err(Error::io(&found))?;
        queue.extend(
            read_elf(&real)?
                .needed
                .into_iter()
                .map(|next| (real.clone(), next)),
        );
        files.insert(image_path, real);
    }
    Ok(files
        .into_iter()
        .map(|(image_path, host_path)| RuntimeFile {
            image_path,
            host_path,
        })
        .collect())
}

/// The loader's own directory first, then the same multiarch directory under `/lib` and
/// `/usr/lib` (one and the same on a merged-`/usr` host).
fn search_dirs(lib_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![lib_dir.to_owned()];
    if let Some(name) = lib_dir.file_name() {
        for base in ["/lib", "/usr/lib"] {
            let dir = Path::new(base).join(name);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary is a dynamically linked Rust program, as the product binaries are.
    #[test]
    fn a_rust_binary_needs_its_loader_and_libc_all_from_the_loader_directory() {
        let me = std::env::current_exe().unwrap();
        let elf = read_elf(&me).unwrap();
        let interpreter = elf.interpreter.expect("dynamically linked");
        assert!(
            elf.needed.iter().any(|n| n == "libc.so.6"),
            "{:?}",
            elf.needed
        );

        let files = runtime_files(&me).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.image_path.as_str()).collect();
        assert!(paths.contains(&interpreter.as_str()), "{paths:?}");
        let libc = files
            .iter()
            .find(|f| f.image_path.ends_with("/libc.so.6"))
            .expect("libc");
        let lib_dir = Path::new(&libc.image_path).parent().unwrap();
        for file in &files {
            assert!(file.host_path.is_file(), "{file:?}");
            assert!(
                file.image_path == interpreter
                    || Path::new(&file.image_path).parent() == Some(lib_dir),
                "{file:?} outside {}",
                lib_dir.display()
            );
        }
    }

    #[test]
    fn a_static_binary_needs_nothing() {
        // Debian's busybox-static; the adapter image needs it anyway.
        let busybox = Path::new("/bin/busybox");
        let elf = read_elf(busybox).expect("apt-get install busybox-static");
        assert_eq!(elf.interpreter, None);
        assert!(runtime_files(busybox).unwrap().is_empty());
    }

    #[test]
    fn a_file_that_is_not_elf_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        let err = read_elf(&path).unwrap_err().to_string();
        assert!(err.contains("script: not an ELF file"), "{err}");
    }
}
