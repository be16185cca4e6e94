//! Enforcement planning (SPEC §9): command previews, cooldown, the structured
//! action handed to backends. Applying a plan is the agent's job.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::clock::Timestamp;
use crate::event::{KernelEvent, Pid};
use crate::gate::{Assessment, CellState, KernelAction, Resolution};
use crate::jsonw::{push_str, push_str_array, ObjectWriter};
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
            .str("host", &self.host);
        self.pid.push_to(o.key("pid"));
        o.str("process_name", &self.process_name)
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

/// The backend names a planner lists in each of its plans: shared by the
/// plans rather than copied into each, with their JSON array rendered once.
#[derive(Clone)]
pub struct BackendNames(Arc<BackendNamesInner>);

struct BackendNamesInner {
    names: Vec<String>,
    json: String,
}

impl BackendNames {
    pub fn new(names: Vec<String>) -> BackendNames {
        let mut json = String::new();
        push_str_array(&mut json, &names);
        BackendNames(Arc::new(BackendNamesInner { names, json }))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0.names
    }

    /// The names as a JSON array of strings.
    pub fn json(&self) -> &str {
        &self.0.json
    }
}

impl Deref for BackendNames {
    type Target = [String];

    fn deref(&self) -> &[String] {
        self.as_slice()
    }
}

impl From<Vec<String>> for BackendNames {
    fn from(names: Vec<String>) -> BackendNames {
        BackendNames::new(names)
    }
}

impl PartialEq for BackendNames {
    fn eq(&self, other: &BackendNames) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for BackendNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// The plan for one decision (SPEC §9).
#[derive(Debug, Clone, PartialEq)]
pub struct EnforcementPlan {
    pub process_key: String,
    pub kernel_action: KernelAction,
    pub commands: Vec<String>,
    /// One of a few fixed texts as planned.
    pub rationale: Cow<'static, str>,
    pub dry_run: bool,
    pub applied: bool,
    pub failures: Vec<String>,
    pub cooldown_skipped: bool,
    pub backend_names: BackendNames,
    pub backend_details: Vec<BackendDetail>,
    pub action: Option<EnforcementAction>,
}

impl EnforcementPlan {
    /// Compact JSON in SPEC §9 key order. Written as fixed fragments between
    /// the values (every record carries a plan); statement order is key order.
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"process_key\":");
        push_str(out, &self.process_key);
        out.push_str(",\"kernel_action\":\"");
        out.push_str(self.kernel_action.as_str());
        out.push_str("\",\"commands\":");
        push_str_array(out, &self.commands);
        out.push_str(",\"rationale\":");
        match fixed_rationale_json(&self.rationale) {
            Some(json) => out.push_str(json),
            None => push_str(out, &self.rationale),
        }
        out.push_str(if self.dry_run {
            ",\"dry_run\":true"
        } else {
            ",\"dry_run\":false"
        });
        out.push_str(if self.applied {
            ",\"applied\":true"
        } else {
            ",\"applied\":false"
        });
        out.push_str(",\"failures\":");
        push_str_array(out, &self.failures);
        out.push_str(if self.cooldown_skipped {
            ",\"cooldown_skipped\":true"
        } else {
            ",\"cooldown_skipped\":false"
        });
        out.push_str(",\"backend_names\":");
        out.push_str(self.backend_names.json());
        out.push_str(",\"backend_details\":[");
        for (i, detail) in self.backend_details.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let mut d = ObjectWriter::new(out);
            d.str("backend", &detail.backend)
                .bool("applied", detail.applied)
                .str("detail", &detail.detail);
            d.finish();
        }
        out.push_str("],\"action\":");
        match &self.action {
            Some(action) => action.write_json(out),
            None => out.push_str("null"),
        }
        out.push('}');
    }
}

/// Makes plans; remembers when each process key was last enforced.
#[derive(Debug, Clone)]
pub struct EnforcementPlanner {
    config: PlannerConfig,
    /// Normalized once: `str(pathlib.Path(quarantine_dir))`.
    quarantine_dir: String,
    /// `config.backend_names`, shared by every plan.
    backend_names: BackendNames,
    last_enforced: BoundedTable<Timestamp>,
}

impl EnforcementPlanner {
    /// A copy for another thread to plan with, sharing nothing with this
    /// one: every plan holds the backend names, and a shared reference
    /// count would bounce between the threads' caches on every event.
    pub fn for_another_thread(&self) -> EnforcementPlanner {
        EnforcementPlanner {
            backend_names: BackendNames::new(self.backend_names.as_slice().to_vec()),
            ..self.clone()
        }
    }

