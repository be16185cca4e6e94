//! Parallel, byte-deterministic replay of a Falco corpus through the gate.
//!
//! Each batch of lines goes through three stages:
//! 1. **prepare**: parse, map, scan and score each line — all the work that
//!    does not depend on per-process state;
//! 2. **advance** (strictly in input order): antibody table, turnstile,
//!    cooldown — a few hash lookups and flops per event, and exactly SPEC
//!    §7's eviction semantics;
//! 3. **render**: notes, enforcement plan, JSON.
//!
//! With more than one thread, workers each take a batch through all three
//! stages, taking turns for the second, and write the rendered batches in
//! input order (`replay_on_workers`). Output is
//! therefore byte-identical for any thread count, and memory is bounded by
//! the batch size, the worker count and the process tables, never by the
//! corpus. One thread runs the stages in turn.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use scbe_core::falco::LineError;
use scbe_core::limits::{ERROR_RAW_CHARS_MAX, LINE_BYTES_MAX};
use scbe_core::membrane::ScanScratch;
use scbe_core::record::RECORD_BYTES_TYPICAL;
use scbe_core::{
    prepare_lines, record_tail, Advance, Bridge, CellState, EnforcementPlanner, Gate, KernelAction,
    MappingOptions, PlannerConfig, Prepared, PreparedLine, RecordRef, Timestamp,
};

use crate::input::{raw_prefix, Batch, BatchReader, Corpus, BATCH_LINES_FIRST, BATCH_LINES_MAX};
use crate::output::RecordSink;
use crate::progress::Progress;

/// Lines the workers hold at once, over all of them (each batch is this
/// divided by the worker count, within the batch bounds of `input.rs`).
/// Measured on two cores (`scbe-sim bench`, 15 rounds): 512-line batches
/// per worker replay 7–20% faster than 2,048-line ones — a batch, its
/// events and its records stay within a core's cache, and a run ends with
/// less of one worker's last batch left while the other idles. 256-line
/// batches per worker (as on one thread, see [`ONE_THREAD_BATCH_LINES`])
/// were 3–9% slower on two: twice the turns to hand over.
const WORKER_LINES_IN_FLIGHT: usize = BATCH_LINES_MAX / 2;

/// Lines per batch on one thread. A batch's lines, events and records must
/// stay within the core's 2 MiB L2 cache: with 2,048-line batches (2.4 MB of
/// parity lines alone) a cache simulation (`valgrind --tool=cachegrind
/// --cache-sim=yes --LL=2097152,16,64`) counts 138 L2 data misses per event,
/// with 256-line ones 26, and replay ran 3.2× the Python loop against 2.8×
/// (medians of nine 15-round `scbe-sim bench --threads 1` runs each, taken
/// alternately). 128 lines: fewer misses still, no faster.
const ONE_THREAD_BATCH_LINES: usize = 256;

/// Buffer for replay's output. Rendered batches (hundreds of kilobytes) are
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

/// What rendering a batch produced.
#[derive(Default)]
struct Rendered {
    /// Lines decided or rejected (the slots rendered).
    events: u64,
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
    errors: &mut (dyn Write + Send),
) -> Result<ReplaySummary> {
    let started = Instant::now();
    if config.threads > 1 {
        return replay_on_workers(config, corpus, out, errors, started);
    }
    replay_on_this_thread(config, corpus, out, errors, started)
}

