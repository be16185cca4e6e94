//! The decision loop's body: one queued line in, one record out.
//!
//! Each line goes through the same core call `scbe-sim replay` makes
//! (`Bridge::decide_line`), with the system clock as `now`; the plan it returns
//! is then applied (or not) by the [`Enforcer`], and the record is written.
//! Records go to stdout, rejected lines to stderr as
//! `{"error": MESSAGE, "raw": FIRST_2000_CHARS}`, as the reference did.

use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use scbe_core::falco::{raw_prefix, LineError};
use scbe_core::limits::{ERROR_RAW_CHARS_MAX, LINE_BYTES_MAX};
use scbe_core::{Bridge, Clock, DecisionRecord, KernelAction, LineOutcome};

use crate::clock::SystemClock;
use crate::enforce::Enforcer;
use crate::metrics::Metrics;
use crate::queue::Item;

/// How records are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputOptions {
    pub alerts_only: bool,
    pub pretty: bool,
    pub include_kernel_event: bool,
}

/// Whether the loop should keep going after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `--max-events` reached.
    Done,
}

pub struct Engine {
    bridge: Bridge,
    enforcer: Option<Enforcer>,
    options: OutputOptions,
    max_events: Option<u64>,
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    metrics: Arc<Metrics>,
    /// The table changed since the last state save.
    dirty: bool,
    buf: String,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .field("max_events", &self.max_events)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(
        bridge: Bridge,
        enforcer: Option<Enforcer>,
        options: OutputOptions,
        max_events: Option<u64>,
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
        metrics: Arc<Metrics>,
    ) -> Engine {
        metrics.state_entries.set(bridge.table().len() as u64);
        Engine {
            bridge,
            enforcer,
            options,
            max_events,
            out,
            err,
            metrics,
            dirty: false,
            buf: String::with_capacity(4096),
        }
    }

    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn mark_saved(&mut self) {
        self.dirty = false;
    }

    /// Decide one line. An error is an output error (stdout or stderr
    /// closed); a failure inside the decision is caught, counted and logged,
    /// and nothing is enforced for that event (fail safe).
    pub fn process(&mut self, item: Item) -> io::Result<Flow> {
        if self
            .max_events
            .is_some_and(|max| self.metrics.events_seen.get() >= max)
        {
            return Ok(Flow::Done);
        }
        let result = catch_unwind(AssertUnwindSafe(|| self.decide_and_write(&item)));
        match result {
            Ok(result) => result?,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                self.metrics.events_seen.inc();
                self.metrics.internal_errors.inc();
                tracing::error!(%why, "internal error while deciding an event; nothing enforced for it");
                self.write_error(&format!("internal error: {why}"), &item.line)?;
            }
        }
        self.dirty = true;
        let done = self
            .max_events
            .is_some_and(|max| self.metrics.events_seen.get() >= max);
        Ok(if done { Flow::Done } else { Flow::Continue })
    }

    fn decide_and_write(&mut self, item: &Item) -> io::Result<()> {
        let started = Instant::now();
        let outcome = if item.full_len > LINE_BYTES_MAX {
            LineOutcome::Error(LineError::TooLong {
                bytes: item.full_len,
            })
        } else {
            self.bridge
                .decide_line(&item.line, |_event| SystemClock.now())
        };
        let mut record = match outcome {
            LineOutcome::Blank => return Ok(()),
            LineOutcome::Error(error) => {
                self.metrics.events_seen.inc();
                self.metrics.line_errors.inc();
                return self.write_error(&error.to_string(), &item.line);
            }
            LineOutcome::Decided(record) => record,
        };
        self.metrics.events_seen.inc();
        self.metrics.decision_latency.record(started.elapsed());
        self.count(&record);
        if let Some(enforcer) = &mut self.enforcer {
            enforcer.enforce(&mut record, || crate::wire::pid_start_nanos(&item.line));
        }
        if !(self.options.alerts_only && record.kernel_action() == KernelAction::Allow) {
            self.write_record(&record)?;
            self.metrics.events_emitted.inc();
        }
        self.metrics
            .state_entries
            .set(self.bridge.table().len() as u64);
        self.metrics.event_latency.record(item.received.elapsed());
        Ok(())
    }

    fn count(&self, record: &DecisionRecord) {
        self.metrics.by_kernel_action[record.kernel_action() as usize].inc();
        self.metrics.by_cell_state[record.resolution.cell_state as usize].inc();
        if record
            .enforcement
            .as_ref()
            .is_some_and(|plan| !plan.commands.is_empty())
        {
            self.metrics.enforcement_emitted.inc();
        }
    }

    fn write_record(&mut self, record: &DecisionRecord) -> io::Result<()> {
        self.buf.clear();
        record.write_json(&mut self.buf, self.options.include_kernel_event);
        if self.options.pretty {
            // Python's json.dumps(indent=2), from the same record.
            let value: serde_json::Value = serde_json::from_str(&self.buf)
                .map_err(|e| io::Error::other(format!("record is not JSON: {e}")))?;
            self.buf = serde_json::to_string_pretty(&value).map_err(io::Error::other)?;
        }
        self.buf.push('\n');
        self.out.write_all(self.buf.as_bytes())
    }

    fn write_error(&mut self, message: &str, raw: &[u8]) -> io::Result<()> {
        let line = serde_json::json!({
            "error": message,
            "raw": raw_prefix(raw, ERROR_RAW_CHARS_MAX),
        });
        self.err.write_all(format!("{line}\n").as_bytes())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.err.flush()
    }

    /// SIGHUP: swap in the policy file's new gate, keeping all state. An
    /// invalid file is rejected and the running policy stays.
    pub fn reload(&mut self, path: Option<&Path>) {
        let Some(path) = path else {
            tracing::info!("no --policy file: the reference policy stays");
            return;
        };
        let gate = match crate::cli::load_gate(Some(path)) {
            Ok(gate) => gate,
            Err(err) => {
                self.metrics.policy_reload_failures.inc();
                tracing::error!(error = %format!("{err:#}"), "policy reload rejected; keeping the running policy");
                return;
            }
        };
        let old = &self.bridge.gate().policy().enforcement;
        let new = &gate.policy().enforcement;
        if old.cooldown_seconds != new.cooldown_seconds
            || old.quarantine_dir != new.quarantine_dir
            || old.backends != new.backends
        {
            tracing::warn!("policy reload: enforcement.cooldown_seconds, quarantine_dir and backends take effect at the next start");
        }
        if let Some(enforcer) = &mut self.enforcer {
            enforcer
                .guard_mut()
                .set_policy_protected(&new.protected_processes);
        }
        self.bridge.set_gate(Arc::new(gate));
        self.metrics.policy_reloads.inc();
        tracing::info!(path = %path.display(), "policy reloaded");
    }

    /// SIGUSR1: re-arm a tripped circuit breaker.
    pub fn rearm(&mut self) {
        if let Some(enforcer) = &mut self.enforcer {
            enforcer.rearm();
        }
    }
}
