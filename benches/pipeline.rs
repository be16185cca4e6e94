//! Criterion benches of the data path, one per stage, named after what they
//! measure. Input: the first lines of the shipped example corpora repeated,
//! or `../shared/parity/corpus.jsonl` when present (Falco-shaped, mixed).

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use scbe_core::falco::{classify_line, parse_event, MappingOptions, RawLine};
use scbe_core::membrane::ScanScratch;
use scbe_core::{prepare_event, Bridge, Gate, KernelEvent, PlannerConfig, Policy, Timestamp};

fn corpus_lines() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let parity = root.join("../shared/parity/corpus.jsonl");
    let text = std::fs::read_to_string(&parity).unwrap_or_else(|_| {
        ["clean-workload.jsonl", "attack-chain.jsonl"]
            .iter()
            .map(|f| std::fs::read_to_string(root.join("corpora/examples").join(f)).unwrap())
            .collect()
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(4000)
        .map(str::to_owned)
        .collect()
}

fn events(lines: &[String]) -> Vec<KernelEvent> {
    let mapping = MappingOptions::default();
    lines
        .iter()
        .filter_map(|l| match classify_line(l.as_bytes()) {
            Ok(RawLine::Text(t)) => parse_event(t, &mapping).ok(),
            _ => None,
        })
        .collect()
}

fn planner() -> PlannerConfig {
    PlannerConfig {
        cooldown_seconds: 0.0,
        quarantine_dir: "/var/quarantine/scbe".into(),
        backend_names: vec!["systemd".into(), "journald".into()],
        dry_run: true,
        capacity: 50_000,
    }
}

fn benches(c: &mut Criterion) {
    let lines = corpus_lines();
    let events = events(&lines);
    let gate = Arc::new(Gate::new(Policy::reference()).unwrap());
    let mapping = MappingOptions::default();

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("falco_line_to_event", |b| {
        b.iter(|| {
            for line in &lines {
                if let Ok(RawLine::Text(t)) = classify_line(line.as_bytes()) {
                    let _ = black_box(parse_event(t, &mapping));
                }
            }
        })
    });
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("gate_on_parsed_event", |b| {
        let mut scratch = ScanScratch::default();
        b.iter(|| {
            for event in &events {
                let features = gate.features(event, &mut scratch);
                black_box(gate.resolve(&gate.assess(&features), 0.2));
            }
        })
    });
    let mut bridge = Bridge::new(Arc::clone(&gate), mapping.clone(), Some(planner()));
    let records: Vec<_> = events
        .iter()
        .cloned()
        .map(|e| bridge.decide(e, Timestamp::ZERO))
        .collect();
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("record_and_plan_serialization", |b| {
        let mut out = String::with_capacity(1 << 20);
        b.iter(|| {
            out.clear();
            for record in &records {
                record.write_json(&mut out, false);
                out.push('\n');
            }
            black_box(out.len())
        })
    });
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("whole_line_pipeline", |b| {
        b.iter(|| {
            let mut bridge = Bridge::new(Arc::clone(&gate), mapping.clone(), Some(planner()));
            let mut out = String::with_capacity(1 << 20);
            for line in &lines {
                if let scbe_core::LineOutcome::Decided(record) =
                    bridge.decide_line(line.as_bytes(), |_| Timestamp::ZERO)
                {
                    record.write_json(&mut out, false);
                    out.push('\n');
                }
            }
            black_box(out.len())
        })
    });
    group.bench_function("prepare_stage_only", |b| {
        let mut scratch = ScanScratch::default();
        b.iter(|| {
            for event in &events {
                black_box(prepare_event(&gate, event.clone(), &mut scratch));
            }
        })
    });
    group.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
