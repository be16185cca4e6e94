//! Scoring a policy against a labelled corpus.
//!
//! The corpus side, which no policy changes, is the [`Catalog`]: process keys,
//! attack chains (grouped by `chain_id`, or by process key when it is null),
//! scenarios, each chain's first event time, and each unit's train/test split.
//! A policy's decisions are recorded in an [`Outcome`]; [`Metrics::compute`]
//! turns both into the report, for the whole corpus or for one split.
//!
//! [`evaluate`] decides exactly as `replay` does: the same stateless stage
//! ([`scbe_core::prepare_line`]), one [`Bridge`] fed in input order, and the
//! events' own time as the clock. The enforcement cooldown only suppresses
//! plans, never kernel actions, so it plays no part here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Result;
use scbe_core::{Bridge, Gate, KernelAction, MappingOptions, Timestamp};
use serde_json::{json, Value};

use crate::input::Corpus;
use crate::label::Label;
use crate::labelled::{for_each_prepared, Item};
use crate::rng::hash64;

/// Distinct process keys, chains or scenarios a catalog may hold (each
/// costs a few dozen bytes; the bound keeps a hostile corpus from exhausting memory).
pub const CATALOG_UNITS_MAX: usize = 50_000_000;

/// How units are assigned to the test split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitRule {
    /// Share of chains and of benign process keys in the test split, in [0, 1).
    pub test_share: f64,
    pub seed: u64,
}

impl SplitRule {
    /// Everything in the training split.
    pub const NONE: SplitRule = SplitRule {
        test_share: 0.0,
        seed: 0,
    };

    /// Whether the unit named `name` is in the test split. Stable: depends on
    /// the name and the seed only.
    pub fn is_test(&self, name: &str) -> bool {
        if self.test_share <= 0.0 {
            return false;
        }
        let x = hash64(name.as_bytes(), self.seed) as f64 / 18_446_744_073_709_551_616.0;
        x < self.test_share
    }
}

/// Which units a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    Train,
    Test,
}

impl Filter {
    fn admits(self, test: bool) -> bool {
        match self {
            Filter::All => true,
            Filter::Train => !test,
            Filter::Test => test,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScenarioInfo {
    pub name: String,
    pub technique: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChainInfo {
    pub name: String,
    pub scenario: u32,
    pub first_time_ns: i64,
    pub events: u32,
    pub test: bool,
}

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub name: String,
    /// Scenario of the key's first benign event (`u32::MAX` if none).
    pub benign_scenario: u32,
    pub benign_events: u32,
    pub malicious_events: u32,
    pub unlabelled_events: u32,
    pub test: bool,
}

impl KeyInfo {
    /// A benign key has benign events and no malicious ones.
    pub fn is_benign(&self) -> bool {
        self.benign_events > 0 && self.malicious_events == 0
    }
}

/// What an event is, in catalog terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A malicious event: its chain and its position in the chain (0-based).
    Chain {
        chain: u32,
        position: u32,
    },
    Benign,
    Unlabelled,
}

/// One event's place in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef {
    pub unit: Unit,
    pub key: u32,
    pub time_ns: i64,
}

/// The policy-independent side of a labelled corpus.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub scenarios: Vec<ScenarioInfo>,
    pub chains: Vec<ChainInfo>,
    pub keys: Vec<KeyInfo>,
    scenario_index: HashMap<String, u32>,
    chain_index: HashMap<String, u32>,
    key_index: HashMap<String, u32>,
    split: Option<SplitRule>,
}

impl Catalog {
    pub fn new(split: SplitRule) -> Catalog {
        Catalog {
            split: Some(split),
            ..Catalog::default()
        }
    }

    fn split(&self) -> SplitRule {
        self.split.unwrap_or(SplitRule::NONE)
    }

    fn scenario(&mut self, label: &Label) -> u32 {
        let name = label.scenario.clone().unwrap_or_else(|| {
            if label.malicious {
                "unknown_attack"
            } else {
                "unknown_benign"
            }
            .to_owned()
        });
        if let Some(&id) = self.scenario_index.get(&name) {
            return id;
        }
        let id = self.scenarios.len() as u32;
        self.scenarios.push(ScenarioInfo {
            name: name.clone(),
            technique: label.technique.clone(),
        });
        self.scenario_index.insert(name, id);
        id
    }

