//! A Falco line through the mapping, the gate and the record serializer.
//!
//! The first byte picks the domain, the network-field mapping and the
//! cooldown; the rest is split on `\n` into up to 32 lines fed to one bridge
//! in order (so antibody state and cooldown carry across lines). Invariants:
//! no panic; the intake's JSON check and the gate agree on acceptance; every
//! record is one line of valid JSON with SPEC §8's keys; every score is in
//! [0, 1]; the decision follows the thresholds; the domain never emits an
//! action outside its set; ALLOW plans carry no commands; the lines prepared
//! as one batch (replay's way) equal the lines prepared one by one.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use scbe_core::falco::{classify_line, RawLine};
use scbe_core::turnstile::Domain;
use scbe_core::{Bridge, Gate, LineOutcome, MappingOptions, PlannerConfig, Policy, Timestamp};
use scbe_fuzz::{check_acceptance_agrees, check_batch_agrees, check_record};

/// Lines per input: enough for state to matter, few enough to stay fast.
const LINES_MAX: usize = 32;

fn gates() -> &'static [Arc<Gate>] {
    static GATES: OnceLock<Vec<Arc<Gate>>> = OnceLock::new();
    GATES.get_or_init(|| {
        Domain::ALL
            .iter()
            .map(|&domain| {
                let mut policy = Policy::reference();
                policy.turnstile.domain = domain;
                Arc::new(Gate::new(policy).expect("reference policy compiles"))
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let gates = gates();
    let gate = &gates[usize::from(selector & 0x07) % gates.len()];
    let mapping = MappingOptions {
        host_default: "fuzz-node".to_owned(),
        real_network_fields: selector & 0x08 != 0,
    };
    let planner = PlannerConfig {
        cooldown_seconds: if selector & 0x10 != 0 { 15.0 } else { 0.0 },
        quarantine_dir: "/var/quarantine/scbe".to_owned(),
        backend_names: vec!["systemd".to_owned(), "journald".to_owned()],
        dry_run: true,
        capacity: gate.policy().state_capacity(),
    };
    check_batch_agrees(gate, &mapping, data);
    let mut bridge = Bridge::new(Arc::clone(gate), mapping, Some(planner));
    for (i, raw) in data.split(|&b| b == b'\n').take(LINES_MAX).enumerate() {
        check_acceptance_agrees(raw);
        let now = Timestamp::from_nanos(i as i64 * 1_000_000_000);
        match bridge.decide_line(raw, |_| now) {
            LineOutcome::Blank => assert!(
                matches!(classify_line(raw), Ok(RawLine::Blank)),
                "a non-blank line was skipped as blank"
            ),
            LineOutcome::Error(e) => {
                let message = e.to_string();
                assert!(!message.is_empty(), "empty error message");
            }
            LineOutcome::Decided(record) => check_record(&record, gate),
        }
    }
});
