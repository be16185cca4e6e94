//! The agent's HTTP/1.1 server and intake handler, end to end over a real
//! loopback connection: fuzz bytes are one client's whole conversation
//! (request heads, chunked or sized bodies, pipelining, `Expect`), then the
//! client half-closes.
//!
//! Invariants: no panic in any server thread (libFuzzer aborts on one); every
//! answer is a well-formed HTTP/1.1 response with a known status and a
//! `Content-Length` that matches its body; the events queued are exactly the
//! sum of the `{"queued":N}` answers (nothing accepted silently, nothing
//! acknowledged and lost); and every queued event is decided by the gate,
//! never an error line.
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use scbe_agent::control::Stop;
use scbe_agent::httpd::Server;
use scbe_agent::intake::http::{HttpConfig, Intake};
use scbe_agent::metrics::Metrics;
use scbe_agent::queue::{Producer, Queue};
use scbe_core::{Bridge, Gate, LineOutcome, MappingOptions, Timestamp};

/// Small enough that the fuzzer reaches the 413 paths.
const BODY_BYTES_MAX: usize = 64 << 10;

struct Fixture {
    addr: SocketAddr,
    queue: Arc<Queue>,
    gate: Arc<Gate>,
    /// Keeps the queue open (the intake's own producer is inside the server).
    _producer: Producer,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let queue = Queue::new(1 << 20);
        let metrics = Arc::new(Metrics::default());
        let intake = Intake::new(
            HttpConfig {
                shared_secret: None,
                queue_full_wait: Duration::ZERO,
            },
            queue.producer(),
            metrics,
        );
        let server = Server::bind("127.0.0.1:0".parse().unwrap()).expect("bind loopback");
        let addr = server.local_addr();
        let serving = server
            .serve("fuzz", 2, BODY_BYTES_MAX, Arc::new(intake), Stop::new())
            .expect("serve");
        // Serves for the life of the process.
        std::mem::forget(serving);
        Fixture {
            addr,
            _producer: queue.producer(),
            queue,
            gate: Arc::new(Gate::reference()),
        }
    })
}

/// Parse the server's answers; returns the total of `{"queued":N}`.
fn check_responses(mut data: &[u8]) -> usize {
    let mut queued = 0;
    while !data.is_empty() {
        let end = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "response head without an end: {:?}",
                    String::from_utf8_lossy(data)
                )
            });
        let head = std::str::from_utf8(&data[..end]).expect("response head is ASCII");
        data = &data[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let reason = parts.next().unwrap_or("");
        assert!(
            reason != "Unknown" && !reason.is_empty(),
            "status {status} has no reason phrase"
        );
        if status == 100 {
            continue;
        }
        let length: usize = lines
            .filter_map(|l| l.split_once(": "))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .expect("every final response has a Content-Length");
        assert!(data.len() >= length, "body shorter than its Content-Length");
        let body = &data[..length];
        data = &data[length..];
        let value: serde_json::Value = serde_json::from_slice(body).expect("response body is JSON");
        match status {
            200 => {
                if let Some(n) = value.get("queued") {
                    queued += n.as_u64().expect("queued is a count") as usize;
                }
            }
            400 | 401 | 404 | 405 | 408 | 413 | 431 | 501 | 503 => {
                let message = value["error"]
                    .as_str()
                    .expect("refusals carry an error message");
                assert!(!message.is_empty());
            }
            other => panic!("unexpected status {other}"),
        }
    }
    queued
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let mut stream = TcpStream::connect(fixture.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer and close before reading everything: fine.
    let _ = stream.write_all(data);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let queued = check_responses(&answer);

    let mut bridge = Bridge::new(Arc::clone(&fixture.gate), MappingOptions::default(), None);
    let mut popped = 0;
    while let Some(item) = fixture.queue.try_pop() {
        popped += 1;
        match bridge.decide_line(&item.line, |_| Timestamp::ZERO) {
            LineOutcome::Decided(_) => {}
            other => panic!("an acknowledged event is not decided: {other:?}"),
        }
    }
    assert_eq!(popped, queued, "events queued vs acknowledged");
});
