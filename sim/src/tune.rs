//! Threshold tuning: search policy numbers over a labelled corpus.
//!
//! The expensive, weight-independent work (parsing, pattern scans, integrity
//! checks) runs once per event under the base policy and is kept as a
//! [`FeatureTable`]: one compact row per event. Each event's scan and
//! integrity findings are interned into a *profile*; a grid point prices each
//! profile once (a few hundred of them), then replays the rows in input order
//! with [`scbe_core::gate::resolve_with`] and a per-key antibody vector.
//!
//! Exactness: the suspicion is the same expression as
//! [`scbe_core::gate::assess_with`] evaluated in the same order, so it is
//! bit-identical; and which keys the bounded table has forgotten depends only
//! on the key sequence, so it is computed once (`fresh`). Tests check every
//! decision against the [`scbe_core::Bridge`].

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use scbe_core::gate::{decision_for, resolve_with, Assessment, EventFeatures};
use scbe_core::integrity::{integrity_risk, HashState, IntegrityFeatures};
use scbe_core::membrane::{scan_risk, ScanHits};
use scbe_core::turnstile::{antibody_load, clamp01, decay_factor, membrane_stress, Decision};
use scbe_core::{Gate, KernelAction, MappingOptions, Policy, Timestamp};

use crate::evaluate::{Catalog, EventRef, Filter, Metrics, Outcome, SplitRule};
use crate::input::Corpus;
use crate::labelled::{for_each_prepared, Item};
use crate::rng::Rng;

/// Most grid points one run may evaluate.
pub const GRID_POINTS_MAX: usize = 200_000;
/// Most distinct scan/integrity profiles a table may hold.
pub const PROFILES_MAX: usize = 1 << 20;

/// The numbers a grid may vary. Patterns stay those of the base policy.
pub const PARAMS: &[&str] = &[
    "decision.scan_weight",
    "decision.integrity_weight",
    "decision.geometry_weight",
    "decision.deny",
    "decision.escalate",
    "decision.quarantine",
    "decision.geometry_base",
    "decision.geometry_slope",
    "turnstile.half_life_events",
    "turnstile.membrane_threshold",
    "turnstile.honeypot_stress",
    "turnstile.honeypot_antibody",
    "cell.necrotic",
    "cell.inflamed",
    "cell.primed",
    "scan.prompt_weight",
    "scan.prompt_cap",
    "scan.malware_weight",
    "scan.malware_cap",
    "scan.link_weight",
    "scan.link_cap",
    "integrity.unknown_operation_risk",
    "integrity.untrusted_signer_risk",
    "integrity.missing_sha256_risk",
    "integrity.invalid_sha256_length_risk",
    "integrity.sensitive_target_risk",
    "integrity.parent_child_risk",
];

/// A mutable reference to the number named `name` (`integrity.operation_risk.OP` too).
fn param_mut<'p>(policy: &'p mut Policy, name: &str) -> Option<&'p mut f64> {
    if let Some(op) = name.strip_prefix("integrity.operation_risk.") {
        return policy
            .integrity
            .operation_risk
            .iter_mut()
            .find(|(o, _)| o == op)
            .map(|(_, r)| r);
    }
    let d = &mut policy.decision;
    let t = &mut policy.turnstile;
    let c = &mut policy.cell;
    let s = &mut policy.scan;
    let i = &mut policy.integrity;
    Some(match name {
        "decision.scan_weight" => &mut d.scan_weight,
        "decision.integrity_weight" => &mut d.integrity_weight,
        "decision.geometry_weight" => &mut d.geometry_weight,
        "decision.deny" => &mut d.deny,
        "decision.escalate" => &mut d.escalate,
        "decision.quarantine" => &mut d.quarantine,
        "decision.geometry_base" => &mut d.geometry_base,
        "decision.geometry_slope" => &mut d.geometry_slope,
        "turnstile.half_life_events" => &mut t.half_life_events,
        "turnstile.membrane_threshold" => &mut t.membrane_threshold,
        "turnstile.honeypot_stress" => &mut t.honeypot_stress,
        "turnstile.honeypot_antibody" => &mut t.honeypot_antibody,
        "cell.necrotic" => &mut c.necrotic,
        "cell.inflamed" => &mut c.inflamed,
        "cell.primed" => &mut c.primed,
        "scan.prompt_weight" => &mut s.prompt_weight,
        "scan.prompt_cap" => &mut s.prompt_cap,
        "scan.malware_weight" => &mut s.malware_weight,
        "scan.malware_cap" => &mut s.malware_cap,
        "scan.link_weight" => &mut s.link_weight,
        "scan.link_cap" => &mut s.link_cap,
        "integrity.unknown_operation_risk" => &mut i.unknown_operation_risk,
        "integrity.untrusted_signer_risk" => &mut i.untrusted_signer_risk,
        "integrity.missing_sha256_risk" => &mut i.missing_sha256_risk,
        "integrity.invalid_sha256_length_risk" => &mut i.invalid_sha256_length_risk,
        "integrity.sensitive_target_risk" => &mut i.sensitive_target_risk,
        "integrity.parent_child_risk" => &mut i.parent_child_risk,
        _ => return None,
    })
}

