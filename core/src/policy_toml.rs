//! Policy files: TOML text → [`Policy`] (and back).
//!
//! A file may set any subset of keys; everything else is the reference.
//! Parsing happens here, from a string; reading the file is the caller's job.
//! Every error names the key, the offending value and the line.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::limits::{
    PARENT_CHILD_PAIRS_MAX, SCAN_PATTERNS_MAX, SENSITIVE_TARGETS_MAX, STATE_ENTRIES_MAX,
};
use crate::policy::Policy;
use crate::pyregex;
use crate::pystr::py_float_repr;
use crate::turnstile::Domain;

/// Enforcement backends a policy or command line may name.
pub const BACKEND_NAMES: &[&str] = &["signal", "systemd", "journald", "soc"];

/// `systemd,journald` → backend names (trimmed, lowercased), each checked
/// against [`BACKEND_NAMES`]. Shared by `--enforcement-backends` everywhere.
pub fn parse_backend_list(list: &str) -> Result<Vec<String>, PolicyError> {
    let names: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    match names.iter().find(|n| !BACKEND_NAMES.contains(&n.as_str())) {
        Some(bad) => Err(PolicyError::new(
            "enforcement.backends",
            bad,
            format!(
                "unknown backend (expected one of {})",
                BACKEND_NAMES.join(", ")
            ),
        )),
        None => Ok(names),
    }
}

/// A policy that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Dotted key, e.g. `decision.deny`; empty for syntax errors.
    pub key: String,
    /// The offending value as written (may be empty).
    pub value: String,
    pub message: String,
    /// 1-based line in the policy file, when known.
    pub line: Option<usize>,
}

impl PolicyError {
    fn new(key: &str, value: impl fmt::Display, message: impl Into<String>) -> PolicyError {
        PolicyError {
            key: key.to_owned(),
            value: value.to_string(),
            message: message.into(),
            line: None,
        }
    }

    pub(crate) fn pattern(key: &str, pattern: &str, error: &regex::Error) -> PolicyError {
        let detail = error.to_string();
        let last = detail.lines().last().unwrap_or("").trim().to_owned();
        PolicyError::new(key, pattern, format!("pattern does not compile: {last}"))
    }

