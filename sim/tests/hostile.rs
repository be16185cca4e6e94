//! Hostile input through the `scbe-sim replay` binary: every file of
//! `corpora/hostile/` completes with the right exit status and a summary that
//! accounts for every line; a 100 MB line on stdin is one error and the
//! process never holds it (peak RSS far below the line's size).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SIM: &str = env!("CARGO_BIN_EXE_scbe-sim");

fn hostile_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/hostile");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 8);
    files
}

/// The JSON summary: the last stderr line.
fn summary(stderr: &str) -> serde_json::Value {
    let last = stderr.lines().last().expect("a summary line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {last}"))
}

fn count(summary: &serde_json::Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("summary has no {key}: {summary}"))
}

/// `lines_read = blank_lines + events_seen`, `events_seen = decided + errors`.
fn check_accounting(summary: &serde_json::Value, what: &str) {
    assert_eq!(
        count(summary, "lines_read"),
        count(summary, "blank_lines") + count(summary, "events_seen"),
        "{what}: {summary}"
    );
    assert_eq!(
        count(summary, "events_seen"),
        count(summary, "decided") + count(summary, "errors"),
        "{what}: {summary}"
    );
}

#[test]
fn every_hostile_file_completes_with_status_2_when_a_line_failed() {
    for path in hostile_files() {
        let name = path.file_name().unwrap().to_str().unwrap();
        let output = Command::new(SIM)
            .args([
                "replay",
                path.to_str().unwrap(),
                "--emit-enforcement",
                "--threads",
                "2",
                "-q",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).expect("records are UTF-8");
        let stderr = String::from_utf8(output.stderr).expect("errors are UTF-8");
        let summary = summary(&stderr);
        check_accounting(&summary, name);
        let lines = std::fs::read(&path)
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        assert_eq!(count(&summary, "lines_read"), lines, "{name}");
        assert_eq!(
            stdout.lines().count() as u64,
            count(&summary, "decided"),
            "{name}"
        );
        assert!(
            stdout.is_empty() || stdout.ends_with('\n'),
            "{name}: partial last record"
        );
        // Every stderr line before the summary is one error record.
        let errors = stderr.lines().count() as u64 - 1;
        assert_eq!(errors, count(&summary, "errors"), "{name}");
        let expected = if name.starts_with("reject-") {
            assert_eq!(count(&summary, "decided"), 0, "{name}");
            2
        } else {
            assert_eq!(errors, 0, "{name}: {stderr}");
            0
        };
        assert_eq!(output.status.code(), Some(expected), "{name}");
    }
}

/// Peak resident set of a live process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

const HUGE_BYTES: u64 = 100 << 20;

/// Far below the line (100 MiB): the line cap, two batches, the tables.
const PEAK_RSS_KIB_MAX: u64 = 64 << 10;

#[test]
fn a_100_mb_line_on_stdin_is_one_error_and_is_never_held() {
    let mut child = Command::new(SIM)
        .args(["replay", "-", "--threads", "2", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut text = String::new();
        BufReader::new(stdout).read_to_string(&mut text).unwrap();
        text
    });
    let err_thread = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map(Result::unwrap)
            .collect::<Vec<String>>()
    });

    let head = br#"{"output_fields": {"proc.cmdline": ""#;
    let tail = b"\"}}\n";
    let block = [b'x'; 64 << 10];
    let mut fill = HUGE_BYTES - head.len() as u64 - (tail.len() as u64 - 1);
    stdin.write_all(head).unwrap();
    while fill > 0 {
        let n = fill.min(block.len() as u64) as usize;
        stdin.write_all(&block[..n]).unwrap();
        fill -= n as u64;
    }
    stdin.write_all(tail).unwrap();
    stdin
        .write_all(b"{\"output_fields\": {\"proc.name\": \"after\", \"proc.pid\": 7}}\n")
        .unwrap();
    stdin.flush().unwrap();
    // All but a pipe buffer of the line has been read; stdin is still open,
    // so the process is alive to be measured.
    let peak = peak_rss_kib(pid);
    drop(stdin);
    let status = child.wait().unwrap();
    let stdout = out_thread.join().unwrap();
    let stderr = err_thread.join().unwrap();

    assert_eq!(status.code(), Some(2));
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.contains("\"process_name\":\"after\""), "{stdout}");
    assert_eq!(
        stderr.len(),
        2,
        "one error line and the summary: {stderr:?}"
    );
    let error: serde_json::Value = serde_json::from_str(&stderr[0]).unwrap();
    assert_eq!(
        error["error"],
        format!("line of {HUGE_BYTES} bytes exceeds the limit of 1048576 bytes")
    );
    assert!(error["raw"].as_str().unwrap().chars().count() <= 2000);
    assert_eq!(error["line"], 1);
    let summary = summary(&stderr.join("\n"));
    check_accounting(&summary, "huge");
    assert_eq!(
        (count(&summary, "lines_read"), count(&summary, "errors")),
        (2, 1)
    );
    eprintln!(
        "scbe-sim replay with a 100 MB line: peak RSS {} MiB",
        peak / 1024
    );
    assert!(
        peak < PEAK_RSS_KIB_MAX,
        "peak RSS {peak} KiB with a 100 MB line"
    );
}
