//! The event loop: joins file notifications, pod updates, the deadline and signals, asks
//! [`outcome::decide`] after each, writes the outcome once, then exits or idles per sidecar mode.
//! There are no periodic wake-ups while waiting: every timer armed here is a real deadline.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use crate::config::{Config, SidecarMode};
use crate::events;
use crate::job_status::{Change, Clock, RetryPolicy, StatusWriter};
use crate::outcome::{self, DEFAULT_BACKOFF_LIMIT, Decision, FileState, Outcome};
use crate::pod_watch;
use crate::result::{self, ResultError};
use crate::result_watch::{FileEvent, ResultWatch};
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
    /// After SIGTERM, transient write retries stop after this long, so shutdown wait + write +
    /// Event fit the default 30 s termination grace period.
    pub shutdown_write_deadline: Duration,
    /// Condition write retries.
    pub retry: RetryPolicy,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            settle: Duration::from_millis(500),
            invalid_grace: Duration::from_secs(2),
            shutdown_wait: Duration::from_secs(10),
            event_timeout: Duration::from_secs(3),
            shutdown_write_deadline: Duration::from_secs(15),
            retry: RetryPolicy::default(),
        }
    }
}

/// Exit code: bad configuration.
pub const EXIT_CONFIG: i32 = 2;

struct FileTracker {
    path: std::path::PathBuf,
    state: FileState,
    fingerprint: Option<u64>,
    /// While an invalid file may still change: when to treat it as stable.
    settle_at: Option<Instant>,
}

impl FileTracker {
    /// Re-reads the file. `finished`: the writer closed it or renamed it into place.
    fn reread(&mut self, finished: bool, settle: Option<Duration>) {
        let now = Instant::now();
        let read = result::read_capped(&self.path);
        // Errors are fingerprinted too, so an unchanged empty or too-large file settles like
        // unchanged invalid content (a file present at start gets no close-write to end on).
        let mut h = DefaultHasher::new();
        let parsed = match read {
            Ok(bytes) => {
                bytes.hash(&mut h);
                result::parse(&bytes)
            }
            Err(e) => {
                e.to_string().hash(&mut h);
                Err(e)
            }
        };
        let fingerprint = match &parsed {
            Err(ResultError::NotFound { .. }) => None,
            _ => Some(h.finish()),
        };
        let unchanged = fingerprint.is_some() && fingerprint == self.fingerprint;
        self.fingerprint = fingerprint;
        self.state = match parsed {
            Ok(r) => FileState::Valid(r),
            Err(ResultError::NotFound { .. }) => FileState::Missing,
            // A directory/FIFO/socket will not turn into a result by itself.
            Err(e @ ResultError::NotRegularFile { .. }) => FileState::Invalid {
                error: e,
                since: now,
            },
            Err(e) if finished => FileState::Invalid {
                error: e,
                since: now,
            },
            Err(e) => match (&self.state, unchanged) {
                (FileState::Invalid { since, .. }, true) => FileState::Invalid {
                    error: e,
                    since: *since,
                },
                _ => FileState::Writing(e),
            },
        };
        self.settle_at = match (&self.state, settle) {
            (FileState::Writing(_), Some(d)) => Some(now + d),
            _ => None,
        };
        tracing::debug!(state = ?self.state, "result file read");
    }

