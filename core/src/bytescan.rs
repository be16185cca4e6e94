//! Block-at-a-time byte scanning for the JSON hot paths.
//!
//! Finding the end of a JSON string run (a `"`, a `\` or a control byte) is
//! most of the work of reading and writing Falco lines. On x86_64 the scans
//! check sixteen bytes per step with SSE2 (part of every x86_64 CPU): the
//! crate's only `unsafe`, confined to calling those intrinsics on register
//! values. Elsewhere, a portable word-at-a-time scan does eight per step; the
//! tests hold both to the obvious byte loop.

/// The portable scans, eight bytes per step: used where SSE2 is not
/// available, and as the reference the SSE2 scans are tested against.
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    allow(dead_code)
)]
mod swar {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;

    /// High bit set in each byte of `w` that is zero (exact on the lowest such
    /// byte, which is all `trailing_zeros` needs).
    #[inline(always)]
    fn zero_bytes(w: u64) -> u64 {
        w.wrapping_sub(LO) & !w & HI
    }

    /// High bit set in each byte of `w` that is below `n` (`n` ≤ 128).
    #[inline(always)]
    fn bytes_below(w: u64, n: u8) -> u64 {
        w.wrapping_sub(LO * u64::from(n)) & !w & HI
    }

    /// Index of the first byte with `is_special`, eight bytes per step:
    /// `word_hits` flags candidate bytes of a little-endian word (its lowest flag
    /// must be exact; higher ones may be false positives), which are then
    /// confirmed byte by byte.
    #[inline(always)]
    fn find_first(
        bytes: &[u8],
        word_hits: impl Fn(u64) -> u64,
        is_special: impl Fn(u8) -> bool,
    ) -> Option<usize> {
        let mut i = 0;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let w = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
            let hits = word_hits(w);
            if hits != 0 {
                let first = (hits.trailing_zeros() / 8) as usize;
                if let Some(j) = chunk[first..].iter().position(|&b| is_special(b)) {
                    return Some(i + first + j);
                }
            }
            i += 8;
        }
        chunks
            .remainder()
            .iter()
            .position(|&b| is_special(b))
            .map(|j| i + j)
    }

    /// Portable [`super::find_json_special`].
    pub(super) fn find_json_special(bytes: &[u8], extra: u8) -> Option<usize> {
        find_first(
            bytes,
            |w| {
                zero_bytes(w ^ (LO * u64::from(b'"')))
                    | zero_bytes(w ^ (LO * u64::from(b'\\')))
                    | zero_bytes(w ^ (LO * u64::from(extra)))
                    | bytes_below(w, 0x20)
            },
            |b| b == b'"' || b == b'\\' || b < 0x20 || b == extra,
        )
    }

    /// Portable [`super::find_repr_special`].
    pub(super) fn find_repr_special(bytes: &[u8], quote: u8) -> Option<usize> {
        find_first(
            bytes,
            |w| {
                // Bytes ≥ 0x7f: high bit set, or exactly 0x7f.
                (w & HI)
                    | zero_bytes(w ^ (LO * 0x7f))
                    | zero_bytes(w ^ (LO * u64::from(quote)))
                    | zero_bytes(w ^ (LO * u64::from(b'\\')))
                    | bytes_below(w, 0x20)
            },
            |b| !(b' '..=b'~').contains(&b) || b == quote || b == b'\\',
        )
    }

    /// Portable [`super::has_json_special`]: reads a short tail as one
    /// space-padded word, so short field values cost one step.
    #[inline]
    pub(super) fn has_json_special(bytes: &[u8], extra: u8) -> bool {
        let hits = |w: u64| {
            zero_bytes(w ^ (LO * u64::from(b'"')))
                | zero_bytes(w ^ (LO * u64::from(b'\\')))
                | zero_bytes(w ^ (LO * u64::from(extra)))
                | bytes_below(w, 0x20)
        };
        let word = |chunk: &[u8]| u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        let n = bytes.len();
        if n < 8 {
            return hits(short_word(bytes)) != 0;
        }
        // Each word's flags are non-zero exactly when one of its bytes is
        // special; the last eight bytes, overlapping the final whole word, cover
        // the tail.
        let mut any = 0;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            any |= hits(word(chunk));
        }
        if !chunks.remainder().is_empty() {
            any |= hits(word(&bytes[n - 8..]));
        }
        any != 0
    }

    /// Up to seven bytes in one word, every byte of which is one of them or a
    /// space: two overlapping 4-byte reads (4 to 7 bytes), or the first, middle
    /// and last byte (1 to 3), without a copy loop.
    #[inline(always)]
    fn short_word(bytes: &[u8]) -> u64 {
        let n = bytes.len();
        debug_assert!(n < 8);
        let spaces = LO * u64::from(b' ');
        if n >= 4 {
            let head = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
            let tail = u32::from_le_bytes(bytes[n - 4..].try_into().expect("4 bytes"));
            u64::from(head) | u64::from(tail) << 32
        } else if n > 0 {
            let (first, middle, last) = (bytes[0], bytes[n / 2], bytes[n - 1]);
            spaces & !0xff_ffff | u64::from(first) | u64::from(middle) << 8 | u64::from(last) << 16
        } else {
            spaces
        }
    }
}

