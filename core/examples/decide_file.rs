//! Decide every line of a file sequentially with the reference policy and
//! report events/s: a probe of the core's single-thread speed without the
//! simulator around it. `cargo run --release -p scbe-core --example decide_file -- FILE`
//!
//! (Examples may do I/O; the library may not.)

// Examples are drivers at the edge, like the binaries: they may read files
// and clocks, which the library itself may not (core/clippy.toml).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use scbe_core::{Bridge, Gate, LineOutcome, MappingOptions, PlannerConfig, Timestamp};

fn main() {
    let path = std::env::args().nth(1).expect("usage: decide_file FILE");
    let data = std::fs::read(&path).expect("readable file");
    let planner = PlannerConfig {
        cooldown_seconds: 0.0,
        quarantine_dir: "/var/quarantine/scbe".into(),
        backend_names: vec!["systemd".into(), "journald".into()],
        dry_run: true,
        capacity: 50_000,
    };
    let mut bridge = Bridge::new(
        Arc::new(Gate::reference()),
        MappingOptions::default(),
        Some(planner),
    );
    let mut out = String::with_capacity(64 << 20);
    let started = Instant::now();
    let mut n = 0u64;
    for line in data.split(|&b| b == b'\n') {
        if let LineOutcome::Decided(record) = bridge.decide_line(line, |_| Timestamp::ZERO) {
            record.write_json(&mut out, false);
            out.push('\n');
        }
        n += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = std::io::stderr().write_all(
        format!(
            "{n} lines in {secs:.3} s: {:.0} lines/s ({} output bytes)\n",
            n as f64 / secs,
            out.len()
        )
        .as_bytes(),
    );
}
