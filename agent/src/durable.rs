//! Files replaced so that a crash leaves either the old content or the whole
//! new one, never a torn write: the state file and the SOC spool's entries.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Write `dest` through `temp` (same directory `dir`, mode 0600): `write`
/// fills the temporary file, which is synced, renamed over `dest`, and the
/// directory synced so the rename itself survives a crash. On any error the
/// temporary file is removed and `dest` is untouched.
pub fn replace_file(
    temp: &Path,
    dest: &Path,
    dir: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(temp)?;
        write(&mut file)?;
        file.sync_all()?;
        fs::rename(temp, dest)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn replaces_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let temp = dir.path().join(".f.tmp");
        fs::write(&dest, b"old").unwrap();
        let failed = replace_file(&temp, &dest, dir.path(), |file| {
            file.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert!(!temp.exists(), "the temporary file is removed");
        replace_file(&temp, &dest, dir.path(), |file| file.write_all(b"new")).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert!(!temp.exists());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
