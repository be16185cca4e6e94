//! Applying enforcement plans: the sinks of the agent.
//!
//! The core plans (commands, cooldown, the structured action); this module
//! decides nothing about *what* to do. It only decides whether it is safe to
//! do it (safety rails, circuit breaker, invariants) and hands the action to
//! each configured backend, then fills the plan's `applied`, `failures` and
//! `backend_details` for the record.

pub mod audit;
pub mod breaker;
pub mod guard;
pub mod journald;
pub mod procfs;
pub mod quarantine;
pub mod signal;
pub mod soc;
pub mod spool;
pub mod systemd;

use std::sync::Arc;
use std::time::Instant;

use scbe_core::enforcement::BackendDetail;
use scbe_core::{DecisionRecord, EnforcementAction, KernelEvent};

use crate::metrics::{backend_index, Metrics};
use audit::AuditLog;
use breaker::{Admit, Breaker};
use guard::{Guard, Target};

/// What a backend is given for one action.
#[derive(Debug)]
pub struct Context<'a> {
    pub action: &'a EnforcementAction,
    pub event: &'a KernelEvent,
    /// The process the safety rails verified (when a containment backend is
    /// configured; reporting-only setups do not touch processes).
    pub target: Option<&'a Target>,
    pub guard: &'a Guard,
}

/// A backend's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The effect happened (the process was signalled, the entry sent...).
    pub applied: bool,
    pub failures: Vec<String>,
    pub detail: String,
}

impl Outcome {
    pub fn detail(applied: bool, detail: String) -> Outcome {
        Outcome {
            applied,
            failures: Vec::new(),
            detail,
        }
    }

    pub fn failed(failure: String) -> Outcome {
        Outcome {
            applied: false,
            failures: vec![failure],
            detail: String::new(),
        }
    }
}

/// An enforcement sink.
pub trait Backend: Send + std::fmt::Debug {
    fn name(&self) -> &'static str;
    /// Whether it acts on processes (and so needs the safety rails' verdict
    /// and counts toward the circuit breaker).
    fn contains_processes(&self) -> bool;
    fn apply(&mut self, ctx: &Context<'_>) -> Outcome;
}

/// How one plan ended, for metrics and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to apply (dry-run, ALLOW, cooldown).
    NotApplicable,
    Applied,
    Failed,
    Refused,
    BreakerOpen,
    InvariantViolation,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotApplicable => "not_applicable",
            Verdict::Applied => "applied",
            Verdict::Failed => "failed",
            Verdict::Refused => "refused",
            Verdict::BreakerOpen => "breaker_open",
            Verdict::InvariantViolation => "invariant_violation",
        }
    }
}

/// Applies plans through the backends, behind the safety rails.
#[derive(Debug)]
pub struct Enforcer {
    apply: bool,
    backends: Vec<Box<dyn Backend>>,
    guard: Guard,
    breaker: Breaker,
    audit: Option<AuditLog>,
    metrics: Arc<Metrics>,
}

impl Enforcer {
    pub fn new(
        apply: bool,
        backends: Vec<Box<dyn Backend>>,
        guard: Guard,
        breaker: Breaker,
        audit: Option<AuditLog>,
        metrics: Arc<Metrics>,
    ) -> Enforcer {
        Enforcer {
            apply,
            backends,
            guard,
            breaker,
            audit,
            metrics,
        }
    }

