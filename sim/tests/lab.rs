//! The detection lab through its library API and its binary: synth, evaluate,
//! tune and diff on the shipped small corpus, and exactness against the bridge.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use scbe_core::{parse_policy, Bridge, Gate, KernelAction, MappingOptions, Policy, Timestamp};
use scbe_sim::diff::{diff_policies, DiffReport};
use scbe_sim::evaluate::{evaluate, Filter, SplitRule};
use scbe_sim::input::Corpus;
use scbe_sim::labelled::{for_each_prepared, Item};
use scbe_sim::synth::{synth, SynthConfig};
use scbe_sim::tune::{tune, FeatureTable, Grid, Objective, Score};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn small_corpus() -> Vec<u8> {
    std::fs::read(root().join("corpora/synth-small.jsonl")).expect("corpora/synth-small.jsonl")
}

fn shipped_policy(name: &str) -> Policy {
    let text = std::fs::read_to_string(root().join("corpora/policies").join(name)).unwrap();
    parse_policy(&text).unwrap()
}

fn corpus(bytes: Vec<u8>) -> Corpus {
    Corpus {
        live: false,
        reader: Box::new(Cursor::new(bytes)),
        total_bytes: None,
        bytes_read: Arc::new(AtomicU64::new(0)),
        name: "<memory>".into(),
    }
}

fn mapping(policy: &Policy) -> MappingOptions {
    MappingOptions {
        real_network_fields: policy.real_network_fields,
        ..MappingOptions::default()
    }
}

