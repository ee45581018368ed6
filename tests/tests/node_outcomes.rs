//! Every row of the outcome table (docs/reporter.md "Outcomes" and "Result channels") produced
//! by real containers on the test node, in both sidecar modes: the example Job injected as
//! users inject it, the reporter from its image talking to the API server through unmodified
//! in-cluster config as the Job's ServiceAccount (the shipped ClusterRole), the adapter a
//! script in the test adapter image. For each row: our condition as the API server stores it,
//! how the pod ended (a native sidecar never holds the pod open or fails it; a classic one
//! exits 1 on a `False`), and the Job controller's own verdict beside ours.
//!
//! The rows of one mode run at once (one Job each), so the suite takes about as long as its
//! slowest row.

use std::sync::Arc;
use std::time::Duration;

use harness::control_plane::adapter::{AdapterNamespace, adapter_namespace, condition};
use harness::control_plane::node_jobs::{
    adapter_job, container_state, containers, ended_pods, exit, phase, terminated, wait_finished,
};
use harness::control_plane::{Cluster, kubelet};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);

const SUCCESS: &str =
    r#"{"status":"success","reason":"ChecksPassed","message":"All checks passed"}"#;
const FAILURE: &str = r#"{"status":"failure","reason":"DnsMissing","message":"no A record"}"#;

/// How the adapter's container ends.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Ends {
    /// It exits with this code.
    Exits(i32),
    /// It never starts (image, configuration): the pod stays pending, the Job running.
    NeverStarts,
    /// The Job controller deletes the pod at the Job's deadline.
    Deadline,
}