    pub fn guard_mut(&mut self) -> &mut Guard {
        &mut self.guard
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Operator re-arm (SIGUSR1).
    pub fn rearm(&mut self) {
        if self.breaker.is_open() {
            tracing::warn!("circuit breaker re-armed by the operator: enforcement is live again");
        }
        self.breaker.rearm();
        self.metrics.breaker_open.set(0);
    }

    fn contains_processes(&self) -> bool {
        self.backends.iter().any(|b| b.contains_processes())
    }

    /// Apply the record's plan (when applying), filling in its outcome.
    /// `pid_start_nanos` reads the event's `proc.pid.ts` (only called when
    /// a process is about to be acted on).
    pub fn enforce(
        &mut self,
        record: &mut DecisionRecord,
        pid_start_nanos: impl FnOnce() -> Option<i64>,
    ) -> Verdict {
        let DecisionRecord {
            event,
            enforcement,
            assessment,
            resolution,
            ..
        } = record;
        let Some(plan) = enforcement.as_mut() else {
            return Verdict::NotApplicable;
        };
        if plan.cooldown_skipped {
            self.metrics.enforcement_cooldown_skipped.inc();
        }
        let Some(action) = plan.action.as_ref() else {
            return Verdict::NotApplicable;
        };
        if !self.apply {
            return Verdict::NotApplicable;
        }

        // Fail safe: an inconsistent plan is never applied.
        let verdict = if let Err(why) = check_invariants(
            action,
            event,
            assessment.suspicion,
            resolution.kernel_action,
        ) {
            self.metrics.enforcement_invariant_violations.inc();
            tracing::error!(%why, process_key = %action.process_key, "enforcement invariant violated; nothing applied");
            plan.dry_run = true;
            plan.failures
                .push(format!("invariant violated, nothing applied: {why}"));
            Verdict::InvariantViolation
        } else if self.backends.is_empty() {
            plan.failures
                .push("no enforcement backends configured".to_owned());
            Verdict::Failed
        } else {
            self.dispatch(plan, event, pid_start_nanos)
        };

        match verdict {
            Verdict::Refused => self.metrics.enforcement_refused.inc(),
            Verdict::BreakerOpen => self.metrics.enforcement_breaker_suppressed.inc(),
            _ => {}
        }
        if plan.applied {
            self.metrics.enforcement_applied.inc();
        }
        if !plan.failures.is_empty() {
            self.metrics.enforcement_failed.inc();
        }
        if let Some(audit) = &mut self.audit {
            if let Err(e) = audit.write(plan, verdict) {
                self.metrics.audit_write_failures.inc();
                tracing::error!(%e, "cannot write the audit log");
            }
        }
        verdict
    }

    fn dispatch(
        &mut self,
        plan: &mut scbe_core::EnforcementPlan,
        event: &KernelEvent,
        pid_start_nanos: impl FnOnce() -> Option<i64>,
    ) -> Verdict {
        let action = plan.action.as_ref().expect("dispatch needs an action");
        let mut target = None;
        if self.contains_processes() {
            if self.breaker.is_open() {
                return self.suppress_for_breaker(plan, false);
            }
            match self.guard.check(action, pid_start_nanos()) {
                Ok(t) => target = Some(t),
                Err(refusal) => {
                    tracing::warn!(process_key = %action.process_key, kernel_action = action.kernel_action.as_str(), %refusal, "enforcement refused by the safety rails");
                    plan.failures.push(refusal.clone());
                    plan.backend_details.push(BackendDetail {
                        backend: "safety".to_owned(),
                        applied: false,
                        detail: refusal,
                    });
                    return Verdict::Refused;
                }
            }
            match self.breaker.admit(Instant::now()) {
                Admit::Allowed => {}
                Admit::Tripped => return self.suppress_for_breaker(plan, true),
                Admit::Open => return self.suppress_for_breaker(plan, false),
            }
        }
        let action = plan.action.as_ref().expect("dispatch needs an action");
        let ctx = Context {
            action,
            event,
            target: target.as_ref(),
            guard: &self.guard,
        };
        let mut applied = false;
        let mut failures = Vec::new();
        let mut details = Vec::new();
        for backend in &mut self.backends {
            let outcome = backend.apply(&ctx);
            if let Some(i) = backend_index(backend.name()) {
                if outcome.applied {
                    self.metrics.backend_applied[i].inc();
                }
                if !outcome.failures.is_empty() {
                    self.metrics.backend_failed[i].inc();
                }
            }
            if !outcome.failures.is_empty() {
                tracing::warn!(backend = backend.name(), process_key = %action.process_key, failures = ?outcome.failures, "enforcement backend failed");
            } else if outcome.applied {
                tracing::info!(backend = backend.name(), process_key = %action.process_key, kernel_action = action.kernel_action.as_str(), detail = %outcome.detail, "enforcement applied");
            }
            applied |= outcome.applied;
            let detail = if outcome.detail.is_empty() {
                outcome.failures.join("; ")
            } else {
                outcome.detail
            };
            failures.extend(outcome.failures);
            details.push(BackendDetail {
                backend: backend.name().to_owned(),
                applied: outcome.applied,
                detail,
            });
        }
        plan.applied = applied;
        plan.failures.extend(failures);
        plan.backend_details.extend(details);
        if plan.failures.is_empty() {
            Verdict::Applied
        } else {
            Verdict::Failed
        }
    }

    /// The breaker is open: nothing happens, loudly.
    fn suppress_for_breaker(
        &mut self,
        plan: &mut scbe_core::EnforcementPlan,
        just_tripped: bool,
    ) -> Verdict {
        let (max, window) = (
            self.breaker.max_actions(),
            self.breaker.window().as_secs_f64(),
        );
        if just_tripped {
            self.metrics.breaker_trips.inc();
            self.metrics.breaker_open.set(1);
            tracing::error!(
                max_actions = max,
                window_seconds = window,
                "CIRCUIT BREAKER OPEN: more than {max} containment actions in {window} s; enforcement disarmed to dry-run until re-armed (SIGUSR1 or restart)"
            );
        }
        plan.dry_run = true;
        plan.backend_details.push(BackendDetail {
            backend: "breaker".to_owned(),
            applied: false,
            detail: format!(
                "circuit breaker open after more than {max} containment actions in {window} s: dry-run, nothing applied; re-arm with SIGUSR1 or a restart"
            ),
        });
        Verdict::BreakerOpen
    }
}

/// The plan must describe the decision it came from; anything else is a bug
/// upstream, and a bug must not reach a process.
fn check_invariants(
    action: &EnforcementAction,
    event: &KernelEvent,
    suspicion: f64,
    kernel_action: scbe_core::KernelAction,
) -> Result<(), String> {
    if action.kernel_action != kernel_action {
        return Err(format!(
            "plan action {} differs from the decision's {}",
            action.kernel_action, kernel_action
        ));
    }
    if action.kernel_action == scbe_core::KernelAction::Allow {
        return Err("an ALLOW decision carries an action".to_owned());
    }
    if action.pid != event.pid
        || action.process_name != event.process_name
        || action.target != event.target
    {
        return Err("the action names another process or target than the event".to_owned());
    }
    if !(0.0..=1.0).contains(&suspicion) {
        return Err(format!("suspicion {suspicion} outside [0, 1]"));
    }
    Ok(())
}
