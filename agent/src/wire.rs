//! The few Falco fields the agent itself reads from the wire (the core maps
//! everything the gate decides on). Parsed with the core's JSON reader, so
//! the agent accepts exactly the lines the gate accepts.

use scbe_core::falco::{classify_line, RawLine};
use scbe_core::json::{self, JsonValue};

/// `output_fields["proc.pid.ts"]`: the process start time in nanoseconds
/// since the epoch, as Falco appends it (`append_output.extra_fields`).
/// Falco writes a number; Falcosidekick and some forwarders write a string.
pub fn pid_start_nanos(raw: &[u8]) -> Option<i64> {
    let RawLine::Text(text) = classify_line(raw).ok()? else {
        return None;
    };
    let root = json::parse(text).ok()?;
    let value = root.get("output_fields")?.get("proc.pid.ts")?;
    let nanos = match value {
        JsonValue::Int(text) => text.parse::<i64>().ok()?,
        JsonValue::Str(text) => text.trim().parse::<i64>().ok()?,
        JsonValue::Float(f) if f.is_finite() && f.fract() == 0.0 => *f as i64,
        _ => return None,
    };
    (nanos > 0).then_some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_strings() {
        let n = br#"{"output_fields":{"proc.pid.ts":1789647528149592099}}"#;
        assert_eq!(pid_start_nanos(n), Some(1_789_647_528_149_592_099));
        let s = br#"{"output_fields":{"proc.pid.ts":"1743822001115100312"}}"#;
        assert_eq!(pid_start_nanos(s), Some(1_743_822_001_115_100_312));
        assert_eq!(
            pid_start_nanos(br#"{"output_fields":{"proc.pid":1}}"#),
            None
        );
        assert_eq!(
            pid_start_nanos(br#"{"output_fields":{"proc.pid.ts":null}}"#),
            None
        );
        assert_eq!(pid_start_nanos(b"not json"), None);
    }
}
