//! Fault injection against the real `scbe-agent` binary, each fault with a
//! count of what must not be lost: every event gets its decision record, and
//! every action its delivery (SOC), its journal entry (or the log fallback),
//! its outcome in the record and the audit log (quarantine), and the state
//! file is always a whole one.
//!
//! Faults: the SOC sink answers 500, hangs past the timeout, refuses
//! connections, then recovers; the spool carries undelivered actions across
//! a restart; the journald socket is missing, then appears; the quarantine
//! directory cannot be created, is read-only or full; the state file is
//! corrupt or truncated at start; SIGTERM arrives mid-stream (stdin and HTTP);
//! SIGKILL arrives while the state file is being written.
//!
//! Real processes, sockets on 127.0.0.1 and files; every wait polls an
//! observable condition with a deadline. Each test prints its row of the
//! fault matrix (`fault matrix | ... | lost 0`).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

fn row(fault: &str, detail: &str) {
    eprintln!("fault matrix | {fault} | {detail} | lost 0");
}

// ---------------------------------------------------------------- SOC sink

const OK: u8 = 0;
const FAIL_500: u8 = 1;
const HANG: u8 = 2;

/// An HTTP sink on 127.0.0.1: answers 200, answers 500, or reads the request
/// and never answers. Only requests answered 200 count as delivered.
struct Sink {
    port: u16,
    mode: Arc<AtomicU8>,
    delivered: Arc<Mutex<Vec<serde_json::Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    fn start(port: u16, mode: u8) -> Sink {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the sink");
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(mode));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (mode2, delivered2, stop2) =
            (Arc::clone(&mode), Arc::clone(&delivered), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (mode, delivered) = (Arc::clone(&mode2), Arc::clone(&delivered2));
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &mode, &delivered);
                });
            }
        });
        Sink {
            port,
            mode,
            delivered,
            stop,
            thread: Some(thread),
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn delivered_keys(&self) -> Vec<String> {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["action"]["process_key"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Close the listening socket: from now on connections are refused.
    fn shut_down(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.thread.take().unwrap().join().unwrap();
    }
}

fn serve_one(
    stream: TcpStream,
    mode: &AtomicU8,
    delivered: &Mutex<Vec<serde_json::Value>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(DEADLINE))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut stream = stream;
    match mode.load(Ordering::SeqCst) {
        OK => {
            delivered
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
        FAIL_500 => write!(
            stream,
            "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
        _ => {
            // Hang: hold the connection without a word until the fault ends,
            // then drop it unanswered (the agent has long timed out).
            while mode.load(Ordering::SeqCst) == HANG {
                let mut byte = [0u8; 1];
                stream.set_read_timeout(Some(Duration::from_millis(50)))?;
                match stream.read(&mut byte) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return Ok(()),
                }
            }
        }
    }
    stream.flush()
}

/// A free port on 127.0.0.1 with nothing listening on it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn soc_args(port: u16, spool: &Path) -> Vec<String> {
    [
        "--apply-enforcement",
        "--enforcement-backends",
        "soc",
        "--enforcement-cooldown",
        "0",
        "--soc-endpoint",
        &format!("http://127.0.0.1:{port}/ingest"),
        "--soc-spool-dir",
        spool.to_str().unwrap(),
        "--soc-timeout-seconds",
        "0.5",
        "--soc-retry-max-seconds",
        "0.2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn start(args: &[String]) -> Agent {
    Agent::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn spooled(spool: &Path) -> usize {
    std::fs::read_dir(spool)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_str()
                    .unwrap()
                    .ends_with(".json")
            })
            .count()
        })
        .unwrap_or(0)
}

fn key(pid: u32) -> String {
    format!("linux-node:{pid}:curl")
}