/// The value of a tunable number in `policy`.
pub fn get_param(policy: &Policy, name: &str) -> Option<f64> {
    let mut copy = policy.clone();
    param_mut(&mut copy, name).map(|v| *v)
}

fn check_param(base: &Policy, name: &str) -> Result<()> {
    if get_param(base, name).is_none() {
        bail!(
            "grid: unknown parameter {name:?} (expected one of {}, or integrity.operation_risk.OP)",
            PARAMS.join(", ")
        );
    }
    Ok(())
}

/// A grid point: the parameters it sets (the rest is the base policy).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub params: Vec<(String, f64)>,
}

impl Point {
    pub fn apply(&self, base: &Policy) -> Policy {
        let mut policy = base.clone();
        for (name, value) in &self.params {
            if let Some(slot) = param_mut(&mut policy, name) {
                *slot = *value;
            }
        }
        policy
    }
}

/// A search space: a Cartesian grid plus random samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grid {
    /// Parameter → values; every combination is a point.
    pub axes: Vec<(String, Vec<f64>)>,
    /// Random points drawn uniformly from these ranges.
    pub random_samples: usize,
    pub random_seed: u64,
    pub random_ranges: Vec<(String, f64, f64)>,
}

impl Grid {
    /// Parse a grid file:
    ///
    /// ```toml
    /// [grid]
    /// "decision.quarantine" = [0.2, 0.25, 0.3]
    /// [random]
    /// samples = 200
    /// seed = 1
    /// [random.ranges]
    /// "decision.scan_weight" = [0.3, 0.9]
    /// ```
    pub fn parse(text: &str) -> Result<Grid> {
        let value: toml::Value = toml::from_str(text).context("grid: not valid TOML")?;
        let table = value.as_table().context("grid: expected a table")?;
        let mut grid = Grid::default();
        let number = |v: &toml::Value, what: &str| -> Result<f64> {
            match v {
                toml::Value::Float(f) => Ok(*f),
                toml::Value::Integer(i) => Ok(*i as f64),
                other => bail!("grid: {what}: expected a number, got {other}"),
            }
        };
        for (section, body) in table {
            match section.as_str() {
                "grid" => {
                    let axes = body.as_table().context("grid: [grid] must be a table")?;
                    for (name, values) in axes {
                        let list = values
                            .as_array()
                            .with_context(|| format!("grid: {name} must be a list of numbers"))?;
                        anyhow::ensure!(!list.is_empty(), "grid: {name} has no values");
                        let values = list
                            .iter()
                            .map(|v| number(v, name))
                            .collect::<Result<Vec<f64>>>()?;
                        grid.axes.push((name.clone(), values));
                    }
                }
                "random" => {
                    let random = body.as_table().context("grid: [random] must be a table")?;
                    for (key, v) in random {
                        match key.as_str() {
                            "samples" => {
                                grid.random_samples = v.as_integer().filter(|n| *n >= 0).context(
                                    "grid: random.samples must be a non-negative integer",
                                )? as usize
                            }
                            "seed" => {
                                grid.random_seed = v
                                    .as_integer()
                                    .context("grid: random.seed must be an integer")?
                                    as u64
                            }
                            "ranges" => {
                                let ranges = v
                                    .as_table()
                                    .context("grid: [random.ranges] must be a table")?;
                                for (name, range) in ranges {
                                    let pair = range
                                        .as_array()
                                        .filter(|a| a.len() == 2)
                                        .with_context(|| {
                                            format!("grid: random range {name} must be [min, max]")
                                        })?;
                                    let (lo, hi) =
                                        (number(&pair[0], name)?, number(&pair[1], name)?);
                                    anyhow::ensure!(
                                        lo <= hi,
                                        "grid: random range {name}: min {lo} > max {hi}"
                                    );
                                    grid.random_ranges.push((name.clone(), lo, hi));
                                }
                            }
                            other => bail!("grid: unknown key random.{other}"),
                        }
                    }
                }
                other => bail!("grid: unknown section [{other}] (expected [grid] and [random])"),
            }
        }
        Ok(grid)
    }

