//! Command-line flags, and their validation into a [`Config`] in one step.
//!
//! The reference monitor's flags keep their names and meaning, so the agent
//! is a drop-in replacement; the rest are the agent's own.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use scbe_core::{Gate, Policy};

use crate::enforce::journald::DEFAULT_JOURNAL_SOCKET;
use crate::limits::{
    BREAKER_ACTIONS_DEFAULT, BREAKER_WINDOW_DEFAULT, HTTP_BODY_BYTES_DEFAULT, HTTP_BODY_BYTES_MAX,
    QUEUE_EVENTS_DEFAULT, QUEUE_EVENTS_MAX, QUEUE_FULL_WAIT_DEFAULT, SOC_RETRY_MAX_DEFAULT,
    STATE_SAVE_INTERVAL_DEFAULT,
};
use crate::secret::Secret;

pub const ENV_SOC_TOKEN: &str = "SCBE_SOC_BEARER_TOKEN";
pub const ENV_LISTEN_SECRET: &str = "SCBE_LISTEN_SECRET";

#[derive(Parser, Debug)]
#[command(
    name = "scbe-agent",
    version,
    about = "SCBE kernel gate, production mode: decide live Falco events and (optionally) enforce.",
    long_about = "Reads Falco JSON events (stdin, a file, a followed file, or HTTP), decides each with \
the same core calls as `scbe-sim replay`, writes one JSON record per event to stdout, and — only with \
--apply-enforcement — applies the plan through the configured backends behind safety rails.\n\n\
Exit status: 0 success; 2 when any input line failed; 3 when enforcement was applied and a backend \
failed or refused."
)]
pub struct Args {
    // ---- Intake ----
    /// Falco JSON lines from a file, or `-` for stdin. The default when no
    /// other source (--follow, --listen) is given.
    #[arg(long, value_name = "-|FILE")]
    pub input: Option<String>,
    /// Tail a Falco file_output across rotation (rename or copytruncate).
    #[arg(long, value_name = "FILE")]
    pub follow: Option<PathBuf>,
    /// With --follow: read the file from its start instead of its end.
    #[arg(long, requires = "follow")]
    pub follow_from_start: bool,
    /// Serve Falco http_output / Falcosidekick webhook posts on ADDR:PORT
    /// (a bare PORT binds 127.0.0.1). Alone, runs until signalled.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Header carrying the intake shared secret (value from --listen-secret-file
    /// or SCBE_LISTEN_SECRET).
    #[arg(long, value_name = "NAME", default_value = "X-SCBE-Token")]
    pub listen_secret_header: String,
    /// File holding the intake shared secret.
    #[arg(long, value_name = "FILE")]
    pub listen_secret_file: Option<PathBuf>,

    /// Accept --listen without a shared secret even when applying enforcement
    /// through the signal or systemd backend (any local user could then post
    /// an event that stops or kills a process).
    #[arg(long)]
    pub listen_allow_unauthenticated: bool,
    /// Largest accepted request body, in bytes (413 above).
    #[arg(long, value_name = "BYTES", default_value_t = HTTP_BODY_BYTES_DEFAULT)]
    pub max_body_bytes: usize,
    /// Events the intake queue holds.
    #[arg(long, value_name = "N", default_value_t = QUEUE_EVENTS_DEFAULT)]
    pub queue_capacity: usize,
    /// How long an HTTP request waits for room in a full queue before 503.
    #[arg(long, value_name = "MS", default_value_t = QUEUE_FULL_WAIT_DEFAULT.as_millis() as u64)]
    pub queue_full_wait_ms: u64,

