//! Time each stage of the gate over a file (ns per line), single thread:
//! `cargo run --release -p scbe-core --example stage_times -- FILE`.

// Examples are drivers at the edge, like the binaries: they may read files
// and clocks, which the library itself may not (core/clippy.toml).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::sync::Arc;
use std::time::Instant;

use scbe_core::falco::{classify_line, parse_event, FalcoDoc, MappingOptions, RawLine};
use scbe_core::membrane::ScanScratch;
use scbe_core::{Bridge, Gate, PlannerConfig, Timestamp};

fn main() {
    let path = std::env::args().nth(1).expect("usage: stage_times FILE");
    let data = std::fs::read_to_string(&path).expect("readable UTF-8 file");
    let lines: Vec<&str> = data
        .lines()
        .filter_map(|l| match classify_line(l.as_bytes()) {
            Ok(RawLine::Text(t)) => Some(t),
            _ => None,
        })
        .collect();
    let n = lines.len() as f64;
    let mapping = MappingOptions::default();
    let gate = Arc::new(Gate::reference());
    let time = |name: &str, f: &mut dyn FnMut()| {
        let started = Instant::now();
        f();
        eprintln!(
            "{name:<28} {:>8.0} ns/line",
            started.elapsed().as_nanos() as f64 / n
        );
    };
    time("json read (FalcoDoc)", &mut || {
        for l in &lines {
            std::hint::black_box(FalcoDoc::read(l).ok());
        }
    });
    time("parse_event (read + map)", &mut || {
        for l in &lines {
            std::hint::black_box(parse_event(l, &mapping).ok());
        }
    });
    let events: Vec<_> = lines
        .iter()
        .filter_map(|l| parse_event(l, &mapping).ok())
        .collect();
    let mut scratch = ScanScratch::default();
    time("features (scan + integrity)", &mut || {
        for e in &events {
            std::hint::black_box(gate.features(e, &mut scratch));
        }
    });
    let planner = PlannerConfig {
        cooldown_seconds: 0.0,
        quarantine_dir: "/var/quarantine/scbe".into(),
        backend_names: vec!["systemd".into(), "journald".into()],
        dry_run: true,
        capacity: 50_000,
    };
    let mut bridge = Bridge::new(Arc::clone(&gate), mapping.clone(), Some(planner));
    let mut records = Vec::new();
    time("decide (all but render)", &mut || {
        for e in &events {
            records.push(bridge.decide(e.clone(), Timestamp::ZERO));
        }
    });
    let mut out = String::with_capacity(64 << 20);
    time("render (record + plan JSON)", &mut || {
        for r in &records {
            r.write_json(&mut out, false);
            out.push('\n');
        }
    });
}