    /// Record one decided event; `key` is its process key, `time_ns` the replay clock.
    pub fn observe(&mut self, label: Option<&Label>, key: &str, time_ns: i64) -> EventRef {
        assert!(
            self.keys.len() < CATALOG_UNITS_MAX && self.chains.len() < CATALOG_UNITS_MAX,
            "catalog limit of {CATALOG_UNITS_MAX} units reached"
        );
        let split = self.split();
        let key_id = match self.key_index.get(key) {
            Some(&id) => id,
            None => {
                let id = self.keys.len() as u32;
                self.keys.push(KeyInfo {
                    name: key.to_owned(),
                    benign_scenario: u32::MAX,
                    benign_events: 0,
                    malicious_events: 0,
                    unlabelled_events: 0,
                    test: split.is_test(key),
                });
                self.key_index.insert(key.to_owned(), id);
                id
            }
        };
        let unit = match label {
            None => {
                self.keys[key_id as usize].unlabelled_events += 1;
                Unit::Unlabelled
            }
            Some(label) if !label.malicious => {
                let scenario = self.scenario(label);
                let info = &mut self.keys[key_id as usize];
                info.benign_events += 1;
                if info.benign_scenario == u32::MAX {
                    info.benign_scenario = scenario;
                }
                Unit::Benign
            }
            Some(label) => {
                self.keys[key_id as usize].malicious_events += 1;
                let name = label.chain_id.as_deref().unwrap_or(key);
                let chain = match self.chain_index.get(name) {
                    Some(&id) => id,
                    None => {
                        let scenario = self.scenario(label);
                        let id = self.chains.len() as u32;
                        self.chains.push(ChainInfo {
                            name: name.to_owned(),
                            scenario,
                            first_time_ns: time_ns,
                            events: 0,
                            test: split.is_test(name),
                        });
                        self.chain_index.insert(name.to_owned(), id);
                        id
                    }
                };
                let info = &mut self.chains[chain as usize];
                let position = info.events;
                info.events += 1;
                Unit::Chain { chain, position }
            }
        };
        EventRef {
            unit,
            key: key_id,
            time_ns,
        }
    }

    /// The split a unit of this event belongs to.
    pub fn is_test(&self, event: &EventRef) -> bool {
        match event.unit {
            Unit::Chain { chain, .. } => self.chains[chain as usize].test,
            _ => self.keys[event.key as usize].test,
        }
    }
}

/// What one policy did to a catalog's units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub chain_flagged: Vec<u32>,
    /// Position of the chain's first contained event, `u32::MAX` if none.
    pub chain_contained_at: Vec<u32>,
    pub chain_contained_ns: Vec<i64>,
    /// Per key: benign events not allowed, and whether a benign event was contained.
    pub key_benign_flagged: Vec<u32>,
    pub key_benign_contained: Vec<bool>,
    pub key_unlabelled_flagged: Vec<u32>,
    /// Events per kernel action (in `KernelAction::ALL` order).
    pub actions: [u64; 5],
}

impl Outcome {
    /// An outcome sized for `catalog`, with nothing recorded.
    pub fn for_catalog(catalog: &Catalog) -> Outcome {
        let mut outcome = Outcome::default();
        outcome.fit(catalog);
        outcome
    }

    /// Grow to cover every unit of `catalog`.
    pub fn fit(&mut self, catalog: &Catalog) {
        let chains = catalog.chains.len();
        let keys = catalog.keys.len();
        self.chain_flagged.resize(chains, 0);
        self.chain_contained_at.resize(chains, u32::MAX);
        self.chain_contained_ns.resize(chains, 0);
        self.key_benign_flagged.resize(keys, 0);
        self.key_benign_contained.resize(keys, false);
        self.key_unlabelled_flagged.resize(keys, 0);
    }

