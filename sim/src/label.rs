//! Ground-truth labels: the `scbe_label` key of a corpus line (the gate ignores it).
//!
//! `{"malicious": true, "scenario": "reverse_shell_bash", "technique": "T1059.004",
//! "chain_id": "c-0042"}`; `chain_id` and `technique` may be null.

use scbe_core::falco::{classify_line, RawLine};
use scbe_core::json::{self, JsonValue};

/// One line's ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub malicious: bool,
    pub scenario: Option<String>,
    pub technique: Option<String>,
    pub chain_id: Option<String>,
}

fn text(value: Option<&JsonValue<'_>>) -> Option<String> {
    match value {
        Some(JsonValue::Str(s)) if !s.is_empty() => Some(s.to_string()),
        _ => None,
    }
}

/// The label of a raw line, or `None` when the line has none (or is not an
/// object). A label whose `malicious` is not a boolean counts as absent.
pub fn read_label(raw: &[u8]) -> Option<Label> {
    // Most corpora are labelled on every line; the cheap check spares
    // unlabelled corpora a second parse.
    let at = memchr::memmem::find(raw, b"\"scbe_label\"")?;
    // Fast path: parse only the label object when the key occurs once.
    if memchr::memmem::find(&raw[at + 1..], b"\"scbe_label\"").is_none() {
        if let Some(label) = label_object(&raw[at + 12..]).and_then(|text| {
            let value = json::parse(text).ok()?;
            from_value(&value)
        }) {
            return Some(label);
        }
    }
    let text_line = match classify_line(raw) {
        Ok(RawLine::Text(text)) => text,
        _ => return None,
    };
    let root = json::parse(text_line).ok()?;
    from_value(root.get("scbe_label")?)
}

/// The text of the JSON object that follows `: ` after a key, found by
/// tracking strings and nesting (the full parse is the fallback).
fn label_object(rest: &[u8]) -> Option<&str> {
    let mut i = 0;
    while i < rest.len() && matches!(rest[i], b' ' | b'\t' | b':') {
        i += 1;
    }
    if rest.get(i) != Some(&b'{') {
        return None;
    }
    let start = i;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    while i < rest.len() {
        let b = rest[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'{' || b == b'[' {
            depth += 1;
        } else if b == b'}' || b == b']' {
            depth -= 1;
            if depth == 0 {
                return std::str::from_utf8(&rest[start..=i]).ok();
            }
        }
        i += 1;
    }
    None
}

fn from_value(label: &JsonValue<'_>) -> Option<Label> {
    let malicious = match label.get("malicious")? {
        JsonValue::Bool(b) => *b,
        _ => return None,
    };
    Some(Label {
        malicious,
        scenario: text(label.get("scenario")),
        technique: text(label.get("technique")),
        chain_id: text(label.get("chain_id")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read_or_absent() {
        let line = br#"{"output_fields":{},"scbe_label":{"malicious":true,"scenario":"x","technique":null,"chain_id":"c-1"}}"#;
        assert_eq!(
            read_label(line),
            Some(Label {
                malicious: true,
                scenario: Some("x".into()),
                technique: None,
                chain_id: Some("c-1".into()),
            })
        );
        assert_eq!(read_label(br#"{"output_fields":{}}"#), None);
        assert_eq!(read_label(br#"{"scbe_label":{"malicious":"yes"}}"#), None);
        assert_eq!(read_label(b"not json scbe_label"), None);
    }
}
