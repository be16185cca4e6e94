//! Enforcement planning (SPEC §9): command previews, cooldown, the structured
//! action handed to backends. Applying a plan is the agent's job.

use crate::clock::Timestamp;
use crate::event::{KernelEvent, Pid};
use crate::gate::{Assessment, CellState, KernelAction, Resolution};
use crate::jsonw::ObjectWriter;
use crate::memory::BoundedTable;
use crate::pystr::{py_round, shell_quote};
use crate::turnstile::Decision;

pub const RATIONALE_ALLOW: &str = "no enforcement needed for ALLOW";
pub const RATIONALE_COOLDOWN: &str = "cooldown active; duplicate enforcement suppressed";

/// How plans are made.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannerConfig {
    /// Seconds; 0 disables the cooldown.
    pub cooldown_seconds: f64,
    pub quarantine_dir: String,
    pub backend_names: Vec<String>,
    pub dry_run: bool,
    /// Bound on remembered cooldown keys.
    pub capacity: usize,
}

/// The structured action backends receive.
#[derive(Debug, Clone, PartialEq)]
pub struct EnforcementAction {
    pub process_key: String,
    pub kernel_action: KernelAction,
    pub host: String,
    pub pid: Pid,
    pub process_name: String,
    pub operation: String,
    pub target: String,
    pub rationale: String,
    pub quarantine_dir: String,
    pub decision: Decision,
    pub cell_state: CellState,
    /// Rounded to 6 decimals.
    pub suspicion: f64,
    pub block_execution: bool,
    pub isolate_process: bool,
    pub quarantine_target: bool,
}

impl EnforcementAction {
    /// Compact JSON, as backends (journald, SOC) send it.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(512);
        self.write_json(&mut out);
        out
    }

    pub fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.str("process_key", &self.process_key)
            .str("kernel_action", self.kernel_action.as_str())
            .str("host", &self.host)
            .raw("pid", &self.pid.to_string())
            .str("process_name", &self.process_name)
            .str("operation", &self.operation)
            .str("target", &self.target)
            .str("rationale", &self.rationale)
            .str("quarantine_dir", &self.quarantine_dir);
        let mut metadata = ObjectWriter::new(o.key("metadata"));
        metadata
            .str("decision", self.decision.as_str())
            .str("cell_state", self.cell_state.as_str())
            .f64("suspicion", self.suspicion)
            .bool("block_execution", self.block_execution)
            .bool("isolate_process", self.isolate_process)
            .bool("quarantine_target", self.quarantine_target);
        metadata.finish();
        o.finish();
    }
}

/// One backend's report on applying an action.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendDetail {
    pub backend: String,
    pub applied: bool,
    pub detail: String,
}

/// The plan for one decision (SPEC §9).
#[derive(Debug, Clone, PartialEq)]
pub struct EnforcementPlan {
    pub process_key: String,
    pub kernel_action: KernelAction,
    pub commands: Vec<String>,
    pub rationale: String,
    pub dry_run: bool,
    pub applied: bool,
    pub failures: Vec<String>,
    pub cooldown_skipped: bool,
    pub backend_names: Vec<String>,
    pub backend_details: Vec<BackendDetail>,
    pub action: Option<EnforcementAction>,
}

impl EnforcementPlan {
    pub fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.str("process_key", &self.process_key)
            .str("kernel_action", self.kernel_action.as_str())
            .str_array("commands", &self.commands)
            .str("rationale", &self.rationale)
            .bool("dry_run", self.dry_run)
            .bool("applied", self.applied)
            .str_array("failures", &self.failures)
            .bool("cooldown_skipped", self.cooldown_skipped)
            .str_array("backend_names", &self.backend_names);
        let details = o.key("backend_details");
        details.push('[');
        for (i, detail) in self.backend_details.iter().enumerate() {
            if i > 0 {
                details.push(',');
            }
            let mut d = ObjectWriter::new(details);
            d.str("backend", &detail.backend)
                .bool("applied", detail.applied)
                .str("detail", &detail.detail);
            d.finish();
        }
        details.push(']');
        match &self.action {
            Some(action) => action.write_json(o.key("action")),
            None => {
                o.raw("action", "null");
            }
        }
        o.finish();
    }
}

/// Makes plans; remembers when each process key was last enforced.
#[derive(Debug, Clone)]
pub struct EnforcementPlanner {
    config: PlannerConfig,
    /// Normalized once: `str(pathlib.Path(quarantine_dir))`.
    quarantine_dir: String,
    last_enforced: BoundedTable<Timestamp>,
}

impl EnforcementPlanner {
    pub fn new(config: PlannerConfig) -> EnforcementPlanner {
        let quarantine_dir = pathlib_normalize(&config.quarantine_dir);
        let last_enforced = BoundedTable::new(config.capacity.max(1));
        EnforcementPlanner {
            config,
            quarantine_dir,
            last_enforced,
        }
    }

    pub fn config(&self) -> &PlannerConfig {
        &self.config
    }

    /// The stateful half of planning: whether an action for `process_key` at
    /// `now` passes the cooldown (and, if so, record it). ALLOW always passes
    /// and is not recorded; suppressed plans do not refresh the time.
    pub fn admit(&mut self, process_key: &str, action: KernelAction, now: Timestamp) -> bool {
        if action == KernelAction::Allow || self.config.cooldown_seconds <= 0.0 {
            return true;
        }
        if let Some(last) = self.last_enforced.get(process_key) {
            if now.seconds_since(last) < self.config.cooldown_seconds {
                return false;
            }
        }
        self.last_enforced.store(process_key, now);
        true
    }

