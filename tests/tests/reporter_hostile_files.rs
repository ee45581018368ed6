//! Result-file hostility: whatever an adapter (or an attacker sharing the results volume)
//! puts at `RESULTS_PATH` — a symlink, a FIFO, a directory, a 2 GiB sparse file, invalid UTF-8,
//! NUL bytes, JSON nested 100 000 deep, a file replaced while it is read — the real
//! `status-reporter` binary answers with a clear verdict, quickly, without blocking, crashing
//! or reading the whole file.
//!
//! Most cases go through `status-reporter check-result FILE` (the same reader as the sidecar);
//! the ones where the sidecar's event loop matters run the sidecar on the real API server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use harness::reporter_process::{Reporter, Rig, WAIT};
use k8s_openapi::api::batch::v1::JobCondition;
use serde_json::Value;

/// Runs `status-reporter check-result path`, bounded by `WAIT` (a hang fails the test instead
/// of blocking the suite). Returns exit code, stdout, stderr and how long it took.
fn check(path: &Path) -> (i32, String, String, Duration) {
    check_with(path, Stdio::piped(), Stdio::piped())
}

/// [`check`] with stdout and stderr as given (what is not piped comes back empty).
fn check_with(path: &Path, stdout: Stdio, stderr: Stdio) -> (i32, String, String, Duration) {
    let started = Instant::now();
    let child = Command::new(harness::bin::path("status-reporter"))
        .arg("check-result")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("start status-reporter check-result");
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<std::io::Result<Output>>();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(WAIT) {
        Ok(out) => out.expect("wait for check-result"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!(
                "check-result {} did not finish within {WAIT:?}",
                path.display()
            );
        }
    };
    let code = out.status.code().unwrap_or_else(|| {
        panic!(
            "check-result {} died by a signal: {:?}",
            path.display(),
            out.status
        )
    });
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

fn expect_invalid(path: &Path, needle: &str) -> String {
    let (code, out, err, _) = check(path);
    assert_eq!(code, 1, "{}: stdout {out:?} stderr {err:?}", path.display());
    assert!(
        err.starts_with("Failed to parse adapter result: "),
        "{}: stderr {err:?}",
        path.display()
    );
    assert!(
        err.contains(needle),
        "{}: stderr lacks {needle:?}: {err:?}",
        path.display()
    );
    err
}

fn expect_valid(path: &Path) -> Value {
    let (code, out, err, _) = check(path);
    assert_eq!(code, 0, "{}: stdout {out:?} stderr {err:?}", path.display());
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"))
}

#[test]
fn symlink_to_a_valid_file_is_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("elsewhere.json");
    std::fs::write(&target, r#"{"status":"success","reason":"ViaLink"}"#).expect("write");
    let link = dir.path().join("adapter-result.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    assert_eq!(expect_valid(&link)["reason"], "ViaLink");
}

/// A symlink to a file the reporter can read but the adapter should not see (its own token,
/// say) must not leak that file's content into the condition message.
#[test]
fn symlink_to_a_secret_does_not_leak_its_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("token");
    std::fs::write(&secret, "eyJhbGciOiJSUzI1NiJ9.SECRET-TOKEN-VALUE.sig").expect("write");
    let link = dir.path().join("adapter-result.json");
    std::os::unix::fs::symlink(&secret, &link).expect("symlink");
    let err = expect_invalid(&link, "failed to parse JSON");
    assert!(
        !err.contains("SECRET"),
        "condition message leaks the target: {err}"
    );
    assert!(
        !err.contains("eyJ"),
        "condition message leaks the target: {err}"
    );
}

#[test]
fn dangling_symlink_is_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("adapter-result.json");
    std::os::unix::fs::symlink(dir.path().join("missing"), &link).expect("symlink");
    expect_invalid(&link, "no such file or directory");
}

/// A FIFO with no writer: opening it must not block (O_NONBLOCK) and it is not a result.
#[test]
fn fifo_does_not_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("adapter-result.json");
    let status = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo failed");
    expect_invalid(&fifo, "not a regular file");
    expect_invalid(&fifo, "type=fifo");
}

