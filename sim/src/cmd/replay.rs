//! `scbe-sim replay`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use scbe_core::{MappingOptions, PlannerConfig};
use scbe_sim::input::open_corpus;
use scbe_sim::replay::{replay, ReplayConfig, OUTPUT_BUFFER_BYTES};
use scbe_sim::util::{default_threads, load_gate, parse_backends};

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Input corpus: a file, `-` for stdin, or a .gz file.
    #[arg(default_value = "-", value_name = "INPUT|-")]
    input: String,
    /// Policy file (TOML); the reference policy when omitted.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Include the enforcement plan in each record.
    #[arg(long)]
    emit_enforcement: bool,
    /// Per-process cooldown in seconds of event time (0 disables); default from the policy (15).
    #[arg(long, value_name = "SECONDS")]
    enforcement_cooldown: Option<f64>,
    /// Quarantine directory used in command previews; default from the policy.
    #[arg(long, value_name = "DIR")]
    quarantine_dir: Option<String>,
    /// Comma-separated backend names listed in plans; default from the policy.
    #[arg(long, value_name = "LIST")]
    enforcement_backends: Option<String>,
    /// Only emit records whose kernel action is not ALLOW.
    #[arg(long)]
    alerts_only: bool,
    /// Host used when an event names none.
    #[arg(long, value_name = "NAME", default_value = "linux-node")]
    host_default: String,
    /// Stop after this many (non-blank) input events.
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
    /// Write records here instead of stdout (`-` is stdout).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Worker threads (default: all cores). Output is identical for every value;
    /// 1 reads, decides and writes on one thread.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Print the SHA-256 of the output stream in the summary.
    #[arg(long)]
    digest: bool,
    /// No progress line and no summary table (the JSON summary is still written).
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    let gate = load_gate(args.policy.as_deref())?;
    let policy = gate.policy().clone();
    let enforcement = args.emit_enforcement.then(|| -> Result<PlannerConfig> {
        let backend_names = match &args.enforcement_backends {
            Some(list) => parse_backends(list)?,
            None => policy.enforcement.backends.clone(),
        };
        let cooldown_seconds = args
            .enforcement_cooldown
            .unwrap_or(policy.enforcement.cooldown_seconds);
        anyhow::ensure!(
            cooldown_seconds.is_finite() && cooldown_seconds >= 0.0,
            "--enforcement-cooldown must be a non-negative number of seconds, got {cooldown_seconds}"
        );
        Ok(PlannerConfig {
            cooldown_seconds,
            quarantine_dir: args
                .quarantine_dir
                .clone()
                .unwrap_or_else(|| policy.enforcement.quarantine_dir.clone()),
            backend_names,
            dry_run: true,
            capacity: policy.state_capacity(),
        })
    });
    let enforcement = enforcement.transpose()?;
    let threads = args.threads.unwrap_or_else(default_threads);
    anyhow::ensure!(threads >= 1, "--threads must be at least 1");
    let config = ReplayConfig {
        mapping: MappingOptions {
            host_default: args.host_default.clone(),
            real_network_fields: policy.real_network_fields,
        },
        gate: Arc::new(gate),
        enforcement,
        alerts_only: args.alerts_only,
        max_events: args.max_events,
        threads,
        digest: args.digest,
        progress: !args.quiet,
    };
    let corpus = open_corpus(&args.input)?;
    let mut out: Box<dyn Write + Send> = match &args.output {
        Some(path) if path.as_os_str() != "-" => Box::new(BufWriter::with_capacity(
            OUTPUT_BUFFER_BYTES,
            File::create(path)
                .with_context(|| format!("cannot create output {}", path.display()))?,
        )),
        _ => Box::new(BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, io::stdout())),
    };
    // Not locked for the whole run: the workers write error lines, and
    // progress is drawn, from other threads.
    let mut errors = BufWriter::new(io::stderr());
    let summary = replay(&config, corpus, &mut out, &mut errors)?;
    drop(out);
    writeln!(errors, "{}", summary.to_json())?;
    if !args.quiet && io::stderr().is_terminal() {
        write!(errors, "{}", summary.to_table())?;
    }
    errors.flush()?;
    Ok(ExitCode::from(summary.exit_code()))
}
