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

/// Room for a typical patch's JSON (about 2.5 KB), so its buffer grows at most once.
const JSON_CAPACITY: usize = 4096;

/// Standard base64 with padding, as Go writes `[]byte`; AVX2 or NEON when the CPU has it.
static BASE64: LazyLock<Simd> = LazyLock::new(|| Simd::standard(PAD));

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// Calls `answer` with the patch of `shape`, base64-encoded, and its number of operations.
pub fn with_encoded<R>(shape: &Shape<'_>, answer: impl FnOnce(&[u8], usize) -> R) -> R {
    CACHE.with_borrow_mut(|cache| {
        cache.key.clear();
        shape.key(&mut cache.key);
        if let Some(i) = cache.entries.iter().position(|e| *e.key == *cache.key) {
            let entry = &cache.entries[i];
            if cfg!(debug_assertions) {
                let (encoded, operations) = render(shape, &mut cache.json);
                assert!(
                    *encoded == *entry.encoded && operations == entry.operations,
                    "the patch cache gave another patch than the shape's"
                );
            }
            return answer(&entry.encoded, entry.operations);
        }
        let (encoded, operations) = render(shape, &mut cache.json);
        if encoded.len() > MAX_ENCODED {
            return answer(&encoded, operations);
        }
        let entry = Entry {
            key: cache.key.as_slice().into(),
            encoded: encoded.into_boxed_slice(),
            operations,
        };
        let slot = if cache.entries.len() < ENTRIES {
            cache.entries.push(entry);
            cache.entries.len() - 1
        } else {
            // The oldest goes: a new shape is the one likely to come again.
            let slot = cache.next;
            cache.next = (slot + 1) % ENTRIES;
            cache.entries[slot] = entry;
            slot
        };
        let entry = &cache.entries[slot];
        answer(&entry.encoded, entry.operations)
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

struct Entry {
    key: Box<[u8]>,
    encoded: Box<[u8]>,
    operations: usize,
}

/// The patch of `shape` written and encoded (exactly as long as it needs to be), and its
/// number of operations. `json` is the scratch buffer for the JSON.
fn render(shape: &Shape<'_>, json: &mut Vec<u8>) -> (Vec<u8>, usize) {
    let operations = shape.operations();
    json.clear();
    if json.capacity() > 16 * JSON_CAPACITY {
        // An outsized patch once does not keep its buffer for good.
        json.shrink_to(JSON_CAPACITY);
    }
    patch::write(&operations, json);
    (BASE64.encode(&json).into_bytes(), operations.len())
}
