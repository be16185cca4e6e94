//! Binary integrity risk (SPEC §3).
//!
//! Split in two: [`IntegrityFeatures`] records what the event *is* (which
//! patterns and pairs match), independent of weights; [`integrity_risk`]
//! prices those features under a policy. Tuning reuses the features across
//! thousands of policies.

use std::borrow::Cow;

use regex::RegexSet;

use crate::event::KernelEvent;
use crate::policy::IntegrityPolicy;
use crate::pyregex;
use crate::turnstile::clamp01;

/// The sha256 field's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashState {
    Missing,
    InvalidLength,
    Present,
}

/// What integrity checks found, before weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegrityFeatures {
    /// Index into the policy's `operation_risk`, `None` for unknown operations.
    pub operation: Option<u16>,
    pub untrusted_signer: bool,
    pub hash: HashState,
    /// Bit `i` set when sensitive-target pattern `i` matched.
    pub sensitive_matches: u64,
    /// Bit `i` set when parent/child pair `i` matched (first 64 pairs).
    pub pair_matches: u64,
    /// Number of matching pairs (exact even beyond 64 pairs).
    pub n_pair_matches: u32,
}

/// Integrity patterns compiled once per policy.
#[derive(Debug, Clone)]
pub struct IntegrityChecker {
    sensitive: RegexSet,
    /// Operation names in `operation_risk` order.
    operations: Vec<String>,
    pairs: Vec<(String, String)>,
}

impl IntegrityChecker {
    pub fn new(policy: &IntegrityPolicy) -> Result<IntegrityChecker, (String, regex::Error)> {
        for pattern in &policy.sensitive_targets {
            pyregex::compile(pattern).map_err(|e| (pattern.clone(), e))?;
        }
        let sensitive = pyregex::compile_set(&policy.sensitive_targets)
            .map_err(|e| (policy.sensitive_targets.join(" | "), e))?;
        Ok(IntegrityChecker {
            sensitive,
            operations: policy
                .operation_risk
                .iter()
                .map(|(op, _)| op.clone())
                .collect(),
            pairs: policy.parent_child_pairs.clone(),
        })
    }

    pub fn features(&self, event: &KernelEvent) -> IntegrityFeatures {
        let operation = self
            .operations
            .iter()
            .position(|op| *op == event.operation)
            .map(|i| i as u16);
        let hash = match &event.hash_sha256 {
            None => HashState::Missing,
            Some(h) if h.chars().count() != 64 => HashState::InvalidLength,
            Some(_) => HashState::Present,
        };
        let target = python_ignorecase_fold(&event.target);
        let mut sensitive_matches = 0u64;
        for index in self.sensitive.matches(&target).iter() {
            sensitive_matches |= 1 << index;
        }
        let mut pair_matches = 0u64;
        let mut n_pair_matches = 0u32;
        for (i, (parent, child)) in self.pairs.iter().enumerate() {
            if event.parent_process.contains(parent.as_str())
                && event.process_name.contains(child.as_str())
            {
                n_pair_matches += 1;
                if i < 64 {
                    pair_matches |= 1 << i;
                }
            }
        }
        IntegrityFeatures {
            operation,
            untrusted_signer: !event.signer_trusted,
            hash,
            sensitive_matches,
            pair_matches,
            n_pair_matches,
        }
    }
}

/// Fold text the way Python's `re.IGNORECASE` compares it, so that Rust's
/// `(?i)` agrees: each character becomes its simple lowercase (`İ` → `i`),
/// and the equivalences Python adds beyond case folding (`ı` ~ `i`, `ſ` ~ `s`)
/// are applied. ASCII text is returned as it is.
pub fn python_ignorecase_fold(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let folded = text
        .chars()
        .map(|c| match c {
            '\u{130}' | '\u{131}' => 'i',
            '\u{17f}' => 's',
            c if c.is_ascii() => c,
            c => {
                let mut lower = c.to_lowercase();
                match (lower.next(), lower.next()) {
                    (Some(single), None) => single,
                    _ => c,
                }
            }
        })
        .collect();
    Cow::Owned(folded)
}

