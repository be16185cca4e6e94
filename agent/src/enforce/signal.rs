//! The `signal` backend: direct system calls, no helper programs.
//!
//! THROTTLE raises the nice value of every thread by 10; KILL sends SIGKILL;
//! QUARANTINE and HONEYPOT send SIGSTOP and quarantine the target file.
//! Signals go through a pidfd: it is opened first, then `/proc` is re-checked,
//! so the process that passed the PID-reuse guard is the one signalled — if it
//! exited in between, the pidfd refers to nothing and the kernel says ESRCH
//! instead of signalling a newcomer with the same pid.

use std::os::fd::OwnedFd;

use rustix::io::Errno;
use rustix::process::{
    getpriority_process, kill_process, pidfd_open, pidfd_send_signal, setpriority_process, Pid,
    PidfdFlags, Signal,
};
use scbe_core::KernelAction;

use crate::enforce::guard::{StartCheck, Target};
use crate::enforce::procfs;
use crate::enforce::quarantine::Quarantine;
use crate::enforce::{Backend, Context, Outcome};

/// Highest nice value Linux allows.
const NICE_MAX: i32 = 19;
/// How much THROTTLE raises the nice value (`renice +10` in the preview).
const THROTTLE_NICE_STEP: i32 = 10;

#[derive(Debug, Clone)]
pub struct SignalBackend {
    /// Extra protected path prefixes for file quarantine.
    protected_paths: Vec<std::path::PathBuf>,
}

impl SignalBackend {
    pub fn new(protected_paths: Vec<std::path::PathBuf>) -> SignalBackend {
        SignalBackend { protected_paths }
    }
}

impl Backend for SignalBackend {
    fn name(&self) -> &'static str {
        "signal"
    }

    fn contains_processes(&self) -> bool {
        true
    }

    fn apply(&mut self, ctx: &Context<'_>) -> Outcome {
        let Some(target) = ctx.target else {
            return Outcome::failed("signal backend: no verified process to act on".to_owned());
        };
        let pid = target.pid;
        let pidfd = match open_pidfd(pid) {
            Ok(fd) => fd,
            Err(failure) => return Outcome::failed(failure),
        };
        if let Err(failure) = ctx.guard.reverify(target) {
            return Outcome::failed(failure);
        }
        let identity = match target.start_check {
            StartCheck::Matched => "comm and start time verified",
            StartCheck::NotInEvent => "comm verified; event has no proc.pid.ts",
        };
        match ctx.action.kernel_action {
            KernelAction::Allow => {
                Outcome::detail(false, "allow action; nothing to signal".to_owned())
            }
            KernelAction::Kill => match send(pidfd.as_ref(), pid, Signal::KILL) {
                Ok(via) => Outcome::detail(
                    true,
                    format!("SIGKILL sent to pid {pid} via {via} ({identity})"),
                ),
                Err(failure) => Outcome::failed(failure),
            },
            KernelAction::Throttle => match renice(ctx, target) {
                Ok(detail) => Outcome::detail(true, format!("{detail} ({identity})")),
                Err(failure) => Outcome::failed(failure),
            },
            KernelAction::Quarantine | KernelAction::Honeypot => {
                let stopped = match send(pidfd.as_ref(), pid, Signal::STOP) {
                    Ok(via) => format!("SIGSTOP sent to pid {pid} via {via} ({identity})"),
                    Err(failure) => return Outcome::failed(failure),
                };
                let qdir = &ctx.action.quarantine_dir;
                if scbe_core::enforcement::quarantine_destination(ctx.event, qdir).is_none() {
                    return Outcome::detail(
                        true,
                        format!("{stopped}; target is not a file path, nothing to quarantine"),
                    );
                }
                let quarantine = Quarantine::new(qdir.as_str(), &self.protected_paths);
                // Whose files this process may get quarantined (fail closed).
                let uids = match procfs::read_uids(ctx.guard.proc_root(), pid) {
                    Ok(uids) => uids,
                    Err(e) => {
                        return Outcome {
                            applied: true,
                            failures: vec![format!(
                                "quarantine refused: cannot read the uids of pid {pid}: {e}"
                            )],
                            detail: stopped,
                        }
                    }
                };
                match quarantine.quarantine_for(
                    &ctx.action.target,
                    &ctx.action.process_name,
                    &ctx.action.pid.to_string(),
                    Some(uids),
                ) {
                    Ok(q) => Outcome::detail(
                        true,
                        format!(
                            "{stopped}; quarantined {} to {} (sha256 {}, {} bytes); original mode set to 000",
                            q.source.display(),
                            q.destination.display(),
                            q.sha256,
                            q.bytes
                        ),
                    ),
                    Err(failure) => Outcome {
                        applied: true,
                        failures: vec![failure],
                        detail: stopped,
                    },
                }
            }
        }
    }
}

