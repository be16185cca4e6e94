//! `diff`: what would change if policy B replaced policy A.
//!
//! Two sources of decision pairs: one corpus decided under both policies
//! (each with its own bridge, exactly as `replay` would), or two decision
//! files written by `replay` (paired line by line). Either way the pairs go
//! through one [`DiffReport`].

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use scbe_core::membrane::ScanScratch;
use scbe_core::{
    prepare_line, Bridge, CellState, Gate, KernelAction, MappingOptions, PreparedLine, Timestamp,
};
use serde_json::{json, Value};

use crate::input::Corpus;
use crate::labelled::{for_each_line, Line};

/// Changed events kept for the side-by-side listing, at most.
pub const SHOWN_MAX: usize = 10_000;

/// One side's decision on an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub decision: String,
    pub kernel_action: KernelAction,
    pub cell_state: CellState,
    pub suspicion: f64,
}

/// One event decided on both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// 1-based line number (input line, or decision-file line).
    pub line: u64,
    pub process_key: String,
    pub operation: String,
    pub target: String,
    pub a: Side,
    pub b: Side,
}

/// The summary of a diff.
#[derive(Debug, Clone, Default)]
pub struct DiffReport {
    pub events: u64,
    /// Lines decided on one side only (rejected on the other), or rejected on both.
    pub unpaired: u64,
    pub action_changed: u64,
    pub decision_changed: u64,
    pub cell_changed: u64,
    /// `[a][b]` counts of kernel actions.
    pub actions: [[u64; 5]; 5],
    /// `[a][b]` counts of cell states.
    pub cells: [[u64; 4]; 4],
    keys_changed: HashSet<String>,
    keys_contained_a: HashSet<String>,
    keys_contained_b: HashSet<String>,
    pub shown: Vec<Pair>,
    pub show_max: usize,
}

impl DiffReport {
    pub fn new(show_max: usize) -> DiffReport {
        DiffReport {
            show_max: show_max.min(SHOWN_MAX),
            ..DiffReport::default()
        }
    }

    pub fn add(&mut self, pair: Pair) {
        self.events += 1;
        let (a, b) = (&pair.a, &pair.b);
        self.actions[a.kernel_action as usize][b.kernel_action as usize] += 1;
        self.cells[a.cell_state as usize][b.cell_state as usize] += 1;
        if a.kernel_action.is_containment() {
            self.keys_contained_a.insert(pair.process_key.clone());
        }
        if b.kernel_action.is_containment() {
            self.keys_contained_b.insert(pair.process_key.clone());
        }
        let action = a.kernel_action != b.kernel_action;
        let cell = a.cell_state != b.cell_state;
        let decision = a.decision != b.decision;
        self.action_changed += u64::from(action);
        self.cell_changed += u64::from(cell);
        self.decision_changed += u64::from(decision);
        if action {
            self.keys_changed.insert(pair.process_key.clone());
        }
        if (action || cell || decision) && self.shown.len() < self.show_max {
            self.shown.push(pair);
        }
    }

    /// Anything that an operator would see: a kernel action, decision or cell state.
    pub fn changed(&self) -> bool {
        self.action_changed + self.cell_changed + self.decision_changed > 0
    }

    pub fn keys_changed(&self) -> usize {
        self.keys_changed.len()
    }

    /// Keys contained under B but never under A, and the reverse.
    pub fn containment_changes(&self) -> (usize, usize) {
        (
            self.keys_contained_b
                .difference(&self.keys_contained_a)
                .count(),
            self.keys_contained_a
                .difference(&self.keys_contained_b)
                .count(),
        )
    }

    pub fn to_json(&self) -> Value {
        let mut transitions = BTreeMap::new();
        for a in KernelAction::ALL {
            for b in KernelAction::ALL {
                let n = self.actions[a as usize][b as usize];
                if a != b && n > 0 {
                    transitions.insert(format!("{a}->{b}"), n);
                }
            }
        }
        let mut cells = BTreeMap::new();
        for a in CellState::ALL {
            for b in CellState::ALL {
                let n = self.cells[a as usize][b as usize];
                if a != b && n > 0 {
                    cells.insert(format!("{a}->{b}"), n);
                }
            }
        }
        let matrix: serde_json::Map<String, Value> = KernelAction::ALL
            .iter()
            .map(|a| {
                let row: serde_json::Map<String, Value> = KernelAction::ALL
                    .iter()
                    .map(|b| {
                        (
                            b.as_str().to_owned(),
                            self.actions[*a as usize][*b as usize].into(),
                        )
                    })
                    .collect();
                (a.as_str().to_owned(), Value::Object(row))
            })
            .collect();
        let (newly, no_longer) = self.containment_changes();
        json!({
            "changed": self.changed(),
            "events": self.events,
            "unpaired": self.unpaired,
            "events_action_changed": self.action_changed,
            "events_decision_changed": self.decision_changed,
            "events_cell_state_changed": self.cell_changed,
            "keys_action_changed": self.keys_changed(),
            "keys_newly_contained": newly,
            "keys_no_longer_contained": no_longer,
            "action_transitions": transitions,
            "cell_state_transitions": cells,
            "action_matrix": matrix,
            "first_changed": self.shown.iter().map(|p| json!({
                "line": p.line,
                "process_key": p.process_key,
                "operation": p.operation,
                "target": p.target,
                "a": side_json(&p.a),
                "b": side_json(&p.b),
            })).collect::<Vec<_>>(),
        })
    }

