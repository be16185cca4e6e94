//! The `journald` backend: one structured entry per action, sent with the
//! journal's native protocol on its Unix datagram socket (no libsystemd).
//!
//! Each field is `NAME=value\n`; a value containing a newline uses the binary
//! form `NAME\n<u64 little-endian length><value>\n`. Fields (SPEC §9):
//! MESSAGE (the action as compact JSON, as the reference sent it),
//! PRIORITY=4, SYSLOG_IDENTIFIER=scbe-linux-enforcement, SCBE_KERNEL_ACTION,
//! SCBE_PROCESS_KEY, SCBE_PID. When the socket is absent (no journald on this
//! host) or not taking entries (its queue is full: the send never blocks the
//! decision loop), the entry goes to the agent's own log instead, and the
//! detail says so.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;

use scbe_core::EnforcementAction;

use crate::enforce::{Backend, Context, Outcome};
use crate::limits::JOURNAL_MESSAGE_BYTES_MAX;
use crate::metrics::Metrics;

pub const DEFAULT_JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
pub const SYSLOG_IDENTIFIER: &str = "scbe-linux-enforcement";

#[derive(Debug)]
pub struct JournaldBackend {
    socket_path: PathBuf,
    socket: Option<UnixDatagram>,
    metrics: Arc<Metrics>,
}

impl JournaldBackend {
    pub fn new(socket_path: impl Into<PathBuf>, metrics: Arc<Metrics>) -> JournaldBackend {
        JournaldBackend {
            socket_path: socket_path.into(),
            socket: None,
            metrics,
        }
    }

    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        if self.socket.is_none() {
            let socket = UnixDatagram::unbound()?;
            // A journal that stops reading fills its queue (net.unix.max_dgram_qlen,
            // 10 by default); a blocking send would then stall every decision.
            // Non-blocking, a full queue is `WouldBlock` and the entry falls back
            // to the agent's log like a missing journal.
            socket.set_nonblocking(true)?;
            self.socket = Some(socket);
        }
        let socket = self.socket.as_ref().expect("socket just created");
        socket.send_to(datagram, &self.socket_path).map(|_| ())
    }
}

/// The MESSAGE text: the action as the reference's journald backend wrote it
/// (`event` first, no `quarantine_dir`).
pub fn message_json(action: &EnforcementAction) -> String {
    let full: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&action.to_json()).unwrap_or_default();
    let mut message = serde_json::Map::with_capacity(full.len());
    message.insert("event".to_owned(), "scbe_linux_enforcement".into());
    for (key, value) in full {
        if key != "quarantine_dir" {
            message.insert(key, value);
        }
    }
    serde_json::Value::Object(message).to_string()
}

/// The datagram for one action.
pub fn entry(action: &EnforcementAction) -> Vec<u8> {
    let mut message = message_json(action);
    let mut truncated = false;
    if message.len() > JOURNAL_MESSAGE_BYTES_MAX {
        let mut cut = JOURNAL_MESSAGE_BYTES_MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        truncated = true;
    }
    let mut out = Vec::with_capacity(message.len() + 256);
    push_field(&mut out, "MESSAGE", message.as_bytes());
    push_field(&mut out, "PRIORITY", b"4");
    push_field(&mut out, "SYSLOG_IDENTIFIER", SYSLOG_IDENTIFIER.as_bytes());
    push_field(
        &mut out,
        "SCBE_KERNEL_ACTION",
        action.kernel_action.as_str().as_bytes(),
    );
    push_field(&mut out, "SCBE_PROCESS_KEY", action.process_key.as_bytes());
    push_field(&mut out, "SCBE_PID", action.pid.to_string().as_bytes());
    if truncated {
        push_field(&mut out, "SCBE_MESSAGE_TRUNCATED", b"1");
    }
    out
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Parse a native-protocol datagram back into fields (for tests and tools).
pub fn parse_entry(mut data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let end = data
            .iter()
            .position(|&b| b == b'=' || b == b'\n')
            .ok_or("field without terminator")?;
        let name = String::from_utf8(data[..end].to_vec()).map_err(|e| e.to_string())?;
        if data[end] == b'=' {
            let rest = &data[end + 1..];
            let nl = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or("value without newline")?;
            fields.push((name, rest[..nl].to_vec()));
            data = &rest[nl + 1..];
        } else {
            let rest = &data[end + 1..];
            let len_bytes: [u8; 8] = rest
                .get(..8)
                .ok_or("short binary length")?
                .try_into()
                .map_err(|_| "short binary length")?;
            let len = u64::from_le_bytes(len_bytes) as usize;
            let value = rest.get(8..8 + len).ok_or("short binary value")?;
            if rest.get(8 + len) != Some(&b'\n') {
                return Err("binary value without newline".to_owned());
            }
            fields.push((name, value.to_vec()));
            data = &rest[8 + len + 1..];
        }
    }
    Ok(fields)
}

impl Backend for JournaldBackend {
    fn name(&self) -> &'static str {
        "journald"
    }

    fn contains_processes(&self) -> bool {
        false
    }

    fn apply(&mut self, ctx: &Context<'_>) -> Outcome {
        let datagram = entry(ctx.action);
        match self.send(&datagram) {
            Ok(()) => Outcome::detail(
                true,
                format!("emitted via journal socket {}", self.socket_path.display()),
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::WouldBlock
                ) =>
            {
                self.metrics.journald_fallbacks.inc();
                tracing::warn!(
                    target: "scbe_linux_enforcement",
                    syslog_identifier = SYSLOG_IDENTIFIER,
                    kernel_action = ctx.action.kernel_action.as_str(),
                    process_key = %ctx.action.process_key,
                    pid = %ctx.action.pid,
                    entry = %message_json(ctx.action),
                    "journald unavailable; enforcement entry logged here"
                );
                Outcome::detail(
                    true,
                    format!(
                        "journal socket {} unavailable ({e}); entry written to the agent log",
                        self.socket_path.display()
                    ),
                )
            }
            Err(e) => Outcome::failed(format!("journald send failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_fields_round_trip() {
        let mut out = Vec::new();
        push_field(&mut out, "A", b"plain");
        push_field(&mut out, "B", b"two\nlines");
        let fields = parse_entry(&out).unwrap();
        assert_eq!(fields[0], ("A".to_owned(), b"plain".to_vec()));
        assert_eq!(fields[1], ("B".to_owned(), b"two\nlines".to_vec()));
    }
}