/// One thread: read, prepare, advance, render and write in turn, so that
/// the throughput is what one core does.
fn replay_on_this_thread(
    config: &ReplayConfig,
    corpus: Corpus,
    out: &mut (dyn Write + Send),
    errors: &mut dyn Write,
    started: Instant,
) -> Result<ReplaySummary> {
    let mut sink = RecordSink::new(out, config.digest);
    let mut reader =
        BatchReader::inline_with_lines_max(corpus.reader, corpus.live, ONE_THREAD_BATCH_LINES);
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

    let mut scratch = ScanScratch::default();
    let mut spare_text = String::new();

    while let Some(batch) = reader.next_batch() {
        let batch = match batch {
            Ok(batch) => batch,
            // Every line before the failed read is decided and written.
            Err(e) => return Err(read_failed(sink, e)),
        };
        let prepared = prepare_batch(&config.gate, &config.mapping, &batch, &mut scratch);

        // Stage 2: advance per-process state, strictly in input order.
        let slots = advance_batch(
            config,
            &mut bridge,
            &mut summary,
            &mut clock,
            &batch,
            prepared,
        );
        done |= reached_max_events(config, &summary);
        reader.recycle(batch);

        // Stage 3: render and write.
        let rendered = render_batch(
            bridge.gate(),
            bridge.planner(),
            config.alerts_only,
            slots,
            &mut scratch,
            std::mem::take(&mut spare_text),
        );
        spare_text = absorb(&mut summary, &mut sink, errors, rendered, live)?;
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

/// The advancing stage's state, shared by the workers, who take turns.
struct Turn {
    /// The batch whose turn it is to advance.
    next: u64,
    bridge: Bridge,
    clock: Timestamp,
    /// The line counts (`lines_read` … `decided`).
    counts: ReplaySummary,
}

/// The input, handed out a batch at a time with its place in the input.
struct Input {
    reader: BatchReader,
    next: u64,
    ended: bool,
    /// A read that failed: the input ends there, and once every batch
    /// before it is written the run reports it.
    failed: Option<std::io::Error>,
}

/// Replay a file with `config.threads` workers, each of which takes a batch
/// through every stage — read (in turn), prepare, advance (in its turn:
/// batches advance one after another, in input order), render, write (the
/// worker that finishes the next batch in input order writes it, and any
/// later ones already finished). A batch stays on one core from its read to
/// its record, and this thread is one of the workers. On a live stream a
/// batch closes as soon as no more input is ready, and each batch's records
/// are flushed as soon as they are written.
fn replay_on_workers(
    config: &ReplayConfig,
    corpus: Corpus,
    out: &mut (dyn Write + Send),
    errors: &mut (dyn Write + Send),
    started: Instant,
) -> Result<ReplaySummary> {
    // Every worker holds a batch (and its events and records), so batches
    // shrink as workers are added: memory stays about that of
    // WORKER_LINES_IN_FLIGHT lines whatever the thread count.
    let lines_max = (WORKER_LINES_IN_FLIGHT / config.threads).max(BATCH_LINES_FIRST);
    let live = corpus.live;
    // A file is read by the workers themselves, in turn, each reading the
    // batch it then prepares: no hand-off to wait on, and the batch is in
    // that core's cache when its parse starts. A reader thread on two cores
    // made three threads on two cores, and a worker often waited for it to
    // be scheduled. A live stream keeps its reader thread, whose read may
    // block for as long as the stream is quiet.
    let reader = if live {
        BatchReader::spawn_with_lines_max(corpus.reader, live, lines_max)
            .context("cannot start the reader thread")?
    } else {
        BatchReader::inline_with_lines_max(corpus.reader, live, lines_max)
    };
    let recycler = reader.recycler();
    let input = Mutex::new(Input {
        reader,
        next: 0,
        ended: false,
        failed: None,
    });
    let bridge = Bridge::new(
        Arc::clone(&config.gate),
        config.mapping.clone(),
        config.enforcement.clone(),
    );
    // Plans are built from the planner's configuration only (its cooldown
    // table is the bridge's, used while advancing), so a copy made now plans
    // exactly as the bridge's own would.
    let planner = bridge.planner().cloned();
    let turn = Mutex::new(Turn {
        next: 0,
        bridge,
        clock: Timestamp::ZERO,
        counts: ReplaySummary::default(),
    });
    let turn_passed = Condvar::new();
    // Set when the run must end early: an error, or `--max-events` reached.
    let stop = AtomicBool::new(false);
    let next_turn = AtomicU64::new(0);
    let spin =
        std::thread::available_parallelism().is_ok_and(|cores| config.threads <= cores.get());
    let output = Mutex::new(Output {
        sink: RecordSink::new(out, config.digest),
        errors,
        finished: BTreeMap::new(),
        next: 0,
        events: 0,
        // `threads` is set at the end: the workers that started.
        summary: ReplaySummary::default(),
        progress: Progress::new(config.progress, corpus.total_bytes, corpus.bytes_read),
        live,
        failure: None,
    });

    let work = WorkerContext {
        config,
        input: &input,
        turn: &turn,
        turn_passed: &turn_passed,
        output: &output,
        next_turn: &next_turn,
        spin,
        stop: &stop,
        planner: planner.as_ref(),
        recycler: recycler.as_ref(),
    };
    // The calling thread is a worker too. Its allocator heap is warm (the
    // gate was built on it, and in `bench` earlier rounds ran on it), where
    // a new thread's starts empty: two workers, one of them the caller,
    // replayed the parity corpus 10% faster than two new threads (11-round
    // `bench` A/Bs), level with two independent one-thread replays.
    let workers = std::thread::scope(|scope| {
        let work = &work;
        let mut workers = 1;
        for i in 1..config.threads {
            let started = std::thread::Builder::new()
                .name(format!("scbe-replay-{i}"))
                .spawn_scoped(scope, move || work.run());
            // Fewer workers give the same output, only later: a thread
            // the system refuses does not end the run.
            if started.is_err() {
                break;
            }
            workers += 1;
        }
        work.run();
        workers
    });
    let input = input
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    input
        .reader
        .finish(input.ended && !stop.load(Ordering::Relaxed));
    let mut output = output
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(e) = output.failure {
        return Err(e);
    }
    if let Some(e) = input.failed {
        return Err(read_failed(output.sink, e));
    }
    let turn = turn
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let counts = turn.counts;
    let mut summary = output.summary;
    summary.threads = workers;
    summary.lines_read = counts.lines_read;
    summary.blank_lines = counts.blank_lines;
    summary.events_seen = counts.events_seen;
    summary.decided = counts.decided;
    summary.errors = counts.errors;
    summary.output_sha256 = output.sink.finish()?;
    output.progress.finish();
    summary.wall_seconds = started.elapsed().as_secs_f64();
    summary.state_evictions = turn.bridge.table().evictions();
    Ok(summary)
}

/// The error of a run whose input failed to read on, once what was written
/// (every line before the failed read) is flushed.
fn read_failed(sink: RecordSink<'_>, error: io::Error) -> anyhow::Error {
    match sink.finish() {
        Ok(_) => anyhow::Error::new(error).context("cannot read input"),
        Err(e) => anyhow::Error::new(e).context("cannot write the output"),
    }
}

/// The writing stage's state, shared by the workers: batches finish in any
/// order and are written in input order.
struct Output<'w> {
    sink: RecordSink<'w>,
    errors: &'w mut (dyn Write + Send),
    /// Rendered batches waiting for an earlier one.
    finished: BTreeMap<u64, Rendered>,
    /// The batch to write next.
    next: u64,
    /// Lines written so far (for progress).
    events: u64,
    /// The output counts (`events_emitted`, by action and state).
    summary: ReplaySummary,
    progress: Progress,
    live: bool,
    /// The first error of the run; set, the run stops.
    failure: Option<anyhow::Error>,
}

impl Output<'_> {
    /// Take a rendered batch and write every batch that is now next in
    /// input order. Returns the text buffer of the last one written, if any.
    fn finish(&mut self, seq: u64, rendered: Rendered) -> Result<Option<String>> {
        self.finished.insert(seq, rendered);
        let mut written = None;
        while let Some(rendered) = self.finished.remove(&self.next) {
            self.next += 1;
            self.events += rendered.events;
            written = Some(absorb(
                &mut self.summary,
                &mut self.sink,
                self.errors,
                rendered,
                self.live,
            )?);
            self.progress.update(self.events);
        }
        Ok(written)
    }
}

