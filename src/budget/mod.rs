//! Reading every SLO's error budget from Prometheus: a fixed handful of queries per poll
//! cycle, split by the `namespace`/`slo` labels of the recorded series (the number of queries
//! does not grow with the number of SLOs), keeping only what the SLO's own rules wrote.
//!
//! The shapes here are what the policy engine consumes; the poller fills them in.

pub mod answer;
pub mod args;
pub mod poller;
pub mod queries;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::ResourceExt;

use crate::api::{BudgetState, BudgetStatus};
use crate::duration::Duration;

pub use args::PrometheusArgs;
pub use poller::Poller;

/// `(namespace, slo name)` as the recorded series label them.
pub type SloKey = (String, String);

/// A number per window, in window order, as a map from window to number would hold them, in
/// one allocation of exactly their size: each of ten thousand SLOs keeps three of these between
/// polls, and a map's smallest node is the size of eleven entries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Windows(Box<[(Duration, f64)]>);

impl Windows {
    pub fn get(&self, window: &Duration) -> Option<&f64> {
        self.0
            .binary_search_by(|(w, _)| w.cmp(window))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Duration, &f64)> + '_ {
        self.0.iter().map(|(w, v)| (w, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Sorted by window; of the same window twice, the last one counts (as a map's insert).
impl FromIterator<(Duration, f64)> for Windows {
    fn from_iter<I: IntoIterator<Item = (Duration, f64)>>(iter: I) -> Self {
        let mut all: Vec<(Duration, f64)> = iter.into_iter().collect();
        // Stable: of equal windows, the last stays last.
        all.sort_by_key(|(w, _)| *w);
        let mut out: Vec<(Duration, f64)> = Vec::with_capacity(all.len());
        for (w, v) in all {
            match out.last_mut() {
                Some(last) if last.0 == w => last.1 = v,
                _ => out.push((w, v)),
            }
        }
        Self(out.into_boxed_slice())
    }
}

impl<const N: usize> From<[(Duration, f64); N]> for Windows {
    fn from(pairs: [(Duration, f64); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl IntoIterator for Windows {
    type Item = (Duration, f64);
    type IntoIter = std::vec::IntoIter<(Duration, f64)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a Windows {
    type Item = (&'a Duration, &'a f64);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (Duration, f64)>, fn(&'a (Duration, f64)) -> (&'a Duration, &'a f64)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(w, v)| (w, v))
    }
}

impl std::ops::Index<&Duration> for Windows {
    type Output = f64;
    fn index(&self, window: &Duration) -> &f64 {
        self.get(window).expect("no such window")
    }
}

/// What Prometheus says about one SLO at one instant. NaN and absent values are `None` / left
/// out: they are never a number the policy acts on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SloSamples {
    /// `slo:error_budget_remaining:ratio` (1 = untouched, ≤ 0 = spent); `None` when absent or NaN.
    pub remaining: Option<f64>,
    /// Burn rate (error ratio / budget) per recorded window; only finite values.
    pub burn_rates: Windows,
    /// `slo:sli_error:ratio_rate<window>` per recorded window, only finite values, while the
    /// budget is not read (then `burn_rates` holds them all, divided by it).
    pub error_ratios: Windows,
    /// `severity` labels of the SLO's burn-rate alerts that are firing.
    pub firing_severities: BTreeSet<String>,
    /// No record of its `sli` group (which evaluates the burn alerts) was read: Prometheus is
    /// restarting, or the rules are not loaded, so an absent alert says nothing.
    pub alerts_unevaluated: bool,
    /// `severity` labels of its burn-rate alerts that are pending and none firing: Prometheus
    /// has not confirmed them yet (their `for`), or restarted and is restoring them.
    pub pending_severities: BTreeSet<String>,
    /// `slo:sli_requests:count<window>` for the windows read (those policies' `minRequests`
    /// need), only finite values.
    pub requests: Windows,
    /// `slo:window_covered:seconds`: how much of the SLO window the data covers.
    pub covered: Option<f64>,
    /// Set while the data does not cover the SLO window (see [`SloSamples::with_history`]).
    pub history: Option<History>,
    /// `slo:long_run_burn:ratio`, when finite.
    pub long_run_burn: Option<f64>,
    /// `slo:long_run_covered:seconds`.
    pub long_run_covered: Option<f64>,
    /// Why the SLO's data is disputed (a second writer of its records); empty when it is not.
    /// A disputed SLO's values are all left out: either writer may be the forger.
    pub disputed: Vec<String>,
    /// `slo:sli_scrape_interval:seconds`: how often its request series are sampled, measured.
    pub scrape_interval: Option<f64>,
    /// Why its short windows and burn alerts cannot see a burn (see [`SloSamples::with_signal`]);
    /// `None` while they can.
    pub blind: Option<String>,
    /// The last tiles of errors and requests of its `sli` group (a few), oldest first: what the
    /// release ledger counts. None for a raw SLI (it has no request count to tile).
    pub tiles: Vec<crate::release::Tile>,
}

/// The share of a window Prometheus must hold data for before the window counts: a few missed
/// evaluations (a Prometheus restart) do not make a budget unknown, a week of retention short of
/// a 30-day window does.
pub const COVERAGE_NEEDED: f64 = 0.99;

/// The data does not cover the SLO window: the budget and the windows of a day or more that it
/// does not cover either count as missing.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub window: Duration,
    /// `slo:window_covered:seconds`, when recorded.
    pub covered: Option<f64>,
}

impl History {
    /// Whether the data covers `w`: a window shorter than a day always (its tiles are recent),
    /// a longer one when the data held covers 99% of it.
    pub fn covers(&self, w: Duration) -> bool {
        w < Duration::days(1)
            || self
                .covered
                .is_some_and(|c| c >= COVERAGE_NEEDED * w.min(self.window).as_millis() as f64 / 1000.0)
    }

    /// The data held, in whole days, or whole hours below a day: it grows by a tile every 5
    /// minutes, and a fleet of SLOs created together must not write every status every hour.
    pub fn held(&self) -> Option<Duration> {
        let c = self.covered.filter(|c| c.is_finite())?.max(0.0);
        Some(if c >= 86_400.0 {
            Duration::days((c / 86_400.0).floor() as u64)
        } else {
            Duration::hours((c / 3600.0).floor() as u64)
        })
    }

    pub fn describe(&self) -> String {
        let held = match self.held() {
            Some(h) if h.as_millis() == 0 => "less than an hour".to_string(),
            Some(h) => h.to_string(),
            None => "no record yet".to_string(),
        };
        format!(
            "Prometheus holds {held} of the {window} window: the budget and longer windows count as missing until it \
             holds {percent}% (spec.partialWindows: true uses them meanwhile)",
            window = self.window,
            percent = COVERAGE_NEEDED * 100.0,
        )
    }
}

/// What the rules of an SLO assume unless its spec says otherwise: the operator's
/// `--scrape-interval` and `--alert-interval`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assumed {
    pub scrape_interval: Duration,
    pub alert_interval: Duration,
}

impl Default for Assumed {
    fn default() -> Self {
        Self {
            scrape_interval: crate::rules::DEFAULT_SCRAPE_INTERVAL,
            alert_interval: crate::rules::DEFAULT_ALERT_INTERVAL,
        }
    }
}

/// One poll cycle's result for every SLO Prometheus knows about.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub slos: BTreeMap<SloKey, SloSamples>,
    /// When the queries were evaluated.
    pub at: Option<jiff::Timestamp>,
    /// What the rules assume where an SLO does not say.
    pub assumed: Assumed,
    /// The windows whose request counts were read.
    pub requests: BTreeSet<Duration>,
}

impl SloSamples {
    /// Fills in the burn rates Prometheus could not give yet from the SLO's own budget: the
    /// budget is recorded by the 5-minute group, which may not have run for a new SLO while its
    /// short windows already show a burn.
    pub fn with_budget(mut self, budget: Option<f64>) -> Self {
        if let Some(budget) = budget
            && !self.error_ratios.is_empty()
        {
            // What Prometheus recorded comes last, and so is kept.
            let filled: Vec<(Duration, f64)> = self
                .error_ratios
                .iter()
                .filter_map(|(w, ratio)| Some((*w, crate::burn_rate::burn(*ratio, budget)?)))
                .chain(self.burn_rates.iter().map(|(w, b)| (*w, *b)))
                .collect();
            self.burn_rates = filled.into_iter().collect();
        }
        self
    }

    /// Marks the SLO blind when its request series are sampled so seldom that the `sli` group's
    /// tiles (`alert_interval` long, reading `scrape_interval` more) cannot hold two samples:
    /// from a tile and the assumed interval on, as `SLOSignalUnhealthy` judges it.
    pub fn with_signal(mut self, scrape_interval: Duration, alert_interval: Duration) -> Self {
        let limit = crate::rules::scrape_interval_limit(scrape_interval, alert_interval);
        self.blind = self.scrape_interval.filter(|m| *m > limit).map(|measured| {
            format!(
                "its request series are sampled about every {}s but its rules assume {scrape_interval}, so its \
                 {alert_interval} tiles stay empty and its short windows and burn alerts cannot see a burn; set \
                 spec.scrapeInterval to the real interval",
                measured.round()
            )
        });
        self
    }

    /// Marks the history short while the data covers less than [`COVERAGE_NEEDED`] of the SLO
    /// `window`, unless the SLO uses `partial` windows.
    pub fn with_history(mut self, window: Duration, partial: bool) -> Self {
        let history = History {
            window,
            covered: self.covered.filter(|c| c.is_finite()),
        };
        self.history = (!partial && !history.covers(window)).then_some(history);
        self
    }

    /// Whether the data covers `window` (see [`History::covers`]).
    pub fn covers(&self, window: Duration) -> bool {
        self.history.as_ref().is_none_or(|h| h.covers(window))
    }

    /// `NoData` when the budget is absent or NaN or the data does not cover the window,
    /// `Exhausted` when remaining ≤ 0, `NoData` when the burn signal is blind, `Burning` when a
    /// burn alert fires, else `Healthy`.
    pub fn state(&self) -> BudgetState {
        match self.remaining {
            None => BudgetState::NoData,
            Some(_) if self.history.is_some() => BudgetState::NoData,
            Some(r) if r <= 0.0 => BudgetState::Exhausted,
            Some(_) if self.blind.is_some() => BudgetState::NoData,
            Some(_) if !self.firing_severities.is_empty() => BudgetState::Burning,
            Some(_) => BudgetState::Healthy,
        }
    }
}

/// `status.budget` for an SLO: values rounded to 4 significant digits so that small drifts do
/// not cause a status write every cycle. `samples` is `None` when Prometheus has nothing for it.
pub fn budget_status(samples: Option<&SloSamples>, at: jiff::Timestamp) -> BudgetStatus {
    let empty = SloSamples::default();
    let s = samples.unwrap_or(&empty);
    BudgetStatus {
        remaining: s.remaining.map(round4),
        burn_rates: s.burn_rates.iter().map(|(w, v)| (w.to_string(), round4(*v))).collect(),
        state: s.state(),
        long_run_burn_rate: s.long_run_burn.map(round4),
        long_run_covered: s.long_run_covered.map(|seconds| {
            // Whole hours: the record moves once an hour, and a status write a cycle is not wanted.
            Duration::hours((seconds / 3600.0).round().max(0.0) as u64).to_string()
        }),
        scrape_interval: s
            .scrape_interval
            .filter(|m| m.is_finite() && *m >= 0.0)
            .map(|m| Duration::from_millis((m.round() as u64).saturating_mul(1000)).to_string()),
        signal: s.blind.clone(),
        covered: s.history.as_ref().and_then(History::held).map(|h| h.to_string()),
        evaluated_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at)),
    }
}

/// The window over which an SLO's traffic is held against its `alerting.minRequests`.
pub const TRAFFIC_WINDOW: Duration = Duration::hours(1);

/// The last poll, as the policies read it.
#[derive(Clone, Debug)]
pub enum Reading {
    /// No `--prometheus-url`.
    Disabled,
    Failed(String),
    Ok(Arc<Snapshot>),
}

/// What the snapshot says about an SLO, with burn rates from its own budget where Prometheus
/// has not recorded one yet.
pub fn samples_for(slo: &crate::api::ServiceLevelObjective, snapshot: &Snapshot) -> Option<SloSamples> {
    let key = (slo.namespace().unwrap_or_default(), slo.name_any());
    // The interval its rules assume: its own (as the CRD and validate bound it), else the flag's.
    let scrape_interval = slo
        .spec
        .scrape_interval
        .as_deref()
        .and_then(|d| crate::duration::Duration::parse(d).ok())
        .unwrap_or(snapshot.assumed.scrape_interval);
    let window = crate::duration::Duration::parse(&slo.spec.window).ok();
    snapshot.slos.get(&key).cloned().map(|s| {
        let s = s
            .with_budget(budget_of(&slo.spec))
            .with_signal(scrape_interval, snapshot.assumed.alert_interval);
        match window {
            Some(window) => s.with_history(window, slo.spec.partial_windows),
            None => s,
        }
    })
}

/// The allowed error ratio of a spec (`objective: 99.95` → 0.0005, computed in decimal).
pub fn budget_of(spec: &crate::api::ServiceLevelObjectiveSpec) -> Option<f64> {
    let percent = crate::decimal::Decimal::from_f64(spec.objective)?;
    let budget = crate::decimal::Decimal::new(100, 0).checked_sub(percent)?.shift_left(2);
    budget.is_positive().then(|| budget.to_f64())
}

/// Rounds to 4 significant digits.
pub fn round4(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 3 - v.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_is_blind_past_a_tile_and_the_assumed_interval() {
        let (thirty, minute, two) = (
            Duration::parse("30s").unwrap(),
            Duration::minutes(1),
            Duration::minutes(2),
        );
        let measured = |seconds: f64| SloSamples {
            remaining: Some(0.5),
            scrape_interval: Some(seconds),
            ..SloSamples::default()
        };
        // Up to 1m + 30s the tiles still hold two samples often enough.
        for seconds in [15.0, 30.0, 60.0, 90.0] {
            let s = measured(seconds).with_signal(thirty, minute);
            assert_eq!(s.blind, None, "{seconds}");
            assert_eq!(s.state(), BudgetState::Healthy, "{seconds}");
        }
        let blind = measured(120.0).with_signal(thirty, minute);
        let why = blind.blind.clone().unwrap();
        assert!(
            why.contains("about every 120s but its rules assume 30s") && why.contains("spec.scrapeInterval"),
            "{why}"
        );
        assert_eq!(blind.state(), BudgetState::NoData);
        // The SLO's own interval moves the limit: 2m + 1m.
        assert_eq!(measured(120.0).with_signal(two, minute).blind, None);
        assert!(measured(181.0).with_signal(two, minute).blind.is_some());
        // What the 5-minute tiles say of the budget still counts.
        let spent = SloSamples {
            remaining: Some(-0.1),
            ..measured(120.0)
        };
        assert_eq!(spent.with_signal(thirty, minute).state(), BudgetState::Exhausted);
        // Nothing measured (a raw SLI), nothing said.
        assert_eq!(SloSamples::default().with_signal(thirty, minute).blind, None);
        let status = budget_status(Some(&blind), jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(status.scrape_interval.as_deref(), Some("2m"));
        assert_eq!(status.signal.as_deref(), Some(why.as_str()));
        assert_eq!(status.state, BudgetState::NoData);
    }

    #[test]
    fn windows_read_as_a_map_of_them() {
        let (five, one, day) = (Duration::minutes(5), Duration::hours(1), Duration::days(1));
        let w: Windows = [(day, 3.0), (five, 1.0), (one, 2.0), (five, 4.0)].into_iter().collect();
        assert_eq!(
            w.iter().map(|(w, v)| (*w, *v)).collect::<Vec<_>>(),
            vec![(five, 4.0), (one, 2.0), (day, 3.0)],
            "in window order, the last of a window twice kept"
        );
        assert_eq!(
            (w.get(&one), w.get(&Duration::hours(6)), w.len()),
            (Some(&2.0), None, 3)
        );
        assert_eq!(w[&day], 3.0);
        assert!(Windows::default().is_empty());
        assert_eq!(w.clone().into_iter().count(), 3);
    }

    #[test]
    fn burn_rates_fall_back_to_the_spec_budget() {
        let spec: crate::api::ServiceLevelObjectiveSpec =
            serde_yaml::from_str("{objective: 99.95, window: 30d, indicator: {raw: {errorRatio: 'x[$window]'}}}")
                .unwrap();
        assert_eq!(budget_of(&spec), Some(0.0005));
        let five = Duration::minutes(5);
        let one = Duration::hours(1);
        let s = SloSamples {
            burn_rates: Windows::from([(one, 2.0)]),
            error_ratios: Windows::from([(five, 0.01), (one, 0.1)]),
            ..SloSamples::default()
        }
        .with_budget(budget_of(&spec));
        assert_eq!(s.burn_rates[&five], 20.0, "filled from the spec's budget");
        assert_eq!(s.burn_rates[&one], 2.0, "what Prometheus recorded is kept");
        assert_eq!(
            s.state(),
            BudgetState::NoData,
            "a burn rate alone says nothing of the budget"
        );
    }

    #[test]
    fn rounds_to_four_significant_digits() {
        for (v, want) in [
            (0.87314159, 0.8731),
            (28.799999999999997, 28.8),
            (14.4, 14.4),
            (1234.5678, 1235.0),
            (0.000123456, 0.0001235),
            (-0.25001, -0.25),
            (0.0, 0.0),
        ] {
            assert_eq!(round4(v), want, "{v}");
        }
        assert!(round4(f64::NAN).is_nan());
    }

    #[test]
    fn any_number_prometheus_returns_makes_a_status() {
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        for v in [
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            5e-324,
            -1.0,
        ] {
            let s = SloSamples {
                remaining: Some(v),
                burn_rates: Windows::from([(Duration::hours(1), v)]),
                long_run_burn: Some(v),
                long_run_covered: Some(v),
                ..SloSamples::default()
            };
            let status = budget_status(Some(&s), at);
            assert!(status.long_run_covered.is_some(), "{v}");
        }
    }
}
