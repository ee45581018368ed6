//! Fault tests: the real `status-reporter` binary against a misbehaving Kubernetes API — the
//! real API server behind the fault proxy, or no API at all. Each test asserts the condition
//! that ends up on the Job, the exit code and the text on stderr. Waiting is always on an
//! event (an API object, a request through the proxy, a log line, the process's exit) with a
//! bounded timeout — never a sleep.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use harness::control_plane::adapter::condition;
use harness::fault_proxy::{Fault, Hostile};
use harness::reporter_process::{Reporter, Rig, WAIT};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams};

const SUCCESS: &str = r#"{"status":"success","reason":"ChecksPassed","message":"all good"}"#;

async fn expect_condition(rig: &Rig, status: &str, reason: &str) -> String {
    let c = rig.condition("Available").await;
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        (status, Some(reason)),
        "{c:?}"
    );
    c.message.unwrap_or_default()
}

async fn no_condition(rig: &Rig) {
    let api: Api<Job> = Api::namespaced(rig.ns.client.clone(), &rig.ns.name);
    let job = api.get(&rig.job).await.expect("get Job");
    assert!(condition(&job, "Available").is_none(), "{:?}", job.status);
}

/// A TCP forwarder to `to`, on a port that refused connections until now.
fn forward(listener: TcpListener, to: SocketAddr) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { return };
            let Ok(server) = TcpStream::connect(to) else {
                return;
            };
            for (mut from, mut into) in [
                (client.try_clone(), server.try_clone()),
                (server.try_clone(), client.try_clone()),
            ]
            .into_iter()
            .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
            {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = into.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
}

/// No API server at all when the reporter starts (connection refused); it comes up a little
/// later on the same address. The reporter keeps retrying within its deadline and reports.
#[tokio::test]
async fn api_down_at_start_then_up() {
    let rig = Rig::new("api-down", "classic").await;
    // A port nobody listens on: connections are refused until we bind it again below.
    let reserved = TcpListener::bind("127.0.0.1:0").expect("reserve a port");
    let addr = reserved.local_addr().expect("addr");
    drop(reserved);
    let kubeconfig = rig.ns.dir.path().join("kubeconfig-down");
    let text = std::fs::read_to_string(&rig.ns.kubeconfig).expect("kubeconfig");
    let down = text.replace(&rig.proxy.url(), &format!("http://{addr}"));
    std::fs::write(&kubeconfig, down).expect("write kubeconfig");

    rig.write_result(SUCCESS);
    let mut cmd = rig.command(&[]);
    cmd.env("KUBECONFIG", &kubeconfig);
    let mut r = Reporter::spawn(cmd);
    // The outcome is known at once; the write fails with "connection refused" and is retried.
    let line = r
        .logs
        .wait_for(&["transient API error, retrying", "jobs/status"], WAIT);
    assert!(
        line.to_lowercase().contains("connect") || line.contains("refused"),
        "retry log does not say the connection failed: {line}"
    );
    assert!(
        rig.proxy.requests().is_empty(),
        "nothing can have reached the API yet"
    );

    let listener = TcpListener::bind(addr).expect("bind the reserved port again");
    forward(
        listener,
        rig.proxy
            .url()
            .trim_start_matches("http://")
            .parse()
            .expect("addr"),
    );

    expect_condition(&rig, "True", "ChecksPassed").await;
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
}

/// Bursts of 500 and 429 on every step of the write (the Go original lost the outcome after
/// three 500s): the reporter retries, honours Retry-After, and the outcome lands once.
#[tokio::test]
async fn bursts_of_500_and_429_are_retried() {
    let rig = Rig::new("bursts", "classic").await;
    let mut r = rig.start(&[]).await;
    let (get, put) = (rig.job_status("GET"), rig.job_status("PUT"));
    rig.proxy.inject(Fault::status(get.clone(), 500).times(3));
    rig.proxy.inject(Fault::status(get.clone(), 429));
    rig.proxy.inject(Fault::status(put.clone(), 503));
    rig.proxy.inject(Fault::status(put.clone(), 429));
    rig.proxy.inject(Fault::status(put.clone(), 500).times(2));
    rig.proxy.inject(Fault::drop_connection(put.clone()));
    rig.write_result(SUCCESS);

    assert_eq!(
        expect_condition(&rig, "True", "ChecksPassed").await,
        "all good"
    );
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
    assert_eq!(rig.answers(get), [500, 500, 500, 429, 200], "GETs");
    // The dropped connection has no HTTP status (0); one PUT succeeded.
    assert_eq!(rig.answers(put), [503, 429, 500, 500, 0, 200], "PUTs");
    assert!(
        logs.contains("transient API error, retrying"),
        "logs:\n{logs}"
    );
    assert!(logs.contains("HTTP 429"), "logs:\n{logs}");
}