/// What a worker shares with the others.
struct WorkerContext<'a, 'w> {
    config: &'a ReplayConfig,
    input: &'a Mutex<Input>,
    turn: &'a Mutex<Turn>,
    turn_passed: &'a Condvar,
    output: &'a Mutex<Output<'w>>,
    /// `Turn::next`, readable without the lock (see `spin_for_turn`).
    next_turn: &'a AtomicU64,
    /// Whether waiting for a turn may spin: each worker has a core.
    spin: bool,
    stop: &'a AtomicBool,
    planner: Option<&'a EnforcementPlanner>,
    /// Gives batch buffers back to the reader thread, if there is one. Not
    /// through `input`: on a live stream another worker may hold it while it
    /// waits for input (a file's reads never wait long).
    recycler: Option<&'a mpsc::Sender<Batch>>,
}

/// How long a worker waiting for its turn spins before it sleeps. A turn
/// is usually a few hundred microseconds away (another batch's advance);
/// sleeping on the condition variable and being woken costs tens of
/// microseconds and, on a busy VM, sometimes a scheduling delay. Spinning
/// first made two-thread replay 2–7% faster (41-round alternating A/Bs on
/// the parity corpus; 4–12% in 11 rounds of 200k generated events); a
/// 250 µs budget gained less.
const TURN_SPIN: Duration = Duration::from_millis(1);

