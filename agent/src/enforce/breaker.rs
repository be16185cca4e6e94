//! The circuit breaker: a burst of containment actions is more likely a bad
//! policy or a feedback loop than an attack on that many processes, so past
//! `max_actions` in `window` enforcement falls back to dry-run until an
//! operator re-arms it (SIGUSR1 or a restart).
//!
//! It runs on the monotonic clock: it limits a rate on this host, which must
//! not move when the wall clock is stepped.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The breaker's verdict on one containment action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go ahead (and it was counted).
    Allowed,
    /// This action would exceed the limit: the breaker opened just now.
    Tripped,
    /// The breaker is open: dry-run.
    Open,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    /// 0 disables the breaker.
    max_actions: u32,
    window: Duration,
    recent: VecDeque<Instant>,
    open: bool,
}

impl Breaker {
    pub fn new(max_actions: u32, window: Duration) -> Breaker {
        Breaker {
            max_actions,
            window,
            recent: VecDeque::with_capacity(max_actions as usize + 1),
            open: false,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn max_actions(&self) -> u32 {
        self.max_actions
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Ask to perform one containment action at `now`.
    pub fn admit(&mut self, now: Instant) -> Admit {
        if self.open {
            return Admit::Open;
        }
        if self.max_actions == 0 {
            return Admit::Allowed;
        }
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= self.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max_actions as usize {
            self.open = true;
            self.recent.clear();
            return Admit::Tripped;
        }
        self.recent.push_back(now);
        Admit::Allowed
    }

    /// Close the breaker again (operator re-arm); the count starts afresh.
    pub fn rearm(&mut self) {
        self.open = false;
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_past_the_limit_and_stays_open_until_rearmed() {
        let start = Instant::now();
        let mut breaker = Breaker::new(2, Duration::from_secs(60));
        assert_eq!(breaker.admit(start), Admit::Allowed);
        assert_eq!(
            breaker.admit(start + Duration::from_secs(1)),
            Admit::Allowed
        );
        assert_eq!(
            breaker.admit(start + Duration::from_secs(2)),
            Admit::Tripped
        );
        assert!(breaker.is_open());
        // Time passing does not close it: only an operator does.
        assert_eq!(breaker.admit(start + Duration::from_secs(600)), Admit::Open);
        breaker.rearm();
        assert_eq!(
            breaker.admit(start + Duration::from_secs(601)),
            Admit::Allowed
        );
    }

    #[test]
    fn old_actions_leave_the_window() {
        let start = Instant::now();
        let mut breaker = Breaker::new(2, Duration::from_secs(10));
        assert_eq!(breaker.admit(start), Admit::Allowed);
        assert_eq!(
            breaker.admit(start + Duration::from_secs(5)),
            Admit::Allowed
        );
        assert_eq!(
            breaker.admit(start + Duration::from_secs(11)),
            Admit::Allowed
        );
        assert_eq!(
            breaker.admit(start + Duration::from_secs(12)),
            Admit::Tripped
        );
    }

    #[test]
    fn zero_disables() {
        let mut breaker = Breaker::new(0, Duration::from_secs(1));
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(breaker.admit(now), Admit::Allowed);
        }
    }
}