#[test]
fn directory_is_not_a_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("adapter-result.json");
    std::fs::create_dir(&sub).expect("mkdir");
    expect_invalid(&sub, "type=directory");
}

/// 2 GiB of holes: refused as too large from the first MiB, without reading it all.
#[test]
fn sparse_2gib_file_is_too_large_and_not_read_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("adapter-result.json");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(2 << 30).expect("set_len 2 GiB (sparse)");
    drop(file);
    let (code, _, err, took) = check(&path);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("result file too large"), "{err}");
    assert!(err.contains("size=2147483648"), "{err}");
    assert!(err.contains("max=1048576"), "{err}");
    eprintln!("2 GiB sparse file refused in {took:?}");
}

/// Exactly at the cap is read; one byte over is refused.
#[test]
fn size_cap_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("adapter-result.json");
    let head = r#"{"status":"success","message":""#;
    let tail = r#""}"#;
    let fill = 1024 * 1024 - head.len() - tail.len();
    std::fs::write(&path, format!("{head}{}{tail}", "m".repeat(fill))).expect("write");
    let ok = expect_valid(&path);
    assert_eq!(
        ok["message"].as_str().map(str::len),
        Some(1024),
        "truncated to 1024 bytes"
    );
    std::fs::write(&path, format!("{head}{}{tail}", "m".repeat(fill + 1))).expect("write");
    expect_invalid(&path, "result file too large");
}

#[test]
fn invalid_utf8_is_invalid_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("adapter-result.json");
    std::fs::write(&path, b"{\"status\":\"success\",\"reason\":\"\xff\xfe\"}").expect("write");
    expect_invalid(&path, "failed to parse JSON");
    std::fs::write(&path, b"\xef\xbb\xbf{\"status\":\"success\"}").expect("write BOM");
    expect_invalid(&path, "failed to parse JSON");
}

#[test]
fn nul_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("adapter-result.json");
    // Raw NUL inside a string, after the object, and a file of only NULs: all invalid.
    for bytes in [
        &b"{\"status\":\"success\",\"reason\":\"a\0b\"}"[..],
        &b"{\"status\":\"success\"}\0"[..],
        &[0u8; 64][..],
    ] {
        std::fs::write(&path, bytes).expect("write");
        expect_invalid(&path, "failed to parse JSON");
    }
    // An escaped NUL is legal JSON: accepted, and printed back escaped.
    std::fs::write(&path, r#"{"status":"success","reason":"a\u0000b"}"#).expect("write");
    assert_eq!(expect_valid(&path)["reason"], "a\u{0}b");
}

/// 100 000 levels of nesting: serde_json's recursion limit answers, no stack overflow.
#[test]
fn deeply_nested_json_does_not_overflow_the_stack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("adapter-result.json");
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let depth = 100_000;
        let body = format!(
            r#"{{"status":"success","details":{}1{}}}"#,
            open.repeat(depth),
            close.repeat(depth)
        );
        std::fs::write(&path, body).expect("write");
        expect_invalid(&path, "recursion limit exceeded");
    }
}

/// Outcome of reading a file that a writer keeps replacing.
struct Churn {
    versions: usize,
    valid: usize,
    invalid: usize,
    /// Accepted results whose content came from two versions.
    torn: usize,
}

