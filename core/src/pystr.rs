//! Python-compatible text primitives.
//!
//! The reference gate is Python; parity needs its exact notion of whitespace,
//! lowercasing, `int()`/`float()` text parsing and `repr()` of floats. Each
//! function names the Python behaviour it mirrors.

use std::fmt::Write as _;

/// Python's `str.isspace()` for one character.
///
/// Unicode `White_Space` plus U+001C..U+001F (Python counts the ASCII
/// information separators as whitespace because their bidi class is `B`/`S`).
#[inline]
pub fn is_py_space(c: char) -> bool {
    matches!(c, '\u{1c}'..='\u{1f}') || c.is_whitespace()
}

/// Python's `str.strip()` with no argument.
pub fn py_strip(text: &str) -> &str {
    // Nearly every value starts and ends with a visible ASCII character,
    // which no whitespace is: nothing to strip, no characters to decode.
    let visible = |b: Option<&u8>| b.is_some_and(|&b| (b'!'..=b'~').contains(&b));
    if visible(text.as_bytes().first()) && visible(text.as_bytes().last()) {
        return text;
    }
    text.trim_matches(is_py_space)
}

/// Python's `str.lower()`: the full Unicode lowercase mapping, including the
/// Final_Sigma context rule (`ΣΥΣ` → `συς`), as CPython ≥ 3.3 and Rust's
/// `str::to_lowercase` both implement it. (SPEC §11 says "no final-sigma
/// rule"; the reference's own output shows the rule applied.)
pub fn py_lower_into(text: &str, out: &mut String) {
    if text.is_ascii() {
        let start = out.len();
        out.push_str(text);
        out[start..].make_ascii_lowercase();
        return;
    }
    out.push_str(&text.to_lowercase());
}

/// Owned version of [`py_lower_into`].
pub fn py_lower(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    py_lower_into(text, &mut out);
    out
}

/// The decimal value of a Unicode decimal digit (category `Nd`), as Python's
/// `int()` and `float()` accept them (`"٤٢"` is 42).
fn unicode_digit_value(c: char) -> Option<u8> {
    if c.is_ascii_digit() {
        return Some(c as u8 - b'0');
    }
    if c.is_ascii() {
        return None;
    }
    // Every `Nd` block is a run of ten consecutive code points starting at a
    // zero. The table lists each block's zero; a character is a digit when it
    // falls within ten of one.
    let code = c as u32;
    let zero = match DECIMAL_ZEROS.binary_search(&code) {
        Ok(i) => DECIMAL_ZEROS[i],
        Err(0) => return None,
        Err(i) => DECIMAL_ZEROS[i - 1],
    };
    let value = code - zero;
    (value < 10).then_some(value as u8)
}