    /// The built-in grid: blend weights, quarantine threshold and half-life on
    /// a grid; everything else (cell, honeypot and membrane thresholds too)
    /// sampled at random. 324 + 700 = 1,024 points.
    pub fn default_grid() -> Grid {
        let axis = |name: &str, values: &[f64]| (name.to_owned(), values.to_vec());
        Grid {
            axes: vec![
                axis("decision.scan_weight", &[0.5, 0.65, 0.8]),
                axis("decision.integrity_weight", &[0.35, 0.5, 0.65]),
                axis("decision.geometry_weight", &[0.15, 0.3]),
                axis("decision.quarantine", &[0.25, 0.3, 0.35, 0.4, 0.45, 0.5]),
                axis("turnstile.half_life_events", &[6.0, 12.0, 24.0]),
            ],
            random_samples: 700,
            random_seed: 1,
            random_ranges: vec![
                ("decision.scan_weight".into(), 0.3, 0.9),
                ("decision.integrity_weight".into(), 0.2, 0.8),
                ("decision.geometry_weight".into(), 0.0, 0.4),
                ("decision.quarantine".into(), 0.2, 0.6),
                ("decision.escalate".into(), 0.5, 0.8),
                ("decision.deny".into(), 0.8, 0.95),
                ("turnstile.half_life_events".into(), 3.0, 48.0),
                ("turnstile.membrane_threshold".into(), 0.9, 0.995),
                ("turnstile.honeypot_stress".into(), 0.7, 0.99),
                ("turnstile.honeypot_antibody".into(), 0.6, 0.95),
                ("cell.necrotic".into(), 0.8, 0.98),
                ("cell.inflamed".into(), 0.55, 0.85),
                ("cell.primed".into(), 0.25, 0.5),
                ("scan.malware_weight".into(), 0.15, 0.5),
            ],
        }
    }

    /// Every point, in a fixed order: the grid (last axis fastest), then the
    /// random samples.
    pub fn points(&self, base: &Policy) -> Result<Vec<Point>> {
        for (name, _) in &self.axes {
            check_param(base, name)?;
        }
        for (name, _, _) in &self.random_ranges {
            check_param(base, name)?;
        }
        let grid_points = self
            .axes
            .iter()
            .try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()))
            .unwrap_or(usize::MAX);
        let total = grid_points.saturating_add(self.random_samples);
        anyhow::ensure!(
            total <= GRID_POINTS_MAX,
            "grid: {total} points exceed the limit of {GRID_POINTS_MAX}"
        );
        let mut points = Vec::with_capacity(total);
        if !self.axes.is_empty() {
            // An odometer over the axes, last axis fastest.
            let mut index = vec![0usize; self.axes.len()];
            'points: loop {
                points.push(Point {
                    params: self
                        .axes
                        .iter()
                        .zip(&index)
                        .map(|((name, values), i)| (name.clone(), values[*i]))
                        .collect(),
                });
                let mut axis = self.axes.len();
                loop {
                    if axis == 0 {
                        break 'points;
                    }
                    axis -= 1;
                    index[axis] += 1;
                    if index[axis] < self.axes[axis].1.len() {
                        continue 'points;
                    }
                    index[axis] = 0;
                }
            }
        }
        let mut rng = Rng::new(self.random_seed);
        for _ in 0..self.random_samples {
            let mut params: Vec<(String, f64)> = self
                .random_ranges
                .iter()
                .map(|(name, lo, hi)| {
                    // Three decimals: readable policies, and ties are real ties.
                    let v = rng.range_f64(*lo, *hi);
                    (name.clone(), (v * 1000.0).round() / 1000.0)
                })
                .collect();
            order_thresholds(base, &mut params);
            points.push(Point { params });
        }
        Ok(points)
    }
}

