//! A bounded on-disk FIFO of SOC action events waiting for delivery.
//!
//! One file per event (`NNNNNNNNNNNNNNNNNNNN.json`, sequence-numbered), each
//! written to a temporary name, fsynced and renamed, so a crash leaves either
//! a whole event or none. The spool survives restarts: the next start delivers
//! what is left. Files hold only the request body — never the bearer token.

use std::collections::VecDeque;
use std::fs::{self, DirBuilder};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Why an event could not be spooled.
#[derive(Debug)]
pub enum SpoolError {
    /// At the entry or byte bound: the event is dropped (and counted).
    Full,
    Io(io::Error),
}

impl std::fmt::Display for SpoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpoolError::Full => f.write_str("spool full"),
            SpoolError::Io(e) => write!(f, "spool write failed: {e}"),
        }
    }
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// (sequence number, size in bytes), oldest first.
    entries: VecDeque<(u64, u64)>,
    total_bytes: u64,
    next_seq: u64,
    max_entries: usize,
    max_bytes: u64,
}

impl Spool {
    /// Open (creating with mode 0700) the spool directory and index what is in it.
    pub fn open(dir: impl Into<PathBuf>, max_entries: usize, max_bytes: u64) -> io::Result<Spool> {
        let dir = dir.into();
        DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        let mut entries = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') && name.ends_with(".tmp") {
                // A write that never completed: not an event.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            entries.push((seq, entry.metadata()?.len()));
        }
        entries.sort_unstable();
        let next_seq = entries.last().map_or(0, |(seq, _)| seq + 1);
        Ok(Spool {
            dir,
            total_bytes: entries.iter().map(|(_, len)| len).sum(),
            entries: entries.into(),
            next_seq,
            max_entries,
            max_bytes,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.json"))
    }

    /// Append one event durably.
    pub fn push(&mut self, body: &[u8]) -> Result<(), SpoolError> {
        if self.entries.len() >= self.max_entries
            || self.total_bytes + body.len() as u64 > self.max_bytes
        {
            return Err(SpoolError::Full);
        }
        let seq = self.next_seq;
        let temp = self.dir.join(format!(".{seq:020}.tmp"));
        crate::durable::replace_file(&temp, &self.path(seq), &self.dir, |file| {
            file.write_all(body)
        })
        .map_err(SpoolError::Io)?;
        self.next_seq += 1;
        self.entries.push_back((seq, body.len() as u64));
        self.total_bytes += body.len() as u64;
        Ok(())
    }

    /// The oldest event's sequence number and body.
    pub fn front(&self) -> Option<(u64, io::Result<Vec<u8>>)> {
        let &(seq, _) = self.entries.front()?;
        Some((seq, fs::read(self.path(seq))))
    }

    /// Forget the oldest event (delivered, or unreadable) if it is `seq`.
    pub fn remove_front(&mut self, seq: u64) -> io::Result<()> {
        if self.entries.front().map(|(s, _)| *s) != Some(seq) {
            return Ok(());
        }
        let (_, len) = self.entries.pop_front().expect("front exists");
        self.total_bytes -= len;
        match fs::remove_file(self.path(seq)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_bounded_and_persistent() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path().join("spool"), 2, 1 << 20).unwrap();
        spool.push(b"one").unwrap();
        spool.push(b"two").unwrap();
        assert!(matches!(spool.push(b"three"), Err(SpoolError::Full)));
        drop(spool);
        let mut spool = Spool::open(dir.path().join("spool"), 2, 1 << 20).unwrap();
        assert_eq!(spool.len(), 2);
        let (seq, body) = spool.front().unwrap();
        assert_eq!(body.unwrap(), b"one");
        spool.remove_front(seq).unwrap();
        spool.push(b"three").unwrap();
        let bodies: Vec<Vec<u8>> = std::iter::from_fn(|| {
            let (seq, body) = spool.front()?;
            spool.remove_front(seq).ok()?;
            body.ok()
        })
        .collect();
        assert_eq!(bodies, vec![b"two".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn byte_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 100, 5).unwrap();
        spool.push(b"abc").unwrap();
        assert!(matches!(spool.push(b"abc"), Err(SpoolError::Full)));
    }
}
