//! The HTTP intake under load, at a scale for every test run: 20,000 events
//! over 8 keep-alive connections from the load generator in
//! `examples/load.rs` (which runs the full 1,000,000; see docs/load.md).
//! Every acknowledged event gets exactly one decision record; a refused
//! batch is counted and sent again, so nothing is lost silently.

#[allow(dead_code)]
#[path = "../examples/load.rs"]
mod load;

use std::path::PathBuf;

#[test]
fn every_acknowledged_event_gets_exactly_one_record() {
    let config = load::LoadConfig {
        agent: PathBuf::from(env!("CARGO_BIN_EXE_scbe-agent")),
        events: 20_000,
        connections: 8,
        batch: 50,
        agent_args: Vec::new(),
        retry: true,
    };
    let report = load::run(&config);
    load::print(&config, &report);
    assert_eq!(report.events_sent, config.events);
    assert_eq!(
        report.events_acknowledged, config.events,
        "every batch was accepted in the end"
    );
    assert!(report.is_exact(), "{report:?}");
    assert_eq!(report.exit_code, Some(0));
}

#[test]
fn a_small_queue_refuses_loudly_and_loses_nothing_it_acknowledged() {
    // A queue of 100 events against 8 senders: 503s happen; each refusal is
    // counted by the agent and the batch is sent again.
    let config = load::LoadConfig {
        agent: PathBuf::from(env!("CARGO_BIN_EXE_scbe-agent")),
        events: 5_000,
        connections: 8,
        batch: 50,
        agent_args: vec![
            "--queue-capacity".into(),
            "100".into(),
            "--queue-full-wait-ms".into(),
            "0".into(),
        ],
        retry: true,
    };
    let report = load::run(&config);
    load::print(&config, &report);
    assert!(report.is_exact(), "{report:?}");
    assert_eq!(report.events_acknowledged, config.events);
    assert_eq!(
        report.queue_dropped,
        report.refused_503 * config.batch as u64,
        "every refused event counted"
    );
}
