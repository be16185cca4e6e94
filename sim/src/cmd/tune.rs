//! `scbe-sim tune`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use scbe_core::{policy_to_toml, Gate, MappingOptions, Policy};
use scbe_sim::evaluate::{evaluate, Filter, SplitRule};
use scbe_sim::input::open_corpus;
use scbe_sim::tune::{plot_svg, reference_scores, tune, FeatureTable, Grid, Objective, Score};
use scbe_sim::util::{default_threads, load_gate};
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct TuneArgs {
    /// Labelled corpus (lines carry `scbe_label`): a file or .gz.
    #[arg(value_name = "CORPUS")]
    corpus: String,
    /// Grid file (TOML: [grid] axes, [random] samples); a built-in grid of 1,024 points when omitted.
    #[arg(long, value_name = "GRID.toml")]
    grid: Option<PathBuf>,
    /// `max-recall[:LIMIT]` (default: max-recall:0.01, i.e. benign containment
    /// at most 1% of training benign keys, ties by lower friction) or `weighted:WC,WF`.
    #[arg(long, value_name = "OBJECTIVE")]
    objective: Option<String>,
    /// Share of chains and of benign process keys held out for testing.
    #[arg(long, value_name = "SHARE", default_value_t = 0.3)]
    test_share: f64,
    /// Seed of the train/test split.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    split_seed: u64,
    /// Base policy: its patterns are used, and its numbers where a point sets none.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where to write the chosen policy (a complete TOML policy file).
    #[arg(long, short, value_name = "best.toml")]
    output: PathBuf,
    /// Draw the Pareto front as SVG.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Pareto-front rows shown in the table.
    #[arg(long, value_name = "N", default_value_t = 12)]
    front_rows: usize,
    /// Host used when an event names none.
    #[arg(long, value_name = "NAME", default_value = "linux-node")]
    host_default: String,
    /// Worker threads (default: all cores). Results are identical for every value.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

fn score_json(s: &Score) -> Value {
    let r = |x: f64| (x * 1e6).round() / 1e6;
    json!({
        "chain_recall": r(s.chain_recall()),
        "detection_recall": r(s.detection_recall()),
        "benign_containment": r(s.benign_containment()),
        "benign_friction": r(s.benign_friction()),
        "chains": s.chains,
        "chains_contained": s.chains_contained,
        "benign_keys": s.benign_keys,
        "benign_keys_contained": s.benign_keys_contained,
        "benign_events": s.benign_events,
        "benign_flagged": s.benign_flagged,
        "ttc_events_median": s.ttc_events_median,
    })
}

/// `key=value key=value`, as the header comment and the summary show a point.
fn params_text(params: &[(String, f64)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn params_json(params: &[(String, f64)]) -> Value {
    Value::Object(params.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

pub fn run(args: TuneArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        (0.0..1.0).contains(&args.test_share),
        "--test-share must be in [0, 1), got {}",
        args.test_share
    );
    let objective = match &args.objective {
        Some(text) => Objective::parse(text)?,
        None => Objective::DEFAULT,
    };
    let gate = load_gate(args.policy.as_deref())?;
    let base = gate.policy().clone();
    let grid = match &args.grid {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read grid file {}", path.display()))?;
            Grid::parse(&text).with_context(|| format!("in grid file {}", path.display()))?
        }
        None => Grid::default_grid(),
    };
    let points = grid.points(&base)?;
    let threads = args.threads.unwrap_or_else(default_threads);
    anyhow::ensure!(threads >= 1, "--threads must be at least 1");
    let mapping = MappingOptions {
        host_default: args.host_default.clone(),
        real_network_fields: base.real_network_fields,
    };
    let split = SplitRule {
        test_share: args.test_share,
        seed: args.split_seed,
    };

    let started = Instant::now();
    let table = FeatureTable::build(&gate, &mapping, open_corpus(&args.corpus)?, threads, split)?;
    let feature_seconds = started.elapsed().as_secs_f64();
    let tuning = tune(&table, points, objective, threads)?;
    let evaluated = tuning.results.len();
    let rate = evaluated as f64 * table.len() as f64 / tuning.scoring_seconds.max(1e-9);

    let (ref_train, ref_test) = reference_scores(&table, || {
        let reference = Policy::reference();
        let mapping = MappingOptions {
            host_default: args.host_default.clone(),
            real_network_fields: reference.real_network_fields,
        };
        let e = evaluate(
            Arc::new(Gate::reference()),
            &mapping,
            open_corpus(&args.corpus)?,
            threads,
            split,
        )?;
        Ok((e.metrics(Filter::Train), e.metrics(Filter::Test)))
    })?;
    let base_outcome = table.outcome(&base);
    let base_train = Score::from_metrics(&scbe_sim::evaluate::Metrics::compute(
        &table.catalog,
        &base_outcome,
        Filter::Train,
    ));
    let base_test = Score::from_metrics(&scbe_sim::evaluate::Metrics::compute(
        &table.catalog,
        &base_outcome,
        Filter::Test,
    ));

    let (chosen_index, constraint_met) =
        tuning.chosen.context("no grid point is a valid policy")?;
    let chosen = &tuning.results[chosen_index];
    let point = &tuning.points[chosen.index];
    let policy = point.apply(&base);

    // The policy file, headed by the command that produced it.
    let command: Vec<String> = std::env::args().collect();
    let mut text = String::new();
    text.push_str(&format!(
        "# Produced by: scbe-sim {}\n",
        command
            .iter()
            .skip(1)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    ));
    text.push_str(&format!("# Objective: {}.\n", objective.describe()));
    text.push_str(&format!(
        "# Grid point {} of {}: {}\n",
        chosen.index,
        tuning.points.len(),
        params_text(&point.params)
    ));
    for (name, s) in [("train", &chosen.train), ("test", &chosen.test)] {
        text.push_str(&format!(
            "# {name}: chain recall {:.4}, benign containment {:.4}, benign friction {:.4} ({} chains, {} benign keys)\n",
            s.chain_recall(), s.benign_containment(), s.benign_friction(), s.chains, s.benign_keys
        ));
    }
    text.push_str(&policy_to_toml(
        &policy,
        "SCBE policy chosen by `scbe-sim tune` (see above).",
    ));
    std::fs::write(&args.output, text)
        .with_context(|| format!("cannot write {}", args.output.display()))?;

    if let Some(plot) = &args.plot {
        let svg = plot_svg(
            &tuning,
            &ref_train,
            &format!(
                "Pareto front over {} grid points ({})",
                evaluated, args.corpus
            ),
        );
        std::fs::write(plot, svg).with_context(|| format!("cannot write {}", plot.display()))?;
    }

    let mut stdout = io::stdout().lock();
    let front: Vec<Value> = tuning
        .front
        .iter()
        .map(|&i| {
            let r = &tuning.results[i];
            json!({
                "point": r.index,
                "params": params_json(&tuning.points[r.index].params),
                "train": score_json(&r.train),
                "test": score_json(&r.test),
            })
        })
        .collect();
    if args.json {
        let train_chains = table.catalog.chains.iter().filter(|c| !c.test).count();
        let train_keys = table
            .catalog
            .keys
            .iter()
            .filter(|k| k.is_benign() && !k.test)
            .count();
        let report = json!({
            "events": table.len(),
            "errors": table.errors,
            "profiles": table.profiles.len(),
            "split": {
                "test_share": args.test_share,
                "seed": args.split_seed,
                "train_chains": train_chains,
                "test_chains": table.catalog.chains.len() - train_chains,
                "train_benign_keys": train_keys,
                "test_benign_keys": table.catalog.keys.iter().filter(|k| k.is_benign()).count() - train_keys,
            },
            "objective": objective.describe(),
            "points": tuning.points.len(),
            "points_invalid": tuning.invalid.len(),
            "points_evaluated": evaluated,
            "front": front,
            "chosen": {
                "point": chosen.index,
                "constraint_met": constraint_met,
                "params": params_json(&point.params),
                "train": score_json(&chosen.train),
                "test": score_json(&chosen.test),
            },
            "base": {"train": score_json(&base_train), "test": score_json(&base_test)},
            "reference": {"train": score_json(&ref_train), "test": score_json(&ref_test)},
            "timing": {
                "feature_seconds": (feature_seconds * 1000.0).round() / 1000.0,
                "scoring_seconds": (tuning.scoring_seconds * 1000.0).round() / 1000.0,
                "grid_point_events_per_second": rate.round(),
                "threads": threads,
            },
        });
        writeln!(stdout, "{report}")?;
    } else {
        let pct = |x: f64| format!("{:7.2}%", x * 100.0);
        writeln!(stdout, "corpus {}: {} events ({} rejected lines), {} chains, {} benign keys, {} feature profiles", args.corpus, table.len(), table.errors, table.catalog.chains.len(), table.catalog.keys.iter().filter(|k| k.is_benign()).count(), table.profiles.len())?;
        writeln!(
            stdout,
            "split: test share {} (seed {}), by chain and by benign process key",
            args.test_share, args.split_seed
        )?;
        writeln!(
            stdout,
            "grid: {} points, {} invalid (skipped), {} evaluated",
            tuning.points.len(),
            tuning.invalid.len(),
            evaluated
        )?;
        writeln!(stdout, "time: features {:.2}s (once per event), scoring {:.2}s on {} threads = {:.3e} grid points x events per second", feature_seconds, tuning.scoring_seconds, threads, rate)?;
        writeln!(
            stdout,
            "\nPareto front (train: chain recall vs benign containment and friction), {} points:",
            tuning.front.len()
        )?;
        writeln!(
            stdout,
            "{:>7} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}",
            "point", "recall", "contain", "friction", "recall", "contain", "friction"
        )?;
        let step = (tuning.front.len() / args.front_rows.max(1)).max(1);
        for &i in tuning.front.iter().step_by(step) {
            let r = &tuning.results[i];
            writeln!(
                stdout,
                "{:>7} {} {} {} | {} {} {}   (train | test)",
                r.index,
                pct(r.train.chain_recall()),
                pct(r.train.benign_containment()),
                pct(r.train.benign_friction()),
                pct(r.test.chain_recall()),
                pct(r.test.benign_containment()),
                pct(r.test.benign_friction())
            )?;
        }
        writeln!(
            stdout,
            "\nobjective: {}{}",
            objective.describe(),
            if constraint_met {
                ""
            } else {
                "  (NOT MET by any point: least containment chosen)"
            }
        )?;
        writeln!(
            stdout,
            "chosen point {}: {}",
            chosen.index,
            params_text(&point.params)
        )?;
        writeln!(
            stdout,
            "\n{:<22} {:>12} {:>12} {:>12} {:>12}",
            "", "chain recall", "containment", "friction", "detection"
        )?;
        for (name, s) in [
            ("chosen (train)", &chosen.train),
            ("chosen (test)", &chosen.test),
            ("base (train)", &base_train),
            ("base (test)", &base_test),
            ("reference (train)", &ref_train),
            ("reference (test)", &ref_test),
        ] {
            writeln!(
                stdout,
                "{:<22} {:>12} {:>12} {:>12} {:>12}",
                name,
                pct(s.chain_recall()),
                pct(s.benign_containment()),
                pct(s.benign_friction()),
                pct(s.detection_recall())
            )?;
        }
        writeln!(stdout, "\nwrote {}", args.output.display())?;
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