    fn at(mut self, source: &str, span: &Range<usize>) -> PolicyError {
        self.line = Some(line_of(source, span.start));
        self
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("policy: ")?;
        if !self.key.is_empty() {
            write!(f, "{}", self.key)?;
            if !self.value.is_empty() {
                write!(f, " = {}", self.value)?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)?;
        if let Some(line) = self.line {
            write!(f, " at line {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

fn line_of(source: &str, offset: usize) -> usize {
    source.as_bytes()[..offset.min(source.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

type Num = Option<Spanned<f64>>;
type Strings = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    scan: Option<ScanDoc>,
    integrity: Option<IntegrityDoc>,
    decision: Option<DecisionDoc>,
    turnstile: Option<TurnstileDoc>,
    cell: Option<CellDoc>,
    memory: Option<MemoryDoc>,
    enforcement: Option<EnforcementDoc>,
    mapping: Option<MappingDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanDoc {
    prompt_patterns: Strings,
    malware_patterns: Strings,
    extra_prompt_patterns: Strings,
    extra_malware_patterns: Strings,
    link_pattern: Option<Spanned<String>>,
    link_exclusions: Strings,
    prompt_weight: Num,
    prompt_cap: Num,
    malware_weight: Num,
    malware_cap: Num,
    link_weight: Num,
    link_cap: Num,
    verdict_malicious: Num,
    verdict_suspicious: Num,
    verdict_caution: Num,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntegrityDoc {
    operation_risk: Option<toml::Table>,
    unknown_operation_risk: Num,
    untrusted_signer_risk: Num,
    missing_sha256_risk: Num,
    invalid_sha256_length_risk: Num,
    sensitive_target_risk: Num,
    sensitive_targets: Strings,
    extra_sensitive_targets: Strings,
    parent_child_risk: Num,
    parent_child_pairs: Option<Spanned<Vec<(String, String)>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionDoc {
    scan_weight: Num,
    integrity_weight: Num,
    geometry_weight: Num,
    deny: Num,
    escalate: Num,
    quarantine: Num,
    geometry_base: Num,
    geometry_slope: Num,
    ignore_invalid_norm: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TurnstileDoc {
    domain: Option<Spanned<String>>,
    half_life_events: Num,
    membrane_threshold: Num,
    honeypot_stress: Num,
    honeypot_antibody: Num,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CellDoc {
    necrotic: Num,
    inflamed: Num,
    primed: Num,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryDoc {
    max_state_entries: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnforcementDoc {
    cooldown_seconds: Num,
    quarantine_dir: Option<Spanned<String>>,
    backends: Strings,
    protected_processes: Strings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingDoc {
    real_network_fields: Option<bool>,
}

/// Where each numeric key came from, so validation can name its line.
type Spans = Vec<(String, Range<usize>)>;

/// Parse a policy file's text. Unset keys come from [`Policy::reference`].
pub fn parse_policy(source: &str) -> Result<Policy, PolicyError> {
    let doc: FileDoc = toml::from_str(source).map_err(|e| {
        let message = e.message().to_owned();
        let mut err = PolicyError::new("", "", message);
        if let Some(span) = e.span() {
            err = err.at(source, &span);
        }
        err
    })?;
    let mut policy = Policy::reference();
    let mut spans: Spans = Vec::new();
    let mut num = |key: &str, slot: &mut f64, value: Num| {
        if let Some(v) = value {
            spans.push((key.to_owned(), v.span()));
            *slot = *v.get_ref();
        }
    };

    if let Some(s) = doc.scan {
        let p = &mut policy.scan;
        num("scan.prompt_weight", &mut p.prompt_weight, s.prompt_weight);
        num("scan.prompt_cap", &mut p.prompt_cap, s.prompt_cap);
        num(
            "scan.malware_weight",
            &mut p.malware_weight,
            s.malware_weight,
        );
        num("scan.malware_cap", &mut p.malware_cap, s.malware_cap);
        num("scan.link_weight", &mut p.link_weight, s.link_weight);
        num("scan.link_cap", &mut p.link_cap, s.link_cap);
        num(
            "scan.verdict_malicious",
            &mut p.verdict_malicious,
            s.verdict_malicious,
        );
        num(
            "scan.verdict_suspicious",
            &mut p.verdict_suspicious,
            s.verdict_suspicious,
        );
        num(
            "scan.verdict_caution",
            &mut p.verdict_caution,
            s.verdict_caution,
        );
        if let Some(list) = s.prompt_patterns {
            p.prompt_patterns = patterns(source, "scan.prompt_patterns", list)?;
        }
        if let Some(list) = s.malware_patterns {
            p.malware_patterns = patterns(source, "scan.malware_patterns", list)?;
        }
        if let Some(list) = s.extra_prompt_patterns {
            let extra = patterns(source, "scan.extra_prompt_patterns", list)?;
            p.prompt_patterns.extend(extra);
        }
        if let Some(list) = s.extra_malware_patterns {
            let extra = patterns(source, "scan.extra_malware_patterns", list)?;
            p.malware_patterns.extend(extra);
        }
        if let Some(link) = s.link_pattern {
            let span = link.span();
            let link = link.into_inner();
            pyregex::compile(&link).map_err(|e| {
                PolicyError::pattern("scan.link_pattern", &link, &e).at(source, &span)
            })?;
            p.link_pattern = link;
        }
        if let Some(list) = s.link_exclusions {
            p.link_exclusions = list
                .into_inner()
                .into_iter()
                .map(Spanned::into_inner)
                .collect();
        }
    }
    if let Some(i) = doc.integrity {
        let p = &mut policy.integrity;
        num(
            "integrity.unknown_operation_risk",
            &mut p.unknown_operation_risk,
            i.unknown_operation_risk,
        );
        num(
            "integrity.untrusted_signer_risk",
            &mut p.untrusted_signer_risk,
            i.untrusted_signer_risk,
        );
        num(
            "integrity.missing_sha256_risk",
            &mut p.missing_sha256_risk,
            i.missing_sha256_risk,
        );
        num(
            "integrity.invalid_sha256_length_risk",
            &mut p.invalid_sha256_length_risk,
            i.invalid_sha256_length_risk,
        );
        num(
            "integrity.sensitive_target_risk",
            &mut p.sensitive_target_risk,
            i.sensitive_target_risk,
        );
        num(
            "integrity.parent_child_risk",
            &mut p.parent_child_risk,
            i.parent_child_risk,
        );
        if let Some(table) = i.operation_risk {
            for (op, value) in table {
                let key = format!("integrity.operation_risk.{op}");
                let risk = match value {
                    toml::Value::Float(f) => f,
                    toml::Value::Integer(n) => n as f64,
                    other => {
                        return Err(line_for_key(
                            PolicyError::new(&key, &other, "must be a number"),
                            source,
                            &op,
                        ))
                    }
                };
                if !(0.0..=1.0).contains(&risk) {
                    return Err(line_for_key(
                        PolicyError::new(&key, risk, "risk is outside [0, 1]"),
                        source,
                        &op,
                    ));
                }
                match p.operation_risk.iter_mut().find(|(name, _)| *name == op) {
                    Some(slot) => slot.1 = risk,
                    None => p.operation_risk.push((op, risk)),
                }
            }
        }
        if let Some(list) = i.sensitive_targets {
            p.sensitive_targets = patterns(source, "integrity.sensitive_targets", list)?;
        }
        if let Some(list) = i.extra_sensitive_targets {
            let extra = patterns(source, "integrity.extra_sensitive_targets", list)?;
            p.sensitive_targets.extend(extra);
        }
        if let Some(pairs) = i.parent_child_pairs {
            let span = pairs.span();
            let pairs = pairs.into_inner();
            if pairs.len() > PARENT_CHILD_PAIRS_MAX {
                return Err(PolicyError::new(
                    "integrity.parent_child_pairs",
                    pairs.len(),
                    format!("more than {PARENT_CHILD_PAIRS_MAX} pairs"),
                )
                .at(source, &span));
            }
            p.parent_child_pairs = pairs;
        }
    }
    if let Some(d) = doc.decision {
        let p = &mut policy.decision;
        num("decision.scan_weight", &mut p.scan_weight, d.scan_weight);
        num(
            "decision.integrity_weight",
            &mut p.integrity_weight,
            d.integrity_weight,
        );
        num(
            "decision.geometry_weight",
            &mut p.geometry_weight,
            d.geometry_weight,
        );
        num("decision.deny", &mut p.deny, d.deny);
        num("decision.escalate", &mut p.escalate, d.escalate);
        num("decision.quarantine", &mut p.quarantine, d.quarantine);
        num(
            "decision.geometry_base",
            &mut p.geometry_base,
            d.geometry_base,
        );
        num(
            "decision.geometry_slope",
            &mut p.geometry_slope,
            d.geometry_slope,
        );
        if let Some(flag) = d.ignore_invalid_norm {
            p.ignore_invalid_norm = flag;
        }
    }
    if let Some(t) = doc.turnstile {
        let p = &mut policy.turnstile;
        if let Some(domain) = t.domain {
            let name = domain.get_ref();
            let parsed = Domain::from_name(name);
            if parsed == Domain::Default && name.trim() != "default" {
                return Err(PolicyError::new(
                    "turnstile.domain",
                    name,
                    "unknown domain (expected antivirus, browser, vehicle, fleet, arxiv, patent or default)",
                )
                .at(source, &domain.span()));
            }
            p.domain = parsed;
        }
        num(
            "turnstile.half_life_events",
            &mut p.half_life_events,
            t.half_life_events,
        );
        num(
            "turnstile.membrane_threshold",
            &mut p.membrane_threshold,
            t.membrane_threshold,
        );
        num(
            "turnstile.honeypot_stress",
            &mut p.honeypot_stress,
            t.honeypot_stress,
        );
        num(
            "turnstile.honeypot_antibody",
            &mut p.honeypot_antibody,
            t.honeypot_antibody,
        );
    }
    if let Some(c) = doc.cell {
        let p = &mut policy.cell;
        num("cell.necrotic", &mut p.necrotic, c.necrotic);
        num("cell.inflamed", &mut p.inflamed, c.inflamed);
        num("cell.primed", &mut p.primed, c.primed);
    }
    if let Some(m) = doc.memory {
        if let Some(n) = m.max_state_entries {
            let value = *n.get_ref();
            if value < 1 || value as u64 > STATE_ENTRIES_MAX as u64 {
                return Err(PolicyError::new(
                    "memory.max_state_entries",
                    value,
                    format!("must be in [1, {STATE_ENTRIES_MAX}]"),
                )
                .at(source, &n.span()));
            }
            policy.max_state_entries = value as usize;
        }
    }
    if let Some(e) = doc.enforcement {
        let p = &mut policy.enforcement;
        num(
            "enforcement.cooldown_seconds",
            &mut p.cooldown_seconds,
            e.cooldown_seconds,
        );
        if let Some(dir) = e.quarantine_dir {
            p.quarantine_dir = dir.into_inner();
        }
        if let Some(list) = e.backends {
            let span = list.span();
            let names: Vec<String> = list
                .into_inner()
                .into_iter()
                .map(Spanned::into_inner)
                .collect();
            if let Some(bad) = names.iter().find(|n| !BACKEND_NAMES.contains(&n.as_str())) {
                return Err(PolicyError::new(
                    "enforcement.backends",
                    bad,
                    format!(
                        "unknown backend (expected one of {})",
                        BACKEND_NAMES.join(", ")
                    ),
                )
                .at(source, &span));
            }
            p.backends = names;
        }
        if let Some(list) = e.protected_processes {
            p.protected_processes = list
                .into_inner()
                .into_iter()
                .map(Spanned::into_inner)
                .collect();
        }
    }
    if let Some(m) = doc.mapping {
        if let Some(flag) = m.real_network_fields {
            policy.real_network_fields = flag;
        }
    }

    validate(&policy).map_err(
        |err| match spans.iter().rev().find(|(key, _)| *key == err.key) {
            Some((_, span)) => err.at(source, span),
            None => err,
        },
    )?;
    Ok(policy)
}

fn line_for_key(err: PolicyError, source: &str, key: &str) -> PolicyError {
    match source.find(key) {
        Some(offset) => err.at(source, &(offset..offset)),
        None => err,
    }
}

fn patterns(
    source: &str,
    key: &str,
    list: Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<String>, PolicyError> {
    let limit = if key.contains("sensitive") {
        SENSITIVE_TARGETS_MAX
    } else {
        SCAN_PATTERNS_MAX
    };
    if list.get_ref().len() > limit {
        return Err(PolicyError::new(
            key,
            list.get_ref().len(),
            format!("more than {limit} patterns"),
        )
        .at(source, &list.span()));
    }
    list.into_inner()
        .into_iter()
        .map(|pattern| {
            let span = pattern.span();
            let text = pattern.into_inner();
            pyregex::compile(&text)
                .map_err(|e| PolicyError::pattern(key, &text, &e).at(source, &span))?;
            Ok(text)
        })
        .collect()
}

/// Check ranges and orderings of a policy (however it was built).
pub fn validate(policy: &Policy) -> Result<(), PolicyError> {
    let unit = |key: &str, value: f64| -> Result<(), PolicyError> {
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            Err(PolicyError::new(
                key,
                fmt_f64(value),
                "threshold is outside [0, 1]",
            ))
        }
    };
    let ordered = |keys: [&str; 3], values: [f64; 3]| -> Result<(), PolicyError> {
        if values[0] >= values[1] && values[1] >= values[2] {
            Ok(())
        } else {
            let bad = if values[0] < values[1] { 1 } else { 2 };
            Err(PolicyError::new(
                keys[bad],
                fmt_f64(values[bad]),
                format!(
                    "thresholds out of order: expected {} ≥ {} ≥ {}",
                    keys[0], keys[1], keys[2]
                ),
            ))
        }
    };
    let s = &policy.scan;
    for (key, value) in [
        ("scan.prompt_weight", s.prompt_weight),
        ("scan.prompt_cap", s.prompt_cap),
        ("scan.malware_weight", s.malware_weight),
        ("scan.malware_cap", s.malware_cap),
        ("scan.link_weight", s.link_weight),
        ("scan.link_cap", s.link_cap),
        ("scan.verdict_malicious", s.verdict_malicious),
        ("scan.verdict_suspicious", s.verdict_suspicious),
        ("scan.verdict_caution", s.verdict_caution),
    ] {
        unit(key, value)?;
    }
    ordered(
        [
            "scan.verdict_malicious",
            "scan.verdict_suspicious",
            "scan.verdict_caution",
        ],
        [s.verdict_malicious, s.verdict_suspicious, s.verdict_caution],
    )?;
    let i = &policy.integrity;
    for (key, value) in [
        ("integrity.unknown_operation_risk", i.unknown_operation_risk),
        ("integrity.untrusted_signer_risk", i.untrusted_signer_risk),
        ("integrity.missing_sha256_risk", i.missing_sha256_risk),
        (
            "integrity.invalid_sha256_length_risk",
            i.invalid_sha256_length_risk,
        ),
        ("integrity.sensitive_target_risk", i.sensitive_target_risk),
        ("integrity.parent_child_risk", i.parent_child_risk),
    ] {
        unit(key, value)?;
    }
    for (op, risk) in &i.operation_risk {
        unit(&format!("integrity.operation_risk.{op}"), *risk)?;
    }
    if s.prompt_patterns.len() + s.malware_patterns.len() > SCAN_PATTERNS_MAX {
        return Err(PolicyError::new(
            "scan",
            s.prompt_patterns.len() + s.malware_patterns.len(),
            format!("more than {SCAN_PATTERNS_MAX} scan patterns"),
        ));
    }
    if i.sensitive_targets.len() > SENSITIVE_TARGETS_MAX {
        return Err(PolicyError::new(
            "integrity.sensitive_targets",
            i.sensitive_targets.len(),
            format!("more than {SENSITIVE_TARGETS_MAX} patterns"),
        ));
    }
    let d = &policy.decision;
    for (key, value) in [
        ("decision.scan_weight", d.scan_weight),
        ("decision.integrity_weight", d.integrity_weight),
        ("decision.geometry_weight", d.geometry_weight),
        ("decision.deny", d.deny),
        ("decision.escalate", d.escalate),
        ("decision.quarantine", d.quarantine),
        ("decision.geometry_base", d.geometry_base),
        ("decision.geometry_slope", d.geometry_slope),
    ] {
        unit(key, value)?;
    }
    ordered(
        ["decision.deny", "decision.escalate", "decision.quarantine"],
        [d.deny, d.escalate, d.quarantine],
    )?;
    let t = &policy.turnstile;
    for (key, value) in [
        ("turnstile.membrane_threshold", t.membrane_threshold),
        ("turnstile.honeypot_stress", t.honeypot_stress),
        ("turnstile.honeypot_antibody", t.honeypot_antibody),
    ] {
        unit(key, value)?;
    }
    if !(t.half_life_events.is_finite() && t.half_life_events > 0.0) {
        return Err(PolicyError::new(
            "turnstile.half_life_events",
            fmt_f64(t.half_life_events),
            "half-life must be a positive number of events",
        ));
    }
    let c = &policy.cell;
    for (key, value) in [
        ("cell.necrotic", c.necrotic),
        ("cell.inflamed", c.inflamed),
        ("cell.primed", c.primed),
    ] {
        unit(key, value)?;
    }
    ordered(
        ["cell.necrotic", "cell.inflamed", "cell.primed"],
        [c.necrotic, c.inflamed, c.primed],
    )?;
    let e = &policy.enforcement;
    if !(e.cooldown_seconds.is_finite() && e.cooldown_seconds >= 0.0) {
        return Err(PolicyError::new(
            "enforcement.cooldown_seconds",
            fmt_f64(e.cooldown_seconds),
            "cooldown must be a non-negative number of seconds",
        ));
    }
    if policy.max_state_entries == 0 || policy.max_state_entries > STATE_ENTRIES_MAX {
        return Err(PolicyError::new(
            "memory.max_state_entries",
            policy.max_state_entries,
            format!("must be in [1, {STATE_ENTRIES_MAX}]"),
        ));
    }
    Ok(())
}

fn fmt_f64(value: f64) -> String {
    let mut out = String::new();
    py_float_repr(value, &mut out);
    out
}

/// A TOML string literal: literal `'…'` when possible (patterns are full of
/// backslashes), a basic string with escapes otherwise.
fn toml_str(text: &str) -> String {
    if !text.contains('\'') && !text.chars().any(char::is_control) {
        return format!("'{text}'");
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list(items: &[String]) -> String {
    if items.is_empty() {
        return "[]".to_owned();
    }
    let mut out = String::from("[\n");
    for item in items {
        out.push_str("    ");
        out.push_str(&toml_str(item));
        out.push_str(",\n");
    }
    out.push(']');
    out
}

/// Write `policy` as a complete, commented TOML policy file.
pub fn policy_to_toml(policy: &Policy, title: &str) -> String {
    let f = fmt_f64;
    let s = &policy.scan;
    let i = &policy.integrity;
    let d = &policy.decision;
    let t = &policy.turnstile;
    let c = &policy.cell;
    let e = &policy.enforcement;
    let mut out = String::new();
    out.push_str(&format!("# {title}\n"));
    out.push_str(
        "#\n# An SCBE gate policy. Every key is optional: a key left out takes the\n\
         # reference value (SPEC.md). Thresholds are in [0, 1]; patterns are\n\
         # Python `re` syntax (as the reference gate), matched with Rust's regex engine.\n\n",
    );
    out.push_str("[scan]\n# Threat membrane (SPEC §2). Searched in the lowercased event text.\n");
    out.push_str(&format!(
        "prompt_patterns = {}\n",
        toml_list(&s.prompt_patterns)
    ));
    out.push_str(&format!(
        "malware_patterns = {}\n",
        toml_list(&s.malware_patterns)
    ));
    out.push_str("# Counted in the original-case text, every non-overlapping match.\n");
    out.push_str(&format!("link_pattern = {}\n", toml_str(&s.link_pattern)));
    out.push_str(&format!(
        "link_exclusions = {}\n",
        toml_list(&s.link_exclusions)
    ));
    out.push_str("# risk = min(1, min(prompt_cap, prompt_weight·hits) + min(malware_cap, …) + min(link_cap, …))\n");
    for (key, value) in [
        ("prompt_weight", s.prompt_weight),
        ("prompt_cap", s.prompt_cap),
        ("malware_weight", s.malware_weight),
        ("malware_cap", s.malware_cap),
        ("link_weight", s.link_weight),
        ("link_cap", s.link_cap),
        ("verdict_malicious", s.verdict_malicious),
        ("verdict_suspicious", s.verdict_suspicious),
        ("verdict_caution", s.verdict_caution),
    ] {
        out.push_str(&format!("{key} = {}\n", f(value)));
    }
    out.push_str("\n[integrity]\n# Binary integrity risk (SPEC §3), clamped to [0, 1].\n");
    for (key, value) in [
        ("unknown_operation_risk", i.unknown_operation_risk),
        ("untrusted_signer_risk", i.untrusted_signer_risk),
        ("missing_sha256_risk", i.missing_sha256_risk),
        ("invalid_sha256_length_risk", i.invalid_sha256_length_risk),
        ("sensitive_target_risk", i.sensitive_target_risk),
        ("parent_child_risk", i.parent_child_risk),
    ] {
        out.push_str(&format!("{key} = {}\n", f(value)));
    }
    out.push_str("# Searched in the target; add (?i) for case-insensitive matching.\n");
    out.push_str(&format!(
        "sensitive_targets = {}\n",
        toml_list(&i.sensitive_targets)
    ));
    out.push_str("# [parent substring, child substring]\nparent_child_pairs = [\n");
    for (parent, child) in &i.parent_child_pairs {
        out.push_str(&format!(
            "    [{}, {}],\n",
            toml_str(parent),
            toml_str(child)
        ));
    }
    out.push_str("]\n\n[integrity.operation_risk]\n# Base risk per operation class; others take unknown_operation_risk.\n");
    for (op, risk) in &i.operation_risk {
        let key = if op
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            op.clone()
        } else {
            toml_str(op)
        };
        out.push_str(&format!("{key} = {}\n", f(*risk)));
    }
    out.push_str("\n[decision]\n# suspicion = scan_weight·scan + integrity_weight·integrity + geometry_weight·observed (SPEC §4)\n");
    for (key, value) in [
        ("scan_weight", d.scan_weight),
        ("integrity_weight", d.integrity_weight),
        ("geometry_weight", d.geometry_weight),
    ] {
        out.push_str(&format!("{key} = {}\n", f(value)));
    }
    out.push_str("# DENY ≥ deny > ESCALATE ≥ escalate > QUARANTINE ≥ quarantine > ALLOW\n");
    for (key, value) in [
        ("deny", d.deny),
        ("escalate", d.escalate),
        ("quarantine", d.quarantine),
    ] {
        out.push_str(&format!("{key} = {}\n", f(value)));
    }
    out.push_str("# geometry = max(observed, geometry_base + geometry_slope·suspicion)\n");
    out.push_str(&format!(
        "geometry_base = {}\ngeometry_slope = {}\n",
        f(d.geometry_base),
        f(d.geometry_slope)
    ));
    out.push_str(
        "# true: a norm outside [0, 1] or not finite observes nothing (the reference\n\
         # clamps it, so one `Infinity` in an event's content forces HONEYPOT).\n",
    );
    out.push_str(&format!(
        "ignore_invalid_norm = {}\n",
        d.ignore_invalid_norm
    ));
    out.push_str("\n[turnstile]\n# SPEC §5. Domains: antivirus, browser, vehicle, fleet, arxiv, patent, default.\n");
    out.push_str(&format!("domain = {}\n", toml_str(t.domain.as_str())));
    out.push_str("# Antibody load halves every half_life_events events.\n");
    out.push_str(&format!("half_life_events = {}\n", f(t.half_life_events)));
    out.push_str(&format!(
        "membrane_threshold = {}\n",
        f(t.membrane_threshold)
    ));
    out.push_str(
        "# Non-ALLOW decisions go to the honeypot when stress or antibody load reach these.\n",
    );
    out.push_str(&format!(
        "honeypot_stress = {}\nhoneypot_antibody = {}\n",
        f(t.honeypot_stress),
        f(t.honeypot_antibody)
    ));
    out.push_str(
        "\n[cell]\n# Immune cell state from max(antibody, stress, suspicion) (SPEC §6).\n",
    );
    out.push_str(&format!(
        "necrotic = {}\ninflamed = {}\nprimed = {}\n",
        f(c.necrotic),
        f(c.inflamed),
        f(c.primed)
    ));
    out.push_str("\n[memory]\n# Per-process antibody table; holds max(1000, N) keys, oldest evicted first.\n");
    out.push_str(&format!(
        "max_state_entries = {}\n",
        policy.max_state_entries
    ));
    out.push_str("\n[enforcement]\n# Per-process suppression window in seconds; 0 disables it.\n");
    out.push_str(&format!("cooldown_seconds = {}\n", f(e.cooldown_seconds)));
    out.push_str(&format!(
        "quarantine_dir = {}\n",
        toml_str(&e.quarantine_dir)
    ));
    out.push_str("# Any of: signal, systemd, journald, soc.\n");
    out.push_str(&format!("backends = {}\n", toml_list(&e.backends)));
    out.push_str("# Process names the agent never acts on, beyond its built-in list.\n");
    out.push_str(&format!(
        "protected_processes = {}\n",
        toml_list(&e.protected_processes)
    ));
    out.push_str("\n[mapping]\n# Build network targets from real Falco fields (fd.cip/fd.cport → fd.sip/fd.sport,\n# else fd.name). Off in the reference, which reads only sip/dip pairs.\n");
    out.push_str(&format!(
        "real_network_fields = {}\n",
        policy.real_network_fields
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_reference() {
        assert_eq!(parse_policy("").unwrap(), Policy::reference());
    }

    #[test]
    fn reference_round_trips_through_toml() {
        let text = policy_to_toml(&Policy::reference(), "reference");
        assert_eq!(parse_policy(&text).unwrap(), Policy::reference());
    }

    #[test]
    fn subsets_fall_back_to_the_reference() {
        let policy = parse_policy(
            "[decision]\ndeny = 0.9\n[integrity.operation_risk]\nexec = 0.5\nptrace = 1\n",
        )
        .unwrap();
        assert_eq!(policy.decision.deny, 0.9);
        assert_eq!(policy.decision.escalate, 0.60);
        assert_eq!(policy.integrity.operation_risk[0], ("exec".to_owned(), 0.5));
        assert_eq!(
            policy.integrity.operation_risk.last().unwrap(),
            &("ptrace".to_owned(), 1.0)
        );
    }

    #[test]
    fn errors_name_key_value_and_line() {
        let cases: &[(&str, &str)] = &[
            ("[decision]\n\ndeny = 1.7\n", "policy: decision.deny = 1.7: threshold is outside [0, 1] at line 3"),
            ("[cell]\nnecrotic = 0.5\ninflamed = 0.6\n", "policy: cell.inflamed = 0.6: thresholds out of order: expected cell.necrotic ≥ cell.inflamed ≥ cell.primed at line 3"),
            ("[scan]\nmalware_patterns = ['ok', '(unclosed']\n", "at line 2"),
            ("[scan]\nbogus = 1\n", "unknown field `bogus`"),
            ("[turnstile]\ndomain = 'space'\n", "policy: turnstile.domain = space: unknown domain"),
            ("[enforcement]\nbackends = ['systemd', 'ssh']\n", "policy: enforcement.backends = ssh: unknown backend"),
            ("[memory]\nmax_state_entries = 0\n", "policy: memory.max_state_entries = 0: must be in"),
        ];
        for (text, expected) in cases {
            let err = parse_policy(text).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
        let err = parse_policy("[scan]\nbogus = 1\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        let err = parse_policy("[scan]\nmalware_patterns = ['(unclosed']\n").unwrap_err();
        assert_eq!(
            (err.key.as_str(), err.value.as_str()),
            ("scan.malware_patterns", "(unclosed")
        );
    }
}
