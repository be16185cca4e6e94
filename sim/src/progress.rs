//! A progress line on stderr for long runs (only when stderr is a terminal).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::replay::PROGRESS_INTERVAL;

#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    started: Instant,
    last_draw: Instant,
    total_bytes: Option<u64>,
    bytes_read: Arc<AtomicU64>,
    drew: bool,
}

impl Progress {
    /// `wanted` is the caller's choice (`--quiet` turns it off); the line is
    /// only drawn when stderr is a terminal.
    pub fn new(wanted: bool, total_bytes: Option<u64>, bytes_read: Arc<AtomicU64>) -> Progress {
        let now = Instant::now();
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            started: now,
            last_draw: now,
            total_bytes,
            bytes_read,
            drew: false,
        }
    }

    pub fn update(&mut self, events: u64) {
        if !self.enabled || self.last_draw.elapsed() < PROGRESS_INTERVAL {
            return;
        }
        self.last_draw = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = events as f64 / elapsed;
        let mut line = format!("\r{events} events  {rate:.0} ev/s");
        if let Some(total) = self.total_bytes.filter(|t| *t > 0) {
            let read = self.bytes_read.load(Ordering::Relaxed).min(total);
            let fraction = read as f64 / total as f64;
            line.push_str(&format!("  {:5.1}%", fraction * 100.0));
            if fraction > 0.0 {
                let eta = elapsed * (1.0 - fraction) / fraction;
                line.push_str(&format!("  ETA {eta:.0}s"));
            }
        }
        line.push_str("   ");
        let _ = std::io::stderr().write_all(line.as_bytes());
        self.drew = true;
    }

    pub fn finish(&mut self) {
        if self.drew {
            let _ = std::io::stderr().write_all(b"\r\x1b[2K");
        }
    }
}
