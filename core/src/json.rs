//! A JSON reader that accepts exactly what Python's `json.loads` accepts.
//!
//! Falco feeds are parsed by the reference with `json.loads`, which is more
//! permissive than RFC 8259 (`NaN`, `Infinity`, `-Infinity` literals; integers
//! of any length up to CPython's 4300-digit limit; lone surrogates) and keeps
//! the last of duplicate keys. Parity needs the same acceptance, so this is a
//! small hand-written reader rather than a general-purpose crate. Strings are
//! borrowed from the line whenever they contain no escapes; nesting is bounded
//! by [`JSON_DEPTH_MAX`] and parsed without unbounded recursion.

use std::borrow::Cow;
use std::fmt;

use crate::bytescan::find_json_special;
use crate::limits::JSON_DEPTH_MAX;
use crate::pystr::PY_INT_MAX_STR_DIGITS;

/// A parsed JSON value borrowing from the input line.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue<'a> {
    Null,
    Bool(bool),
    /// An integer literal, kept as its source text so that any length survives.
    Int(&'a str),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<JsonValue<'a>>),
    /// Members in source order; duplicates kept (lookups take the last).
    Object(Vec<(Cow<'a, str>, JsonValue<'a>)>),
}

impl<'a> JsonValue<'a> {
    /// The value of the last member named `key` (Python's dict keeps the last).
    pub fn get(&self, key: &str) -> Option<&JsonValue<'a>> {
        match self {
            JsonValue::Object(members) => members
                .iter()
                .rev()
                .find(|(name, _)| name.as_ref() == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(Cow<'a, str>, JsonValue<'a>)]> {
        match self {
            JsonValue::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, JsonValue::Null)
    }
}

/// Why a line is not JSON, and where (0-based character offset, as Python
/// reports `char N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub message: String,
    pub offset: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.message, self.offset + 1)
    }
}

impl std::error::Error for JsonError {}

/// Parse one complete JSON document (surrounding JSON whitespace allowed).
pub fn parse(text: &str) -> Result<JsonValue<'_>, JsonError> {
    let mut reader = Reader::new(text);
    reader.skip_ws();
    let value = reader.value()?;
    reader.skip_ws();
    if reader.pos != reader.bytes.len() {
        return Err(reader.error("extra data after the JSON value"));
    }
    Ok(value)
}

/// A cursor over one JSON text. Public within the crate so that the Falco
/// reader can parse the fields it needs and only validate the rest.
pub(crate) struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pub(crate) pos: usize,
    /// Containers already open around the current value (for the depth bound).
    pub(crate) depth_base: usize,
}

/// The kinds of the containers [`Reader::skip_value`] is inside (`true`: an
/// object), as bits: no allocation until nesting passes 64 levels.
#[derive(Default)]
struct OpenStack {
    bits: u64,
    depth: usize,
    deeper: Vec<bool>,
}

impl OpenStack {
    fn len(&self) -> usize {
        self.depth
    }

    fn push(&mut self, is_object: bool) {
        if self.depth < 64 {
            self.bits = (self.bits & !(1 << self.depth)) | (u64::from(is_object) << self.depth);
        } else {
            self.deeper.push(is_object);
        }
        self.depth += 1;
    }

    fn last(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            d if d <= 64 => Some(self.bits >> (d - 1) & 1 == 1),
            _ => self.deeper.last().copied(),
        }
    }

    fn pop(&mut self) {
        if self.depth > 64 {
            self.deeper.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }
}