/// A pidfd for `pid`, or `None` on kernels without `pidfd_open` (before
/// 5.3), where plain `kill(2)` is the best there is.
fn open_pidfd(pid: i32) -> Result<Option<OwnedFd>, String> {
    let os_pid = Pid::from_raw(pid).ok_or_else(|| format!("invalid pid {pid}"))?;
    match pidfd_open(os_pid, PidfdFlags::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOSYS) => Ok(None),
        Err(Errno::SRCH) => Err(format!("pid {pid} exited before it could be signalled")),
        Err(e) => Err(format!("pidfd_open({pid}) failed: {e}")),
    }
}

fn send(pidfd: Option<&OwnedFd>, pid: i32, signal: Signal) -> Result<&'static str, String> {
    let result = match pidfd {
        Some(fd) => pidfd_send_signal(fd, signal).map(|()| "pidfd"),
        None => Pid::from_raw(pid)
            .ok_or(Errno::INVAL)
            .and_then(|p| kill_process(p, signal))
            .map(|()| "kill(2)"),
    };
    result.map_err(|e| match e {
        Errno::SRCH => format!("pid {pid} exited before it could be signalled"),
        e => format!("cannot send {} to pid {pid}: {e}", signal_name(signal)),
    })
}

fn signal_name(signal: Signal) -> &'static str {
    if signal == Signal::KILL {
        "SIGKILL"
    } else if signal == Signal::STOP {
        "SIGSTOP"
    } else {
        "signal"
    }
}

/// Raise every thread's nice value by [`THROTTLE_NICE_STEP`] (nice is per
/// thread on Linux; `renice -p` alone would slow only the main thread).
/// There is no pidfd form of `setpriority`, so `/proc` is re-checked after
/// too: a pid reused within this window is reported, not hidden.
fn renice(ctx: &Context<'_>, target: &Target) -> Result<String, String> {
    let pid = target.pid;
    let tids = procfs::thread_ids(ctx.guard.proc_root(), pid)
        .map_err(|e| format!("cannot list threads of pid {pid}: {e}"))?;
    let mut changed = Vec::with_capacity(tids.len());
    for tid in &tids {
        let Some(os_tid) = Pid::from_raw(*tid) else {
            continue;
        };
        let before = match getpriority_process(Some(os_tid)) {
            Ok(nice) => nice,
            // The thread ended meanwhile: nothing to slow down.
            Err(Errno::SRCH) => continue,
            Err(e) => return Err(format!("getpriority({tid}) failed: {e}")),
        };
        let after = (before + THROTTLE_NICE_STEP).min(NICE_MAX);
        match setpriority_process(Some(os_tid), after) {
            Ok(()) | Err(Errno::SRCH) => changed.push((before, after)),
            Err(e) => return Err(format!("setpriority({tid}, {after}) failed: {e}")),
        }
    }
    ctx.guard.reverify(target)?;
    let (before, after) = changed.first().copied().unwrap_or((0, 0));
    Ok(format!(
        "reniced pid {pid} ({} threads) from nice {before} to {after}",
        changed.len()
    ))
}
