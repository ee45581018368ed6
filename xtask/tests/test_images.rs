//! The real-node tests' images: the pause image holds a static program that exits 0 on
//! SIGTERM, the adapter image's shell can do what the adapter tests ask of it, both
//! reproducible.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xtask::check::{inspect, run_in_rootfs, unpack};
use xtask::images::{self, ADAPTER_APPLETS};
use xtask::oci;
use xtask::runtime_deps::read_elf;
use xtask::workspace::Workspace;

fn workspace() -> Workspace {
    Workspace::current().expect("cargo metadata")
}

#[test]
fn the_adapter_writes_a_result_file_and_exits_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("adapter.oci.tar");
    let image = images::adapter().expect("busybox-static installed");
    assert_eq!(image.name.to_string(), "localhost/test/adapter:0.1");
    oci::write(&image, &archive).unwrap();
    let inspected = inspect(&archive).unwrap();
    let config = inspected.config.config().clone().unwrap();
    assert_eq!(config.user().as_deref(), Some("65532:65532"));

    // Written through a temporary file and renamed, as an adapter should; then the exit code.
    let script = r#"printf '{"status":"success","reason":"%s"}' Checked > /tmp/result.tmp \
        && mv /tmp/result.tmp /tmp/result.json && cat /tmp/result.json && head -c 1 /tmp/result.json \
        && mkdir -p /tmp/a/b && [ -d /tmp/a/b ] && sleep 0 && echo && exit 3"#;
    let output = run_in_rootfs(&inspected, &["sh", "-c", script]).unwrap();
    assert_eq!(
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).as_ref()
        ),
        (
            Some(3),
            "{\"status\":\"success\",\"reason\":\"Checked\"}{\n"
        ),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Every applet a test may name is a file the runtime can exec (the shell alone would run
    // its applets without them, but a container's `command: [sleep, "5"]` needs /bin/sleep).
    let every = ADAPTER_APPLETS
        .iter()
        .map(|a| format!("[ -x '/bin/{a}' ] || echo missing {a}"))
        .collect::<Vec<_>>()
        .join("; ");
    let output = run_in_rootfs(&inspected, &["sh", "-c", &every]).unwrap();
    let exec = run_in_rootfs(&inspected, &["printf", "%s", "exec'd"]).unwrap();
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "exec'd");
    assert!(
        output.status.success() && output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn the_pause_program_is_alone_static_and_exits_0_on_sigterm() {
    let workspace = workspace();
    let build = tempfile::tempdir().unwrap();
    let image = images::pause(&workspace, build.path()).expect("cc");
    let again = images::pause(&workspace, &build.path().join("again")).expect("cc");
    assert_eq!(
        oci::archive(&image).unwrap().1.digest,
        oci::archive(&again).unwrap().1.digest,
        "two compiles of pause.c gave two images"
    );

    let archive = build.path().join("pause.oci.tar");
    oci::write(&image, &archive).unwrap();
    let inspected = inspect(&archive).unwrap();
    assert_eq!(inspected.name, "localhost/test/pause:0.1");
    let config = inspected.config.config().clone().unwrap();
    assert_eq!(
        config.entrypoint().as_deref(),
        Some(&["/pause".to_owned()][..])
    );
    let rootfs = build.path().join("rootfs");
    unpack(&inspected, &rootfs).unwrap();
    let files: Vec<_> = std::fs::read_dir(&rootfs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["pause"]);
    let pause = rootfs.join("pause");
    assert_eq!(
        read_elf(&pause).unwrap().interpreter,
        None,
        "statically linked"
    );

    for signal in ["TERM", "INT"] {
        let mut child = Command::new(&pause).stdin(Stdio::null()).spawn().unwrap();
        wait_for_handlers(child.id());
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = child.wait().unwrap();
        // Killed by the signal (no handler) would have no exit code.
        assert_eq!(status.code(), Some(0), "SIG{signal}: {status}");
    }
}

/// Waits until the process has its SIGINT, SIGTERM and SIGCHLD handlers installed
/// (`SigCgt` in /proc). There is no notification for that, so this polls the one value, with
/// a bound.
fn wait_for_handlers(pid: u32) {
    let wanted: u64 = (1 << (2 - 1)) | (1 << (15 - 1)) | (1 << (17 - 1));
    let status = Path::new("/proc").join(pid.to_string()).join("status");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let caught = std::fs::read_to_string(&status)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigCgt:"))
                    .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            })
            .unwrap_or(0);
        if caught & wanted == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pause {pid}: no SIGINT/SIGTERM/SIGCHLD handlers within 10 s (SigCgt {caught:x})"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
