//! Counters shared by every thread, the Prometheus text rendering, and the
//! `--metrics` endpoint. The end-of-run summary reads the same counters, so
//! the two can never disagree.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use scbe_core::policy_toml::BACKEND_NAMES;
use scbe_core::{CellState, KernelAction};

use crate::httpd::{Handler, Head, Response};
use crate::queue::Queue;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Latencies in microseconds, 1 µs to 1 h, 3 significant digits.
#[derive(Debug)]
pub struct Latency {
    histogram: Mutex<Histogram<u64>>,
    sum_micros: AtomicU64,
}

/// Bucket bounds (seconds) of the rendered Prometheus histograms.
const LATENCY_BUCKETS_SECONDS: [f64; 12] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
];

impl Default for Latency {
    fn default() -> Self {
        Latency {
            histogram: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            ),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Latency {
    pub fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut histogram = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        histogram.saturating_record(micros);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The value at `quantile` (0..=1), in microseconds.
    pub fn quantile_micros(&self, quantile: f64) -> u64 {
        let histogram = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        histogram.value_at_quantile(quantile)
    }

    pub fn count(&self) -> u64 {
        self.histogram
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let histogram = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for bound in LATENCY_BUCKETS_SECONDS {
            let micros = (bound * 1e6) as u64;
            let count = histogram.count_between(0, micros);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", histogram.len());
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", histogram.len());
    }
}

/// Index of a backend name in `BACKEND_NAMES` (for per-backend counters).
pub fn backend_index(name: &str) -> Option<usize> {
    BACKEND_NAMES.iter().position(|n| *n == name)
}

/// Everything the agent counts.
#[derive(Debug, Default)]
pub struct Metrics {
    // Decisions.
    pub events_seen: Counter,
    pub events_emitted: Counter,
    pub line_errors: Counter,
    pub internal_errors: Counter,
    pub by_kernel_action: [Counter; 5],
    pub by_cell_state: [Counter; 4],
    pub decision_latency: Latency,
    pub event_latency: Latency,

    // Enforcement (per plan).
    pub enforcement_emitted: Counter,
    pub enforcement_applied: Counter,
    pub enforcement_failed: Counter,
    pub enforcement_refused: Counter,
    pub enforcement_breaker_suppressed: Counter,
    pub enforcement_cooldown_skipped: Counter,
    pub enforcement_invariant_violations: Counter,
    // Per backend, indexed like `BACKEND_NAMES`.
    pub backend_applied: [Counter; 4],
    pub backend_failed: [Counter; 4],
    pub breaker_open: Gauge,
    pub breaker_trips: Counter,

    // Intake.
    pub queue_dropped: Counter,
    pub http_requests: Counter,
    pub http_events_queued: Counter,
    pub http_rejected_bad_json: Counter,
    pub http_rejected_too_large: Counter,
    pub http_rejected_unauthorized: Counter,
    pub http_rejected_queue_full: Counter,
    pub http_rejected_shutting_down: Counter,
    pub http_rejected_timeout: Counter,
    pub http_rejected_malformed: Counter,
    pub http_not_found: Counter,
    pub intake_read_errors: Counter,
    pub follow_rotations: Counter,

    // Operations.
    pub policy_reloads: Counter,
    pub policy_reload_failures: Counter,
    pub state_saves: Counter,
    pub state_save_failures: Counter,
    pub state_entries: Gauge,
    pub soc_spool_depth: Gauge,
    pub soc_spool_dropped: Counter,
    pub soc_delivered: Counter,
    pub soc_delivery_failures: Counter,
    pub audit_write_failures: Counter,
    pub journald_fallbacks: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, queue: &Queue) -> String {
        let mut out = String::with_capacity(8 << 10);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "scbe_agent_events_seen_total",
            "Non-blank input lines taken from the queue.",
            self.events_seen.get(),
        );
        counter(
            "scbe_agent_events_emitted_total",
            "Decision records written.",
            self.events_emitted.get(),
        );
        counter(
            "scbe_agent_line_errors_total",
            "Input lines that could not be decided (bad JSON, not an object, too long).",
            self.line_errors.get(),
        );
        counter(
            "scbe_agent_internal_errors_total",
            "Events whose processing failed inside the agent; nothing was enforced for them.",
            self.internal_errors.get(),
        );
        counter(
            "scbe_agent_queue_dropped_total",
            "Events refused because the intake queue stayed full (HTTP answered 503).",
            self.queue_dropped.get(),
        );
        counter(
            "scbe_agent_http_requests_total",
            "Intake HTTP requests received.",
            self.http_requests.get(),
        );
        counter(
            "scbe_agent_http_events_queued_total",
            "Events queued from HTTP requests.",
            self.http_events_queued.get(),
        );
        counter(
            "scbe_agent_intake_read_errors_total",
            "Read errors on stdin, input or followed files.",
            self.intake_read_errors.get(),
        );
        counter(
            "scbe_agent_follow_rotations_total",
            "Rotations or truncations seen on the followed file.",
            self.follow_rotations.get(),
        );
        counter(
            "scbe_agent_breaker_trips_total",
            "Times the circuit breaker disarmed enforcement.",
            self.breaker_trips.get(),
        );
        counter(
            "scbe_agent_soc_spool_dropped_total",
            "SOC action events not spooled because the spool was full.",
            self.soc_spool_dropped.get(),
        );
        counter(
            "scbe_agent_soc_delivered_total",
            "SOC action events delivered (directly or from the spool).",
            self.soc_delivered.get(),
        );
        counter(
            "scbe_agent_soc_delivery_failures_total",
            "Failed SOC delivery attempts.",
            self.soc_delivery_failures.get(),
        );
        counter(
            "scbe_agent_audit_write_failures_total",
            "Audit log lines that could not be written.",
            self.audit_write_failures.get(),
        );
        counter(
            "scbe_agent_journald_fallbacks_total",
            "Journald entries written to the agent log because the socket was unavailable.",
            self.journald_fallbacks.get(),
        );

        let _ = writeln!(
            out,
            "# HELP scbe_agent_events_total Decided events by kernel action.\n# TYPE scbe_agent_events_total counter"
        );
        for action in KernelAction::ALL {
            let _ = writeln!(
                out,
                "scbe_agent_events_total{{kernel_action=\"{}\"}} {}",
                action.as_str(),
                self.by_kernel_action[action as usize].get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP scbe_agent_cell_state_total Decided events by immune cell state.\n# TYPE scbe_agent_cell_state_total counter"
        );
        for state in CellState::ALL {
            let _ = writeln!(
                out,
                "scbe_agent_cell_state_total{{cell_state=\"{}\"}} {}",
                state.as_str(),
                self.by_cell_state[state as usize].get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP scbe_agent_http_rejected_total Intake HTTP requests refused, by reason.\n# TYPE scbe_agent_http_rejected_total counter"
        );
        for (reason, value) in [
            ("bad_json", &self.http_rejected_bad_json),
            ("too_large", &self.http_rejected_too_large),
            ("unauthorized", &self.http_rejected_unauthorized),
            ("queue_full", &self.http_rejected_queue_full),
            ("shutting_down", &self.http_rejected_shutting_down),
            ("timeout", &self.http_rejected_timeout),
            ("malformed", &self.http_rejected_malformed),
            ("not_found", &self.http_not_found),
        ] {
            let _ = writeln!(
                out,
                "scbe_agent_http_rejected_total{{reason=\"{reason}\"}} {}",
                value.get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP scbe_agent_enforcement_total Enforcement plans with an action, by outcome.\n# TYPE scbe_agent_enforcement_total counter"
        );
        for (outcome, value) in [
            ("emitted", &self.enforcement_emitted),
            ("applied", &self.enforcement_applied),
            ("failed", &self.enforcement_failed),
            ("refused", &self.enforcement_refused),
            ("breaker_open", &self.enforcement_breaker_suppressed),
            ("cooldown", &self.enforcement_cooldown_skipped),
            (
                "invariant_violation",
                &self.enforcement_invariant_violations,
            ),
        ] {
            let _ = writeln!(
                out,
                "scbe_agent_enforcement_total{{outcome=\"{outcome}\"}} {}",
                value.get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP scbe_agent_backend_total Backend applications, by backend and result.\n# TYPE scbe_agent_backend_total counter"
        );
        for (i, name) in BACKEND_NAMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "scbe_agent_backend_total{{backend=\"{name}\",result=\"applied\"}} {}\nscbe_agent_backend_total{{backend=\"{name}\",result=\"failed\"}} {}",
                self.backend_applied[i].get(),
                self.backend_failed[i].get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP scbe_agent_policy_reloads_total Policy reloads (SIGHUP), by result.\n# TYPE scbe_agent_policy_reloads_total counter\nscbe_agent_policy_reloads_total{{result=\"ok\"}} {}\nscbe_agent_policy_reloads_total{{result=\"failed\"}} {}",
            self.policy_reloads.get(),
            self.policy_reload_failures.get()
        );
        let _ = writeln!(
            out,
            "# HELP scbe_agent_state_saves_total State file saves, by result.\n# TYPE scbe_agent_state_saves_total counter\nscbe_agent_state_saves_total{{result=\"ok\"}} {}\nscbe_agent_state_saves_total{{result=\"failed\"}} {}",
            self.state_saves.get(),
            self.state_save_failures.get()
        );

        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "scbe_agent_queue_depth",
            "Events waiting in the intake queue.",
            queue.depth() as u64,
        );
        gauge(
            "scbe_agent_queue_capacity",
            "Capacity of the intake queue.",
            queue.capacity() as u64,
        );
        gauge(
            "scbe_agent_queue_high_water",
            "Most events ever waiting in the intake queue.",
            queue.high_water() as u64,
        );
        gauge(
            "scbe_agent_breaker_open",
            "1 while the circuit breaker holds enforcement in dry-run.",
            self.breaker_open.get(),
        );
        gauge(
            "scbe_agent_state_entries",
            "Processes in the antibody table.",
            self.state_entries.get(),
        );
        gauge(
            "scbe_agent_soc_spool_depth",
            "SOC action events waiting in the on-disk spool.",
            self.soc_spool_depth.get(),
        );

        self.decision_latency.render(
            &mut out,
            "scbe_agent_decision_latency_seconds",
            "Time to decide one event (parse, score, turnstile, plan).",
        );
        self.event_latency.render(
            &mut out,
            "scbe_agent_event_latency_seconds",
            "Time from intake to the record being written, enforcement included.",
        );
        out
    }
}

/// `GET /metrics` (Prometheus text) and `GET /healthz`.
#[derive(Debug)]
pub struct Endpoint {
    metrics: Arc<Metrics>,
    queue: Arc<Queue>,
}

impl Endpoint {
    pub fn new(metrics: Arc<Metrics>, queue: Arc<Queue>) -> Endpoint {
        Endpoint { metrics, queue }
    }
}

impl Handler for Endpoint {
    fn head(&self, head: &Head) -> Option<Response> {
        Some(match (head.method.as_str(), head.path.as_str()) {
            ("GET" | "HEAD", "/metrics") => Response::text(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(&self.queue),
            ),
            ("GET" | "HEAD", "/healthz") => Response::text(200, "text/plain", "ok\n"),
            _ => Response::error(404, "not found: GET /metrics, GET /healthz"),
        })
    }

    fn body(&self, _head: &Head, _body: Vec<u8>) -> Response {
        Response::error(405, "the metrics endpoint takes no request bodies")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let metrics = Metrics::default();
        metrics.events_seen.add(3);
        metrics.by_kernel_action[KernelAction::Quarantine as usize].inc();
        metrics.decision_latency.record(Duration::from_micros(40));
        metrics.decision_latency.record(Duration::from_millis(2));
        let queue = Queue::new(7);
        let text = metrics.render(&queue);
        assert!(text.contains("scbe_agent_events_seen_total 3\n"));
        assert!(text.contains("scbe_agent_events_total{kernel_action=\"QUARANTINE\"} 1\n"));
        assert!(text.contains("scbe_agent_queue_capacity 7\n"));
        assert!(text.contains("scbe_agent_decision_latency_seconds_bucket{le=\"0.00005\"} 1\n"));
        assert!(text.contains("scbe_agent_decision_latency_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("scbe_agent_decision_latency_seconds_count 2\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
        }
    }
}
