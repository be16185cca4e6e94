//! `scbe-sim bench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use scbe_core::{MappingOptions, PlannerConfig};
use scbe_sim::bench::{run_bench, BenchConfig};
use scbe_sim::replay::ReplayConfig;
use scbe_sim::synth::{synth, SynthConfig};
use scbe_sim::util::{default_threads, load_gate};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Events to generate (ignored with --input).
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    events: u64,
    /// Thread counts to measure, comma-separated (default: 1 and all cores).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    threads: Option<Vec<usize>>,
    /// Bench this corpus instead of generating one.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Seed of the generated corpus.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Policy file; the reference policy when omitted.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Rounds; each runs every thread count once. With `--python` the
    /// Python loop runs before the first round and after every round, and
    /// each round is compared with the runs on either side. Medians are
    /// reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Also time a Python `json.loads` loop over the same file (needs python3)
    /// and report each row as a ratio to it.
    #[arg(long)]
    python: bool,
    /// Also run two one-thread replays at once in each round and report how
    /// much faster the pair finishes than one alone: the machine's own
    /// ceiling for thread scaling (shared caches, a busy host, sibling
    /// hyperthreads). Needs 1 among the thread counts.
    #[arg(long)]
    pair: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let threads = args.threads.clone().unwrap_or_else(|| {
        let all = default_threads();
        if all > 1 {
            vec![1, all]
        } else {
            vec![1]
        }
    });
    anyhow::ensure!(
        threads.iter().all(|&t| t >= 1),
        "--threads values must be at least 1"
    );
    anyhow::ensure!(
        args.input.is_some() || args.events >= 1,
        "--events must be at least 1"
    );
    let gate = load_gate(args.policy.as_deref())?;
    let scratch_dir = std::env::temp_dir().join(format!("scbe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch_dir)
        .with_context(|| format!("cannot create {}", scratch_dir.display()))?;
    // The generated corpus and the replays' output live in the scratch
    // directory, removed however the bench ends.
    let report = bench_in(&args, gate, threads, &scratch_dir);
    let _ = std::fs::remove_dir_all(&scratch_dir);
    let report = report?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_in(
    args: &BenchArgs,
    gate: scbe_core::Gate,
    threads: Vec<usize>,
    scratch_dir: &std::path::Path,
) -> Result<scbe_sim::bench::BenchReport> {
    let policy = gate.policy().clone();
    let corpus_path = match &args.input {
        Some(path) => path.clone(),
        None => {
            let path = scratch_dir.join("corpus.jsonl");
            let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
            eprintln!("generating {} events (seed {})…", args.events, args.seed);
            synth(
                &SynthConfig {
                    seed: args.seed,
                    events: args.events,
                    attack_ratio: 0.05,
                    hosts: 64,
                },
                &mut file,
            )?;
            std::io::Write::flush(&mut file)?;
            // On disk before the timing starts: the kernel would otherwise
            // write the new file back half a minute later, in the middle of
            // the timed rounds, with the CPU time that takes.
            file.get_ref()
                .sync_all()
                .with_context(|| format!("cannot sync {}", path.display()))?;
            path
        }
    };
    let config = BenchConfig {
        replay: ReplayConfig {
            mapping: MappingOptions {
                real_network_fields: policy.real_network_fields,
                ..MappingOptions::default()
            },
            enforcement: Some(PlannerConfig {
                cooldown_seconds: 0.0,
                quarantine_dir: policy.enforcement.quarantine_dir.clone(),
                backend_names: policy.enforcement.backends.clone(),
                dry_run: true,
                capacity: policy.state_capacity(),
            }),
            gate: Arc::new(gate),
            alerts_only: false,
            max_events: None,
            threads: 1,
            digest: false,
            progress: false,
        },
        threads,
        repeats: args.repeats,
        output_path: scratch_dir.join("decisions.jsonl"),
        python: args.python,
        pair: args.pair,
    };
    run_bench(&corpus_path, &config)
}
