//! What goes in each image: the two product images (as `Dockerfile.reporter` and
//! `Dockerfile.webhook` build them with an engine) and the real-node tests' pause and adapter
//! images.
//!
//! A product image holds the release binary, the loader and shared libraries it links, and
//! the nonroot user's `/etc/passwd`, `/etc/group` and home — what the distroless base of the
//! Dockerfiles gives the binary, minus what it never uses. No CA certificates: the reporter
//! talks only to the API server, trusting the CA of its service account (or kubeconfig); the
//! webhook only serves TLS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::image::{
    ANNOTATION_DESCRIPTION, ANNOTATION_LICENSES, ANNOTATION_REVISION, ANNOTATION_SOURCE,
    ANNOTATION_TITLE, ANNOTATION_VERSION,
};

use crate::error::{Error, Result};
use crate::oci::{Image, Rootfs, RunConfig};
use crate::reference::Reference;
use crate::runtime_deps::{read_elf, runtime_files};
use crate::workspace::{Package, Workspace, run};

/// The uid and gid the product images run as: distroless's `nonroot`.
pub const NONROOT: u32 = 65532;

/// `PATH` in the product images, as in distroless: `kubectl exec … -- status-reporter …` works.
pub const PRODUCT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The same entries as distroless's: root, nobody and nonroot (uid 65532, home
/// `/home/nonroot`). The images run as numbers (`65532:65532`), so Kubernetes' `runAsNonRoot`
/// needs none of this; it is here so that the container's `HOME`, its groups and every tool that
/// maps ids to names see the same user as in the Dockerfile-built image.
pub const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
    nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
    nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";

/// The groups of [`PASSWD`]'s users.
pub const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";

/// One of the two product images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    /// The Cargo package; also the binary's and the image's name.
    pub package: &'static str,
    /// Ports the image declares (`EXPOSE`).
    pub exposed_ports: &'static [&'static str],
    /// Default arguments (`CMD`).
    pub cmd: &'static [&'static str],
    /// The Dockerfile that builds the same image with an engine.
    pub dockerfile: &'static str,
}

/// The sidecar.
pub const REPORTER: Product = Product {
    package: "status-reporter",
    exposed_ports: &[],
    cmd: &[],
    dockerfile: "Dockerfile.reporter",
};

/// The admission webhook; `serve` on 8443 by default.
pub const WEBHOOK: Product = Product {
    package: "status-reporter-webhook",
    exposed_ports: &["8443/tcp"],
    cmd: &["serve"],
    dockerfile: "Dockerfile.webhook",
};

/// Both product images.
pub const PRODUCTS: [Product; 2] = [REPORTER, WEBHOOK];

