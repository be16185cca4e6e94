//! Python `re` patterns on Rust's `regex` engine.
//!
//! Policies are written in Python's dialect (the reference's). The engines
//! differ where parity cares: Python's `\s` also matches U+001C..U+001F, and a
//! `[` inside a class is a literal in Python but a nested class in Rust. This
//! rewrites those constructs; everything else passes through, and what Rust
//! cannot compile (look-around, back-references) is a policy error.

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::limits::PATTERN_COMPILED_BYTES_MAX;

const PY_SPACE_CLASS_ITEMS: &str = r"\s\x1C-\x1F";

/// Rewrite a Python pattern into an equivalent Rust pattern.
pub fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_len = 0usize; // characters since `[` (or `[^`)
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match (next, in_class) {
                    ('s', false) => out.push_str(&format!("[{PY_SPACE_CLASS_ITEMS}]")),
                    ('S', false) => out.push_str(&format!("[^{PY_SPACE_CLASS_ITEMS}]")),
                    ('s', true) => out.push_str(PY_SPACE_CLASS_ITEMS),
                    ('S', true) => out.push_str(&format!("[^{PY_SPACE_CLASS_ITEMS}]")),
                    ('Z', _) => out.push_str(r"\z"),
                    (other, _) => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                class_len += 1;
            }
            '[' if !in_class => {
                in_class = true;
                class_len = 0;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
            }
            '[' => {
                out.push_str(r"\[");
                class_len += 1;
            }
            ']' if in_class && class_len == 0 => {
                // Python: a `]` first in a class is a literal.
                out.push_str(r"\]");
                class_len += 1;
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class && chars.peek() == Some(&c) => {
                // Rust reads `&&`/`~~` in a class as set operations.
                out.push('\\');
                out.push(c);
                class_len += 1;
            }
            other => {
                out.push(other);
                if in_class {
                    class_len += 1;
                }
            }
        }
    }
    out
}

/// Compile one Python-dialect pattern.
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&translate(pattern))
        .size_limit(PATTERN_COMPILED_BYTES_MAX)
        .build()
}

/// The syntax tree [`compile`] builds its regex from, for literal analysis
/// ([`crate::litscan`]).
pub fn parse(pattern: &str) -> Option<regex_syntax::hir::Hir> {
    crate::litscan::parse(&translate(pattern))
}

/// The necessary literal sets of a Python-dialect pattern
/// ([`crate::litscan::necessary_sets`]); none when it cannot be analyzed.
pub fn necessary_sets(pattern: &str) -> Vec<std::collections::BTreeSet<Vec<u8>>> {
    parse(pattern)
        .map(|hir| crate::litscan::necessary_sets(&hir))
        .unwrap_or_default()
}

/// Compile Python-dialect patterns into one set.
pub fn compile_set(patterns: &[String]) -> Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(patterns.iter().map(|p| translate(p)))
        .size_limit(PATTERN_COMPILED_BYTES_MAX)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_separators() {
        let re = compile(r"rm\s+-rf").unwrap();
        assert!(re.is_match("rm\u{1c}-rf"));
        assert!(re.is_match("rm \u{2028}-rf"));
        let links = compile(r#"https?://[^\s)>"]+"#).unwrap();
        assert_eq!(
            links.find("https://a.b\u{1f}c").unwrap().as_str(),
            "https://a.b"
        );
    }

    #[test]
    fn python_class_literals() {
        assert!(compile("[[]").unwrap().is_match("["));
        assert!(compile("[]a]").unwrap().is_match("]"));
        assert!(compile("[a&&b]").unwrap().is_match("&"));
        assert!(compile(r"(?i)/etc/(ssh|shadow)")
            .unwrap()
            .is_match("/ETC/SHADOW"));
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        assert!(compile(r"(?<=a)b").is_err());
        assert!(compile(r"(a)\1").is_err());
    }
}