/// Integrity risk of `features` under `policy`, and whether the operation is
/// unknown (SPEC §3).
pub fn integrity_risk(features: &IntegrityFeatures, policy: &IntegrityPolicy) -> f64 {
    let mut risk = match features.operation {
        Some(i) => policy.operation_risk[usize::from(i)].1,
        None => policy.unknown_operation_risk,
    };
    if features.untrusted_signer {
        risk += policy.untrusted_signer_risk;
    }
    match features.hash {
        HashState::Missing => risk += policy.missing_sha256_risk,
        HashState::InvalidLength => risk += policy.invalid_sha256_length_risk,
        HashState::Present => {}
    }
    for _ in 0..features.sensitive_matches.count_ones() {
        risk = (risk + policy.sensitive_target_risk).min(1.0);
    }
    for _ in 0..features.n_pair_matches {
        risk += policy.parent_child_risk;
    }
    clamp01(risk)
}

/// Append the integrity notes, in the reference's order.
pub fn push_notes(
    features: &IntegrityFeatures,
    operation: &str,
    policy: &IntegrityPolicy,
    notes: &mut Vec<String>,
) {
    if features.operation.is_none() {
        notes.push(format!("unknown operation: {operation}"));
    }
    if features.untrusted_signer {
        notes.push("unsigned or untrusted signer".to_owned());
    }
    match features.hash {
        HashState::Missing => notes.push("missing sha256".to_owned()),
        HashState::InvalidLength => notes.push("invalid sha256 length".to_owned()),
        HashState::Present => {}
    }
    for (i, pattern) in policy.sensitive_targets.iter().enumerate() {
        if features.sensitive_matches & (1 << i) != 0 {
            notes.push(format!("sensitive target match: {pattern}"));
        }
    }
    for (i, (parent, child)) in policy.parent_child_pairs.iter().enumerate().take(64) {
        if features.pair_matches & (1 << i) != 0 {
            notes.push(format!("suspicious parent-child: {parent}->{child}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Pid;
    use crate::policy::Policy;

    fn event(operation: &str, target: &str, signed: bool, hash: Option<&str>) -> KernelEvent {
        KernelEvent {
            host: "h".into(),
            pid: Pid::Small(1),
            process_name: "bash".into(),
            parent_process: "python3".into(),
            command_line: String::new(),
            operation: operation.into(),
            target: target.into(),
            signer_trusted: signed,
            hash_sha256: hash.map(str::to_owned),
            geometry_norm: 0.0,
            metadata_repr: String::new(),
            time: None,
        }
    }

    #[test]
    fn risk_table() {
        let policy = Policy::reference().integrity;
        let checker = IntegrityChecker::new(&policy).unwrap();
        let sha = "a".repeat(64);
        let non_ascii_sha = "é".repeat(64);
        // (operation, target, signed, hash, risk, number of notes)
        type Case<'a> = (&'a str, &'a str, bool, Option<&'a str>, f64, usize);
        let cases: &[Case] = &[
            // (operation, target, signed, hash, risk, n_notes) — the python→bash pair always adds 0.20.
            ("open", "/tmp/x", true, Some(&sha), 0.22, 1),
            ("exec", "/tmp/x", false, None, 0.12 + 0.22 + 0.16 + 0.20, 3),
            ("clone", "/tmp/x", true, Some("abc"), 0.10 + 0.12 + 0.20, 3),
            (
                "open",
                "/ETC/SHADOW",
                true,
                Some(&non_ascii_sha),
                0.02 + 0.18 + 0.20,
                2,
            ),
            (
                "open",
                "/etc/ſhadow",
                true,
                Some(&sha),
                0.02 + 0.18 + 0.20,
                2,
            ),
            (
                "open",
                "/boot/../etc/passwd",
                true,
                Some(&sha),
                0.02 + 0.36 + 0.20,
                3,
            ),
            ("process_inject", "/boot/x", false, None, 1.0, 4),
        ];
        for (op, target, signed, hash, risk, n_notes) in cases {
            let features = checker.features(&event(op, target, *signed, *hash));
            let got = integrity_risk(&features, &policy);
            assert!((got - risk).abs() < 1e-12, "{op} {target}: {got} != {risk}");
            let mut notes = Vec::new();
            push_notes(&features, op, &policy, &mut notes);
            assert_eq!(notes.len(), *n_notes, "{op} {target}: {notes:?}");
        }
    }

    #[test]
    fn python_ignorecase_equivalences() {
        assert_eq!(python_ignorecase_fold("/ETC/PASSWD"), "/ETC/PASSWD");
        assert_eq!(python_ignorecase_fold("/etc/pİsſ\u{131}"), "/etc/pissi");
        assert_eq!(python_ignorecase_fold("\u{212a}"), "k");
    }
}
