//! The `signal` backend on real processes: the running binary stops, kills
//! and renices real `sleep` children, quarantines a real file, and refuses
//! what the safety rails forbid, leaving those processes untouched.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;

use common::*;

fn apply_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--apply-enforcement",
        "--enforcement-backends",
        "signal",
        "--enforcement-cooldown",
        "0",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn quarantine_stops_the_process_and_quarantines_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("payload.sh");
    std::fs::write(&payload, b"#!/bin/sh\necho owned\n").unwrap();
    let qdir = dir.path().join("quarantine");
    let audit = dir.path().join("audit.jsonl");
    let sleeper = Sleeper::start();
    let mut agent = Agent::start(&apply_args(&[
        "--quarantine-dir",
        qdir.to_str().unwrap(),
        "--audit-log",
        audit.to_str().unwrap(),
    ]));

    let record = agent.decide(&suspicious_event(
        sleeper.pid(),
        "sleep",
        payload.to_str().unwrap(),
    ));
    assert_eq!(record["kernel_action"], "QUARANTINE");
    let plan = enforcement(&record);
    assert_eq!(plan["dry_run"], false);
    assert_eq!(plan["applied"], true, "{plan}");
    assert!(failures(&record).is_empty(), "{plan}");

    wait_until("the child to stop", || sleeper.state() == 'T');
    let copy = qdir.join(format!("sleep-{}-payload.sh", sleeper.pid()));
    assert_eq!(std::fs::read(&copy).unwrap(), b"#!/bin/sh\necho owned\n");
    let mode = std::fs::metadata(&payload).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o000, "original mode is {mode:o}");
    let detail = plan["backend_details"][0]["detail"].as_str().unwrap();
    // sha256 of the payload, computed independently.
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(b"#!/bin/sh\necho owned\n")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(detail.contains(&digest), "{detail}");
    assert!(detail.contains("via pidfd"), "{detail}");

    // The audit log holds the applied plan, fsynced before the record.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["verdict"], "applied");
    assert_eq!(&lines[0]["plan"], plan);
    assert!(lines[0]["time_unix_nano"].as_i64().unwrap() > 0);

    let (code, _, stderr) = agent.finish();
    assert_eq!(code, 0);
    assert_eq!(summary(&stderr)["enforcement_applied"], 1);
}

#[test]
fn kill_kills_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let policy = domain_policy(dir.path(), "default");
    let mut sleeper = Sleeper::start();
    let mut agent = Agent::start(&apply_args(&["--policy", policy.to_str().unwrap()]));
    let record = agent.decide(&suspicious_event(
        sleeper.pid(),
        "sleep",
        "/proc/self/fd/0 -> x",
    ));
    assert_eq!(record["kernel_action"], "KILL");
    assert_eq!(enforcement(&record)["applied"], true, "{record}");
    let status = sleeper.0.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert_eq!(agent.finish().0, 0);
}

#[test]
fn throttle_renices_every_thread_by_ten() {
    let dir = tempfile::tempdir().unwrap();
    let policy = domain_policy(dir.path(), "browser");
    let sleeper = Sleeper::start();
    // Relative: the test runner itself may run niced (CI often does).
    let before = sleeper.nice();
    assert!(
        before <= 9,
        "the child must have room for +10, nice is {before}"
    );
    let mut agent = Agent::start(&apply_args(&["--policy", policy.to_str().unwrap()]));
    let record = agent.decide(&suspicious_event(sleeper.pid(), "sleep", ""));
    assert_eq!(record["kernel_action"], "THROTTLE");
    assert_eq!(enforcement(&record)["applied"], true, "{record}");
    assert_eq!(sleeper.nice(), before + 10);
    assert_eq!(sleeper.state(), 'S', "throttled, not stopped");
    assert_eq!(agent.finish().0, 0);
}

