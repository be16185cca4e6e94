//! The `soc` backend: POST each action to the SOC's HTTP sink
//! (`{"event_type":"scbe_linux_enforcement","action":{…}}`, bearer token,
//! timeout), and never lose one to an outage.
//!
//! While the sink is healthy an action is posted at once, so the record says
//! whether it arrived. When a post fails the event goes to the on-disk spool,
//! and from then on new events queue behind it (in order) without waiting on a
//! dead sink; a delivery thread retries the oldest with exponential backoff
//! until the sink answers, then drains the spool. Failures are reported as in
//! SPEC §9 (`soc sink returned HTTP N`, `soc sink request failed: …`). The
//! token is only ever put in the `Authorization` header: errors and logs are
//! built from status codes and transport errors, never from the request.

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::control::Stop;
use crate::enforce::spool::{Spool, SpoolError};
use crate::enforce::{Backend, Context, Outcome};
use crate::limits::SOC_RETRY_MIN;
use crate::metrics::Metrics;
use crate::secret::Secret;

/// Where and how actions are posted.
#[derive(Debug, Clone)]
pub struct SocConfig {
    pub endpoint: Option<String>,
    pub token: Option<Secret>,
    pub timeout: Duration,
    pub retry_max: Duration,
}

/// The HTTP client for the sink.
#[derive(Debug)]
pub struct Sink {
    endpoint: String,
    token: Option<Secret>,
    agent: ureq::Agent,
}

impl Sink {
    pub fn new(endpoint: String, token: Option<Secret>, timeout: Duration) -> Sink {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("scbe-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Sink {
            endpoint,
            token,
            agent,
        }
    }

    /// POST one body; the failure text is safe to log (no token inside).
    pub fn post(&self, body: &[u8]) -> Result<u16, String> {
        let mut request = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {}", token.expose()));
        }
        match request.send(body) {
            Ok(response) => {
                let code = response.status().as_u16();
                if code >= 400 {
                    Err(format!("soc sink returned HTTP {code}"))
                } else {
                    Ok(code)
                }
            }
            Err(e) => Err(format!("soc sink request failed: {e}")),
        }
    }
}

/// The request body for an action.
pub fn body(action: &scbe_core::EnforcementAction) -> String {
    format!(
        "{{\"event_type\":\"scbe_linux_enforcement\",\"action\":{}}}",
        action.to_json()
    )
}

#[derive(Debug)]
struct Shared {
    sink: Sink,
    spool: Mutex<Spool>,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn spool(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug)]
pub struct SocBackend {
    shared: Option<Arc<Shared>>,
}

/// The operator's side of the SOC backend: spool depth and the delivery
/// thread, kept outside the enforcer.
#[derive(Debug, Default)]
pub struct SocHandle {
    shared: Option<Arc<Shared>>,
    delivery: Option<JoinHandle<()>>,
}

impl SocHandle {
    /// Events waiting in the spool.
    pub fn pending(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.spool().len())
    }

    /// Wait for the delivery thread after the stop was requested.
    pub fn join(&mut self) {
        if let Some(handle) = self.delivery.take() {
            let _ = handle.join();
        }
    }
}

impl SocBackend {
    /// Without an endpoint (or spool) every action reports `soc endpoint not
    /// configured`. With both, a delivery thread drains the spool until `stop`.
    pub fn new(
        config: SocConfig,
        spool: Option<Spool>,
        metrics: Arc<Metrics>,
        stop: Arc<Stop>,
    ) -> std::io::Result<(SocBackend, SocHandle)> {
        let (Some(endpoint), Some(spool)) = (config.endpoint, spool) else {
            return Ok((SocBackend { shared: None }, SocHandle::default()));
        };
        metrics.soc_spool_depth.set(spool.len() as u64);
        if !spool.is_empty() {
            tracing::info!(pending = spool.len(), dir = %spool.dir().display(), "soc: delivering events spooled before the restart");
        }
        let shared = Arc::new(Shared {
            sink: Sink::new(endpoint, config.token, config.timeout),
            spool: Mutex::new(spool),
            metrics,
        });
        let worker = Arc::clone(&shared);
        let retry_max = config.retry_max.max(SOC_RETRY_MIN);
        let delivery = std::thread::Builder::new()
            .name("scbe-soc".to_owned())
            .spawn(move || deliver_spooled(&worker, &stop, retry_max))?;
        let handle = SocHandle {
            shared: Some(Arc::clone(&shared)),
            delivery: Some(delivery),
        };
        Ok((
            SocBackend {
                shared: Some(shared),
            },
            handle,
        ))
    }
}

