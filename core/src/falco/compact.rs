//! The fast path for reading a Falco line.
//!
//! A Falco line is an object whose only nested object is `output_fields`,
//! with at most a flat list or map elsewhere (`tags`, a label object), and
//! strings that seldom need an escape. This reader takes exactly that shape
//! in one tight pass, with its position in a local rather than in a shared
//! [`crate::json::Reader`], and gives up on anything else: deeper nesting,
//! an escaped member name, a control character in a string, `NaN`, a long
//! number, a malformed token. Giving up costs nothing but the work done so
//! far; the general reader then reads the line from the start and decides
//! it (and words any error) as Python's `json.loads` would.
//!
//! So the fast path never decides what is valid on its own: every line it
//! accepts is one the general reader accepts too, with the same members
//! located (the tests check this on generated lines).

use super::keyorder::{KeyOrder, START};
use super::{field_index, spans_fit, top_index, FalcoDoc, Span, KNOWN_FIELDS};
use crate::bytescan::find_json_special;
use crate::json::skip_digits;

/// Number literals longer than this are left to the general reader (which
/// applies Python's limit on integer digits).
const NUMBER_CHARS_MAX: usize = 64;

/// `text` read as a compact Falco object, or `None` when it is not in that
/// shape (valid or not): then the general reader must read it.
#[cfg(test)]
fn read(text: &str) -> Option<FalcoDoc<'_>> {
    let mut doc = FalcoDoc::empty(text);
    fill(&mut doc, &mut KeyOrder::disabled()).then_some(doc)
}

/// [`read`] in place: locate the members of `doc`'s text in `doc`, fresh
/// from `FalcoDoc::empty`, guessing member names from `order` (and teaching
/// it); `false` when the general reader must read it (`doc` then holds
/// nothing of use).
pub(super) fn fill(doc: &mut FalcoDoc<'_>, order: &mut KeyOrder) -> bool {
    let text = doc.text;
    if !spans_fit(text) {
        return false;
    }
    let bytes = text.as_bytes();
    let Some((start, open)) = token(bytes, 0) else {
        return false;
    };
    if open != b'{' {
        return false;
    }
    let Some(end) = read_members(doc, bytes, start, true, order) else {
        return false;
    };
    // Anything but whitespace after the object is the general reader's.
    token(bytes, end).is_none()
}

/// The first byte at or after `i` that is not JSON whitespace, and where
/// it is. Falco's own lines have no whitespace between tokens, so the usual
/// cost is one comparison on a byte read anyway; `json.dumps` puts a space
/// after each `:` and `,`.
#[inline(always)]
fn token(b: &[u8], i: usize) -> Option<(usize, u8)> {
    let c = *b.get(i)?;
    if c > b' ' {
        Some((i, c))
    } else {
        token_after_ws(b, i)
    }
}

/// [`token`] just after a `:` or `,` of the top-level or `output_fields`
/// object, where `json.dumps` writes one space: that case is taken inline.
#[inline(always)]
fn token_after_separator(b: &[u8], i: usize) -> Option<(usize, u8)> {
    let c = *b.get(i)?;
    if c > b' ' {
        return Some((i, c));
    }
    if c == b' ' {
        let next = *b.get(i + 1)?;
        if next > b' ' {
            return Some((i + 1, next));
        }
    }
    token_after_ws(b, i)
}

#[inline(never)]
fn token_after_ws(b: &[u8], mut i: usize) -> Option<(usize, u8)> {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    Some((i, *b.get(i)?))
}

/// What a member name is to [`read_members`]: its slot in the document, or
/// one of these.
const NOT_KNOWN: u32 = u32::MAX;
const OUTPUT_FIELDS: u32 = u32::MAX - 1;