impl WorkerContext<'_, '_> {
    /// Spin (briefly, and only when every worker has a core of its own)
    /// until batch `seq` may advance or the run stops.
    fn spin_for_turn(&self, seq: u64) {
        if !self.spin {
            return;
        }
        let started = Instant::now();
        loop {
            for _ in 0..64 {
                if self.next_turn.load(Ordering::Acquire) == seq
                    || self.stop.load(Ordering::Relaxed)
                {
                    return;
                }
                std::hint::spin_loop();
            }
            if started.elapsed() >= TURN_SPIN {
                return;
            }
        }
    }

    /// End the run with `error` (the first one is kept): later batches are
    /// neither read nor advanced, and workers waiting for a turn stop.
    fn fail(&self, error: anyhow::Error) {
        let mut output = lock(self.output);
        output.failure.get_or_insert(error);
        self.stop.store(true, Ordering::Relaxed);
        drop(output);
        // Under the turn's lock, so that no worker checks `stop` and then
        // misses this wake-up.
        let _turn = lock(self.turn);
        self.turn_passed.notify_all();
    }

    fn run(&self) {
        let config = self.config;
        let mut scratch = ScanScratch::default();
        let planner = self.planner.map(EnforcementPlanner::for_another_thread);
        // This worker's last batch, whose buffers its next read fills: they
        // are in this core's cache, not the other's (which a write into them
        // would first have to take back).
        let mut own_spare: Option<Batch> = None;
        // Likewise the text buffer of the last batch this worker wrote.
        let mut spare_text = String::new();
        while !self.stop.load(Ordering::Relaxed) {
            let (seq, batch) = {
                let mut input = lock(self.input);
                if input.ended {
                    return;
                }
                if let Some(spare) = own_spare.take() {
                    // The inline reader fills the batch given back last.
                    input.reader.recycle(spare);
                }
                match input.reader.next_batch_unless(self.stop) {
                    None => {
                        input.ended = !self.stop.load(Ordering::Relaxed);
                        return;
                    }
                    Some(Err(e)) => {
                        // As the end of the input, but reported: the
                        // batches before it are still written.
                        input.ended = true;
                        input.failed = Some(e);
                        return;
                    }
                    Some(Ok(batch)) => {
                        input.next += 1;
                        (input.next - 1, batch)
                    }
                }
            };
            let prepared = prepare_batch(&config.gate, &config.mapping, &batch, &mut scratch);
            let slots = {
                self.spin_for_turn(seq);
                let mut turn = lock(self.turn);
                while turn.next != seq && !self.stop.load(Ordering::Relaxed) {
                    turn = self
                        .turn_passed
                        .wait(turn)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                if turn.next != seq {
                    return;
                }
                let Turn {
                    bridge,
                    clock,
                    counts,
                    ..
                } = &mut *turn;
                let slots = advance_batch(config, bridge, counts, clock, &batch, prepared);
                if reached_max_events(config, counts) {
                    // Later batches are neither read nor advanced.
                    self.stop.store(true, Ordering::Relaxed);
                }
                turn.next += 1;
                self.next_turn.store(turn.next, Ordering::Release);
                self.turn_passed.notify_all();
                slots
            };
            match self.recycler {
                // The reader may have ended; the buffers are then just freed.
                Some(recycler) => {
                    let _ = recycler.send(batch);
                }
                None => own_spare = Some(batch),
            }
            let rendered = render_batch(
                &config.gate,
                planner.as_ref(),
                config.alerts_only,
                slots,
                &mut scratch,
                std::mem::take(&mut spare_text),
            );
            // Every advanced batch is written, `--max-events`' last one
            // included; only a failure drops what follows it.
            let mut output = lock(self.output);
            if output.failure.is_some() {
                return;
            }
            match output.finish(seq, rendered) {
                Ok(written) => spare_text = written.unwrap_or_default(),
                Err(e) => {
                    drop(output);
                    self.fail(e);
                    return;
                }
            }
        }
    }
}

/// A lock whose holder panicked still holds consistent data here (every
/// update is a whole batch), and the panic itself ends the run.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stage 2 for one batch: per-process state advanced line by line, in input
/// order, until `--max-events` is reached.
fn advance_batch(
    config: &ReplayConfig,
    bridge: &mut Bridge,
    summary: &mut ReplaySummary,
    clock: &mut Timestamp,
    batch: &Batch,
    prepared: Vec<PreparedLine>,
) -> Vec<Slot> {
    let mut slots: Vec<Slot> = Vec::with_capacity(prepared.len());
    for (slot, line) in batch.lines.iter().zip(prepared) {
        if reached_max_events(config, summary) {
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
                    *clock = t;
                }
                let advance = bridge.advance(&prepared, *clock);
                slots.push(Slot::Decided(prepared, advance));
            }
        }
    }
    slots
}

