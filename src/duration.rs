//! Prometheus durations (`5m`, `1h30m`, `30d`): parsing and a canonical spelling used in
//! record names (`ratio_rate30d`), with whole milliseconds so comparisons are exact.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    millis: u64,
}

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl Duration {
    pub const fn from_millis(millis: u64) -> Self {
        Self { millis }
    }
    // Saturating: some of these are built from numbers Prometheus returns.
    pub const fn minutes(m: u64) -> Self {
        Self::from_millis(m.saturating_mul(60_000))
    }
    pub const fn hours(h: u64) -> Self {
        Self::from_millis(h.saturating_mul(3_600_000))
    }
    pub const fn days(d: u64) -> Self {
        Self::from_millis(d.saturating_mul(24 * 3_600_000))
    }
    pub fn as_millis(self) -> u64 {
        self.millis
    }
    pub fn as_secs_f64(self) -> f64 {
        self.millis as f64 / 1000.0
    }

    /// As a jiff duration; `None` past what it can hold (about 292 million years).
    pub fn signed(self) -> Option<jiff::SignedDuration> {
        i64::try_from(self.millis).ok().map(jiff::SignedDuration::from_millis)
    }

    /// `t` plus this duration; `None` past the latest time jiff represents (9999-12-31).
    pub fn checked_after(self, t: jiff::Timestamp) -> Option<jiff::Timestamp> {
        self.signed().and_then(|d| t.checked_add(d).ok())
    }

    /// `t` plus this duration, or the latest time jiff represents: a moment that far out
    /// never comes.
    pub fn after(self, t: jiff::Timestamp) -> jiff::Timestamp {
        self.checked_after(t).unwrap_or(jiff::Timestamp::MAX)
    }

    /// Parses a Prometheus duration: one or more `<integer><unit>`, units in descending order.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a Prometheus duration (use e.g. 5m, 1h30m, 30d)");
        if s.is_empty() {
            return Err(bad());
        }
        let mut rest = s;
        let mut total: u64 = 0;
        let mut last_unit = usize::MAX;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            // "ms" must win over "m".
            let (idx, (unit, scale)) = UNITS
                .iter()
                .enumerate()
                .filter(|(_, (u, _))| rest.starts_with(u))
                .max_by_key(|(_, (u, _))| u.len())
                .ok_or_else(bad)?;
            if last_unit != usize::MAX && idx <= last_unit {
                return Err(bad());
            }
            last_unit = idx;
            rest = &rest[unit.len()..];
            total = n
                .checked_mul(*scale)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        if total == 0 {
            return Err(format!("{s:?} is zero; a duration must be positive"));
        }
        Ok(Self { millis: total })
    }
}

/// Canonical spelling in days, hours, minutes, seconds and milliseconds (no weeks or years, so
/// `30d` stays `30d`).
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.millis;
        for (unit, scale) in UNITS.iter().skip(2) {
            if rest >= *scale {
                write!(f, "{}{}", rest / scale, unit)?;
                rest %= scale;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        for (input, millis, shown) in [
            ("5m", 300_000, "5m"),
            ("30d", 2_592_000_000, "30d"),
            ("1h30m", 5_400_000, "1h30m"),
            ("4w2d", 2_592_000_000, "30d"),
            ("300ms", 300, "300ms"),
            ("1y", 31_536_000_000, "365d"),
            ("90m", 5_400_000, "1h30m"),
        ] {
            let d = Duration::parse(input).unwrap();
            assert_eq!(d.as_millis(), millis, "{input}");
            assert_eq!(d.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn time_after_never_overflows() {
        let t = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(Duration::minutes(15).after(t), t + jiff::SignedDuration::from_mins(15));
        let max = jiff::Timestamp::MAX;
        assert_eq!(Duration::from_millis(1).after(max), max);
        assert_eq!(Duration::from_millis(1).checked_after(max), None);
        assert_eq!(Duration::from_millis(u64::MAX).signed(), None);
        assert_eq!(Duration::from_millis(u64::MAX).after(jiff::Timestamp::MIN), max);
        assert_eq!(Duration::parse("10000y").unwrap().after(t), max);
        assert_eq!(Duration::from_millis(0).after(max), max);
        assert_eq!(Duration::hours(u64::MAX), Duration::from_millis(u64::MAX));
        assert_eq!(Duration::days(u64::MAX / 2), Duration::from_millis(u64::MAX));
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        for input in ["", "5", "m", "1.5h", "5m1h", "1h1h", "-5m", "0s", "5 m", "30D"] {
            assert!(Duration::parse(input).is_err(), "{input} should be rejected");
        }
    }
}