    /// Plan enforcement for a decided event at time `now`.
    pub fn plan(
        &mut self,
        event: &KernelEvent,
        process_key: &str,
        assessment: &Assessment,
        resolution: &Resolution,
        now: Timestamp,
    ) -> EnforcementPlan {
        let admitted = self.admit(process_key, resolution.kernel_action, now);
        self.build_plan(event, process_key, assessment, resolution, admitted)
    }

    /// The pure half of planning, given the cooldown's verdict.
    pub fn build_plan(
        &self,
        event: &KernelEvent,
        process_key: &str,
        assessment: &Assessment,
        resolution: &Resolution,
        admitted: bool,
    ) -> EnforcementPlan {
        let kernel_action = resolution.kernel_action;
        let mut plan = EnforcementPlan {
            process_key: process_key.to_owned(),
            kernel_action,
            commands: Vec::new(),
            rationale: String::new(),
            dry_run: self.config.dry_run,
            applied: false,
            failures: Vec::new(),
            cooldown_skipped: false,
            backend_names: self.config.backend_names.clone(),
            backend_details: Vec::new(),
            action: None,
        };
        if kernel_action == KernelAction::Allow {
            plan.rationale = RATIONALE_ALLOW.to_owned();
            return plan;
        }
        if !admitted {
            plan.cooldown_skipped = true;
            plan.rationale = RATIONALE_COOLDOWN.to_owned();
            return plan;
        }
        plan.rationale = format!("enforcement mapped from kernel_action={kernel_action}");
        plan.commands = command_previews(event, kernel_action, &self.quarantine_dir);
        plan.action = Some(EnforcementAction {
            process_key: process_key.to_owned(),
            kernel_action,
            host: event.host.clone(),
            pid: event.pid.clone(),
            process_name: event.process_name.clone(),
            operation: event.operation.clone(),
            target: event.target.clone(),
            rationale: plan.rationale.clone(),
            quarantine_dir: self.quarantine_dir.clone(),
            decision: assessment.decision,
            cell_state: resolution.cell_state,
            suspicion: py_round(py_round(assessment.suspicion, 4), 6),
            block_execution: resolution.block_execution,
            isolate_process: resolution.isolate_process,
            quarantine_target: resolution.quarantine_target,
        });
        plan
    }
}

/// The argv previews, rendered with POSIX quoting (SPEC §9).
pub fn command_previews(event: &KernelEvent, action: KernelAction, qdir: &str) -> Vec<String> {
    let pid = event.pid.to_string();
    let argvs: Vec<Vec<String>> = match action {
        KernelAction::Allow => Vec::new(),
        KernelAction::Throttle => vec![argv(&["renice", "+10", "-p", &pid])],
        KernelAction::Kill => vec![argv(&["kill", "-KILL", &pid])],
        KernelAction::Quarantine | KernelAction::Honeypot => {
            let mut commands = vec![argv(&["kill", "-STOP", &pid]), argv(&["mkdir", "-p", qdir])];
            if let Some(dest) = quarantine_destination(event, qdir) {
                commands.push(argv(&["cp", "--", &event.target, &dest]));
                commands.push(argv(&["chmod", "000", &event.target]));
            }
            commands
        }
    };
    argvs.iter().map(|a| render_argv(a)).collect()
}

/// Where a target is copied: `QDIR / NAME-PID-BASENAME` with `pathlib`
/// semantics, when the target is an absolute path and not a connection.
pub fn quarantine_destination(event: &KernelEvent, qdir: &str) -> Option<String> {
    if !event.target.starts_with('/') || event.target.contains("->") {
        return None;
    }
    let basename = pathlib_name(&event.target);
    let file = format!("{}-{}-{}", event.process_name, event.pid, basename);
    Some(pathlib_join(qdir, &file))
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

fn render_argv(argv: &[String]) -> String {
    let mut out = String::new();
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        shell_quote(arg, &mut out);
    }
    out
}

/// `str(PurePosixPath(path))`: empty and `.` components dropped, one leading
/// `/` kept (two when exactly two), no trailing `/`; `.` when nothing is left.
pub fn pathlib_normalize(path: &str) -> String {
    let root = if path.starts_with("//") && !path.starts_with("///") {
        "//"
    } else if path.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    let joined = format!("{root}{}", parts.join("/"));
    if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

/// `PurePosixPath(path).name`: the last component, `""` for a bare root.
pub fn pathlib_name(path: &str) -> &str {
    path.split('/')
        .rfind(|part| !part.is_empty() && *part != ".")
        .unwrap_or("")
}

/// `str(PurePosixPath(base) / child)`: an absolute child replaces the base.
pub fn pathlib_join(base: &str, child: &str) -> String {
    if child.starts_with('/') {
        pathlib_normalize(child)
    } else {
        pathlib_normalize(&format!("{base}/{child}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pathlib_rules() {
        assert_eq!(pathlib_name("/tmp/dir/"), "dir");
        assert_eq!(pathlib_name("/"), "");
        assert_eq!(pathlib_name("/a/./"), "a");
        assert_eq!(pathlib_name("/a/.."), "..");
        assert_eq!(
            pathlib_normalize("/var//quarantine/./scbe/"),
            "/var/quarantine/scbe"
        );
        assert_eq!(pathlib_normalize("//x"), "//x");
        assert_eq!(pathlib_normalize("///x"), "/x");
        assert_eq!(pathlib_join("/q", "/evil/name-1-x"), "/evil/name-1-x");
        assert_eq!(pathlib_join("/q", "a/b-1-c"), "/q/a/b-1-c");
    }
}