/// Runs `check-result` 30 times while a writer replaces the file, by rename (`atomic`) or by
/// rewriting it in place. Every verdict must be a result or a clear "invalid"; never a crash or
/// a hang.
fn read_while_replaced(atomic: bool) -> Churn {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("adapter-result.json");
    let version = |n: usize| {
        // ~600 KiB so a read spans many syscalls; one character per version everywhere, so a
        // read that mixes two versions is visible.
        let c = char::from(b'a' + (n % 26) as u8).to_string();
        format!(
            r#"{{"status":"success","reason":"V","message":"{}","details":{{"pad":"{}"}}}}"#,
            c.repeat(100),
            c.repeat(600 * 1024)
        )
    };
    std::fs::write(&path, version(0)).expect("write");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        let tmp = dir.path().join(".adapter-result.json.tmp");
        std::thread::spawn(move || {
            let mut n = 1;
            while !stop.load(Ordering::Relaxed) {
                if atomic {
                    std::fs::write(&tmp, version(n)).expect("write tmp");
                    std::fs::rename(&tmp, &path).expect("rename into place");
                } else {
                    std::fs::write(&path, version(n)).expect("rewrite in place");
                }
                n += 1;
            }
            n
        })
    };
    let mut churn = Churn {
        versions: 0,
        valid: 0,
        invalid: 0,
        torn: 0,
    };
    for _ in 0..30 {
        let (code, out, err, _) = check(&path);
        match code {
            0 => {
                let v: Value = serde_json::from_str(&out).expect("stdout JSON");
                let text = format!(
                    "{}{}",
                    v["message"].as_str().unwrap_or_default(),
                    v["details"]["pad"].as_str().unwrap_or_default()
                );
                let first = text.chars().next().unwrap_or('?');
                if !text.chars().all(|c| c == first) {
                    churn.torn += 1;
                }
                churn.valid += 1;
            }
            1 => {
                assert!(err.starts_with("Failed to parse adapter result: "), "{err}");
                churn.invalid += 1;
            }
            other => panic!("check-result exit {other}: {err}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    churn.versions = writer.join().expect("writer thread");
    churn
}

/// Replaced by rename (how adapters should write): every read sees one whole version.
#[test]
fn file_replaced_by_rename_while_being_read() {
    let c = read_while_replaced(true);
    eprintln!(
        "rename: {} versions written; {} reads valid, {} invalid, {} torn",
        c.versions, c.valid, c.invalid, c.torn
    );
    assert_eq!(c.invalid, 0, "a renamed-in file was read as invalid");
    assert_eq!(c.torn, 0, "a read mixed two renamed-in files");
    assert_eq!(c.valid, 30);
}

/// Rewritten in place (truncate + write) while read: reads may see a partial file and call it
/// invalid — the sidecar waits for close-write/settle before deciding — but never crash or hang.
#[test]
fn file_rewritten_in_place_while_being_read() {
    let c = read_while_replaced(false);
    eprintln!(
        "in place: {} versions written; {} reads valid, {} invalid, {} torn",
        c.versions, c.valid, c.invalid, c.torn
    );
    assert_eq!(c.valid + c.invalid, 30);
}

// ---------------------------------------------------------------------------------------------
// The sidecar itself

/// When the hostile file appears relative to the sidecar's start.
#[derive(Clone, Copy, PartialEq)]
enum When {
    /// Already there when the sidecar starts (e.g. a restarted native sidecar).
    Before,
    /// Created once the sidecar watches (the usual case: the adapter writes it later).
    After,
}

/// The sidecar (classic) for Job `name` on the real API server; `setup` creates the file in
/// the results dir (before the start or once the sidecar watches) and returns `RESULTS_PATH`.
/// Returns the condition it wrote, its exit code and stderr.
async fn sidecar_with(
    name: &str,
    when: When,
    setup: impl FnOnce(&Path) -> PathBuf,
    max_wait: &str,
) -> (JobCondition, i32, String) {
    let rig = Rig::new(name, "classic").await;
    let result_path = rig.result_path();
    let mut setup = Some(setup);
    if when == When::Before {
        let made = setup.take().map(|f| f(&rig.results));
        assert_eq!(
            made.as_ref(),
            Some(&result_path),
            "setup must create {}",
            result_path.display()
        );
    }
    let env = [("MAX_WAIT_TIME_SECONDS", max_wait), ("LOG_LEVEL", "info")];
    let mut r = Reporter::spawn(rig.command(&env));
    if let Some(setup) = setup {
        rig.wait_pod_watches(1).await;
        assert_eq!(setup(&rig.results), result_path);
    }
    let condition = rig.condition("Available").await;
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    (condition, code, logs)
}

/// The sidecar's verdict on a hostile file (from [`sidecar_with`]): condition False,
/// `InvalidResultFormat`, with `needle` in its message; exit 1.
fn expect_invalid_verdict((c, code, logs): (JobCondition, i32, String), needle: &str) {
    assert_eq!(c.status, "False", "{c:?}\n{logs}");
    assert_eq!(
        c.reason.as_deref(),
        Some("InvalidResultFormat"),
        "{c:?}\n{logs}"
    );
    assert!(
        c.message.as_deref().unwrap_or_default().contains(needle),
        "{c:?}"
    );
    assert_eq!(code, 1, "{logs}");
}

/// A FIFO at RESULTS_PATH does not block the sidecar: it reports an invalid result.
#[tokio::test]
async fn sidecar_fifo_is_reported_invalid_not_blocking() {
    let verdict = sidecar_with(
        "hostile-fifo",
        When::Before,
        |dir| {
            let fifo = dir.join("adapter-result.json");
            let status = Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .expect("run mkfifo");
            assert!(status.success());
            fifo
        },
        "30",
    )
    .await;
    expect_invalid_verdict(verdict, "type=fifo");
}

fn sparse_2gib(dir: &Path) -> PathBuf {
    let path = dir.join("adapter-result.json");
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(2 << 30))
        .expect("sparse file");
    path
}

/// The adapter leaves a 2 GiB sparse file: reported as too large at once (close-write).
#[tokio::test]
async fn sidecar_sparse_2gib_is_reported_too_large() {
    let verdict = sidecar_with("hostile-sparse", When::After, sparse_2gib, "30").await;
    expect_invalid_verdict(verdict, "too large");
}

/// A too-large (or empty) file already there at start was once never judged "stable" (errors
/// had no content fingerprint), so the sidecar reported it only at MAX_WAIT_TIME_SECONDS (or
/// the adapter's exit), not after the settle time. With a one-hour max wait the condition
/// must still come within `WAIT`.
#[tokio::test]
async fn sidecar_preexisting_sparse_2gib_is_reported_too_large() {
    let verdict = sidecar_with("hostile-preexisting", When::Before, sparse_2gib, "3600").await;
    expect_invalid_verdict(verdict, "too large");
}

/// A result written as a symlink swap (how a Secret/ConfigMap volume updates) is picked up.
#[tokio::test]
async fn sidecar_result_arriving_as_a_symlink_swap() {
    let (c, code, logs) = sidecar_with(
        "hostile-symlink",
        When::After,
        |dir| {
            let data = dir.join("..data-1");
            std::fs::create_dir(&data).expect("mkdir");
            std::fs::write(
                data.join("adapter-result.json"),
                r#"{"status":"success","reason":"Linked","message":"via symlink"}"#,
            )
            .expect("write");
            std::os::unix::fs::symlink("..data-1", dir.join("..data")).expect("symlink dir");
            let link = dir.join("adapter-result.json");
            std::os::unix::fs::symlink("..data/adapter-result.json", &link).expect("symlink");
            link
        },
        "30",
    )
    .await;
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("True", Some("Linked")),
        "{c:?}"
    );
    assert_eq!(code, 0, "{logs}");
}

/// Issue 13, item 14: `check-result … | head -c 10` — a reader that went away before the
/// output (stdout for a valid file, stderr for an invalid one) ends it quietly with the
/// check's own exit code, never a panic.
#[test]
fn check_result_exits_quietly_on_a_broken_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let valid = dir.path().join("valid.json");
    std::fs::write(
        &valid,
        r#"{"status":"success","message":"more than ten bytes"}"#,
    )
    .unwrap();
    let invalid = dir.path().join("invalid.json");
    std::fs::write(&invalid, "{").unwrap();
    for (path, code, closed_stdout) in [(&valid, 0, true), (&invalid, 1, false)] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let (stdout, stderr) = match closed_stdout {
            true => (Stdio::from(writer), Stdio::piped()),
            false => (Stdio::piped(), Stdio::from(writer)),
        };
        let (got, out, err, _) = check_with(path, stdout, stderr);
        assert_eq!(
            got,
            code,
            "{}: stdout {out:?} stderr {err:?}",
            path.display()
        );
        assert!(
            !out.contains("panicked") && !err.contains("panicked"),
            "{err}"
        );
    }
}