    pub fn new(config: PlannerConfig) -> EnforcementPlanner {
        let quarantine_dir = pathlib_normalize(&config.quarantine_dir);
        let last_enforced = BoundedTable::new(config.capacity.max(1));
        let backend_names = BackendNames::new(config.backend_names.clone());
        EnforcementPlanner {
            config,
            quarantine_dir,
            backend_names,
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
        let enforce = kernel_action != KernelAction::Allow && admitted;
        let rationale = if kernel_action == KernelAction::Allow {
            RATIONALE_ALLOW
        } else if !admitted {
            RATIONALE_COOLDOWN
        } else {
            mapped_rationale(kernel_action)
        };
        let mut plan = EnforcementPlan {
            process_key: process_key.to_owned(),
            kernel_action,
            commands: Vec::new(),
            rationale: Cow::Borrowed(rationale),
            dry_run: self.config.dry_run,
            applied: false,
            failures: Vec::new(),
            cooldown_skipped: kernel_action != KernelAction::Allow && !admitted,
            backend_names: self.backend_names.clone(),
            backend_details: Vec::new(),
            action: None,
        };
        if !enforce {
            return plan;
        }
        plan.commands = command_previews(event, kernel_action, &self.quarantine_dir);
        plan.action = Some(EnforcementAction {
            process_key: process_key.to_owned(),
            kernel_action,
            host: event.host.clone(),
            pid: event.pid.clone(),
            process_name: event.process_name.clone(),
            operation: event.operation.clone(),
            target: event.target.clone(),
            rationale: rationale.to_owned(),
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

/// The JSON form of a rationale that is one of the planner's fixed texts
/// (see [`crate::match_fixed_json`]); `None` for any other text.
fn fixed_rationale_json(rationale: &str) -> Option<&'static str> {
    crate::match_fixed_json!(rationale;
        "no enforcement needed for ALLOW",
        "cooldown active; duplicate enforcement suppressed",
        "enforcement mapped from kernel_action=THROTTLE",
        "enforcement mapped from kernel_action=QUARANTINE",
        "enforcement mapped from kernel_action=KILL",
        "enforcement mapped from kernel_action=HONEYPOT",
        "enforcement mapped from kernel_action=ALLOW",
    )
}

/// `enforcement mapped from kernel_action={action}`, as a fixed text per
/// action.
fn mapped_rationale(action: KernelAction) -> &'static str {
    match action {
        KernelAction::Allow => "enforcement mapped from kernel_action=ALLOW",
        KernelAction::Throttle => "enforcement mapped from kernel_action=THROTTLE",
        KernelAction::Quarantine => "enforcement mapped from kernel_action=QUARANTINE",
        KernelAction::Kill => "enforcement mapped from kernel_action=KILL",
        KernelAction::Honeypot => "enforcement mapped from kernel_action=HONEYPOT",
    }
}

/// The argv previews, rendered with POSIX quoting (SPEC §9).
pub fn command_previews(event: &KernelEvent, action: KernelAction, qdir: &str) -> Vec<String> {
    let mut pid_buffer = itoa::Buffer::new();
    let pid = match &event.pid {
        Pid::Small(n) => pid_buffer.format(*n),
        Pid::Big(text) => text,
    };
    match action {
        KernelAction::Allow => Vec::new(),
        KernelAction::Throttle => vec![render_argv(&["renice", "+10", "-p", pid])],
        KernelAction::Kill => vec![render_argv(&["kill", "-KILL", pid])],
        KernelAction::Quarantine | KernelAction::Honeypot => {
            let mut commands = Vec::with_capacity(4);
            commands.push(render_argv(&["kill", "-STOP", pid]));
            commands.push(render_argv(&["mkdir", "-p", qdir]));
            if let Some(dest) = quarantine_destination(event, qdir) {
                commands.push(render_argv(&["cp", "--", &event.target, &dest]));
                commands.push(render_argv(&["chmod", "000", &event.target]));
            }
            commands
        }
    }
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

fn render_argv(argv: &[&str]) -> String {
    // Quoting adds at most a few bytes per argument in the common case.
    let mut out = String::with_capacity(argv.iter().map(|a| a.len() + 3).sum());
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
    let mut joined = String::with_capacity(path.len());
    joined.push_str(root);
    for part in path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
    {
        if joined.len() > root.len() {
            joined.push('/');
        }
        joined.push_str(part);
    }
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
        let mut path = String::with_capacity(base.len() + 1 + child.len());
        path.push_str(base);
        path.push('/');
        path.push_str(child);
        pathlib_normalize(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_rationales_are_the_formatted_ones() {
        for action in KernelAction::ALL {
            assert_eq!(
                mapped_rationale(action),
                format!("enforcement mapped from kernel_action={action}")
            );
        }
    }

    #[test]
    fn fixed_rationale_forms_are_what_push_str_writes() {
        let mut fixed = vec![RATIONALE_ALLOW, RATIONALE_COOLDOWN];
        fixed.extend(KernelAction::ALL.map(mapped_rationale));
        for rationale in fixed {
            let mut want = String::new();
            push_str(&mut want, rationale);
            assert_eq!(
                fixed_rationale_json(rationale),
                Some(want.as_str()),
                "{rationale}"
            );
        }
        assert_eq!(fixed_rationale_json("operator override"), None);
    }

    #[test]
    fn backend_names_render_as_a_string_array() {
        let names = BackendNames::new(vec!["systemd".into(), "jour\"nald".into()]);
        assert_eq!(names.json(), r#"["systemd","jour\"nald"]"#);
        assert_eq!(BackendNames::new(Vec::new()).json(), "[]");
        assert_eq!(names.len(), 2);
        assert_eq!(format!("{names:?}"), r#"["systemd", "jour\"nald"]"#);
    }

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
        assert_eq!(pathlib_normalize(""), ".");
        assert_eq!(pathlib_normalize("./."), ".");
        assert_eq!(pathlib_normalize("/"), "/");
        assert_eq!(pathlib_normalize("//"), "//");
        assert_eq!(pathlib_normalize("a//b/./c/"), "a/b/c");
        assert_eq!(pathlib_join(".", "x"), "x");
    }
}