    // ---- The reference monitor's flags ----
    /// Policy file (TOML); the reference policy when omitted. SIGHUP reloads it.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Only emit records whose kernel action is not ALLOW.
    #[arg(long)]
    pub alerts_only: bool,
    /// Stop after this many (non-blank) events; 0 means unlimited.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_events: u64,
    /// Host used when an event names none.
    #[arg(long, value_name = "NAME", default_value = "linux-node")]
    pub host_default: String,
    /// Pretty-print records (two-space indent).
    #[arg(long)]
    pub pretty: bool,
    /// Include the normalized kernel event in each record.
    #[arg(long)]
    pub include_kernel_event: bool,
    /// Include the enforcement plan in each record (dry-run).
    #[arg(long)]
    pub emit_enforcement: bool,
    /// Apply plans through the backends. Without it nothing is ever done to the host.
    #[arg(long)]
    pub apply_enforcement: bool,
    /// Comma-separated backends: signal, systemd, journald, soc. Default: the
    /// policy's (systemd,journald); when applying with the reference default,
    /// signal,journald.
    #[arg(long, value_name = "LIST")]
    pub enforcement_backends: Option<String>,
    /// Per-process duplicate suppression, seconds of system time (0 disables);
    /// default from the policy (15).
    #[arg(long, value_name = "SECONDS")]
    pub enforcement_cooldown: Option<f64>,
    /// Quarantine directory; default from the policy (/var/quarantine/scbe).
    #[arg(long, value_name = "DIR")]
    pub quarantine_dir: Option<String>,
    /// SOC sink URL for the soc backend.
    #[arg(long, value_name = "URL")]
    pub soc_endpoint: Option<String>,
    /// SOC request timeout.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    pub soc_timeout_seconds: f64,
    /// SOC bearer token (visible in `ps`; prefer SCBE_SOC_BEARER_TOKEN or --soc-bearer-token-file).
    #[arg(long, value_name = "TOKEN", hide_default_value = true)]
    pub soc_bearer_token: Option<String>,
    /// File holding the SOC bearer token (e.g. a systemd credential).
    #[arg(long, value_name = "FILE")]
    pub soc_bearer_token_file: Option<PathBuf>,
    /// Where undelivered SOC action events wait (bounded, survives restarts).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/scbe-agent/soc-spool"
    )]
    pub soc_spool_dir: PathBuf,
    /// Longest delay between SOC delivery retries.
    #[arg(long, value_name = "SECONDS", default_value_t = SOC_RETRY_MAX_DEFAULT.as_secs_f64())]
    pub soc_retry_max_seconds: f64,
    /// Journal socket for the journald backend.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_JOURNAL_SOCKET)]
    pub journald_socket: PathBuf,
    /// systemctl program for the systemd backend.
    #[arg(long, value_name = "PATH", default_value = "systemctl")]
    pub systemctl: String,

    // ---- Safety rails ----
    /// Circuit breaker: more than N containment actions in the window disarm
    /// enforcement to dry-run until SIGUSR1 or a restart. 0 disables it.
    #[arg(long, value_name = "N", default_value_t = BREAKER_ACTIONS_DEFAULT)]
    pub breaker_max_actions: u32,
    /// Circuit breaker window.
    #[arg(long, value_name = "SECONDS", default_value_t = BREAKER_WINDOW_DEFAULT.as_secs_f64())]
    pub breaker_window_seconds: f64,
    /// Another process name never acted on (repeatable; adds to the built-in list).
    #[arg(long = "protected-process", value_name = "NAME")]
    pub protected_processes: Vec<String>,
    /// Another path prefix never quarantined (repeatable; adds to /etc, /usr, ...).
    #[arg(long = "protected-path", value_name = "DIR")]
    pub protected_paths: Vec<PathBuf>,

    // ---- Operating ----
    /// Save the antibody table here periodically and at shutdown; load it at start.
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// Seconds between periodic state saves.
    #[arg(long, value_name = "SECONDS", default_value_t = STATE_SAVE_INTERVAL_DEFAULT.as_secs_f64())]
    pub state_save_interval: f64,
    /// Move a corrupt state file aside (PATH.corrupt-TIME) and start empty,
    /// instead of refusing to start.
    #[arg(long)]
    pub state_move_corrupt: bool,
    /// Serve Prometheus metrics on ADDR:PORT (a bare PORT binds 127.0.0.1).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,
    /// Append every enforcement attempt (apply mode) to this JSONL file, fsynced.
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_name = "FORMAT", default_value = "human", value_parser = ["human", "json"])]
    pub log_format: String,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub log_level: String,
}

/// Where events come from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// `-` or a path.
    pub input: Option<String>,
    pub follow: Option<PathBuf>,
    pub follow_from_start: bool,
    pub listen: Option<String>,
}

