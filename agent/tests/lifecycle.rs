//! Operating the agent: signals, the state file, the circuit breaker,
//! following a rotated file, the metrics endpoint.

mod common;

use std::io::Write;

use common::*;
use nix::sys::signal::Signal;

#[test]
fn sigterm_saves_state_and_the_next_start_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let event = suspicious_event(4242, "curl", "/tmp/x");
    let state_arg = ["--state-file", state.to_str().unwrap()];

    let mut agent = Agent::start(&state_arg);
    let first = agent.decide(&event);
    let second = agent.decide(&event);
    assert_eq!(second["antibody_load_prev"], first["antibody_load_now"]);
    // SIGTERM with stdin still open: the agent stops by itself.
    let (code, _, stderr) = agent.terminate();
    assert_eq!(code, 0);
    assert_eq!(summary(&stderr)["state_entries"], 1);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["entries"][0][0], "linux-node:4242:curl");

    // A new process remembers the suspicious one.
    let mut agent = Agent::start(&state_arg);
    let fields = agent.stderr.wait_for_log("state loaded");
    assert_eq!(fields["entries"], 1);
    let third = agent.decide(&event);
    assert_eq!(third["antibody_load_prev"], second["antibody_load_now"]);
    assert_eq!(agent.terminate().0, 0);
}

#[test]
fn corrupt_state_is_an_error_unless_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(
        &state,
        b"{\"format\": \"scbe-agent-state\", \"version\": 1, \"entr",
    )
    .unwrap();
    let output = std::process::Command::new(AGENT)
        .args(["--state-file", state.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is corrupt") && stderr.contains("--state-move-corrupt"),
        "{stderr}"
    );
    assert!(state.exists(), "the file is left for the operator");

    let mut agent = Agent::start(&[
        "--state-file",
        state.to_str().unwrap(),
        "--state-move-corrupt",
    ]);
    agent
        .stderr
        .wait_for_log("corrupt state file moved aside; starting empty");
    let record = agent.decide(&suspicious_event(4242, "curl", ""));
    assert_eq!(record["antibody_load_prev"], 0.0);
    assert_eq!(agent.finish().0, 0);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("state.json.corrupt-")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "state.json"),
        "a fresh state was saved"
    );
}

