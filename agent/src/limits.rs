//! Every bound the agent enforces, in one place (the core's own bounds live in
//! `scbe_core::limits`).
//!
//! Hitting a limit is a counted, logged, reported event — never a silent drop.

use std::time::Duration;

use scbe_core::limits::{LINE_BYTES_MAX, STATE_ENTRIES_MAX};

/// Default capacity of the intake queue (events waiting for the gate).
pub const QUEUE_EVENTS_DEFAULT: usize = 10_000;
/// Largest intake queue an operator may configure.
pub const QUEUE_EVENTS_MAX: usize = 1_000_000;

/// How long an HTTP request waits for room in a full queue before it is
/// answered 503 and its events are counted as dropped.
pub const QUEUE_FULL_WAIT_DEFAULT: Duration = Duration::from_millis(1000);

/// Default largest HTTP request body (bytes); larger bodies get 413.
pub const HTTP_BODY_BYTES_DEFAULT: usize = 2 << 20;
/// Largest body limit an operator may configure.
pub const HTTP_BODY_BYTES_MAX: usize = 64 << 20;
/// Most events one batch request may carry.
pub const HTTP_BATCH_EVENTS_MAX: usize = 10_000;
/// Threads serving intake connections: the most clients served at once
/// (more wait in the listen backlog; no thread per connection).
pub const HTTP_WORKERS: usize = 16;
/// Threads serving the metrics endpoint.
pub const METRICS_WORKERS: usize = 2;
/// From a request's first byte to its last: a client that stops sending is
/// answered 408 and disconnected, so it cannot hold a worker.
pub const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle keep-alive connection is kept.
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request line plus headers (bytes); 431 above.
pub const HTTP_HEAD_BYTES_MAX: usize = 16 << 10;
/// Most headers in one request.
pub const HTTP_HEADERS_MAX: usize = 64;
/// After refusing a request whose body was not read: how long, and how many
/// bytes, to discard before closing, so the client sees the answer rather
/// than a connection reset.
pub const HTTP_LINGER: Duration = Duration::from_secs(2);
pub const HTTP_LINGER_BYTES_MAX: u64 = 4 << 20;
/// How often idle threads look at the stop flag.
pub const HTTP_POLL: Duration = Duration::from_millis(100);

/// How often a followed file is polled for new data and rotation.
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// How long the decision loop waits for an event before it looks at signals,
/// flushes output and considers a periodic state save.
pub const LOOP_TICK: Duration = Duration::from_millis(100);

/// Largest file the quarantine will copy (bytes).
pub const QUARANTINE_FILE_BYTES_MAX: u64 = 1 << 30;
/// Longest sanitized quarantine file name (bytes; NAME_MAX is 255).
pub const QUARANTINE_NAME_BYTES_MAX: usize = 200;

/// How long `systemctl` may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a command's stderr a failure message keeps (bytes).
pub const COMMAND_OUTPUT_BYTES_MAX: usize = 2048;

/// Largest journald MESSAGE field (bytes); longer ones are cut and flagged.
pub const JOURNAL_MESSAGE_BYTES_MAX: usize = 64 << 10;

/// Most SOC action events kept in the on-disk spool.
pub const SOC_SPOOL_ENTRIES_MAX: usize = 10_000;
/// Most bytes kept in the on-disk spool.
pub const SOC_SPOOL_BYTES_MAX: u64 = 64 << 20;
/// First retry delay after a failed SOC delivery; doubles up to the maximum.
pub const SOC_RETRY_MIN: Duration = Duration::from_millis(250);
/// Default longest delay between SOC delivery attempts.
pub const SOC_RETRY_MAX_DEFAULT: Duration = Duration::from_secs(60);

/// Default circuit breaker: at most this many containment actions...
pub const BREAKER_ACTIONS_DEFAULT: u32 = 10;
/// ...in this window.
pub const BREAKER_WINDOW_DEFAULT: Duration = Duration::from_secs(60);

/// How far the process start time in `/proc` may differ from the event's
/// `proc.pid.ts` and still be the same process. Falco derives the boot time
/// from `/proc/stat` `btime` on some drivers, which has one-second resolution.
pub const PROC_START_TOLERANCE_NS: i64 = 1_000_000_000;

/// Largest state file the agent will read (bytes).
pub const STATE_FILE_BYTES_MAX: u64 = 4 << 30;
/// Default interval between periodic state saves.
pub const STATE_SAVE_INTERVAL_DEFAULT: Duration = Duration::from_secs(60);

// One event of the largest size the core accepts must fit in a request body.
const _: () = assert!(HTTP_BODY_BYTES_DEFAULT > LINE_BYTES_MAX);
const _: () = assert!(HTTP_BODY_BYTES_DEFAULT <= HTTP_BODY_BYTES_MAX);
// A full batch must be able to fit in the default queue at all.
const _: () = assert!(HTTP_BATCH_EVENTS_MAX <= QUEUE_EVENTS_DEFAULT);
const _: () = assert!(QUEUE_EVENTS_DEFAULT <= QUEUE_EVENTS_MAX);
// A spooled action is far smaller than a line; the spool holds many of them.
const _: () = assert!(SOC_SPOOL_BYTES_MAX >= 16 * LINE_BYTES_MAX as u64);
const _: () = assert!(QUARANTINE_NAME_BYTES_MAX < 255);
// Shutdown waits for requests in progress; keep that wait short.
const _: () = assert!(HTTP_REQUEST_TIMEOUT.as_secs() <= 30);
const _: () = assert!(HTTP_POLL.as_millis() < HTTP_REQUEST_TIMEOUT.as_millis());
// Every saved antibody entry is at least a few bytes of JSON.
const _: () = assert!(STATE_FILE_BYTES_MAX >= 8 * STATE_ENTRIES_MAX as u64);