/// First code point of each run of Unicode decimal digits (`Nd`), Unicode 14
/// (the version CPython 3.11 ships), excluding ASCII.
const DECIMAL_ZEROS: &[u32] = &[
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// CPython 3.11's limit on the digits of an `int` parsed from text
/// (`sys.get_int_max_str_digits()`); longer text raises `ValueError`.
pub const PY_INT_MAX_STR_DIGITS: usize = 4300;

/// Python's `int(text)` for a `str`: optional surrounding whitespace, an
/// optional sign, decimal digits (any script) with single `_` separators
/// between digits. Returns the canonical decimal text (`-12`, `0`), or `None`
/// where Python raises `ValueError`.
pub fn py_int_text(text: &str) -> Option<String> {
    let body = py_strip(text);
    let (negative, digits) = match body.as_bytes().first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    let mut canonical = String::with_capacity(digits.len() + 1);
    let mut previous_was_digit = false;
    let mut n_digits = 0usize;
    for c in digits.chars() {
        if c == '_' {
            if !previous_was_digit {
                return None;
            }
            previous_was_digit = false;
            continue;
        }
        let value = unicode_digit_value(c)?;
        n_digits += 1;
        if !(canonical.is_empty() && value == 0) {
            canonical.push((b'0' + value) as char);
        }
        previous_was_digit = true;
    }
    if n_digits == 0 || !previous_was_digit || n_digits > PY_INT_MAX_STR_DIGITS {
        return None;
    }
    if canonical.is_empty() {
        return Some("0".to_owned());
    }
    if negative {
        canonical.insert(0, '-');
    }
    Some(canonical)
}

/// Python's `float(text)` for a `str`: decimal and exponent forms with `_`
/// separators between digits, `nan`/`inf`/`infinity` in any case with an
/// optional sign, surrounding whitespace, digits of any script. `None` where
/// Python raises `ValueError`.
pub fn py_float_text(text: &str) -> Option<f64> {
    let body = py_strip(text);
    if body.is_empty() {
        return None;
    }
    // Translate to an ASCII literal Rust can parse, validating Python's
    // underscore rule (only between two digits) on the way.
    let mut ascii = String::with_capacity(body.len());
    let mut previous: Option<char> = None;
    let chars: Vec<char> = body.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            let before_is_digit = previous.is_some_and(|p| unicode_digit_value(p).is_some());
            let after_is_digit = chars
                .get(i + 1)
                .is_some_and(|&n| unicode_digit_value(n).is_some());
            if !(before_is_digit && after_is_digit) {
                return None;
            }
        } else if let Some(value) = unicode_digit_value(c) {
            ascii.push((b'0' + value) as char);
        } else if c.is_ascii() {
            ascii.push(c);
        } else {
            return None;
        }
        previous = Some(c);
    }
    let lowered = ascii.to_ascii_lowercase();
    let (sign, magnitude) = match lowered.as_bytes().first() {
        Some(b'-') => (-1.0, &lowered[1..]),
        Some(b'+') => (1.0, &lowered[1..]),
        _ => (1.0, lowered.as_str()),
    };
    match magnitude {
        "nan" => return Some(f64::NAN),
        "inf" | "infinity" => return Some(sign * f64::INFINITY),
        _ => {}
    }
    if !is_decimal_float_literal(magnitude) {
        return None;
    }
    lowered.parse::<f64>().ok()
}

/// `digits [. digits] [e [sign] digits]` or `. digits …`, ASCII only.
fn is_decimal_float_literal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut n_mantissa_digits = i - int_start;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        n_mantissa_digits += i - frac_start;
    }
    if n_mantissa_digits == 0 {
        return false;
    }
    if i < bytes.len() && bytes[i] == b'e' {
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == bytes.len()
}

