//! The policy: every number and pattern the gate uses.
//!
//! [`Policy::reference()`] is `SPEC.md` exactly. A TOML policy file may set any
//! subset of fields; the rest falls back to the reference (see `policy_toml`).

use crate::turnstile::Domain;

/// Weights of the threat membrane's risk (SPEC §2).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanPolicy {
    pub prompt_patterns: Vec<String>,
    pub malware_patterns: Vec<String>,
    /// Searched in the original-case text; every non-overlapping match counts.
    pub link_pattern: String,
    /// Links whose lowercase contains one of these are not counted.
    pub link_exclusions: Vec<String>,
    pub prompt_weight: f64,
    pub prompt_cap: f64,
    pub malware_weight: f64,
    pub malware_cap: f64,
    pub link_weight: f64,
    pub link_cap: f64,
    pub verdict_malicious: f64,
    pub verdict_suspicious: f64,
    pub verdict_caution: f64,
}

/// Integrity risk (SPEC §3).
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrityPolicy {
    /// Risk per operation class, in this order.
    pub operation_risk: Vec<(String, f64)>,
    pub unknown_operation_risk: f64,
    pub untrusted_signer_risk: f64,
    pub missing_sha256_risk: f64,
    pub invalid_sha256_length_risk: f64,
    pub sensitive_target_risk: f64,
    /// Regexes searched in the target; the note carries the text as written.
    pub sensitive_targets: Vec<String>,
    pub parent_child_risk: f64,
    /// (parent substring, child substring) pairs.
    pub parent_child_pairs: Vec<(String, String)>,
}

/// The suspicion blend and decision thresholds (SPEC §4).
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionPolicy {
    pub scan_weight: f64,
    pub integrity_weight: f64,
    pub geometry_weight: f64,
    pub deny: f64,
    pub escalate: f64,
    pub quarantine: f64,
    /// `geometry = max(observed, geometry_base + geometry_slope · suspicion)`.
    pub geometry_base: f64,
    pub geometry_slope: f64,
    /// Treat a geometry norm outside [0, 1] (or not finite) as no geometry
    /// signal, instead of clamping it as the reference does. Under clamping a
    /// single `"scbe.geometry_norm": Infinity` in an event's content forces
    /// full membrane stress, a NECROTIC cell and HONEYPOT for that process.
    pub ignore_invalid_norm: bool,
}

/// The turnstile (SPEC §5).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnstilePolicy {
    pub domain: Domain,
    /// Antibody half-life, in events.
    pub half_life_events: f64,
    pub membrane_threshold: f64,
    pub honeypot_stress: f64,
    pub honeypot_antibody: f64,
}

/// Immune cell state thresholds (SPEC §6).
#[derive(Debug, Clone, PartialEq)]
pub struct CellPolicy {
    pub necrotic: f64,
    pub inflamed: f64,
    pub primed: f64,
}

/// Enforcement planning (SPEC §9) and the agent's safety list.
#[derive(Debug, Clone, PartialEq)]
pub struct EnforcementPolicy {
    /// Per-process-key suppression window, seconds; 0 disables it.
    pub cooldown_seconds: f64,
    pub quarantine_dir: String,
    pub backends: Vec<String>,
    /// Process names the agent never acts on (beyond the built-in list).
    pub protected_processes: Vec<String>,
}

