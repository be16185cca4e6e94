//! A minimal, allocation-free JSON writer for output records.
//!
//! Records have a fixed key order (SPEC §8), so they are written by hand
//! rather than through a serializer: it is faster and the order is explicit.

use crate::bytescan::{find_json_special, has_json_special};

/// Append `text` as a JSON string (UTF-8 kept as is; control characters and
/// the JSON specials escaped).
#[inline]
pub fn push_str(out: &mut String, text: &str) {
    // Field values almost never need an escape: one cheap check, one copy.
    if !has_json_special(text.as_bytes(), 0x7f) {
        out.reserve(text.len() + 2);
        out.push('"');
        out.push_str(text);
        out.push('"');
        return;
    }
    push_str_escaped(out, text);
}

#[cold]
fn push_str_escaped(out: &mut String, text: &str) {
    out.push('"');
    let bytes = text.as_bytes();
    let mut run_start = 0;
    while let Some(offset) = find_json_special(&bytes[run_start..], 0x7f) {
        let i = run_start + offset;
        out.push_str(&text[run_start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        run_start = i + 1;
    }
    out.push_str(&text[run_start..]);
    out.push('"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `match_fixed_json!(text; "a", "b", …)`: `Some("\"a\"")` when `text` is
/// one of the literals, else `None`. For the few fixed texts that fill most
/// records (notes, rationales): comparing a short text with a handful of
/// literals is cheaper than scanning it for escapes and copying it. The
/// literals must need no escape; each use has a test that checks its JSON
/// forms against [`push_str`].
#[macro_export]
macro_rules! match_fixed_json {
    ($text:expr; $($literal:literal),+ $(,)?) => {
        match $text {
            $($literal => Some(concat!("\"", $literal, "\"")),)+
            _ => None,
        }
    };
}

/// Append a finite float in shortest round-trip form (`0.0`, `0.1235`);
/// non-finite values, which records never hold, are written as `null`.
pub fn push_f64(out: &mut String, value: f64) {
    if value.is_finite() {
        let mut buffer = ryu::Buffer::new();
        out.push_str(buffer.format_finite(value));
    } else {
        out.push_str("null");
    }
}

pub fn push_bool(out: &mut String, value: bool) {
    out.push_str(if value { "true" } else { "false" });
}

/// `"key":` (the key is a trusted literal).
#[inline]
pub fn push_key(out: &mut String, key: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

/// Writes one JSON object member by member, in call order, placing the
/// commas; records and plans are written through it so their key order is
/// the order of the calls.
#[derive(Debug)]
pub struct ObjectWriter<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    pub fn new(out: &'a mut String) -> ObjectWriter<'a> {
        out.push('{');
        ObjectWriter { out, first: true }
    }

    /// Start a member and return the buffer for its value.
    pub fn key(&mut self, key: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_key(self.out, key);
        self.out
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        push_str(self.key(key), value);
        self
    }

    /// A member whose value is already JSON text (numbers, `null`).
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key).push_str(json);
        self
    }

    pub fn f64(&mut self, key: &str, value: f64) -> &mut Self {
        push_f64(self.key(key), value);
        self
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        push_bool(self.key(key), value);
        self
    }

    pub fn str_array<S: AsRef<str>>(&mut self, key: &str, items: &[S]) -> &mut Self {
        push_str_array(self.key(key), items);
        self
    }

    pub fn finish(self) {
        self.out.push('}');
    }
}

/// A JSON array of strings.
pub fn push_str_array<S: AsRef<str>>(out: &mut String, items: &[S]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, item.as_ref());
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_through_a_real_parser() {
        for text in [
            "plain",
            "q\"b\\s",
            "nl\n\r\t",
            "\u{0}\u{1f}\u{7f}",
            "é😀\u{2028}",
        ] {
            let mut out = String::new();
            push_str(&mut out, text);
            let parsed = crate::json::parse(&out).unwrap();
            assert_eq!(parsed, crate::json::JsonValue::Str(text.into()), "{out}");
        }
        let mut out = String::new();
        push_f64(&mut out, 0.1235);
        push_f64(&mut out, 1.0);
        assert_eq!(out, "0.12351.0");
    }

    #[test]
    fn clean_fast_path_writes_what_the_escaping_path_writes() {
        let long = "x".repeat(40);
        let texts = [
            "",
            "a",
            "1234567",
            "12345678",
            "123456789",
            "/usr/bin/python3",
            "k8s-node-2k8w5:1985:python3",
            "é😀\u{2028} not escaped",
            long.as_str(),
            "seven\"",
            "eight..\"",
            "nine....\\",
            "\u{7f}tail of sixteen b",
            "sixteen bytes \u{1}",
        ];
        for text in texts {
            let mut fast = String::from("prefix");
            push_str(&mut fast, text);
            let mut general = String::from("prefix");
            push_str_escaped(&mut general, text);
            assert_eq!(fast, general, "{text:?}");
        }
    }

    #[test]
    fn floats_keep_their_form() {
        let mut out = String::new();
        push_f64(&mut out, 0.1235);
        push_f64(&mut out, 1.0);
        assert_eq!(out, "0.12351.0");
    }
}