/// Index of the first byte that is `"`, `\`, or below 0x20; `extra` adds one
/// more byte to stop at (pass `b'"'` again for none).
#[inline]
pub fn find_json_special(bytes: &[u8], extra: u8) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::find_first(bytes, |v| sse2::json_special(v, extra))
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    swar::find_json_special(bytes, extra)
}

/// Whether any byte is `"`, `\`, below 0x20, or `extra`: the question a
/// JSON writer asks before copying a string as is.
#[inline]
pub fn has_json_special(bytes: &[u8], extra: u8) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        find_json_special(bytes, extra).is_some()
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    swar::has_json_special(bytes, extra)
}

/// Index of the first byte that `repr()` cannot copy as is: not printable
/// ASCII (below 0x20 or at/above 0x7f), the quote in use, or `\`.
#[inline]
pub fn find_repr_special(bytes: &[u8], quote: u8) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::find_first(bytes, |v| sse2::repr_special(v, quote))
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    swar::find_repr_special(bytes, quote)
}

/// Sixteen bytes per step with SSE2, which every x86_64 CPU has: these scans
/// are most of the work of reading and writing Falco lines.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_max_epu8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_set_epi64x,
    };

    // SAFETY (every `unsafe` block below): these intrinsics only compute on
    // values in registers (no pointers); their one precondition is that the
    // CPU has SSE2, which this module's `cfg(target_feature = "sse2")`
    // guarantees at compile time.

    /// The 16 bytes as a vector.
    #[inline(always)]
    fn load(block: &[u8; 16]) -> __m128i {
        let (lo, hi) = block.split_at(8);
        let lo = u64::from_le_bytes(lo.try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(hi.try_into().expect("8 bytes"));
        load_words(lo, hi)
    }

    /// Lanes 0..8 from `lo`, 8..16 from `hi` (little-endian).
    #[inline(always)]
    fn load_words(lo: u64, hi: u64) -> __m128i {
        unsafe { _mm_set_epi64x(hi as i64, lo as i64) }
    }

    /// Lanes holding `quote`, `\\` or a byte below 0x20: what both scans stop at.
    #[inline(always)]
    fn quote_backslash_or_control(v: __m128i, quote: u8) -> __m128i {
        unsafe {
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(quote as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let low = _mm_set1_epi8(0x1f);
            let control = _mm_cmpeq_epi8(_mm_max_epu8(v, low), low);
            _mm_or_si128(_mm_or_si128(quote, backslash), control)
        }
    }

    /// Bit `i` set when byte `i` is `"`, `\\`, `extra` or below 0x20.
    #[inline(always)]
    pub(super) fn json_special(v: __m128i, extra: u8) -> u32 {
        unsafe {
            let extra = _mm_cmpeq_epi8(v, _mm_set1_epi8(extra as i8));
            _mm_movemask_epi8(_mm_or_si128(quote_backslash_or_control(v, b'"'), extra)) as u32
        }
    }

    /// Bit `i` set when byte `i` is not printable ASCII, `quote` or `\\`.
    #[inline(always)]
    pub(super) fn repr_special(v: __m128i, quote: u8) -> u32 {
        unsafe {
            let high = _mm_set1_epi8(0x7f);
            let not_ascii = _mm_cmpeq_epi8(_mm_min_epu8(v, high), high);
            _mm_movemask_epi8(_mm_or_si128(
                quote_backslash_or_control(v, quote),
                not_ascii,
            )) as u32
        }
    }

    /// Index of the first byte `mask` flags; the tail is padded into a block
    /// and bits past the end are ignored.
    #[inline(always)]
    pub(super) fn find_first(bytes: &[u8], mask: impl Fn(__m128i) -> u32) -> Option<usize> {
        // Most scans end in their first block (a member name or value in a
        // long line): that block is checked before any loop is set up.
        let mut i = 0;
        if let Some(first) = bytes.first_chunk::<16>() {
            let hits = mask(load(first));
            if hits != 0 {
                return Some(hits.trailing_zeros() as usize);
            }
            i = 16;
        }
        let mut chunks = bytes[i..].chunks_exact(16);
        for chunk in &mut chunks {
            let hits = mask(load(chunk.try_into().expect("16-byte chunk")));
            if hits != 0 {
                return Some(i + hits.trailing_zeros() as usize);
            }
            i += 16;
        }
        let rest = chunks.remainder();
        let n = rest.len();
        if n == 0 {
            return None;
        }
        if i > 0 {
            // The last sixteen bytes, overlapping bytes already seen (which
            // held nothing), instead of copying the tail into a block.
            let last = i + n - 16;
            let hits = mask(load(bytes[last..].try_into().expect("16 bytes")));
            return (hits != 0).then(|| last + hits.trailing_zeros() as usize);
        }
        // A short text (most field values): read with overlapping loads
        // into the two halves of one vector; lanes 0..8 hold the first bytes
        // and lanes 8..16 the last ones, and lanes past the text are ignored.
        let (lo, hi, hi_start, lanes) = short_halves(rest);
        let hits = mask(load_words(lo, hi)) & lanes;
        if hits & 0xff != 0 {
            return Some((hits & 0xff).trailing_zeros() as usize);
        }
        (hits != 0).then(|| hi_start + (hits >> 8).trailing_zeros() as usize)
    }

    /// Up to fifteen bytes as two words for [`find_first`]: (first word, last
    /// word, the index of the last word's first byte, the lanes that hold
    /// text). Both words together cover every byte; the overlap is harmless
    /// since the first word is searched first.
    #[inline(always)]
    fn short_halves(rest: &[u8]) -> (u64, u64, usize, u32) {
        let n = rest.len();
        let word8 = |at: usize| u64::from_le_bytes(rest[at..at + 8].try_into().expect("8 bytes"));
        let word4 = |at: usize| {
            u64::from(u32::from_le_bytes(
                rest[at..at + 4].try_into().expect("4 bytes"),
            ))
        };
        if n >= 8 {
            (word8(0), word8(n - 8), n - 8, 0xffff)
        } else if n >= 4 {
            // Lanes 0..4: bytes 0..4; lanes 8..12: bytes n-4..n.
            (word4(0), word4(n - 4), n - 4, 0x0f0f)
        } else {
            let mut lo = 0u64;
            for (k, &b) in rest.iter().enumerate() {
                lo |= u64::from(b) << (8 * k);
            }
            (lo, 0, 0, (1u32 << n) - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_obvious_scan() {
        let samples: &[&[u8]] = &[
            b"",
            b"abc",
            b"0123456789abcdef\"",
            b"abcdefgh\\",
            b"\x1f",
            b"aaaaaaaaaaaaaaa\x7f",
            "é😀 long text without specials at all......".as_bytes(),
            b"\x80\x81\x82\x83\x84\x85\x86\x87\"",
        ];
        for sample in samples {
            for extra in [b'"', 0x7f] {
                let want = sample
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20 || b == extra);
                assert_eq!(find_json_special(sample, extra), want, "{sample:?}");
                assert_eq!(swar::find_json_special(sample, extra), want, "{sample:?}");
                assert_eq!(
                    has_json_special(sample, extra),
                    want.is_some(),
                    "{sample:?}"
                );
                assert_eq!(
                    swar::has_json_special(sample, extra),
                    want.is_some(),
                    "{sample:?}"
                );
            }
        }
    }

    /// One special byte at every position of clean texts of every length up
    /// to five words (random bytes almost always hold a special somewhere,
    /// so they cannot catch a position the scan skips).
    #[test]
    fn has_special_sees_one_special_anywhere() {
        for fill in [b'a', b' ', b'~', 0x80, 0xff] {
            for n in 0..=40 {
                let clean = vec![fill; n];
                assert!(!has_json_special(&clean, 0x7f), "{n} x {fill:#x}");
                for position in 0..n {
                    for special in [b'"', b'\\', 0x00, 0x1f, 0x7f] {
                        let mut text = clean.clone();
                        text[position] = special;
                        assert!(
                            has_json_special(&text, 0x7f),
                            "{special:#x} at {position} of {n} x {fill:#x}"
                        );
                        assert!(swar::has_json_special(&text, 0x7f));
                        assert_eq!(find_json_special(&text, 0x7f), Some(position));
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn repr_scan_agrees_on_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), quote in proptest::sample::select(vec![b'\'', b'"'])) {
            let want = bytes.iter().position(|&b| !(b' '..=b'~').contains(&b) || b == quote || b == b'\\');
            proptest::prop_assert_eq!(find_repr_special(&bytes, quote), want);
            proptest::prop_assert_eq!(swar::find_repr_special(&bytes, quote), want);
        }

        #[test]
        fn has_special_agrees_on_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80), extra in proptest::sample::select(vec![b'"', 0x7f])) {
            let want = bytes.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20 || b == extra);
            proptest::prop_assert_eq!(has_json_special(&bytes, extra), want);
        }

        #[test]
        fn agrees_on_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let want = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20 || b == 0x7f);
            proptest::prop_assert_eq!(find_json_special(&bytes, 0x7f), want);
            proptest::prop_assert_eq!(swar::find_json_special(&bytes, 0x7f), want);
        }
    }
}
