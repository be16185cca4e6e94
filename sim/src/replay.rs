//! Parallel, byte-deterministic replay of a Falco corpus through the gate.
//!
//! Each batch of lines goes through three stages:
//! 1. **prepare** (parallel): parse, map, scan and score each line — all the
//!    work that does not depend on per-process state;
//! 2. **advance** (sequential, input order): antibody table, turnstile,
//!    cooldown — a few hash lookups and flops per event, so it is never the
//!    bottleneck, and it keeps SPEC §7's eviction semantics exactly;
//! 3. **render** (parallel): notes, enforcement plan, JSON, in chunks that are
//!    concatenated in input order.
//!
//! Output is therefore byte-identical for any thread count. A reader thread
//! fills the next batch while the current one is processed; at most two
//! batches are in flight, so memory is bounded by the batch size and the
//! process tables, never by the corpus.

use std::io::{self, Write};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rayon::prelude::*;
use scbe_core::falco::LineError;
use scbe_core::limits::{ERROR_RAW_CHARS_MAX, LINE_BYTES_MAX};
use scbe_core::membrane::ScanScratch;
use scbe_core::{
    prepare_line, Advance, Bridge, CellState, Gate, KernelAction, MappingOptions, PlannerConfig,
    Prepared, PreparedLine, Timestamp,
};

use crate::input::{raw_prefix, Batch, BatchReader, Corpus, LineSlot};
use crate::output::RecordSink;
use crate::progress::Progress;

/// Records rendered per parallel render task.
const RENDER_CHUNK_EVENTS: usize = 512;

/// Buffer for replay's output. Rendered chunks (hundreds of kilobytes) are
/// larger, so `BufWriter` hands them to the file directly instead of copying
/// them; the buffer only gathers small writes (short batches on a live stream).
pub const OUTPUT_BUFFER_BYTES: usize = 64 << 10;

/// Everything a replay needs besides its input and output.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub gate: Arc<Gate>,
    pub mapping: MappingOptions,
    /// `Some` to plan enforcement and emit it with each record.
    pub enforcement: Option<PlannerConfig>,
    pub alerts_only: bool,
    pub max_events: Option<u64>,
    pub threads: usize,
    pub digest: bool,
    pub progress: bool,
}

/// Counts for the summary; they add up: `lines_read = blank_lines +
/// events_seen` and `events_seen = decided + errors`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplaySummary {
    pub lines_read: u64,
    pub blank_lines: u64,
    pub events_seen: u64,
    pub decided: u64,
    pub events_emitted: u64,
    pub errors: u64,
    /// Plans that carry an action (non-ALLOW and not suppressed by cooldown).
    pub enforcement_emitted: u64,
    pub by_kernel_action: [u64; 5],
    pub by_cell_state: [u64; 4],
    pub wall_seconds: f64,
    pub threads: usize,
    pub output_sha256: Option<String>,
    /// Process keys dropped from the full antibody table (SPEC §7).
    pub state_evictions: u64,
}

impl ReplaySummary {
    pub fn exit_code(&self) -> u8 {
        if self.errors > 0 {
            2
        } else {
            0
        }
    }

    pub fn events_per_second(&self) -> f64 {
        if self.wall_seconds > 0.0 {
            self.events_seen as f64 / self.wall_seconds
        } else {
            0.0
        }
    }