#[test]
fn sighup_reloads_the_policy_and_keeps_the_old_one_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[turnstile]\ndomain = \"browser\"\n").unwrap();
    let mut agent = Agent::start(&[
        "--policy",
        policy.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics_url = format!(
        "http://{}/metrics",
        agent.logged_addr("metrics endpoint listening")
    );
    let reloads = |result: &str| {
        let text = http_get(&metrics_url).1;
        metric(
            &text,
            &format!("scbe_agent_policy_reloads_total{{result=\"{result}\"}}"),
        )
        .unwrap()
    };
    let event = suspicious_event(4242, "curl", "");
    assert_eq!(agent.decide(&event)["kernel_action"], "THROTTLE");

    // An invalid file: rejected, the browser policy stays.
    std::fs::write(&policy, "[turnstile]\ndomain = 42\n").unwrap();
    agent.signal(Signal::SIGHUP);
    wait_until("the reload to be rejected", || reloads("failed") == 1.0);
    assert_eq!(agent.decide(&event)["kernel_action"], "THROTTLE");
    let fields = agent
        .stderr
        .wait_for_log("policy reload rejected; keeping the running policy");
    assert!(
        fields["error"].as_str().unwrap().contains("policy"),
        "{fields}"
    );

    // A valid file: swapped in, per-process state kept.
    std::fs::write(&policy, "[turnstile]\ndomain = \"default\"\n").unwrap();
    agent.signal(Signal::SIGHUP);
    wait_until("the reload", || reloads("ok") == 1.0);
    let record = agent.decide(&event);
    assert_eq!(record["kernel_action"], "KILL");
    assert_ne!(record["antibody_load_prev"], 0.0, "state survives a reload");
    assert_eq!(agent.finish().0, 0);
}

#[test]
fn the_breaker_disarms_after_n_actions_until_sigusr1() {
    let sleepers: Vec<Sleeper> = (0..4).map(|_| Sleeper::start()).collect();
    let mut agent = Agent::start(&[
        "--apply-enforcement",
        "--enforcement-backends",
        "signal",
        "--breaker-max-actions",
        "2",
        "--breaker-window-seconds",
        "3600",
        // The same process is acted on again after the re-arm.
        "--enforcement-cooldown",
        "0",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics_url = format!(
        "http://{}/metrics",
        agent.logged_addr("metrics endpoint listening")
    );
    for sleeper in &sleepers[..2] {
        let record = agent.decide(&suspicious_event(sleeper.pid(), "sleep", ""));
        assert_eq!(enforcement(&record)["applied"], true, "{record}");
        wait_until("the child to stop", || sleeper.state() == 'T');
    }
    // The third containment action in the window trips the breaker.
    let record = agent.decide(&suspicious_event(sleepers[2].pid(), "sleep", ""));
    let plan = enforcement(&record);
    assert_eq!(plan["applied"], false);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["backend_details"][0]["backend"], "breaker");
    assert!(plan["backend_details"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("circuit breaker open"));
    assert_eq!(sleepers[2].state(), 'S');
    agent.stderr.wait_for_log(
        "CIRCUIT BREAKER OPEN: more than 2 containment actions in 3600 s; enforcement disarmed to dry-run until re-armed (SIGUSR1 or restart)",
    );
    let text = http_get(&metrics_url).1;
    assert_eq!(metric(&text, "scbe_agent_breaker_open"), Some(1.0));
    assert_eq!(metric(&text, "scbe_agent_breaker_trips_total"), Some(1.0));

    // Still open for the next one.
    let record = agent.decide(&suspicious_event(sleepers[3].pid(), "sleep", ""));
    assert_eq!(enforcement(&record)["dry_run"], true);
    assert_eq!(sleepers[3].state(), 'S');

    // The operator re-arms.
    agent.signal(Signal::SIGUSR1);
    wait_until("the breaker to close", || {
        metric(&http_get(&metrics_url).1, "scbe_agent_breaker_open") == Some(0.0)
    });
    let record = agent.decide(&suspicious_event(sleepers[3].pid(), "sleep", ""));
    assert_eq!(enforcement(&record)["applied"], true, "{record}");
    wait_until("the child to stop", || sleepers[3].state() == 'T');
    let (code, _, stderr) = agent.finish();
    assert_eq!(code, 0, "the breaker is not a backend failure");
    assert_eq!(summary(&stderr)["enforcement_breaker_suppressed"], 2);
}

#[test]
fn follow_reads_across_rename_and_truncate_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.json");
    let mut file = std::fs::File::create(&log).unwrap();
    writeln!(file, "{}", suspicious_event(1, "a", "")).unwrap();
    let agent = Agent::start(&[
        "--follow",
        log.to_str().unwrap(),
        "--follow-from-start",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let metrics_url = format!(
        "http://{}/metrics",
        agent.logged_addr("metrics endpoint listening")
    );
    agent.stdout.wait_for_len(1);

    // A line written in two parts is one event.
    let second = suspicious_event(2, "b", "");
    let (head, tail) = second.split_at(10);
    write!(file, "{head}").unwrap();
    file.flush().unwrap();
    writeln!(file, "{tail}").unwrap();
    agent.stdout.wait_for_len(2);

    // logrotate's default: rename, then a new file at the path.
    writeln!(file, "{}", suspicious_event(3, "c", "")).unwrap();
    std::fs::rename(&log, dir.path().join("events.json.1")).unwrap();
    writeln!(file, "{}", suspicious_event(4, "d", "")).unwrap();
    let mut file = std::fs::File::create(&log).unwrap();
    writeln!(file, "{}", suspicious_event(5, "e", "")).unwrap();
    agent.stdout.wait_for_len(5);

    // copytruncate: the same file shrinks to zero and grows again.
    wait_until("the rotation to be seen", || {
        metric(
            &http_get(&metrics_url).1,
            "scbe_agent_follow_rotations_total",
        ) == Some(1.0)
    });
    file.set_len(0).unwrap();
    wait_until("the truncation to be seen", || {
        metric(
            &http_get(&metrics_url).1,
            "scbe_agent_follow_rotations_total",
        ) == Some(2.0)
    });
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(file, "{}", suspicious_event(6, "f", "")).unwrap();
    agent.stdout.wait_for_len(6);

    let (code, stdout, _) = agent.terminate();
    assert_eq!(code, 0);
    let pids: Vec<i64> = stdout
        .json()
        .iter()
        .map(|r| r["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(pids, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn follow_starts_at_the_end_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.json");
    std::fs::write(&log, format!("{}\n", suspicious_event(1, "old", ""))).unwrap();
    let agent = Agent::start(&["--follow", log.to_str().unwrap()]);
    let fields = agent.stderr.wait_for_log("follow: file opened");
    assert!(fields["offset"].as_u64().unwrap() > 0);
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(file, "{}", suspicious_event(2, "new", "")).unwrap();
    agent.stdout.wait_for_len(1);
    let (_, stdout, _) = agent.terminate();
    assert_eq!(stdout.json()[0]["pid"], 2, "old alerts are not re-decided");
}

#[test]
fn metrics_expose_decisions_and_latency() {
    let mut agent = Agent::start(&["--metrics", "127.0.0.1:0", "--emit-enforcement"]);
    let url = format!(
        "http://{}/metrics",
        agent.logged_addr("metrics endpoint listening")
    );
    agent.decide(&suspicious_event(4242, "curl", ""));
    agent.decide("{\"output_fields\": {\"proc.name\": \"calm\"}}");
    let (status, text) = http_get(&url);
    assert_eq!(status, 200);
    assert_eq!(metric(&text, "scbe_agent_events_seen_total"), Some(2.0));
    assert!(text.contains("scbe_agent_events_total{kernel_action=\"QUARANTINE\"} 1\n"));
    assert!(text.contains("scbe_agent_events_total{kernel_action=\"ALLOW\"} 1\n"));
    assert!(text.contains("scbe_agent_cell_state_total{cell_state=\"PRIMED\"} 1\n"));
    assert!(text.contains("scbe_agent_enforcement_total{outcome=\"emitted\"} 1\n"));
    assert_eq!(
        metric(&text, "scbe_agent_decision_latency_seconds_count"),
        Some(2.0)
    );
    assert!(text.contains("scbe_agent_decision_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_eq!(metric(&text, "scbe_agent_queue_depth"), Some(0.0));
    assert_eq!(agent.finish().0, 0);
}
