//! `scbe-sim evaluate`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use scbe_core::MappingOptions;
use scbe_sim::evaluate::{evaluate, Filter, SplitRule};
use scbe_sim::input::open_corpus;
use scbe_sim::util::{default_threads, load_gate};

#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    /// Labelled corpus (lines carry `scbe_label`): a file, `-` for stdin, or .gz.
    #[arg(value_name = "CORPUS")]
    corpus: String,
    /// Policy file (TOML); the reference policy when omitted.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Host used when an event names none.
    #[arg(long, value_name = "NAME", default_value = "linux-node")]
    host_default: String,
    /// Worker threads (default: all cores). Results are identical for every value.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

pub fn run(args: EvaluateArgs) -> Result<ExitCode> {
    let gate = load_gate(args.policy.as_deref())?;
    let mapping = MappingOptions {
        host_default: args.host_default.clone(),
        real_network_fields: gate.policy().real_network_fields,
    };
    let threads = args.threads.unwrap_or_else(default_threads);
    anyhow::ensure!(threads >= 1, "--threads must be at least 1");
    let corpus = open_corpus(&args.corpus)?;
    let evaluation = evaluate(Arc::new(gate), &mapping, corpus, threads, SplitRule::NONE)?;
    let metrics = evaluation.metrics(Filter::All);
    let mut stdout = io::stdout().lock();
    if args.json {
        let mut object = metrics.to_json();
        object["errors"] = evaluation.errors.into();
        writeln!(stdout, "{object}")?;
    } else {
        let policy = args
            .policy
            .as_ref()
            .map_or("reference".to_owned(), |p| p.display().to_string());
        writeln!(
            stdout,
            "corpus {}   policy {}   rejected lines {}",
            args.corpus, policy, evaluation.errors
        )?;
        write!(stdout, "{}", metrics.to_table())?;
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