/// Random samples may draw `quarantine > escalate`: reorder each threshold
/// triple so that the point is a valid policy.
fn order_thresholds(base: &Policy, params: &mut Vec<(String, f64)>) {
    for triple in [
        ["decision.deny", "decision.escalate", "decision.quarantine"],
        ["cell.necrotic", "cell.inflamed", "cell.primed"],
    ] {
        if !triple.iter().any(|n| params.iter().any(|(p, _)| p == n)) {
            continue;
        }
        let mut values: Vec<f64> = triple
            .iter()
            .map(|n| {
                params
                    .iter()
                    .find(|(p, _)| p == n)
                    .map(|(_, v)| *v)
                    .or_else(|| get_param(base, n))
                    .unwrap_or(0.0)
            })
            .collect();
        values.sort_by(|a, b| b.total_cmp(a));
        for (name, value) in triple.iter().zip(values) {
            match params.iter_mut().find(|(p, _)| p == name) {
                Some(slot) => slot.1 = value,
                None => params.push(((*name).to_owned(), value)),
            }
        }
    }
}

/// What a tuning run optimizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// Maximize chain recall subject to benign containment ≤ limit; ties by
    /// lower friction, then lower containment.
    MaxRecall { containment_max: f64 },
    /// Maximize `recall − wc·containment − wf·friction`.
    Weighted { containment: f64, friction: f64 },
}

impl Objective {
    pub const DEFAULT: Objective = Objective::MaxRecall {
        containment_max: 0.01,
    };

    /// `max-recall`, `max-recall:0.005`, `weighted:10,1`.
    pub fn parse(text: &str) -> Result<Objective> {
        let (kind, arg) = text.split_once(':').unwrap_or((text, ""));
        let num = |s: &str| -> Result<f64> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .with_context(|| format!("objective {text:?}: {s:?} is not a non-negative number"))
        };
        match kind {
            "max-recall" => Ok(Objective::MaxRecall {
                containment_max: if arg.is_empty() { 0.01 } else { num(arg)? },
            }),
            "weighted" => {
                let (a, b) = arg.split_once(',').with_context(|| {
                    format!("objective {text:?}: expected weighted:CONTAINMENT,FRICTION")
                })?;
                Ok(Objective::Weighted {
                    containment: num(a)?,
                    friction: num(b)?,
                })
            }
            _ => {
                bail!("unknown objective {text:?} (expected max-recall[:LIMIT] or weighted:WC,WF)")
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Objective::MaxRecall { containment_max } => format!(
                "max chain recall s.t. benign containment <= {containment_max} (train), ties by lower friction"
            ),
            Objective::Weighted {
                containment,
                friction,
            } => format!("max chain recall - {containment}*containment - {friction}*friction (train)"),
        }
    }
}

/// The numbers a point is judged by, for one split.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Score {
    pub chains: u64,
    pub chains_contained: u64,
    pub chains_detected: u64,
    pub benign_events: u64,
    pub benign_flagged: u64,
    pub benign_keys: u64,
    pub benign_keys_contained: u64,
    pub ttc_events_median: Option<u64>,
}

impl Score {
    pub fn from_metrics(m: &Metrics) -> Score {
        Score {
            chains: m.chains,
            chains_contained: m.chains_contained,
            chains_detected: m.chains_detected,
            benign_events: m.benign_events,
            benign_flagged: m.benign_flagged,
            benign_keys: m.benign_keys,
            benign_keys_contained: m.benign_keys_contained,
            ttc_events_median: m.ttc_events_median,
        }
    }
    fn share(a: u64, b: u64) -> f64 {
        if b == 0 {
            0.0
        } else {
            a as f64 / b as f64
        }
    }
    pub fn chain_recall(&self) -> f64 {
        Score::share(self.chains_contained, self.chains)
    }
    pub fn detection_recall(&self) -> f64 {
        Score::share(self.chains_detected, self.chains)
    }
    pub fn benign_containment(&self) -> f64 {
        Score::share(self.benign_keys_contained, self.benign_keys)
    }
    pub fn benign_friction(&self) -> f64 {
        Score::share(self.benign_flagged, self.benign_events)
    }
}

/// One evaluated point.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// Index into the point list.
    pub index: usize,
    pub train: Score,
    pub test: Score,
}

