//! `scbe-sim bench`: end-to-end replay throughput, thread scaling, per-event
//! latency and peak memory, optionally side by side with a Python
//! `json.loads` loop over the same file (the yardstick the project's speed
//! targets are stated in).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use scbe_core::{Bridge, LineOutcome, Timestamp};

use crate::input::{open_corpus, Batch, LineReader};
use crate::replay::{replay, ReplayConfig, OUTPUT_BUFFER_BYTES};

/// Lines timed one by one for the latency histogram.
const LATENCY_SAMPLE_MAX: usize = 200_000;

/// One thread count's result (medians over the repeats).
#[derive(Debug, Clone)]
pub struct ScalingRow {
    pub threads: usize,
    pub wall_seconds: f64,
    pub events_per_second: f64,
    pub megabytes_per_second: f64,
    /// Relative to the first row (normally one thread): the median of the
    /// rounds' ratios.
    pub speedup: f64,
    /// Relative to the Python `json.loads` loop, when measured.
    pub vs_python: Option<f64>,
    /// Share of the machine's CPU time the hypervisor took for other guests
    /// while this row's replays ran (`steal` in `/proc/stat`), when known.
    pub steal_percent: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub corpus: String,
    pub events: u64,
    pub input_bytes: u64,
    pub repeats: usize,
    pub rows: Vec<ScalingRow>,
    pub latency_ns_p50: u64,
    pub latency_ns_p99: u64,
    pub latency_ns_p999: u64,
    pub peak_rss_kib: Option<u64>,
    pub python_lines_per_second: Option<f64>,
    /// [`ScalingRow::steal_percent`] while the Python loop ran (it runs in
    /// its own process, its start-up included).
    pub python_steal_percent: Option<f64>,
    /// Two one-thread replays run at once against one alone (`--pair`): what
    /// the machine gives two independent jobs.
    pub pair_speedup: Option<f64>,
}

/// How to bench.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Replay settings; `threads` is overridden per row.
    pub replay: ReplayConfig,
    pub threads: Vec<usize>,
    pub repeats: usize,
    /// Where replay output goes (a real file: the targets are stated for
    /// output to a file).
    pub output_path: PathBuf,
    pub python: bool,
    /// Also run two one-thread replays at once each round.
    pub pair: bool,
}

pub fn run_bench(corpus_path: &Path, config: &BenchConfig) -> Result<BenchReport> {
    let input_bytes = std::fs::metadata(corpus_path)
        .with_context(|| format!("cannot stat {}", corpus_path.display()))?
        .len();
    let path_text = corpus_path.to_str().context("corpus path is not UTF-8")?;
    let mut rows = Vec::new();
    let mut events = 0;
    // Rounds: each times every thread count once, and the Python loop runs
    // before the first round and after every round. A round's ratios are to
    // the geometric mean of the Python runs just before and just after it,
    // which cancels a steady drift in the machine's speed (this one's runs
    // vary by 2× from one minute to the next); speedups are per round too.
    // Medians are taken per column.
    let repeats = config.repeats.max(1);
    let mut python_stolen = Stolen::default();
    let mut python_rate = || -> Result<Option<f64>> {
        if !config.python {
            return Ok(None);
        }
        python_stolen.during(|| python_json_loads_rate(corpus_path))
    };
    let mut python_rates: Vec<f64> = python_rate()?.into_iter().collect();
    let mut walls: Vec<Vec<f64>> = vec![Vec::with_capacity(repeats); config.threads.len()];
    let one_thread_column = if config.pair {
        let column = config.threads.iter().position(|&t| t == 1);
        anyhow::ensure!(column.is_some(), "--pair needs 1 among the thread counts");
        column
    } else {
        None
    };
    let mut pair_speedups = Vec::with_capacity(repeats);
    // Per column: the CPU stolen while its replays ran.
    let mut stolen = vec![Stolen::default(); config.threads.len()];
    for _ in 0..repeats {
        for (column, &threads) in config.threads.iter().enumerate() {
            let (wall, seen) = stolen[column]
                .during(|| timed_replay(config, path_text, threads, &config.output_path))?;
            events = seen;
            walls[column].push(wall);
        }
        if let Some(one) = one_thread_column {
            // Two one-thread replays at once, each to its own file: what this
            // machine's cores give two independent jobs, the ceiling for
            // thread scaling on it.
            let second_output = config.output_path.with_extension("pair.jsonl");
            let started = Instant::now();
            let (first, second) = std::thread::scope(|scope| {
                let second =
                    scope.spawn(|| timed_replay(config, path_text, 1, &second_output).map(|_| ()));
                let first = timed_replay(config, path_text, 1, &config.output_path).map(|_| ());
                (first, second.join())
            });
            let pair_wall = started.elapsed().as_secs_f64();
            first?;
            second.map_err(|_| anyhow::anyhow!("a paired replay panicked"))??;
            pair_speedups.push(2.0 * walls[one].last().copied().unwrap_or(pair_wall) / pair_wall);
        }
        if !python_rates.is_empty() {
            python_rates.extend(python_rate()?);
        }
    }
    anyhow::ensure!(
        events > 0,
        "{} holds no events: nothing to measure",
        corpus_path.display()
    );
    // One Python rate per round boundary, or none at all.
    let python_around: Option<Vec<f64>> = (python_rates.len() == repeats + 1).then(|| {
        python_rates
            .windows(2)
            .map(|pair| (pair[0] * pair[1]).sqrt())
            .collect()
    });
    let python_lines_per_second = (!python_rates.is_empty()).then(|| median(&mut python_rates));
    let python_steal_percent = python_stolen.percent();
    let first_walls = walls.first().cloned().unwrap_or_default();
    for ((&threads, walls), stolen) in config.threads.iter().zip(&walls).zip(&stolen) {
        let mut vs_python: Option<Vec<f64>> = python_around.as_ref().map(|around| {
            walls
                .iter()
                .zip(around)
                .map(|(wall, py)| events as f64 / wall / py)
                .collect()
        });
        let mut speedups: Vec<f64> = first_walls
            .iter()
            .zip(walls)
            .map(|(first, wall)| first / wall)
            .collect();
        let wall = median(&mut walls.clone());
        rows.push(ScalingRow {
            threads,
            wall_seconds: wall,
            events_per_second: events as f64 / wall,
            megabytes_per_second: input_bytes as f64 / wall / 1e6,
            speedup: median(&mut speedups),
            vs_python: vs_python.as_deref_mut().map(median),
            steal_percent: stolen.percent(),
        });
    }
    let pair_speedup = (!pair_speedups.is_empty()).then(|| median(&mut pair_speedups));
    let latency = latency_histogram(corpus_path, &config.replay)?;
    Ok(BenchReport {
        corpus: corpus_path.display().to_string(),
        events,
        input_bytes,
        repeats,
        rows,
        latency_ns_p50: latency.value_at_quantile(0.50),
        latency_ns_p99: latency.value_at_quantile(0.99),
        latency_ns_p999: latency.value_at_quantile(0.999),
        peak_rss_kib: peak_rss_kib(),
        python_lines_per_second,
        python_steal_percent,
        pair_speedup,
    })
}

