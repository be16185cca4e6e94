//! The domain turnstile (SPEC §5): antibody decay, membrane stress, the
//! honeypot lane, and the per-domain action table. A domain can never emit an
//! action outside its set: [`resolve`] checks every outcome against it.

use std::fmt;

/// The gate's decision from suspicion alone (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Decision {
    Allow,
    Quarantine,
    Escalate,
    Deny,
}

impl Decision {
    pub const ALL: [Decision; 4] = [
        Decision::Allow,
        Decision::Quarantine,
        Decision::Escalate,
        Decision::Deny,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "ALLOW",
            Decision::Quarantine => "QUARANTINE",
            Decision::Escalate => "ESCALATE",
            Decision::Deny => "DENY",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A turnstile action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TurnstileAction {
    Allow,
    Hold,
    Pivot,
    Degrade,
    Isolate,
    Honeypot,
    Stop,
}

impl TurnstileAction {
    pub fn as_str(self) -> &'static str {
        match self {
            TurnstileAction::Allow => "ALLOW",
            TurnstileAction::Hold => "HOLD",
            TurnstileAction::Pivot => "PIVOT",
            TurnstileAction::Degrade => "DEGRADE",
            TurnstileAction::Isolate => "ISOLATE",
            TurnstileAction::Honeypot => "HONEYPOT",
            TurnstileAction::Stop => "STOP",
        }
    }
}

/// A policy domain; each has a fixed set of allowed actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    Antivirus,
    Browser,
    Vehicle,
    Fleet,
    Arxiv,
    Patent,
    Default,
}

impl Domain {
    pub const ALL: [Domain; 7] = [
        Domain::Antivirus,
        Domain::Browser,
        Domain::Vehicle,
        Domain::Fleet,
        Domain::Arxiv,
        Domain::Patent,
        Domain::Default,
    ];

    /// Unknown names are the `default` domain, as in the reference.
    pub fn from_name(name: &str) -> Domain {
        match name.trim().to_ascii_lowercase().as_str() {
            "antivirus" => Domain::Antivirus,
            "browser" => Domain::Browser,
            "vehicle" => Domain::Vehicle,
            "fleet" => Domain::Fleet,
            "arxiv" => Domain::Arxiv,
            "patent" => Domain::Patent,
            _ => Domain::Default,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Antivirus => "antivirus",
            Domain::Browser => "browser",
            Domain::Vehicle => "vehicle",
            Domain::Fleet => "fleet",
            Domain::Arxiv => "arxiv",
            Domain::Patent => "patent",
            Domain::Default => "default",
        }
    }

    /// The actions this domain may emit.
    pub fn allowed_actions(self) -> &'static [TurnstileAction] {
        use TurnstileAction::*;
        match self {
            Domain::Antivirus => &[Allow, Isolate, Honeypot],
            Domain::Browser => &[Allow, Hold, Honeypot],
            Domain::Vehicle => &[Allow, Pivot, Degrade],
            Domain::Fleet => &[Allow, Isolate, Degrade, Honeypot],
            Domain::Arxiv | Domain::Patent => &[Allow, Hold, Stop],
            Domain::Default => &[Allow, Stop],
        }
    }

    pub fn allows(self, action: TurnstileAction) -> bool {
        self.allowed_actions().contains(&action)
    }

    /// (DENY, ESCALATE, QUARANTINE) actions and the reason.
    fn table(self) -> ([TurnstileAction; 3], &'static str) {
        use TurnstileAction::*;
        match self {
            Domain::Antivirus => (
                [Isolate, Isolate, Isolate],
                "antivirus domain isolates suspicious artifact",
            ),
            Domain::Browser => ([Hold, Hold, Hold], "browser turnstile hold for review"),
            Domain::Vehicle => (
                [Pivot, Degrade, Pivot],
                "vehicle domain continues through a safe maneuver",
            ),
            Domain::Fleet => (
                [Isolate, Degrade, Isolate],
                "fleet containment without global stall",
            ),
            Domain::Arxiv => (
                [Stop, Hold, Hold],
                "arxiv submission requires human review or stop",
            ),
            Domain::Patent => (
                [Stop, Hold, Hold],
                "patent filing requires attorney review or stop",
            ),
            Domain::Default => ([Stop, Stop, Stop], "default hard stop"),
        }
    }
}