/// The members of the object whose `{` is at `i` (the event itself when
/// `top`, else its `output_fields`): each known one located in `doc`. Returns
/// the index just past the closing `}`.
#[inline(always)]
fn read_members(
    doc: &mut FalcoDoc<'_>,
    b: &[u8],
    i: usize,
    top: bool,
    order: &mut KeyOrder,
) -> Option<usize> {
    let (mut i, mut c) = token(b, i + 1)?;
    if c == b'}' {
        return Some(i + 1);
    }
    // Looked up once, not per member.
    let names = if top { top_index() } else { field_index() };
    let level = usize::from(!top);
    // The previous member's name, in `order`.
    let mut prev = START;
    loop {
        if c != b'"' {
            return None;
        }
        // The name: the one that followed the previous name last time, when
        // it is that one; else read, looked up and remembered.
        let guessed = order
            .guess(level, prev)
            .and_then(|(index, known)| Some((known.matches_at(b, i)?, known.kind, index)));
        let (key_end, kind) = match guessed {
            Some((key_end, kind, index)) => {
                prev = index;
                (key_end, kind)
            }
            None => {
                let key_end = plain_string_end(b, i)?;
                let key = &b[i + 1..key_end];
                let kind = if top && key == b"output_fields" {
                    OUTPUT_FIELDS
                } else {
                    names.slot(key).map_or(NOT_KNOWN, |slot| slot as u32)
                };
                prev = order.learn(level, prev, key, kind);
                (key_end, kind)
            }
        };
        let (colon, sep) = token(b, key_end + 1)?;
        if sep != b':' {
            return None;
        }
        let (start, first) = token_after_separator(b, colon + 1)?;
        i = start;
        if kind == OUTPUT_FIELDS {
            // A later duplicate replaces an earlier one, as in Python.
            doc.fields = [Span::ABSENT; KNOWN_FIELDS.len()];
            i = if first == b'{' {
                read_members(doc, b, i, false, order)?
            } else {
                value_end(b, i, first)?
            };
        } else {
            let slot = (kind != NOT_KNOWN).then(|| {
                let s = kind as usize;
                if top {
                    &mut doc.top[s]
                } else {
                    &mut doc.fields[s]
                }
            });
            if first == b'"' {
                let (end, plain) = string_end(b, i)?;
                if let Some(slot) = slot {
                    // A string with escapes is kept as JSON text, decoded
                    // when the mapping reads it.
                    *slot = if plain {
                        Span::new(i + 1, end - 1, false)
                    } else {
                        Span::new(i, end, true)
                    };
                }
                i = end;
            } else {
                let end = value_end(b, i, first)?;
                if let Some(slot) = slot {
                    *slot = Span::new(i, end, true);
                }
                i = end;
            }
        }
        let (after, next) = token(b, i)?;
        match next {
            b',' => (i, c) = token_after_separator(b, after + 1)?,
            b'}' => return Some(after + 1),
            _ => return None,
        }
    }
}

/// The index of the closing quote of the string whose opening quote is at
/// `i`, when the string has no escape (member names are looked up as they
/// are written, so an escaped one is the general reader's).
#[inline(always)]
fn plain_string_end(b: &[u8], i: usize) -> Option<usize> {
    match string_end(b, i)? {
        (end, true) => Some(end - 1),
        (_, false) => None,
    }
}

/// Just past the string whose opening quote is at `i`, and whether it had
/// no escape.
#[inline(always)]
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let start = i + 1;
    let rest = b.get(start..)?;
    let len = find_json_special(rest, b'"')?;
    match rest[len] {
        b'"' => Some((start + len + 1, true)),
        b'\\' => Some((escaped_string_end(b, start + len)?, false)),
        _ => None,
    }
}

/// Just past a string whose first escape is at `at`. Escapes are checked as
/// Python's decoder checks them (`\u` takes four hex digits, lone
/// surrogates included); a control character leaves the string to the
/// general reader.
#[inline(never)]
fn escaped_string_end(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        // At a backslash.
        at += match *b.get(at + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
            b'u' if b.get(at + 2..at + 6)?.iter().all(u8::is_ascii_hexdigit) => 6,
            _ => return None,
        };
        at += find_json_special(b.get(at..)?, b'"')?;
        match b[at] {
            b'"' => return Some(at + 1),
            b'\\' => {}
            _ => return None,
        }
    }
}

