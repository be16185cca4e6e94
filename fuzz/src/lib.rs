//! Invariants shared by the fuzz targets (and usable from regression tests).
//!
//! Each check panics with a message naming the broken invariant, which is
//! what libFuzzer reports as a crash.

use scbe_core::falco::MappingOptions;
use scbe_core::falco::{classify_line, FalcoDoc, LineError, RawLine};
use scbe_core::json::{self, JsonValue};
use scbe_core::membrane::ScanScratch;
use scbe_core::pystr::py_round;
use scbe_core::turnstile::{Decision, Domain, TurnstileAction};
use scbe_core::{
    finish_record, prepare_line, prepare_lines, Advance, DecisionRecord, Gate, KernelAction,
    PreparedLine,
};

/// SPEC §8: the record's keys, in order (`enforcement` last when planned).
pub const RECORD_KEYS: [&str; 13] = [
    "host",
    "pid",
    "process_name",
    "operation",
    "target",
    "decision",
    "kernel_action",
    "cell_state",
    "suspicion",
    "antibody_load_prev",
    "antibody_load_now",
    "membrane_stress",
    "notes",
];

/// The HTTP intake validates lines with `json::parse`, the gate with
/// `FalcoDoc::read`. They must agree on what is an object, or the intake
/// would accept (HTTP 200) an event the gate then rejects.
pub fn check_acceptance_agrees(raw: &[u8]) {
    let Ok(RawLine::Text(text)) = classify_line(raw) else {
        return;
    };
    let full = json::parse(text);
    let falco = FalcoDoc::read(text);
    // The fast path for Falco-shaped lines locates what the general reader
    // locates, and accepts and rejects alike.
    assert_eq!(
        falco,
        FalcoDoc::read_general(text),
        "the fast path and the general reader disagree"
    );
    match (&full, &falco) {
        (Ok(JsonValue::Object(_)), Ok(_)) => {}
        (Ok(JsonValue::Object(_)), Err(e)) => {
            panic!("json::parse accepts an object that the gate rejects: {e}")
        }
        (Ok(_), Err(LineError::NotAnObject)) => {}
        (Ok(_), Err(e)) => panic!("a JSON non-object is rejected as {e:?}, not NotAnObject"),
        (Ok(_), Ok(_)) => panic!("the gate accepts a JSON value that is not an object"),
        (Err(_), Err(LineError::Json(_))) => {}
        (Err(e), Ok(_)) => panic!("the gate accepts a line json::parse rejects: {e}"),
        (Err(e), Err(other)) => panic!("json::parse says {e} but the gate says {other:?}"),
    }
}

/// Replay prepares a batch one stage at a time (`prepare_lines`); the agent
/// prepares line by line (`prepare_line`). Both must give the same result
/// for every line, also when the batch maps into spent events and guesses
/// member names from earlier lines (each line alone has a scratch of its
/// own, so guesses nothing from the others).
pub fn check_batch_agrees(gate: &Gate, mapping: &MappingOptions, data: &[u8]) {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').take(32).collect();
    let expected: Vec<String> = lines
        .iter()
        .map(|raw| {
            let mut alone = ScanScratch::default();
            format!("{:?}", prepare_line(gate, mapping, raw, &mut alone))
        })
        .collect();
    let mut scratch = ScanScratch::default();
    for round in 0..2 {
        let input = lines.iter().map(|&raw| Ok::<_, LineError>(raw));
        let batch = prepare_lines(gate, mapping, input, &mut scratch);
        let got: Vec<String> = batch.iter().map(|p| format!("{p:?}")).collect();
        assert_eq!(
            got, expected,
            "batch and line-by-line preparation differ (round {round})"
        );
        for line in batch.into_iter().rev() {
            if let PreparedLine::Event(prepared) = line {
                let advance = Advance {
                    resolution: gate.resolve(&prepared.assessment, 0.0),
                    admitted: true,
                };
                scratch.recycle(finish_record(gate, None, *prepared, advance));
            }
        }
    }
}

