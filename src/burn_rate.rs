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
    pub for_: Duration,
}

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
                for_: default_for(short),
            }
        })
        .collect()
}

/// Half the short window: long enough to ride out one bad scrape, short next to the time the
/// long window needs to reach the threshold.
pub fn default_for(short: Duration) -> Duration {
    Duration::from_millis(short.as_millis() / 2)
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
                    t.for_.to_string(),
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
                (s("1h"), s("5m"), s("14.4"), Page, s("2m30s")),
                (s("6h"), s("30m"), s("6"), Page, s("15m")),
                (s("1d"), s("2h"), s("3"), Ticket, s("1h")),
                (s("3d"), s("6h"), s("1"), Ticket, s("3h")),
            ]
        );
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
