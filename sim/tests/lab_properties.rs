//! Properties of the detection lab: evaluate's counts add up on any corpus;
//! tune never reports a policy it did not evaluate.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use scbe_core::{Gate, KernelAction, MappingOptions};
use scbe_sim::evaluate::{evaluate, Filter, Metrics, SplitRule};
use scbe_sim::input::Corpus;
use scbe_sim::synth::{synth, SynthConfig};
use scbe_sim::tune::{tune, FeatureTable, Grid, Objective};

fn corpus(bytes: Vec<u8>) -> Corpus {
    Corpus {
        live: false,
        reader: Box::new(Cursor::new(bytes)),
        total_bytes: None,
        bytes_read: Arc::new(AtomicU64::new(0)),
        name: "<memory>".into(),
    }
}

const JUNK: &[&str] = &[
    "",
    "   ",
    "not json",
    "[1, 2]",
    "{\"output_fields\": {\"proc.name\": \"unlabelled\", \"proc.pid\": 4}}",
    "{\"scbe_label\": {\"malicious\": true, \"scenario\": null, \"technique\": null, \"chain_id\": null}}",
    "{\"scbe_label\": {\"malicious\": false, \"scenario\": \"x\"}, \"output_fields\": {\"scbe.geometry_norm\": \"Infinity\"}}",
    "{\"scbe_label\": \"oops\"}",
];

fn check_adds_up(m: &Metrics) {
    assert_eq!(
        m.events,
        m.malicious_events + m.benign_events + m.unlabelled_events
    );
    assert!(m.malicious_flagged <= m.malicious_events);
    assert!(m.benign_flagged <= m.benign_events);
    assert!(m.chains_contained <= m.chains_detected && m.chains_detected <= m.chains);
    assert!(m.benign_keys_contained <= m.benign_keys);
    assert_eq!(
        m.scenarios.values().map(|s| s.chains).sum::<u64>(),
        m.chains
    );
    assert_eq!(
        m.scenarios.values().map(|s| s.contained).sum::<u64>(),
        m.chains_contained
    );
    assert_eq!(
        m.scenarios.values().map(|s| s.detected).sum::<u64>(),
        m.chains_detected
    );
    assert_eq!(
        m.scenarios.values().map(|s| s.events).sum::<u64>(),
        m.malicious_events
    );
    assert_eq!(
        m.benign_scenarios.values().map(|s| s.keys).sum::<u64>(),
        m.benign_keys
    );
    for share in [
        m.chain_recall(),
        m.detection_recall(),
        m.benign_friction(),
        m.benign_containment(),
        m.precision(),
        m.event_recall(),
    ] {
        assert!((0.0..=1.0).contains(&share));
    }
    if let (Some(median), Some(p90)) = (m.ttc_events_median, m.ttc_events_p90) {
        assert!(median <= p90);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn evaluate_counts_add_up(
        seed in any::<u64>(),
        events in 20u64..300,
        attack_ratio in 0.0f64..0.6,
        hosts in 1usize..9,
        junk in proptest::collection::vec((0usize..400, 0usize..JUNK.len()), 0..12),
        test_share in 0.0f64..0.9,
    ) {
        let mut bytes = Vec::new();
        synth(&SynthConfig { seed, events, attack_ratio, hosts }, &mut bytes).unwrap();
        let mut lines: Vec<String> = String::from_utf8(bytes).unwrap().lines().map(str::to_owned).collect();
        for (at, which) in &junk {
            let at = (*at).min(lines.len());
            lines.insert(at, JUNK[*which].to_owned());
        }
        let non_blank = lines.iter().filter(|l| !l.trim().is_empty()).count() as u64;
        let text = lines.join("\n") + "\n";
        let split = SplitRule { test_share, seed: seed ^ 1 };
        let e = evaluate(Arc::new(Gate::reference()), &MappingOptions::default(), corpus(text.into_bytes()), 2, split).unwrap();
        let all = e.metrics(Filter::All);
        check_adds_up(&all);
        prop_assert_eq!(all.events + e.errors, non_blank);
        let actions = all.kernel_actions.unwrap();
        prop_assert_eq!(actions.iter().sum::<u64>(), all.events);
        prop_assert!(actions[KernelAction::Allow as usize] <= all.events);
        let (train, test) = (e.metrics(Filter::Train), e.metrics(Filter::Test));
        check_adds_up(&train);
        check_adds_up(&test);
        prop_assert_eq!(train.events + test.events, all.events);
        prop_assert_eq!(train.chains + test.chains, all.chains);
        prop_assert_eq!(train.chains_contained + test.chains_contained, all.chains_contained);
        prop_assert_eq!(train.benign_keys + test.benign_keys, all.benign_keys);
        prop_assert_eq!(train.benign_keys_contained + test.benign_keys_contained, all.benign_keys_contained);
        prop_assert_eq!(train.benign_flagged + test.benign_flagged, all.benign_flagged);
    }
}

fn table() -> &'static FeatureTable {
    static TABLE: OnceLock<FeatureTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/synth-small.jsonl");
        let bytes = std::fs::read(path).unwrap();
        let split = SplitRule {
            test_share: 0.3,
            seed: 0,
        };
        FeatureTable::build(
            &Gate::reference(),
            &MappingOptions::default(),
            corpus(bytes),
            2,
            split,
        )
        .unwrap()
    })
}