/// Everything the gate decides with.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub scan: ScanPolicy,
    pub integrity: IntegrityPolicy,
    pub decision: DecisionPolicy,
    pub turnstile: TurnstilePolicy,
    pub cell: CellPolicy,
    /// Per-process table capacity `N`; the table holds `max(1000, N)` keys.
    pub max_state_entries: usize,
    pub enforcement: EnforcementPolicy,
    /// Build network targets from real Falco fields (off in the reference).
    pub real_network_fields: bool,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Policy {
    /// The reference policy: `SPEC.md`, constant for constant.
    pub fn reference() -> Policy {
        Policy {
            scan: ScanPolicy {
                prompt_patterns: strings(&[
                    r"ignore\s+(all\s+)?previous\s+instructions",
                    r"reveal\s+(the\s+)?system\s+prompt",
                    r"developer\s+mode",
                    r"act\s+as\s+root",
                    r"bypass\s+safety",
                    r"jailbreak",
                ]),
                malware_patterns: strings(&[
                    r"powershell\s+-enc",
                    r"cmd\.exe",
                    r"rm\s+-rf",
                    r"curl\s+.*\|\s*sh",
                    r"wget\s+.*\|\s*bash",
                    r"javascript:",
                    r"data:text/html",
                ]),
                link_pattern: r#"https?://[^\s)>"]+"#.to_owned(),
                link_exclusions: strings(&["x.com", "twitter.com"]),
                prompt_weight: 0.25,
                prompt_cap: 0.60,
                malware_weight: 0.20,
                malware_cap: 0.70,
                link_weight: 0.015,
                link_cap: 0.20,
                verdict_malicious: 0.85,
                verdict_suspicious: 0.55,
                verdict_caution: 0.25,
            },
            integrity: IntegrityPolicy {
                operation_risk: [
                    ("exec", 0.12),
                    ("open", 0.02),
                    ("write", 0.12),
                    ("delete", 0.14),
                    ("rename", 0.08),
                    ("network_connect", 0.08),
                    ("dns_query", 0.04),
                    ("module_load", 0.30),
                    ("process_inject", 0.38),
                    ("registry_write", 0.16),
                ]
                .iter()
                .map(|(op, risk)| ((*op).to_owned(), *risk))
                .collect(),
                unknown_operation_risk: 0.10,
                untrusted_signer_risk: 0.22,
                missing_sha256_risk: 0.16,
                invalid_sha256_length_risk: 0.12,
                sensitive_target_risk: 0.18,
                sensitive_targets: strings(&[
                    r"(?i)\\windows\\system32\\drivers\\",
                    r"(?i)\\windows\\system32\\config\\",
                    r"(?i)\\appdata\\roaming\\microsoft\\windows\\start menu\\programs\\startup",
                    r"(?i)/etc/(ssh|sudoers|passwd|shadow)",
                    r"(?i)/boot/",
                    r"(?i)/usr/lib/modules/",
                ]),
                parent_child_risk: 0.20,
                parent_child_pairs: [
                    ("winword.exe", "powershell"),
                    ("excel.exe", "powershell"),
                    ("outlook.exe", "powershell"),
                    ("wscript.exe", "cmd.exe"),
                    ("python", "bash"),
                ]
                .iter()
                .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
                .collect(),
            },
            decision: DecisionPolicy {
                scan_weight: 0.50,
                integrity_weight: 0.35,
                geometry_weight: 0.15,
                deny: 0.85,
                escalate: 0.60,
                quarantine: 0.30,
                geometry_base: 0.20,
                geometry_slope: 0.75,
                ignore_invalid_norm: false,
            },
            turnstile: TurnstilePolicy {
                domain: Domain::Antivirus,
                half_life_events: 12.0,
                membrane_threshold: 0.98,
                honeypot_stress: 0.9,
                honeypot_antibody: 0.85,
            },
            cell: CellPolicy {
                necrotic: 0.90,
                inflamed: 0.70,
                primed: 0.35,
            },
            max_state_entries: 50_000,
            enforcement: EnforcementPolicy {
                cooldown_seconds: 15.0,
                quarantine_dir: "/var/quarantine/scbe".to_owned(),
                backends: strings(&["systemd", "journald"]),
                protected_processes: Vec::new(),
            },
            real_network_fields: false,
        }
    }

    /// The table capacity the reference actually uses: `max(1000, N)`.
    pub fn state_capacity(&self) -> usize {
        self.max_state_entries.max(crate::limits::STATE_ENTRIES_MIN)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::reference()
    }
}