    pub fn to_table(&self, name_a: &str, name_b: &str) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let (newly, no_longer) = self.containment_changes();
        let _ = writeln!(out, "A = {name_a}\nB = {name_b}");
        let _ = writeln!(
            out,
            "events compared {}   (unpaired lines {})",
            self.events, self.unpaired
        );
        let _ = writeln!(
            out,
            "kernel action changed on {} events, {} process keys",
            self.action_changed,
            self.keys_changed()
        );
        let _ = writeln!(
            out,
            "decision changed on {} events; cell state changed on {} events",
            self.decision_changed, self.cell_changed
        );
        let _ = writeln!(
            out,
            "process keys contained under B only: {newly}; under A only: {no_longer}"
        );
        let _ = writeln!(out, "\nkernel action transitions (rows A, columns B):");
        let _ = write!(out, "{:>12}", "");
        for b in KernelAction::ALL {
            let _ = write!(out, " {:>11}", b.as_str());
        }
        out.push('\n');
        for a in KernelAction::ALL {
            let _ = write!(out, "{:>12}", a.as_str());
            for b in KernelAction::ALL {
                let _ = write!(out, " {:>11}", self.actions[a as usize][b as usize]);
            }
            out.push('\n');
        }
        let cells: Vec<String> = CellState::ALL
            .iter()
            .flat_map(|a| CellState::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a != b && self.cells[*a as usize][*b as usize] > 0)
            .map(|(a, b)| format!("{a}->{b} {}", self.cells[a as usize][b as usize]))
            .collect();
        let _ = writeln!(
            out,
            "\ncell state transitions: {}",
            if cells.is_empty() {
                "none".to_owned()
            } else {
                cells.join(", ")
            }
        );
        if !self.shown.is_empty() {
            let _ = writeln!(
                out,
                "\nfirst {} changed events (A | B: action cell decision suspicion):",
                self.shown.len()
            );
            for p in &self.shown {
                let target: String = p.target.chars().take(48).collect();
                let _ = writeln!(
                    out,
                    "line {:>7} {} {} {}\n    A {:<10} {:<9} {:<10} {:.4}  |  B {:<10} {:<9} {:<10} {:.4}",
                    p.line, p.process_key, p.operation, target,
                    p.a.kernel_action.as_str(), p.a.cell_state.as_str(), p.a.decision, p.a.suspicion,
                    p.b.kernel_action.as_str(), p.b.cell_state.as_str(), p.b.decision, p.b.suspicion,
                );
            }
        }
        out
    }
}

fn side_json(s: &Side) -> Value {
    json!({
        "kernel_action": s.kernel_action.as_str(),
        "cell_state": s.cell_state.as_str(),
        "decision": s.decision,
        "suspicion": (s.suspicion * 1e4).round() / 1e4,
    })
}