/// A score as SPEC §4–6 require: a number in [0, 1].
fn check_unit(name: &str, x: f64) {
    assert!((0.0..=1.0).contains(&x), "{name} = {x} is outside [0, 1]");
}

/// Every invariant a decided record must hold under `gate`.
pub fn check_record(record: &DecisionRecord, gate: &Gate) {
    let a = &record.assessment;
    let r = &record.resolution;
    for (name, x) in [
        ("scan_risk", a.scan_risk),
        ("integrity_risk", a.integrity_risk),
        ("suspicion", a.suspicion),
        ("geometry", a.geometry),
        ("antibody_prev", r.antibody_prev),
        ("antibody_now", r.antibody_now),
        ("membrane_stress", r.membrane_stress),
    ] {
        check_unit(name, x);
    }

    // Thresholds compare the unrounded suspicion (SPEC §4).
    let d = &gate.policy().decision;
    let expected = if a.suspicion >= d.deny {
        Decision::Deny
    } else if a.suspicion >= d.escalate {
        Decision::Escalate
    } else if a.suspicion >= d.quarantine {
        Decision::Quarantine
    } else {
        Decision::Allow
    };
    assert_eq!(
        a.decision, expected,
        "decision for suspicion {}",
        a.suspicion
    );

    // The domain contract (SPEC §5).
    let domain: Domain = gate.policy().turnstile.domain;
    assert!(
        domain.allows(r.turnstile.action),
        "domain {} emitted {}",
        domain.as_str(),
        r.turnstile.action.as_str()
    );
    if a.decision == Decision::Allow {
        assert_eq!(
            r.turnstile.action,
            TurnstileAction::Allow,
            "ALLOW decision became an action"
        );
    }

    // An ALLOW never carries commands or an action (SPEC §9).
    if let Some(plan) = &record.enforcement {
        assert_eq!(
            plan.kernel_action, r.kernel_action,
            "plan names another action"
        );
        if r.kernel_action == KernelAction::Allow {
            assert!(plan.commands.is_empty(), "ALLOW plan has commands");
            assert!(plan.action.is_none(), "ALLOW plan has an action");
        }
        if plan.cooldown_skipped {
            assert!(
                plan.commands.is_empty(),
                "cooldown-skipped plan has commands"
            );
        }
        if let Some(action) = &plan.action {
            assert_eq!(
                action.pid, record.event.pid,
                "action pid differs from the event"
            );
            assert_eq!(action.target, record.event.target, "action target differs");
        }
    }

    for include_event in [false, true] {
        let mut out = String::new();
        record.write_json(&mut out, include_event);
        check_record_json(&out, record);
    }
}

/// The serialized record: one line of strict JSON (RFC 8259, any number
/// size), SPEC §8's keys in order, rounded scores in [0, 1].
pub fn check_record_json(out: &str, record: &DecisionRecord) {
    assert!(
        !out.contains(['\n', '\r']),
        "a record spans more than one line: {out:?}"
    );
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(out) {
        panic!("record is not valid JSON ({e}): {out}");
    }
    // serde_json's Value cannot hold integers past f64 (a 400-digit pid);
    // the syntactic check above covered those.
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(out) else {
        return;
    };
    let keys: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .take(RECORD_KEYS.len())
        .collect();
    assert_eq!(keys, RECORD_KEYS, "record keys out of order");
    assert_eq!(
        map.contains_key("enforcement"),
        record.enforcement.is_some(),
        "enforcement key presence"
    );
    for key in [
        "suspicion",
        "antibody_load_prev",
        "antibody_load_now",
        "membrane_stress",
    ] {
        let x = map[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} is not a number: {}", map[key]));
        check_unit(key, x);
    }
    let suspicion = map["suspicion"].as_f64().expect("checked above");
    assert_eq!(
        suspicion,
        py_round(record.assessment.suspicion, 4),
        "suspicion does not round-trip"
    );
}