/// Interned scan + integrity findings: everything the price of an event depends on.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub scan: ScanHits,
    pub integrity: IntegrityFeatures,
}

type ProfileKey = (u32, u32, u32, u32, bool, u8, u64, u64, u32);

fn profile_key(f: &EventFeatures) -> ProfileKey {
    let i = &f.integrity;
    (
        f.scan.prompt,
        f.scan.malware,
        f.scan.links,
        i.operation.map_or(u32::MAX, u32::from),
        i.untrusted_signer,
        match i.hash {
            HashState::Missing => 0,
            HashState::InvalidLength => 1,
            HashState::Present => 2,
        },
        i.sensitive_matches,
        i.pair_matches,
        i.n_pair_matches,
    )
}

/// The weight-independent part of a labelled corpus, one row per event.
#[derive(Debug, Clone)]
pub struct FeatureTable {
    pub base: Policy,
    pub catalog: Catalog,
    pub profiles: Vec<Profile>,
    pub profile: Vec<u32>,
    pub observed: Vec<f64>,
    pub events: Vec<EventRef>,
    /// The key had no stored load (first sight, or evicted since).
    pub fresh: Vec<bool>,
    pub errors: u64,
}

impl FeatureTable {
    /// Scan `corpus` once under `gate` (the base policy: its patterns are
    /// the ones every point uses).
    pub fn build(
        gate: &Gate,
        mapping: &MappingOptions,
        corpus: Corpus,
        threads: usize,
        split: SplitRule,
    ) -> Result<FeatureTable> {
        let mut table = FeatureTable {
            base: gate.policy().clone(),
            catalog: Catalog::new(split),
            profiles: Vec::new(),
            profile: Vec::new(),
            observed: Vec::new(),
            events: Vec::new(),
            fresh: Vec::new(),
            errors: 0,
        };
        let mut index: HashMap<ProfileKey, u32> = HashMap::new();
        let mut clock = Timestamp::ZERO;
        for_each_prepared(gate, mapping, corpus, threads, |item| {
            match item {
                Item::Blank => {}
                Item::Error { .. } => table.errors += 1,
                Item::Event {
                    prepared, label, ..
                } => {
                    if let Some(t) = prepared.event.time {
                        clock = t;
                    }
                    let f = &prepared.features;
                    let key = profile_key(f);
                    let id = match index.get(&key) {
                        Some(id) => *id,
                        None => {
                            anyhow::ensure!(
                                table.profiles.len() < PROFILES_MAX,
                                "more than {PROFILES_MAX} distinct feature profiles"
                            );
                            let id = table.profiles.len() as u32;
                            table.profiles.push(Profile {
                                scan: f.scan,
                                integrity: f.integrity,
                            });
                            index.insert(key, id);
                            id
                        }
                    };
                    table.profile.push(id);
                    table.observed.push(f.observed);
                    let event = table.catalog.observe(
                        label.as_ref(),
                        &prepared.process_key,
                        clock.as_nanos(),
                    );
                    table.events.push(event);
                }
            }
            Ok(())
        })?;
        table.fresh = fresh_flags(
            &table.events,
            table.catalog.keys.len(),
            table.base.state_capacity(),
        );
        Ok(table)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether `policy` can be scored from this table (same patterns and
    /// operation classes as the base).
    pub fn compatible(&self, policy: &Policy) -> bool {
        let (a, b) = (&self.base, policy);
        a.scan.prompt_patterns == b.scan.prompt_patterns
            && a.scan.malware_patterns == b.scan.malware_patterns
            && a.scan.link_pattern == b.scan.link_pattern
            && a.scan.link_exclusions == b.scan.link_exclusions
            && a.integrity.sensitive_targets == b.integrity.sensitive_targets
            && a.integrity.parent_child_pairs == b.integrity.parent_child_pairs
            && a.integrity.operation_risk.iter().map(|(o, _)| o).eq(b
                .integrity
                .operation_risk
                .iter()
                .map(|(o, _)| o))
            && a.state_capacity() == b.state_capacity()
    }

    /// Every event's kernel action under `policy`, in input order.
    pub fn decide(&self, policy: &Policy, mut each: impl FnMut(usize, KernelAction)) {
        assert!(
            self.compatible(policy),
            "policy patterns differ from the table's base"
        );
        let d = &policy.decision;
        let decay = decay_factor(1.0, policy.turnstile.half_life_events);
        // Same expression and order as `assess_with`: exact, not approximate.
        let parts: Vec<(f64, f64, f64)> = self
            .profiles
            .iter()
            .map(|p| {
                let s = scan_risk(p.scan, &policy.scan);
                let i = integrity_risk(&p.integrity, &policy.integrity);
                (s, i, d.scan_weight * s + d.integrity_weight * i)
            })
            .collect();
        let mut loads = vec![0.0f64; self.catalog.keys.len()];
        let threshold = policy.turnstile.membrane_threshold.clamp(0.0, 0.999_999);
        for i in 0..self.events.len() {
            let observed = self.observed[i];
            let (scan, integrity, partial) = parts[self.profile[i] as usize];
            let suspicion = clamp01(partial + d.geometry_weight * observed);
            let geometry = clamp01(observed.max(d.geometry_base + d.geometry_slope * suspicion));
            let decision = decision_for(suspicion, d);
            let assessment = Assessment {
                scan_risk: scan,
                integrity_risk: integrity,
                suspicion,
                geometry,
                decision,
            };
            let key = self.events[i].key as usize;
            let prev = if self.fresh[i] { 0.0 } else { loads[key] };
            // Fast path for the common case, with the core's own functions:
            // an ALLOW decision whose cell signal stays below INFLAMED is
            // ALLOW whatever the turnstile (SPEC §5–6). Anything else goes
            // through `resolve_with`. Tests compare every decision with the bridge.
            if decision == Decision::Allow {
                let antibody_now = antibody_load(prev, suspicion, decay);
                // `membrane_stress` is 0 at or below the (clamped) threshold.
                let stress = if geometry <= threshold {
                    0.0
                } else {
                    membrane_stress(geometry, policy.turnstile.membrane_threshold)
                };
                let signal = clamp01(antibody_now).max(clamp01(stress)).max(suspicion);
                if signal < policy.cell.inflamed && signal < policy.cell.necrotic {
                    loads[key] = antibody_now;
                    each(i, KernelAction::Allow);
                    continue;
                }
            }
            let resolution = resolve_with(policy, decay, &assessment, prev);
            loads[key] = resolution.antibody_now;
            each(i, resolution.kernel_action);
        }
    }

    /// The outcome of `policy` over the whole table.
    pub fn outcome(&self, policy: &Policy) -> Outcome {
        let mut outcome = Outcome::for_catalog(&self.catalog);
        self.decide(policy, |i, action| outcome.record(&self.events[i], action));
        outcome
    }

    pub fn metrics(&self, policy: &Policy, filter: Filter) -> Metrics {
        Metrics::compute(&self.catalog, &self.outcome(policy), filter)
    }
}

/// For each event, whether its key had no stored load: the bounded table
/// (SPEC §7) stores every event's key, so which keys it holds depends on the
/// key sequence and the capacity only — never on the policy's numbers.
pub fn fresh_flags(events: &[EventRef], n_keys: usize, capacity: usize) -> Vec<bool> {
    let mut present = vec![false; n_keys];
    let mut order = std::collections::VecDeque::new();
    events
        .iter()
        .map(|e| {
            let k = e.key as usize;
            if present[k] {
                return false;
            }
            if order.len() >= capacity {
                if let Some(old) = order.pop_front() {
                    present[old] = false;
                }
            }
            present[k] = true;
            order.push_back(k);
            true
        })
        .collect()
}

/// Points not dominated on the training split: no other point has recall ≥,
/// containment ≤ and friction ≤ with one of them strict. Sorted by containment,
/// then friction, then recall descending.
pub fn pareto_front(results: &[Evaluated]) -> Vec<usize> {
    let key = |r: &Evaluated| {
        (
            r.train.chain_recall(),
            r.train.benign_containment(),
            r.train.benign_friction(),
        )
    };
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, ca, fa) = key(&results[a]);
        let (rb, cb, fb) = key(&results[b]);
        rb.total_cmp(&ra)
            .then(ca.total_cmp(&cb))
            .then(fa.total_cmp(&fb))
            .then(results[a].index.cmp(&results[b].index))
    });
    let mut front: Vec<usize> = Vec::new();
    let mut last: Option<(f64, f64, f64)> = None;
    for i in order {
        let (r, c, f) = key(&results[i]);
        // Identical scores: keep the first (lowest point index) only.
        if last == Some((r, c, f)) {
            continue;
        }
        let dominated = front.iter().any(|&j| {
            let (rj, cj, fj) = key(&results[j]);
            rj >= r && cj <= c && fj <= f
        });
        if !dominated {
            front.push(i);
            last = Some((r, c, f));
        }
    }
    front.sort_by(|&a, &b| {
        let (ra, ca, fa) = key(&results[a]);
        let (rb, cb, fb) = key(&results[b]);
        ca.total_cmp(&cb)
            .then(fa.total_cmp(&fb))
            .then(rb.total_cmp(&ra))
    });
    front
}

