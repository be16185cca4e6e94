//! Wiring: sources → queue → decision loop → backends, plus the operator's
//! side (signals, state file, metrics endpoint), and the orderly shutdown:
//! stop intake, drain the queue, flush output, save state, print the summary.

use std::fs::File;
use std::io::{self, BufWriter};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result};
use scbe_core::{Bridge, MappingOptions, PlannerConfig};

use crate::cli::Config;
use crate::control::{self, Control, Stop};
use crate::enforce::audit::AuditLog;
use crate::enforce::breaker::Breaker;
use crate::enforce::guard::Guard;
use crate::enforce::journald::JournaldBackend;
use crate::enforce::signal::SignalBackend;
use crate::enforce::soc::{SocBackend, SocConfig, SocHandle};
use crate::enforce::spool::Spool;
use crate::enforce::systemd::SystemdBackend;
use crate::enforce::{Backend, Enforcer};
use crate::engine::{Engine, Flow, OutputOptions};
use crate::httpd::{Server, Serving};
use crate::intake::{self, http::HttpConfig, http::Intake};
use crate::limits::{
    HTTP_WORKERS, LOOP_TICK, METRICS_WORKERS, SOC_SPOOL_BYTES_MAX, SOC_SPOOL_ENTRIES_MAX,
};
use crate::metrics::{self, Metrics};
use crate::queue::{Pop, Queue, Source};
use crate::state;
use crate::summary;

/// Run the agent until its input ends, `--max-events` is reached, or a stop
/// signal arrives. The caller blocks the handled signals first
/// ([`control::block_signals`]).
pub fn run(config: Config) -> Result<ExitCode> {
    let metrics = Metrics::new();
    let stop = Stop::new();
    let control = Control::new();
    let queue = Queue::new(config.queue_capacity);

    let mut bridge = build_bridge(&config);
    if let Some(path) = &config.state_file {
        load_state(path, config.state_move_corrupt, &mut bridge)?;
    }
    let (enforcer, mut soc) = build_enforcer(&config, &metrics, &stop)?;

    // Bind listeners before anything runs, so a taken port fails the start.
    let intake_server = config.sources.listen.as_deref().map(bind).transpose()?;
    let metrics_server = config.metrics.as_deref().map(bind).transpose()?;

    control::spawn_signal_thread(Arc::clone(&control), Arc::clone(&queue))
        .context("cannot start the signal thread")?;
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut servers: Vec<Serving> = Vec::new();
    if let Some(server) = metrics_server {
        tracing::info!(addr = %server.local_addr(), "metrics endpoint listening");
        servers.push(server.serve(
            "metrics",
            METRICS_WORKERS,
            0,
            Arc::new(metrics::Endpoint::new(
                Arc::clone(&metrics),
                Arc::clone(&queue),
            )),
            Arc::clone(&stop),
        )?);
    }
    if let Some(server) = intake_server {
        tracing::info!(addr = %server.local_addr(), secret = config.listen_secret.is_some(), "intake endpoint listening");
        let intake = Intake::new(
            HttpConfig {
                shared_secret: config.listen_secret.clone(),
                queue_full_wait: config.queue_full_wait,
            },
            queue.producer(),
            Arc::clone(&metrics),
        );
        servers.push(server.serve(
            "http",
            HTTP_WORKERS,
            config.body_bytes_max,
            Arc::new(intake),
            Arc::clone(&stop),
        )?);
    }
    start_sources(&config, &queue, &metrics, &stop, &mut threads)?;
    log_start(&config);

    let mut engine = Engine::new(
        bridge,
        enforcer,
        OutputOptions {
            alerts_only: config.alerts_only,
            pretty: config.pretty,
            include_kernel_event: config.include_kernel_event,
        },
        config.max_events,
        Box::new(BufWriter::with_capacity(64 << 10, io::stdout())),
        Box::new(io::stderr()),
        Arc::clone(&metrics),
    );
    let outcome = decision_loop(&config, &control, &queue, &mut engine, &metrics);

    // Orderly shutdown: refuse new events, let requests in progress finish
    // (their events are refused with 503), then decide everything accepted.
    queue.close();
    stop.request();
    for server in servers {
        server.join();
    }
    let mut output_error = None;
    match outcome {
        Ok(Flow::Continue) => {
            while let Some(item) = queue.try_pop() {
                match engine.process(item) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Done) => break,
                    Err(e) => {
                        output_error = Some(e);
                        break;
                    }
                }
            }
        }
        Ok(Flow::Done) => {}
        Err(e) => output_error = Some(e),
    }
    if let Err(e) = engine.flush() {
        output_error.get_or_insert(e);
    }
    if let Some(path) = &config.state_file {
        save_state(path, &mut engine, &metrics);
    }
    soc.join();
    for handle in threads {
        let _ = handle.join();
    }
    tracing::info!(
        events = metrics.events_seen.get(),
        errors = summary::errors(&metrics),
        applied = metrics.enforcement_applied.get(),
        failed = metrics.enforcement_failed.get(),
        "scbe-agent stopped"
    );
    // The summary is the last line on stderr, as in the reference.
    eprintln!("{}", summary::to_json(&metrics, soc.pending()));
    match output_error {
        Some(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("cannot write output"),
        // A closed stdout (`| head`) is a normal way to stop.
        _ => Ok(ExitCode::from(summary::exit_code(&metrics, config.apply))),
    }
}

