//! The reporting and systemd backends against real endpoints: an HTTP server
//! on 127.0.0.1 as the SOC sink (up, failing, down, back), a Unix datagram
//! socket as the journal, and the real `systemctl`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;

/// One request the SOC server saw, and the status it answered.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    content_type: Option<String>,
    body: serde_json::Value,
    status: u16,
}

/// A minimal HTTP/1.1 server: reads one request per connection, answers
/// with the current status.
struct SocServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    status: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SocServer {
    fn start(port: u16, seen: Arc<Mutex<Vec<Seen>>>) -> SocServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the SOC server");
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(200));
        let stop = Arc::new(AtomicBool::new(false));
        let (status2, stop2, seen2) = (Arc::clone(&status), Arc::clone(&stop), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &status2, &seen2);
            }
        });
        SocServer {
            port,
            seen,
            status,
            stop,
            thread: Some(thread),
        }
    }

    /// Close the listening socket: connections are refused from now on.
    fn shut_down(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.thread.take().unwrap().join().unwrap();
    }

    fn delivered(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.status == 200)
            .cloned()
            .collect()
    }
}

fn serve(stream: TcpStream, status: &AtomicU16, seen: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    let header = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let code = status.load(Ordering::SeqCst);
    seen.lock().unwrap().push(Seen {
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        status: code,
    });
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()
}

const TOKEN: &str = "tok-SECRET-9f8e7d";

#[test]
fn soc_posts_with_the_token_spools_while_down_and_delivers_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = SocServer::start(0, Arc::clone(&seen));
    let port = server.port;
    let endpoint = format!("http://127.0.0.1:{port}/ingest");
    let mut agent = Agent::start_with(
        &[
            "--apply-enforcement",
            "--enforcement-backends",
            "soc",
            "--enforcement-cooldown",
            "0",
            "--soc-endpoint",
            &endpoint,
            "--soc-spool-dir",
            spool.to_str().unwrap(),
            "--soc-retry-max-seconds",
            "0.5",
        ],
        |c| {
            c.env("SCBE_SOC_BEARER_TOKEN", TOKEN);
        },
    );

    // Up: posted at once, with the bearer token.
    let record = agent.decide(&suspicious_event(4242, "curl", "/tmp/a"));
    let plan = enforcement(&record);
    assert_eq!(plan["applied"], true, "{plan}");
    assert_eq!(
        plan["backend_details"][0]["detail"],
        "posted to the soc sink"
    );
    let first = server.delivered();
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(first[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(first[0].body["event_type"], "scbe_linux_enforcement");
    assert_eq!(
        first[0].body["action"]["process_key"],
        "linux-node:4242:curl"
    );
    assert_eq!(first[0].body["action"], plan["action"]);

    // Failing with 503: reported as SPEC §9 says, and spooled.
    server.status.store(503, Ordering::SeqCst);
    let record = agent.decide(&suspicious_event(4243, "curl", "/tmp/a"));
    assert_eq!(
        failures(&record),
        ["soc sink returned HTTP 503; action event spooled for retry"]
    );
    server.status.store(200, Ordering::SeqCst);
    wait_until("the spooled event to arrive", || {
        server.delivered().len() == 2
    });

    // Down (connection refused): spooled in order.
    server.shut_down();
    let record = agent.decide(&suspicious_event(4244, "curl", "/tmp/a"));
    assert!(
        failures(&record)[0].starts_with("soc sink request failed:"),
        "{record}"
    );
    let record = agent.decide(&suspicious_event(4245, "curl", "/tmp/a"));
    assert!(
        failures(&record)[0].starts_with("soc sink unavailable"),
        "{record}"
    );
    let spooled = || {
        std::fs::read_dir(&spool)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_str()
                    .unwrap()
                    .ends_with(".json")
            })
            .count()
    };
    assert_eq!(spooled(), 2);

    // Back on the same port: the spool drains, oldest first.
    let server = SocServer::start(port, Arc::clone(&seen));
    wait_until("the spool to drain", || server.delivered().len() == 4);
    wait_until("spool files to be removed", || spooled() == 0);
    let keys: Vec<String> = server
        .delivered()
        .iter()
        .map(|s| s.body["action"]["process_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys,
        [
            "linux-node:4242:curl",
            "linux-node:4243:curl",
            "linux-node:4244:curl",
            "linux-node:4245:curl"
        ]
    );
    assert!(server
        .delivered()
        .iter()
        .all(|s| s.authorization.as_deref() == Some(&*format!("Bearer {TOKEN}"))));

    let (code, stdout, stderr) = agent.terminate();
    assert_eq!(code, 3, "undelivered-at-the-time actions are failures");
    assert_eq!(summary(&stderr)["soc_spool_pending"], 0);
    // The token never appears in records, logs or errors.
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    server.shut_down();
}

#[test]
fn soc_without_an_endpoint_is_not_applied() {
    let mut agent = Agent::start(&["--apply-enforcement", "--enforcement-backends", "soc"]);
    let record = agent.decide(&suspicious_event(4242, "curl", ""));
    let detail = &enforcement(&record)["backend_details"][0];
    assert_eq!(detail["applied"], false);
    assert_eq!(detail["detail"], "soc endpoint not configured");
    assert_eq!(agent.finish().0, 0);
}

