//! The `scbe-sim replay` command line as scripts use it: flags, streams,
//! exit codes, and live stdin.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::{example, sim};

fn summary(stderr: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stderr);
    let last = text.lines().last().expect("a summary line");
    serde_json::from_str(last).expect("the summary is JSON")
}

#[test]
fn rejected_lines_go_to_stderr_with_line_numbers_and_exit_2() {
    let out = sim()
        .args(["replay", "-q"])
        .arg(example("malformed-lines.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with("{\"line\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<u64> = errors.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![4, 5, 6, 12, 13]);
    for e in &errors {
        let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["line", "error", "raw"]);
    }
    let s = summary(&out.stderr);
    assert_eq!(s["errors"], 5);
    assert_eq!(s["events_seen"], 12);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 7);
}

#[test]
fn clean_input_exits_0_and_alerts_only_filters_allow() {
    let all = sim()
        .args(["replay", "-q"])
        .arg(example("attack-chain.jsonl"))
        .output()
        .unwrap();
    assert_eq!(all.status.code(), Some(0));
    let alerts = sim()
        .args(["replay", "-q", "--alerts-only"])
        .arg(example("attack-chain.jsonl"))
        .output()
        .unwrap();
    let n_all = String::from_utf8_lossy(&all.stdout).lines().count();
    let alert_lines: Vec<String> = String::from_utf8_lossy(&alerts.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(alert_lines.len() < n_all);
    assert!(alert_lines
        .iter()
        .all(|l| !l.contains("\"kernel_action\":\"ALLOW\"")));
    assert_eq!(
        summary(&alerts.stderr)["events_emitted"],
        alert_lines.len() as u64
    );
}

#[test]
fn output_file_digest_and_threads_agree() {
    let dir = std::env::temp_dir().join(format!("scbe-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut digests = Vec::new();
    for threads in ["1", "3"] {
        let path = dir.join(format!("out-{threads}.jsonl"));
        let out = sim()
            .args([
                "replay",
                "-q",
                "--digest",
                "--emit-enforcement",
                "--threads",
                threads,
                "--output",
            ])
            .arg(&path)
            .arg(example("clean-workload.jsonl"))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(out.stdout.is_empty(), "records go to --output");
        digests.push(
            summary(&out.stderr)["output_sha256"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 10);
    }
    assert_eq!(digests[0], digests[1]);
    // `--output -` is stdout, as for `synth`: no file named `-`.
    let out = sim()
        .current_dir(&dir)
        .args(["replay", "-q", "--digest", "--output", "-"])
        .arg(example("clean-workload.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 10);
    assert!(!dir.join("-").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn max_events_stops_early() {
    let out = sim()
        .args(["replay", "-q", "--max-events", "3"])
        .arg(example("clean-workload.jsonl"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert_eq!(summary(&out.stderr)["events_seen"], 3);
}

#[test]
fn live_stdin_gets_each_decision_without_waiting_for_more_input() {
    let mut child = sim()
        .args(["replay", "-", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    for name in ["first", "second"] {
        writeln!(stdin, "{{\"output_fields\":{{\"proc.name\":\"{name}\"}}}}").unwrap();
        stdin.flush().unwrap();
        // stdin stays open: the record must come anyway.
        let record = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a decision while stdin is open");
        assert!(
            record.contains(&format!("\"process_name\":\"{name}\"")),
            "{record}"
        );
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn bad_policy_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("scbe-sim-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("bad.toml");
    std::fs::write(&policy, "[decision]\n\ndeny = 1.7\n").unwrap();
    let out = sim()
        .args(["replay", "--policy"])
        .arg(&policy)
        .arg(example("clean-workload.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("decision.deny = 1.7: threshold is outside [0, 1] at line 3"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A generated corpus of `events` lines in a fresh directory (removed by the
/// caller).
fn synth_corpus(name: &str, seed: &str, events: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("scbe-sim-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = dir.join("corpus.jsonl");
    let synth = sim()
        .args(["synth", "--seed", seed, "--events", events, "--output"])
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(synth.status.success());
    (dir, corpus)
}

/// The child's exit status, failing with `what` if it has not ended within
/// 30 seconds.
fn wait_for_exit(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        // Poll interval of the deadline loop above.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `--max-events` across many batches, with the workers: every thread count
/// stops at the same line with the same records.
#[test]
fn max_events_across_batches_is_the_same_at_any_thread_count() {
    let (dir, corpus) = synth_corpus("max", "5", "9000");
    let mut outputs = Vec::new();
    for threads in ["1", "2", "7"] {
        let out = sim()
            .args(["replay", "-q", "--max-events", "4321", "--threads", threads])
            .arg(&corpus)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            summary(&out.stderr)["events_seen"],
            4321,
            "{threads} threads"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4321);
        outputs.push(out.stdout);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A reader that goes away (`| head`) ends a many-threaded run promptly and
/// quietly (status 0, as for the one-thread run), instead of hanging the
/// workers.
#[test]
fn closed_output_ends_a_threaded_run() {
    let (dir, corpus) = synth_corpus("pipe", "6", "20000");
    let mut child = sim()
        .args(["replay", "-q", "--threads", "3"])
        .arg(&corpus)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("{\"host\""));
    drop(stdout);
    let status = wait_for_exit(&mut child, "the run did not end after its reader left");
    assert_eq!(status.code(), Some(0), "a closed pipe is not an error");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--max-events` on a live stdin that stays open: the run ends once the
/// events are decided, without waiting for more input.
#[test]
fn max_events_on_an_open_live_stdin_ends_the_run() {
    let mut child = sim()
        .args(["replay", "-", "-q", "--max-events", "2", "--threads", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for name in ["first", "second"] {
        writeln!(stdin, "{{\"output_fields\":{{\"proc.name\":\"{name}\"}}}}").unwrap();
    }
    stdin.flush().unwrap();
    let status = wait_for_exit(&mut child, "the run waited for input after its last event");
    assert!(status.success());
    drop(stdin);
}

/// A `.gz` cut short (a log copied while it was written): every whole line
/// before the cut is decided and written, at any thread count, and the run
/// then fails saying where the input broke.
#[test]
fn a_truncated_gz_decides_every_whole_line_before_the_cut() {
    let (dir, corpus) = synth_corpus("truncated-gz", "5", "3000");
    let text = std::fs::read(&corpus).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&text).unwrap();
    let gz = gz.finish().unwrap();
    let cut = dir.join("cut.jsonl.gz");
    std::fs::write(&cut, &gz[..gz.len() * 2 / 3]).unwrap();
    // What the decompressor yields before the cut: its whole lines.
    let mut decoded = Vec::new();
    let _ = std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&gz[..gz.len() * 2 / 3]),
        &mut decoded,
    );
    let whole = decoded.iter().filter(|&&b| b == b'\n').count();
    assert!(whole > 1000 && whole < 3000, "{whole}");

    let mut outputs = Vec::new();
    for threads in ["1", "2", "7"] {
        let out = sim()
            .args(["replay", "-q", "--threads", threads, "--output", "-"])
            .arg(&cut)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cannot read input") && stderr.contains(&format!("after line {whole}")),
            "{stderr}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), whole);
        outputs.push(out.stdout);
    }
    assert!(outputs.windows(2).all(|pair| pair[0] == pair[1]));
    std::fs::remove_dir_all(&dir).unwrap();
}