/// One row: the adapter's script and setup, and what must come of it.
struct Row {
    name: &'static str,
    script: String,
    /// Annotations on the Job (the reporter's settings).
    annotations: &'static [(&'static str, &'static str)],
    /// Changes to the Job beyond the adapter's script.
    tweak: fn(&mut Value),
    ends: Ends,
    /// Our condition: status, reason, message.
    expect: [&'static str; 3],
}

fn write_result(json: &str) -> String {
    format!("printf '%s' '{json}' > \"$RESULTS_PATH\"")
}

fn to_termination_log(json: &str) -> String {
    format!("printf '%s' '{json}' > /dev/termination-log")
}

fn adapter(job: &mut Value) -> &mut Value {
    containers(&mut job["spec"]["template"]["spec"])
        .find(|c| c["name"] == "adapter")
        .expect("adapter container")
}

fn rows() -> Vec<Row> {
    let none = |_: &mut Value| {};
    vec![
        Row {
            name: "success",
            script: write_result(SUCCESS),
            annotations: &[],
            tweak: none,
            ends: Ends::Exits(0),
            expect: ["True", "ChecksPassed", "All checks passed"],
        },
        Row {
            name: "failure",
            script: write_result(FAILURE),
            annotations: &[],
            tweak: none,
            ends: Ends::Exits(0),
            expect: ["False", "DnsMissing", "no A record"],
        },
        Row {
            name: "invalid-file",
            script: write_result(r#"{"status":"maybe"}"#),
            annotations: &[],
            tweak: none,
            ends: Ends::Exits(0),
            expect: [
                "False",
                "InvalidResultFormat",
                "Failed to parse adapter result: invalid result format: status: must be either 'success' or 'failure'",
            ],
        },
        Row {
            name: "no-file-exit-0",
            script: "true".into(),
            annotations: &[],
            tweak: none,
            ends: Ends::Exits(0),
            expect: [
                "False",
                "AdapterMissingResults",
                "Adapter container exited successfully (code 0) but did not produce a valid result file: Completed",
            ],
        },
        Row {
            name: "exit-3",
            script: "exit 3".into(),
            annotations: &[],
            tweak: none,
            ends: Ends::Exits(3),
            expect: [
                "False",
                "AdapterExitedWithError",
                "Adapter container exited with code 3: Error",
            ],
        },
        Row {
            name: "file-then-exit-2",
            script: format!("{}; exit 2", write_result(SUCCESS)),
            annotations: &[],
            tweak: none,
            ends: Ends::Exits(2),
            expect: ["True", "ChecksPassed", "All checks passed"],
        },
        Row {
            name: "oom-killed",
            // dd's 64 MiB buffer, filled, under a 20 MiB limit.
            script: "exec dd if=/dev/zero of=/dev/null bs=64M count=1".into(),
            annotations: &[],
            tweak: |job| adapter(job)["resources"]["limits"]["memory"] = json!("20Mi"),
            ends: Ends::Exits(137),
            expect: [
                "False",
                "AdapterOOMKilled",
                "Adapter container was killed due to out of memory (OOMKilled)",
            ],
        },
        Row {
            name: "image-absent",
            script: "true".into(),
            annotations: &[],
            tweak: |job| adapter(job)["image"] = json!("localhost/test/absent:0.1"),
            ends: Ends::NeverStarts,
            expect: [
                "False",
                "AdapterImagePullFailed",
                "Adapter container adapter cannot start: ErrImageNeverPull: Container image \"localhost/test/absent:0.1\" is not present with pull policy of Never",
            ],
        },
        Row {
            name: "config-error",
            script: "true".into(),
            annotations: &[],
            tweak: |job| {
                adapter(job)["env"] = json!([{"name": "SETTING", "valueFrom":
                    {"configMapKeyRef": {"name": "absent", "key": "setting"}}}]);
            },
            ends: Ends::NeverStarts,
            expect: [
                "False",
                "AdapterConfigError",
                "Adapter container adapter cannot start: CreateContainerConfigError: configmap \"absent\" not found",
            ],
        },
        Row {
            name: "max-wait",
            script: "sleep 6".into(),
            annotations: &[
                ("status-reporter.hyperfleet.io/max-wait-seconds", "2"),
                ("status-reporter.hyperfleet.io/poll-interval-seconds", "1"),
            ],
            tweak: none,
            ends: Ends::Exits(0),
            expect: [
                "False",
                "AdapterTimeout",
                "Adapter did not produce results within 2s",
            ],
        },
        Row {
            name: "job-deadline",
            // Ends on the SIGTERM of the pod's deletion (a shell as PID 1 would ignore it).
            script: "trap 'exit 143' TERM; sleep 600 & wait".into(),
            annotations: &[],
            tweak: |job| job["spec"]["activeDeadlineSeconds"] = json!(4),
            ends: Ends::Deadline,
            expect: [
                "False",
                "AdapterTimeout",
                "Job exceeded its activeDeadlineSeconds (4s)",
            ],
        },
        Row {
            name: "message-success",
            script: to_termination_log(SUCCESS),
            annotations: &[],
            tweak: none,
            ends: Ends::Exits(0),
            expect: ["True", "ChecksPassed", "All checks passed"],
        },
        Row {
            name: "message-failure-exit-1",
            script: format!("{}; exit 1", to_termination_log(FAILURE)),
            annotations: &[],
            tweak: none,
            ends: Ends::Exits(1),
            expect: ["False", "DnsMissing", "no A record"],
        },
        Row {
            name: "message-success-exit-1",
            script: format!("{}; exit 1", to_termination_log(SUCCESS)),
            annotations: &[],
            tweak: none,
            ends: Ends::Exits(1),
            expect: [
                "False",
                "AdapterExitedWithError",
                "Adapter container exited with code 1: Error",
            ],
        },
        Row {
            name: "log-tail-crash",
            // The kubelet copies this log line into the termination message: never a result.
            script: format!("echo '{SUCCESS}'; exit 1"),
            annotations: &[],
            tweak: |job| adapter(job)["terminationMessagePolicy"] = json!("FallbackToLogsOnError"),
            ends: Ends::Exits(1),
            expect: [
                "False",
                "AdapterExitedWithError",
                "Adapter container exited with code 1: Error",
            ],
        },
    ]
}

/// Runs one row in `mode` in `ns`; `Err` says what differed.
async fn run_row(ns: &AdapterNamespace, mode: &str, row: &Row) -> Result<(), String> {
    let name = format!("{}-{}", row.name, &mode[..1]);
    let mut job = adapter_job(&name, mode, row.annotations, &row.script);
    (row.tweak)(&mut job);
    let uid = ns
        .create_job(job)
        .await
        .metadata
        .uid
        .expect("a created Job has a uid");
    let ours = ns.wait_condition(&name, "Available", WAIT).await;
    let got = [
        ours.status.as_str(),
        ours.reason.as_deref().unwrap_or_default(),
        ours.message.as_deref().unwrap_or_default(),
    ];
    if got != row.expect {
        return Err(format!("condition {got:?}, expected {:?}", row.expect));
    }
    let reporter_fails = mode == "classic" && row.expect[0] != "True";
    match row.ends {
        Ends::Exits(code) => {
            let pod = ended_pods(ns, &uid, 1, WAIT).await.remove(0);
            let failed = code != 0 || reporter_fails;
            let want_phase = if failed { "Failed" } else { "Succeeded" };
            let reporter_code = i32::from(reporter_fails);
            let seen = (
                phase(&pod).to_owned(),
                exit(&pod, "adapter").map(|e| e.0),
                exit(&pod, "status-reporter").map(|e| e.0),
            );
            if seen != (want_phase.to_owned(), Some(code), Some(reporter_code)) {
                return Err(format!(
                    "pod (phase, adapter exit, reporter exit) {seen:?}, expected ({want_phase}, {code}, {reporter_code})"
                ));
            }
            let (verdict, job) = wait_finished(ns, &name, WAIT).await;
            let want = if failed { "Failed" } else { "Complete" };
            if verdict != want {
                return Err(format!("the Job ended {verdict}, expected {want}"));
            }
            if condition(&job, "Available").map(|c| c.message) != Some(ours.message.clone()) {
                return Err("our condition did not stay beside the Job controller's".into());
            }
        }
        Ends::NeverStarts => {
            // Native: the sidecar keeps running (idle); classic: it exits 1 after reporting.
            let classic = mode == "classic";
            let pod = kubelet::wait_job_pods(
                &ns.client,
                &ns.name,
                &uid,
                "its reporter's end (classic) or start (native)",
                WAIT,
                |pods| {
                    pods.first().is_some_and(|p| {
                        let state = container_state(p, "status-reporter");
                        if classic {
                            state.terminated.is_some()
                        } else {
                            state.running.is_some()
                        }
                    })
                },
            )
            .await
            .remove(0);
            let reporter = terminated(&pod, "status-reporter").map(|t| t.exit_code);
            if classic && reporter != Some(1) {
                return Err(format!("the reporter exited {reporter:?}, expected 1"));
            }
            if phase(&pod) != "Pending" {
                return Err(format!("pod phase {}, expected Pending", phase(&pod)));
            }
            delete_job(ns, &name).await;
        }
        Ends::Deadline => {
            let (verdict, job) = wait_finished(ns, &name, WAIT).await;
            // The controller's verdict names the deadline (on `Failed`, or — when the pod it
            // deleted was counted as failed first, under load — on `FailureTarget`).
            let deadline = ["Failed", "FailureTarget"].iter().any(|t| {
                condition(&job, t).and_then(|c| c.reason).as_deref() == Some("DeadlineExceeded")
            });
            if verdict != "Failed" || !deadline {
                let conditions = job.status.and_then(|s| s.conditions).unwrap_or_default();
                return Err(format!("the Job ended {verdict}: {conditions:?}"));
            }
        }
    }
    Ok(())
}

/// Deletes a Job whose pod would wait forever, and its pods.
async fn delete_job(ns: &AdapterNamespace, name: &str) {
    let (ok, _, err) = Cluster::shared().kubectl_run(
        &["-n", &ns.name, "delete", "job", name, "--wait=false"],
        None,
    );
    assert!(ok, "delete job {name}: {err}");
}

async fn every_row(mode: &'static str) {
    let cluster = Cluster::shared().node();
    let ns = Arc::new(adapter_namespace(cluster, &format!("node-outcomes-{mode}")).await);
    // Each row a task of its own: one that panics (a bounded wait ran out) is reported with
    // the others.
    let runs: Vec<_> = rows()
        .into_iter()
        .map(|row| {
            let ns = ns.clone();
            let name = row.name;
            (
                name,
                tokio::spawn(async move { run_row(&ns, mode, &row).await }),
            )
        })
        .collect();
    let mut failures = Vec::new();
    let count = runs.len();
    for (name, run) in runs {
        let error = match run.await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Err(e) => e.to_string(),
            },
        };
        failures.push(format!("{name} ({mode}): {error}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {count} rows differ in namespace {}:\n{}",
        failures.len(),
        ns.name,
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_row_of_the_outcome_table_on_real_containers_in_native_mode() {
    every_row("native").await;
}

#[tokio::test]
async fn every_row_of_the_outcome_table_on_real_containers_in_classic_mode() {
    every_row("classic").await;
}