    /// The settle timer fired: unchanged content is final.
    fn settle(&mut self, settle: Duration) {
        let before = self.fingerprint;
        self.reread(false, Some(settle));
        if let FileState::Writing(e) = &self.state
            && before.is_some()
            && before == self.fingerprint
        {
            self.state = FileState::Invalid {
                error: e.clone(),
                since: Instant::now(),
            };
            self.settle_at = None;
        }
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
    let deadline = start + cfg.max_wait;
    let writer = StatusWriter::new(
        client.clone(),
        &cfg.namespace,
        &cfg.job_name,
        &cfg.condition_type,
        timing.retry,
        clock.clone(),
    );

    // Watch before the first read so a write in between is not missed.
    let mut files = ResultWatch::new(&cfg.results_path, cfg.poll_interval);
    let mut file = FileTracker {
        path: cfg.results_path.clone(),
        state: FileState::Missing,
        fingerprint: None,
        settle_at: None,
    };
    // A file already there may have been finished before we started: settle on stability.
    file.reread(false, Some(timing.settle));

    let (mut pods, pod_watch_task) = pod_watch::spawn(
        client.clone(),
        &cfg.namespace,
        &cfg.pod_name,
        cfg.adapter_container.clone(),
    );
    let mut pods_open = true;
    let mut backoff_limit: Option<i32> = None;
    let mut shutdown_until: Option<Instant> = None;
    let shutdown_wait = match cfg.mode {
        SidecarMode::Native => timing.shutdown_wait,
        // Classic: the pod is going away with us; decide on what we know now.
        SidecarMode::Classic => Duration::ZERO,
    };

    let outcome: Outcome = loop {
        let pod = pods.borrow_and_update().clone();
        if backoff_limit.is_none() && pod.as_ref().is_some_and(|p| p.restarts_in_place) {
            // Only OnFailure pods need the Job's backoffLimit; one GET, lazily.
            backoff_limit = Some(match writer.get_job().await {
                Ok(job) => job
                    .pointer("/spec/backoffLimit")
                    .and_then(|v| v.as_i64())
                    .map_or(DEFAULT_BACKOFF_LIMIT, |v| v as i32),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the Job's backoffLimit; assuming {DEFAULT_BACKOFF_LIMIT}");
                    DEFAULT_BACKOFF_LIMIT
                }
            });
        }
        let decision = outcome::decide(&outcome::Inputs {
            file: &file.state,
            pod: pod.as_ref(),
            backoff_limit: backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT),
            max_wait: cfg.max_wait,
            deadline,
            shutdown_until,
            invalid_grace: timing.invalid_grace,
            now: Instant::now(),
        });
        let until = match decision {
            Decision::Report(o) => break o,
            Decision::Wait { until } => file.settle_at.map_or(until, |s| s.min(until)),
        };
        tokio::select! {
            ev = files.next() => match ev {
                FileEvent::Finished => file.reread(true, None),
                // inotify will tell us when the writer closes; only polling needs the settle rule.
                FileEvent::Changed => file.reread(false, None),
                FileEvent::Poll => file.settle(cfg.poll_interval),
            },
            changed = pods.changed(), if pods_open => {
                if changed.is_err() {
                    pods_open = false;
                }
                // The adapter may have exited right after writing: look at the file again.
                if pods.borrow().as_ref().is_some_and(|p| matches!(p.adapter_state, outcome::ContainerState::Terminated { .. })) {
                    file.reread(true, None);
                }
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {
                if file.settle_at.is_some_and(|s| Instant::now() >= s) {
                    file.settle(timing.settle);
                }
            },
            sig = signals.recv() => {
                tracing::info!(signal = sig, "shutdown requested before an outcome; taking a last look");
                let now = Instant::now();
                shutdown_until = Some(match shutdown_until {
                    // A second signal: stop waiting.
                    Some(_) => now,
                    None => now + shutdown_wait,
                });
                file.reread(true, None);
            },
        }
    };

    // Nothing more to watch: close the pod watch and the inotify watch before reporting.
    pod_watch_task.abort();
    drop(files);
    tracing::info!(status = outcome.status(), reason = %outcome.reason, condition_message = %outcome.message, "outcome decided");
    let writer = match shutdown_until {
        Some(_) => writer.with_deadline(timing.shutdown_write_deadline),
        None => writer,
    };
    let written = writer.write(&outcome).await;
    let ok = match &written {
        Ok(w) => {
            if w.change == Change::Unchanged {
                tracing::info!(condition_type = %cfg.condition_type, "condition already present; nothing to write");
            } else {
                tracing::info!(condition_type = %cfg.condition_type, status = outcome.status(), reason = %outcome.reason, requests = w.requests, "job status updated");
            }
            let event = events::make_event(
                &cfg.namespace,
                &cfg.job_name,
                w.uid.as_deref(),
                &cfg.pod_name,
                &outcome,
                clock(),
            );
            if w.change == Change::Updated {
                events::record(&client, &cfg.namespace, &event, timing.event_timeout).await;
            }
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "failed to write the condition");
            false
        }
    };

    match cfg.mode {
        SidecarMode::Classic => i32::from(!(ok && outcome.success)),
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