/// Just past the value starting at `i` (its first byte `first`): a string,
/// number, literal, or a flat array or object of those.
#[inline(always)]
fn value_end(b: &[u8], i: usize, first: u8) -> Option<usize> {
    match first {
        b'[' | b'{' => flat_container_end(b, i, first),
        _ => scalar_end(b, i, first),
    }
}

/// Just past the string, number or literal starting at `i`.
#[inline(always)]
fn scalar_end(b: &[u8], i: usize, first: u8) -> Option<usize> {
    match first {
        b'"' => Some(string_end(b, i)?.0),
        b'-' | b'0'..=b'9' => number_end(b, i),
        b't' if b[i..].starts_with(b"true") => Some(i + 4),
        b'f' if b[i..].starts_with(b"false") => Some(i + 5),
        b'n' if b[i..].starts_with(b"null") => Some(i + 4),
        _ => None,
    }
}

/// Just past the JSON number at `i` (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`);
/// `None` for anything the general reader must judge (`-Infinity`, `1.`,
/// `1e`, a very long literal).
#[inline(always)]
fn number_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    if b[i] == b'-' {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = skip_digits(b, i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        if !b.get(i + 1)?.is_ascii_digit() {
            return None;
        }
        i = skip_digits(b, i + 1);
    }
    if let Some(b'e' | b'E') = b.get(i) {
        let mut j = i + 1;
        if let Some(b'+' | b'-') = b.get(j) {
            j += 1;
        }
        if !b.get(j)?.is_ascii_digit() {
            return None;
        }
        i = skip_digits(b, j);
    }
    (i - start <= NUMBER_CHARS_MAX).then_some(i)
}

