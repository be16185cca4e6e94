//! File quarantine: copy a suspicious file out of reach and make the original
//! unusable, without ever being tricked into touching another file.
//!
//! - The target is opened once, with `O_NOFOLLOW` (a symlink is refused, not
//!   followed) and `O_NONBLOCK` (opening a FIFO must not hang the agent);
//!   everything after works on that descriptor, so a rename race cannot swap
//!   the file between the checks and the copy.
//! - Only regular files are copied; the real path of the open descriptor is
//!   checked against protected prefixes (`/etc`, `/usr`, ...): chmod 000 on a
//!   system file would do the attacker's work for them.
//! - The copy goes to a temporary name in the quarantine directory (mode
//!   0700), is fsynced, renamed to its sanitized final name (mode 0400), and
//!   the directory is fsynced; its SHA-256 is computed while copying.
//! - Only then is the original's mode set to 000 (`fchmod` on the descriptor).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use sha2::{Digest, Sha256};

use crate::enforce::procfs::ProcessUids;
use crate::limits::{QUARANTINE_FILE_BYTES_MAX, QUARANTINE_NAME_BYTES_MAX};

/// Path prefixes whose files are never quarantined (the process is still
/// stopped). `--protected-path` adds more.
pub const DEFAULT_PROTECTED_PATHS: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
    "/sbin", "/sys", "/usr", "/var/lib",
];

/// What a successful quarantine did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub source: PathBuf,
    pub destination: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

/// Where and how files are quarantined.
#[derive(Debug, Clone)]
pub struct Quarantine {
    dir: PathBuf,
    protected: Vec<PathBuf>,
}

impl Quarantine {
    pub fn new(dir: impl Into<PathBuf>, extra_protected: &[PathBuf]) -> Quarantine {
        let protected = DEFAULT_PROTECTED_PATHS
            .iter()
            .map(PathBuf::from)
            .chain(extra_protected.iter().cloned())
            .collect();
        Quarantine {
            dir: dir.into(),
            protected,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Quarantine `target` under the name `NAME-PID-BASENAME` (sanitized),
    /// without an ownership check (see [`Quarantine::quarantine_for`]).
    pub fn quarantine(
        &self,
        target: &str,
        process_name: &str,
        pid: &str,
    ) -> Result<Quarantined, String> {
        self.quarantine_for(target, process_name, pid, None)
    }

    /// [`Quarantine::quarantine`] on behalf of a process with `uids`: unless
    /// it runs as root, only a file owned by its real or effective uid is
    /// quarantined. The event names the file, and an unprivileged user
    /// controls the event (it opens a file with a suspicious command line);
    /// without this check it could name any file it can open — a service's
    /// configuration, another user's keys — and have the agent, as root,
    /// make it unusable. Checked on the open descriptor, like the rest.
    pub fn quarantine_for(
        &self,
        target: &str,
        process_name: &str,
        pid: &str,
        uids: Option<ProcessUids>,
    ) -> Result<Quarantined, String> {
        let source = Path::new(target);
        let file = open_no_follow(source)?;
        let meta = file
            .metadata()
            .map_err(|e| format!("quarantine: cannot stat {target}: {e}"))?;
        if !meta.file_type().is_file() {
            return Err(format!(
                "quarantine refused: {target} is not a regular file ({})",
                kind_of(&meta.file_type())
            ));
        }
        // Where the descriptor really points (symlinked parent directories,
        // `..` and bind mounts resolved by the kernel).
        let real = fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&file)
        ))
        .map_err(|e| format!("quarantine: cannot resolve {target}: {e}"))?;
        if let Some(prefix) = self.protected.iter().find(|p| real.starts_with(p)) {
            return Err(format!(
                "quarantine refused: {} is under protected path {}",
                real.display(),
                prefix.display()
            ));
        }
        if real.starts_with(&self.dir) {
            return Err(format!(
                "quarantine refused: {} is already in the quarantine directory",
                real.display()
            ));
        }
        if let Some(uids) = uids {
            let owner = std::os::unix::fs::MetadataExt::uid(&meta);
            if uids.effective != 0 && owner != uids.real && owner != uids.effective {
                return Err(format!(
                    "quarantine refused: {} belongs to uid {owner}, not to the process (uid {}, euid {}): an unprivileged process cannot get another user's file quarantined",
                    real.display(),
                    uids.real,
                    uids.effective
                ));
            }
        }
        if meta.len() > QUARANTINE_FILE_BYTES_MAX {
            return Err(format!(
                "quarantine refused: {target} has {} bytes, over the limit of {QUARANTINE_FILE_BYTES_MAX}",
                meta.len()
            ));
        }
        let name = sanitize_name(&format!(
            "{process_name}-{pid}-{}",
            scbe_core::enforcement::pathlib_name(target)
        ));
        let (destination, sha256, bytes) = self.copy_in(
            file.try_clone().map_err(|e| format!("quarantine: {e}"))?,
            &name,
        )?;
        // The copy is durable: now make the original unusable.
        file.set_permissions(fs::Permissions::from_mode(0o000))
            .map_err(|e| {
                format!(
                    "quarantine: copied to {} but cannot chmod 000 {target}: {e}",
                    destination.display()
                )
            })?;
        Ok(Quarantined {
            source: real,
            destination,
            sha256,
            bytes,
        })
    }

    fn copy_in(&self, mut file: File, name: &str) -> Result<(PathBuf, String, u64), String> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| format!("quarantine: cannot create {}: {e}", self.dir.display()))?;
        let dir_meta = fs::symlink_metadata(&self.dir)
            .map_err(|e| format!("quarantine: cannot stat {}: {e}", self.dir.display()))?;
        if !dir_meta.is_dir() {
            return Err(format!(
                "quarantine refused: {} is not a directory",
                self.dir.display()
            ));
        }
        let destination = self.dir.join(name);
        let temp = self
            .dir
            .join(format!(".{name}.partial-{}", std::process::id()));
        let _ = fs::remove_file(&temp);
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32 | OFlags::CLOEXEC.bits() as i32)
            .open(&temp)
            .map_err(|e| format!("quarantine: cannot create {}: {e}", temp.display()))?;
        let result = (|| -> io::Result<(String, u64)> {
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 << 10];
            let mut bytes = 0u64;
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                bytes += n as u64;
                if bytes > QUARANTINE_FILE_BYTES_MAX {
                    return Err(io::Error::other("file grew past the quarantine size limit"));
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            out.sync_all()?;
            fs::rename(&temp, &destination)?;
            File::open(&self.dir)?.sync_all()?;
            Ok((hex(&hasher.finalize()), bytes))
        })();
        match result {
            Ok((sha256, bytes)) => Ok((destination, sha256, bytes)),
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(format!(
                    "quarantine: cannot copy to {}: {e}",
                    destination.display()
                ))
            }
        }
    }
}