/// Python's `repr(float)`: the shortest round-tripping digits, fixed notation
/// for decimal exponents in [-4, 16), scientific (`1e-05`, `1.5e+16`) otherwise.
pub fn py_float_repr(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("nan");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "inf" } else { "-inf" });
        return;
    }
    if value == 0.0 {
        out.push_str(if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        });
        return;
    }
    // Rust's `{:e}` prints the shortest round-tripping digits: `d.ddddde±x`.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` exponent is an integer");
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exponent) {
        if exponent < 0 {
            out.push_str("0.");
            for _ in 0..(-exponent - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let int_len = exponent as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
}

/// Python's `str.isprintable()` for one character, as `repr()` uses it to
/// decide whether to escape. Non-printable: categories Cc, Cf, Cs, Co, Cn,
/// Zl, Zp, Zs except the ASCII space.
pub fn is_py_printable(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    if c.is_control() || c.is_whitespace() {
        // Cc, Zs (other than ' '), Zl, Zp.
        return false;
    }
    !is_format_or_unassigned(c)
}

/// An approximation of categories Cf, Co and common Cn ranges without a
/// Unicode table dependency: format characters Python escapes in `repr`.
fn is_format_or_unassigned(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2
        | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x13438
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD
        | 0xFFFE..=0xFFFF | 0xFDD0..=0xFDEF)
}

/// Room for `extra` more bytes in `out`. An emptied string (a recycled
/// buffer) too small for them is replaced rather than grown: growing copies
/// the whole old allocation, which holds nothing wanted.
#[inline]
pub fn make_room(out: &mut String, extra: usize) {
    if out.capacity() - out.len() < extra {
        if out.is_empty() {
            *out = String::with_capacity(extra);
        } else {
            out.reserve(extra);
        }
    }
}

/// Python's `repr(str)`.
pub fn py_str_repr(text: &str, out: &mut String) {
    // The usual string — printable ASCII, no `'`, no `\` — is quoted as is:
    // one scan instead of looking for quotes first.
    if crate::bytescan::find_repr_special(text.as_bytes(), b'\'').is_none() {
        out.reserve(text.len() + 2);
        out.push('\'');
        out.push_str(text);
        out.push('\'');
        return;
    }
    let quote = if text.contains('\'') && !text.contains('"') {
        b'"'
    } else {
        b'\''
    };
    out.reserve(text.len() + 2);
    out.push(char::from(quote));
    let bytes = text.as_bytes();
    let mut run_start = 0;
    // Printable ASCII other than the quote and the backslash is copied in runs.
    while let Some(offset) = crate::bytescan::find_repr_special(&bytes[run_start..], quote) {
        let mut i = run_start + offset;
        let b = bytes[i];
        out.push_str(&text[run_start..i]);
        if b.is_ascii() {
            match b {
                b'\\' => out.push_str("\\\\"),
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                b'\t' => out.push_str("\\t"),
                b if b == quote => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                b => {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            i += 1;
        } else {
            let c = text[i..].chars().next().expect("a char starts here");
            if is_py_printable(c) {
                out.push(c);
            } else {
                let code = c as u32;
                let _ = if code < 0x100 {
                    write!(out, "\\x{code:02x}")
                } else if code < 0x10000 {
                    write!(out, "\\u{code:04x}")
                } else {
                    write!(out, "\\U{code:08x}")
                };
            }
            i += c.len_utf8();
        }
        run_start = i;
    }
    out.push_str(&text[run_start..]);
    out.push(char::from(quote));
}

/// POSIX shell quoting as Python's `shlex.quote`: bare when every character
/// is in `A-Za-z0-9_@%+=:,./-` (ASCII only), `''` for the empty string, else
/// single-quoted with `'` written as `'"'"'`.
pub fn shell_quote(arg: &str, out: &mut String) {
    if arg.is_empty() {
        out.push_str("''");
        return;
    }
    let safe = arg.bytes().all(|b| {
        matches!(b,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9'
            | b'_' | b'@' | b'%' | b'+' | b'=' | b':' | b',' | b'.' | b'/' | b'-')
    });
    if safe {
        out.push_str(arg);
        return;
    }
    out.push('\'');
    for (i, part) in arg.split('\'').enumerate() {
        if i > 0 {
            out.push_str("'\"'\"'");
        }
        out.push_str(part);
    }
    out.push('\'');
}

/// Python's `round(x, ndigits)`: round-half-even on the exact binary value.
///
/// CPython rounds via the correctly rounded decimal string of `x` at
/// `ndigits` places and converts that back. Fast path: scale, round, and
/// divide (exact enough whenever the scaled value is not within 1e-7 of a
/// half, since the scaling error is ~1e-16 relative); near a half, fall back
/// to the exact decimal formatting Rust shares with CPython.
pub fn py_round(value: f64, ndigits: usize) -> f64 {
    if !value.is_finite() {
        return value;
    }
    const POW10: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
    if let Some(&scale) = POW10.get(ndigits) {
        if let Some(units) = py_round_units(value, scale) {
            return units / scale;
        }
    }
    py_round_exact(value, ndigits)
}

/// The fast path of [`py_round`]: `value * scale` rounded to an integer
/// (an integral `f64` carrying the sign, so `-0.0` stays negative), or `None`
/// when the scaled value is not finite, is at least 1e15 in magnitude, or is
/// within 1e-7 of a half (where only the exact path is correct).
#[inline]
fn py_round_units(value: f64, scale: f64) -> Option<f64> {
    let scaled = value * scale;
    if scaled.abs() < 1e15 {
        let fraction = scaled.fract().abs();
        if (fraction - 0.5).abs() > 1e-7 {
            return Some(scaled.round());
        }
    }
    None
}

/// `py_round(value, 4)` written in shortest round-trip form, the way
/// [`crate::jsonw::push_f64`] writes it (`0.0447`, `1.0`, `-0.0`), without
/// going through a float formatter.
///
/// Records print every score rounded to 4 places. When the fast path of
/// [`py_round`] applies, the result is `units / 1e4` for an integer `units`
/// below 1e15 in magnitude; that quotient is the double nearest to the
/// decimal `units × 10⁻⁴`, and since doubles below 1e11 are spaced far closer
/// than 10⁻⁴, no shorter decimal maps to it: its shortest form is those
/// digits with trailing zeros dropped, in fixed notation. Anything else takes
/// the general path. Returns whether the fast path was taken (for tests).
pub fn push_py_round4(value: f64, out: &mut String) -> bool {
    // Most records carry a zero or two (no stress, a first event's load).
    if value == 0.0 && value.is_sign_positive() {
        out.push_str("0.0");
        return true;
    }
    let Some((negative, units)) = py_round4_units(value) else {
        crate::jsonw::push_f64(out, py_round(value, 4));
        return false;
    };
    let (int_part, frac_part) = (units / 10_000, units % 10_000);
    if negative {
        out.push('-');
    }
    if int_part < 10 {
        out.push(char::from(b'0' + int_part as u8));
    } else {
        out.push_str(itoa::Buffer::new().format(int_part));
    }
    out.push('.');
    if frac_part == 0 {
        out.push('0');
        return true;
    }
    // The four decimals up to the last non-zero one.
    let mut rest = frac_part;
    while rest != 0 {
        rest *= 10;
        out.push(char::from(b'0' + (rest / 10_000) as u8));
        rest %= 10_000;
    }
    true
}

/// [`py_round_units`] for 4 places in integers: (sign, magnitude) of
/// `round(value * 1e4)`, under exactly the same conditions. Below 1e15 the
/// truncation `as i64` is exact, so the fraction is the one `f64::fract`
/// gives, and away from a half, rounding is truncation plus one when the
/// fraction is above a half; `round` keeps the sign of its argument
/// (`-0.3` rounds to `-0.0`). This avoids the float `round`/`trunc` calls,
/// which are library calls on baseline x86-64.
#[inline]
fn py_round4_units(value: f64) -> Option<(bool, u64)> {
    let scaled = value * 1e4;
    if scaled.abs() < 1e15 {
        let truncated = scaled as i64;
        let fraction = (scaled - truncated as f64).abs();
        if (fraction - 0.5).abs() > 1e-7 {
            let magnitude = truncated.unsigned_abs() + u64::from(fraction > 0.5);
            return Some((scaled.is_sign_negative(), magnitude));
        }
    }
    None
}

/// The exact path of [`py_round`]: Rust's `{:.N}` formats the exact binary
/// value correctly rounded, ties to even, as CPython's `_Py_dg_dtoa` does.
fn py_round_exact(value: f64, ndigits: usize) -> f64 {
    let text = format!("{value:.ndigits$}");
    text.parse().unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_text_follows_python_int() {
        let cases: &[(&str, Option<&str>)] = &[
            ("12", Some("12")),
            (" +0012 ", Some("12")),
            ("-5", Some("-5")),
            ("-0", Some("0")),
            ("1_000", Some("1000")),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("12.0", None),
            ("abc", None),
            ("", None),
            ("0x1f", None),
            ("1e3", None),
            ("٤٢", Some("42")),
            ("４２", Some("42")),
            ("\u{1c}7\u{1f}", Some("7")),
            (
                "123456789012345678901234567890",
                Some("123456789012345678901234567890"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(py_int_text(input).as_deref(), *expected, "int({input:?})");
        }
        assert_eq!(py_int_text(&"9".repeat(4300)).map(|s| s.len()), Some(4300));
        assert_eq!(py_int_text(&"9".repeat(4301)), None);
    }

    #[test]
    fn float_text_follows_python_float() {
        let cases: &[(&str, Option<f64>)] = &[
            ("0.5", Some(0.5)),
            (" 1e3 ", Some(1000.0)),
            ("1_0.5", Some(10.5)),
            ("1_.5", None),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("-Infinity", Some(f64::NEG_INFINITY)),
            ("INF", Some(f64::INFINITY)),
            ("abc", None),
            ("0x1p-2", None),
            ("０.９", Some(0.9)),
            ("1e", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(py_float_text(input), *expected, "float({input:?})");
        }
        assert!(py_float_text("nan").unwrap().is_nan());
        assert!(py_float_text("-NaN").unwrap().is_nan());
    }

    #[test]
    fn float_repr_follows_python_repr() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123.456, "123.456"),
            (-2.5, "-2.5"),
            (1.5e300, "1.5e+300"),
            (f64::INFINITY, "inf"),
            (-0.0, "-0.0"),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            py_float_repr(*input, &mut out);
            assert_eq!(out, *expected);
        }
    }

    #[test]
    fn lower_applies_final_sigma_like_cpython() {
        // Parity corpus line 15948: `ΣΥΣ` lowercases to `συς`.
        assert_eq!(py_lower("ΣΥΣ"), "συς");
        assert_eq!(py_lower("ΟΔΟΣ ΣΑ"), "οδος σα");
        assert_eq!(py_lower("İ"), "i\u{307}");
        assert_eq!(py_lower("\u{212a}"), "k");
    }

    #[test]
    fn str_repr_matches_python() {
        let cases: &[(&str, &str)] = &[
            ("abc", "'abc'"),
            ("it's", "\"it's\""),
            ("it's \"x\"", "'it\\'s \"x\"'"),
            ("a\\b\n\t", "'a\\\\b\\n\\t'"),
            ("\u{1c}\u{7f}", "'\\x1c\\x7f'"),
            ("é", "'é'"),
            ("\u{2028}", "'\\u2028'"),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            py_str_repr(input, &mut out);
            assert_eq!(out, *expected);
        }
    }

    #[test]
    fn shell_quote_leaves_exactly_shlex_safe_bytes_bare() {
        for b in 0u8..0x80 {
            let text = char::from(b).to_string();
            let mut out = String::new();
            shell_quote(&text, &mut out);
            let safe = b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b);
            assert_eq!(out == text, safe, "{b:#x}: {out}");
        }
    }

    #[test]
    fn shell_quote_matches_shlex() {
        let cases: &[(&str, &str)] = &[
            ("/usr/bin/sh", "/usr/bin/sh"),
            ("", "''"),
            ("a b", "'a b'"),
            ("it's", "'it'\"'\"'s'"),
            ("é", "'é'"),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            shell_quote(input, &mut out);
            assert_eq!(out, *expected);
        }
    }

    #[test]
    fn round_is_pythons() {
        assert_eq!(py_round(0.12345, 4), 0.1235);
        assert_eq!(py_round(2.675, 2), 2.67);
        assert_eq!(py_round(0.00005, 4), 0.0001);
        assert_eq!(py_round(0.125, 2), 0.12, "exact ties go to even");
        assert_eq!(py_round(0.375, 2), 0.38, "exact ties go to even");
        assert_eq!(
            py_round(-0.04445, 4),
            -0.0445,
            "the double just above -0.04445 in magnitude"
        );
    }

    /// What a record wrote before [`push_py_round4`]: round, then `ryu`.
    fn round4_general(value: f64) -> String {
        let mut out = String::new();
        crate::jsonw::push_f64(&mut out, py_round(value, 4));
        out
    }

    fn assert_round4_matches(value: f64) -> bool {
        let mut out = String::new();
        let fast = push_py_round4(value, &mut out);
        assert_eq!(
            out,
            round4_general(value),
            "{value:e} ({:#x})",
            value.to_bits()
        );
        fast
    }

    #[test]
    fn round4_writer_matches_round_then_ryu_on_edge_values() {
        let cases = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.00005,
            -0.00005,
            0.00015,
            0.00025,
            0.000049999,
            1e-5,
            -1e-5,
            0.99995,
            0.12345,
            2.675,
            -0.04445,
            0.1,
            0.0447,
            123.456789,
            1e11 - 0.00005,
            99_999_999_999.999_9,
            1e11,
            1e12,
            1e15,
            1e16,
            1.5e16,
            -1e17,
            1e300,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            f64::EPSILON,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for value in cases {
            assert_round4_matches(value);
        }
        let mut out = String::new();
        assert!(push_py_round4(0.0447, &mut out), "the common case is fast");
        assert_eq!(out, "0.0447");
    }

    #[test]
    fn round4_writer_matches_on_every_four_place_value_and_tie_near_zero() {
        let mut fast = 0;
        for n in -300_000i32..=300_000 {
            let x = f64::from(n) / 1e4;
            for value in [
                x,
                x + 0.5e-4,
                x - 0.5e-4,
                x + 0.49e-4,
                x + 0.51e-4,
                x * (1.0 + f64::EPSILON),
                x * (1.0 - f64::EPSILON),
            ] {
                fast += usize::from(assert_round4_matches(value));
            }
        }
        assert!(fast > 3_000_000, "the fast path did almost nothing: {fast}");
    }

    /// The integer units of 4-place rounding are `py_round`'s own fast path.
    fn assert_units_agree(value: f64) {
        let float = py_round_units(value, 1e4).map(f64::to_bits);
        let integer = py_round4_units(value).map(|(negative, magnitude)| {
            let m = magnitude as f64;
            (if negative { -m } else { m }).to_bits()
        });
        assert_eq!(integer, float, "{value:e}");
    }

    #[test]
    fn round4_units_agree_on_edge_values() {
        for value in [
            0.0,
            -0.0,
            0.00004,
            -0.00004,
            0.00005,
            -0.00005,
            0.00006,
            -0.00016,
            1.0,
            -2.5,
            99_999_999_999.999_94,
            99_999_999_999.999_96,
            1e11,
            -1e11,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            -5e-324,
        ] {
            assert_units_agree(value);
        }
    }

    proptest::proptest! {
        #[test]
        fn round4_units_agree_on_any_bits(bits in proptest::prelude::any::<u64>()) {
            assert_units_agree(f64::from_bits(bits));
        }

        #[test]
        fn round4_units_agree_on_scores(x in -3.0f64..3.0) {
            assert_units_agree(x);
        }

        #[test]
        fn round4_writer_matches_on_any_bits(bits in proptest::prelude::any::<u64>()) {
            assert_round4_matches(f64::from_bits(bits));
        }

        #[test]
        fn round4_writer_matches_on_scores(x in -2.0f64..2.0) {
            assert_round4_matches(x);
        }

        #[test]
        fn round4_writer_matches_on_large_values(x in -2e11f64..2e11) {
            assert_round4_matches(x);
        }

        #[test]
        fn fast_round_equals_exact_round(x in -1.0f64..2.0, n in 0usize..8) {
            proptest::prop_assert_eq!(py_round(x, n), py_round_exact(x, n));
        }
    }
}