/// A container being filled while parsing iteratively.
enum Frame<'a> {
    Array(Vec<JsonValue<'a>>),
    Object(Vec<(Cow<'a, str>, JsonValue<'a>)>, Cow<'a, str>),
}

/// The index of the first byte at or after `i` that is not an ASCII digit,
/// eight bytes per step: event times and pids are long digit runs.
#[inline]
pub(crate) fn skip_digits(bytes: &[u8], mut i: usize) -> usize {
    const HIGH_NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        // A digit (0x30..=0x39) has high nibble 3, and keeps it when 6 is
        // added. A carry out of a byte only disturbs later bytes, beyond the
        // first non-digit, which is all this looks for.
        let non_digits = ((w & HIGH_NIBBLES) ^ THREES)
            | ((w.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) ^ THREES);
        if non_digits != 0 {
            return i + (non_digits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Reader<'a> {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth_base: 0,
        }
    }

    /// At a string without escapes or control characters: its contents,
    /// with the reader moved past it. Otherwise `None`, the reader unmoved.
    #[inline(always)]
    pub(crate) fn plain_string(&mut self) -> Option<&'a [u8]> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.pos + 1;
        let rest = &self.bytes[start..];
        let len = find_json_special(rest, b'"')?;
        if rest[len] != b'"' {
            return None;
        }
        self.pos = start + len + 1;
        // Bytes, not `str`: the callers want positions or compare names, and
        // slicing the text would check character boundaries every time.
        Some(&rest[..len])
    }

    /// `"key" :` for a key without escapes (nearly all of them): the key,
    /// with the reader at the value. Otherwise `None`, the reader unmoved,
    /// and [`Self::object_key`] decodes or reports it.
    #[inline]
    pub(crate) fn plain_key(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        let key = self.plain_string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            self.pos = start;
            return None;
        }
        self.pos += 1;
        self.skip_ws();
        Some(key)
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    pub(crate) fn error(&self, message: &str) -> JsonError {
        // Report a character offset, not a byte offset, as Python does.
        let offset = self.text[..self.pos.min(self.text.len())].chars().count();
        JsonError {
            message: message.to_owned(),
            offset,
        }
    }

    #[inline]
    pub(crate) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Parse a value with an explicit stack of open containers, so that
    /// hostile nesting costs heap, bounded by `JSON_DEPTH_MAX`, not stack.
    pub(crate) fn value(&mut self) -> Result<JsonValue<'a>, JsonError> {
        let mut stack: Vec<Frame<'a>> = Vec::new();
        loop {
            // Parse one value start; containers push a frame.
            let mut value = match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        JsonValue::Object(Vec::new())
                    } else {
                        if self.depth_base + stack.len() >= JSON_DEPTH_MAX {
                            return Err(self.error("nesting too deep"));
                        }
                        let key = self.object_key()?;
                        // Falco objects have ~10-40 members: skip the small regrowths.
                        stack.push(Frame::Object(Vec::with_capacity(16), key));
                        self.skip_ws();
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        JsonValue::Array(Vec::new())
                    } else {
                        if self.depth_base + stack.len() >= JSON_DEPTH_MAX {
                            return Err(self.error("nesting too deep"));
                        }
                        stack.push(Frame::Array(Vec::with_capacity(4)));
                        continue;
                    }
                }
                _ => self.scalar()?,
            };
            // Attach the finished value to its parent; close finished parents.
            loop {
                let Some(frame) = stack.last_mut() else {
                    return Ok(value);
                };
                self.skip_ws();
                match frame {
                    Frame::Array(items) => {
                        items.push(value);
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                break;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                let Some(Frame::Array(items)) = stack.pop() else {
                                    unreachable!("top frame is an array")
                                };
                                value = JsonValue::Array(items);
                            }
                            _ => return Err(self.error("expecting ',' delimiter")),
                        }
                    }
                    Frame::Object(members, key) => {
                        let key = std::mem::take(key);
                        members.push((key, value));
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                *key_slot(frame) = self.object_key()?;
                                self.skip_ws();
                                break;
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                let Some(Frame::Object(members, _)) = stack.pop() else {
                                    unreachable!("top frame is an object")
                                };
                                value = JsonValue::Object(members);
                            }
                            _ => return Err(self.error("expecting ',' delimiter")),
                        }
                    }
                }
            }
        }
    }

    /// `"key" :` — leaves the reader at the value.
    pub(crate) fn object_key(&mut self) -> Result<Cow<'a, str>, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expecting property name enclosed in double quotes"));
        }
        let key = self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.error("expecting ':' delimiter"));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(key)
    }

    pub(crate) fn scalar(&mut self) -> Result<JsonValue<'a>, JsonError> {
        let rest = &self.bytes[self.pos..];
        match rest.first() {
            Some(b'"') => Ok(JsonValue::Str(self.string()?)),
            Some(b'n') if rest.starts_with(b"null") => {
                self.pos += 4;
                Ok(JsonValue::Null)
            }
            Some(b't') if rest.starts_with(b"true") => {
                self.pos += 4;
                Ok(JsonValue::Bool(true))
            }
            Some(b'f') if rest.starts_with(b"false") => {
                self.pos += 5;
                Ok(JsonValue::Bool(false))
            }
            Some(b'N') if rest.starts_with(b"NaN") => {
                self.pos += 3;
                Ok(JsonValue::Float(f64::NAN))
            }
            Some(b'I') if rest.starts_with(b"Infinity") => {
                self.pos += 8;
                Ok(JsonValue::Float(f64::INFINITY))
            }
            Some(b'-') if rest.starts_with(b"-Infinity") => {
                self.pos += 9;
                Ok(JsonValue::Float(f64::NEG_INFINITY))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            None => Err(self.error("expecting value, found end of line")),
            Some(_) if rest.starts_with("\u{feff}".as_bytes()) => Err(self.error(
                "unexpected UTF-8 byte order mark (U+FEFF); save the file as UTF-8 without a BOM",
            )),
            Some(_) => Err(self.error("expecting value")),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, as Python's scanner.
    fn number(&mut self) -> Result<JsonValue<'a>, JsonError> {
        let start = self.pos;
        let is_float = self.scan_number()?;
        let literal = &self.text[start..self.pos];
        if is_float {
            // Rust's parser is correctly rounded, as CPython's `float()`.
            let value = literal
                .parse::<f64>()
                .map_err(|_| self.error("invalid number"))?;
            return Ok(JsonValue::Float(value));
        }
        Ok(JsonValue::Int(literal))
    }

    /// Validate a number and move past it; `true` when it is a float.
    fn scan_number(&mut self) -> Result<bool, JsonError> {
        let start = self.pos;
        let bytes = self.bytes;
        let mut i = self.pos;
        if bytes[i] == b'-' {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                i = skip_digits(bytes, i);
            }
            _ => return Err(self.error("expecting value")),
        }
        let int_end = i;
        let mut is_float = false;
        if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            is_float = true;
            i = skip_digits(bytes, i + 1);
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            let mut j = i + 1;
            if let Some(b'+' | b'-') = bytes.get(j) {
                j += 1;
            }
            if bytes.get(j).is_some_and(u8::is_ascii_digit) {
                is_float = true;
                i = skip_digits(bytes, j);
            }
        }
        let n_digits = int_end - start - usize::from(bytes[start] == b'-');
        if !is_float && n_digits > PY_INT_MAX_STR_DIGITS {
            return Err(self.error("integer literal exceeds the limit of 4300 digits"));
        }
        self.pos = i;
        Ok(is_float)
    }

    /// Validate one value and move past it without building anything: for
    /// the members the gate never reads. Accepts exactly what [`Self::value`]
    /// accepts, with the same depth bound.
    pub(crate) fn skip_value(&mut self) -> Result<(), JsonError> {
        // Scalars, nearly every skipped member, need no container stack.
        match self.peek() {
            Some(b'"') => return self.skip_string(),
            Some(b'0'..=b'9') => return self.scan_number().map(|_| ()),
            Some(b'n') if self.bytes[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                return Ok(());
            }
            Some(b't') if self.bytes[self.pos..].starts_with(b"true") => {
                self.pos += 4;
                return Ok(());
            }
            Some(b'f') if self.bytes[self.pos..].starts_with(b"false") => {
                self.pos += 5;
                return Ok(());
            }
            Some(b'-') if self.bytes.get(self.pos + 1).is_some_and(u8::is_ascii_digit) => {
                return self.scan_number().map(|_| ());
            }
            _ => {}
        }
        if let Some(b'{' | b'[') = self.peek() {
            let start = self.pos;
            if self.skip_flat_container().is_some() {
                return Ok(());
            }
            // Nested, escaped or invalid: the general loop below reads it
            // again from the start, and reports what is wrong.
            self.pos = start;
        }
        // `true` for an open object, `false` for an open array.
        let mut open = OpenStack::default();
        loop {
            match self.peek() {
                Some(c @ (b'{' | b'[')) => {
                    if self.depth_base + open.len() >= JSON_DEPTH_MAX {
                        return Err(self.error("nesting too deep"));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                    } else {
                        open.push(c == b'{');
                        if c == b'{' {
                            self.skip_key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => self.skip_string()?,
                Some(b'-' | b'0'..=b'9') if !self.bytes[self.pos..].starts_with(b"-Infinity") => {
                    self.scan_number()?;
                }
                // The literals, without building a value to drop.
                Some(b'n') if self.bytes[self.pos..].starts_with(b"null") => self.pos += 4,
                Some(b't') if self.bytes[self.pos..].starts_with(b"true") => self.pos += 4,
                Some(b'f') if self.bytes[self.pos..].starts_with(b"false") => self.pos += 5,
                _ => {
                    self.scalar()?;
                }
            }
            // A value ended: close containers or move to the next member.
            loop {
                let Some(is_object) = open.last() else {
                    return Ok(());
                };
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                        if is_object {
                            self.skip_key()?;
                        }
                        break;
                    }
                    Some(b'}') if is_object => {
                        self.pos += 1;
                        open.pop();
                    }
                    Some(b']') if !is_object => {
                        self.pos += 1;
                        open.pop();
                    }
                    _ => return Err(self.error("expecting ',' delimiter")),
                }
            }
        }
    }

    /// A container of plain strings and scalars only (Falco's `tags`, a
    /// label object) in one tight loop; `None`, the reader anywhere, for
    /// anything else (nesting, escapes, Python's `NaN`, errors).
    fn skip_flat_container(&mut self) -> Option<()> {
        if self.depth_base >= JSON_DEPTH_MAX {
            return None;
        }
        let is_object = self.peek() == Some(b'{');
        let close = if is_object { b'}' } else { b']' };
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Some(());
        }
        loop {
            if is_object {
                self.plain_key()?;
            }
            let rest = &self.bytes[self.pos..];
            match rest.first()? {
                b'"' => {
                    self.plain_string()?;
                }
                b'n' if rest.starts_with(b"null") => self.pos += 4,
                b't' if rest.starts_with(b"true") => self.pos += 4,
                b'f' if rest.starts_with(b"false") => self.pos += 5,
                b'0'..=b'9' => {
                    self.scan_number().ok()?;
                }
                b'-' if rest.get(1).is_some_and(u8::is_ascii_digit) => {
                    self.scan_number().ok()?;
                }
                _ => return None,
            }
            self.skip_ws();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    self.skip_ws();
                }
                c if c == close => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `"key" :` without decoding the key.
    fn skip_key(&mut self) -> Result<(), JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expecting property name enclosed in double quotes"));
        }
        self.skip_string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.error("expecting ':' delimiter"));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(())
    }

    /// Validate a string starting at `"` and move past it.
    fn skip_string(&mut self) -> Result<(), JsonError> {
        let open = self.pos;
        self.pos += 1;
        loop {
            let Some(offset) = find_json_special(&self.bytes[self.pos..], b'"') else {
                self.pos = open;
                return Err(self.error("unterminated string"));
            };
            self.pos += offset;
            match self.bytes[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => match self.bytes.get(self.pos + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 2,
                    Some(b'u') => {
                        self.hex4(self.pos + 2)?;
                        self.pos += 6;
                    }
                    None => {
                        self.pos = open;
                        return Err(self.error("unterminated string"));
                    }
                    Some(_) => return Err(self.error("invalid \\escape")),
                },
                _ => return Err(self.error("invalid control character in string")),
            }
        }
    }

    /// A string starting at `"`; borrowed when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        let open = self.pos;
        self.pos += 1;
        let start = self.pos;
        // Fast scan to the first quote, backslash or control character.
        let stop = find_json_special(&self.bytes[start..], b'"');
        let Some(offset) = stop else {
            self.pos = open;
            return Err(self.error("unterminated string"));
        };
        let at = start + offset;
        match self.bytes[at] {
            b'"' => {
                self.pos = at + 1;
                Ok(Cow::Borrowed(&self.text[start..at]))
            }
            b'\\' => {
                let mut owned = String::with_capacity(at - start + 16);
                owned.push_str(&self.text[start..at]);
                self.pos = at;
                self.string_with_escapes(open, owned).map(Cow::Owned)
            }
            _ => {
                self.pos = at;
                Err(self.error("invalid control character in string"))
            }
        }
    }

    fn string_with_escapes(&mut self, open: usize, mut out: String) -> Result<String, JsonError> {
        loop {
            let run_start = self.pos;
            let stop = find_json_special(&self.bytes[run_start..], b'"');
            let Some(offset) = stop else {
                self.pos = open;
                return Err(self.error("unterminated string"));
            };
            let at = run_start + offset;
            out.push_str(&self.text[run_start..at]);
            self.pos = at;
            match self.bytes[at] {
                b'"' => {
                    self.pos = at + 1;
                    return Ok(out);
                }
                b'\\' => self.escape(&mut out)?,
                _ => return Err(self.error("invalid control character in string")),
            }
        }
    }

    /// One escape at `\`. Lone surrogates become U+FFFD (Rust strings cannot
    /// hold them; Python keeps them, which only matters for their own text).
    fn escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let Some(&kind) = self.bytes.get(self.pos + 1) else {
            return Err(self.error("unterminated string"));
        };
        let simple = match kind {
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'u' => None,
            _ => return Err(self.error("invalid \\escape")),
        };
        if let Some(c) = simple {
            out.push(c);
            self.pos += 2;
            return Ok(());
        }
        let high = self.hex4(self.pos + 2)?;
        self.pos += 6;
        if (0xD800..0xDC00).contains(&high)
            && self.bytes.get(self.pos) == Some(&b'\\')
            && self.bytes.get(self.pos + 1) == Some(&b'u')
        {
            let low = self.hex4(self.pos + 2)?;
            if (0xDC00..0xE000).contains(&low) {
                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                self.pos += 6;
                return Ok(());
            }
        }
        out.push(char::from_u32(high).unwrap_or('\u{fffd}'));
        Ok(())
    }

    fn hex4(&self, at: usize) -> Result<u32, JsonError> {
        let digits = self
            .bytes
            .get(at..at + 4)
            .filter(|d| d.iter().all(u8::is_ascii_hexdigit));
        let Some(digits) = digits else {
            let mut at_escape = Reader::new(self.text);
            at_escape.pos = at.saturating_sub(2).min(self.bytes.len());
            return Err(at_escape.error("invalid \\uXXXX escape"));
        };
        let text = std::str::from_utf8(digits).expect("hex digits are ASCII");
        Ok(u32::from_str_radix(text, 16).expect("validated hex digits"))
    }
}

