//! The system clock, through core's [`Clock`] trait: the agent's cooldowns and
//! timestamps run on wall-clock time, as the reference monitor's did.

use std::time::{SystemTime, UNIX_EPOCH};

use scbe_core::{Clock, Timestamp};

/// Wall-clock time (`CLOCK_REALTIME`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // Before 1970 only on a badly broken host; 0 keeps cooldowns working.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Timestamp::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2020() {
        // 2020-01-01T00:00:00Z
        assert!(SystemClock.now().as_nanos() > 1_577_836_800_000_000_000);
    }
}