/// Just past the array or object at `i` whose members are all scalars.
fn flat_container_end(b: &[u8], i: usize, open: u8) -> Option<usize> {
    let is_object = open == b'{';
    let close = if is_object { b'}' } else { b']' };
    let (mut i, mut c) = token(b, i + 1)?;
    if c == close {
        return Some(i + 1);
    }
    loop {
        if is_object {
            if c != b'"' {
                return None;
            }
            let (colon, next) = token(b, string_end(b, i)?.0)?;
            if next != b':' {
                return None;
            }
            (i, c) = token(b, colon + 1)?;
        }
        let (after, next) = token(b, scalar_end(b, i, c)?)?;
        match next {
            b',' => (i, c) = token(b, after + 1)?,
            n if n == close => return Some(after + 1),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the general reader makes of `text`, spans and all.
    fn general(text: &str) -> Option<(Vec<Span>, Vec<Span>)> {
        FalcoDoc::read_general(text)
            .ok()
            .map(|doc| (doc.top.to_vec(), doc.fields.to_vec()))
    }

    fn fast(text: &str) -> Option<(Vec<Span>, Vec<Span>)> {
        read(text).map(|doc| (doc.top.to_vec(), doc.fields.to_vec()))
    }

    /// [`fast`], guessing member names from `order` (and teaching it).
    fn fast_guessing(order: &mut KeyOrder, text: &str) -> Option<(Vec<Span>, Vec<Span>)> {
        let mut doc = FalcoDoc::empty(text);
        fill(&mut doc, order).then(|| (doc.top.to_vec(), doc.fields.to_vec()))
    }

    /// Whatever the fast path accepts, the general reader accepts with the
    /// same members located.
    fn agrees(text: &str) {
        if let Some(spans) = fast(text) {
            assert_eq!(Some(spans), general(text), "{text}");
        }
    }

    /// Guessed names change nothing: with `order` as earlier lines left it,
    /// the fast path accepts and locates exactly as without guesses.
    fn guessing_agrees(order: &mut KeyOrder, text: &str) {
        assert_eq!(fast_guessing(order, text), fast(text), "{text}");
    }

    #[test]
    fn guessed_names_locate_members_as_read_ones() {
        let lines = [
            r#"{"hostname":"h","output_fields":{"proc.pid":12,"proc.name":"bash","fd.name":null},"rule":"r"}"#,
            // Same order: every name is the guess.
            r#"{"hostname":"g","output_fields":{"proc.pid":13,"proc.name":"sh","fd.name":"/x"},"rule":"q"}"#,
            // Guesses that are prefixes, extensions or near misses of the names.
            r#"{"hostnam":"h","output_fields":{"proc.pids":1,"proc.nam":"x","fd.name\u0041":1},"rul":"r"}"#,
            r#"{"hostname":"h","output_fields":{"proc.pid" :1,"proc.name":"x"}}"#,
            r#"{"hostname":"h","output_fields":{"proc.pid"#,
            r#"{"hostname":"h","output_fields":{"proc.pid":1,"proc.pid":2,"proc.name":3}}"#,
            // `output_fields` guessed where it is not at the top.
            r#"{"hostname":"h","output_fields":{"output_fields":{"a":1},"proc.name":"x"}}"#,
            r#"{"hostname":"h","x":{"output_fields":1},"output_fields":{}}"#,
            // Long names (middle word) and names past the remembered length.
            r#"{"output_fields":{"container.image.repository":"a","k8s.deployment.name.really.long":1}}"#,
            r#"{"output_fields":{"container.image.repositorx":"a","k8s.deployment.name.really.long":1}}"#,
        ];
        let mut order = KeyOrder::new();
        for _ in 0..2 {
            for line in lines {
                guessing_agrees(&mut order, line);
                agrees(line);
            }
        }
    }

    #[test]
    fn reads_falco_lines_as_the_general_reader_does() {
        let lines = [
            r#"{"hostname":"h","output":"o","output_fields":{"proc.pid":12,"proc.name":"bash","evt.time":1741593600012754329,"fd.name":null,"scbe.geometry_norm":0.182651,"scbe.signer_trusted":true},"priority":"Debug","tags":["a","b"],"scbe_label":{"malicious":false,"technique":null}}"#,
            r#"{}"#,
            r#"{"output_fields":{}}"#,
            r#"{"output_fields":[],"rule":"r"}"#,
            r#"{"output_fields":{"proc.pid":1},"output_fields":{"proc.name":"x"}}"#,
            r#"{"pid":-0.5e-3,"rule":"é😀","tags":[],"x":{},"y":[1,-2,3.5E+2,"s",true,false,null]}"#,
            r#"{"output_fields":{"proc.pid":1,"proc.pid":2}}"#,
            r#"{"":"","output_fields":{"":0}}"#,
            // `json.dumps` spacing, and whitespace anywhere between tokens.
            r#"{"hostname": "h", "output_fields": {"proc.pid": 1, "fd.name": null}, "tags": ["a", "b"]}"#,
            " \t{ \"a\" :\r\n1 , \"rule\" : [ ] , \"x\" : { \"k\" : 1 } }\n ",
            // Escapes: kept as JSON text where the member is known.
            r#"{"rule":"x\"y\\z\/\b\f\n\r\t\u00e9\ud800","output_fields":{"proc.cmdline":"a\tb"},"x":["\u0041"]}"#,
        ];
        for line in lines {
            assert!(fast(line).is_some(), "{line}");
            agrees(line);
        }
    }

    #[test]
    fn leaves_other_shapes_to_the_general_reader() {
        let lines = [
            r#"{"a\n":1}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            r#"{"a":"\u12"}"#,
            "{\"a\":1}\u{0c}",
            "{\"a\":\"\t\"}",
            r#"{"a":NaN}"#,
            r#"{"a":-Infinity}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":01}"#,
            r#"{"a":[[1]]}"#,
            r#"{"a":{"b":{}}}"#,
            r#"{"output_fields":{"a":{"b":[]}}}"#,
            r#"{"a":1,}"#,
            r#"{"a":tru}"#,
            r#"{"a":1"#,
            r#"{"a":"#,
            r#"[1]"#,
            r#"{"a":12345678901234567890123456789012345678901234567890123456789012345}"#,
        ];
        for line in lines {
            assert!(fast(line).is_none(), "{line}");
        }
    }

    /// A JSON object (usually valid) built from Falco-like members, with
    /// random whitespace, escapes, nesting and number forms.
    fn falco_like() -> impl Strategy<Value = String> {
        let ws = proptest::sample::select(vec!["", "", "", " ", "\t", "\r\n"]);
        let key = proptest::sample::select(vec![
            "\"proc.pid\"",
            "\"proc.name\"",
            "\"fd.name\"",
            "\"evt.time\"",
            "\"rule\"",
            "\"output\"",
            "\"hostname\"",
            "\"tags\"",
            "\"x\"",
            "\"\"",
            "\"pr\\u006fc.pid\"",
            "\"output_fields\"",
        ]);
        let scalar = proptest::sample::select(vec![
            "\"bash\"",
            "\"a\\\"b\"",
            "\"\\u00e9\\ud83d\"",
            "\"\\q\"",
            "\"é😀\"",
            "\"\"",
            "0",
            "-0",
            "12",
            "-3.5e+7",
            "1E2",
            "0.5",
            "01",
            "1.",
            "-",
            "NaN",
            "-Infinity",
            "1741593600012754329",
            "true",
            "false",
            "null",
            "nul",
        ]);
        let value = prop_oneof![
            4 => scalar.clone().prop_map(str::to_owned),
            1 => proptest::collection::vec((scalar.clone(), ws.clone()), 0..4).prop_map(|items| {
                let inner: Vec<String> = items.iter().map(|(v, w)| format!("{w}{v}{w}")).collect();
                format!("[{}]", inner.join(","))
            }),
            1 => proptest::collection::vec((key.clone(), scalar.clone(), ws.clone()), 0..4).prop_map(|items| {
                let inner: Vec<String> = items.iter().map(|(k, v, w)| format!("{k}{w}:{w}{v}")).collect();
                format!("{{{}}}", inner.join(","))
            }),
            1 => Just("{\"a\":{\"b\":1}}".to_owned()),
        ];
        proptest::collection::vec((key, value, ws.clone(), ws), 0..12).prop_map(|members| {
            let inner: Vec<String> = members
                .iter()
                .map(|(k, v, w1, w2)| format!("{w1}{k}{w2}:{w1}{v}{w2}"))
                .collect();
            format!("{{{}}}", inner.join(","))
        })
    }

    proptest! {
        /// Generated objects, and each with one byte cut out: whatever the
        /// fast path accepts, the general reader accepts alike.
        #[test]
        fn agrees_on_falco_like_objects(
            text in falco_like(),
            other in falco_like(),
            cut in any::<proptest::sample::Index>(),
        ) {
            agrees(&text);
            // Guessing from another object's names, then from its own.
            let mut order = KeyOrder::new();
            for line in [&other, &text, &text] {
                guessing_agrees(&mut order, line);
            }
            let mut bytes = text.into_bytes();
            bytes.remove(cut.index(bytes.len()));
            if let Ok(text) = String::from_utf8(bytes) {
                agrees(&text);
                guessing_agrees(&mut order, &text);
            }
        }

        /// Token soup from Falco-like pieces: the fast path never accepts
        /// what the general reader rejects, nor locates differently.
        #[test]
        fn agrees_with_the_general_reader(pieces in proptest::collection::vec(proptest::sample::select(vec![
            "{", "}", "[", "]", ",", ":", " ", "\"", "\"proc.pid\"", "\"output_fields\"", "\"rule\"",
            "\"fd.name\"", "\"x\"", "1", "-", "0", ".5", "e3", "true", "null", "\"a\\\"b\"", "\"é\"",
            "{\"output_fields\":{", "\"proc.name\":\"bash\"", "NaN", "\t",
        ]), 0..40)) {
            let text: String = pieces.concat();
            agrees(&text);
            let mut order = KeyOrder::new();
            guessing_agrees(&mut order, &text);
            guessing_agrees(&mut order, &text);
        }
    }
}
