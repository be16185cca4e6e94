//! `scbe-sim synth`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use scbe_sim::synth::{synth, SynthConfig, HOSTS_MAX};

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Seed of the generator: the same seed and version give the same bytes.
    #[arg(long)]
    seed: u64,
    /// Number of events (lines) to write.
    #[arg(long, value_name = "N")]
    events: u64,
    /// Share of events that belong to attack chains, in [0, 1].
    #[arg(long, value_name = "R", default_value_t = 0.02)]
    attack_ratio: f64,
    /// Number of hosts in the simulated fleet.
    #[arg(long, value_name = "H", default_value_t = 16)]
    hosts: usize,
    /// Output file (`-` for stdout). Lines are streamed, never held.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
}

pub fn run(args: SynthArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.attack_ratio),
        "--attack-ratio must be in [0, 1], got {}",
        args.attack_ratio
    );
    anyhow::ensure!(
        (1..=HOSTS_MAX).contains(&args.hosts),
        "--hosts must be in [1, {HOSTS_MAX}], got {}",
        args.hosts
    );
    let config = SynthConfig {
        seed: args.seed,
        events: args.events,
        attack_ratio: args.attack_ratio,
        hosts: args.hosts,
    };
    eprintln!(
        "scbe-sim synth: seed {} events {} attack-ratio {} hosts {}",
        config.seed, config.events, config.attack_ratio, config.hosts
    );
    let summary = if args.output.as_os_str() == "-" {
        let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
        synth(&config, &mut out)?
    } else {
        let file = File::create(&args.output)
            .with_context(|| format!("cannot create output {}", args.output.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let summary = synth(&config, &mut out)?;
        out.flush()?;
        summary
    };
    let by_scenario: Vec<String> = summary
        .chains_by_scenario
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name}={n}"))
        .collect();
    eprintln!(
        "scbe-sim synth: seed {} wrote {} events ({} malicious in {} chains: {})",
        config.seed,
        summary.events,
        summary.malicious_events,
        summary.chains,
        by_scenario.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}