/// One replay of the corpus with `threads` threads, output to a new file at
/// `output_path` (removed once timed): (wall seconds, events seen).
fn timed_replay(
    config: &BenchConfig,
    corpus_path: &str,
    threads: usize,
    output_path: &Path,
) -> Result<(f64, u64)> {
    let mut replay_config = config.replay.clone();
    replay_config.threads = threads;
    replay_config.progress = false;
    let corpus = open_corpus(corpus_path)?;
    // A new file each time, removed once timed: truncating the last round's
    // file would make ext4 write it back on close (its replace-by-truncate
    // heuristic), and that disk work would then compete with the next round
    // on the machine's cores.
    remove_if_present(output_path)?;
    let mut out = BufWriter::with_capacity(
        OUTPUT_BUFFER_BYTES,
        File::create(output_path)
            .with_context(|| format!("cannot create {}", output_path.display()))?,
    );
    let started = Instant::now();
    let summary = replay(&replay_config, corpus, &mut out, &mut std::io::sink())?;
    out.flush()?;
    let wall = started.elapsed().as_secs_f64();
    drop(out);
    remove_if_present(output_path)?;
    Ok((wall, summary.events_seen))
}

/// CPU time stolen by the hypervisor over some timed stretches, in ticks.
#[derive(Debug, Clone, Copy, Default)]
struct Stolen {
    steal: u64,
    all: u64,
}

impl Stolen {
    /// Run `f`, adding the machine's stolen and total CPU time meanwhile
    /// (nothing where `/proc/stat` cannot be read).
    fn during<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let before = cpu_ticks();
        let result = f();
        if let (Some(before), Some(after)) = (before, cpu_ticks()) {
            self.steal += after.0.saturating_sub(before.0);
            self.all += after.1.saturating_sub(before.1);
        }
        result
    }

    /// The stolen share of all CPU time, in percent, when any was counted.
    fn percent(&self) -> Option<f64> {
        (self.all > 0).then(|| 100.0 * self.steal as f64 / self.all as f64)
    }
}

/// The machine's CPU time so far, in ticks: (stolen by the hypervisor, all),
/// from the first line of `/proc/stat` (Linux only).
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice],
    // the guest times being already part of user and nice.
    let steal = *fields.get(7)?;
    Some((steal, fields.iter().take(8).sum()))
}

/// Remove `path` unless it is already gone.
fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Per-event decide-and-render time on one thread (ns), from a sample of lines.
fn latency_histogram(corpus_path: &Path, config: &ReplayConfig) -> Result<Histogram<u64>> {
    let corpus = open_corpus(corpus_path.to_str().context("corpus path is not UTF-8")?)?;
    let mut lines = LineReader::new(corpus.reader);
    let mut batch = Batch::default();
    let mut bridge = Bridge::new(
        Arc::clone(&config.gate),
        config.mapping.clone(),
        config.enforcement.clone(),
    );
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).context("histogram bounds")?;
    let mut out = String::with_capacity(4096);
    let mut sampled = 0;
    while sampled < LATENCY_SAMPLE_MAX && lines.next_batch(&mut batch)? {
        for slot in batch.lines.iter().take(LATENCY_SAMPLE_MAX - sampled) {
            let line = batch.line(slot);
            let started = Instant::now();
            let outcome = bridge.decide_line(line, |e| e.time.unwrap_or(Timestamp::ZERO));
            if let LineOutcome::Decided(record) = outcome {
                out.clear();
                record.write_json(&mut out, false);
            }
            let nanos = started.elapsed().as_nanos().max(1) as u64;
            histogram.saturating_record(nanos);
            sampled += 1;
        }
    }
    Ok(histogram)
}

