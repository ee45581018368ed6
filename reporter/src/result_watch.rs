//! Notifications about the result file: inotify on the results DIRECTORY (so creation and
//! rename-into-place are seen), with plain polling every `POLL_INTERVAL_SECONDS` only when
//! inotify cannot be set up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// What happened to the result file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEvent {
    /// Created, written to, removed: content may still change.
    Changed,
    /// Closed after writing or renamed into place: the writer is done.
    Finished,
    /// Polling fallback tick: compare with the previous read.
    Poll,
}

/// Source of [`FileEvent`]s.
pub struct ResultWatch {
    rx: mpsc::UnboundedReceiver<FileEvent>,
    _watcher: Option<notify::RecommendedWatcher>,
    poll: Option<tokio::time::Interval>,
}

/// Maps a notify event kind to what it means for the file (pure).
pub fn classify(kind: &EventKind) -> Option<FileEvent> {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(FileEvent::Finished),
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
            Some(FileEvent::Finished)
        }
        EventKind::Access(_) => None,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => {
            Some(FileEvent::Changed)
        }
        EventKind::Any | EventKind::Other => Some(FileEvent::Changed),
    }
}

impl ResultWatch {
    /// Watches the directory of `path`; falls back to polling when that fails.
    pub fn new(path: &Path, poll_interval: Duration) -> ResultWatch {
        let (tx, rx) = mpsc::unbounded_channel();
        match Self::inotify(path, tx) {
            Ok(w) => ResultWatch {
                rx,
                _watcher: Some(w),
                poll: None,
            },
            Err(e) => {
                tracing::warn!(error = %e, interval = %crate::go_duration::format(poll_interval), "file notifications unavailable; polling the result file");
                let mut poll = tokio::time::interval(poll_interval);
                poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ResultWatch {
                    rx,
                    _watcher: None,
                    poll: Some(poll),
                }
            }
        }
    }

    /// Whether inotify is in use (false: polling fallback).
    pub fn is_notify(&self) -> bool {
        self.poll.is_none()
    }

    fn inotify(
        path: &Path,
        tx: mpsc::UnboundedSender<FileEvent>,
    ) -> Result<notify::RecommendedWatcher, crate::error::Error> {
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let name = path.file_name().map(|n| n.to_os_string());
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            let ours = event
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == name);
            if let (true, Some(ev)) = (ours, classify(&event.kind)) {
                let _ = tx.send(ev);
            }
        })
        .map_err(|source| crate::error::Error::Watch {
            path: dir.clone(),
            source,
        })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| crate::error::Error::Watch {
                path: dir.clone(),
                source,
            })?;
        Ok(watcher)
    }

    /// The next event. Pending forever when neither notifications nor polling can deliver one.
    pub async fn next(&mut self) -> FileEvent {
        if let Some(poll) = self.poll.as_mut() {
            poll.tick().await;
            return FileEvent::Poll;
        }
        match self.rx.recv().await {
            Some(ev) => ev,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind};

    #[test]
    fn classify_table() {
        let cases = [
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                Some(FileEvent::Finished),
            ),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                Some(FileEvent::Finished),
            ),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::From)),
                Some(FileEvent::Changed),
            ),
            (EventKind::Access(AccessKind::Close(AccessMode::Read)), None),
            (EventKind::Access(AccessKind::Open(AccessMode::Any)), None),
            (
                EventKind::Create(CreateKind::File),
                Some(FileEvent::Changed),
            ),
            (
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                Some(FileEvent::Changed),
            ),
            (
                EventKind::Remove(RemoveKind::File),
                Some(FileEvent::Changed),
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(classify(&kind), want, "{kind:?}");
        }
    }

    #[tokio::test]
    async fn sees_rename_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("adapter-result.json");
        let mut w = ResultWatch::new(&target, Duration::from_secs(1));
        assert!(w.is_notify());
        let tmp = dir.path().join("tmp.json");
        std::fs::write(&tmp, "{}").unwrap();
        std::fs::rename(&tmp, &target).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if w.next().await == FileEvent::Finished {
                    return;
                }
            }
        })
        .await;
        assert!(got.is_ok(), "no Finished event for rename into place");
    }
}
