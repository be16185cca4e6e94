//! File quarantine on real files: copy + hash + chmod 000, and refusals that
//! leave the filesystem untouched.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use scbe_agent::enforce::quarantine::Quarantine;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn copies_hashes_and_zeroes_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("dropper.bin");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&target, &content).unwrap();
    let q = Quarantine::new(dir.path().join("q"), &[]);
    let done = q
        .quarantine(target.to_str().unwrap(), "curl", "77")
        .unwrap();
    assert_eq!(done.destination, dir.path().join("q/curl-77-dropper.bin"));
    assert_eq!(std::fs::read(&done.destination).unwrap(), content);
    assert_eq!(done.bytes, content.len() as u64);
    use sha2::Digest;
    let expected: String = sha2::Sha256::digest(&content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(done.sha256, expected);
    assert_eq!(mode(&target), 0o000);
    assert_eq!(mode(&done.destination), 0o400);
    assert_eq!(mode(&dir.path().join("q")), 0o700);
    // Only the final file is left in the quarantine directory.
    assert_eq!(std::fs::read_dir(dir.path().join("q")).unwrap().count(), 1);
}

#[test]
fn hostile_process_names_cannot_escape_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x");
    std::fs::write(&target, b"x").unwrap();
    let q = Quarantine::new(dir.path().join("q"), &[]);
    let done = q
        .quarantine(target.to_str().unwrap(), "/../../etc/evil", "1")
        .unwrap();
    assert_eq!(done.destination.parent().unwrap(), dir.path().join("q"));
    assert_eq!(
        done.destination.file_name().unwrap().to_str().unwrap(),
        "_.._.._etc_evil-1-x"
    );
}

#[test]
fn refuses_symlinks_directories_fifos_and_protected_paths() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::write(&real, b"data").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let protected_dir = dir.path().join("protected");
    std::fs::create_dir(&protected_dir).unwrap();
    let protected_file = protected_dir.join("config");
    std::fs::write(&protected_file, b"config").unwrap();
    let q = Quarantine::new(dir.path().join("q"), std::slice::from_ref(&protected_dir));

    let cases: [(PathBuf, &str); 4] = [
        (link.clone(), "is a symbolic link"),
        (dir.path().to_owned(), "is not a regular file (a directory)"),
        // Opening a FIFO must not block the agent.
        (fifo.clone(), "is not a regular file (a FIFO)"),
        (protected_file.clone(), "is under protected path"),
    ];
    for (target, reason) in cases {
        let err = q
            .quarantine(target.to_str().unwrap(), "p", "9")
            .unwrap_err();
        assert!(err.contains(reason), "{target:?}: {err}");
    }
    assert_ne!(mode(&real), 0);
    assert_ne!(mode(&protected_file), 0);
    assert!(!dir.path().join("q").exists(), "nothing was copied");
}

#[test]
fn system_paths_are_protected_by_default() {
    let q = Quarantine::new(tempfile::tempdir().unwrap().path().join("q"), &[]);
    let err = q.quarantine("/etc/passwd", "cat", "5").unwrap_err();
    assert!(err.contains("protected path /etc"), "{err}");
    let err = q.quarantine("/missing/file", "cat", "5").unwrap_err();
    assert!(err.contains("cannot open"), "{err}");
}
