//! The domain event the gate decides on.

use std::fmt;

use crate::clock::Timestamp;

/// A process id as the reference keeps it: any integer, of any length
/// (Python ints are unbounded), in canonical decimal form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pid {
    Small(i64),
    /// Does not fit in an `i64`; kept as canonical decimal text.
    Big(Box<str>),
}

impl Default for Pid {
    fn default() -> Pid {
        Pid::ZERO
    }
}

impl Pid {
    pub const ZERO: Pid = Pid::Small(0);

    /// From canonical decimal text (optional `-`, no leading zeros).
    pub fn from_canonical(text: String) -> Pid {
        match text.parse::<i64>() {
            Ok(n) => Pid::Small(n),
            Err(_) => Pid::Big(text.into_boxed_str()),
        }
    }

    /// Append the decimal form (as `Display` writes it) without formatting
    /// machinery: this runs for every event.
    pub fn push_to(&self, out: &mut String) {
        match self {
            Pid::Small(n) => out.push_str(itoa::Buffer::new().format(*n)),
            Pid::Big(text) => out.push_str(text),
        }
    }

    /// The pid as a positive OS pid, when it is one.
    pub fn as_os_pid(&self) -> Option<i32> {
        match self {
            Pid::Small(n) if *n > 0 => i32::try_from(*n).ok(),
            _ => None,
        }
    }

    /// Whether the pid is ≤ 0 (Big pids can be negative too).
    pub fn is_non_positive(&self) -> bool {
        match self {
            Pid::Small(n) => *n <= 0,
            Pid::Big(text) => text.starts_with('-'),
        }
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pid::Small(n) => write!(f, "{n}"),
            Pid::Big(text) => f.write_str(text),
        }
    }
}

/// A normalized kernel event (SPEC §1). The default is an empty event
/// (pid 0, no hash), a shell for [`crate::falco::map_event_into`] to fill.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KernelEvent {
    pub host: String,
    pub pid: Pid,
    pub process_name: String,
    pub parent_process: String,
    pub command_line: String,
    pub operation: String,
    pub target: String,
    pub signer_trusted: bool,
    pub hash_sha256: Option<String>,
    pub geometry_norm: f64,
    /// The metadata dict as the reference renders it (`repr(dict)`), which is
    /// all the scanner needs of it.
    pub metadata_repr: String,
    /// The event's own time, when it carries one.
    pub time: Option<Timestamp>,
}

impl KernelEvent {
    /// `host:pid:process_name` (SPEC §7).
    pub fn process_key(&self) -> String {
        let mut key = String::new();
        self.process_key_into(&mut key);
        key
    }

    /// [`Self::process_key`] into `key`, replacing what it held.
    pub fn process_key_into(&self, key: &mut String) {
        key.clear();
        crate::pystr::make_room(key, self.host.len() + self.process_name.len() + 22);
        key.push_str(&self.host);
        key.push(':');
        self.pid.push_to(key);
        key.push(':');
        key.push_str(&self.process_name);
    }

    /// Replace the geometry norm from a state vector (SPEC §10).
    pub fn with_state_vector(mut self, vector: &[f64]) -> KernelEvent {
        self.geometry_norm = crate::geometry::norm_from_state_vector(vector);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_written_as_display_writes_them() {
        for pid in [
            Pid::Small(0),
            Pid::Small(1),
            Pid::Small(-7),
            Pid::Small(i64::MAX),
            Pid::Small(i64::MIN),
            Pid::Big("123456789012345678901234567890".into()),
            Pid::Big("-123456789012345678901234567890".into()),
        ] {
            let mut out = String::new();
            pid.push_to(&mut out);
            assert_eq!(out, pid.to_string());
        }
    }
}