    /// The SPEC §8 summary object, plus the replay's own keys.
    pub fn to_json(&self) -> String {
        let actions: serde_json::Map<String, serde_json::Value> = KernelAction::ALL
            .iter()
            .map(|a| {
                (
                    a.as_str().to_owned(),
                    self.by_kernel_action[*a as usize].into(),
                )
            })
            .collect();
        let states: serde_json::Map<String, serde_json::Value> = CellState::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str().to_owned(),
                    self.by_cell_state[*s as usize].into(),
                )
            })
            .collect();
        let mut object = serde_json::json!({
            "events_seen": self.events_seen,
            "events_emitted": self.events_emitted,
            "errors": self.errors,
            "enforcement_emitted": self.enforcement_emitted,
            "enforcement_applied": 0,
            "enforcement_failed": 0,
            "lines_read": self.lines_read,
            "blank_lines": self.blank_lines,
            "decided": self.decided,
            "by_kernel_action": actions,
            "by_cell_state": states,
            "wall_seconds": (self.wall_seconds * 1000.0).round() / 1000.0,
            "events_per_second": self.events_per_second().round(),
            "threads": self.threads,
            "state_evictions": self.state_evictions,
        });
        if let Some(digest) = &self.output_sha256 {
            object["output_sha256"] = digest.clone().into();
        }
        object.to_string()
    }

    /// A small human table for terminals.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let row =
            |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<22} {v:>14}\n"));
        out.push_str("replay summary\n");
        row(&mut out, "events", self.events_seen.to_string());
        row(&mut out, "errors", self.errors.to_string());
        row(&mut out, "emitted", self.events_emitted.to_string());
        row(
            &mut out,
            "enforcement planned",
            self.enforcement_emitted.to_string(),
        );
        for action in KernelAction::ALL {
            row(
                &mut out,
                &format!("kernel {}", action.as_str()),
                self.by_kernel_action[action as usize].to_string(),
            );
        }
        for state in CellState::ALL {
            row(
                &mut out,
                &format!("cell {}", state.as_str()),
                self.by_cell_state[state as usize].to_string(),
            );
        }
        row(&mut out, "wall time", format!("{:.3} s", self.wall_seconds));
        row(
            &mut out,
            "events/s",
            format!("{:.0}", self.events_per_second()),
        );
        row(&mut out, "threads", self.threads.to_string());
        if let Some(d) = &self.output_sha256 {
            out.push_str(&format!("  output sha256 {d}\n"));
        }
        out
    }
}

/// One line after the sequential stage.
enum Slot {
    Error {
        line_no: u64,
        error: LineError,
        raw: String,
    },
    Decided(Box<Prepared>, Advance),
}

/// A rejected line, reported on the error stream.
struct ErrorLine {
    line_no: u64,
    error: LineError,
    raw: String,
}

/// What rendering a chunk produced.
#[derive(Default)]
struct Rendered {
    text: String,
    errors: Vec<ErrorLine>,
    emitted: u64,
    enforcement_emitted: u64,
    by_kernel_action: [u64; 5],
    by_cell_state: [u64; 4],
}

/// Replay `corpus` into `out`; error records go to `errors`.
pub fn replay(
    config: &ReplayConfig,
    corpus: Corpus,
    out: &mut (dyn Write + Send),
    errors: &mut dyn Write,
) -> Result<ReplaySummary> {
    let started = Instant::now();
    std::thread::scope(|scope| {
        // One thread writes as it goes; more use a writer thread, so the
        // output's system calls overlap the decisions.
        let sink = if config.threads > 1 {
            RecordSink::spawn(scope, out, config.digest)
                .context("cannot start the output writer thread")?
        } else {
            RecordSink::inline(out, config.digest)
        };
        replay_into(config, corpus, sink, errors, started)
    })
}