/// What the turnstile decided, with the action's traits.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnstileOutcome {
    pub action: TurnstileAction,
    pub reason: &'static str,
    pub require_human: bool,
    pub isolate: bool,
    pub deploy_honeypot: bool,
    pub continue_execution: bool,
}

/// Inputs to one turnstile resolution.
#[derive(Debug, Clone, Copy)]
pub struct TurnstileInput {
    pub domain: Domain,
    pub decision: Decision,
    pub membrane_stress: f64,
    pub antibody_now: f64,
    pub honeypot_stress: f64,
    pub honeypot_antibody: f64,
    /// Fleet only: whether the fleet quorum holds.
    pub quorum_ok: bool,
}

/// Resolve the turnstile (SPEC §5). The outcome is always in the domain's set.
pub fn resolve(input: &TurnstileInput) -> TurnstileOutcome {
    let outcome = resolve_unchecked(input);
    assert!(
        input.domain.allows(outcome.action),
        "domain {} emitted {} outside its set",
        input.domain.as_str(),
        outcome.action.as_str()
    );
    outcome
}

fn resolve_unchecked(input: &TurnstileInput) -> TurnstileOutcome {
    let domain = input.domain;
    let decision = input.decision;
    if decision != Decision::Allow
        && domain.allows(TurnstileAction::Honeypot)
        && (input.membrane_stress >= input.honeypot_stress
            || input.antibody_now >= input.honeypot_antibody)
    {
        return outcome(
            domain,
            decision,
            TurnstileAction::Honeypot,
            "honeypot triggered by membrane stress / antibody load",
        );
    }
    if decision == Decision::Allow {
        return outcome(domain, decision, TurnstileAction::Allow, "decision allow");
    }
    if domain == Domain::Fleet && !input.quorum_ok {
        return outcome(
            domain,
            decision,
            TurnstileAction::Isolate,
            "fleet quorum failed; isolate node and continue",
        );
    }
    let (actions, reason) = domain.table();
    let action = match decision {
        Decision::Deny => actions[0],
        Decision::Escalate => actions[1],
        Decision::Quarantine => actions[2],
        Decision::Allow => unreachable!("ALLOW returned above"),
    };
    outcome(domain, decision, action, reason)
}

fn outcome(
    domain: Domain,
    decision: Decision,
    action: TurnstileAction,
    reason: &'static str,
) -> TurnstileOutcome {
    use TurnstileAction::*;
    let (require_human, mut isolate, deploy_honeypot, mut continue_execution) = match action {
        Allow | Pivot | Degrade => (false, false, false, true),
        Hold => (true, false, false, false),
        Isolate => (false, true, false, false),
        Honeypot => (false, true, true, true),
        Stop => (false, false, false, false),
    };
    if domain == Domain::Browser {
        isolate = decision == Decision::Quarantine;
    }
    if domain == Domain::Fleet && action == Isolate {
        continue_execution = true;
    }
    TurnstileOutcome {
        action,
        reason,
        require_human,
        isolate,
        deploy_honeypot,
        continue_execution,
    }
}

/// `exp(−ln2 · dt / half_life)`: the weight kept of the previous load.
pub fn decay_factor(dt_events: f64, half_life_events: f64) -> f64 {
    libm::exp(-core::f64::consts::LN_2 * dt_events / half_life_events)
}

/// `clamp01(d·clamp01(prev) + (1−d)·clamp01(suspicion))`; non-finite
/// suspicion counts as full suspicion.
pub fn antibody_load(prev: f64, suspicion: f64, decay: f64) -> f64 {
    let suspicion = if suspicion.is_finite() {
        clamp01(suspicion)
    } else {
        1.0
    };
    clamp01(decay * clamp01(prev) + (1.0 - decay) * suspicion)
}

