//! `--audit-log`: an append-only JSONL record of every enforcement attempt in
//! apply mode — applied, failed, refused by the safety rails, or held back by
//! the circuit breaker — each line fsynced before the agent moves on, so the
//! record of what was done to the host survives a crash.
//!
//! Line: `{"time_unix_nano":N,"verdict":"applied","plan":{…SPEC §9 plan…}}`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use scbe_core::{Clock, EnforcementPlan};

use crate::clock::SystemClock;
use crate::enforce::Verdict;

#[derive(Debug)]
pub struct AuditLog {
    file: File,
    path: PathBuf,
}

impl AuditLog {
    /// Open for appending (created with mode 0600).
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        Ok(AuditLog {
            file,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, plan: &EnforcementPlan, verdict: Verdict) -> io::Result<()> {
        let mut line = format!(
            "{{\"time_unix_nano\":{},\"verdict\":\"{}\",\"plan\":",
            SystemClock.now().as_nanos(),
            verdict.as_str()
        );
        plan.write_json(&mut line);
        line.push_str("}\n");
        // One write call per line: O_APPEND keeps concurrent writers' lines whole.
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()
    }
}