/// Everything the agent runs with, validated.
#[derive(Debug)]
pub struct Config {
    pub sources: Sources,
    pub listen_secret: Option<(String, Secret)>,
    pub body_bytes_max: usize,
    pub queue_capacity: usize,
    pub queue_full_wait: Duration,
    pub policy_path: Option<PathBuf>,
    pub gate: Gate,
    pub alerts_only: bool,
    pub max_events: Option<u64>,
    pub host_default: String,
    pub pretty: bool,
    pub include_kernel_event: bool,
    /// Plans are made (and emitted) when emitting or applying.
    pub plan: bool,
    pub apply: bool,
    pub backends: Vec<String>,
    pub cooldown_seconds: f64,
    pub quarantine_dir: String,
    pub soc_endpoint: Option<String>,
    pub soc_timeout: Duration,
    pub soc_token: Option<Secret>,
    pub soc_spool_dir: PathBuf,
    pub soc_retry_max: Duration,
    pub journald_socket: PathBuf,
    pub systemctl: String,
    pub breaker_max_actions: u32,
    pub breaker_window: Duration,
    pub protected_processes: Vec<String>,
    pub protected_paths: Vec<PathBuf>,
    pub state_file: Option<PathBuf>,
    pub state_save_interval: Duration,
    pub state_move_corrupt: bool,
    pub metrics: Option<String>,
    pub audit_log: Option<PathBuf>,
}

/// Read a policy file into a compiled gate (the reference when `None`).
pub fn load_gate(path: Option<&std::path::Path>) -> Result<Gate> {
    let policy = match path {
        None => Policy::reference(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read policy file {}", path.display()))?;
            scbe_core::parse_policy(&text)
                .with_context(|| format!("in policy file {}", path.display()))?
        }
    };
    Gate::new(policy).context("policy does not compile")
}

/// `systemd,journald` → names, each checked against the known backends.
pub fn parse_backends(list: &str) -> Result<Vec<String>> {
    Ok(scbe_core::policy_toml::parse_backend_list(list)?)
}

fn seconds(name: &str, value: f64) -> Result<Duration> {
    ensure!(
        value.is_finite() && value >= 0.0,
        "{name} must be a non-negative number of seconds, got {value}"
    );
    Ok(Duration::from_secs_f64(value))
}

fn read_secret_file(path: &std::path::Path, what: &str) -> Result<Option<Secret>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    Ok(Secret::new(text))
}

