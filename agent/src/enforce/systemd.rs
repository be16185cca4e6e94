//! The `systemd` backend: `systemctl kill --signal=SIG PID.scope`, run as an
//! argv (never a shell string), with a timeout and bounded captured output.

use std::io::Read;
use std::process::{Command, Stdio};

use scbe_core::KernelAction;
use wait_timeout::ChildExt;

use crate::enforce::{Backend, Context, Outcome};
use crate::limits::{COMMAND_OUTPUT_BYTES_MAX, COMMAND_TIMEOUT};

#[derive(Debug, Clone)]
pub struct SystemdBackend {
    /// `systemctl`, found through `PATH` unless a path is given.
    program: String,
}

impl SystemdBackend {
    pub fn new(program: impl Into<String>) -> SystemdBackend {
        SystemdBackend {
            program: program.into(),
        }
    }

    /// The argv for an action (SPEC §9): KILL → SIGKILL, the rest → SIGSTOP.
    pub fn argv(&self, action: KernelAction, pid: &str) -> Vec<String> {
        let signal = if action == KernelAction::Kill {
            "SIGKILL"
        } else {
            "SIGSTOP"
        };
        vec![
            self.program.clone(),
            "kill".to_owned(),
            format!("--signal={signal}"),
            format!("{pid}.scope"),
        ]
    }
}

impl Backend for SystemdBackend {
    fn name(&self) -> &'static str {
        "systemd"
    }

    fn contains_processes(&self) -> bool {
        true
    }

    fn apply(&mut self, ctx: &Context<'_>) -> Outcome {
        let action = ctx.action;
        if action.kernel_action == KernelAction::Allow {
            return Outcome::detail(false, "allow action; no systemd kill".to_owned());
        }
        if action.pid.is_non_positive() {
            return Outcome::failed(format!("invalid pid for systemd backend: {}", action.pid));
        }
        let argv = self.argv(action.kernel_action, &action.pid.to_string());
        let shown = argv.join(" ");
        match run(&argv) {
            Ok((0, _)) => Outcome::detail(true, format!("applied {shown}")),
            Ok((code, stderr)) => {
                let mut failure = format!("{shown} -> exit {code}");
                if !stderr.is_empty() {
                    failure.push_str(": ");
                    failure.push_str(&stderr);
                }
                Outcome::failed(failure)
            }
            Err(e) => Outcome::failed(format!("{shown} could not run: {e}")),
        }
    }
}

/// Run `argv`, wait at most [`COMMAND_TIMEOUT`], and return the exit code
/// (-1 when killed by a signal) and the start of stderr.
fn run(argv: &[String]) -> std::io::Result<(i32, String)> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    // Read stderr on a thread so a chatty child cannot fill the pipe and
    // stall while we wait; keep the first bytes, discard the rest.
    let reader = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let _ = (&mut pipe)
                .take(COMMAND_OUTPUT_BYTES_MAX as u64)
                .read_to_end(&mut kept);
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            kept
        })
    });
    let status = match child.wait_timeout(COMMAND_TIMEOUT)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "timed out after {} s and was killed",
                    COMMAND_TIMEOUT.as_secs()
                ),
            ));
        }
    };
    let stderr = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr).trim().replace('\n', " ");
    Ok((status.code().unwrap_or(-1), stderr))
}