fn replay_into<'scope, 'w: 'scope>(
    config: &ReplayConfig,
    corpus: Corpus,
    mut sink: RecordSink<'scope, 'w>,
    errors: &mut dyn Write,
    started: Instant,
) -> Result<ReplaySummary> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads.max(1))
        .thread_name(|i| format!("scbe-replay-{i}"))
        .build()
        .context("cannot start the replay thread pool")?;

    let mut reader = BatchReader::for_threads(corpus.reader, corpus.live, config.threads)
        .context("cannot start the reader thread")?;
    let live = corpus.live;

    let mut bridge = Bridge::new(
        Arc::clone(&config.gate),
        config.mapping.clone(),
        config.enforcement.clone(),
    );
    let mut summary = ReplaySummary {
        threads: config.threads.max(1),
        ..ReplaySummary::default()
    };
    let mut clock = Timestamp::ZERO;
    let mut progress = Progress::new(config.progress, corpus.total_bytes, corpus.bytes_read);
    let mut done = false;

    // With more than one thread, the next batch is prepared on the pool while
    // this thread advances and writes the current one, so the sequential
    // stage overlaps the parallel one instead of idling the other cores. One
    // thread does the stages in turn; a live stream is not read ahead, so
    // that a batch's decisions never wait for more input.
    let overlap = config.threads > 1 && !live;
    let single = config.threads <= 1;
    let mut scratch = ScanScratch::default();
    let (prepared_tx, prepared_rx) = mpsc::channel::<(Batch, Vec<PreparedLine>)>();
    let start_prepare = |batch: Batch| {
        let gate = Arc::clone(&config.gate);
        let mapping = config.mapping.clone();
        let prepared_tx = prepared_tx.clone();
        pool.spawn(move || {
            let prepared = prepare_batch(&gate, &mapping, &batch);
            // The receiver is gone only when the replay already failed.
            let _ = prepared_tx.send((batch, prepared));
        });
    };
    let mut in_flight = false;
    if overlap {
        if let Some(batch) = reader.next_batch() {
            start_prepare(batch.context("cannot read input")?);
            in_flight = true;
        }
    }

    loop {
        let (batch, prepared) = if overlap {
            if !in_flight {
                break;
            }
            let ready = prepared_rx
                .recv()
                .context("the replay thread pool stopped")?;
            in_flight = false;
            if let Some(next) = reader.next_batch() {
                start_prepare(next.context("cannot read input")?);
                in_flight = true;
            }
            ready
        } else {
            let Some(batch) = reader.next_batch() else {
                break;
            };
            let batch = batch.context("cannot read input")?;
            let prepared = if single {
                // On the calling thread: no hand-off, and the batch stays in
                // this core's cache for the stages that follow.
                prepare_batch_here(&config.gate, &config.mapping, &batch, &mut scratch)
            } else {
                pool.install(|| prepare_batch(&config.gate, &config.mapping, &batch))
            };
            (batch, prepared)
        };

        // Stage 2: advance per-process state, strictly in input order.
        let mut slots: Vec<Slot> = Vec::with_capacity(prepared.len());
        for (slot, line) in batch.lines.iter().zip(prepared) {
            if config
                .max_events
                .is_some_and(|max| summary.events_seen >= max)
            {
                done = true;
                break;
            }
            summary.lines_read += 1;
            match line {
                PreparedLine::Blank => summary.blank_lines += 1,
                PreparedLine::Error(error) => {
                    summary.events_seen += 1;
                    summary.errors += 1;
                    slots.push(Slot::Error {
                        line_no: slot.line_no,
                        error,
                        raw: raw_prefix(batch.line(slot), ERROR_RAW_CHARS_MAX),
                    });
                }
                PreparedLine::Event(prepared) => {
                    summary.events_seen += 1;
                    summary.decided += 1;
                    // The replay clock is the events' own time: it only moves
                    // forward when an event carries a time.
                    if let Some(t) = prepared.event.time {
                        clock = t;
                    }
                    let advance = bridge.advance(&prepared, clock);
                    slots.push(Slot::Decided(prepared, advance));
                }
            }
        }
        if config
            .max_events
            .is_some_and(|max| summary.events_seen >= max)
        {
            done = true;
        }
        reader.recycle(batch);

        // Stage 3: render in parallel chunks; write in order.
        let chunks = split_chunks(slots, RENDER_CHUNK_EVENTS);
        let rendered: Vec<Rendered> = if single {
            chunks
                .into_iter()
                .map(|chunk| render_chunk(&bridge, config.alerts_only, chunk))
                .collect()
        } else {
            pool.install(|| {
                chunks
                    .into_par_iter()
                    .map(|chunk| render_chunk(&bridge, config.alerts_only, chunk))
                    .collect()
            })
        };
        for chunk in rendered {
            for e in &chunk.errors {
                write_error(errors, e.line_no, &e.error, &e.raw)?;
            }
            summary.events_emitted += chunk.emitted;
            summary.enforcement_emitted += chunk.enforcement_emitted;
            for (total, n) in summary
                .by_kernel_action
                .iter_mut()
                .zip(chunk.by_kernel_action)
            {
                *total += n;
            }
            for (total, n) in summary.by_cell_state.iter_mut().zip(chunk.by_cell_state) {
                *total += n;
            }
            if let Err(e) = sink.write(chunk.text) {
                return Err(sink_error(sink, e));
            }
        }
        if live {
            // A live stream's decisions are wanted now, not when a buffer fills.
            if let Err(e) = sink.flush() {
                return Err(sink_error(sink, e));
            }
            errors.flush()?;
        }
        progress.update(summary.events_seen);
        if done {
            break;
        }
    }
    summary.output_sha256 = sink.finish()?;
    reader.finish(!done);
    progress.finish();
    summary.wall_seconds = started.elapsed().as_secs_f64();
    summary.state_evictions = bridge.table().evictions();
    Ok(summary)
}

