//! Binary integrity risk (SPEC §3).
//!
//! Split in two: [`IntegrityFeatures`] records what the event *is* (which
//! patterns and pairs match), independent of weights; [`integrity_risk`]
//! prices those features under a policy. Tuning reuses the features across
//! thousands of policies.

use std::borrow::Cow;

use memchr::memmem::Finder;
use regex::Regex;

use crate::event::KernelEvent;
use crate::litscan::{Haystacks, LiteralFilter};
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
    /// The sensitive-target patterns, each run only when `sensitive_filter`
    /// saw its necessary literals in the (ASCII-lowercased) target.
    sensitive: Vec<Regex>,
    sensitive_filter: LiteralFilter,
    /// Operation names in `operation_risk` order.
    operations: Vec<String>,
    /// Parent/child substring searchers, built once, with the set of bytes
    /// each parent needle uses.
    pairs: Vec<(ByteSet, Finder<'static>, Finder<'static>)>,
}

/// A set of byte values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn of(bytes: &[u8]) -> ByteSet {
        let mut set = ByteSet::default();
        for &b in bytes {
            set.0[usize::from(b >> 6)] |= 1 << (b & 63);
        }
        set
    }

    fn is_subset_of(&self, other: &ByteSet) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & !b == 0)
    }
}

impl IntegrityChecker {
    pub fn new(policy: &IntegrityPolicy) -> Result<IntegrityChecker, (String, regex::Error)> {
        let sensitive = policy
            .sensitive_targets
            .iter()
            .map(|pattern| pyregex::compile(pattern).map_err(|e| (pattern.clone(), e)))
            .collect::<Result<Vec<Regex>, _>>()?;
        // Matching runs pattern by pattern (same answers as a set); the set
        // is still built so that a policy fails exactly where it always did
        // (its size limit covers all patterns together).
        pyregex::compile_set(&policy.sensitive_targets)
            .map_err(|e| (policy.sensitive_targets.join(" | "), e))?;
        let sets: Vec<_> = policy
            .sensitive_targets
            .iter()
            .map(|pattern| pyregex::necessary_sets(pattern))
            .collect();
        Ok(IntegrityChecker {
            sensitive,
            sensitive_filter: LiteralFilter::new(&sets, Haystacks::Short),
            operations: policy
                .operation_risk
                .iter()
                .map(|(op, _)| op.clone())
                .collect(),
            pairs: policy
                .parent_child_pairs
                .iter()
                .map(|(parent, child)| {
                    (
                        ByteSet::of(parent.as_bytes()),
                        Finder::new(parent.as_bytes()).into_owned(),
                        Finder::new(child.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        })
    }

    pub fn features(&self, event: &KernelEvent) -> IntegrityFeatures {
        let operation = self
            .operations
            .iter()
            .position(|op| short_eq(op.as_bytes(), event.operation.as_bytes()))
            .map(|i| i as u16);
        let hash = match &event.hash_sha256 {
            None => HashState::Missing,
            // 64 bytes of ASCII are 64 characters.
            Some(h) if h.len() == 64 && h.is_ascii() => HashState::Present,
            Some(h) if h.chars().count() != 64 => HashState::InvalidLength,
            Some(_) => HashState::Present,
        };
        let target = python_ignorecase_fold(&event.target);
        let sensitive_matches = self.sensitive_matches(&target);
        let mut pair_matches = 0u64;
        let mut n_pair_matches = 0u32;
        // A needle can only occur in a text holding all of its bytes.
        let parent_bytes = ByteSet::of(event.parent_process.as_bytes());
        for (i, (parent_set, parent, child)) in self.pairs.iter().enumerate() {
            if parent_set.is_subset_of(&parent_bytes)
                && contains(&event.parent_process, parent)
                && contains(&event.process_name, child)
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

/// `haystack.contains(needle)` (a substring of UTF-8 text is a byte
/// substring of it), with the searcher built once.
fn contains(haystack: &str, needle: &Finder<'_>) -> bool {
    haystack.len() >= needle.needle().len() && needle.find(haystack.as_bytes()).is_some()
}

/// `a == b`, inline: the names compared are a few bytes long, where a call to
/// `memcmp` costs more than the comparison.
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

impl IntegrityChecker {
    /// Bit `i` set when sensitive pattern `i` matches the folded target.
    fn sensitive_matches(&self, target: &str) -> u64 {
        const BUF: usize = 256;
        const WORDS: usize = 4;
        let filter = &self.sensitive_filter;
        let mut seen = [0u64; WORDS];
        // The filter only reads ASCII; other targets run every pattern.
        let filtered = target.len() <= BUF && filter.words() <= WORDS && target.is_ascii();
        if filtered {
            // The filter searches the ASCII lowercase of the text the
            // patterns run on (same length, same positions).
            let mut buf = [0u8; BUF];
            let lowered = &mut buf[..target.len()];
            lowered.copy_from_slice(target.as_bytes());
            lowered.make_ascii_lowercase();
            filter.search(lowered, &mut seen);
        }
        let mut matches = 0u64;
        for (index, pattern) in self.sensitive.iter().enumerate() {
            if filtered && !filter.may_match(index, &seen) {
                continue;
            }
            if pattern.is_match(target) {
                matches |= 1 << index;
            }
        }
        matches
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Filtered per-pattern matching agrees with the set over the folded
        /// target, ASCII or not, short or long.
        #[test]
        fn filtered_targets_match_the_set(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "/etc/", "/ETC/", "shadow", "ſhadow", "SHADOW", "passwd", "ssh", "sſh",
                "/boot/", "/BOOT/", "/usr/lib/modules/", "\\windows\\system32\\drivers\\",
                "\\Windows\\System32\\Config\\", "/tmp/", ".x", "/var/log/wtmp", "\u{212a}",
                "k", "İ", "ı", "/", "a", "crontab", "/etc/cron.weekly/", "x".repeat(40).leak(),
            ]), 0..12),
        ) {
            let target = pieces.concat();
            let mut policy = Policy::reference().integrity;
            policy.sensitive_targets.extend(
                [
                    r"(?i)/etc/cron\.(d|hourly|daily|weekly|monthly)/|/etc/crontab$",
                    r"(?i)/var/log/(wtmp|btmp|lastlog)$",
                    r"(?i)^/(tmp|dev/shm|var/tmp)/\.([^t/.]|t[^m/]|tm[^p/])",
                    "(?i)kk",
                    "a*",
                    "İ",
                ]
                .map(String::from),
            );
            let checker = IntegrityChecker::new(&policy).unwrap();
            let set = pyregex::compile_set(&policy.sensitive_targets).unwrap();
            let folded = python_ignorecase_fold(&target);
            let want = set.matches(&folded).iter().fold(0u64, |acc, i| acc | 1 << i);
            let got = checker.features(&event("open", &target, true, None)).sensitive_matches;
            proptest::prop_assert_eq!(got, want, "{:?}", target);
        }
    }

    #[test]
    fn pairs_and_hashes() {
        let mut policy = Policy::reference().integrity;
        policy
            .parent_child_pairs
            .push((String::new(), "ba".to_owned()));
        policy
            .parent_child_pairs
            .push(("é".to_owned(), "sh".to_owned()));
        let checker = IntegrityChecker::new(&policy).unwrap();
        let mut e = event("open", "/x", true, Some("é"));
        e.parent_process = "/usr/bin/python3é".into();
        let f = checker.features(&e);
        // python->bash, ""->ba, é->sh
        assert_eq!(f.n_pair_matches, 3);
        assert_eq!(f.pair_matches, 0b110_0000 | 1 << 4);
        assert_eq!(f.hash, HashState::InvalidLength);
        let sixty_four_chars = format!("{}é", "a".repeat(63));
        let f = checker.features(&event("open", "/x", true, Some(&sixty_four_chars)));
        assert_eq!(f.hash, HashState::Present);
        let sixty_four_bytes = format!("{}é", "a".repeat(62));
        let f = checker.features(&event("open", "/x", true, Some(&sixty_four_bytes)));
        assert_eq!(f.hash, HashState::InvalidLength);
    }
}
