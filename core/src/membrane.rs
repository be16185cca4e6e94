//! The threat membrane: a content scan of the event's text (SPEC §2).

use regex::Regex;

use crate::event::KernelEvent;
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
/// Each pattern is its own `Regex` rather than one `RegexSet`: a single regex
/// runs behind a literal prefilter (memchr/memmem on its required prefix), so
/// the common case — the literal never occurs — costs one SIMD scan, where a
/// set has to run its automaton over the whole text.
#[derive(Debug, Clone)]
pub struct Membrane {
    /// Prompt patterns first, then malware patterns.
    signatures: Vec<Regex>,
    n_prompt: usize,
    links: Regex,
    link_exclusions: Vec<String>,
}

impl Membrane {
    pub fn new(policy: &ScanPolicy) -> Result<Membrane, (String, regex::Error)> {
        let signatures = policy
            .prompt_patterns
            .iter()
            .chain(&policy.malware_patterns)
            .map(|pattern| pyregex::compile(pattern).map_err(|e| (pattern.clone(), e)))
            .collect::<Result<Vec<Regex>, _>>()?;
        let links =
            pyregex::compile(&policy.link_pattern).map_err(|e| (policy.link_pattern.clone(), e))?;
        Ok(Membrane {
            signatures,
            n_prompt: policy.prompt_patterns.len(),
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
        scratch.original.clear();
        scratch.lowered.clear();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                scratch.original.push('\n');
            }
            scratch.original.push_str(part);
        }
        py_lower_into(&scratch.original, &mut scratch.lowered);

        let mut hits = ScanHits::default();
        for (index, signature) in self.signatures.iter().enumerate() {
            if !signature.is_match(&scratch.lowered) {
                continue;
            }
            if index < self.n_prompt {
                hits.prompt += 1;
            } else {
                hits.malware += 1;
            }
        }
        // Links are rare; skip the regex when no scheme can be present.
        if memchr::memmem::find(scratch.lowered.as_bytes(), b"http").is_some() {
            for link in self.links.find_iter(&scratch.original) {
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

/// Reusable buffers for [`Membrane::scan`].
#[derive(Debug, Default)]
pub struct ScanScratch {
    original: String,
    lowered: String,
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
}
