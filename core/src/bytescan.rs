//! Word-at-a-time byte scanning for the JSON hot paths.
//!
//! Finding the end of a JSON string run (a `"`, a `\` or a control byte) is
//! most of the work of reading and writing Falco lines; checking eight bytes
//! per step instead of one makes it several times cheaper, without `unsafe`.

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

/// Index of the first byte that is `"`, `\`, or below 0x20; `extra` adds one
/// more byte to stop at (pass `b'"'` again for none).
#[inline]
pub fn find_json_special(bytes: &[u8], extra: u8) -> Option<usize> {
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

/// Whether any byte is `"`, `\`, below 0x20, or `extra`: the question a
/// JSON writer asks before copying a string as is. Unlike
/// [`find_json_special`] it never stops early or confirms byte by byte, and
/// reads a short tail as one space-padded word (a string below eight bytes
/// is a single word), which is what makes it cheap on short field values.
#[inline]
pub fn has_json_special(bytes: &[u8], extra: u8) -> bool {
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

/// Index of the first byte that `repr()` cannot copy as is: not printable
/// ASCII (below 0x20 or at/above 0x7f), the quote in use, or `\`.
#[inline]
pub fn find_repr_special(bytes: &[u8], quote: u8) -> Option<usize> {
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
                assert_eq!(
                    has_json_special(sample, extra),
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
        }
    }
}
