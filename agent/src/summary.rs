//! The end-of-run summary (SPEC §8's keys first, then the agent's own) and
//! the exit status, both read from the shared counters.

use scbe_core::{CellState, KernelAction};

use crate::metrics::Metrics;

/// The summary object written to stderr at exit.
pub fn to_json(metrics: &Metrics, soc_pending: usize) -> String {
    let actions: serde_json::Map<String, serde_json::Value> = KernelAction::ALL
        .iter()
        .map(|a| {
            (
                a.as_str().to_owned(),
                metrics.by_kernel_action[*a as usize].get().into(),
            )
        })
        .collect();
    let states: serde_json::Map<String, serde_json::Value> = CellState::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_owned(),
                metrics.by_cell_state[*s as usize].get().into(),
            )
        })
        .collect();
    serde_json::json!({
        "events_seen": metrics.events_seen.get(),
        "events_emitted": metrics.events_emitted.get(),
        "errors": errors(metrics),
        "enforcement_emitted": metrics.enforcement_emitted.get(),
        "enforcement_applied": metrics.enforcement_applied.get(),
        "enforcement_failed": metrics.enforcement_failed.get(),
        "enforcement_refused": metrics.enforcement_refused.get(),
        "enforcement_breaker_suppressed": metrics.enforcement_breaker_suppressed.get(),
        "breaker_trips": metrics.breaker_trips.get(),
        "queue_dropped": metrics.queue_dropped.get(),
        "http_events_queued": metrics.http_events_queued.get(),
        "policy_reloads": metrics.policy_reloads.get(),
        "policy_reload_failures": metrics.policy_reload_failures.get(),
        "state_entries": metrics.state_entries.get(),
        "soc_spool_pending": soc_pending,
        "by_kernel_action": actions,
        "by_cell_state": states,
    })
    .to_string()
}

/// Lines that failed, including events the agent failed on internally.
pub fn errors(metrics: &Metrics) -> u64 {
    metrics.line_errors.get() + metrics.internal_errors.get()
}

/// The reference's exit status: 2 when any line failed, else 3 when applying
/// and any plan failed (a refusal is a failure), else 0.
pub fn exit_code(metrics: &Metrics, applying: bool) -> u8 {
    if errors(metrics) > 0 {
        2
    } else if applying && metrics.enforcement_failed.get() > 0 {
        3
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_reference() {
        let metrics = Metrics::default();
        assert_eq!(exit_code(&metrics, true), 0);
        metrics.enforcement_failed.inc();
        assert_eq!(exit_code(&metrics, false), 0);
        assert_eq!(exit_code(&metrics, true), 3);
        metrics.line_errors.inc();
        assert_eq!(exit_code(&metrics, true), 2);
        let json: serde_json::Value = serde_json::from_str(&to_json(&metrics, 0)).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .take(6)
            .collect();
        assert_eq!(
            keys,
            [
                "events_seen",
                "events_emitted",
                "errors",
                "enforcement_emitted",
                "enforcement_applied",
                "enforcement_failed"
            ]
        );
    }
}