/// Take events until the input ends (`Continue`: drain what is left),
/// `--max-events` (`Done`), or a stop signal (`Continue`).
fn decision_loop(
    config: &Config,
    control: &Control,
    queue: &Queue,
    engine: &mut Engine,
    metrics: &Metrics,
) -> io::Result<Flow> {
    let mut last_save = Instant::now();
    loop {
        if control.shutdown_requested() {
            return Ok(Flow::Continue);
        }
        if control.take_reload() {
            engine.reload(config.policy_path.as_deref());
        }
        if control.take_rearm() {
            engine.rearm();
        }
        match queue.pop_timeout(LOOP_TICK) {
            Pop::Item(item) => {
                if engine.process(item)? == Flow::Done {
                    return Ok(Flow::Done);
                }
                // Flush when caught up, so live records are not held back.
                if queue.depth() == 0 {
                    engine.flush()?;
                }
            }
            Pop::Idle => engine.flush()?,
            Pop::Finished => return Ok(Flow::Continue),
        }
        if let Some(path) = &config.state_file {
            if engine.is_dirty() && last_save.elapsed() >= config.state_save_interval {
                save_state(path, engine, metrics);
                last_save = Instant::now();
            }
        }
    }
}

/// Bind an HTTP listener (`ADDR:PORT`, or a bare port on loopback).
fn bind(addr: &str) -> Result<Server> {
    let addr = intake::http::listen_addr(addr)?;
    Server::bind(addr).with_context(|| format!("cannot listen on {addr}"))
}

fn build_bridge(config: &Config) -> Bridge {
    let gate = Arc::new(config.gate.clone());
    let policy = gate.policy();
    let planner = config.plan.then(|| PlannerConfig {
        cooldown_seconds: config.cooldown_seconds,
        quarantine_dir: config.quarantine_dir.clone(),
        backend_names: config.backends.clone(),
        dry_run: !config.apply,
        capacity: policy.state_capacity(),
    });
    let mapping = MappingOptions {
        host_default: config.host_default.clone(),
        real_network_fields: policy.real_network_fields,
    };
    Bridge::new(gate, mapping, planner)
}