const PARAMS: &[&str] = &[
    "decision.quarantine",
    "decision.escalate",
    "decision.scan_weight",
    "decision.integrity_weight",
    "cell.inflamed",
    "cell.necrotic",
    "turnstile.half_life_events",
    "turnstile.membrane_threshold",
    "scan.malware_weight",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn tune_reports_only_policies_it_evaluated(
        axes in proptest::collection::vec(
            (0usize..PARAMS.len(), proptest::collection::vec(0.0f64..1.2, 1..4)),
            0..3,
        ),
        samples in 0usize..6,
        seed in any::<u64>(),
        limit in 0.0f64..0.05,
    ) {
        let mut text = String::from("[grid]\n");
        let mut seen = Vec::new();
        for (param, values) in &axes {
            if seen.contains(param) { continue; }
            seen.push(*param);
            let values: Vec<String> = values.iter().map(|v| format!("{v:.3}")).collect();
            text.push_str(&format!("\"{}\" = [{}]\n", PARAMS[*param], values.join(", ")));
        }
        text.push_str(&format!("[random]\nsamples = {samples}\nseed = {}\n[random.ranges]\n\"decision.quarantine\" = [0.1, 0.5]\n\"cell.primed\" = [0.2, 0.5]\n", seed % 1000));
        let grid = Grid::parse(&text).unwrap();
        let table = table();
        let points = grid.points(&table.base).unwrap();
        let n = points.len();
        let tuning = tune(table, points, Objective::MaxRecall { containment_max: limit }, 2).unwrap();
        // Every point is either evaluated or reported invalid, never both.
        prop_assert_eq!(tuning.results.len() + tuning.invalid.len(), n);
        for r in &tuning.results {
            prop_assert!(!tuning.invalid.contains(&r.index));
            prop_assert!(scbe_core::policy_toml::validate(&tuning.points[r.index].apply(&table.base)).is_ok());
        }
        for &i in &tuning.invalid {
            prop_assert!(scbe_core::policy_toml::validate(&tuning.points[i].apply(&table.base)).is_err());
        }
        match tuning.chosen {
            None => prop_assert!(tuning.results.is_empty()),
            Some((c, met)) => {
                let chosen = &tuning.results[c];
                // The reported scores are the policy's real scores.
                let policy = tuning.points[chosen.index].apply(&table.base);
                let train = scbe_sim::tune::Score::from_metrics(&table.metrics(&policy, Filter::Train));
                let test = scbe_sim::tune::Score::from_metrics(&table.metrics(&policy, Filter::Test));
                prop_assert_eq!(train, chosen.train);
                prop_assert_eq!(test, chosen.test);
                prop_assert_eq!(met, chosen.train.benign_containment() <= limit);
                if met {
                    for r in &tuning.results {
                        if r.train.benign_containment() <= limit {
                            prop_assert!(r.train.chain_recall() <= chosen.train.chain_recall());
                        }
                    }
                }
            }
        }
        // The front is made of evaluated points that nothing dominates.
        for &f in &tuning.front {
            let p = &tuning.results[f].train;
            for r in &tuning.results {
                let q = &r.train;
                let dominates = q.chain_recall() >= p.chain_recall()
                    && q.benign_containment() <= p.benign_containment()
                    && q.benign_friction() <= p.benign_friction()
                    && (q.chain_recall() > p.chain_recall()
                        || q.benign_containment() < p.benign_containment()
                        || q.benign_friction() < p.benign_friction());
                prop_assert!(!dominates);
            }
        }
    }
}
