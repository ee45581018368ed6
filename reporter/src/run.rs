//! The event loop: joins file notifications, pod updates, the deadline and signals, asks
//! [`outcome::decide`] after each, writes the outcome once, then exits or idles per sidecar mode.
//! There are no periodic wake-ups while waiting: every timer armed here is a real deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use contract::SidecarMode;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::Error;
use crate::events;
use crate::job_status::{Change, Clock, StatusWriter};
use crate::outcome::{self, DEFAULT_BACKOFF_LIMIT, Decision, Outcome, later};
use crate::pod_watch;
use crate::pods::Pods;
use crate::read_result;
use crate::report::{self, Reported};
use crate::result_file::{Read, ResultFile};
use crate::result_watch::{FileEvent, ResultWatch};
use crate::retry::{Deadline, RetryPolicy};
use crate::shutdown::Signals;

/// Timers the loop uses (fixed in production, shortened in tests).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A pre-existing or polled invalid file counts as final once unchanged this long.
    pub settle: Duration,
    /// A final invalid file waits this long for the adapter's own exit (abnormal exit wins).
    pub invalid_grace: Duration,
    /// After SIGTERM, how long to wait for the adapter's terminated state (native mode).
    pub shutdown_wait: Duration,
    /// Timeout for the best-effort Event.
    pub event_timeout: Duration,
    /// Budget of the best-effort record of the attempt on its own pod.
    pub record_budget: Duration,
    /// The condition's write deadline.
    pub write_deadline: Duration,
    /// After SIGTERM, the whole report (condition, pod record, Event) ends within this long,
    /// whatever the API does, so shutdown wait + report fit the default 30 s grace period.
    pub shutdown_report_budget: Duration,
    /// Retries of each API call.
    pub retry: RetryPolicy,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            settle: Duration::from_millis(500),
            invalid_grace: Duration::from_secs(2),
            shutdown_wait: Duration::from_secs(10),
            event_timeout: Duration::from_secs(3),
            record_budget: Duration::from_secs(5),
            write_deadline: Duration::from_secs(60),
            shutdown_report_budget: Duration::from_secs(18),
            retry: RetryPolicy::default(),
        }
    }
}

/// Exit code: bad configuration.
pub const EXIT_CONFIG: i32 = 2;

/// Reads the result file and feeds the read to `file`.
fn reread(file: &mut ResultFile, path: &Path, why: Read) {
    file.observe(read_result::read_capped(path), why, Instant::now());
    tracing::debug!(state = ?file.state(), "result file read");
}

/// The Job's `backoffLimit`, read once and only for `OnFailure` pods; Kubernetes' default
/// when it cannot be read.
async fn backoff_limit(writer: StatusWriter, budget: Duration) -> i32 {
    match writer.get_job(&Deadline::after(budget)).await {
        Ok((job, _)) => job
            .data
            .pointer("/spec/backoffLimit")
            .and_then(|v| v.as_i64())
            .map_or(DEFAULT_BACKOFF_LIMIT, |v| {
                i32::try_from(v).unwrap_or(i32::MAX)
            }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the Job's backoffLimit; assuming {DEFAULT_BACKOFF_LIMIT}");
            DEFAULT_BACKOFF_LIMIT
        }
    }
}

