//! `status-reporter-webhook inject` as a process: files and stdin in, YAML out, warnings on
//! stderr, a clear non-zero exit for a refused Job.

use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_status-reporter-webhook"));
    c.env_remove("SIDECAR_MODE").env_remove("REPORTER_IMAGE");
    c
}

fn data(rel: &str) -> String {
    format!("{}/../tests/data/{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn injects_a_file_and_stdin_the_same_way() {
    let from_file = bin()
        .args(["inject", "-f", &data("jobs/minimal.yaml")])
        .output()
        .unwrap();
    assert!(
        from_file.status.success(),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    let out = String::from_utf8(from_file.stdout.clone()).unwrap();
    assert!(out.contains("name: status-reporter\n"), "{out}");
    assert!(
        out.contains("status-reporter.hyperfleet.io/status: injected"),
        "{out}"
    );

    let mut child = bin()
        .args(["inject", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = std::fs::read(data("jobs/minimal.yaml")).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let from_stdin = child.wait_with_output().unwrap();
    assert!(from_stdin.status.success());
    assert_eq!(from_stdin.stdout, from_file.stdout);
}

#[test]
fn flags_shape_the_container_and_warnings_go_to_stderr() {
    let out = bin()
        .args([
            "inject",
            "-f",
            &data("jobs/all-annotations.yaml"),
            "--reporter-image",
            "registry.example/status-reporter:9.9",
            "--reporter-image-pull-policy",
            "Always",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        yaml.contains("image: registry.example/status-reporter:9.9"),
        "{yaml}"
    );
    assert!(yaml.contains("imagePullPolicy: Always"), "{yaml}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("Warning: job/quota-check: spec.activeDeadlineSeconds"),
        "{stderr}"
    );
    assert!(
        !yaml.contains("Warning"),
        "warnings must not end up in the manifests"
    );
}

#[test]
fn refused_jobs_and_bad_flags_exit_non_zero_with_a_clear_message() {
    let out = bin()
        .args(["inject", "-f", &data("jobs/bad-adapter-container.yaml")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no partial output on refusal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("document 1 (job/typo-check)"), "{stderr}");
    assert!(stderr.contains("one of [adapter, proxy]"), "{stderr}");

    let out = bin()
        .args([
            "inject",
            "-f",
            &data("jobs/minimal.yaml"),
            "--reporter-memory-limit",
            "64MB",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reporter-memory-limit=\"64MB\""));

    let out = bin()
        .args(["inject", "-f", "/nonexistent/job.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/job.yaml"));
}

/// Runs `cmd` and returns its output, killing it and failing if it has not exited within
/// `timeout`.
fn output_within(cmd: &mut Command, timeout: std::time::Duration) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("still running after {timeout:?}");
        }
    }
}

/// 100,000 levels of nesting took the YAML parser minutes (its time grows with the square
/// of the depth); `inject` refuses them at once, naming the limit, for YAML and JSON alike.
#[test]
fn deeply_nested_input_fails_at_once_at_the_documented_limit() {
    let dir = tempfile::tempdir().unwrap();
    let levels = 100_000;
    for (name, text) in [
        (
            "deep.json",
            "{\"a\":".repeat(levels) + "1" + &"}".repeat(levels),
        ),
        (
            "deep.yaml",
            "spec: ".to_owned() + &"{a: ".repeat(levels) + "1" + &"}".repeat(levels),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = output_within(
            bin().args(["inject", "-f"]).arg(&path),
            std::time::Duration::from_secs(10),
        );
        assert!(!out.status.success(), "{name}");
        assert!(out.stdout.is_empty(), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("document 1: collections nest deeper than 128 levels"),
            "{name}: {stderr}"
        );
    }
}
