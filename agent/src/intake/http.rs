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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use scbe_core::falco::{classify_line, RawLine};
use scbe_core::json::{self, JsonValue};

use crate::httpd::{Handler, Head, Response};
use crate::intake::lines::LineSplitter;
use crate::limits::HTTP_BATCH_EVENTS_MAX;
use crate::metrics::Metrics;
use crate::queue::{Item, Producer, PushError, Source};
use crate::secret::Secret;

/// How the intake endpoint behaves (the body limit is the server's).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `(header name, secret)`: required on `POST /` when set.
    pub shared_secret: Option<(String, Secret)>,
    pub queue_full_wait: Duration,
}

/// Parse `ADDR:PORT`, `:PORT` or `PORT` (the last two on 127.0.0.1): the
/// agent never listens on every interface unless told to.
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

/// The intake endpoint's request handling.
#[derive(Debug)]
pub struct Intake {
    config: HttpConfig,
    producer: Producer,
    metrics: Arc<Metrics>,
}

impl Intake {
    pub fn new(config: HttpConfig, producer: Producer, metrics: Arc<Metrics>) -> Intake {
        Intake {
            config,
            producer,
            metrics,
        }
    }
}

impl Handler for Intake {
    fn head(&self, head: &Head) -> Option<Response> {
        self.metrics.http_requests.inc();
        match (head.method.as_str(), head.path.as_str()) {
            ("GET" | "HEAD", "/healthz") => {
                let queue = self.producer.queue();
                Some(Response::json(
                    200,
                    &serde_json::json!({
                        "status": "ok",
                        "queue_depth": queue.depth(),
                        "queue_capacity": queue.capacity(),
                    }),
                ))
            }
            ("POST", "/") => self.check_secret(head),
            (_, "/") => Some(
                Response::error(405, "use POST / with Falco JSON").with_header("Allow", "POST"),
            ),
            _ => {
                self.metrics.http_not_found.inc();
                Some(Response::error(
                    404,
                    "not found: POST events to /, GET /healthz",
                ))
            }
        }
    }

    fn refused(&self, status: u16) {
        self.metrics.http_requests.inc();
        self.count_refusal(status);
    }

    fn body(&self, _head: &Head, body: Vec<u8>) -> Response {
        let events = match split_body(&body) {
            Ok(events) => events,
            Err(reason) => {
                self.metrics.http_rejected_bad_json.inc();
                tracing::debug!(%reason, "intake request with bad JSON refused");
                return Response::error(400, &reason);
            }
        };
        if events.len() > HTTP_BATCH_EVENTS_MAX {
            self.metrics.http_rejected_too_large.inc();
            return Response::error(
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
        match self.producer.push_batch(items, self.config.queue_full_wait) {
            Ok(()) => {
                self.metrics.http_events_queued.add(n as u64);
                Response::json(200, &serde_json::json!({ "queued": n }))
            }
            Err(PushError::Full) => {
                self.metrics.http_rejected_queue_full.inc();
                self.metrics.queue_dropped.add(n as u64);
                tracing::warn!(
                    events = n,
                    dropped_total = self.metrics.queue_dropped.get(),
                    "intake queue full: events refused with 503 and dropped"
                );
                Response::error(503, "queue full: events not accepted")
                    .with_header("Retry-After", "1")
            }
            Err(PushError::Closed) => {
                self.metrics.http_rejected_shutting_down.inc();
                self.metrics.queue_dropped.add(n as u64);
                tracing::warn!(events = n, "agent shutting down: events refused with 503");
                Response::error(503, "shutting down: events not accepted")
            }
            Err(PushError::TooMany) => {
                self.metrics.http_rejected_too_large.inc();
                Response::error(
                    413,
                    &format!(
                        "batch of {n} events exceeds the queue capacity of {}",
                        self.producer.queue().capacity()
                    ),
                )
            }
        }
    }
}

impl Intake {
    fn count_refusal(&self, status: u16) {
        match status {
            413 => self.metrics.http_rejected_too_large.inc(),
            408 => self.metrics.http_rejected_timeout.inc(),
            _ => self.metrics.http_rejected_malformed.inc(),
        }
    }

    /// `None` when the request may go on to its body.
    fn check_secret(&self, head: &Head) -> Option<Response> {
        let (name, secret) = self.config.shared_secret.as_ref()?;
        if head.header(name).is_some_and(|v| secret.matches(v)) {
            return None;
        }
        self.metrics.http_rejected_unauthorized.inc();
        tracing::warn!(peer = %head.peer, "intake request without the shared secret refused");
        Some(Response::error(
            401,
            "missing or wrong shared secret header",
        ))
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