/// The running `backoffLimit` read, or pending forever when there is none.
async fn fetched(read: &mut Option<JoinHandle<i32>>) -> i32 {
    match read {
        Some(task) => task.await.unwrap_or(DEFAULT_BACKOFF_LIMIT),
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`; pending forever without one.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The sidecar; returns the process exit code.
pub async fn run(
    cfg: Config,
    client: kube::Client,
    mut signals: Signals,
    clock: Clock,
    timing: Timing,
) -> i32 {
    tracing::info!(
        job = %cfg.job_name, namespace = %cfg.namespace, pod = %cfg.pod_name,
        results_path = %cfg.results_path.display(), max_wait = %crate::go_duration::format(cfg.max_wait),
        condition_type = %cfg.condition_type, adapter = cfg.adapter_container.as_deref().unwrap_or("(auto-detect)"),
        mode = ?cfg.mode, "status reporter starting"
    );
    let start = Instant::now();
    let deadline = later(start, cfg.max_wait);
    let writer = StatusWriter::new(
        client.clone(),
        &cfg.namespace,
        &cfg.job_name,
        &cfg.condition_type,
        timing.retry,
        clock,
    );

    // Watch before the first read so a write in between is not missed.
    let mut files = ResultWatch::new(&cfg.results_path, cfg.poll_interval);
    // Polling sees a change only every poll interval: content settles over one.
    let settle = match files.is_notify() {
        true => timing.settle,
        false => timing.settle.max(cfg.poll_interval),
    };
    let mut file = ResultFile::new(settle);
    // A file already there may have been finished before we started: settle on stability.
    reread(&mut file, &cfg.results_path, Read::Unannounced);

    let (mut pods, pod_watch_task) = pod_watch::spawn(
        client.clone(),
        &cfg.namespace,
        &cfg.pod_name,
        cfg.adapter_container.clone(),
    );
    let mut pods_open = true;
    let mut backoff: Option<i32> = None;
    // The Job's backoffLimit is read beside the loop, so API trouble never delays a signal,
    // a file event or a timer; until it is known, restarts in place are never out of tries.
    let mut backoff_read: Option<JoinHandle<i32>> = None;
    let mut shutdown_until: Option<Instant> = None;
    let shutdown_wait = match cfg.mode {
        SidecarMode::Native => timing.shutdown_wait,
        // Classic: the pod is going away with us; decide on what we know now.
        SidecarMode::Classic => Duration::ZERO,
    };

    let outcome: Outcome = loop {
        let pod = pods.borrow_and_update().clone();
        if backoff.is_none()
            && backoff_read.is_none()
            && pod.as_ref().is_some_and(|p| p.restarts_in_place)
        {
            backoff_read = Some(tokio::spawn(backoff_limit(
                writer.clone(),
                timing.write_deadline,
            )));
        }
        let decision = outcome::decide(&outcome::Inputs {
            file: file.state(),
            pod: pod.as_ref(),
            backoff_limit: backoff.unwrap_or(match backoff_read {
                Some(_) => i32::MAX,
                None => DEFAULT_BACKOFF_LIMIT,
            }),
            max_wait: cfg.max_wait,
            deadline,
            shutdown_until,
            invalid_grace: timing.invalid_grace,
            now: Instant::now(),
        });
        let until = match decision {
            Decision::Report(o) => break o,
            Decision::Wait { until } => file.settle_at().map_or(until, |s| s.min(until)),
        };
        tokio::select! {
            ev = files.next() => match ev {
                FileEvent::Finished => reread(&mut file, &cfg.results_path, Read::Finished),
                FileEvent::Changed => reread(&mut file, &cfg.results_path, Read::Changed),
                FileEvent::Poll => reread(&mut file, &cfg.results_path, Read::Unannounced),
            },
            changed = pods.changed(), if pods_open => {
                if changed.is_err() {
                    pods_open = false;
                }
                // The adapter may have exited right after writing: look at the file again.
                if pods.borrow().as_ref().is_some_and(|p| matches!(p.adapter_state, outcome::ContainerState::Terminated { .. })) {
                    reread(&mut file, &cfg.results_path, Read::Finished);
                }
            },
            limit = fetched(&mut backoff_read) => {
                backoff = Some(limit);
                backoff_read = None;
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {
                if file.settle_at().is_some_and(|s| Instant::now() >= s) {
                    reread(&mut file, &cfg.results_path, Read::Unannounced);
                }
            },
            sig = signals.recv() => {
                tracing::info!(signal = sig, "shutdown requested before an outcome; taking a last look");
                let now = Instant::now();
                shutdown_until = Some(match shutdown_until {
                    // A second signal: stop waiting.
                    Some(_) => now,
                    None => later(now, shutdown_wait),
                });
                reread(&mut file, &cfg.results_path, Read::Finished);
            },
        }
    };

    if let Some(task) = backoff_read {
        task.abort();
    }
    // Nothing more to watch: close the pod watch and the inotify watch before reporting.
    pod_watch_task.abort();
    drop(files);
    tracing::info!(status = outcome.status(), reason = %outcome.reason, condition_message = %outcome.message, "outcome decided");
    let context = report::Context {
        namespace: cfg.namespace.clone(),
        job: cfg.job_name.clone(),
        pod: cfg.pod_name.clone(),
        job_uid: cfg.job_uid.clone(),
        pods: Pods::new(client.clone(), &cfg.namespace, timing.retry),
        recorder: events::recorder(client, &cfg.pod_name),
        writer,
        record_budget: timing.record_budget,
        event_timeout: timing.event_timeout,
    };
    let view = pods.borrow().clone();
    let write_deadline = match shutdown_until {
        Some(_) => Deadline::after(timing.shutdown_report_budget),
        None => Deadline::after(timing.write_deadline),
    };
    // A SIGTERM during the report bounds all of it (condition, pod record, Event) to the
    // shutdown budget from that moment, whatever the API does: the kubelet's SIGKILL at the end
    // of the grace period must not find it mid-write.
    let mut cut: Option<Deadline> = shutdown_until.map(|_| write_deadline);
    let reporting = report::report(&context, outcome.clone(), view.as_ref(), &write_deadline);
    tokio::pin!(reporting);
    let result = loop {
        let cut_at = cut.map(|d| d.at);
        tokio::select! {
            r = &mut reporting => break r,
            sig = signals.recv(), if cut.is_none() => {
                tracing::info!(signal = sig, budget = %crate::go_duration::format(timing.shutdown_report_budget), "shutdown requested while reporting; finishing within the shutdown budget");
                cut = Some(Deadline::after(timing.shutdown_report_budget));
                shutdown_until = Some(Instant::now());
            },
            () = until(cut_at) => {
                break Err(Error::ShutdownBudget {
                    budget: crate::go_duration::format(timing.shutdown_report_budget),
                });
            },
        }
    };
    let (ok, success) = match result {
        Ok(r) => {
            let requests = r.requests;
            match &r.reported {
                Reported::Written {
                    change: Change::Updated,
                    condition,
                } => {
                    tracing::info!(condition_type = %cfg.condition_type, status = %condition.status, reason = %condition.reason, condition_message = %condition.message, requests, "reported: job status updated");
                }
                Reported::Written { .. } => {
                    tracing::info!(condition_type = %cfg.condition_type, requests, "reported: condition already present; nothing to write");
                }
                Reported::Superseded { newer } => {
                    tracing::info!(newer = %newer, requests, "reported: superseded by a newer attempt of this Job, which owns its condition; outcome recorded on the pod and in the Event only");
                }
                Reported::Suspended => {
                    tracing::info!(
                        requests,
                        "reported: nothing, the Job is suspended (its pods were deleted for that); the resumed Job's pods report"
                    );
                }
            }
            (true, r.outcome.success)
        }
        Err(e) => {
            tracing::error!(error = %e, "failed to write the condition");
            (false, outcome.success)
        }
    };

    match cfg.mode {
        SidecarMode::Classic => i32::from(!(ok && success)),
        SidecarMode::Native => {
            if !ok {
                // Exiting makes the kubelet restart us, which retries the whole report.
                return 1;
            }
            if shutdown_until.is_none() {
                tracing::info!(
                    "outcome reported; idling until the pod shuts down (native sidecar)"
                );
                let sig = signals.recv().await;
                tracing::info!(signal = sig, "shutting down");
            }
            0
        }
    }
}
