//! The gate: scoring (SPEC §2–4), the turnstile (§5) and the immune cell
//! state with its kernel action (§6).
//!
//! The work is split by what it depends on, so replay and tuning can share it:
//! - [`Gate::features`]: the expensive, policy-weight-independent part
//!   (pattern scans, integrity checks) — computed once per event;
//! - [`Gate::assess`]: suspicion, geometry and decision from features — cheap;
//! - [`Gate::resolve`]: turnstile and cell state given the previous antibody
//!   load — the only step that needs per-process state.

use std::fmt;

use crate::event::KernelEvent;
use crate::integrity::{integrity_risk, IntegrityChecker, IntegrityFeatures};
use crate::membrane::{scan_risk, Membrane, ScanHits, ScanScratch};
use crate::policy::{DecisionPolicy, Policy};
use crate::policy_toml::PolicyError;
use crate::turnstile::{
    self, antibody_load, clamp01, decay_factor, membrane_stress, Decision, TurnstileAction,
    TurnstileInput, TurnstileOutcome,
};

/// Immune cell state (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CellState {
    Healthy,
    Primed,
    Inflamed,
    Necrotic,
}

impl CellState {
    pub const ALL: [CellState; 4] = [
        CellState::Healthy,
        CellState::Primed,
        CellState::Inflamed,
        CellState::Necrotic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CellState::Healthy => "HEALTHY",
            CellState::Primed => "PRIMED",
            CellState::Inflamed => "INFLAMED",
            CellState::Necrotic => "NECROTIC",
        }
    }

    pub fn from_name(name: &str) -> Option<CellState> {
        CellState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for CellState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the kernel enforcement point is told to do, in rising severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelAction {
    Allow,
    Throttle,
    Quarantine,
    Kill,
    Honeypot,
}

impl KernelAction {
    pub const ALL: [KernelAction; 5] = [
        KernelAction::Allow,
        KernelAction::Throttle,
        KernelAction::Quarantine,
        KernelAction::Kill,
        KernelAction::Honeypot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KernelAction::Allow => "ALLOW",
            KernelAction::Throttle => "THROTTLE",
            KernelAction::Quarantine => "QUARANTINE",
            KernelAction::Kill => "KILL",
            KernelAction::Honeypot => "HONEYPOT",
        }
    }

    pub fn from_name(name: &str) -> Option<KernelAction> {
        KernelAction::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// QUARANTINE, KILL or HONEYPOT: the process is contained.
    pub fn is_containment(self) -> bool {
        matches!(
            self,
            KernelAction::Quarantine | KernelAction::Kill | KernelAction::Honeypot
        )
    }
}

impl fmt::Display for KernelAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything about an event that does not depend on the policy's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventFeatures {
    pub scan: ScanHits,
    pub integrity: IntegrityFeatures,
    /// `clamp01(geometry_norm)`.
    pub observed: f64,
}

/// Scores and decision for one event (SPEC §2–4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    pub scan_risk: f64,
    pub integrity_risk: f64,
    /// Unrounded; thresholds compare this value.
    pub suspicion: f64,
    pub geometry: f64,
    pub decision: Decision,
}

/// The turnstile and immune outcome given the previous antibody load.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub antibody_prev: f64,
    pub antibody_now: f64,
    pub membrane_stress: f64,
    pub turnstile: TurnstileOutcome,
    pub cell_state: CellState,
    pub kernel_action: KernelAction,
    pub block_execution: bool,
    pub isolate_process: bool,
    pub quarantine_target: bool,
}

/// A policy compiled for deciding. Immutable and shareable across threads.
#[derive(Debug, Clone)]
pub struct Gate {
    policy: Policy,
    membrane: Membrane,
    integrity: IntegrityChecker,
    /// Antibody decay per event, `exp(−ln2/half_life)`.
    decay: f64,
}

impl Gate {
    /// Compile `policy`. Patterns that do not compile are errors.
    pub fn new(policy: Policy) -> Result<Gate, PolicyError> {
        crate::policy_toml::validate(&policy)?;
        let membrane = Membrane::new(&policy.scan)
            .map_err(|(pattern, e)| PolicyError::pattern("scan", &pattern, &e))?;
        let integrity = IntegrityChecker::new(&policy.integrity).map_err(|(pattern, e)| {
            PolicyError::pattern("integrity.sensitive_targets", &pattern, &e)
        })?;
        let decay = decay_factor(1.0, policy.turnstile.half_life_events);
        Ok(Gate {
            policy,
            membrane,
            integrity,
            decay,
        })
    }

