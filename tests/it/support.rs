//! Shared helpers: run a replay in memory, find `../shared`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use scbe_core::{Gate, MappingOptions, PlannerConfig, Policy};
use scbe_sim::input::open_corpus;
use scbe_sim::replay::{replay, ReplayConfig, ReplaySummary};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` next to the checkout, when present. Tests that need it print
/// why they skip when it is absent (outside this workplace).
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = root().join("../shared");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{test}: skipped: ../shared (the reference corpora) is not present");
        None
    }
}

/// Replay settings of the parity set: enforcement planned, cooldown 0.
pub fn parity_config(threads: usize) -> ReplayConfig {
    config(Policy::reference(), threads, true)
}

pub fn config(policy: Policy, threads: usize, emit_enforcement: bool) -> ReplayConfig {
    let capacity = policy.state_capacity();
    let backend_names = policy.enforcement.backends.clone();
    ReplayConfig {
        mapping: MappingOptions {
            real_network_fields: policy.real_network_fields,
            ..MappingOptions::default()
        },
        gate: Arc::new(Gate::new(policy).expect("policy compiles")),
        enforcement: emit_enforcement.then(|| PlannerConfig {
            cooldown_seconds: 0.0,
            quarantine_dir: "/var/quarantine/scbe".to_owned(),
            backend_names,
            dry_run: true,
            capacity,
        }),
        alerts_only: false,
        max_events: None,
        threads,
        digest: true,
        progress: false,
    }
}

/// Replay a file in memory: (records, error lines, summary).
pub fn replay_file(path: &Path, config: &ReplayConfig) -> (String, String, ReplaySummary) {
    let corpus = open_corpus(path.to_str().expect("utf-8 path")).expect("corpus opens");
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let summary = replay(config, corpus, &mut out, &mut errors).expect("replay runs");
    (
        String::from_utf8(out).expect("records are UTF-8"),
        String::from_utf8(errors).expect("errors are UTF-8"),
        summary,
    )
}

/// Lines in a file as the replay counts them (universal newlines).
pub fn count_lines(bytes: &[u8]) -> u64 {
    let mut n = 0;
    let mut i = 0;
    let mut line_has_bytes = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                n += 1;
                line_has_bytes = false;
            }
            b'\r' => {
                n += 1;
                line_has_bytes = false;
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            _ => line_has_bytes = true,
        }
        i += 1;
    }
    n + u64::from(line_has_bytes)
}