fn open_no_follow(path: &Path) -> Result<File, String> {
    let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| {
            // ELOOP is what O_NOFOLLOW answers for a symlink.
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                format!("quarantine refused: {} is a symbolic link", path.display())
            } else {
                format!("quarantine: cannot open {}: {e}", path.display())
            }
        })
}

fn kind_of(file_type: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// A file name that stays inside the quarantine directory: no `/`, no NUL
/// or control characters, no leading `.`, at most
/// [`QUARANTINE_NAME_BYTES_MAX`] bytes. (The command preview keeps the
/// reference's raw `pathlib` name; this is what is actually written.)
pub fn sanitize_name(raw: &str) -> String {
    let mut name = String::with_capacity(raw.len().min(QUARANTINE_NAME_BYTES_MAX));
    for c in raw.chars() {
        let c = if c == '/' || c == '\\' || c.is_control() {
            '_'
        } else {
            c
        };
        if name.len() + c.len_utf8() > QUARANTINE_NAME_BYTES_MAX {
            break;
        }
        name.push(c);
    }
    if name.starts_with('.') {
        name.replace_range(0..1, "_");
    }
    if name.is_empty() {
        name.push_str("unnamed");
    }
    name
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_the_directory() {
        assert_eq!(sanitize_name("curl-42-payload.sh"), "curl-42-payload.sh");
        assert_eq!(sanitize_name("/evil/../x-1-y"), "_evil_.._x-1-y");
        assert_eq!(sanitize_name("..-1-"), "_.-1-");
        assert_eq!(sanitize_name("a\nb\0c"), "a_b_c");
        assert_eq!(sanitize_name(""), "unnamed");
        let long = sanitize_name(&"é".repeat(300));
        assert!(long.len() <= QUARANTINE_NAME_BYTES_MAX);
        assert!(long.chars().all(|c| c == 'é'));
    }
}