/// The API server restarts again and again: every watch is cut mid-stream, once resumed from
/// a resourceVersion it no longer keeps (410 Expired → relist). The adapter's exit is still
/// seen and reported.
#[tokio::test]
async fn watch_cut_repeatedly() {
    let rig = Rig::new("watch-cuts", "classic").await;
    let mut r = rig.start(&[]).await;
    let mut watches = 1;
    for round in 1..=5 {
        if round == 3 {
            // The resume fails with 410 Expired: the watcher lists and watches again.
            rig.proxy
                .inject(Fault::respond(rig.pod_watch(), 200, Hostile::expired()));
            watches += 1;
        }
        rig.proxy.cut_watches();
        watches += 1;
        rig.wait_pod_watches(watches).await;
    }
    rig.terminate(1, "Error", None).await;
    let message = expect_condition(&rig, "False", "AdapterExitedWithError").await;
    assert_eq!(message, "Adapter container exited with code 1: Error");
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
}

/// The Job is deleted while the reporter waits (its pod orphaned, so the reporter keeps
/// waiting for the file): the write fails with a clear 404 naming the Job, without retrying
/// a permanent error, and the process exits 1 (no outcome written).
#[tokio::test]
async fn job_deleted_mid_run() {
    let rig = Rig::new("job-deleted", "classic").await;
    let mut r = rig.start(&[]).await;
    let api: Api<Job> = Api::namespaced(rig.ns.client.clone(), &rig.ns.name);
    let orphan = DeleteParams::orphan();
    api.delete(&rig.job, &orphan).await.expect("delete Job");
    let gone = kube::runtime::wait::await_condition(api, &rig.job, |j: Option<&Job>| j.is_none());
    tokio::time::timeout(WAIT, gone)
        .await
        .expect("deleted in time")
        .expect("watch");
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
    assert!(logs.contains("HTTP 404"), "logs:\n{logs}");
    assert!(
        logs.contains(r#"jobs.batch \"job-deleted\" not found"#)
            || logs.contains(r#"jobs.batch "job-deleted" not found"#),
        "logs:\n{logs}"
    );
    assert!(
        logs.contains(&format!("{}/job-deleted", rig.ns.name)),
        "logs:\n{logs}"
    );
    assert_eq!(
        rig.answers(rig.job_status("GET")),
        [404],
        "a 404 is not retried"
    );
}

/// RBAC denies the update: the error names the verb and resource the service account lacks.
#[tokio::test]
async fn rbac_403_on_update_names_verb_and_resource() {
    let rig = Rig::new("forbidden-update", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.proxy.inject(Fault::status(rig.job_status("PUT"), 403));
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
    let line = r.logs.wait_for(&["HTTP 403"], Duration::ZERO);
    let job = format!("{}/{}", rig.ns.name, rig.job);
    for part in ["update", "jobs/status", &job, "RBAC"] {
        assert!(line.contains(part), "403 line lacks {part:?}: {line}");
    }
    assert_eq!(
        rig.answers(rig.job_status("PUT")),
        [403],
        "a 403 is not retried"
    );
    no_condition(&rig).await;
}

/// RBAC denies the read: the error names `get` on `jobs/status`.
#[tokio::test]
async fn rbac_403_on_get_names_verb_and_resource() {
    let rig = Rig::new("forbidden-get", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.proxy.inject(Fault::status(rig.job_status("GET"), 403));
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
    let line = r.logs.wait_for(&["HTTP 403"], Duration::ZERO);
    let job = format!("{}/{}", rig.ns.name, rig.job);
    for part in ["get", "jobs/status", &job] {
        assert!(line.contains(part), "403 line lacks {part:?}: {line}");
    }
}

/// A refused Event (RBAC on events) never blocks or changes the condition.
#[tokio::test]
async fn refused_event_does_not_block_the_condition() {
    let rig = Rig::new("event-refused", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.proxy
        .inject(Fault::status(("POST", "/events"), 403).times(10));
    rig.write_result(SUCCESS);
    expect_condition(&rig, "True", "ChecksPassed").await;
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
    let events: Api<Event> = Api::namespaced(rig.ns.client.clone(), &rig.ns.name);
    let ours = ListParams::default().fields("reason=ChecksPassed");
    assert!(
        events.list(&ours).await.expect("events").items.is_empty(),
        "the event was refused"
    );
    assert_eq!(rig.answers(("POST", "/events").into()), [403]);
}

/// One request hangs: it is abandoned after the per-request timeout and the retry succeeds.
#[tokio::test]
async fn hung_request_is_abandoned_and_retried() {
    let rig = Rig::new("hung-request", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.proxy.inject(Fault::hang(rig.job_status("GET")));
    rig.write_result(SUCCESS);
    expect_condition(&rig, "True", "ChecksPassed").await;
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
    assert!(logs.contains("no response within"), "logs:\n{logs}");
}

/// The API never answers (every status request hangs): the reporter gives up at its write
/// deadline (60 s, no shorter setting exists) with a message saying so, instead of hanging
/// forever; exit 1.
#[tokio::test]
async fn slow_api_beyond_the_deadline_gives_up_clearly() {
    let rig = Rig::new("slow-api", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.proxy
        .inject(Fault::hang(rig.job_status("*")).times(1000));
    let started = Instant::now();
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(Duration::from_secs(100));
    let took = started.elapsed();
    assert_eq!(code, 1, "logs:\n{logs}");
    assert!(logs.contains("gave up writing condition"), "logs:\n{logs}");
    assert!(logs.contains("no response within"), "logs:\n{logs}");
    eprintln!("reporter gave up after {took:?}");
    no_condition(&rig).await;
}

/// Native sidecar: transient errors are retried, then it idles (a native sidecar must not exit
/// after reporting) until SIGTERM, and exits 0.
#[tokio::test]
async fn native_mode_reports_through_errors_then_idles_until_sigterm() {
    let rig = Rig::new("native-errors", "native").await;
    let mut r = rig.start(&[]).await;
    rig.proxy
        .inject(Fault::status(rig.job_status("PUT"), 500).times(2));
    rig.write_result(SUCCESS);
    expect_condition(&rig, "True", "ChecksPassed").await;
    r.logs.wait_for(&["idling until the pod shuts down"], WAIT);
    r.signal("-TERM");
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
    assert_eq!(rig.answers(rig.job_status("PUT")), [500, 500, 200]);
}

/// Native sidecar with a permanent error: it exits 1 at once, so the kubelet restarts it and
/// the whole report is retried (after the RBAC is fixed).
#[tokio::test]
async fn native_mode_permanent_error_exits_for_a_restart() {
    let rig = Rig::new("native-403", "native").await;
    let mut r = rig.start(&[]).await;
    rig.proxy.inject(Fault::status(rig.job_status("PUT"), 403));
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
    assert!(logs.contains("HTTP 403"), "logs:\n{logs}");
}

/// The order of `rig`'s requests on the Job's status and its pod's status.
fn writes(rig: &Rig) -> Vec<String> {
    rig.proxy
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/status"))
        .map(|r| {
            format!(
                "{} {}",
                r.method,
                r.path.rsplit('/').nth(2).unwrap_or_default()
            )
        })
        .collect()
}

/// The Job condition is the product: it goes first, and a pod record that hangs (or fails
/// again and again) never delays it or takes its deadline.
#[tokio::test]
async fn a_hung_or_failing_pod_record_never_delays_the_condition() {
    for (name, fault) in [
        ("record-hangs", Fault::hang(("PATCH", "/pods/")).times(100)),
        (
            "record-503s",
            Fault::status(("PATCH", "/pods/"), 503).times(1000),
        ),
    ] {
        let rig = Rig::new(name, "classic").await;
        let mut r = rig.start(&[]).await;
        rig.proxy.inject(fault);
        rig.write_result(SUCCESS);
        expect_condition(&rig, "True", "ChecksPassed").await;
        let (code, logs) = r.wait_exit_with_logs(WAIT);
        assert_eq!(code, 0, "{name}: the condition is written; logs:\n{logs}");
        assert!(
            logs.contains("the result is not recorded on the pod"),
            "{name}: logs:\n{logs}"
        );
        let order = writes(&rig);
        assert_eq!(
            order[..2],
            ["GET jobs", "PUT jobs"],
            "{name}: the condition first; {order:?}"
        );
    }
}

/// A SIGTERM while the API keeps failing ends the run within the shutdown budget (18 s), so
/// the kubelet's SIGKILL at the end of the 30 s grace period never finds it mid-write —
/// whether the API hangs, answers 503, or answers 409 to every write.
#[tokio::test]
async fn sigterm_during_a_failing_write_ends_within_the_shutdown_budget() {
    for (name, mode, fault) in [
        (
            "term-hang",
            "classic",
            Fault::hang(("*", "/status")).times(1000),
        ),
        (
            "term-503",
            "native",
            Fault::status(("*", "/status"), 503).times(100_000),
        ),
        (
            "term-409",
            "classic",
            Fault::status(("PUT", "/status"), 409).times(100_000),
        ),
    ] {
        let rig = Rig::new(name, mode).await;
        let mut r = rig.start(&[]).await;
        rig.proxy.inject(fault);
        rig.write_result(SUCCESS);
        // The write is under way (and failing) when the signal comes.
        rig.proxy
            .wait_for("a status request", WAIT, |log| {
                log.iter()
                    .any(|q| q.path.ends_with("/status"))
                    .then_some(())
            })
            .await;
        let signalled = Instant::now();
        r.signal("-TERM");
        let (code, logs) = r.wait_exit_with_logs(Duration::from_secs(40));
        let took = signalled.elapsed();
        assert!(
            took < Duration::from_secs(20),
            "{name}: exited {took:?} after SIGTERM; logs:\n{logs}"
        );
        assert_eq!(
            code, 1,
            "{name}: nothing written is a failure; logs:\n{logs}"
        );
        assert!(
            logs.contains("shutdown budget"),
            "{name}: says why; logs:\n{logs}"
        );
    }
}

/// A server answering 409 to every write is retried with a growing, jittered backoff, not
/// hammered: a handful of tries in the first seconds, not hundreds.
#[tokio::test]
async fn conflicts_are_retried_with_backoff() {
    let rig = Rig::new("conflict-storm", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.proxy
        .inject(Fault::status(rig.job_status("PUT"), 409).times(100_000));
    rig.write_result(SUCCESS);
    // 6 conflicts take at least 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s of backoff.
    let first = Instant::now();
    rig.proxy
        .wait_for("6 conflicts", WAIT, |log| {
            let conflicts = log.iter().filter(|q| q.method == "PUT" && q.status == 409);
            (conflicts.count() >= 6).then_some(())
        })
        .await;
    let took = first.elapsed();
    assert!(took >= Duration::from_millis(3100), "6 tries in {took:?}");
    r.signal("-TERM");
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
}

/// Any retry hint a server sends is clamped: an absurd one neither panics the reporter (a
/// time overflow) nor makes it wait past its deadline; the write goes on within it.
#[tokio::test]
async fn an_absurd_retry_after_is_clamped() {
    let rig = Rig::new("retry-after", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.proxy.inject(
        Fault::status(rig.job_status("GET"), 503)
            .retry_after("18446744073709551615")
            .times(2),
    );
    rig.proxy.inject(
        Fault::status(rig.job_status("GET"), 429)
            .retry_after("4294967295")
            .times(1),
    );
    rig.write_result(SUCCESS);
    expect_condition(&rig, "True", "ChecksPassed").await;
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
    assert_eq!(rig.answers(rig.job_status("GET")), [503, 503, 429, 200]);
}

/// Every response line is bounded: a watch line that never ends, or an object far larger than
/// the API server stores, is refused at the bound (naming it) instead of taking the reporter
/// past its container's memory limit; the run goes on.
#[tokio::test]
async fn hostile_responses_are_refused_at_the_bound() {
    // Native, so it idles after reporting and its peak RSS can be read.
    let rig = Rig::new("endless-watch", "native").await;
    rig.proxy
        .inject(Fault::respond(rig.pod_watch(), 200, Hostile::EndlessLine));
    let mut r = Reporter::spawn(rig.command(&[]));
    r.logs.wait_for(&["more than 4194304 bytes"], WAIT);
    // The watch comes back (the fault is used up); the result still reports.
    rig.wait_pod_watches(1).await;
    rig.write_result(SUCCESS);
    expect_condition(&rig, "True", "ChecksPassed").await;
    r.logs.wait_for(&["idling until the pod shuts down"], WAIT);
    let peak_kib = r.peak_rss_kib();
    r.signal("-TERM");
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 0, "logs:\n{logs}");
    assert!(
        peak_kib < 48 * 1024,
        "peak RSS {peak_kib} KiB; logs:\n{logs}"
    );

    let rig = Rig::new("huge-job", "classic").await;
    let mut r = rig.start(&[]).await;
    rig.proxy.inject(Fault::respond(
        rig.job_status("GET"),
        200,
        Hostile::Huge(64 << 20),
    ));
    rig.write_result(SUCCESS);
    let (code, logs) = r.wait_exit_with_logs(WAIT);
    assert_eq!(code, 1, "logs:\n{logs}");
    assert!(
        logs.contains("more than 4194304 bytes") && logs.contains("get jobs/status"),
        "names what was too large; logs:\n{logs}"
    );
    assert_eq!(rig.answers(rig.job_status("GET")), [200], "not retried");
}