/// The pending-key slot of an object frame.
fn key_slot<'f, 'a>(frame: &'f mut Frame<'a>) -> &'f mut Cow<'a, str> {
    match frame {
        Frame::Object(_, key) => key,
        Frame::Array(_) => unreachable!("only object frames hold a key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_digits_stops_at_the_first_non_digit() {
        for len in 0..20 {
            for stop in [b'/', b':', b'.', b'e', b' ', 0x00, 0xfa, 0xff, b'0' + 0x80] {
                let mut text = vec![b'7'; len];
                text.push(stop);
                text.extend_from_slice(b"99999999");
                assert_eq!(skip_digits(&text, 0), len, "{len} digits then {stop:#x}");
                assert_eq!(skip_digits(&text[..len], 0), len);
            }
        }
        for byte in 0..=255u8 {
            let text = [b'1', b'2', byte, b'3', b'4', b'5', b'6', b'7', b'8', b'9'];
            let want = if byte.is_ascii_digit() { 10 } else { 2 };
            assert_eq!(skip_digits(&text, 0), want, "{byte:#x}");
        }
    }

    #[test]
    fn accepts_what_python_accepts() {
        let v = parse(r#"{"a": NaN, "b": -Infinity, "c": 123456789012345678901234567890, "a": 1}"#)
            .unwrap();
        assert_eq!(v.get("a"), Some(&JsonValue::Int("1")));
        assert_eq!(v.get("b"), Some(&JsonValue::Float(f64::NEG_INFINITY)));
        assert_eq!(
            v.get("c"),
            Some(&JsonValue::Int("123456789012345678901234567890"))
        );
        assert_eq!(parse("1e400").unwrap(), JsonValue::Float(f64::INFINITY));
        assert_eq!(
            parse(r#""\ud83d\ude00 \ud800""#).unwrap(),
            JsonValue::Str(Cow::Owned("😀 \u{fffd}".to_owned()))
        );
        let deep = format!("{}{}", "[".repeat(600), "]".repeat(600));
        assert!(parse(&deep).is_ok());
    }

    /// Texts `json.loads` rejects.
    const PYTHON_REJECTS: &[&str] = &[
        "{",
        "{'a': 1}",
        "[1,]",
        "01",
        "1.",
        "\"\u{1}\"",
        "\"\\x\"",
        "tru",
        "-",
        "[1 2]",
        "{\"a\" 1}",
        "nan",
        "{} {}",
        "\"\\u12\"",
    ];

    #[test]
    fn rejects_what_python_rejects() {
        for bad in PYTHON_REJECTS {
            assert!(parse(bad).is_err(), "{bad:?} must be rejected");
        }
        let too_deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(&too_deep).unwrap_err().message, "nesting too deep");
        assert!(parse("\u{feff}{}")
            .unwrap_err()
            .message
            .contains("byte order mark"));
        assert!(parse(&"1".repeat(4301)).is_err());
        assert!(parse(&"1".repeat(4300)).is_ok());
    }

    #[test]
    fn skipping_accepts_exactly_what_parsing_accepts() {
        let accepted_or_odd = [
            r#"{"a": [1, 2.5e3, -0, "x\u00e9\n", {"b": null}], "c": NaN, "d": -Infinity}"#,
            "[[[]]]",
            "[{}, {\"a\": {}}]",
            "\"abc",
            "[-Infinity]",
            r#"["a", "b"]"#,
            r#"{"a": "b", "c": null, "d": true, "e": -1.5, "f": false}"#,
            r#"[ "a" , 1 ]"#,
            "[1,]",
            r#"{"a":1,}"#,
            r#"["\u0041", "b"]"#,
            r#"{"a" "b"}"#,
            "[-]",
            "[01]",
            r#"{"a":1 "b":2}"#,
            r#"{"a":[]}"#,
            "[tru]",
            "[NaN, 1]",
        ];
        for &sample in accepted_or_odd.iter().chain(PYTHON_REJECTS) {
            let mut reader = Reader::new(sample);
            reader.skip_ws();
            let skipped = reader.skip_value().map(|_| {
                reader.skip_ws();
                reader.at_end()
            });
            let parsed = parse(sample).is_ok();
            assert_eq!(skipped.unwrap_or(false), parsed, "{sample:?}");
        }
        let too_deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
        let mut reader = Reader::new(&too_deep);
        assert!(reader.skip_value().is_err());
    }

    proptest::proptest! {
        /// Skipping ends where parsing ends, and fails where it fails, on
        /// texts made of JSON's tokens and near misses.
        #[test]
        fn skipping_ends_where_parsing_ends(tokens in proptest::collection::vec(proptest::sample::select(vec![
            "[", "]", "{", "}", ",", ":", "\"a\"", "\"\\n\"", "\"", "1", "-2.5e3", "01", "-",
            "null", "true", "fals", "NaN", " ", "\t",
        ]), 0..14)) {
            let text: String = tokens.concat();
            let mut skipping = Reader::new(&text);
            skipping.skip_ws();
            let skipped = skipping.skip_value().map(|_| skipping.pos);
            let mut parsing = Reader::new(&text);
            parsing.skip_ws();
            let parsed = parsing.value().map(|_| parsing.pos);
            proptest::prop_assert_eq!(skipped.ok(), parsed.ok(), "{:?}", text);
        }
    }

    #[test]
    fn error_offsets_count_characters() {
        let err = parse("{\"é\": x}").unwrap_err();
        assert_eq!(err.offset, 6);
    }
}