#[test]
fn refuses_pid_1_the_agent_its_parent_kernel_threads_and_wrong_names() {
    let sleeper = Sleeper::start();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut agent = Agent::start(&apply_args(&["--audit-log", audit.to_str().unwrap()]));
    let agent_pid = agent.pid();
    let cases = [
        (
            suspicious_event(1, "systemd", ""),
            "pids <= 1 are never targets",
        ),
        (
            suspicious_event(0, "sleep", ""),
            "pids <= 1 are never targets",
        ),
        (
            suspicious_event(agent_pid, "scbe-agent", ""),
            "is the agent itself",
        ),
        (
            suspicious_event(std::process::id(), "enforce_signal", ""),
            "is the agent's parent",
        ),
        (suspicious_event(2, "kthreadd", ""), "is a kernel thread"),
        (
            suspicious_event(sleeper.pid(), "bash", ""),
            "pid reuse guard: /proc/",
        ),
        (suspicious_event(sleeper.pid(), "sshd", ""), "is protected"),
    ];
    for (event, reason) in cases {
        let record = agent.decide(&event);
        let plan = enforcement(&record);
        assert_eq!(plan["applied"], false, "{plan}");
        let failures = failures(&record);
        assert!(
            failures
                .iter()
                .any(|f| f.starts_with("refused: ") && f.contains(reason)),
            "expected {reason:?} in {failures:?}"
        );
        assert_eq!(plan["backend_details"][0]["backend"], "safety");
    }
    assert_eq!(
        sleeper.state(),
        'S',
        "the mismatched process was not touched"
    );
    let audit = std::fs::read_to_string(&audit).unwrap();
    let verdicts: Vec<&str> = audit
        .lines()
        .map(|l| {
            if l.contains("\"verdict\":\"refused\"") {
                "refused"
            } else {
                l
            }
        })
        .collect();
    assert_eq!(verdicts, vec!["refused"; 7]);
    let (code, _, stderr) = agent.finish();
    assert_eq!(code, 3, "a refusal is an enforcement failure");
    assert_eq!(summary(&stderr)["enforcement_refused"], 7);
}

#[test]
fn start_time_guard_uses_proc_pid_ts() {
    let sleeper = Sleeper::start();
    let stat =
        scbe_agent::enforce::procfs::read_stat(std::path::Path::new("/proc"), sleeper.pid() as i32)
            .unwrap();
    let started = stat.start_epoch_nanos();
    let mut agent = Agent::start(&apply_args(&[]));

    // Ten minutes off: another process that reused the pid.
    let record = agent.decide(&suspicious_event_with_ts(
        sleeper.pid(),
        "sleep",
        "",
        started - 600_000_000_000,
    ));
    assert!(failures(&record)[0].contains("proc.pid.ts"), "{record}");
    assert_eq!(sleeper.state(), 'S');

    let record = agent.decide(&suspicious_event_with_ts(
        sleeper.pid(),
        "sleep",
        "",
        started,
    ));
    assert_eq!(enforcement(&record)["applied"], true, "{record}");
    let detail = enforcement(&record)["backend_details"][0]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("comm and start time verified"), "{detail}");
    wait_until("the child to stop", || sleeper.state() == 'T');
    assert_eq!(agent.finish().0, 3);
}

#[test]
fn quarantine_refuses_symlinks_and_directories_but_still_stops() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.txt");
    std::fs::write(&real, b"keep me").unwrap();
    let link = dir.path().join("link.txt");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let qdir = dir.path().join("q");
    let mut agent = Agent::start(&apply_args(&["--quarantine-dir", qdir.to_str().unwrap()]));

    for (target, reason) in [
        (link.to_str().unwrap(), "is a symbolic link"),
        (
            dir.path().to_str().unwrap(),
            "is not a regular file (a directory)",
        ),
    ] {
        let sleeper = Sleeper::start();
        let record = agent.decide(&suspicious_event(sleeper.pid(), "sleep", target));
        let failures = failures(&record);
        assert!(failures.iter().any(|f| f.contains(reason)), "{failures:?}");
        // The process is still contained; only the file part was refused.
        assert_eq!(enforcement(&record)["applied"], true);
        wait_until("the child to stop", || sleeper.state() == 'T');
    }
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_ne!(mode, 0, "the symlink's target kept its mode");
    assert!(!qdir.exists() || std::fs::read_dir(&qdir).unwrap().next().is_none());
    assert_eq!(agent.finish().0, 3);
}

#[test]
fn dry_run_by_default_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("payload.sh");
    std::fs::write(&payload, b"x").unwrap();
    let sleeper = Sleeper::start();
    let mut agent = Agent::start(&["--emit-enforcement"]);
    let record = agent.decide(&suspicious_event(
        sleeper.pid(),
        "sleep",
        payload.to_str().unwrap(),
    ));
    assert_eq!(record["kernel_action"], "QUARANTINE");
    assert_eq!(enforcement(&record)["dry_run"], true);
    assert_eq!(
        enforcement(&record)["backend_details"],
        serde_json::json!([])
    );
    assert_eq!(agent.finish().0, 0);
    assert_eq!(sleeper.state(), 'S');
    assert_ne!(
        std::fs::metadata(&payload).unwrap().permissions().mode() & 0o777,
        0
    );
}
