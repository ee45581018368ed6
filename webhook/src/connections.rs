//! The table of open connections: at most `--max-connections`, each known to be busy (a
//! request in progress) or idle (no request yet, or between keep-alive requests).
//!
//! A new connection beyond the limit takes the place of the connection idle the longest,
//! which is closed; when every connection is busy, the new one is refused. So clients that
//! connect and send nothing cannot lock out the API server: their connections are the first
//! to go, and are closed anyway after the header-read timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The open connections and the limit on them.
#[derive(Debug)]
pub struct Connections {
    max: usize,
    /// Cancelled to close every connection at once (end of the drain, second signal).
    close_all: CancellationToken,
    /// Orders idle periods: a connection that became idle earlier has a smaller number.
    idle_clock: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

/// What [`Connections::admit`] did.
#[derive(Debug)]
pub enum Admission {
    /// Room was free.
    Admitted(Slot),
    /// The longest-idle connection was closed to make room.
    Evicted(Slot),
    /// Every connection is busy: close the new one.
    Refused,
}

impl Connections {
    /// A table for at most `max` connections (at least one).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Connections {
            max: max.max(1),
            close_all: CancellationToken::new(),
            idle_clock: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// Makes room for a new connection (see the module docs).
    pub fn admit(self: &Arc<Self>) -> Admission {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut evicted = false;
        if open.len() >= self.max {
            let idlest = open
                .values()
                .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|c| c.idle_since.load(Ordering::Acquire))
                .map(|c| c.id);
            let Some(id) = idlest else {
                return Admission::Refused;
            };
            if let Some(c) = open.remove(&id) {
                c.close.cancel();
            }
            evicted = true;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            id,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.tick()),
            served: AtomicBool::new(false),
            close: self.close_all.child_token(),
            activity: Notify::new(),
            table: Arc::downgrade(self),
        });
        open.insert(id, connection.clone());
        let slot = Slot(connection);
        if evicted {
            Admission::Evicted(slot)
        } else {
            Admission::Admitted(slot)
        }
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every connection now.
    pub fn close_all(&self) {
        self.close_all.cancel();
    }

    fn tick(&self) -> u64 {
        self.idle_clock.fetch_add(1, Ordering::Relaxed)
    }
}

/// One open connection, shared by its task and the requests it serves.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    in_flight: AtomicUsize,
    idle_since: AtomicU64,
    served: AtomicBool,
    close: CancellationToken,
    activity: Notify,
    table: std::sync::Weak<Connections>,
}

impl Connection {
    /// Marks a request as started (its head is complete); idle again when the guard drops.
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.activity.notify_one();
        RequestGuard(self.clone())
    }

    /// Whether a request is in progress.
    pub fn is_busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// Whether it has sent at least one complete request head.
    pub fn has_served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }

    /// Resolves when a request starts or ends on it.
    pub async fn activity(&self) {
        self.activity.notified().await;
    }

    /// Resolves when it must be closed at once (evicted, or everything is being closed).
    pub async fn closed(&self) {
        self.close.cancelled().await;
    }
}

/// A request in progress on a [`Connection`].
#[derive(Debug)]
pub struct RequestGuard(Arc<Connection>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let c = &self.0;
        if c.in_flight.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(table) = c.table.upgrade()
        {
            c.idle_since.store(table.tick(), Ordering::Release);
        }
        c.activity.notify_one();
    }
}

/// A connection's place in the table, given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<Connection>);

impl Slot {
    /// The connection.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(table) = self.0.table.upgrade() {
            // Ids are never reused: an evicted connection's entry is already gone.
            let mut open = table.open.lock().unwrap_or_else(|e| e.into_inner());
            open.remove(&self.0.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt as _;

    use super::*;

    fn slot(a: Admission) -> Slot {
        match a {
            Admission::Admitted(s) | Admission::Evicted(s) => s,
            Admission::Refused => panic!("refused"),
        }
    }

    fn is_closed(c: &Connection) -> bool {
        c.closed().now_or_never().is_some()
    }

    #[test]
    fn at_the_limit_the_longest_idle_connection_makes_room() {
        let table = Connections::new(3);
        let first = slot(table.admit());
        let second = slot(table.admit());
        let third = slot(table.admit());
        // `first` is busy; `second` has been idle longest; `third` just finished a request.
        let _busy = first.connection().request_started();
        drop(third.connection().request_started());

        let fourth = table.admit();
        assert!(matches!(fourth, Admission::Evicted(_)), "{fourth:?}");
        assert!(is_closed(second.connection()));
        assert!(!is_closed(first.connection()) && !is_closed(third.connection()));
        assert_eq!(table.len(), 3);
        // Its task ending later does not free the place its successor took.
        drop(second);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn when_every_connection_is_busy_the_new_one_is_refused() {
        let table = Connections::new(2);
        let a = slot(table.admit());
        let b = slot(table.admit());
        let _ra = a.connection().request_started();
        let rb = b.connection().request_started();
        assert!(matches!(table.admit(), Admission::Refused));
        drop(rb);
        assert!(matches!(table.admit(), Admission::Evicted(_)));
        assert!(is_closed(b.connection()));
    }

    #[test]
    fn a_closed_slot_frees_its_place_and_close_all_reaches_everyone() {
        let table = Connections::new(2);
        let a = slot(table.admit());
        let b = slot(table.admit());
        drop(a);
        assert_eq!(table.len(), 1);
        assert!(matches!(table.admit(), Admission::Admitted(_)));
        table.close_all();
        assert!(is_closed(b.connection()));
    }

    #[test]
    fn requests_mark_a_connection_busy_and_served() {
        let table = Connections::new(1);
        let s = slot(table.admit());
        let c = s.connection();
        assert!(!c.has_served() && !c.is_busy());
        let r1 = c.request_started();
        let r2 = c.request_started();
        drop(r1);
        assert!(c.is_busy());
        drop(r2);
        assert!(!c.is_busy() && c.has_served());
        assert!(
            c.activity().now_or_never().is_some(),
            "activity was signalled"
        );
    }
}