impl Product {
    /// The binary's name (the package's).
    pub fn binary(&self) -> &'static str {
        self.package
    }

    /// Where the binary is in the image: `/usr/local/bin/<binary>`.
    pub fn binary_path(&self) -> String {
        format!("/usr/local/bin/{}", self.binary())
    }

    /// `<images dir>/<binary>.oci.tar`.
    pub fn archive(&self, images_dir: &Path) -> PathBuf {
        images_dir.join(format!("{}.oci.tar", self.binary()))
    }

    /// How the image runs and what it says about itself. The labels repeat the package's
    /// `Cargo.toml`; `revision` is the source revision (`unknown` when not given, as in the
    /// Dockerfiles).
    pub fn config(&self, package: &Package, architecture: &str, revision: &str) -> RunConfig {
        let labels = [
            (ANNOTATION_TITLE, package.name.clone()),
            (
                ANNOTATION_DESCRIPTION,
                package.description.clone().unwrap_or_default(),
            ),
            (
                ANNOTATION_SOURCE,
                package.repository.clone().unwrap_or_default(),
            ),
            (
                ANNOTATION_LICENSES,
                package.license.clone().unwrap_or_default(),
            ),
            (ANNOTATION_VERSION, package.version.clone()),
            (ANNOTATION_REVISION, revision.to_owned()),
        ];
        RunConfig {
            architecture: architecture.to_owned(),
            user: Some(format!("{NONROOT}:{NONROOT}")),
            env: vec![PRODUCT_PATH.to_owned()],
            entrypoint: vec![self.binary_path()],
            cmd: strings(self.cmd),
            exposed_ports: strings(self.exposed_ports),
            labels: labels.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    /// The image of the built `binary`, named `name`.
    pub fn image(
        &self,
        workspace: &Workspace,
        name: Reference,
        revision: &str,
        binary: &Path,
    ) -> Result<Image> {
        let elf = read_elf(binary)?;
        let mut rootfs = Rootfs::default();
        rootfs.file(&self.binary_path(), read(binary)?, 0o755);
        for file in runtime_files(binary)? {
            rootfs.file(&file.image_path, read(&file.host_path)?, 0o755);
        }
        rootfs
            .file("/etc/passwd", PASSWD.into(), 0o644)
            .file("/etc/group", GROUP.into(), 0o644)
            .dir("/home/nonroot", 0o700, NONROOT);
        Ok(Image {
            name,
            config: self.config(workspace.package(self.package)?, elf.architecture, revision),
            rootfs,
        })
    }
}

/// The pod sandbox image of the real-node tests.
pub const PAUSE_NAME: &str = "localhost/test/pause:0.1";

/// The adapter image of the real-node tests.
pub const ADAPTER_NAME: &str = "localhost/test/adapter:0.1";

/// The busybox applets the adapter image links: enough for a test to write a result file
/// (`printf … > f.tmp && mv f.tmp f`), exit with a code, sleep, allocate memory
/// (`dd bs=64M count=1 if=/dev/zero of=/dev/null` allocates its buffer) and write a
/// termination message.
pub const ADAPTER_APPLETS: &[&str] = &[
    "[", "cat", "cp", "date", "dd", "echo", "env", "false", "grep", "head", "id", "kill", "ls",
    "mkdir", "mv", "printf", "rm", "sed", "seq", "sh", "sleep", "stat", "tail", "test", "timeout",
    "touch", "tr", "true", "wc", "yes",
];

/// Where Debian's `busybox-static` installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The source of the pause program, relative to the workspace root.
pub const PAUSE_SOURCE: &str = "tests/node/pause.c";

/// `<images dir>/test`: the test images.
pub fn test_images_dir(images_dir: &Path) -> PathBuf {
    images_dir.join("test")
}

/// The pause image: `tests/node/pause.c` compiled with `cc -Os -static` (`$CC` if set) into
/// `build_dir`, alone in the image, run as 65535 like the Kubernetes pause image.
pub fn pause(workspace: &Workspace, build_dir: &Path) -> Result<Image> {
    std::fs::create_dir_all(build_dir).map_err(Error::io(build_dir))?;
    let binary = build_dir.join("pause");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    run(
        Command::new(cc)
            .args(["-Os", "-static", "-s", "-Wall", "-Wextra", "-o"])
            .arg(&binary)
            .arg(workspace.root.join(PAUSE_SOURCE)),
        false,
    )?;
    let elf = read_elf(&binary)?;
    let mut rootfs = Rootfs::default();
    rootfs.file("/pause", read(&binary)?, 0o755);
    Ok(Image {
        name: PAUSE_NAME.parse()?,
        config: RunConfig {
            architecture: elf.architecture.to_owned(),
            user: Some("65535:65535".to_owned()),
            entrypoint: vec!["/pause".to_owned()],
            labels: title("pause"),
            ..RunConfig::default()
        },
        rootfs,
    })
}

/// The adapter image: Debian's static busybox at `/bin/busybox`, [`ADAPTER_APPLETS`] linked to
/// it, a world-writable `/tmp`; runs as 65532 (so it runs in a `restricted` namespace as is),
/// `sh` by default.
pub fn adapter() -> Result<Image> {
    let busybox = Path::new(BUSYBOX);
    let missing = |problem: &str| Error::Busybox {
        path: busybox.to_owned(),
        problem: problem.to_owned(),
    };
    if !busybox.is_file() {
        return Err(missing("not found"));
    }
    let elf = read_elf(busybox)?;
    if elf.interpreter.is_some() {
        return Err(missing(
            "is dynamically linked (Debian's `busybox` package)",
        ));
    }
    let mut rootfs = Rootfs::default();
    rootfs.file("/bin/busybox", read(busybox)?, 0o755);
    for applet in ADAPTER_APPLETS {
        rootfs.symlink(&format!("/bin/{applet}"), "busybox");
    }
    rootfs.dir("/tmp", 0o1777, 0);
    Ok(Image {
        name: ADAPTER_NAME.parse()?,
        config: RunConfig {
            architecture: elf.architecture.to_owned(),
            user: Some(format!("{NONROOT}:{NONROOT}")),
            env: vec!["PATH=/bin".to_owned()],
            cmd: vec!["sh".to_owned()],
            labels: title("adapter"),
            ..RunConfig::default()
        },
        rootfs,
    })
}

fn title(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(ANNOTATION_TITLE.to_owned(), name.to_owned())])
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io(path))
}
