//! Safety rails: the processes the agent never touches, and the PID-reuse
//! guard that makes sure the process acted on is the one Falco saw.
//!
//! Every check fails closed: when `/proc` cannot say who a pid is, nothing is
//! done. A refusal is a failure in the record (and exit status 3), a counted
//! metric and a log line.

use std::io;
use std::path::{Path, PathBuf};

use scbe_core::EnforcementAction;

use crate::enforce::procfs::{self, ProcStat};
use crate::limits::PROC_START_TOLERANCE_NS;

/// Process names never acted on: init and the service manager, remote access,
/// the telemetry pipeline that feeds the agent, the container runtime and the
/// agent itself. A policy's `enforcement.protected_processes` and
/// `--protected-process` extend the list; nothing shrinks it.
pub const DEFAULT_PROTECTED_PROCESSES: &[&str] = &[
    "init",
    "systemd",
    "systemd-journald",
    "systemd-logind",
    "systemd-udevd",
    "systemd-networkd",
    "systemd-resolved",
    "journald",
    "dbus-daemon",
    "sshd",
    "falco",
    "falcosidekick",
    "containerd",
    "containerd-shim",
    "dockerd",
    "runc",
    "crio",
    "kubelet",
    "scbe-agent",
];

/// Linux keeps at most 15 bytes of a process name in `comm`.
const COMM_BYTES_MAX: usize = 15;

/// A process the guard has checked, with the identity backends re-check just
/// before they act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub pid: i32,
    pub stat: ProcStat,
    /// What the start-time check concluded (for the record's details).
    pub start_check: StartCheck,
}

/// Whether the event's `proc.pid.ts` was compared with `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartCheck {
    Matched,
    /// The event carries no `proc.pid.ts`; only the name was compared.
    NotInEvent,
}

/// The safety rails.
#[derive(Debug, Clone)]
pub struct Guard {
    self_pid: i32,
    parent_pid: Option<i32>,
    /// Lowercase names: the defaults, the command line's, the policy's.
    protected: Vec<String>,
    /// Names from the command line (kept across policy reloads).
    extra: Vec<String>,
    proc_root: PathBuf,
}

impl Guard {
    /// `extra`: names from `--protected-process`; `policy`: the policy's list.
    pub fn new(extra: &[String], policy: &[String]) -> Guard {
        let mut guard = Guard {
            self_pid: rustix::process::getpid().as_raw_nonzero().get(),
            parent_pid: rustix::process::getppid().map(|p| p.as_raw_nonzero().get()),
            protected: Vec::new(),
            extra: extra.to_vec(),
            proc_root: PathBuf::from("/proc"),
        };
        guard.set_policy_protected(policy);
        guard
    }

    /// Replace the policy's part of the list (on reload).
    pub fn set_policy_protected(&mut self, policy: &[String]) {
        let mut names: Vec<String> = DEFAULT_PROTECTED_PROCESSES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(self.extra.iter().cloned())
            .chain(policy.iter().cloned())
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        names.sort();
        names.dedup();
        self.protected = names;
    }

    pub fn protected(&self) -> &[String] {
        &self.protected
    }

    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// The protected name `name` is, if any. A 15-byte name also matches
    /// the longer protected names it is a truncation of (`comm` is cut there).
    pub fn protected_name(&self, name: &str) -> Option<&str> {
        let name = name.trim().to_lowercase();
        self.protected
            .iter()
            .find(|p| {
                **p == name
                    || (name.len() == COMM_BYTES_MAX
                        && p.len() > COMM_BYTES_MAX
                        && p.starts_with(&name))
            })
            .map(String::as_str)
    }

