//! `scbe-sim diff`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use scbe_sim::diff::{diff_decision_files, diff_policies, DiffReport};
use scbe_sim::input::open_corpus;
use scbe_sim::util::{default_threads, load_gate};

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// Policy A then policy B (give --policy twice; `reference` names the reference policy).
    #[arg(long, value_name = "FILE", num_args = 1)]
    policy: Vec<String>,
    /// A corpus (with two --policy), or two decision files written by `replay` (without).
    #[arg(value_name = "CORPUS | A.jsonl B.jsonl", num_args = 1..=2, required = true)]
    inputs: Vec<String>,
    /// How many changed events to list side by side.
    #[arg(long, value_name = "N", default_value_t = 10)]
    show: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Host used when an event names none.
    #[arg(long, value_name = "NAME", default_value = "linux-node")]
    host_default: String,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// Exit status: 0 no change, 1 changed, 2 trouble (as diff(1)).
pub fn run(args: DiffArgs) -> Result<ExitCode> {
    match compare(&args) {
        Ok(true) => Ok(ExitCode::from(1)),
        Ok(false) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            eprintln!("scbe-sim diff: error: {err:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn compare(args: &DiffArgs) -> Result<bool> {
    let mut report = DiffReport::new(args.show);
    let (name_a, name_b) = match (args.policy.as_slice(), args.inputs.as_slice()) {
        ([a, b], [corpus]) => {
            let load = |name: &str| {
                if name == "reference" {
                    load_gate(None)
                } else {
                    load_gate(Some(&PathBuf::from(name)))
                }
            };
            let (gate_a, gate_b) = (Arc::new(load(a)?), Arc::new(load(b)?));
            let threads = args.threads.unwrap_or_else(default_threads);
            anyhow::ensure!(threads >= 1, "--threads must be at least 1");
            diff_policies(gate_a, gate_b, &args.host_default, open_corpus(corpus)?, threads, &mut report)?;
            (format!("policy {a}"), format!("policy {b}"))
        }
        ([], [a, b]) => {
            diff_decision_files(a, b, &mut report)?;
            (format!("decisions {a}"), format!("decisions {b}"))
        }
        _ => anyhow::bail!(
            "usage: scbe-sim diff --policy A.toml --policy B.toml CORPUS, or scbe-sim diff A.jsonl B.jsonl"
        ),
    };
    let mut stdout = io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", report.to_json())?;
    } else {
        write!(stdout, "{}", report.to_table(&name_a, &name_b))?;
        writeln!(
            stdout,
            "\n{}",
            if report.changed() {
                "CHANGED (exit 1)"
            } else {
                "no change (exit 0)"
            }
        )?;
    }
    stdout.flush()?;
    Ok(report.changed())
}
