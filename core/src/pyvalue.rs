//! Python's `str()`, `int()`, `float()`, `repr()` and truthiness applied to
//! parsed JSON values, as the reference gate applies them to `json.loads`
//! output.

use std::collections::HashMap;

use crate::json::JsonValue;
use crate::pystr::{py_float_repr, py_float_text, py_int_text, py_lower, py_str_repr, py_strip};

/// Python `repr()` of a JSON value (`None`, `True`, `'text'`, `[1, 2]`, `{'k': v}`).
pub fn py_repr(value: &JsonValue<'_>, out: &mut String) {
    match value {
        JsonValue::Null => out.push_str("None"),
        JsonValue::Bool(true) => out.push_str("True"),
        JsonValue::Bool(false) => out.push_str("False"),
        JsonValue::Int(text) => push_int_text(text, out),
        JsonValue::Float(f) => py_float_repr(*f, out),
        JsonValue::Str(s) => py_str_repr(s, out),
        JsonValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(item, out);
            }
            out.push(']');
        }
        JsonValue::Object(members) => {
            out.push('{');
            for (i, (key, value)) in python_dict_items(members).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_str_repr(key, out);
                out.push_str(": ");
                py_repr(value, out);
            }
            out.push('}');
        }
    }
}

/// The items of a Python dict built from `members`: each key once, at the
/// position of its first occurrence, with the value of its last.
fn python_dict_items<'v, 'a>(
    members: &'v [(std::borrow::Cow<'a, str>, JsonValue<'a>)],
) -> Vec<(&'v str, &'v JsonValue<'a>)> {
    let mut items: Vec<(&str, &JsonValue<'a>)> = Vec::with_capacity(members.len());
    let mut index_of: HashMap<&str, usize> = HashMap::with_capacity(members.len());
    for (key, value) in members {
        match index_of.get(key.as_ref()) {
            Some(&i) => items[i].1 = value,
            None => {
                index_of.insert(key.as_ref(), items.len());
                items.push((key.as_ref(), value));
            }
        }
    }
    items
}

/// A JSON integer literal as Python prints the int (`-0` is `0`).
fn push_int_text(text: &str, out: &mut String) {
    if text == "-0" {
        out.push('0');
    } else {
        out.push_str(text);
    }
}

/// `str(v).strip()`: strings as they are, everything else as `repr`-like text.
pub fn to_str(value: &JsonValue<'_>) -> String {
    match value {
        JsonValue::Null => String::new(),
        JsonValue::Str(s) => py_strip(s).to_owned(),
        other => {
            let mut out = String::new();
            py_repr(other, &mut out);
            py_strip(&out).to_owned()
        }
    }
}

/// `int(str(v))` as canonical decimal text, or `None` where Python raises.
pub fn to_int_text(value: &JsonValue<'_>) -> Option<String> {
    match value {
        JsonValue::Int(text) if *text == "-0" => Some("0".to_owned()),
        JsonValue::Int(text) => Some((*text).to_owned()),
        JsonValue::Str(s) => py_int_text(s),
        JsonValue::Null | JsonValue::Bool(_) | JsonValue::Float(_) => None,
        other => py_int_text(&to_str(other)),
    }
}

/// `float(str(v))`, or `default` where Python raises.
pub fn to_float(value: &JsonValue<'_>, default: f64) -> f64 {
    match value {
        JsonValue::Float(f) => *f,
        JsonValue::Int(text) => int_literal_to_float(text).unwrap_or(default),
        JsonValue::Str(s) => py_float_text(s).unwrap_or(default),
        JsonValue::Null | JsonValue::Bool(_) => default,
        other => py_float_text(&to_str(other)).unwrap_or(default),
    }
}

/// `float(int)` of a JSON integer literal: correctly rounded, and never
/// negative zero (Python's `-0` is the int `0`).
fn int_literal_to_float(text: &str) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    Some(if value == 0.0 { 0.0 } else { value })
}

/// JSON booleans as they are; `null` → `default`; otherwise the stripped,
/// lowercased text: `1 true t yes y` → true, `0 false f no n` → false.
pub fn to_bool(value: &JsonValue<'_>, default: bool) -> bool {
    match value {
        JsonValue::Bool(b) => *b,
        JsonValue::Null => default,
        other => match py_lower(&to_str(other)).as_str() {
            "1" | "true" | "t" | "yes" | "y" => true,
            "0" | "false" | "f" | "no" | "n" => false,
            _ => default,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn v(text: &str) -> JsonValue<'_> {
        parse(text).unwrap()
    }

    #[test]
    fn conversions_follow_python() {
        assert_eq!(to_str(&v("null")), "");
        assert_eq!(to_str(&v("true")), "True");
        assert_eq!(to_str(&v("1.0")), "1.0");
        assert_eq!(to_str(&v("1e-5")), "1e-05");
        assert_eq!(to_str(&v("1e16")), "1e+16");
        assert_eq!(to_str(&v("\"  x \"")), "x");
        assert_eq!(to_str(&v("[1, \"a\", null]")), "[1, 'a', None]");
        assert_eq!(to_str(&v("{\"a\":1,\"b\":2,\"a\":3}")), "{'a': 3, 'b': 2}");
        assert_eq!(to_int_text(&v("\"12.0\"")), None);
        assert_eq!(to_int_text(&v("12.0")), None);
        assert_eq!(to_int_text(&v("true")), None);
        assert_eq!(to_int_text(&v("\" 42 \"")).as_deref(), Some("42"));
        assert_eq!(to_float(&v("\"abc\""), 0.5), 0.5);
        assert_eq!(to_float(&v("true"), 0.5), 0.5);
        assert_eq!(to_float(&v("\"1_0.5\""), 0.0), 10.5);
        assert!(to_float(&v("NaN"), 0.0).is_nan());
        // Python: float(str(json.loads("-0"))) is 0.0, not -0.0.
        assert!(to_float(&v("-0"), 1.0).is_sign_positive());
        assert!(to_float(&v("\"-0\""), 1.0).is_sign_negative());
        assert!(to_bool(&v("\"yes\""), false));
        assert!(to_bool(&v("1"), false));
        assert!(!to_bool(&v("1.0"), false));
        assert!(to_bool(&v("null"), true));
        assert!(!to_bool(&v("\" N \""), true));
    }
}