fn reached_max_events(config: &ReplayConfig, summary: &ReplaySummary) -> bool {
    config
        .max_events
        .is_some_and(|max| summary.events_seen >= max)
}

/// Write a rendered batch (its error lines, then its records) and count it;
/// on a live stream, flush both, since its decisions are wanted now, not
/// when a buffer fills. Returns the batch's text buffer, for the next batch.
fn absorb(
    summary: &mut ReplaySummary,
    sink: &mut RecordSink<'_>,
    errors: &mut dyn Write,
    batch: Rendered,
    live: bool,
) -> Result<String> {
    for e in &batch.errors {
        write_error(errors, e.line_no, &e.error, &e.raw)?;
    }
    summary.events_emitted += batch.emitted;
    summary.enforcement_emitted += batch.enforcement_emitted;
    for (total, n) in summary
        .by_kernel_action
        .iter_mut()
        .zip(batch.by_kernel_action)
    {
        *total += n;
    }
    for (total, n) in summary.by_cell_state.iter_mut().zip(batch.by_cell_state) {
        *total += n;
    }
    sink.write(&batch.text).context("cannot write the output")?;
    if live {
        sink.flush().context("cannot write the output")?;
        errors.flush().context("cannot write the errors")?;
    }
    Ok(batch.text)
}

/// Stage 1 for a batch, on the calling thread (the one thread of a
/// one-thread run, or a worker). A line over the limit was not kept whole.
fn prepare_batch(
    gate: &Gate,
    mapping: &MappingOptions,
    batch: &Batch,
    scratch: &mut ScanScratch,
) -> Vec<PreparedLine> {
    let lines = batch.lines.iter().map(|slot| {
        if slot.full_len > LINE_BYTES_MAX {
            Err(LineError::TooLong {
                bytes: slot.full_len,
            })
        } else {
            Ok(batch.line(slot))
        }
    });
    prepare_lines(gate, mapping, lines, scratch)
}

/// Stage 3 for a batch: each decided line's record (notes, plan, JSON), and
/// the rejected lines kept for the error stream. Spent records go back to
/// `scratch`, whose next batch is mapped into their strings.
fn render_batch(
    gate: &Gate,
    planner: Option<&EnforcementPlanner>,
    alerts_only: bool,
    slots: Vec<Slot>,
    scratch: &mut ScanScratch,
    mut text: String,
) -> Rendered {
    // Records reserve RECORD_BYTES_TYPICAL each before writing; room for
    // that many keeps the batch's buffer from doubling (and copying itself)
    // near its end. `text` is an earlier batch's buffer, written by this
    // thread: reusing it writes into memory already in this core's cache.
    text.clear();
    text.reserve(slots.len() * RECORD_BYTES_TYPICAL);
    let mut rendered = Rendered {
        events: slots.len() as u64,
        text,
        ..Rendered::default()
    };
    // Each record is written from its prepared event where it lies (in its
    // box), with one notes buffer for the batch; the box then goes back to
    // `scratch` whole.
    let mut notes = Vec::with_capacity(8);
    for slot in slots {
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
                let action = advance.resolution.kernel_action;
                rendered.by_kernel_action[action as usize] += 1;
                rendered.by_cell_state[advance.resolution.cell_state as usize] += 1;
                // Notes and plan only for a record that is written.
                if !(alerts_only && action == KernelAction::Allow) {
                    let plan = record_tail(gate, planner, &prepared, &advance, &mut notes);
                    rendered.emitted += 1;
                    if plan.as_ref().is_some_and(|p| p.action.is_some()) {
                        rendered.enforcement_emitted += 1;
                    }
                    let record = RecordRef {
                        event: &prepared.event,
                        assessment: &prepared.assessment,
                        resolution: &advance.resolution,
                        notes: &notes,
                        enforcement: plan.as_ref(),
                    };
                    record.write_json(&mut rendered.text, false);
                    rendered.text.push('\n');
                }
                scratch.recycle_prepared(prepared);
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
