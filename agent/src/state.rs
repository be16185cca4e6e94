//! `--state-file`: the antibody table on disk, so a restart does not forget
//! which processes were suspicious.
//!
//! Saved atomically — written to a temporary file in the same directory,
//! fsynced, renamed over the old file, the directory fsynced — so a crash
//! leaves the old state or the new one, never half of either. Entries keep
//! the table's insertion order, which is also its eviction order (SPEC §7).
//! A file that does not parse or holds impossible values is a clear error
//! (or, with `--state-move-corrupt`, moved aside and the agent starts empty).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use scbe_core::limits::STATE_ENTRIES_MAX;
use scbe_core::memory::AntibodyTable;
use scbe_core::Clock;
use serde::{Deserialize, Serialize};

use crate::clock::SystemClock;
use crate::limits::STATE_FILE_BYTES_MAX;

const FORMAT: &str = "scbe-agent-state";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: String,
    version: u32,
    saved_at_unix_nano: i64,
    /// `[process_key, antibody_load]`, oldest first.
    entries: Vec<(String, f64)>,
}

/// Why a state file cannot be used.
#[derive(Debug)]
pub enum StateError {
    Io(PathBuf, io::Error),
    Corrupt(PathBuf, String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Io(path, e) => write!(f, "state file {}: {e}", path.display()),
            StateError::Corrupt(path, why) => write!(
                f,
                "state file {} is corrupt: {why} (fix or remove it, or start with --state-move-corrupt to move it aside)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// Write the table to `path` atomically.
pub fn save(path: &Path, table: &AntibodyTable) -> io::Result<()> {
    let state = StateFile {
        format: FORMAT.to_owned(),
        version: VERSION,
        saved_at_unix_nano: SystemClock.now().as_nanos(),
        entries: table.entries().map(|(k, v)| (k.to_owned(), v)).collect(),
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "state file path has no file name",
        )
    })?;
    let temp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    crate::durable::replace_file(&temp, path, dir, |file| {
        let mut writer = io::BufWriter::new(file);
        serde_json::to_writer(&mut writer, &state)?;
        writer.write_all(b"\n")?;
        writer.flush()
    })
}

/// Read a state file. `Ok(None)` when it does not exist (first start).
/// Temporary files left by saves that were killed mid-write are removed.
pub fn load(path: &Path) -> Result<Option<Vec<(String, f64)>>, StateError> {
    remove_stale_temps(path);
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::Io(path.to_owned(), e)),
    };
    let mut text = Vec::new();
    file.take(STATE_FILE_BYTES_MAX + 1)
        .read_to_end(&mut text)
        .map_err(|e| StateError::Io(path.to_owned(), e))?;
    let corrupt = |why: String| StateError::Corrupt(path.to_owned(), why);
    if text.len() as u64 > STATE_FILE_BYTES_MAX {
        return Err(corrupt(format!("larger than {STATE_FILE_BYTES_MAX} bytes")));
    }
    let state: StateFile =
        serde_json::from_slice(&text).map_err(|e| corrupt(format!("not a state file: {e}")))?;
    if state.format != FORMAT || state.version != VERSION {
        return Err(corrupt(format!(
            "format {:?} version {} (expected {FORMAT:?} version {VERSION})",
            state.format, state.version
        )));
    }
    if state.entries.len() > STATE_ENTRIES_MAX {
        return Err(corrupt(format!(
            "{} entries, over the limit of {STATE_ENTRIES_MAX}",
            state.entries.len()
        )));
    }
    for (key, load) in &state.entries {
        if key.is_empty() {
            return Err(corrupt("an entry has an empty process key".to_owned()));
        }
        if !(0.0..=1.0).contains(load) {
            return Err(corrupt(format!(
                "antibody load {load} for {key:?} is outside [0, 1]"
            )));
        }
    }
    Ok(Some(state.entries))
}

/// Remove `.NAME.tmp-PID` files next to `path` that this process did not
/// write: each is a save that never reached its rename (SIGKILL, power
/// loss), up to a whole state file in size, and nothing else reads them.
fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let own = format!("{prefix}{}", std::process::id());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with(&prefix) && file_name != own {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Move a corrupt state file aside (`PATH.corrupt-UNIXSECONDS`).
pub fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let secs = SystemClock.now().as_nanos() / 1_000_000_000;
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{secs}"));
    let aside = PathBuf::from(aside);
    fs::rename(path, &aside)?;
    Ok(aside)
}

/// Put loaded entries into the table, oldest first (so eviction order holds).
pub fn restore(table: &mut AntibodyTable, entries: Vec<(String, f64)>) {
    for (key, load) in entries {
        table.store(&key, load);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_order_and_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut table = AntibodyTable::new(1000);
        table.store("h:2:b", 0.1 + 0.2);
        table.store("h:1:a", 1.0 / 3.0);
        save(&path, &table).unwrap();
        let entries = load(&path).unwrap().unwrap();
        assert_eq!(
            entries,
            vec![
                ("h:2:b".to_owned(), 0.1 + 0.2),
                ("h:1:a".to_owned(), 1.0 / 3.0)
            ]
        );
        let mut restored = AntibodyTable::new(1000);
        restore(&mut restored, entries);
        assert_eq!(
            restored.entries().collect::<Vec<_>>(),
            table.entries().collect::<Vec<_>>()
        );
        // No temporary files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_is_none_and_corrupt_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load(&path).unwrap().is_none());
        fs::write(&path, b"{\"format\":\"scbe-agent-state\",\"version\":1,").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("is corrupt"), "{err}");
        fs::write(
            &path,
            br#"{"format":"scbe-agent-state","version":1,"saved_at_unix_nano":0,"entries":[["k",1.5]]}"#,
        )
        .unwrap();
        assert!(load(&path)
            .unwrap_err()
            .to_string()
            .contains("outside [0, 1]"));
        let aside = move_aside(&path).unwrap();
        assert!(aside.exists() && !path.exists());
    }
}