    /// The reference policy, compiled.
    pub fn reference() -> Gate {
        Gate::new(Policy::reference()).expect("the reference policy compiles")
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The expensive, weight-independent part: pattern scans and integrity checks.
    pub fn features(&self, event: &KernelEvent, scratch: &mut ScanScratch) -> EventFeatures {
        EventFeatures {
            scan: self.membrane.scan(event, scratch),
            integrity: self.integrity.features(event),
            observed: observed_norm(
                event.geometry_norm,
                self.policy.decision.ignore_invalid_norm,
            ),
        }
    }

    /// Suspicion, geometry and decision (SPEC §2–4).
    pub fn assess(&self, features: &EventFeatures) -> Assessment {
        assess_with(&self.policy, features)
    }

    /// Turnstile, cell state and kernel action (SPEC §5–6).
    pub fn resolve(&self, assessment: &Assessment, antibody_prev: f64) -> Resolution {
        resolve_with(&self.policy, self.decay, assessment, antibody_prev)
    }
}

/// The geometry the gate observes: `clamp01(norm)` (SPEC §4), or, when the
/// policy ignores invalid norms, 0 for anything outside [0, 1].
pub fn observed_norm(norm: f64, ignore_invalid: bool) -> f64 {
    if ignore_invalid && !(0.0..=1.0).contains(&norm) {
        0.0
    } else {
        clamp01(norm)
    }
}

/// The decision for an (unrounded) suspicion (SPEC §4).
pub fn decision_for(suspicion: f64, d: &DecisionPolicy) -> Decision {
    if suspicion >= d.deny {
        Decision::Deny
    } else if suspicion >= d.escalate {
        Decision::Escalate
    } else if suspicion >= d.quarantine {
        Decision::Quarantine
    } else {
        Decision::Allow
    }
}

/// [`Gate::assess`] for any policy with the same patterns (used by tuning).
pub fn assess_with(policy: &Policy, features: &EventFeatures) -> Assessment {
    let scan_risk = scan_risk(features.scan, &policy.scan);
    let integrity_risk = integrity_risk(&features.integrity, &policy.integrity);
    let d = &policy.decision;
    let suspicion = clamp01(
        d.scan_weight * scan_risk
            + d.integrity_weight * integrity_risk
            + d.geometry_weight * features.observed,
    );
    let geometry = clamp01(
        features
            .observed
            .max(d.geometry_base + d.geometry_slope * suspicion),
    );
    let decision = decision_for(suspicion, d);
    debug_assert!((0.0..=1.0).contains(&suspicion) && (0.0..=1.0).contains(&geometry));
    Assessment {
        scan_risk,
        integrity_risk,
        suspicion,
        geometry,
        decision,
    }
}

/// [`Gate::resolve`] for any policy (used by tuning). `decay` is
/// `decay_factor(1, policy.turnstile.half_life_events)`.
pub fn resolve_with(
    policy: &Policy,
    decay: f64,
    assessment: &Assessment,
    antibody_prev: f64,
) -> Resolution {
    let suspicion = assessment.suspicion;
    let antibody_now = antibody_load(antibody_prev, suspicion, decay);
    let stress = membrane_stress(assessment.geometry, policy.turnstile.membrane_threshold);
    let turnstile = turnstile::resolve(&TurnstileInput {
        domain: policy.turnstile.domain,
        decision: assessment.decision,
        membrane_stress: stress,
        antibody_now,
        honeypot_stress: policy.turnstile.honeypot_stress,
        honeypot_antibody: policy.turnstile.honeypot_antibody,
        quorum_ok: true,
    });
    let signal = clamp01(antibody_now)
        .max(clamp01(stress))
        .max(clamp01(suspicion));
    let cell = &policy.cell;
    let cell_state = if signal >= cell.necrotic {
        CellState::Necrotic
    } else if signal >= cell.inflamed {
        CellState::Inflamed
    } else if signal >= cell.primed {
        CellState::Primed
    } else {
        CellState::Healthy
    };
    let (mut kernel_action, mut block, mut isolate, mut quarantine) = match turnstile.action {
        TurnstileAction::Allow => (KernelAction::Allow, false, false, false),
        TurnstileAction::Honeypot => (KernelAction::Honeypot, true, true, true),
        TurnstileAction::Isolate => (KernelAction::Quarantine, true, true, true),
        TurnstileAction::Stop => (KernelAction::Kill, true, true, false),
        TurnstileAction::Hold | TurnstileAction::Pivot | TurnstileAction::Degrade => {
            (KernelAction::Throttle, false, false, false)
        }
    };
    if cell_state == CellState::Necrotic {
        (kernel_action, block, isolate, quarantine) = (KernelAction::Honeypot, true, true, true);
    } else if cell_state == CellState::Inflamed && kernel_action == KernelAction::Allow {
        kernel_action = KernelAction::Throttle;
    }
    Resolution {
        antibody_prev,
        antibody_now,
        membrane_stress: stress,
        turnstile,
        cell_state,
        kernel_action,
        block_execution: block,
        isolate_process: isolate,
        quarantine_target: quarantine,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::HashState;
    use crate::turnstile::clamp01;

    fn features(
        prompt: u32,
        malware: u32,
        links: u32,
        op: Option<u16>,
        untrusted: bool,
        hash: HashState,
        norm: f64,
    ) -> EventFeatures {
        EventFeatures {
            scan: ScanHits {
                prompt,
                malware,
                links,
            },
            integrity: IntegrityFeatures {
                operation: op,
                untrusted_signer: untrusted,
                hash,
                sensitive_matches: 0,
                pair_matches: 0,
                n_pair_matches: 0,
            },
            observed: clamp01(norm),
        }
    }

    /// SPEC §2–6 as a table: features and previous load → scores and actions.
    #[test]
    fn scoring_and_resolution_table() {
        let gate = Gate::reference();
        let exec = Some(0u16);
        let open = Some(1u16);
        struct Row {
            f: EventFeatures,
            prev: f64,
            suspicion: f64,
            decision: Decision,
            cell: CellState,
            action: KernelAction,
        }
        let rows = [
            // Clean, trusted, hashed open: 0.35·0.02 = 0.007.
            Row {
                f: features(0, 0, 0, open, false, HashState::Present, 0.0),
                prev: 0.0,
                suspicion: 0.007,
                decision: Decision::Allow,
                cell: CellState::Healthy,
                action: KernelAction::Allow,
            },
            // NaN norm observes nothing; infinite norm observes 1 → stress 1 → NECROTIC.
            Row {
                f: features(0, 0, 0, open, false, HashState::Present, f64::NAN),
                prev: 0.0,
                suspicion: 0.007,
                decision: Decision::Allow,
                cell: CellState::Healthy,
                action: KernelAction::Allow,
            },
            Row {
                f: features(0, 0, 0, open, false, HashState::Present, f64::INFINITY),
                prev: 0.0,
                suspicion: 0.157,
                decision: Decision::Allow,
                cell: CellState::Necrotic,
                action: KernelAction::Honeypot,
            },
            // One malware hit, unsigned exec without hash: 0.5·0.2 + 0.35·0.5 = 0.275.
            Row {
                f: features(0, 1, 0, exec, true, HashState::Missing, 0.0),
                prev: 0.0,
                suspicion: 0.275,
                decision: Decision::Allow,
                cell: CellState::Healthy,
                action: KernelAction::Allow,
            },
            // Two malware hits: 0.5·0.4 + 0.175 = 0.375 → QUARANTINE → ISOLATE, PRIMED.
            Row {
                f: features(0, 2, 0, exec, true, HashState::Missing, 0.0),
                prev: 0.0,
                suspicion: 0.375,
                decision: Decision::Quarantine,
                cell: CellState::Primed,
                action: KernelAction::Quarantine,
            },
            // A high previous load drives the honeypot lane.
            Row {
                f: features(0, 2, 0, exec, true, HashState::Missing, 0.0),
                prev: 0.9,
                suspicion: 0.375,
                decision: Decision::Quarantine,
                cell: CellState::Inflamed,
                action: KernelAction::Honeypot,
            },
            // INFLAMED turns ALLOW into THROTTLE (load ≥ 0.70 keeps the cell inflamed).
            Row {
                f: features(0, 0, 0, open, false, HashState::Present, 0.0),
                prev: 0.8,
                suspicion: 0.007,
                decision: Decision::Allow,
                cell: CellState::Inflamed,
                action: KernelAction::Throttle,
            },
            // Prompt injection capped at 0.6, malware at 0.7: 0.5·1 + 0.35·0.5 + 0.15 = 0.825 → ESCALATE.
            Row {
                f: features(5, 5, 30, exec, true, HashState::Missing, 1.0),
                prev: 0.0,
                suspicion: 0.825,
                decision: Decision::Escalate,
                cell: CellState::Necrotic,
                action: KernelAction::Honeypot,
            },
        ];
        for (i, row) in rows.iter().enumerate() {
            let a = gate.assess(&row.f);
            assert!(
                (a.suspicion - row.suspicion).abs() < 1e-12,
                "row {i}: suspicion {}",
                a.suspicion
            );
            assert_eq!(a.decision, row.decision, "row {i}");
            let r = gate.resolve(&a, row.prev);
            assert_eq!(r.cell_state, row.cell, "row {i}");
            assert_eq!(r.kernel_action, row.action, "row {i}");
            assert!(
                (0.0..=1.0).contains(&r.antibody_now) && (0.0..=1.0).contains(&r.membrane_stress)
            );
        }
    }

    #[test]
    fn decision_thresholds_compare_unrounded_values() {
        let mut policy = Policy::reference();
        // 0.35 · 0.02 = 0.007 exactly at a threshold of 0.007 → QUARANTINE.
        policy.decision.quarantine = 0.35 * 0.02;
        let f = features(0, 0, 0, Some(1), false, HashState::Present, 0.0);
        assert_eq!(assess_with(&policy, &f).decision, Decision::Quarantine);
        policy.decision.quarantine = 0.35 * 0.02 + 1e-12;
        assert_eq!(assess_with(&policy, &f).decision, Decision::Allow);
    }
}
