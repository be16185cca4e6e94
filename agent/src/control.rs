//! Operator signals and the stop flag shared by every thread.
//!
//! SIGTERM/SIGINT request a graceful shutdown, SIGHUP a policy reload, SIGUSR1
//! re-arms a tripped circuit breaker. The signals are blocked in every thread
//! and taken synchronously by one thread (`sigwait`), so no handler runs in
//! async-signal context and the decision loop acts on them between events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use crate::queue::Queue;

/// A flag threads can wait on with a timeout instead of sleeping, so a stop
/// request ends their wait at once.
#[derive(Debug, Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl Stop {
    pub fn new() -> Arc<Stop> {
        Arc::new(Stop::default())
    }

    pub fn request(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    pub fn is_requested(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait up to `timeout`; `true` when a stop was requested.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        if *guard {
            return true;
        }
        let (guard, _) = self
            .changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

/// Requests from signals, taken by the decision loop.
#[derive(Debug, Default)]
pub struct Control {
    shutdown: AtomicBool,
    reload: AtomicBool,
    rearm: AtomicBool,
}

impl Control {
    pub fn new() -> Arc<Control> {
        Arc::new(Control::default())
    }

    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    pub fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    pub fn request_reload(&self) {
        self.reload.store(true, Ordering::SeqCst);
    }

    pub fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::SeqCst)
    }

    pub fn request_rearm(&self) {
        self.rearm.store(true, Ordering::SeqCst);
    }

    pub fn take_rearm(&self) -> bool {
        self.rearm.swap(false, Ordering::SeqCst)
    }
}

fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        set.add(signal);
    }
    set
}

/// Block the handled signals in the calling thread. Call it first in `main`,
/// before any thread exists, so every thread inherits the mask and only the
/// signal thread ever takes them. (Child processes get a clean mask: std
/// resets it when spawning.)
pub fn block_signals() -> nix::Result<()> {
    handled_signals().thread_block()
}

/// Start the thread that turns signals into requests. A second SIGTERM or
/// SIGINT during a shutdown exits at once (status 130), for an operator who
/// does not want to wait for the drain.
pub fn spawn_signal_thread(control: Arc<Control>, queue: Arc<Queue>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("scbe-signals".to_owned())
        .spawn(move || {
            let set = handled_signals();
            loop {
                let signal = match set.wait() {
                    Ok(signal) => signal,
                    Err(err) => {
                        tracing::error!(%err, "sigwait failed; signals are no longer handled");
                        return;
                    }
                };
                match signal {
                    Signal::SIGTERM | Signal::SIGINT => {
                        if control.shutdown_requested() {
                            tracing::error!(signal = %signal, "second stop signal: exiting without draining");
                            std::process::exit(130);
                        }
                        tracing::info!(signal = %signal, "stop requested: draining the queue");
                        control.request_shutdown();
                    }
                    Signal::SIGHUP => {
                        tracing::info!("SIGHUP: reloading the policy");
                        control.request_reload();
                    }
                    Signal::SIGUSR1 => {
                        tracing::info!("SIGUSR1: re-arming enforcement");
                        control.request_rearm();
                    }
                    _ => {}
                }
                queue.wake();
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_ends_a_wait() {
        let stop = Stop::new();
        assert!(!stop.wait_timeout(Duration::from_millis(1)));
        let other = Arc::clone(&stop);
        let waiter = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(60)));
        stop.request();
        assert!(waiter.join().unwrap());
        assert!(stop.is_requested());
    }

    #[test]
    fn requests_are_taken_once() {
        let control = Control::new();
        control.request_reload();
        assert!(control.take_reload());
        assert!(!control.take_reload());
        assert!(!control.shutdown_requested());
    }
}