/// `clamp01((geometry − t)/(1 − t))` with `t` clamped to [0, 0.999999];
/// non-finite geometry is full stress.
pub fn membrane_stress(geometry: f64, threshold: f64) -> f64 {
    if !geometry.is_finite() {
        return 1.0;
    }
    let t = threshold.clamp(0.0, 0.999_999);
    clamp01((geometry - t) / (1.0 - t))
}

/// `min(1, max(0, x))`, with NaN → 0.
#[inline]
pub fn clamp01(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(domain: Domain, decision: Decision) -> TurnstileInput {
        TurnstileInput {
            domain,
            decision,
            membrane_stress: 0.0,
            antibody_now: 0.0,
            honeypot_stress: 0.9,
            honeypot_antibody: 0.85,
            quorum_ok: true,
        }
    }

    #[test]
    fn domain_table() {
        use Decision::*;
        use TurnstileAction::*;
        let table = [
            (Domain::Antivirus, [Isolate, Isolate, Isolate]),
            (Domain::Browser, [Hold, Hold, Hold]),
            (Domain::Vehicle, [Pivot, Degrade, Pivot]),
            (Domain::Fleet, [Isolate, Degrade, Isolate]),
            (Domain::Arxiv, [Stop, Hold, Hold]),
            (Domain::Patent, [Stop, Hold, Hold]),
            (Domain::Default, [Stop, Stop, Stop]),
        ];
        for (domain, [deny, escalate, quarantine]) in table {
            assert_eq!(resolve(&input(domain, Deny)).action, deny);
            assert_eq!(resolve(&input(domain, Escalate)).action, escalate);
            assert_eq!(resolve(&input(domain, Quarantine)).action, quarantine);
            assert_eq!(
                resolve(&input(domain, Decision::Allow)).action,
                TurnstileAction::Allow
            );
        }
        assert_eq!(Domain::from_name("nope"), Domain::Default);
    }

    #[test]
    fn no_domain_leaves_its_set() {
        for domain in Domain::ALL {
            for decision in Decision::ALL {
                for stress in [0.0, 0.95] {
                    for quorum_ok in [true, false] {
                        let mut i = input(domain, decision);
                        i.membrane_stress = stress;
                        i.quorum_ok = quorum_ok;
                        assert!(domain.allows(resolve(&i).action));
                    }
                }
            }
        }
    }

    #[test]
    fn honeypot_lane_only_where_allowed() {
        let mut i = input(Domain::Antivirus, Decision::Quarantine);
        i.antibody_now = 0.85;
        assert_eq!(resolve(&i).action, TurnstileAction::Honeypot);
        i.domain = Domain::Vehicle;
        assert_eq!(resolve(&i).action, TurnstileAction::Pivot);
        i.domain = Domain::Antivirus;
        i.decision = Decision::Allow;
        assert_eq!(resolve(&i).action, TurnstileAction::Allow);
    }

    #[test]
    fn fleet_quorum_and_traits() {
        let mut i = input(Domain::Fleet, Decision::Escalate);
        i.quorum_ok = false;
        let o = resolve(&i);
        assert_eq!(o.action, TurnstileAction::Isolate);
        assert_eq!(o.reason, "fleet quorum failed; isolate node and continue");
        assert!(o.continue_execution);
        let o = resolve(&input(Domain::Browser, Decision::Quarantine));
        assert!(o.isolate && o.require_human);
        let o = resolve(&input(Domain::Browser, Decision::Deny));
        assert!(!o.isolate);
    }

    #[test]
    fn stress_and_decay() {
        assert!((membrane_stress(0.99, 0.98) - 0.5).abs() < 1e-9);
        assert_eq!(membrane_stress(0.5, 0.98), 0.0);
        assert_eq!(membrane_stress(f64::NAN, 0.98), 1.0);
        assert_eq!(membrane_stress(1.0, 2.0), 1.0);
        let d = decay_factor(1.0, 12.0);
        assert!((d - 0.5f64.powf(1.0 / 12.0)).abs() < 1e-15);
        assert_eq!(antibody_load(0.0, f64::INFINITY, d), 1.0 - d);
        assert_eq!(clamp01(f64::NAN), 0.0);
    }
}