    #[inline]
    pub fn record(&mut self, event: &EventRef, action: KernelAction) {
        self.actions[action as usize] += 1;
        if action == KernelAction::Allow {
            return;
        }
        let contained = action.is_containment();
        match event.unit {
            Unit::Chain { chain, position } => {
                let c = chain as usize;
                self.chain_flagged[c] += 1;
                if contained && self.chain_contained_at[c] == u32::MAX {
                    self.chain_contained_at[c] = position;
                    self.chain_contained_ns[c] = event.time_ns;
                }
            }
            Unit::Benign => {
                let k = event.key as usize;
                self.key_benign_flagged[k] += 1;
                if contained {
                    self.key_benign_contained[k] = true;
                }
            }
            Unit::Unlabelled => self.key_unlabelled_flagged[event.key as usize] += 1,
        }
    }
}

/// Per-scenario figures for attack chains.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScenarioMetrics {
    pub technique: Option<String>,
    pub chains: u64,
    pub detected: u64,
    pub contained: u64,
    pub events: u64,
    pub flagged: u64,
}

/// Per-scenario figures for benign process keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenignScenarioMetrics {
    pub keys: u64,
    pub keys_contained: u64,
    pub events: u64,
    pub flagged: u64,
}

/// The report for one policy over one split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub events: u64,
    pub malicious_events: u64,
    pub malicious_flagged: u64,
    pub benign_events: u64,
    pub benign_flagged: u64,
    pub unlabelled_events: u64,
    pub unlabelled_flagged: u64,
    pub chains: u64,
    pub chains_detected: u64,
    pub chains_contained: u64,
    pub benign_keys: u64,
    pub benign_keys_contained: u64,
    pub ttc_events_median: Option<u64>,
    pub ttc_events_p90: Option<u64>,
    pub ttc_seconds_median: Option<f64>,
    pub ttc_seconds_p90: Option<f64>,
    /// Only for [`Filter::All`] (actions are not split).
    pub kernel_actions: Option<[u64; 5]>,
    pub scenarios: BTreeMap<String, ScenarioMetrics>,
    pub benign_scenarios: BTreeMap<String, BenignScenarioMetrics>,
}

