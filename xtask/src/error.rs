//! The one error type of the crate: each variant names what was wrong and, where the user can
//! fix it, how.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop an image build or check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A command the build runs could not start or failed.
    #[error("`{command}` {problem}")]
    Command {
        /// The command line.
        command: String,
        /// "could not start: …" or "exited with …".
        problem: String,
    },
    /// A file that must be an ELF executable or shared library is not one we can read.
    #[error("{}: not an ELF file this tool can read: {reason}", path.display())]
    Elf {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// An ELF file is for a machine the images do not support.
    #[error("{}: built for ELF machine {machine}; supported: x86_64 (amd64), aarch64 (arm64)", path.display())]
    UnsupportedMachine {
        /// The file.
        path: PathBuf,
        /// The ELF `e_machine` value.
        machine: u16,
    },
    /// `--skip-build` was given but the release binary is not there.
    #[error(
        "{}: not found; build it (cargo build --release --locked -p {package} --bin {package}) \
         or drop --skip-build",
        path.display()
    )]
    NotBuilt {
        /// Where the binary was expected.
        path: PathBuf,
        /// Its package (and binary) name.
        package: String,
    },
    /// A shared library an executable needs is not where its loader looks by default.
    #[error(
        "{} needs {library}, which is in none of {searched}: only libraries in the loader's \
         default directories can be packaged",
        binary.display()
    )]
    MissingLibrary {
        /// The executable or library that needs it.
        binary: PathBuf,
        /// The `DT_NEEDED` name.
        library: String,
        /// The directories searched, comma-separated.
        searched: String,
    },
    /// The adapter test image needs Debian's statically linked busybox.
    #[error("{}: {problem}; install Debian's static busybox: apt-get install busybox-static", path.display())]
    Busybox {
        /// Where it was looked for.
        path: PathBuf,
        /// "not found" or "is dynamically linked".
        problem: String,
    },
    /// An image name that is not a valid reference.
    #[error(
        "image name {name:?}: {problem}; accepted: REGISTRY[/PATH]/NAME:TAG with a lowercase \
         repository ([a-z0-9._/-], a registry may carry :PORT) and a tag of up to 128 \
         [A-Za-z0-9_.-] characters"
    )]
    ImageName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `cargo metadata` said something this tool cannot use.
    #[error("cargo metadata: {0}")]
    Metadata(String),
    /// An OCI archive is not consistent (found when reading one back).
    #[error("{}: {problem}", archive.display())]
    Layout {
        /// The archive.
        archive: PathBuf,
        /// The inconsistency.
        problem: String,
    },
    /// The OCI types refused a value (a bug of this tool, or a bad input it passed on).
    #[error("OCI: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
    /// JSON (de)serialisation failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// An [`Error::Io`] for `path`; for `map_err`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
