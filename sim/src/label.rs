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
    memchr::memmem::find(raw, b"scbe_label")?;
    let text_line = match classify_line(raw) {
        Ok(RawLine::Text(text)) => text,
        _ => return None,
    };
    let root = json::parse(text_line).ok()?;
    let label = root.get("scbe_label")?;
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