/// The best point under `objective` (on the training split); `None` for no points.
/// The flag tells whether a `MaxRecall` constraint could be met.
pub fn choose(results: &[Evaluated], objective: Objective) -> Option<(usize, bool)> {
    let better = |a: &Evaluated, b: &Evaluated| -> std::cmp::Ordering {
        let (ta, tb) = (&a.train, &b.train);
        let primary = match objective {
            Objective::MaxRecall { .. } => ta.chain_recall().total_cmp(&tb.chain_recall()),
            Objective::Weighted {
                containment,
                friction,
            } => {
                let s = |t: &Score| {
                    t.chain_recall()
                        - containment * t.benign_containment()
                        - friction * t.benign_friction()
                };
                s(ta).total_cmp(&s(tb))
            }
        };
        primary
            .then(tb.benign_friction().total_cmp(&ta.benign_friction()))
            .then(tb.benign_containment().total_cmp(&ta.benign_containment()))
            .then(b.index.cmp(&a.index))
    };
    match objective {
        Objective::MaxRecall { containment_max } => {
            let feasible = results
                .iter()
                .enumerate()
                .filter(|(_, r)| r.train.benign_containment() <= containment_max)
                .max_by(|(_, a), (_, b)| better(a, b));
            match feasible {
                Some((i, _)) => Some((i, true)),
                None => results
                    .iter()
                    .enumerate()
                    .min_by(|(_, a), (_, b)| {
                        a.train
                            .benign_containment()
                            .total_cmp(&b.train.benign_containment())
                            .then(better(b, a))
                    })
                    .map(|(i, _)| (i, false)),
            }
        }
        Objective::Weighted { .. } => results
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| better(a, b))
            .map(|(i, _)| (i, true)),
    }
}

