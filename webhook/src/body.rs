//! Request bodies in memory: a limit per request and one budget over all requests, so bodies
//! can never take the webhook past its memory limit however many clients send them.
//!
//! The budget has two pools. A quarter is kept for bodies of up to [`SMALL_BODY_BYTES`]
//! (nearly every AdmissionReview): they take bytes as they arrive and, when the pool is full,
//! wait for room (within the request timeout). The rest is for larger bodies, which take their
//! whole size at once and are refused with 503 when it is not there — so a flood of large,
//! unfinished bodies fills only the large pool and never delays an ordinary review.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies up to this size draw on the small pool.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;

/// The limit per request and the budget shared by all.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// Largest body of one request.
    pub per_request: usize,
    /// Bytes of all bodies held at once.
    pub budget: BodyBudget,
}

/// The budget of body bytes held in memory at once, over all requests.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    small: Arc<Semaphore>,
    large: Arc<Semaphore>,
}

impl BodyBudget {
    /// A budget of `total` bytes: a quarter for small bodies, the rest for large ones.
    /// `total` is checked by [`crate::server::ServeArgs::body_limits`] (at most `u32::MAX`,
    /// the large pool at least `--max-body-bytes`).
    pub fn new(total: usize) -> Self {
        let small = total / 4;
        BodyBudget {
            small: Arc::new(Semaphore::new(small)),
            large: Arc::new(Semaphore::new(total - small)),
        }
    }

    /// An empty reservation, grown as the body is read.
    pub fn reserve(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            small: None,
            large: None,
            bytes: 0,
        }
    }
}

/// Bytes of the budget one request holds; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: BodyBudget,
    small: Option<OwnedSemaphorePermit>,
    large: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

/// The large pool has no room for this body now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds at least `total` bytes: from the small pool while `total` fits
    /// [`SMALL_BODY_BYTES`] (waiting for room), else all of it from the large pool at once
    /// (never waiting, so a request waiting for room holds nothing another could use).
    pub async fn grow_to(&mut self, total: usize) -> Result<(), OverBudget> {
        if total <= self.bytes {
            return Ok(());
        }
        if total <= SMALL_BODY_BYTES {
            let more = permits(total - self.bytes)?;
            let permit = self
                .budget
                .small
                .clone()
                .acquire_many_owned(more)
                .await
                .map_err(|_| OverBudget)?;
            merge(&mut self.small, permit);
        } else {
            let held_large = self.large.as_ref().map_or(0, |p| p.num_permits());
            let more = permits(total - held_large)?;
            let permit = self
                .budget
                .large
                .clone()
                .try_acquire_many_owned(more)
                .map_err(|_| OverBudget)?;
            merge(&mut self.large, permit);
            // The whole body is now counted in the large pool.
            self.small = None;
        }
        self.bytes = total;
        Ok(())
    }
}

fn permits(bytes: usize) -> Result<u32, OverBudget> {
    u32::try_from(bytes).map_err(|_| OverBudget)
}

fn merge(held: &mut Option<OwnedSemaphorePermit>, more: OwnedSemaphorePermit) {
    match held {
        Some(p) => p.merge(more),
        None => *held = Some(more),
    }
}

/// Why a body was not read; each maps to one HTTP answer.
#[derive(Debug)]
pub enum BodyRefusal {
    /// Over the per-request limit (by its Content-Length, or as it arrived): 413.
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The budget has no room for it now: 503.
    OverBudget,
    /// The client sent a broken body or went away: 400.
    Read(String),
}

impl std::fmt::Display for BodyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyRefusal::TooLarge { limit } => write!(
                f,
                "request body over the limit of {limit} bytes (--max-body-bytes)"
            ),
            BodyRefusal::OverBudget => f.write_str(
                "request bodies in memory are at the limit (--max-body-memory-bytes); try again shortly",
            ),
            BodyRefusal::Read(cause) => write!(f, "cannot read the request body: {cause}"),
        }
    }
}

/// Reads a whole body within `limits`; the reservation holds its bytes until dropped. A
/// Content-Length over the limit, or one the large pool cannot hold now, is refused before
/// anything is read — so before `100 Continue` is sent.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: &BodyLimits,
) -> Result<(Bytes, Reservation), BodyRefusal> {
    let (limit, budget) = (limits.per_request, &limits.budget);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(headers, body, 0, limit).await);
    }
    let mut reservation = budget.reserve();
    // A large body takes its whole size up front; a small one takes bytes as they come, so a
    // client that stalls holds only what it actually sent.
    if let Some(n) = declared.filter(|&n| n > SMALL_BODY_BYTES) {
        reservation
            .grow_to(n)
            .await
            .map_err(|OverBudget| BodyRefusal::OverBudget)?;
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyRefusal::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let total = buf.len() + data.len();
        if total > limit {
            return Err(too_large(headers, body, total, limit).await);
        }
        reservation
            .grow_to(total)
            .await
            .map_err(|OverBudget| BodyRefusal::OverBudget)?;
        buf.extend_from_slice(&data);
    }
    Ok((buf.freeze(), reservation))
}

/// Refuses a body over `limit`, of which `read` bytes were read. A client that did not ask
/// for `100 Continue` is sending the body anyway: over HTTP/1.1 it would see the connection
/// closed mid-upload and never read the answer, so up to `limit` more bytes are read and
/// dropped first (nothing is kept; the request timeout bounds the time).
async fn too_large(headers: &HeaderMap, mut body: Body, read: usize, limit: usize) -> BodyRefusal {
    let expects_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !expects_continue {
        let mut dropped = read;
        while dropped <= limit.saturating_mul(2) {
            match body.frame().await {
                Some(Ok(frame)) => dropped += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    }
    BodyRefusal::TooLarge { limit }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1024;

    #[tokio::test]
    async fn small_bodies_use_their_own_pool_and_large_ones_take_all_at_once() {
        let budget = BodyBudget::new(1024 * KIB); // small 256 KiB, large 768 KiB
        let mut large = budget.reserve();
        large.grow_to(700 * KIB).await.unwrap();
        // The large pool is nearly full: another large body is refused at once…
        assert_eq!(budget.reserve().grow_to(100 * KIB).await, Err(OverBudget));
        // …while small bodies still get room.
        let mut small = budget.reserve();
        small.grow_to(SMALL_BODY_BYTES).await.unwrap();
        assert_eq!(small.bytes(), SMALL_BODY_BYTES);
        drop(large);
        budget.reserve().grow_to(700 * KIB).await.unwrap();
    }

    #[tokio::test]
    async fn growing_past_the_small_limit_moves_the_whole_body_to_the_large_pool() {
        let budget = BodyBudget::new(1024 * KIB);
        let mut r = budget.reserve();
        r.grow_to(60 * KIB).await.unwrap();
        assert_eq!(budget.small.available_permits(), 256 * KIB - 60 * KIB);
        r.grow_to(100 * KIB).await.unwrap();
        assert_eq!(budget.small.available_permits(), 256 * KIB);
        assert_eq!(budget.large.available_permits(), 768 * KIB - 100 * KIB);
        drop(r);
        assert_eq!(budget.large.available_permits(), 768 * KIB);
    }
}