    /// Check an action's process before anything acts on it.
    /// `pid_start_nanos`: the event's `proc.pid.ts`, when it has one.
    pub fn check(
        &self,
        action: &EnforcementAction,
        pid_start_nanos: Option<i64>,
    ) -> Result<Target, String> {
        let pid = match action.pid.as_os_pid() {
            Some(pid) if pid > 1 => pid,
            _ => {
                return Err(format!(
                    "refused: pid {} is init or not a process id; pids <= 1 are never targets",
                    action.pid
                ))
            }
        };
        if pid == self.self_pid {
            return Err(format!("refused: pid {pid} is the agent itself"));
        }
        if Some(pid) == self.parent_pid {
            return Err(format!("refused: pid {pid} is the agent's parent"));
        }
        if let Some(name) = self.protected_name(&action.process_name) {
            return Err(format!(
                "refused: process name {:?} is protected ({name})",
                action.process_name
            ));
        }
        let stat = procfs::read_stat(&self.proc_root, pid).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                format!("refused: pid {pid} is not running (exited before enforcement)")
            }
            _ => format!("refused: cannot read /proc/{pid}/stat: {e}"),
        })?;
        if stat.is_kernel_thread(pid) {
            return Err(format!(
                "refused: pid {pid} ({}) is a kernel thread",
                stat.comm
            ));
        }
        if let Some(name) = self.protected_name(&stat.comm) {
            return Err(format!(
                "refused: pid {pid} runs protected process {:?} ({name})",
                stat.comm
            ));
        }
        if !comm_matches(&stat.comm, &action.process_name) {
            return Err(format!(
                "refused: pid reuse guard: /proc/{pid}/comm is {:?} but the event names {:?}",
                stat.comm, action.process_name
            ));
        }
        let start_check = match pid_start_nanos {
            None => StartCheck::NotInEvent,
            Some(expected) => {
                let actual = stat.start_epoch_nanos();
                if (i128::from(actual) - i128::from(expected)).abs()
                    > i128::from(PROC_START_TOLERANCE_NS)
                {
                    return Err(format!(
                        "refused: pid reuse guard: pid {pid} started at {actual} ns but the event's proc.pid.ts is {expected} ns"
                    ));
                }
                StartCheck::Matched
            }
        };
        Ok(Target {
            pid,
            stat,
            start_check,
        })
    }

    /// Re-read `/proc` right before acting (after a pidfd is open): the same
    /// start time and name mean the pidfd holds the process that was checked.
    pub fn reverify(&self, target: &Target) -> Result<(), String> {
        let pid = target.pid;
        let now = procfs::read_stat(&self.proc_root, pid).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!("pid {pid} exited before it could be acted on"),
            _ => format!("refused: cannot re-read /proc/{pid}/stat: {e}"),
        })?;
        if now.start_ticks != target.stat.start_ticks || now.comm != target.stat.comm {
            return Err(format!(
                "refused: pid reuse guard: pid {pid} changed from {:?} to {:?} while enforcing",
                target.stat.comm, now.comm
            ));
        }
        Ok(())
    }
}

/// Whether the kernel's `comm` is the process Falco named. Falco's
/// `proc.name` comes from the same `comm` and the core lowercases it;
/// a longer event name matches its 15-byte truncation.
pub fn comm_matches(comm: &str, event_name: &str) -> bool {
    let comm = comm.to_lowercase();
    let name = event_name.trim();
    if comm == name {
        return true;
    }
    comm.len() == COMM_BYTES_MAX && name.len() > COMM_BYTES_MAX && name.starts_with(&comm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_comparison() {
        assert!(comm_matches("sleep", "sleep"));
        assert!(comm_matches("Sleep", "sleep"));
        assert!(!comm_matches("sleep", "bash"));
        assert!(comm_matches("containerd-shim", "containerd-shim-runc-v2"));
        assert!(!comm_matches("contain", "containerd"));
    }

    #[test]
    fn protected_names_include_truncations_and_extensions() {
        let guard = Guard::new(&["MyDaemon".to_owned()], &["vault".to_owned()]);
        assert_eq!(guard.protected_name("sshd"), Some("sshd"));
        assert_eq!(
            guard.protected_name("systemd-journal"),
            Some("systemd-journald")
        );
        assert_eq!(guard.protected_name("mydaemon"), Some("mydaemon"));
        assert_eq!(guard.protected_name("Vault"), Some("vault"));
        assert_eq!(guard.protected_name("sleep"), None);
        let mut guard = guard;
        guard.set_policy_protected(&[]);
        assert_eq!(guard.protected_name("vault"), None);
        assert_eq!(guard.protected_name("mydaemon"), Some("mydaemon"));
    }
}