/// Result of [`tune`].
#[derive(Debug, Clone)]
pub struct Tuning {
    pub points: Vec<Point>,
    /// Points that are not valid policies (skipped), by index.
    pub invalid: Vec<usize>,
    pub results: Vec<Evaluated>,
    /// Indices into `results`.
    pub front: Vec<usize>,
    /// Index into `results`, and whether the objective's constraint was met.
    pub chosen: Option<(usize, bool)>,
    pub scoring_seconds: f64,
}

/// Score every point of `points` over `table`, in parallel.
pub fn tune(
    table: &FeatureTable,
    points: Vec<Point>,
    objective: Objective,
    threads: usize,
) -> Result<Tuning> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("scbe-tune-{i}"))
        .build()
        .context("cannot start the thread pool")?;
    let started = std::time::Instant::now();
    let scored: Vec<Option<Evaluated>> = pool.install(|| {
        points
            .par_iter()
            .enumerate()
            .map(|(index, point)| {
                let policy = point.apply(&table.base);
                scbe_core::policy_toml::validate(&policy).ok()?;
                let outcome = table.outcome(&policy);
                Some(Evaluated {
                    index,
                    train: Score::from_metrics(&Metrics::compute(
                        &table.catalog,
                        &outcome,
                        Filter::Train,
                    )),
                    test: Score::from_metrics(&Metrics::compute(
                        &table.catalog,
                        &outcome,
                        Filter::Test,
                    )),
                })
            })
            .collect()
    });
    let scoring_seconds = started.elapsed().as_secs_f64();
    let invalid = scored
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| i)
        .collect();
    let results: Vec<Evaluated> = scored.into_iter().flatten().collect();
    let front = pareto_front(&results);
    let chosen = choose(&results, objective);
    Ok(Tuning {
        points,
        invalid,
        results,
        front,
        chosen,
        scoring_seconds,
    })
}