fn share(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Round to 6 decimals for reports (the counts carry the exact values).
fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Metrics {
    pub fn compute(catalog: &Catalog, outcome: &Outcome, filter: Filter) -> Metrics {
        let mut m = Metrics::default();
        let mut ttc_events = Vec::new();
        let mut ttc_seconds = Vec::new();
        for (c, chain) in catalog.chains.iter().enumerate() {
            if !filter.admits(chain.test) {
                continue;
            }
            let info = &catalog.scenarios[chain.scenario as usize];
            let s = m.scenarios.entry(info.name.clone()).or_default();
            s.technique.clone_from(&info.technique);
            let flagged = u64::from(outcome.chain_flagged[c]);
            let contained_at = outcome.chain_contained_at[c];
            s.chains += 1;
            s.events += u64::from(chain.events);
            s.flagged += flagged;
            m.chains += 1;
            m.malicious_events += u64::from(chain.events);
            m.malicious_flagged += flagged;
            if flagged > 0 {
                s.detected += 1;
                m.chains_detected += 1;
            }
            if contained_at != u32::MAX {
                s.contained += 1;
                m.chains_contained += 1;
                ttc_events.push(u64::from(contained_at));
                let ns = outcome.chain_contained_ns[c].saturating_sub(chain.first_time_ns);
                ttc_seconds.push(ns.max(0) as f64 / 1e9);
            }
        }
        for (k, key) in catalog.keys.iter().enumerate() {
            if !filter.admits(key.test) {
                continue;
            }
            m.benign_events += u64::from(key.benign_events);
            m.benign_flagged += u64::from(outcome.key_benign_flagged[k]);
            m.unlabelled_events += u64::from(key.unlabelled_events);
            m.unlabelled_flagged += u64::from(outcome.key_unlabelled_flagged[k]);
            if key.benign_events > 0 {
                let name = &catalog.scenarios[key.benign_scenario as usize].name;
                let s = m.benign_scenarios.entry(name.clone()).or_default();
                s.events += u64::from(key.benign_events);
                s.flagged += u64::from(outcome.key_benign_flagged[k]);
                if key.is_benign() {
                    s.keys += 1;
                    m.benign_keys += 1;
                    if outcome.key_benign_contained[k] {
                        s.keys_contained += 1;
                        m.benign_keys_contained += 1;
                    }
                }
            }
        }
        m.events = m.malicious_events + m.benign_events + m.unlabelled_events;
        ttc_events.sort_unstable();
        ttc_seconds.sort_by(f64::total_cmp);
        m.ttc_events_median = percentile(&ttc_events, 0.5);
        m.ttc_events_p90 = percentile(&ttc_events, 0.9);
        m.ttc_seconds_median = percentile(&ttc_seconds, 0.5);
        m.ttc_seconds_p90 = percentile(&ttc_seconds, 0.9);
        if filter == Filter::All {
            m.kernel_actions = Some(outcome.actions);
        }
        m
    }

    pub fn chain_recall(&self) -> f64 {
        share(self.chains_contained, self.chains)
    }

    pub fn detection_recall(&self) -> f64 {
        share(self.chains_detected, self.chains)
    }

    pub fn benign_friction(&self) -> f64 {
        share(self.benign_flagged, self.benign_events)
    }

    pub fn benign_containment(&self) -> f64 {
        share(self.benign_keys_contained, self.benign_keys)
    }

    /// Event-level precision of "flagged" (non-ALLOW) against the labels.
    pub fn precision(&self) -> f64 {
        share(
            self.malicious_flagged,
            self.malicious_flagged + self.benign_flagged,
        )
    }

    /// Event-level recall of "flagged".
    pub fn event_recall(&self) -> f64 {
        share(self.malicious_flagged, self.malicious_events)
    }

    /// The report as a JSON object (the keys are a contract; see docs/detection-lab.md).
    pub fn to_json(&self) -> Value {
        let mut scenarios = serde_json::Map::new();
        for (name, s) in &self.scenarios {
            scenarios.insert(
                name.clone(),
                json!({
                    "technique": s.technique,
                    "chains": s.chains,
                    "detected": s.detected,
                    "contained": s.contained,
                    "chain_recall": r6(share(s.contained, s.chains)),
                    "events": s.events,
                    "flagged": s.flagged,
                }),
            );
        }
        let mut benign = serde_json::Map::new();
        for (name, s) in &self.benign_scenarios {
            benign.insert(
                name.clone(),
                json!({
                    "keys": s.keys,
                    "keys_contained": s.keys_contained,
                    "events": s.events,
                    "flagged": s.flagged,
                }),
            );
        }
        let mut object = json!({
            "events": self.events,
            "malicious_events": self.malicious_events,
            "malicious_flagged": self.malicious_flagged,
            "benign_events": self.benign_events,
            "benign_flagged": self.benign_flagged,
            "unlabelled_events": self.unlabelled_events,
            "unlabelled_flagged": self.unlabelled_flagged,
            "precision": r6(self.precision()),
            "recall": r6(self.event_recall()),
            "chains": self.chains,
            "chains_detected": self.chains_detected,
            "chains_contained": self.chains_contained,
            "chain_recall": r6(self.chain_recall()),
            "detection_recall": r6(self.detection_recall()),
            "benign_friction": r6(self.benign_friction()),
            "benign_keys": self.benign_keys,
            "benign_keys_contained": self.benign_keys_contained,
            "benign_containment": r6(self.benign_containment()),
            "ttc_events_median": self.ttc_events_median,
            "ttc_events_p90": self.ttc_events_p90,
            "ttc_seconds_median": self.ttc_seconds_median.map(|x| (x * 1e3).round() / 1e3),
            "ttc_seconds_p90": self.ttc_seconds_p90.map(|x| (x * 1e3).round() / 1e3),
        });
        if let Some(actions) = self.kernel_actions {
            let map: serde_json::Map<String, Value> = KernelAction::ALL
                .iter()
                .map(|a| (a.as_str().to_owned(), actions[*a as usize].into()))
                .collect();
            object["kernel_actions"] = Value::Object(map);
        }
        object["scenarios"] = Value::Object(scenarios);
        object["benign_scenarios"] = Value::Object(benign);
        object
    }

    /// The report as a terminal table.
    pub fn to_table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let pct = |x: f64| format!("{:6.2}%", x * 100.0);
        let opt = |x: Option<u64>| x.map_or("-".to_owned(), |v| v.to_string());
        let opt_s = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.1}s"));
        let _ = writeln!(
            out,
            "events            {:>10}   (malicious {}, benign {}, unlabelled {})",
            self.events, self.malicious_events, self.benign_events, self.unlabelled_events
        );
        let _ = writeln!(
            out,
            "event precision   {}   event recall {}   (flagged = not ALLOW)",
            pct(self.precision()),
            pct(self.event_recall())
        );
        let _ = writeln!(
            out,
            "chain recall      {}   ({} of {} chains contained)",
            pct(self.chain_recall()),
            self.chains_contained,
            self.chains
        );
        let _ = writeln!(
            out,
            "detection recall  {}   ({} chains with any non-ALLOW)",
            pct(self.detection_recall()),
            self.chains_detected
        );
        let _ = writeln!(
            out,
            "benign friction   {}   ({} of {} benign events not ALLOWed)",
            pct(self.benign_friction()),
            self.benign_flagged,
            self.benign_events
        );
        let _ = writeln!(
            out,
            "benign containment{}   ({} of {} benign process keys contained)",
            pct(self.benign_containment()),
            self.benign_keys_contained,
            self.benign_keys
        );
        let _ = writeln!(
            out,
            "time to containment  median {} events / {}   p90 {} events / {}",
            opt(self.ttc_events_median),
            opt_s(self.ttc_seconds_median),
            opt(self.ttc_events_p90),
            opt_s(self.ttc_seconds_p90)
        );
        if !self.scenarios.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<28} {:<10} {:>6} {:>9} {:>10} {:>8}",
                "scenario", "technique", "chains", "detected", "contained", "recall"
            );
            for (name, s) in &self.scenarios {
                let _ = writeln!(
                    out,
                    "{:<28} {:<10} {:>6} {:>9} {:>10} {}",
                    name,
                    s.technique.as_deref().unwrap_or("-"),
                    s.chains,
                    s.detected,
                    s.contained,
                    pct(share(s.contained, s.chains))
                );
            }
        }
        let noisy: Vec<_> = self
            .benign_scenarios
            .iter()
            .filter(|(_, s)| s.flagged > 0)
            .collect();
        if !noisy.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<28} {:>8} {:>8} {:>6} {:>10}",
                "benign with friction", "events", "flagged", "keys", "contained"
            );
            for (name, s) in noisy {
                let _ = writeln!(
                    out,
                    "{:<28} {:>8} {:>8} {:>6} {:>10}",
                    name, s.events, s.flagged, s.keys, s.keys_contained
                );
            }
        }
        out
    }
}

