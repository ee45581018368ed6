//! The bytes a JSON string cannot hold as they are — `"`, `\` and control characters — found
//! sixteen at a time. The patch writer asks whether a string needs escaping; the review reader
//! asks where a string ends (or needs decoding). One definition, so the two cannot disagree.

use wide::u8x16;

/// The index of the first byte of `s` that is `"`, `\` or below 0x20, if any.
///
/// Sixteen bytes at a time with SIMD compares (SSE2 on x86_64, NEON on aarch64, through
/// `wide`'s safe types): most keys and values of a review end within the first sixteen
/// bytes, so the loop usually runs once and the end is found without a branch per byte. The
/// last fifteen bytes or fewer are copied into a chunk padded with spaces (not special) and
/// compared the same way: short strings — log field names, most values the patch writes —
/// cost one compare, not a loop over their bytes.
#[inline]
pub(crate) fn find_special(s: &[u8]) -> Option<usize> {
    let mut chunks = s.chunks_exact(16);
    let mut at = 0;
    for chunk in &mut chunks {
        // `chunks_exact`: always sixteen bytes, so the conversion never falls back.
        if let Some(i) = special_in(chunk.try_into().unwrap_or([b' '; 16])) {
            return Some(at + i);
        }
        at += 16;
    }
    let tail = chunks.remainder();
    if tail.is_empty() {
        return None;
    }
    let mut padded = [b' '; 16];
    padded[..tail.len()].copy_from_slice(tail);
    special_in(padded).map(|i| at + i)
}

/// The index of the first special byte of one sixteen-byte chunk.
#[inline]
fn special_in(chunk: [u8; 16]) -> Option<usize> {
    let v = u8x16::new(chunk);
    let hits = v.simd_eq(u8x16::splat(b'"'))
        | v.simd_eq(u8x16::splat(b'\\'))
        | v.min(u8x16::splat(0x1f)).simd_eq(v);
    let mask = hits.to_bitmask();
    (mask != 0).then(|| mask.trailing_zeros() as usize)
}

/// Whether serde_json escapes any byte of `s`.
pub(crate) fn needs_escape(s: &[u8]) -> bool {
    find_special(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_special(b: u8) -> bool {
        b < 0x20 || b == b'"' || b == b'\\'
    }

    #[test]
    fn find_special_agrees_with_a_byte_by_byte_search_for_every_byte_at_every_place() {
        let naive = |s: &[u8]| s.iter().position(|&b| is_special(b));
        for len in [1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 40] {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = byte;
                    assert_eq!(find_special(&s), naive(&s), "{s:?}");
                    // Neighbours that could borrow into the byte under test.
                    s.iter_mut().filter(|b| **b == b'a').for_each(|b| *b = 0xff);
                    assert_eq!(find_special(&s), naive(&s), "{s:?}");
                    s.iter_mut().filter(|b| **b == 0xff).for_each(|b| *b = 0x20);
                    assert_eq!(find_special(&s), naive(&s), "{s:?}");
                    // A second hit after the first: the first is the one found.
                    s[len - 1] = b'"';
                    assert_eq!(find_special(&s), naive(&s), "{s:?}");
                }
            }
        }
        assert_eq!(find_special(b""), None);
        assert!(!needs_escape(b"plain"));
    }
}