/// Reference metrics for a table whose patterns may differ from the
/// reference's: scored from the table when compatible, else by a second pass.
pub fn reference_scores(
    table: &FeatureTable,
    reference: impl FnOnce() -> Result<(Metrics, Metrics)>,
) -> Result<(Score, Score)> {
    let policy = Policy::reference();
    if table.compatible(&policy) {
        let outcome = table.outcome(&policy);
        return Ok((
            Score::from_metrics(&Metrics::compute(&table.catalog, &outcome, Filter::Train)),
            Score::from_metrics(&Metrics::compute(&table.catalog, &outcome, Filter::Test)),
        ));
    }
    let (train, test) = reference()?;
    Ok((Score::from_metrics(&train), Score::from_metrics(&test)))
}

/// An SVG scatter of the front: chain recall against benign containment
/// (training split), every point in grey, the front in blue, the reference
/// (red) and the chosen point (green) marked.
pub fn plot_svg(tuning: &Tuning, reference: &Score, title: &str) -> String {
    use std::fmt::Write as _;
    let (w, h) = (760.0f64, 520.0f64);
    let (left, right, top, bottom) = (70.0, 180.0, 40.0, 60.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let xmax = tuning
        .results
        .iter()
        .map(|r| r.train.benign_containment())
        .chain([reference.benign_containment(), 0.01])
        .fold(0.0f64, f64::max)
        * 1.05;
    let x = |v: f64| left + pw * (v / xmax);
    let y = |v: f64| top + ph * (1.0 - v);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        xml_escape(title)
    );
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    for i in 0..=5 {
        let v = f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.1}</text>"##,
            left + pw,
            left - 6.0,
            y(v) + 4.0,
            yy = y(v)
        );
        let xv = xmax * v;
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{top}" y2="{}" stroke="#ddd"/><text x="{xx:.1}" y="{}" text-anchor="middle">{:.2}%</text>"##,
            top + ph,
            top + ph + 16.0,
            xv * 100.0,
            xx = x(xv)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">benign containment (share of benign process keys contained, train)</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20,{}) rotate(-90)" text-anchor="middle">chain recall (train)</text>"#,
        top + ph / 2.0
    );
    for r in &tuning.results {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#bbb"/>"##,
            x(r.train.benign_containment()),
            y(r.train.chain_recall())
        );
    }
    let mut path = String::new();
    for (n, &i) in tuning.front.iter().enumerate() {
        let r = &tuning.results[i];
        let _ = write!(
            path,
            "{}{:.1},{:.1} ",
            if n == 0 { "M" } else { "L" },
            x(r.train.benign_containment()),
            y(r.train.chain_recall())
        );
    }
    let _ = writeln!(
        s,
        r##"<path d="{path}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>"##
    );
    for &i in &tuning.front {
        let r = &tuning.results[i];
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#1f77b4"/>"##,
            x(r.train.benign_containment()),
            y(r.train.chain_recall())
        );
    }
    let (rx, ry) = (
        x(reference.benign_containment()),
        y(reference.chain_recall()),
    );
    let _ = writeln!(
        s,
        r##"<path d="M{rx:.1},{:.1} L{:.1},{ry:.1} L{rx:.1},{:.1} L{:.1},{ry:.1} Z" fill="#d62728"/>"##,
        ry - 7.0,
        rx + 7.0,
        ry + 7.0,
        rx - 7.0
    );
    if let Some((c, _)) = tuning.chosen {
        let r = &tuning.results[c];
        let (cx, cy) = (x(r.train.benign_containment()), y(r.train.chain_recall()));
        let _ = writeln!(
            s,
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="7" fill="none" stroke="#2ca02c" stroke-width="3"/>"##
        );
    }
    let lx = left + pw + 16.0;
    for (n, (color, text)) in [
        ("#bbb", "grid point"),
        ("#1f77b4", "Pareto front"),
        ("#d62728", "reference policy"),
        ("#2ca02c", "chosen"),
    ]
    .iter()
    .enumerate()
    {
        let ly = top + 10.0 + 22.0 * n as f64;
        let _ = writeln!(
            s,
            r#"<circle cx="{lx}" cy="{ly}" r="5" fill="{color}"/><text x="{}" y="{}">{text}</text>"#,
            lx + 12.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