/// Result of [`evaluate`].
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub catalog: Catalog,
    pub outcome: Outcome,
    /// Lines that were not events (rejected); blank lines are not counted.
    pub errors: u64,
}

impl Evaluation {
    pub fn metrics(&self, filter: Filter) -> Metrics {
        Metrics::compute(&self.catalog, &self.outcome, filter)
    }
}

/// Decide every event of `corpus` as replay does and score the decisions.
pub fn evaluate(
    gate: Arc<Gate>,
    mapping: &MappingOptions,
    corpus: Corpus,
    threads: usize,
    split: SplitRule,
) -> Result<Evaluation> {
    let mut bridge = Bridge::new(Arc::clone(&gate), mapping.clone(), None);
    let mut catalog = Catalog::new(split);
    let mut outcome = Outcome::default();
    let mut clock = Timestamp::ZERO;
    let mut errors = 0u64;
    for_each_prepared(&gate, mapping, corpus, threads, |item| {
        match item {
            Item::Blank => {}
            Item::Error { .. } => errors += 1,
            Item::Event {
                prepared, label, ..
            } => {
                if let Some(t) = prepared.event.time {
                    clock = t;
                }
                let advance = bridge.advance(&prepared, clock);
                let event =
                    catalog.observe(label.as_ref(), &prepared.process_key, clock.as_nanos());
                outcome.fit(&catalog);
                outcome.record(&event, advance.resolution.kernel_action);
            }
        }
        Ok(())
    })?;
    Ok(Evaluation {
        catalog,
        outcome,
        errors,
    })
}
