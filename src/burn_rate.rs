//! Multiwindow, multi-burn-rate alert tiers (SRE workbook, chapter 5).
//!
//! A tier fires when both its long and its short window burn faster than `factor` times the
//! sustainable rate. The workbook's tiers for a 30-day window spend 2% of the budget in 1h, 5% in
//! 6h (pages), 10% in 1d and 10% in 3d (tickets); for another window the same shares give
//! `factor = share * window / long`, which is 14.4, 6, 3 and 1 at 30d.

use crate::api::Severity;
use crate::decimal::Decimal;
use crate::duration::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct Tier {
    pub long: Duration,
    pub short: Duration,
    /// Exact decimal text of the factor, as it appears in the rules.
    pub factor: String,
    pub severity: Severity,
    /// How long the condition must hold; `None` for [`default_for`] at the alert interval.
    pub for_: Option<Duration>,
}

pub use crate::api::bounds::MAX_TIERS;
/// Tier windows are whole numbers of this: short windows are sums of one-minute tiles, and a
/// window of whole minutes is a fixed number of them.
pub const WINDOW_UNIT: Duration = Duration::minutes(1);

/// (share of budget in percent, long window, short window, severity)
const WORKBOOK: [(u64, Duration, Duration, Severity); 4] = [
    (2, Duration::hours(1), Duration::minutes(5), Severity::Page),
    (5, Duration::hours(6), Duration::minutes(30), Severity::Page),
    (10, Duration::days(1), Duration::hours(2), Severity::Ticket),
    (10, Duration::days(3), Duration::hours(6), Severity::Ticket),
];

/// The default tiers for an SLO window. Tiers whose long window exceeds the SLO window are
/// dropped; factors are rounded to four decimals and never below 1, because a burn slower than
/// the sustainable rate cannot exhaust the budget and is not worth a ticket.
/// The burn rate of an error ratio against a budget (the allowed error ratio): how many times
/// faster than the window allows the budget is spent. `None` for no budget (zero or less) or a
/// ratio that is not a number.
pub fn burn(ratio: f64, budget: f64) -> Option<f64> {
    (budget > 0.0).then(|| ratio / budget).filter(|b| b.is_finite())
}

pub fn default_tiers(window: Duration) -> Vec<Tier> {
    WORKBOOK
        .iter()
        .filter(|(_, long, _, _)| *long <= window)
        .map(|&(share_percent, long, short, severity)| {
            // factor * 10^4 = share% * window / long * 100, rounded half up.
            let num = u128::from(share_percent) * u128::from(window.as_millis()) * 100;
            let den = u128::from(long.as_millis());
            let scaled = ((num * 2 + den) / (2 * den)).max(10_000);
            Tier {
                long,
                short,
                factor: Decimal::new(scaled as i128, 4).to_string(),
                severity,
                for_: None,
            }
        })
        .collect()
}

/// Half the short window (long enough to ride out one bad scrape, short next to the time the
/// long window needs to reach the threshold), rounded down to whole evaluation intervals of the
/// alerts. Prometheus acts on `for` only at evaluations, so at one-minute evaluations a `for` of
/// 2m30s holds for 3m, half a minute longer than the same rules held at 30s evaluations; 2m holds
/// for 2m. A half shorter than one interval is kept as is: it holds for one interval either way.
pub fn default_for(short: Duration, interval: Duration) -> Duration {
    let half = short.as_millis() / 2;
    let step = interval.as_millis();
    if step == 0 || half < step {
        return Duration::from_millis(half);
    }
    Duration::from_millis(half - half % step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(window: Duration) -> Vec<(String, String, String, Severity, String)> {
        default_tiers(window)
            .into_iter()
            .map(|t| {
                (
                    t.long.to_string(),
                    t.short.to_string(),
                    t.factor,
                    t.severity,
                    t.for_
                        .unwrap_or_else(|| default_for(t.short, Duration::minutes(1)))
                        .to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn thirty_days_gives_the_workbook_tiers() {
        use Severity::*;
        let s = |a: &str| a.to_string();
        assert_eq!(
            summary(Duration::days(30)),
            vec![
                (s("1h"), s("5m"), s("14.4"), Page, s("2m")),
                (s("6h"), s("30m"), s("6"), Page, s("15m")),
                (s("1d"), s("2h"), s("3"), Ticket, s("1h")),
                (s("3d"), s("6h"), s("1"), Ticket, s("3h")),
            ]
        );
    }

    #[test]
    fn the_default_for_is_half_the_short_window_in_whole_evaluations() {
        let d = |t: &str| Duration::parse(t).unwrap();
        let for_ = |short, interval| default_for(d(short), d(interval)).to_string();
        assert_eq!(for_("5m", "1m"), "2m");
        assert_eq!(for_("5m", "30s"), "2m30s");
        assert_eq!(for_("5m", "5s"), "2m30s");
        assert_eq!(for_("5m", "45s"), "2m15s");
        assert_eq!(for_("30m", "1m"), "15m");
        assert_eq!(for_("6h", "1m"), "3h");
        // Under one interval: kept, since it holds for one evaluation either way.
        assert_eq!(for_("1m", "1m"), "30s");
        assert_eq!(for_("90s", "1m"), "45s");
        assert_eq!(for_("3m", "1m"), "1m");
    }

    #[test]
    fn other_windows_keep_the_budget_shares() {
        let factors = |d| {
            default_tiers(Duration::days(d))
                .into_iter()
                .map(|t| t.factor)
                .collect::<Vec<_>>()
        };
        assert_eq!(factors(28), ["13.44", "5.6", "2.8", "1"]);
        // 7d: 2% of a week's budget in an hour is a 3.36x burn; slower tiers are clamped to 1x.
        assert_eq!(factors(7), ["3.36", "1.4", "1", "1"]);
        // A 1-day window cannot look back 3 days.
        assert_eq!(factors(1), ["1", "1", "1"]);
    }
}