impl Backend for SocBackend {
    fn name(&self) -> &'static str {
        "soc"
    }

    fn contains_processes(&self) -> bool {
        false
    }

    fn apply(&mut self, ctx: &Context<'_>) -> Outcome {
        let Some(shared) = &self.shared else {
            return Outcome::detail(false, "soc endpoint not configured".to_owned());
        };
        let body = body(ctx.action);
        let mut spool = shared.spool();
        if spool.is_empty() {
            match shared.sink.post(body.as_bytes()) {
                Ok(_) => {
                    shared.metrics.soc_delivered.inc();
                    return Outcome::detail(true, "posted to the soc sink".to_owned());
                }
                Err(failure) => {
                    shared.metrics.soc_delivery_failures.inc();
                    tracing::warn!(%failure, "soc sink unavailable; spooling action events");
                    let note = spool_one(shared, &mut spool, &body);
                    return Outcome {
                        applied: false,
                        failures: vec![format!("{failure}; {note}")],
                        detail: String::new(),
                    };
                }
            }
        }
        // The sink is known to be down: queue behind the older events.
        let behind = spool.len();
        let note = spool_one(shared, &mut spool, &body);
        Outcome {
            applied: false,
            failures: vec![format!(
                "soc sink unavailable ({behind} events waiting); {note}"
            )],
            detail: String::new(),
        }
    }
}

fn spool_one(shared: &Shared, spool: &mut Spool, body: &str) -> String {
    let note = match spool.push(body.as_bytes()) {
        Ok(()) => "action event spooled for retry".to_owned(),
        Err(SpoolError::Full) => {
            shared.metrics.soc_spool_dropped.inc();
            tracing::error!(
                pending = spool.len(),
                "soc spool full: action event dropped (it is still in the record and the audit log)"
            );
            "spool full: action event dropped".to_owned()
        }
        Err(e) => {
            shared.metrics.soc_spool_dropped.inc();
            tracing::error!(%e, "soc spool write failed: action event dropped");
            format!("action event dropped: {e}")
        }
    };
    shared.metrics.soc_spool_depth.set(spool.len() as u64);
    note
}

/// The delivery thread: oldest first, exponential backoff while the sink fails.
fn deliver_spooled(shared: &Shared, stop: &Stop, retry_max: Duration) {
    let mut backoff = SOC_RETRY_MIN;
    let mut failing = false;
    loop {
        let front = shared.spool().front();
        let Some((seq, body)) = front else {
            if stop.wait_timeout(crate::limits::HTTP_POLL) {
                return;
            }
            continue;
        };
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(%e, seq, "soc spool entry unreadable; dropping it");
                shared.metrics.soc_spool_dropped.inc();
                let _ = shared.spool().remove_front(seq);
                continue;
            }
        };
        // Post without holding the lock: new actions can spool meanwhile.
        match shared.sink.post(&body) {
            Ok(_) => {
                shared.metrics.soc_delivered.inc();
                let mut spool = shared.spool();
                if let Err(e) = spool.remove_front(seq) {
                    tracing::error!(%e, "cannot remove a delivered soc spool entry");
                }
                shared.metrics.soc_spool_depth.set(spool.len() as u64);
                if failing {
                    tracing::info!(
                        pending = spool.len(),
                        "soc sink is back; delivering spooled events"
                    );
                    failing = false;
                }
                backoff = SOC_RETRY_MIN;
            }
            Err(failure) => {
                shared.metrics.soc_delivery_failures.inc();
                if !failing {
                    tracing::warn!(%failure, "soc sink still unavailable; retrying with backoff");
                    failing = true;
                }
                if stop.wait_timeout(backoff) {
                    return;
                }
                backoff = (backoff * 2).min(retry_max);
            }
        }
    }
}
