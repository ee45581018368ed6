//! The patch of each recent [`Shape`], kept base64-encoded as the answer carries it, one small
//! cache per thread.
//!
//! Why: an adapter controller creates its Jobs from one template, so nearly every review a
//! cluster sends has a patch seen before. Names and uids are not in the patch (the reporter
//! reads them through the downward API), so only the shape decides it. Writing the patch and
//! encoding it was about a third of a review's cost; a hit copies it instead.
//!
//! The cache changes no answer: the key is every input of the patch ([`Shape::key`] writes
//! all of its fields), and in debug builds (every test run) each hit is written again and
//! compared with what the cache gave.

use std::cell::RefCell;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::Simd;
use base64::engine::general_purpose::PAD;

use crate::inject::Shape;
use crate::patch;

/// Shapes kept per thread: more than the adapters a cluster usually runs, few enough that a
/// linear search of the keys costs less than a hash.
const ENTRIES: usize = 8;

/// A patch encoded longer than this (a Job with very long override annotations) is written
/// each time instead of being kept: it bounds the cache at `ENTRIES` × this per thread.
const MAX_ENCODED: usize = 16 * 1024;

/// Room for a typical patch's JSON (about 2.5 KB), so a scratch buffer grows at most once.
const SCRATCH_CAPACITY: usize = 4096;

/// Standard base64 with padding, as Go writes `[]byte`; AVX2 or NEON when the CPU has it.
static BASE64: LazyLock<Simd> = LazyLock::new(|| Simd::standard(PAD));

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// Calls `answer` with the patch of `shape`, base64-encoded, and its number of operations.
pub fn with_encoded<R>(shape: &Shape<'_>, answer: impl FnOnce(&[u8], usize) -> R) -> R {
    CACHE.with_borrow_mut(|cache| {
        let Cache {
            entries,
            next,
            key,
            json,
        } = cache;
        reuse(key);
        shape.key(key);
        if let Some(entry) = entries.iter().find(|e| e.key == *key) {
            if cfg!(debug_assertions) {
                let operations = write(shape, json);
                assert!(
                    encoded(json) == entry.encoded && operations == entry.operations,
                    "the patch cache gave another patch than the shape's"
                );
            }
            return answer(&entry.encoded, entry.operations);
        }
        let operations = write(shape, json);
        let entry = if base64::encoded_len(json.len(), true).is_none_or(|n| n > MAX_ENCODED) {
            None
        } else if entries.len() < ENTRIES {
            entries.push(Entry::default());
            entries.last_mut()
        } else {
            // The oldest goes (its buffers are reused): a new shape is the one likely to come again.
            let slot = *next;
            *next = (slot + 1) % ENTRIES;
            entries.get_mut(slot)
        };
        match entry {
            Some(entry) => {
                entry.key.clone_from(key);
                encode(json, &mut entry.encoded);
                entry.operations = operations;
                answer(&entry.encoded, operations)
            }
            // Too long to keep.
            None => answer(&encoded(json), operations),
        }
    })
}

#[derive(Default)]
struct Cache {
    entries: Vec<Entry>,
    /// The slot a new shape takes once every slot is used: the oldest.
    next: usize,
    /// The key looked up, in a buffer kept from one review to the next.
    key: Vec<u8>,
    /// The patch's JSON on its way to base64, likewise kept.
    json: Vec<u8>,
}

#[derive(Default)]
struct Entry {
    key: Vec<u8>,
    encoded: Vec<u8>,
    operations: usize,
}

/// Writes the patch of `shape` as JSON into `json` (cleared first); returns its number of
/// operations.
fn write(shape: &Shape<'_>, json: &mut Vec<u8>) -> usize {
    let operations = shape.operations();
    reuse(json);
    patch::write(&operations, json);
    operations.len()
}

/// Clears a scratch buffer for the next review. One outsized patch (or key: long override
/// annotations) does not keep its room for good.
fn reuse(buf: &mut Vec<u8>) {
    buf.clear();
    if buf.capacity() > 16 * SCRATCH_CAPACITY {
        buf.shrink_to(SCRATCH_CAPACITY);
    }
}

/// `json` in base64, in a buffer of its own.
fn encoded(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(json, &mut out);
    out
}

/// `json` in base64 into `out` (cleared first, its room reused).
fn encode(json: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.resize(base64::encoded_len(json.len(), true).unwrap_or(0), 0);
    // The slice is exactly `encoded_len` long, so the encoding always fits.
    let written = BASE64.encode_slice(json, out).unwrap_or(0);
    out.truncate(written);
}