/// Every key delivered at least once; (duplicates, in order without them).
fn check_delivered(keys: &[String], expected: &[String]) -> (usize, bool) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_default() += 1;
    }
    for k in expected {
        assert!(
            counts.contains_key(k.as_str()),
            "action {k} never delivered: {keys:?}"
        );
    }
    assert_eq!(
        counts.len(),
        expected.len(),
        "unexpected deliveries: {keys:?}"
    );
    let mut first_seen: Vec<&String> = Vec::new();
    for k in keys {
        if !first_seen.contains(&k) {
            first_seen.push(k);
        }
    }
    let in_order = first_seen.iter().copied().eq(expected.iter());
    (keys.len() - expected.len(), in_order)
}

/// The sink in `fault` for `during` events, then healthy for `after` more:
/// every action arrives.
fn soc_fault_then_recovery(name: &str, fault: u8, refuse: bool, expect_failure: &str) {
    const DURING: u32 = 12;
    const AFTER: u32 = 4;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let (sink, port) = if refuse {
        (None, free_port())
    } else {
        let sink = Sink::start(0, fault);
        let port = sink.port;
        (Some(sink), port)
    };
    let mut agent = start(&soc_args(port, &spool));
    for pid in 5000..5000 + DURING {
        let record = agent.decide(&suspicious_event(pid, "curl", "/tmp/a"));
        let failures = failures(&record);
        assert_eq!(failures.len(), 1, "{record}");
        assert!(
            failures[0].contains(expect_failure) || failures[0].starts_with("soc sink unavailable"),
            "{name}: {failures:?}"
        );
        assert!(
            failures[0].ends_with("action event spooled for retry"),
            "{failures:?}"
        );
    }
    assert_eq!(
        spooled(&spool),
        DURING as usize,
        "{name}: every failed action is on disk"
    );
    let sink = match sink {
        Some(sink) => {
            sink.set(OK);
            sink
        }
        None => Sink::start(port, OK),
    };
    for pid in 5000 + DURING..5000 + DURING + AFTER {
        agent.decide(&suspicious_event(pid, "curl", "/tmp/a"));
    }
    let expected: Vec<String> = (5000..5000 + DURING + AFTER).map(key).collect();
    wait_until("every action delivered", || {
        let keys = sink.delivered_keys();
        expected.iter().all(|k| keys.contains(k))
    });
    wait_until("the spool to drain", || spooled(&spool) == 0);
    let (duplicates, in_order) = check_delivered(&sink.delivered_keys(), &expected);
    assert!(
        in_order,
        "{name}: delivered out of order: {:?}",
        sink.delivered_keys()
    );
    let (code, stdout, stderr) = agent.terminate();
    assert_eq!(
        code, 3,
        "{name}: failed deliveries are failures at the time"
    );
    assert_eq!(stdout.len(), expected.len());
    let summary = summary(&stderr);
    assert_eq!(summary["soc_spool_pending"], 0);
    assert_eq!(summary["events_seen"], expected.len() as u64);
    row(
        &format!("SOC sink {name}, then recovers"),
        &format!(
            "events {n} | actions {n} | delivered {n} (duplicates {duplicates}, in order)",
            n = expected.len()
        ),
    );
    sink.shut_down();
}

#[test]
fn soc_sink_returning_500_then_recovering_loses_nothing() {
    soc_fault_then_recovery("returns 500", FAIL_500, false, "soc sink returned HTTP 500");
}

#[test]
fn soc_sink_timing_out_then_recovering_loses_nothing() {
    soc_fault_then_recovery("times out", HANG, false, "soc sink request failed");
}

#[test]
fn soc_sink_refusing_connections_then_recovering_loses_nothing() {
    soc_fault_then_recovery("refuses connections", OK, true, "soc sink request failed");
}

