//! Time as a value. Core never reads a clock: callers pass `now`.

/// Nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Seconds since the epoch, as a float (for cooldown comparisons).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// Seconds elapsed from `earlier` to `self` (negative when time went back).
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (self.0 as i128 - earlier.0 as i128) as f64 / 1e9
    }

    /// Parse `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as Falco writes `time`.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let s = text.get(range)?;
            if !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut i = 19;
        let mut nanos = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 9 {
                    nanos = nanos * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            for _ in (i - start).min(9)..9 {
                nanos *= 10;
            }
        }
        let offset_secs = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let secs = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
                if sign == b'+' {
                    secs
                } else {
                    -secs
                }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        secs.checked_mul(1_000_000_000)?
            .checked_add(nanos)
            .map(Timestamp)
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A source of `now`. The agent brings the system clock; replays use event
/// time; tests use [`ManualClock`].
pub trait Clock {
    fn now(&self) -> Timestamp;
}

/// A clock that only moves when told to.
#[derive(Debug, Default, Clone)]
pub struct ManualClock {
    now: std::cell::Cell<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            now: std::cell::Cell::new(start),
        }
    }

    pub fn set(&self, now: Timestamp) {
        self.now.set(now);
    }

    pub fn advance_secs(&self, secs: f64) {
        let nanos = (secs * 1e9) as i64;
        self.now
            .set(Timestamp(self.now.get().0.saturating_add(nanos)));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.now.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_falco_time() {
        let t = Timestamp::parse_rfc3339("2025-03-10T08:00:02.132128842Z").unwrap();
        assert_eq!(t.as_nanos(), 1_741_593_602_132_128_842);
        let t = Timestamp::parse_rfc3339("1970-01-01T01:00:00+01:00").unwrap();
        assert_eq!(t.as_nanos(), 0);
        assert_eq!(Timestamp::parse_rfc3339("2025-13-10T08:00:02Z"), None);
        assert_eq!(Timestamp::parse_rfc3339("garbage"), None);
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let clock = ManualClock::new(Timestamp::ZERO);
        clock.advance_secs(1.5);
        assert_eq!(clock.now().as_nanos(), 1_500_000_000);
    }
}