/// A write to the sink failed: the writer's own error (a broken pipe, a full
/// disk) when it has one.
fn sink_error<'scope, 'w: 'scope>(sink: RecordSink<'scope, 'w>, error: io::Error) -> anyhow::Error {
    match sink.finish() {
        Err(own) => anyhow::Error::new(own),
        Ok(_) => anyhow::Error::new(error),
    }
}

/// Stage 1: parse, map, scan and score every line of a batch, in parallel.
fn prepare_batch(gate: &Gate, mapping: &MappingOptions, batch: &Batch) -> Vec<PreparedLine> {
    batch
        .lines
        .par_iter()
        .map_init(ScanScratch::default, |scratch, slot| {
            prepare_slot(gate, mapping, batch, slot, scratch)
        })
        .collect()
}

/// One line of stage 1; a line over the limit was not kept whole.
fn prepare_slot(
    gate: &Gate,
    mapping: &MappingOptions,
    batch: &Batch,
    slot: &LineSlot,
    scratch: &mut ScanScratch,
) -> PreparedLine {
    if slot.full_len > LINE_BYTES_MAX {
        return PreparedLine::Error(LineError::TooLong {
            bytes: slot.full_len,
        });
    }
    prepare_line(gate, mapping, batch.line(slot), scratch)
}

/// Stage 1 on the calling thread (a one-thread run).
fn prepare_batch_here(
    gate: &Gate,
    mapping: &MappingOptions,
    batch: &Batch,
    scratch: &mut ScanScratch,
) -> Vec<PreparedLine> {
    batch
        .lines
        .iter()
        .map(|slot| prepare_slot(gate, mapping, batch, slot, scratch))
        .collect()
}

fn split_chunks(slots: Vec<Slot>, size: usize) -> Vec<Vec<Slot>> {
    let mut chunks = Vec::with_capacity(slots.len() / size + 1);
    let mut iter = slots.into_iter().peekable();
    while iter.peek().is_some() {
        chunks.push(iter.by_ref().take(size).collect());
    }
    chunks
}

fn render_chunk(bridge: &Bridge, alerts_only: bool, chunk: Vec<Slot>) -> Rendered {
    let mut rendered = Rendered {
        // Records reserve RECORD_BYTES_TYPICAL each before writing; room for
        // that many keeps a chunk's buffer from doubling (and copying
        // itself) near its end.
        text: String::with_capacity(chunk.len() * 800),
        ..Rendered::default()
    };
    for slot in chunk {
        match slot {
            Slot::Error {
                line_no,
                error,
                raw,
            } => rendered.errors.push(ErrorLine {
                line_no,
                error,
                raw,
            }),
            Slot::Decided(prepared, advance) => {
                let record = bridge.finish(*prepared, advance);
                let action = record.kernel_action();
                rendered.by_kernel_action[action as usize] += 1;
                rendered.by_cell_state[record.resolution.cell_state as usize] += 1;
                if alerts_only && action == KernelAction::Allow {
                    continue;
                }
                rendered.emitted += 1;
                if record
                    .enforcement
                    .as_ref()
                    .is_some_and(|p| p.action.is_some())
                {
                    rendered.enforcement_emitted += 1;
                }
                record.write_json(&mut rendered.text, false);
                rendered.text.push('\n');
            }
        }
    }
    rendered
}

/// `{"line":N,"error":MESSAGE,"raw":FIRST_2000_CHARS}`
pub fn write_error(
    out: &mut dyn Write,
    line_no: u64,
    error: &LineError,
    raw: &str,
) -> io::Result<()> {
    let object = serde_json::json!({
        "line": line_no,
        "error": error.to_string(),
        "raw": raw,
    });
    writeln!(out, "{object}")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How long the progress line waits between updates.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);