#[test]
fn soc_spool_carries_actions_across_a_restart() {
    const N: u32 = 10;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let port = free_port();
    let args = soc_args(port, &spool);
    let mut agent = start(&args);
    for pid in 6000..6000 + N {
        agent.decide(&suspicious_event(pid, "curl", "/tmp/a"));
    }
    let (code, _, stderr) = agent.terminate();
    assert_eq!(code, 3);
    assert_eq!(summary(&stderr)["soc_spool_pending"], N);
    assert_eq!(
        spooled(&spool),
        N as usize,
        "the spool outlives the process"
    );

    // A new agent (no events of its own) delivers what the old one spooled.
    let sink = Sink::start(port, OK);
    let mut args = args;
    args.extend(["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
    let agent = start(&args);
    let expected: Vec<String> = (6000..6000 + N).map(key).collect();
    wait_until("the spool from before the restart to be delivered", || {
        sink.delivered_keys().len() >= expected.len()
    });
    wait_until("the spool to drain", || spooled(&spool) == 0);
    let (duplicates, in_order) = check_delivered(&sink.delivered_keys(), &expected);
    assert!(in_order);
    let (code, _, stderr) = agent.terminate();
    assert_eq!(code, 0);
    assert_eq!(summary(&stderr)["soc_spool_pending"], 0);
    row(
        "SOC sink down across an agent restart",
        &format!(
            "actions {N} | spooled {N} | delivered after restart {N} (duplicates {duplicates})"
        ),
    );
    sink.shut_down();
}

// --------------------------------------------------------------- journald

#[test]
fn journald_socket_missing_then_present_loses_no_entry() {
    const MISSING: u32 = 8;
    const PRESENT: u32 = 8;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sock");
    let mut agent = Agent::start(&[
        "--apply-enforcement",
        "--enforcement-backends",
        "journald",
        "--enforcement-cooldown",
        "0",
        "--journald-socket",
        path.to_str().unwrap(),
    ]);
    for pid in 7000..7000 + MISSING {
        let record = agent.decide(&suspicious_event(pid, "curl", "/tmp/a"));
        let detail = &enforcement(&record)["backend_details"][0];
        assert_eq!(detail["applied"], true, "{record}");
        assert!(detail["detail"]
            .as_str()
            .unwrap()
            .contains("entry written to the agent log"));
    }
    // Each fallback entry is in the agent's log, with its process key.
    let logged = |agent: &Agent| -> Vec<String> {
        agent
            .stderr
            .json()
            .into_iter()
            .filter(|v| {
                v["fields"]["message"] == "journald unavailable; enforcement entry logged here"
            })
            .map(|v| {
                v["fields"]["process_key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    wait_until("every fallback entry in the log", || {
        logged(&agent).len() == MISSING as usize
    });

    // journald comes up: entries go to the socket from the next action on.
    let journal = UnixDatagram::bind(&path).unwrap();
    journal.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for pid in 7000 + MISSING..7000 + MISSING + PRESENT {
        let record = agent.decide(&suspicious_event(pid, "curl", "/tmp/a"));
        assert!(enforcement(&record)["backend_details"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("emitted via journal socket"));
        let n = journal.recv(&mut buf).unwrap();
        let fields = scbe_agent::enforce::journald::parse_entry(&buf[..n]).unwrap();
        let key = fields
            .iter()
            .find(|(k, _)| k == "SCBE_PROCESS_KEY")
            .unwrap();
        received.push(String::from_utf8(key.1.clone()).unwrap());
    }
    let mut all = logged(&agent);
    all.extend(received);
    let expected: Vec<String> = (7000..7000 + MISSING + PRESENT).map(key).collect();
    assert_eq!(
        all, expected,
        "every action has exactly one entry, log or journal"
    );
    let (code, _, stderr) = agent.finish();
    assert_eq!(code, 0);
    assert_eq!(
        summary(&stderr)["enforcement_applied"],
        u64::from(MISSING + PRESENT)
    );
    row(
        "journald socket missing, then present",
        &format!(
            "actions {} | log fallback {MISSING} | journal {PRESENT}",
            MISSING + PRESENT
        ),
    );
}

/// Found by this test: the journal socket was blocking, so a journald that
/// stopped reading (its datagram queue full after 10 entries) stalled the
/// decision loop for good — no more records, for any event.
#[test]
fn journald_that_stops_reading_does_not_stall_decisions() {
    const N: u32 = 40;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sock");
    // Bound but not read while the events go by: its queue fills up.
    let journal = UnixDatagram::bind(&path).unwrap();
    let mut agent = Agent::start(&[
        "--apply-enforcement",
        "--enforcement-backends",
        "journald",
        "--enforcement-cooldown",
        "0",
        "--journald-socket",
        path.to_str().unwrap(),
    ]);
    for pid in 7100..7100 + N {
        agent.send(&suspicious_event(pid, "curl", "/tmp/a"));
    }
    agent.stdout.wait_for_len(N as usize);
    let fallback: Vec<String> = {
        let stderr = agent.stderr.clone();
        let logged = move || -> Vec<String> {
            stderr
                .json()
                .into_iter()
                .filter(|v| {
                    v["fields"]["message"] == "journald unavailable; enforcement entry logged here"
                })
                .map(|v| {
                    v["fields"]["process_key"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect()
        };
        let (code, _, _) = agent.finish();
        assert_eq!(code, 0);
        logged()
    };
    // What journald would have read, once it caught up.
    journal.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut journaled = Vec::new();
    while let Ok(n) = journal.recv(&mut buf) {
        let fields = scbe_agent::enforce::journald::parse_entry(&buf[..n]).unwrap();
        let key = fields
            .iter()
            .find(|(k, _)| k == "SCBE_PROCESS_KEY")
            .unwrap();
        journaled.push(String::from_utf8(key.1.clone()).unwrap());
    }
    let mut all = journaled.clone();
    all.extend(fallback.iter().cloned());
    all.sort();
    let expected: Vec<String> = (7100..7100 + N).map(key).collect();
    assert_eq!(
        all, expected,
        "every action has exactly one entry, journal or log"
    );
    assert!(!fallback.is_empty(), "the queue did fill up");
    row(
        "journald socket wedged (never read)",
        &format!(
            "events {N} | decided {N} | journal {} | log fallback {}",
            journaled.len(),
            fallback.len()
        ),
    );
}

// ------------------------------------------------------------- quarantine

/// Start the agent in its own mount namespace with a tmpfs of `size` at
/// `mount_at` (read-only when `read_only`). `None` when this host cannot
/// make mount namespaces (not root, no user namespaces).
fn agent_with_tmpfs(mount_at: &Path, size: &str, read_only: bool, args: &[&str]) -> Option<Agent> {
    let probe = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        println!("skipping the tmpfs variant: cannot create a mount namespace here");
        return None;
    }
    std::fs::create_dir_all(mount_at).unwrap();
    let options = format!(
        "size={size},mode=0700{}",
        if read_only { ",ro" } else { "" }
    );
    let script = format!(
        "mount -t tmpfs -o {options} scbe-fault {} && exec \"$0\" \"$@\"",
        mount_at.display()
    );
    let mut child = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
            AGENT,
        ])
        .args(["--log-format", "json"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = Lines::collect(child.stdout.take().unwrap());
    let stderr = Lines::collect(child.stderr.take().unwrap());
    Some(Agent {
        stdin: child.stdin.take(),
        child,
        stdout,
        stderr,
        stdout_held: false,
    })
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn audit_verdicts(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["verdict"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The quarantine copy cannot be made: the process is still stopped, the
/// original is left as it was (evidence is never destroyed without a copy),
/// and the failure is in the record and the audit log.
fn quarantine_cannot_copy(name: &str, qdir: &Path, agent: Option<Agent>, dir: &Path, expect: &str) {
    let Some(mut agent) = agent else { return };
    let payload = dir.join("payload.bin");
    let content = vec![0x5au8; 256 << 10];
    std::fs::write(&payload, &content).unwrap();
    std::fs::set_permissions(&payload, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sleeper = Sleeper::start();
    let record = agent.decide(&suspicious_event(
        sleeper.pid(),
        "sleep",
        payload.to_str().unwrap(),
    ));
    assert_eq!(record["kernel_action"], "QUARANTINE");
    let plan = enforcement(&record);
    assert_eq!(plan["applied"], true, "the process was stopped: {plan}");
    let failures = failures(&record);
    assert_eq!(failures.len(), 1, "{plan}");
    assert!(
        failures[0].starts_with("quarantine: ") && failures[0].contains(expect),
        "{name}: {failures:?}"
    );
    wait_until("the process to be stopped", || sleeper.state() == 'T');
    assert_eq!(
        mode_of(&payload),
        0o755,
        "{name}: original left usable without a copy"
    );
    assert_eq!(
        std::fs::read(&payload).unwrap(),
        content,
        "{name}: original intact"
    );
    // No partial copy left behind, seen from inside the agent's namespace.
    let inside =
        PathBuf::from(format!("/proc/{}/root", agent.pid())).join(qdir.strip_prefix("/").unwrap());
    if let Ok(entries) = std::fs::read_dir(&inside) {
        let names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().all(|n| !n.contains("partial")),
            "{name}: {names:?}"
        );
    }
    let (code, stdout, stderr) = agent.finish();
    assert_eq!(code, 3, "{name}: a failed quarantine is a failed plan");
    assert_eq!(stdout.len(), 1);
    let summary = summary(&stderr);
    assert_eq!(
        (
            summary["enforcement_applied"].as_u64(),
            summary["enforcement_failed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        audit_verdicts(&dir.join("audit.jsonl")),
        ["failed"],
        "{name}"
    );
    row(
        &format!("quarantine directory {name}"),
        "events 1 | record 1 | process stopped | original intact | audit 1 (failed)",
    );
}

fn quarantine_args<'a>(qdir: &'a str, audit: &'a str) -> Vec<&'a str> {
    vec![
        "--apply-enforcement",
        "--enforcement-backends",
        "signal",
        "--enforcement-cooldown",
        "0",
        "--quarantine-dir",
        qdir,
        "--audit-log",
        audit,
    ]
}

#[test]
fn quarantine_directory_that_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"a file where a directory should be").unwrap();
    let qdir = blocker.join("quarantine");
    let audit = dir.path().join("audit.jsonl");
    let agent = Agent::start(&quarantine_args(
        qdir.to_str().unwrap(),
        audit.to_str().unwrap(),
    ));
    quarantine_cannot_copy(
        "cannot be created (a file is in the way)",
        &qdir,
        Some(agent),
        dir.path(),
        "cannot create",
    );
}

#[test]
fn quarantine_directory_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let qdir = dir.path().join("quarantine");
    let audit = dir.path().join("audit.jsonl");
    let agent = agent_with_tmpfs(
        &qdir,
        "1m",
        true,
        &quarantine_args(qdir.to_str().unwrap(), audit.to_str().unwrap()),
    );
    quarantine_cannot_copy(
        "read-only",
        &qdir,
        agent,
        dir.path(),
        "Read-only file system",
    );
}

#[test]
fn quarantine_directory_full() {
    let dir = tempfile::tempdir().unwrap();
    let qdir = dir.path().join("quarantine");
    let audit = dir.path().join("audit.jsonl");
    let agent = agent_with_tmpfs(
        &qdir,
        "64k",
        false,
        &quarantine_args(qdir.to_str().unwrap(), audit.to_str().unwrap()),
    );
    quarantine_cannot_copy("full", &qdir, agent, dir.path(), "No space left on device");
}

// ------------------------------------------------------------- state file

/// A state file with `n` entries, as the agent saves them.
fn state_text(n: usize) -> String {
    let entries: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!([
                format!("linux-node:{}:p{}", 100_000 + i, i % 7),
                (i % 997) as f64 / 997.0
            ])
        })
        .collect();
    serde_json::json!({
        "format": "scbe-agent-state",
        "version": 1,
        "saved_at_unix_nano": 1,
        "entries": entries,
    })
    .to_string()
        + "\n"
}

fn state_entries(path: &Path) -> Option<usize> {
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    (value["format"] == "scbe-agent-state").then(|| value["entries"].as_array().map(Vec::len))?
}

#[test]
fn corrupt_or_truncated_state_is_refused_or_moved_aside_and_no_event_is_lost() {
    const EVENTS: u32 = 5;
    let valid = state_text(50);
    let len = valid.len();
    let mut variants: Vec<(String, Vec<u8>)> = [0, 1, 17, len / 3, len / 2, len - 3, len - 2]
        .iter()
        .map(|&cut| {
            (
                format!("truncated at byte {cut} of {len}"),
                valid.as_bytes()[..cut].to_vec(),
            )
        })
        .collect();
    variants.extend([
        (
            "binary garbage".to_owned(),
            vec![0xff, 0x00, 0x8b, 0x1f, 0x00],
        ),
        ("JSON null".to_owned(), b"null".to_vec()),
        (
            "wrong format".to_owned(),
            valid
                .replace("scbe-agent-state", "something-else")
                .into_bytes(),
        ),
        (
            "wrong version".to_owned(),
            valid
                .replace("\"version\":1", "\"version\":99")
                .into_bytes(),
        ),
        (
            "a load of 1.5".to_owned(),
            valid.replacen("0.0]", "1.5]", 1).into_bytes(),
        ),
        (
            "a negative load".to_owned(),
            valid.replacen("0.0]", "-0.25]", 1).into_bytes(),
        ),
        (
            "an empty process key".to_owned(),
            valid
                .replacen("\"linux-node:100000:p0\"", "\"\"", 1)
                .into_bytes(),
        ),
        (
            "a string load".to_owned(),
            valid.replacen("0.0]", "\"0.5\"]", 1).into_bytes(),
        ),
        ("a NUL byte inside".to_owned(), {
            let mut v = valid.clone().into_bytes();
            v[len / 2] = 0;
            v
        }),
    ]);
    for (what, bytes) in &variants {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        std::fs::write(&state, bytes).unwrap();

        // Refused: a clear error, nothing decided, the file left as it was.
        let output = Command::new(AGENT)
            .args(["--state-file", state.to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains("is corrupt") && stderr.contains("state.json"),
            "{what}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{what}");
        assert_eq!(
            &std::fs::read(&state).unwrap(),
            bytes,
            "{what}: the file is the operator's to inspect"
        );

        // Moved aside: every event decided, the corrupt file kept, a new state saved.
        let mut agent = Agent::start(&[
            "--state-file",
            state.to_str().unwrap(),
            "--state-move-corrupt",
        ]);
        for pid in 0..EVENTS {
            agent.send(&suspicious_event(8000 + pid, "curl", "/tmp/a"));
        }
        let (code, stdout, stderr) = agent.finish();
        assert_eq!(code, 0, "{what}");
        assert_eq!(stdout.len(), EVENTS as usize, "{what}: every event decided");
        assert_eq!(summary(&stderr)["events_seen"], EVENTS);
        let aside: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_str().unwrap().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{what}");
        assert_eq!(
            &std::fs::read(&aside[0]).unwrap(),
            bytes,
            "{what}: kept byte for byte"
        );
        assert_eq!(
            state_entries(&state),
            Some(EVENTS as usize),
            "{what}: fresh state saved"
        );
    }
    // The untouched file loads.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, &valid).unwrap();
    let agent = Agent::start(&["--state-file", state.to_str().unwrap()]);
    assert_eq!(agent.stderr.wait_for_log("state loaded")["entries"], 50);
    assert_eq!(agent.finish().0, 0);
    row(
        "state file corrupt or truncated at start",
        &format!("variants {} | refused with a message {0} | moved aside and decided {0} x {EVENTS} events", variants.len()),
    );
}

// ------------------------------------------------------------------ SIGTERM

#[test]
fn sigterm_mid_stream_on_stdin_decides_everything_read_and_saves_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut agent = Agent::start(&["--state-file", state.to_str().unwrap()]);
    let mut stdin = agent.stdin.take().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let written2 = Arc::clone(&written);
    // A producer that would go on for a long time; the pipe closes under it.
    let writer = std::thread::spawn(move || {
        for pid in 0..2_000_000u32 {
            let line = suspicious_event(10_000 + pid % 5000, "curl", "/tmp/a") + "\n";
            if stdin.write_all(line.as_bytes()).is_err() {
                return;
            }
            written2.fetch_add(1, Ordering::SeqCst);
        }
    });
    agent.stdout.wait_for_len(2000);
    agent.signal(Signal::SIGTERM);
    let status = agent.child.wait().unwrap();
    writer.join().unwrap();
    let stdout = agent.stdout.clone();
    let stderr = agent.stderr.clone();
    wait_until("the summary", || {
        stderr.json().iter().any(|v| v.get("events_seen").is_some())
    });
    assert_eq!(status.code(), Some(0));
    let records = stdout.snapshot();
    for line in &records {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("partial or broken record ({e}): {line}"));
        assert!(value.get("kernel_action").is_some());
    }
    let summary = summary(&stderr);
    let seen = summary["events_seen"].as_u64().unwrap();
    assert_eq!(
        records.len() as u64,
        seen,
        "every event taken in was decided and written"
    );
    assert!(seen <= written.load(Ordering::SeqCst));
    assert_eq!(summary["errors"], 0);
    let entries = state_entries(&state).expect("state saved at shutdown");
    assert_eq!(entries as u64, summary["state_entries"].as_u64().unwrap());
    assert_eq!(entries as u64, seen.min(5000));
    row(
        "SIGTERM mid-stream (stdin)",
        &format!(
            "events read {seen} | records {} (all whole lines) | state entries {entries}",
            records.len()
        ),
    );
}

#[test]
fn sigterm_mid_stream_over_http_decides_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let agent = Agent::start(&[
        "--listen",
        "127.0.0.1:0",
        "--state-file",
        state.to_str().unwrap(),
    ]);
    let url = format!("http://{}/", agent.logged_addr("intake endpoint listening"));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<JoinHandle<(u64, u64)>> = (0..4u32)
        .map(|c| {
            let (url, acknowledged, stop) =
                (url.clone(), Arc::clone(&acknowledged), Arc::clone(&stop));
            std::thread::spawn(move || {
                let client: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .into();
                let (mut refused, mut batch_no) = (0u64, 0u32);
                while !stop.load(Ordering::SeqCst) {
                    let body: String = (0..50)
                        .map(|i| {
                            suspicious_event(
                                20_000 + c * 100_000 + batch_no * 50 + i,
                                "curl",
                                "/tmp/a",
                            ) + "\n"
                        })
                        .collect();
                    batch_no += 1;
                    match client.post(&url).send(body.as_bytes()) {
                        Ok(mut response) if response.status() == 200 => {
                            let text = response.body_mut().read_to_string().unwrap();
                            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                            acknowledged.fetch_add(v["queued"].as_u64().unwrap(), Ordering::SeqCst);
                        }
                        // 503 while shutting down, or the listener gone: not accepted.
                        Ok(_) | Err(_) => refused += 1,
                    }
                }
                (u64::from(batch_no), refused)
            })
        })
        .collect();
    wait_until("a few thousand acknowledged events", || {
        acknowledged.load(Ordering::SeqCst) >= 2000
    });
    agent.signal(Signal::SIGTERM);
    let mut agent = agent;
    let status = agent.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut refused = 0;
    for client in clients {
        refused += client.join().unwrap().1;
    }
    assert_eq!(status.code(), Some(0));
    let stderr = agent.stderr.clone();
    wait_until("the summary", || {
        stderr.json().iter().any(|v| v.get("events_seen").is_some())
    });
    let summary = summary(&stderr);
    let acked = acknowledged.load(Ordering::SeqCst);
    let stdout = agent.stdout.clone();
    wait_until("every record", || stdout.len() as u64 >= acked);
    let records = stdout.snapshot();
    for line in &records {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("broken record ({e}): {line}"));
    }
    assert_eq!(
        summary["http_events_queued"], acked,
        "the agent queued what it acknowledged"
    );
    assert_eq!(
        records.len() as u64,
        acked,
        "every acknowledged event has its record"
    );
    assert_eq!(summary["events_seen"], acked);
    assert!(state_entries(&state).is_some(), "state saved");
    row(
        "SIGTERM mid-stream (HTTP, 4 clients)",
        &format!(
            "acknowledged {acked} | records {} | requests refused while stopping {refused}",
            records.len()
        ),
    );
}

// ------------------------------------------------------------------ SIGKILL

#[test]
fn sigkill_while_the_state_file_is_written_leaves_the_old_or_the_new_file() {
    const ENTRIES: usize = 400_000;
    const ROUNDS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let policy = dir.path().join("big-table.toml");
    std::fs::write(
        &policy,
        format!("[memory]\nmax_state_entries = {}\n", ENTRIES * 2),
    )
    .unwrap();
    std::fs::write(&state, state_text(ENTRIES)).unwrap();
    let mut caught = 0;
    for round in 0..ROUNDS {
        let before = std::fs::read(&state).unwrap();
        let agent = Agent::start(&[
            "--state-file",
            state.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ]);
        agent.stderr.wait_for_log("state loaded");
        let temp = dir.path().join(format!(".state.json.tmp-{}", agent.pid()));
        // SIGTERM starts the shutdown save; SIGKILL lands as soon as the
        // temporary file exists, i.e. while the new state is being written.
        agent.signal(Signal::SIGTERM);
        let deadline = Instant::now() + DEADLINE;
        let mut seen_temp = false;
        loop {
            if temp.exists() {
                seen_temp = true;
                break;
            }
            if agent_exited(agent.pid()) || Instant::now() > deadline {
                break;
            }
            // Poll interval between looks at the directory, not a synchronization sleep.
            std::thread::sleep(Duration::from_millis(1));
        }
        agent.signal(Signal::SIGKILL);
        let mut agent = agent;
        let status = agent.child.wait().unwrap();
        let killed = status.code().is_none();
        if seen_temp && killed {
            caught += 1;
        }
        // Never torn: the old file byte for byte, or a whole new one.
        let after = std::fs::read(&state).unwrap();
        let whole = state_entries(&state);
        assert!(
            after == before || whole == Some(ENTRIES),
            "round {round}: state file torn ({} bytes, entries {whole:?})",
            after.len()
        );
        assert_eq!(whole, Some(ENTRIES), "round {round}");
        // The next start loads it, leftovers or not.
        let agent = Agent::start(&[
            "--state-file",
            state.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ]);
        assert_eq!(
            agent.stderr.wait_for_log("state loaded")["entries"],
            ENTRIES
        );
        let (code, _, _) = agent.terminate();
        assert_eq!(code, 0);
    }
    assert!(
        caught >= 1,
        "SIGKILL never landed mid-write in {ROUNDS} rounds"
    );
    // Each killed save left its temporary file; the next start removed it.
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "stale temporary state files: {leftovers:?}"
    );
    row(
        "SIGKILL while the state file is written",
        &format!("rounds {ROUNDS} | killed mid-write {caught} | state whole after each ({ENTRIES} entries) | stale temp files 0"),
    );
}

fn agent_exited(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(true)
}