fn load_state(path: &std::path::Path, move_corrupt: bool, bridge: &mut Bridge) -> Result<()> {
    match state::load(path) {
        Ok(Some(entries)) => {
            let n = entries.len();
            state::restore(bridge.table_mut(), entries);
            tracing::info!(path = %path.display(), entries = n, kept = bridge.table().len(), "state loaded");
        }
        Ok(None) => tracing::info!(path = %path.display(), "no state file yet; starting empty"),
        Err(err @ state::StateError::Corrupt(..)) if move_corrupt => {
            let aside = state::move_aside(path).with_context(|| {
                format!(
                    "cannot move the corrupt state file {} aside",
                    path.display()
                )
            })?;
            tracing::warn!(%err, aside = %aside.display(), "corrupt state file moved aside; starting empty");
        }
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

fn save_state(path: &std::path::Path, engine: &mut Engine, metrics: &Metrics) {
    match state::save(path, engine.bridge().table()) {
        Ok(()) => {
            metrics.state_saves.inc();
            engine.mark_saved();
            tracing::debug!(path = %path.display(), entries = engine.bridge().table().len(), "state saved");
        }
        Err(err) => {
            metrics.state_save_failures.inc();
            tracing::error!(path = %path.display(), %err, "cannot save state");
        }
    }
}

/// The enforcer (when plans are made) and the SOC backend's handle. Backends
/// are only built when applying: a dry run never calls them, so it creates
/// no spool directory and opens no socket.
fn build_enforcer(
    config: &Config,
    metrics: &Arc<Metrics>,
    stop: &Arc<Stop>,
) -> Result<(Option<Enforcer>, SocHandle)> {
    let mut soc_handle = SocHandle::default();
    if !config.plan {
        return Ok((None, soc_handle));
    }
    let mut backends: Vec<Box<dyn Backend>> = Vec::new();
    let mut audit = None;
    if config.apply {
        for name in &config.backends {
            let backend: Box<dyn Backend> = match name.as_str() {
                "signal" => Box::new(SignalBackend::new(config.protected_paths.clone())),
                "systemd" => Box::new(SystemdBackend::new(config.systemctl.clone())),
                "journald" => Box::new(JournaldBackend::new(
                    config.journald_socket.clone(),
                    Arc::clone(metrics),
                )),
                "soc" => {
                    let spool = match &config.soc_endpoint {
                        Some(_) => Some(
                            Spool::open(
                                &config.soc_spool_dir,
                                SOC_SPOOL_ENTRIES_MAX,
                                SOC_SPOOL_BYTES_MAX,
                            )
                            .with_context(|| {
                                format!(
                                    "cannot open the SOC spool {}",
                                    config.soc_spool_dir.display()
                                )
                            })?,
                        ),
                        None => None,
                    };
                    let (backend, handle) = SocBackend::new(
                        SocConfig {
                            endpoint: config.soc_endpoint.clone(),
                            token: config.soc_token.clone(),
                            timeout: config.soc_timeout,
                            retry_max: config.soc_retry_max,
                        },
                        spool,
                        Arc::clone(metrics),
                        Arc::clone(stop),
                    )?;
                    soc_handle = handle;
                    Box::new(backend)
                }
                other => anyhow::bail!("unknown enforcement backend {other:?}"),
            };
            backends.push(backend);
        }
        if let Some(path) = &config.audit_log {
            audit = Some(
                AuditLog::open(path)
                    .with_context(|| format!("cannot open the audit log {}", path.display()))?,
            );
        }
    } else if config.audit_log.is_some() {
        tracing::warn!(
            "--audit-log records applied actions; without --apply-enforcement it stays empty"
        );
    }
    let guard = Guard::new(
        &config.protected_processes,
        &config.gate.policy().enforcement.protected_processes,
    );
    let breaker = Breaker::new(config.breaker_max_actions, config.breaker_window);
    let enforcer = Enforcer::new(
        config.apply,
        backends,
        guard,
        breaker,
        audit,
        Arc::clone(metrics),
    );
    Ok((Some(enforcer), soc_handle))
}

fn start_sources(
    config: &Config,
    queue: &Arc<Queue>,
    metrics: &Arc<Metrics>,
    stop: &Arc<Stop>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<()> {
    let sources = &config.sources;
    if let Some(input) = &sources.input {
        let (name, reader, source): (String, Box<dyn io::Read + Send>, Source) = if input == "-" {
            ("<stdin>".to_owned(), Box::new(io::stdin()), Source::Stdin)
        } else {
            let file = File::open(input).with_context(|| format!("cannot open input {input}"))?;
            (input.clone(), Box::new(file), Source::File)
        };
        // Not joined: a reader blocked in read() (stdin, a FIFO) cannot be
        // woken, and it ends by itself at end of input, when the queue
        // closes, or with the process.
        drop(intake::stream::spawn(
            name,
            reader,
            queue.producer(),
            source,
            Arc::clone(metrics),
        )?);
    }
    if let Some(path) = &sources.follow {
        threads.push(intake::follow::spawn(
            path.clone(),
            sources.follow_from_start,
            queue.producer(),
            Arc::clone(stop),
            Arc::clone(metrics),
        )?);
    }
    Ok(())
}

fn log_start(config: &Config) {
    let mode = if config.apply {
        "APPLYING enforcement"
    } else if config.plan {
        "dry-run (plans emitted, nothing applied)"
    } else {
        "decisions only"
    };
    tracing::info!(
        mode,
        backends = %config.backends.join(","),
        cooldown_seconds = config.cooldown_seconds,
        breaker_max_actions = config.breaker_max_actions,
        breaker_window_seconds = config.breaker_window.as_secs_f64(),
        policy = %config.policy_path.as_ref().map_or("reference".to_owned(), |p| p.display().to_string()),
        "scbe-agent started"
    );
    if config.apply {
        tracing::warn!(backends = %config.backends.join(","), "enforcement is LIVE: plans will be applied to this host");
    }
}
