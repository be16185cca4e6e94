//! Intake from real clients: Falco alerts posted over HTTP (and piped on
//! stdin) produce exactly the records `scbe-sim replay --emit-enforcement
//! --enforcement-cooldown 0` produces; bad requests get the right status; a
//! full queue answers 503 and counts every refused event.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use scbe_core::{Gate, MappingOptions, PlannerConfig};
use scbe_sim::input::open_corpus;
use scbe_sim::replay::{replay, ReplayConfig};

/// What `scbe-sim replay FILE --emit-enforcement --enforcement-cooldown 0`
/// writes to stdout, through the simulator's own replay pipeline.
fn replay_stdout(path: &Path) -> Vec<String> {
    let gate = Arc::new(Gate::reference());
    let policy = gate.policy().clone();
    let config = ReplayConfig {
        mapping: MappingOptions {
            host_default: "linux-node".to_owned(),
            real_network_fields: policy.real_network_fields,
        },
        gate,
        enforcement: Some(PlannerConfig {
            cooldown_seconds: 0.0,
            quarantine_dir: policy.enforcement.quarantine_dir.clone(),
            backend_names: policy.enforcement.backends.clone(),
            dry_run: true,
            capacity: policy.state_capacity(),
        }),
        alerts_only: false,
        max_events: None,
        threads: 1,
        digest: false,
        progress: false,
    };
    let corpus = open_corpus(path.to_str().unwrap()).unwrap();
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    replay(&config, corpus, &mut out, &mut errors).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

const PARITY_ARGS: [&str; 3] = ["--emit-enforcement", "--enforcement-cooldown", "0"];

fn listening_agent(extra: &[&str]) -> (Agent, String) {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let agent = Agent::start(&args);
    let addr = agent.logged_addr("intake endpoint listening");
    (agent, format!("http://{addr}"))
}

#[test]
fn real_falco_alerts_over_http_match_replay() {
    let Some(path) = shared_file("corpora/real/alerts/falco_alerts_real.jsonl") else {
        return;
    };
    let expected = replay_stdout(&path);
    let (agent, url) = listening_agent(&PARITY_ARGS);
    assert_eq!(http_get(&format!("{url}/healthz")).0, 200);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for line in &lines {
        // One alert per request, as Falco's http_output and Falcosidekick post.
        let (status, body) = http_post(&format!("{url}/"), line.as_bytes(), &[]);
        assert_eq!((status, body.trim()), (200, r#"{"queued":1}"#));
    }
    agent.stdout.wait_for_len(lines.len());
    let (code, stdout, stderr) = agent.terminate();
    assert_eq!(code, 0);
    assert_eq!(stdout.snapshot(), expected);
    assert_eq!(summary(&stderr)["http_events_queued"], lines.len());
}

#[test]
fn parity_corpus_in_http_batches_matches_replay() {
    let Some(path) = shared_file("parity/corpus.jsonl") else {
        return;
    };
    let expected = replay_stdout(&path);
    let (agent, url) = listening_agent(&PARITY_ARGS);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
    let mut rejected = Vec::new();
    for batch in lines.chunks(500) {
        let body = batch.join("\n");
        let (status, reply) = http_post(&format!("{url}/"), body.as_bytes(), &[]);
        if status == 200 {
            assert_eq!(reply.trim(), format!("{{\"queued\":{}}}", batch.len()));
            continue;
        }
        // A batch is all or nothing: a bad line names itself; resend one by one.
        assert_eq!(status, 400, "{reply}");
        assert!(reply.contains("line "), "{reply}");
        for line in batch {
            let (status, reply) = http_post(&format!("{url}/"), line.as_bytes(), &[]);
            match status {
                200 => {}
                400 => rejected.push(reply),
                other => panic!("unexpected status {other}: {reply}"),
            }
        }
    }
    // The lines the gate cannot parse are exactly the ones refused.
    assert_eq!(rejected.len(), 4, "{rejected:?}");
    agent.stdout.wait_for_len(expected.len());
    let (code, stdout, _) = agent.terminate();
    assert_eq!(code, 0);
    assert_eq!(stdout.snapshot(), expected);
}

#[test]
fn parity_corpus_on_stdin_matches_replay() {
    let Some(path) = shared_file("parity/corpus.jsonl") else {
        return;
    };
    let expected = replay_stdout(&path);
    let output = std::process::Command::new(AGENT)
        .args(PARITY_ARGS)
        .args(["--log-level", "warn"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "rejected lines give status 2"
    );
    let stdout: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(stdout, expected);
    let stderr = String::from_utf8(output.stderr).unwrap();
    let errors: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("error").is_some())
        .collect();
    assert_eq!(errors.len(), 4);
    assert!(errors.iter().all(|e| e["raw"].is_string()));
    let summary: serde_json::Value = serde_json::from_str(
        stderr
            .lines()
            .rev()
            .find(|l| l.contains("events_seen"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(summary["events_seen"], 20_000);
    assert_eq!(summary["errors"], 4);
    assert_eq!(summary["events_emitted"], 19_996);
}

#[test]
fn bad_requests_get_clear_statuses() {
    let (agent, url) = listening_agent_with_secret();
    let event = suspicious_event(4242, "curl", "");
    let secret = [("X-SCBE-Token", "letmein")];

    let (status, body) = http_post(&format!("{url}/"), event.as_bytes(), &[]);
    assert_eq!(status, 401, "{body}");
    let (status, _) = http_post(
        &format!("{url}/"),
        event.as_bytes(),
        &[("X-SCBE-Token", "wrong")],
    );
    assert_eq!(status, 401);

    let (status, body) = http_post(&format!("{url}/"), b"{\"rule\": oops}", &secret);
    assert_eq!(status, 400);
    assert!(body.contains("invalid JSON"), "{body}");
    let (status, body) = http_post(&format!("{url}/"), b"[1, 2]", &secret);
    assert_eq!(status, 400);
    assert!(body.contains("must be a JSON object"), "{body}");

    let big = format!("{{\"output\":\"{}\"}}", "x".repeat(5000));
    let (status, body) = http_post(&format!("{url}/"), big.as_bytes(), &secret);
    assert_eq!(status, 413, "{body}");

    assert_eq!(http_get(&format!("{url}/")).0, 405);
    assert_eq!(http_post(&format!("{url}/nope"), b"{}", &secret).0, 404);
    // Health needs no secret.
    let (status, body) = http_get(&format!("{url}/healthz"));
    assert_eq!(status, 200);
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    let (status, body) = http_post(&format!("{url}/"), event.as_bytes(), &secret);
    assert_eq!((status, body.trim()), (200, r#"{"queued":1}"#));
    agent.stdout.wait_for_len(1);
    let (code, stdout, stderr) = agent.terminate();
    assert_eq!(code, 0);
    assert_eq!(stdout.len(), 1, "only the accepted event was decided");
    assert!(!stderr.contains("letmein"));
}

fn listening_agent_with_secret() -> (Agent, String) {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "letmein\n").unwrap();
    let agent = Agent::start(&[
        "--listen",
        "127.0.0.1:0",
        "--listen-secret-file",
        secret_file.to_str().unwrap(),
        "--max-body-bytes",
        "4096",
    ]);
    let addr = agent.logged_addr("intake endpoint listening");
    (agent, format!("http://{addr}"))
}

#[test]
fn a_full_queue_answers_503_and_counts_every_refused_event() {
    let (agent, stdout_pipe) = Agent::start_holding_stdout(&[
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--queue-capacity",
        "2",
        "--queue-full-wait-ms",
        "20",
        "--include-kernel-event",
    ]);
    let url = format!("http://{}", agent.logged_addr("intake endpoint listening"));
    let metrics_url = format!(
        "http://{}/metrics",
        agent.logged_addr("metrics endpoint listening")
    );
    // Nobody reads the records: the pipe fills, the decision loop blocks,
    // the queue fills, and the agent must say so instead of losing events.
    let event = suspicious_event(4242, "curl", &"/tmp/padding".repeat(200));
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..5000 {
        let (status, body) = http_post(&format!("{url}/"), event.as_bytes(), &[]);
        match status {
            200 => accepted += 1,
            503 => {
                refused = Some(body);
                break;
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    let body = refused.expect("the queue filled up");
    assert!(body.contains("queue full"), "{body}");
    let (_, text) = http_get(&metrics_url);
    assert_eq!(metric(&text, "scbe_agent_queue_dropped_total"), Some(1.0));
    assert_eq!(metric(&text, "scbe_agent_queue_depth"), Some(2.0));
    assert!(text.contains("scbe_agent_http_rejected_total{reason=\"queue_full\"} 1"));
    agent
        .stderr
        .wait_for_log("intake queue full: events refused with 503 and dropped");

    // The consumer comes back: every accepted event is decided.
    let records = Lines::collect(stdout_pipe);
    records.wait_for_len(accepted);
    let (code, _, stderr) = agent.terminate();
    assert_eq!(code, 0);
    let summary = summary(&stderr);
    assert_eq!(summary["queue_dropped"], 1);
    assert_eq!(summary["events_seen"], accepted);
    assert_eq!(records.len(), accepted);
}

#[test]
fn stdin_errors_give_status_2_and_the_reference_error_record() {
    let mut agent = Agent::start(&[]);
    agent.send("{\"output_fields\": {\"proc.name\": \"ok\"}}");
    agent.send("   ");
    agent.send("not json");
    agent.send("[1]");
    let (code, stdout, stderr) = agent.finish();
    assert_eq!(code, 2);
    assert_eq!(stdout.len(), 1);
    let errors: Vec<serde_json::Value> = stderr
        .json()
        .into_iter()
        .filter(|v| v.get("error").is_some())
        .collect();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["raw"], "not json");
    assert_eq!(errors[1]["error"], "falco line must be a JSON object");
    let summary = summary(&stderr);
    assert_eq!(summary["events_seen"], 3, "blank lines are not counted");
    assert_eq!(summary["errors"], 2);
}

#[test]
fn max_events_alerts_only_and_pretty() {
    let mut agent = Agent::start(&[
        "--max-events",
        "2",
        "--alerts-only",
        "--pretty",
        "--include-kernel-event",
    ]);
    // One write: the agent may exit before a later write could land.
    agent.send(&format!(
        "{{\"output_fields\": {{\"proc.name\": \"calm\"}}}}\n{}\n{}",
        suspicious_event(4242, "curl", "/tmp/x"),
        suspicious_event(4243, "curl", "/tmp/x")
    ));
    let status = agent.child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "exits after --max-events without closing stdin"
    );
    wait_until("the summary", || agent.stderr.contains("events_seen"));
    let text = agent.stdout.snapshot().join("\n");
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(record["pid"], 4242, "the ALLOW event was not emitted");
    assert_eq!(record["kernel_event"]["process_name"], "curl");
    assert!(
        text.contains("\n  \"host\": \"linux-node\""),
        "pretty-printed: {text}"
    );
    let summary = summary(&agent.stderr);
    assert_eq!(summary["events_seen"], 2);
    assert_eq!(summary["events_emitted"], 1);
}