fn generate(seed: u64, events: u64, attack_ratio: f64, hosts: usize) -> Vec<u8> {
    let mut out = Vec::new();
    synth(
        &SynthConfig {
            seed,
            events,
            attack_ratio,
            hosts,
        },
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn synth_small_seed_snapshot() {
    let text = String::from_utf8(generate(7, 12, 0.3, 6)).unwrap();
    insta::assert_snapshot!(text);
}

#[test]
fn shipped_small_corpus_is_what_synth_writes_for_its_seed() {
    // corpora/synth-small.jsonl: scbe-sim synth --seed 42 --events 3000
    // --attack-ratio 0.12 --hosts 12 (docs/detection-lab.md).
    assert!(generate(42, 3000, 0.12, 12) == small_corpus());
}

#[test]
fn evaluate_snapshot_reference_and_hardened() {
    for (name, policy) in [
        ("reference", Policy::reference()),
        ("hardened", shipped_policy("hardened.toml")),
    ] {
        let map = mapping(&policy);
        let e = evaluate(
            Arc::new(Gate::new(policy).unwrap()),
            &map,
            corpus(small_corpus()),
            2,
            SplitRule::NONE,
        )
        .unwrap();
        insta::assert_json_snapshot!(format!("evaluate_{name}"), e.metrics(Filter::All).to_json());
    }
}

#[test]
fn diff_reference_vs_tuned_snapshot() {
    let mut report = DiffReport::new(5);
    diff_policies(
        Arc::new(Gate::reference()),
        Arc::new(Gate::new(shipped_policy("tuned-synth-small.toml")).unwrap()),
        "linux-node",
        corpus(small_corpus()),
        2,
        &mut report,
    )
    .unwrap();
    assert!(report.changed());
    insta::assert_json_snapshot!(report.to_json());
}

fn tiny_grid() -> Grid {
    Grid::parse(
        r#"
        [grid]
        "decision.quarantine" = [0.2, 0.3, 0.7]
        "scan.malware_weight" = [0.2, 0.4]
        [random]
        samples = 3
        seed = 9
        [random.ranges]
        "decision.integrity_weight" = [0.3, 0.6]
        "cell.inflamed" = [0.6, 0.8]
        "#,
    )
    .unwrap()
}

fn score_json(s: &Score) -> serde_json::Value {
    serde_json::json!({
        "chains": s.chains, "chains_contained": s.chains_contained,
        "benign_keys": s.benign_keys, "benign_keys_contained": s.benign_keys_contained,
        "benign_events": s.benign_events, "benign_flagged": s.benign_flagged,
    })
}

#[test]
fn tune_tiny_grid_snapshot() {
    let gate = Gate::reference();
    let split = SplitRule {
        test_share: 0.3,
        seed: 0,
    };
    let table = FeatureTable::build(
        &gate,
        &MappingOptions::default(),
        corpus(small_corpus()),
        2,
        split,
    )
    .unwrap();
    let points = tiny_grid().points(gate.policy()).unwrap();
    let tuning = tune(&table, points, Objective::DEFAULT, 2).unwrap();
    let (chosen, met) = tuning.chosen.unwrap();
    let report = serde_json::json!({
        "points": tuning.points.len(),
        "invalid": tuning.invalid,
        "results": tuning.results.iter().map(|r| serde_json::json!({
            "point": r.index,
            "params": tuning.points[r.index].params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "train": score_json(&r.train),
            "test": score_json(&r.test),
        })).collect::<Vec<_>>(),
        "front": tuning.front.iter().map(|&i| tuning.results[i].index).collect::<Vec<_>>(),
        "chosen": tuning.results[chosen].index,
        "constraint_met": met,
    });
    insta::assert_json_snapshot!(report);

    // The chosen policy, re-decided by the streaming evaluator (the replay
    // path), scores exactly what tune reported for it.
    let policy = tuning.points[tuning.results[chosen].index].apply(gate.policy());
    let map = mapping(&policy);
    let e = evaluate(
        Arc::new(Gate::new(policy).unwrap()),
        &map,
        corpus(small_corpus()),
        1,
        split,
    )
    .unwrap();
    assert_eq!(
        Score::from_metrics(&e.metrics(Filter::Train)),
        tuning.results[chosen].train
    );
    assert_eq!(
        Score::from_metrics(&e.metrics(Filter::Test)),
        tuning.results[chosen].test
    );
}

/// Every event's kernel action from the bridge, fed in input order with the
/// events' own clock, exactly as replay does.
fn bridge_actions(policy: &Policy, bytes: Vec<u8>) -> Vec<KernelAction> {
    let gate = Arc::new(Gate::new(policy.clone()).unwrap());
    let map = mapping(policy);
    let mut bridge = Bridge::new(Arc::clone(&gate), map.clone(), None);
    let mut clock = Timestamp::ZERO;
    let mut actions = Vec::new();
    for_each_prepared(&gate, &map, corpus(bytes), 2, |item| {
        if let Item::Event { prepared, .. } = item {
            if let Some(t) = prepared.event.time {
                clock = t;
            }
            actions.push(bridge.advance(&prepared, clock).resolution.kernel_action);
        }
        Ok(())
    })
    .unwrap();
    actions
}

fn table_actions(policy: &Policy, base: &Policy, bytes: Vec<u8>) -> Vec<KernelAction> {
    let gate = Gate::new(base.clone()).unwrap();
    let table =
        FeatureTable::build(&gate, &mapping(base), corpus(bytes), 2, SplitRule::NONE).unwrap();
    let mut actions = vec![KernelAction::Allow; table.len()];
    table.decide(policy, |i, a| actions[i] = a);
    actions
}

#[test]
fn tuning_table_decides_exactly_as_the_bridge() {
    let mut corpora = vec![("synth-small", small_corpus())];
    let parity = root().join("../shared/parity/corpus.jsonl");
    if parity.is_file() {
        corpora.push(("parity", std::fs::read(parity).unwrap()));
    } else {
        eprintln!("parity corpus not present: checking the shipped corpus only");
    }
    let hardened = shipped_policy("hardened.toml");
    let mut small_table = Policy::reference();
    small_table.max_state_entries = 1; // 1,000 keys: evictions happen on parity
    let mut twitchy = hardened.clone();
    twitchy.turnstile.membrane_threshold = 0.5;
    twitchy.turnstile.half_life_events = 3.0;
    twitchy.cell.necrotic = 0.6;
    twitchy.cell.inflamed = 0.4;
    twitchy.decision.quarantine = 0.15;
    let policies = [
        ("reference", Policy::reference(), Policy::reference()),
        ("hardened", hardened.clone(), hardened.clone()),
        (
            "tuned",
            shipped_policy("tuned-synth-small.toml"),
            Policy::reference(),
        ),
        ("small-table", small_table.clone(), small_table),
        ("twitchy", twitchy, hardened),
    ];
    for (corpus_name, bytes) in &corpora {
        for (name, policy, base) in &policies {
            let expected = bridge_actions(policy, bytes.clone());
            let got = table_actions(policy, base, bytes.clone());
            assert_eq!(expected.len(), got.len(), "{corpus_name} {name}");
            let first_difference = expected.iter().zip(&got).position(|(a, b)| a != b);
            assert_eq!(first_difference, None, "{corpus_name} {name}");
        }
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scbe-sim"))
}

#[test]
fn diff_exit_status_gates_ci() {
    let small = root().join("corpora/synth-small.jsonl");
    let policies = root().join("corpora/policies");
    let same = bin()
        .args(["diff", "--policy", "reference", "--policy"])
        .arg(policies.join("reference.toml"))
        .arg(&small)
        .output()
        .unwrap();
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    let changed = bin()
        .args(["diff", "--json", "--policy", "reference", "--policy"])
        .arg(policies.join("tuned-synth-small.toml"))
        .arg(&small)
        .output()
        .unwrap();
    assert_eq!(changed.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&changed.stdout).unwrap();
    assert_eq!(report["changed"], true);
    let trouble = bin()
        .args([
            "diff",
            "--policy",
            "reference",
            "--policy",
            "reference",
            "/nonexistent/corpus.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(trouble.status.code(), Some(2));
}

#[test]
fn evaluate_json_has_the_contract_keys() {
    let out = bin()
        .args(["evaluate", "--json"])
        .arg(root().join("corpora/synth-small.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "events",
        "malicious_events",
        "malicious_flagged",
        "chains",
        "chains_detected",
        "chains_contained",
        "chain_recall",
        "detection_recall",
        "benign_events",
        "benign_flagged",
        "benign_friction",
        "benign_keys",
        "benign_keys_contained",
        "benign_containment",
        "ttc_events_median",
        "ttc_events_p90",
        "scenarios",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    for (_, s) in report["scenarios"].as_object().unwrap() {
        assert!(s["chains"].is_u64() && s["contained"].is_u64());
    }
}
