//! `--listen`: an HTTP endpoint for Falco's `http_output` and Falcosidekick's
//! webhook output.
//!
//! - `POST /` with one Falco JSON event (what both senders post), or a batch
//!   of JSON lines. A request is accepted whole or not at all: every event is
//!   validated first, then all are queued together. 200 `{"queued":N}` means
//!   queued; 400 names the bad line and why; 413 is over the body limit.
//! - `GET /healthz`: 200 while the agent runs.
//! - With a shared secret, `POST /` needs the configured header (Falcosidekick
//!   can send custom headers; Falco's `http_output` cannot, so bind to
//!   loopback when Falco posts directly).
//!
//! Queue-full policy: Falco does not retry on HTTP status, so a request first
//! waits (bounded) for room; if the queue is still full it gets 503 with
//! `Retry-After`, and its events are counted in `scbe_agent_queue_dropped_total`
//! and logged. Never silently.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use scbe_core::falco::{classify_line, RawLine};
use scbe_core::json::{self, JsonValue};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::control::Stop;
use crate::intake::lines::LineSplitter;
use crate::limits::{HTTP_BATCH_EVENTS_MAX, HTTP_POLL};
use crate::metrics::Metrics;
use crate::queue::{Item, Producer, PushError, Source};
use crate::secret::Secret;

/// How the intake endpoint behaves.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub body_bytes_max: usize,
    /// `(header name, secret)`: required on `POST /` when set.
    pub shared_secret: Option<(String, Secret)>,
    pub queue_full_wait: Duration,
}

/// Bind `addr`. A bare port (`8765` or `:8765`) binds loopback: the agent
/// never listens on every interface unless told to.
pub fn bind(addr: &str) -> anyhow::Result<Server> {
    let addr = listen_addr(addr)?;
    Server::http(addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

/// Parse `ADDR:PORT`, `:PORT` or `PORT` (the last two on 127.0.0.1).
pub fn listen_addr(text: &str) -> anyhow::Result<SocketAddr> {
    let text = text.trim();
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse::<SocketAddr>().map_err(|e| {
        anyhow::anyhow!("invalid listen address {text:?} (expected ADDR:PORT or PORT): {e}")
    })
}

pub(crate) fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

fn json_response(status: u16, body: serde_json::Value) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(format!("{body}\n"))
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
}

fn error_response(status: u16, message: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    json_response(status, serde_json::json!({ "error": message }))
}

/// Start `workers` threads answering requests until `stop`.
pub fn spawn(
    server: Arc<Server>,
    config: HttpConfig,
    producer: Producer,
    metrics: Arc<Metrics>,
    stop: Arc<Stop>,
    workers: usize,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let producer = Arc::new(producer);
    let config = Arc::new(config);
    (0..workers.max(1))
        .map(|i| {
            let (server, producer, config, metrics, stop) = (
                Arc::clone(&server),
                Arc::clone(&producer),
                Arc::clone(&config),
                Arc::clone(&metrics),
                Arc::clone(&stop),
            );
            std::thread::Builder::new()
                .name(format!("scbe-http-{i}"))
                .spawn(move || {
                    while !stop.is_requested() {
                        match server.recv_timeout(HTTP_POLL) {
                            Ok(Some(request)) => handle(request, &config, &producer, &metrics),
                            Ok(None) => {}
                            Err(err) => {
                                tracing::error!(%err, "intake endpoint failed");
                                return;
                            }
                        }
                    }
                })
        })
        .collect()
}

fn handle(mut request: Request, config: &HttpConfig, producer: &Producer, metrics: &Metrics) {
    metrics.http_requests.inc();
    let path = request.url().split('?').next().unwrap_or("").to_owned();
    let response = match (request.method(), path.as_str()) {
        (Method::Get | Method::Head, "/healthz") => {
            let queue = producer.queue();
            json_response(
                200,
                serde_json::json!({
                    "status": "ok",
                    "queue_depth": queue.depth(),
                    "queue_capacity": queue.capacity(),
                }),
            )
        }
        (Method::Post, "/") => intake(&mut request, config, producer, metrics),
        (_, "/") => {
            error_response(405, "use POST / with Falco JSON").with_header(header("Allow", "POST"))
        }
        _ => {
            metrics.http_not_found.inc();
            error_response(404, "not found: POST events to /, GET /healthz")
        }
    };
    if let Err(err) = request.respond(response) {
        tracing::debug!(%err, "client went away before the response");
    }
}

fn intake(
    request: &mut Request,
    config: &HttpConfig,
    producer: &Producer,
    metrics: &Metrics,
) -> Response<std::io::Cursor<Vec<u8>>> {
    if let Some((name, secret)) = &config.shared_secret {
        let given = request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_bytes().to_vec());
        if !given.is_some_and(|v| secret.matches(&v)) {
            metrics.http_rejected_unauthorized.inc();
            tracing::warn!(remote = ?request.remote_addr(), "intake request without the shared secret refused");
            return error_response(401, "missing or wrong shared secret header");
        }
    }
    let limit = config.body_bytes_max;
    if request.body_length().is_some_and(|len| len > limit) {
        metrics.http_rejected_too_large.inc();
        return error_response(413, &format!("body exceeds the limit of {limit} bytes"));
    }
    let mut body = Vec::new();
    if let Err(err) = request
        .as_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
    {
        metrics.http_rejected_bad_json.inc();
        return error_response(400, &format!("cannot read the body: {err}"));
    }
    if body.len() > limit {
        metrics.http_rejected_too_large.inc();
        return error_response(413, &format!("body exceeds the limit of {limit} bytes"));
    }
    let events = match split_body(&body) {
        Ok(events) => events,
        Err(reason) => {
            metrics.http_rejected_bad_json.inc();
            tracing::debug!(%reason, "intake request with bad JSON refused");
            return error_response(400, &reason);
        }
    };
    if events.len() > HTTP_BATCH_EVENTS_MAX {
        metrics.http_rejected_too_large.inc();
        return error_response(
            413,
            &format!(
                "batch of {} events exceeds the limit of {HTTP_BATCH_EVENTS_MAX}",
                events.len()
            ),
        );
    }
    let n = events.len();
    let items = events
        .into_iter()
        .map(|line| Item::new(line, Source::Http))
        .collect();
    match producer.push_batch(items, config.queue_full_wait) {
        Ok(()) => {
            metrics.http_events_queued.add(n as u64);
            json_response(200, serde_json::json!({ "queued": n }))
        }
        Err(PushError::Full) => {
            metrics.http_rejected_queue_full.inc();
            metrics.queue_dropped.add(n as u64);
            tracing::warn!(
                events = n,
                dropped_total = metrics.queue_dropped.get(),
                "intake queue full: events refused with 503 and dropped"
            );
            error_response(503, "queue full: events not accepted")
                .with_header(header("Retry-After", "1"))
        }
        Err(PushError::Closed) => {
            metrics.http_rejected_shutting_down.inc();
            metrics.queue_dropped.add(n as u64);
            tracing::warn!(events = n, "agent shutting down: events refused with 503");
            error_response(503, "shutting down: events not accepted")
        }
        Err(PushError::TooMany) => {
            metrics.http_rejected_too_large.inc();
            error_response(
                413,
                &format!(
                    "batch of {n} events exceeds the queue capacity of {}",
                    producer.queue().capacity()
                ),
            )
        }
    }
}

