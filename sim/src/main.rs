//! `scbe-sim`: the command line. Parses flags into configs and calls the library.

use std::io;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod allocator;
mod cmd;

#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

#[derive(Parser, Debug)]
#[command(
    name = "scbe-sim",
    version,
    about = "Replay Falco corpora through the SCBE kernel gate; generate, evaluate, tune and diff policies.",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decide every event of a Falco JSON-lines corpus (file, `-` for stdin, or .jsonl.gz).
    ///
    /// Records go to stdout (or --output), one JSON object per line; rejected
    /// lines go to stderr as {"line":N,"error":…,"raw":…}, then a summary
    /// object. Exit status: 0 success, 2 when any line was rejected.
    Replay(cmd::replay::ReplayArgs),
    /// Work with policy files.
    Policy(cmd::policy::PolicyArgs),
    /// Measure replay throughput, thread scaling, per-event latency and peak memory.
    Bench(cmd::bench::BenchArgs),
    /// Write a labelled synthetic Falco corpus (attack chains + realistic benign hosts).
    ///
    /// The seed is printed; the same seed and version give the same bytes.
    Synth(cmd::synth::SynthArgs),
    /// Score a policy against a labelled corpus: chain recall, time to
    /// containment, benign friction and benign containment.
    ///
    /// Decides exactly as `replay` does. Exit status 0 (rejected lines are
    /// counted in the report, not an error).
    Evaluate(cmd::evaluate::EvaluateArgs),
    /// Search policy numbers over a labelled corpus (grid and random search):
    /// train/test split, Pareto front, chosen policy written as TOML.
    ///
    /// Scans each event once; grid points run in parallel.
    Tune(cmd::tune::TuneArgs),
    /// What would change if policy B replaced policy A: changed events and
    /// process keys, action and cell-state transitions, changed events side by side.
    ///
    /// Exit status: 0 no change, 1 changed, 2 error — so it can gate CI.
    Diff(cmd::diff::DiffArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("scbe-sim: error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Replay(args) => cmd::replay::run(args),
        Command::Policy(args) => cmd::policy::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Synth(args) => cmd::synth::run(args),
        Command::Evaluate(args) => cmd::evaluate::run(args),
        Command::Tune(args) => cmd::tune::run(args),
        Command::Diff(args) => cmd::diff::run(args),
    }
}
