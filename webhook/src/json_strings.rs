//! The bytes a JSON string cannot hold as they are — `"`, `\` and control characters — found
//! sixteen at a time. The patch writer asks whether a string needs escaping; the review reader
//! asks where a string ends (or needs decoding). One definition, so the two cannot disagree.

use wide::u8x16;

/// The index of the first byte of `s` that is `"`, `\` or below 0x20, if any.
///
/// Sixteen bytes at a time with SIMD compares (SSE2 on x86_64, NEON on aarch64, through
/// `wide`'s safe types): most keys and values of a review end within the first sixteen
/// bytes, so the loop usually runs once and the end is found without a branch per byte. The
/// last fifteen bytes or fewer go eight at a time, then one by one ([`find_special_swar`]).
#[inline]
pub(crate) fn find_special(s: &[u8]) -> Option<usize> {
    let quote = u8x16::splat(b'"');
    let backslash = u8x16::splat(b'\\');
    let control = u8x16::splat(0x1f);
    let mut chunks = s.chunks_exact(16);
    let mut at = 0;
    for chunk in &mut chunks {
        // `chunks_exact`: always sixteen bytes, so the conversion never falls back.
        let v = u8x16::new(chunk.try_into().unwrap_or_default());
        let hits = v.simd_eq(quote) | v.simd_eq(backslash) | v.min(control).simd_eq(v);
        let mask = hits.to_bitmask();
        if mask != 0 {
            return Some(at + mask.trailing_zeros() as usize);
        }
        at += 16;
    }
    find_special_swar(chunks.remainder()).map(|i| at + i)
}

/// [`find_special`] eight bytes at a time in a `u64`, for what is left of sixteen.
///
/// `(v - n) & !v & HIGH` flags the bytes of `v` below `n` (n <= 0x80), and `"` and `\`
/// become zero bytes after an xor. Borrows only run upwards, so the lowest flagged byte
/// (little-endian: the first in `s`) is always a true hit.
#[inline]
fn find_special_swar(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & HIGH;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        let hits = below(v, 0x20) | below(quote, 1) | below(backslash, 1);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|i| at + i)
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