/// The events in a body: one JSON object (possibly pretty-printed), or JSON
/// lines. Every event must be a JSON object as the gate would parse it;
/// otherwise the reason, naming the line for batches.
pub fn split_body(body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let single = match check_event(body) {
        Ok(true) => return Ok(vec![body.to_vec()]),
        Ok(false) => return Err("empty body: expected a Falco JSON event".to_owned()),
        Err(single) => single,
    };
    // Not one JSON document: maybe JSON lines.
    let mut lines = Vec::new();
    let mut splitter = LineSplitter::new();
    splitter.feed(body, |line, _| {
        lines.push(line);
        true
    });
    lines.extend(splitter.finish().map(|(line, _)| line));
    let many = lines.len() > 1;
    let mut events = Vec::new();
    for (i, line) in lines.into_iter().enumerate() {
        match check_event(&line) {
            Ok(true) => events.push(line),
            Ok(false) => {}
            Err(reason) if many => return Err(format!("line {}: {reason}", i + 1)),
            Err(_) => return Err(single),
        }
    }
    if events.is_empty() {
        return Err(single);
    }
    Ok(events)
}

/// `Ok(true)` for a JSON object, `Ok(false)` for a blank line.
fn check_event(raw: &[u8]) -> Result<bool, String> {
    let text = match classify_line(raw) {
        Ok(RawLine::Blank) => return Ok(false),
        Ok(RawLine::Text(text)) => text,
        Err(e) => return Err(e.to_string()),
    };
    match json::parse(text) {
        Ok(JsonValue::Object(_)) => Ok(true),
        Ok(_) => Err("falco event must be a JSON object".to_owned()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(split_body(b"{\"a\":1}").unwrap().len(), 1);
        // Pretty-printed single object is one event.
        assert_eq!(split_body(b"{\n  \"a\": 1\n}\n").unwrap().len(), 1);
        // JSON lines with a blank line.
        assert_eq!(split_body(b"{\"a\":1}\n\n{\"b\":2}\n").unwrap().len(), 2);
        let err = split_body(b"{\"a\":1}\n{\"b\":\n").unwrap_err();
        assert!(err.starts_with("line 2: invalid JSON"), "{err}");
        let err = split_body(b"[1,2]").unwrap_err();
        assert_eq!(err, "falco event must be a JSON object");
        assert!(split_body(b"{oops")
            .unwrap_err()
            .starts_with("invalid JSON"));
        assert!(split_body(b"  \n").unwrap_err().starts_with("empty body"));
    }

    #[test]
    fn listen_addresses_default_to_loopback() {
        assert_eq!(listen_addr("8765").unwrap().to_string(), "127.0.0.1:8765");
        assert_eq!(listen_addr(":8765").unwrap().to_string(), "127.0.0.1:8765");
        assert_eq!(listen_addr("0.0.0.0:80").unwrap().to_string(), "0.0.0.0:80");
        assert!(listen_addr("nope").is_err());
    }
}