#[test]
fn journald_entries_use_the_native_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sock");
    let journal = UnixDatagram::bind(&path).unwrap();
    journal.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut agent = Agent::start(&[
        "--apply-enforcement",
        "--enforcement-backends",
        "journald",
        "--journald-socket",
        path.to_str().unwrap(),
    ]);
    // A process name with a newline forces the binary field form.
    let record = agent.decide(&suspicious_event(4242, "evil\nname", "/tmp/x"));
    let detail = &enforcement(&record)["backend_details"][0];
    assert_eq!(detail["applied"], true, "{record}");

    let mut buf = vec![0u8; 1 << 20];
    let n = journal.recv(&mut buf).unwrap();
    let fields = scbe_agent::enforce::journald::parse_entry(&buf[..n]).unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
            .unwrap_or_else(|| panic!("no {name} field"))
    };
    assert_eq!(field("PRIORITY"), "4");
    assert_eq!(field("SYSLOG_IDENTIFIER"), "scbe-linux-enforcement");
    assert_eq!(field("SCBE_KERNEL_ACTION"), "QUARANTINE");
    assert_eq!(field("SCBE_PID"), "4242");
    assert_eq!(field("SCBE_PROCESS_KEY"), "linux-node:4242:evil\nname");
    let message: serde_json::Value = serde_json::from_str(&field("MESSAGE")).unwrap();
    assert_eq!(message["event"], "scbe_linux_enforcement");
    assert_eq!(message["process_key"], "linux-node:4242:evil\nname");
    assert_eq!(message["metadata"]["decision"], "QUARANTINE");
    assert_eq!(agent.finish().0, 0);
}

#[test]
fn journald_absent_falls_back_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-journal.sock");
    let mut agent = Agent::start(&[
        "--apply-enforcement",
        "--enforcement-backends",
        "journald",
        "--journald-socket",
        path.to_str().unwrap(),
    ]);
    let record = agent.decide(&suspicious_event(4242, "curl", ""));
    let detail = enforcement(&record)["backend_details"][0]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("unavailable") && detail.contains("agent log"),
        "{detail}"
    );
    let fields = agent
        .stderr
        .wait_for_log("journald unavailable; enforcement entry logged here");
    assert_eq!(fields["syslog_identifier"], "scbe-linux-enforcement");
    assert_eq!(agent.finish().0, 0);
}

#[test]
fn systemd_runs_systemctl_as_an_argv() {
    let dir = tempfile::tempdir().unwrap();
    // systemd is not PID 1 here, so a stand-in records the argv it was given.
    let log = dir.path().join("argv");
    let shim = dir.path().join("systemctl");
    std::fs::write(
        &shim,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n", log.display()),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&shim).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let sleeper = Sleeper::start();
    let mut agent = Agent::start(&[
        "--apply-enforcement",
        "--enforcement-backends",
        "systemd",
        "--systemctl",
        shim.to_str().unwrap(),
    ]);
    let record = agent.decide(&suspicious_event(sleeper.pid(), "sleep", ""));
    assert_eq!(enforcement(&record)["applied"], true, "{record}");
    let argv = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        argv,
        format!("kill\n--signal=SIGSTOP\n{}.scope\n", sleeper.pid())
    );
    assert_eq!(agent.finish().0, 0);
}

#[test]
fn systemd_failure_carries_systemctl_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let shim = dir.path().join("systemctl");
    std::fs::write(
        &shim,
        "#!/bin/sh\necho 'Failed to kill unit: no such unit' >&2\nexit 5\n",
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let sleeper = Sleeper::start();
    let mut agent = Agent::start(&[
        "--apply-enforcement",
        "--enforcement-backends",
        "systemd",
        "--systemctl",
        shim.to_str().unwrap(),
    ]);
    let record = agent.decide(&suspicious_event(sleeper.pid(), "sleep", ""));
    let expected = format!(
        "{} kill --signal=SIGSTOP {}.scope -> exit 5: Failed to kill unit: no such unit",
        shim.display(),
        sleeper.pid()
    );
    assert_eq!(failures(&record), [expected]);
    assert_eq!(agent.finish().0, 3);
}

#[test]
fn systemd_with_the_real_systemctl_reports_its_failure() {
    // No scope unit is named after a sleep child's pid (and here systemd is
    // not even running), so the real systemctl fails and says why.
    let sleeper = Sleeper::start();
    let mut agent = Agent::start(&["--apply-enforcement", "--enforcement-backends", "systemd"]);
    let record = agent.decide(&suspicious_event(sleeper.pid(), "sleep", ""));
    let failures = failures(&record);
    let prefix = format!("systemctl kill --signal=SIGSTOP {}.scope", sleeper.pid());
    assert!(
        failures.len() == 1 && failures[0].starts_with(&prefix),
        "{failures:?}"
    );
    assert_eq!(sleeper.state(), 'S');
    assert_eq!(agent.finish().0, 3);
}