/// The process's peak resident set (`VmHWM`), Linux only.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Lines per second of `for line in f: json.loads(line)` in `python3` (one
/// run); `None` when python3 is not installed.
fn python_json_loads_rate(corpus_path: &Path) -> Result<Option<f64>> {
    const SCRIPT: &str = "import json,sys,time\n\
        t=time.perf_counter()\n\
        n=0\n\
        with open(sys.argv[1],encoding='utf-8',errors='replace') as f:\n\
        \x20   for line in f:\n\
        \x20       try: json.loads(line)\n\
        \x20       except Exception: pass\n\
        \x20       n+=1\n\
        print(n/(time.perf_counter()-t))\n";
    let output = match Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(corpus_path)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("cannot run python3"),
    };
    anyhow::ensure!(
        output.status.success(),
        "python3 baseline failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rate: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("python3 baseline printed no rate")?;
    Ok(Some(rate))
}

impl BenchReport {
    pub fn to_json(&self) -> String {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "threads": r.threads,
                    "wall_seconds": r.wall_seconds,
                    "events_per_second": r.events_per_second.round(),
                    "megabytes_per_second": (r.megabytes_per_second * 10.0).round() / 10.0,
                    "speedup": (r.speedup * 100.0).round() / 100.0,
                    "vs_python_json_loads": r.vs_python.map(|v| (v * 100.0).round() / 100.0),
                    "steal_percent": r.steal_percent.map(|v| (v * 10.0).round() / 10.0),
                })
            })
            .collect();
        serde_json::json!({
            "corpus": self.corpus,
            "events": self.events,
            "input_bytes": self.input_bytes,
            "repeats": self.repeats,
            "scaling": rows,
            "latency_ns": {
                "p50": self.latency_ns_p50,
                "p99": self.latency_ns_p99,
                "p99.9": self.latency_ns_p999,
            },
            "peak_rss_kib": self.peak_rss_kib,
            "python_json_loads_lines_per_second": self.python_lines_per_second.map(f64::round),
            "python_steal_percent": self.python_steal_percent.map(|v| (v * 10.0).round() / 10.0),
            "independent_pair_speedup": self.pair_speedup.map(|v| (v * 100.0).round() / 100.0),
        })
        .to_string()
    }

    pub fn to_table(&self) -> String {
        let mut out = format!(
            "corpus {} — {} events, {:.1} MB, medians of {} rounds (each round times every\n\
             thread count; speedups and ratios are per round)\n",
            self.corpus,
            self.events,
            self.input_bytes as f64 / 1e6,
            self.repeats
        );
        out.push_str("threads      events/s      MB/s   speedup   vs python   CPU stolen\n");
        for r in &self.rows {
            out.push_str(&format!(
                "{:>7} {:>13.0} {:>9.1} {:>8.2}x {:>10} {:>11}\n",
                r.threads,
                r.events_per_second,
                r.megabytes_per_second,
                r.speedup,
                r.vs_python.map_or("-".to_owned(), |v| format!("{v:.2}x")),
                r.steal_percent
                    .map_or("-".to_owned(), |v| format!("{v:.1}%")),
            ));
        }
        if let Some(py) = self.python_lines_per_second {
            out.push_str(&format!(
                "python3 json.loads loop: {py:.0} lines/s (median){}; a round's ratio is to the\n\
                 Python runs just before and after it (geometric mean)\n",
                self.python_steal_percent
                    .map_or(String::new(), |v| format!(", CPU stolen {v:.1}%")),
            ));
        }
        let steals = self.rows.iter().map(|r| r.steal_percent);
        if steals
            .chain([self.python_steal_percent])
            .any(|v| v.is_some_and(|v| v >= 5.0))
        {
            out.push_str(
                "the hypervisor took 5% or more of the CPU during some runs: other guests\n\
                 were busy, and speedups and ratios are less reliable than usual\n",
            );
        }
        if let Some(pair) = self.pair_speedup {
            out.push_str(&format!(
                "two one-thread replays at once: {pair:.2}x one alone (what this machine gives\n\
                 two independent jobs; the ceiling for thread scaling here)\n"
            ));
        }
        out.push_str(&format!(
            "per-event latency (1 thread, decide + render): p50 {} ns, p99 {} ns, p99.9 {} ns\n",
            self.latency_ns_p50, self.latency_ns_p99, self.latency_ns_p999
        ));
        if let Some(kib) = self.peak_rss_kib {
            out.push_str(&format!("peak RSS: {:.1} MiB\n", kib as f64 / 1024.0));
        }
        out
    }
}