/// Decide `corpus` under both gates (each with its own mapping and bridge).
pub fn diff_policies(
    gate_a: Arc<Gate>,
    gate_b: Arc<Gate>,
    host_default: &str,
    corpus: Corpus,
    threads: usize,
    report: &mut DiffReport,
) -> Result<()> {
    let mapping = |gate: &Gate| MappingOptions {
        host_default: host_default.to_owned(),
        real_network_fields: gate.policy().real_network_fields,
    };
    let (mapping_a, mapping_b) = (mapping(&gate_a), mapping(&gate_b));
    let mut bridge_a = Bridge::new(Arc::clone(&gate_a), mapping_a.clone(), None);
    let mut bridge_b = Bridge::new(Arc::clone(&gate_b), mapping_b.clone(), None);
    let (mut clock_a, mut clock_b) = (Timestamp::ZERO, Timestamp::ZERO);
    for_each_line(
        corpus,
        threads,
        |line: Line<'_>, scratch: &mut ScanScratch| {
            if line.full_len > scbe_core::limits::LINE_BYTES_MAX {
                return (line.line_no, None, None);
            }
            let a = prepare_line(&gate_a, &mapping_a, line.raw, scratch);
            let b = prepare_line(&gate_b, &mapping_b, line.raw, scratch);
            (line.line_no, Some(a), Some(b))
        },
        |(line_no, a, b)| {
            let a = match a {
                Some(PreparedLine::Event(p)) => Some(p),
                Some(PreparedLine::Blank) => return Ok(()),
                _ => None,
            };
            let b = match b {
                Some(PreparedLine::Event(p)) => Some(p),
                _ => None,
            };
            let side = |bridge: &mut Bridge, clock: &mut Timestamp, p: &scbe_core::Prepared| {
                if let Some(t) = p.event.time {
                    *clock = t;
                }
                let advance = bridge.advance(p, *clock);
                Side {
                    decision: p.assessment.decision.as_str().to_owned(),
                    kernel_action: advance.resolution.kernel_action,
                    cell_state: advance.resolution.cell_state,
                    suspicion: p.assessment.suspicion,
                }
            };
            match (a, b) {
                (Some(a), Some(b)) => {
                    let side_a = side(&mut bridge_a, &mut clock_a, &a);
                    let side_b = side(&mut bridge_b, &mut clock_b, &b);
                    report.add(Pair {
                        line: line_no,
                        process_key: a.process_key.clone(),
                        operation: a.event.operation.clone(),
                        target: a.event.target.clone(),
                        a: side_a,
                        b: side_b,
                    });
                }
                (Some(a), None) => {
                    side(&mut bridge_a, &mut clock_a, &a);
                    report.unpaired += 1;
                }
                (None, Some(b)) => {
                    side(&mut bridge_b, &mut clock_b, &b);
                    report.unpaired += 1;
                }
                (None, None) => report.unpaired += 1,
            }
            Ok(())
        },
    )
}

fn parse_record(
    line: &str,
    path: &str,
    line_no: u64,
) -> Result<Option<(String, String, String, Side)>> {
    let value: Value = serde_json::from_str(line)
        .with_context(|| format!("{path}:{line_no}: not a JSON decision record"))?;
    if value.get("error").is_some() {
        return Ok(None);
    }
    let text = |k: &str| -> Result<String> {
        match value.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => bail!("{path}:{line_no}: decision record has no {k:?}"),
        }
    };
    let action = text("kernel_action")?;
    let cell = text("cell_state")?;
    let side = Side {
        decision: text("decision")?,
        kernel_action: KernelAction::from_name(&action)
            .with_context(|| format!("{path}:{line_no}: unknown kernel_action {action:?}"))?,
        cell_state: CellState::from_name(&cell)
            .with_context(|| format!("{path}:{line_no}: unknown cell_state {cell:?}"))?,
        suspicion: value
            .get("suspicion")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
    };
    let key = format!(
        "{}:{}:{}",
        text("host")?,
        text("pid")?,
        text("process_name")?
    );
    Ok(Some((
        key,
        text("operation").unwrap_or_default(),
        text("target").unwrap_or_default(),
        side,
    )))
}

/// Pair two decision files (replay output) line by line.
pub fn diff_decision_files(path_a: &str, path_b: &str, report: &mut DiffReport) -> Result<()> {
    let open = |p: &str| -> Result<Box<dyn BufRead>> {
        let corpus = crate::input::open_corpus(p)?;
        Ok(Box::new(BufReader::new(corpus.reader)))
    };
    let (mut a, mut b) = (open(path_a)?, open(path_b)?);
    let (mut la, mut lb) = (String::new(), String::new());
    let mut line_no = 0u64;
    loop {
        la.clear();
        lb.clear();
        let (na, nb) = (a.read_line(&mut la)?, b.read_line(&mut lb)?);
        if na == 0 && nb == 0 {
            return Ok(());
        }
        line_no += 1;
        if na == 0 || nb == 0 {
            bail!(
                "decision files differ in length: {} ends at line {line_no}",
                if na == 0 { path_a } else { path_b }
            );
        }
        let (ta, tb) = (la.trim(), lb.trim());
        if ta.is_empty() && tb.is_empty() {
            continue;
        }
        let ra = parse_record(ta, path_a, line_no)?;
        let rb = parse_record(tb, path_b, line_no)?;
        match (ra, rb) {
            (Some((key, operation, target, side_a)), Some((key_b, _, _, side_b))) => {
                anyhow::ensure!(
                    key == key_b,
                    "decision files are not paired: line {line_no} is {key} in {path_a} but {key_b} in {path_b}"
                );
                report.add(Pair {
                    line: line_no,
                    process_key: key,
                    operation,
                    target,
                    a: side_a,
                    b: side_b,
                });
            }
            _ => report.unpaired += 1,
        }
    }
}