impl Config {
    /// Validate flags (and read the policy, secrets from files or the
    /// environment) into a config.
    pub fn from_args(args: Args) -> Result<Config> {
        let gate = load_gate(args.policy.as_deref())?;
        let policy = gate.policy();

        let no_source = args.input.is_none() && args.follow.is_none() && args.listen.is_none();
        let sources = Sources {
            input: if no_source {
                Some("-".to_owned())
            } else {
                args.input.clone()
            },
            follow: args.follow.clone(),
            follow_from_start: args.follow_from_start,
            listen: args.listen.clone(),
        };
        if let Some(listen) = &args.listen {
            crate::intake::http::listen_addr(listen)?;
        }
        if let Some(metrics) = &args.metrics {
            crate::intake::http::listen_addr(metrics)?;
        }

        ensure!(
            (1..=HTTP_BODY_BYTES_MAX).contains(&args.max_body_bytes),
            "--max-body-bytes must be between 1 and {HTTP_BODY_BYTES_MAX}"
        );
        ensure!(
            (1..=QUEUE_EVENTS_MAX).contains(&args.queue_capacity),
            "--queue-capacity must be between 1 and {QUEUE_EVENTS_MAX}"
        );

        let listen_secret = match &args.listen_secret_file {
            Some(path) => read_secret_file(path, "listen secret")?,
            None => std::env::var(ENV_LISTEN_SECRET).ok().and_then(Secret::new),
        };
        let header = args.listen_secret_header.trim().to_owned();
        ensure!(
            !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "--listen-secret-header must be a header name, got {header:?}"
        );

        let backends = match &args.enforcement_backends {
            Some(list) => parse_backends(list)?,
            // Applying with the reference's default list: the direct signal
            // backend replaces systemd (which needs the pid's own scope unit).
            None if args.apply_enforcement
                && policy.enforcement.backends == Policy::reference().enforcement.backends =>
            {
                vec!["signal".to_owned(), "journald".to_owned()]
            }
            None => policy.enforcement.backends.clone(),
        };
        // An unauthenticated loopback intake lets any local user forge events;
        // with process-acting backends applied, that is a kill switch for
        // every unprotected process. Refuse it unless the operator says so.
        let acts_on_processes = backends.iter().any(|b| b == "signal" || b == "systemd");
        ensure!(
            !(args.apply_enforcement
                && acts_on_processes
                && args.listen.is_some()
                && listen_secret.is_none()
                && !args.listen_allow_unauthenticated),
            "--listen with --apply-enforcement through the signal or systemd backend needs \
             a shared secret (--listen-secret-file or {ENV_LISTEN_SECRET}): without one any \
             local user can post an event that stops or kills a process; pass \
             --listen-allow-unauthenticated to accept that"
        );
        let cooldown_seconds = args
            .enforcement_cooldown
            .unwrap_or(policy.enforcement.cooldown_seconds);
        seconds("--enforcement-cooldown", cooldown_seconds)?;
        let soc_timeout = seconds("--soc-timeout-seconds", args.soc_timeout_seconds)?
            .max(Duration::from_millis(100));
        let soc_token = match (&args.soc_bearer_token, &args.soc_bearer_token_file) {
            (Some(_), Some(_)) => {
                bail!("give --soc-bearer-token or --soc-bearer-token-file, not both")
            }
            (Some(token), None) => Secret::new(token.clone()),
            (None, Some(path)) => read_secret_file(path, "SOC bearer token")?,
            (None, None) => std::env::var(ENV_SOC_TOKEN).ok().and_then(Secret::new),
        };
        let soc_endpoint = args
            .soc_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if let Some(endpoint) = &soc_endpoint {
            ensure!(
                endpoint.starts_with("http://") || endpoint.starts_with("https://"),
                "--soc-endpoint must be an http:// or https:// URL"
            );
        }
        let breaker_window = seconds("--breaker-window-seconds", args.breaker_window_seconds)?;
        ensure!(
            args.breaker_max_actions == 0 || !breaker_window.is_zero(),
            "--breaker-window-seconds must be positive"
        );
        let state_save_interval =
            seconds("--state-save-interval", args.state_save_interval)?.max(Duration::from_secs(1));

        Ok(Config {
            sources,
            listen_secret: listen_secret.map(|s| (header, s)),
            body_bytes_max: args.max_body_bytes,
            queue_capacity: args.queue_capacity,
            queue_full_wait: Duration::from_millis(args.queue_full_wait_ms),
            policy_path: args.policy,
            quarantine_dir: args
                .quarantine_dir
                .unwrap_or_else(|| policy.enforcement.quarantine_dir.clone()),
            gate,
            alerts_only: args.alerts_only,
            max_events: (args.max_events > 0).then_some(args.max_events),
            host_default: args.host_default,
            pretty: args.pretty,
            include_kernel_event: args.include_kernel_event,
            plan: args.emit_enforcement || args.apply_enforcement,
            apply: args.apply_enforcement,
            backends,
            cooldown_seconds,
            soc_endpoint,
            soc_timeout,
            soc_token,
            soc_spool_dir: args.soc_spool_dir,
            soc_retry_max: seconds("--soc-retry-max-seconds", args.soc_retry_max_seconds)?,
            journald_socket: args.journald_socket,
            systemctl: args.systemctl,
            breaker_max_actions: args.breaker_max_actions,
            breaker_window,
            protected_processes: args.protected_processes,
            protected_paths: args.protected_paths,
            state_file: args.state_file,
            state_save_interval,
            state_move_corrupt: args.state_move_corrupt,
            metrics: args.metrics,
            audit_log: args.audit_log,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config> {
        Config::from_args(Args::try_parse_from(
            std::iter::once("scbe-agent").chain(args.iter().copied()),
        )?)
    }

    #[test]
    fn defaults_are_dry_run_from_stdin() {
        let c = config(&[]).unwrap();
        assert_eq!(c.sources.input.as_deref(), Some("-"));
        assert!(!c.apply && !c.plan);
        assert_eq!(c.backends, ["systemd", "journald"]);
        assert_eq!(c.cooldown_seconds, 15.0);
        assert_eq!(c.quarantine_dir, "/var/quarantine/scbe");
    }

    #[test]
    fn listen_alone_reads_no_stdin() {
        let c = config(&["--listen", "8080"]).unwrap();
        assert!(c.sources.input.is_none());
    }

    #[test]
    fn applying_defaults_to_the_signal_backend() {
        let c = config(&["--apply-enforcement"]).unwrap();
        assert!(c.apply && c.plan);
        assert_eq!(c.backends, ["signal", "journald"]);
        let c = config(&[
            "--apply-enforcement",
            "--enforcement-backends",
            "systemd, SOC",
        ])
        .unwrap();
        assert_eq!(c.backends, ["systemd", "soc"]);
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(config(&["--enforcement-backends", "signal,ssh"]).is_err());
        assert!(config(&["--enforcement-cooldown", "-1"]).is_err());
        assert!(config(&["--queue-capacity", "0"]).is_err());
        assert!(config(&["--listen", "nowhere"]).is_err());
        assert!(config(&["--soc-endpoint", "ftp://x"]).is_err());
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let c = config(&["--soc-bearer-token", "s3cr3t-token"]).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-token"));
    }
}
