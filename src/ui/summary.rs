//! What the pages say of one SLO, from its cached object alone: its state, budget, burn and
//! calibration in words and numbers. Pure: the list of ten thousand SLOs is summarised per
//! request, without a query.

use crate::api::condition::{FALSE, READY, SIGNAL_HEALTHY, TRUE};
use crate::api::{BudgetState, ServiceLevelObjective};
use crate::cache::Guarded;
use crate::duration::Duration;

/// The state an SLO's row shows, worst first (the order of a sort by state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// The object does not deserialize, or its spec is refused.
    Invalid,
    Exhausted,
    Burning,
    /// No budget read (yet), or the signal cannot be trusted.
    NoData,
    Healthy,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Invalid,
        State::Exhausted,
        State::Burning,
        State::NoData,
        State::Healthy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Invalid => "Invalid",
            State::Exhausted => "Exhausted",
            State::Burning => "Burning",
            State::NoData => "NoData",
            State::Healthy => "Healthy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
    }

    /// What the state means, for a tooltip.
    pub fn explained(self) -> &'static str {
        match self {
            State::Invalid => "The SLO is refused: its Ready condition says why; its last good rules are kept",
            State::Exhausted => "No error budget left over the window",
            State::Burning => "A burn-rate alert fires: the budget is being spent faster than it may",
            State::NoData => "No budget read from Prometheus yet, or the signal cannot be trusted (see SignalHealthy)",
            State::Healthy => "Budget left and no burn-rate alert firing",
        }
    }
}

/// Whether the objective fits the service, from the long-run burn rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fit {
    /// The service keeps missing it: the objective is tighter than the service delivers.
    TooTight,
    /// The service beats it by far: the objective promises less than the service delivers.
    TooLoose,
    Fits,
    /// Not enough history yet (or calibration is off, or nothing recorded).
    Unknown,
}

impl Fit {
    pub fn as_str(self) -> &'static str {
        match self {
            Fit::TooTight => "too tight",
            Fit::TooLoose => "too loose",
            Fit::Fits => "fits",
            Fit::Unknown => "—",
        }
    }
}

/// One SLO as its row and tiles show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub state: State,
    /// Fraction of the budget left (1 = untouched).
    pub remaining: Option<f64>,
    /// The burn rate over the last hour, when recorded.
    pub burn_1h: Option<f64>,
    pub long_run: Option<f64>,
    pub fit: Fit,
    /// Why the state is what it is, in a sentence, when it is not plain (refused, no data).
    pub why: Option<String>,
}

/// The long run the calibration alerts wait for: at least 28 days (and the window).
const CALIBRATION_HISTORY: Duration = Duration::days(28);

pub fn summarise(guarded: &Guarded) -> Summary {
    match &guarded.0 {
        Ok(slo) => of(slo),
        Err(e) => Summary {
            state: State::Invalid,
            remaining: None,
            burn_1h: None,
            long_run: None,
            fit: Fit::Unknown,
            why: Some(format!("cannot be read: {e}")),
        },
    }
}

pub fn of(slo: &ServiceLevelObjective) -> Summary {
    let status = slo.status.as_ref();
    let budget = status.and_then(|s| s.budget.as_ref());
    let condition = |type_: &str| {
        status
            .into_iter()
            .flat_map(|s| s.conditions.iter())
            .find(|c| c.type_ == type_)
    };
    let ready = condition(READY);
    let refused = ready.is_some_and(|c| c.status == FALSE);
    let state = match budget.map(|b| b.state) {
        _ if refused => State::Invalid,
        Some(BudgetState::Exhausted) => State::Exhausted,
        Some(BudgetState::Burning) => State::Burning,
        Some(BudgetState::Healthy) => State::Healthy,
        Some(BudgetState::NoData) | None => State::NoData,
    };
    let why = match state {
        State::Invalid => ready.map(|c| c.message.clone()),
        State::NoData => {
            let signal = condition(SIGNAL_HEALTHY).filter(|c| c.status != TRUE);
            match (budget, signal) {
                (_, Some(c)) => Some(format!("{}: {}", c.reason, c.message)),
                (Some(b), None) if b.covered.is_some() => Some(format!(
                    "Prometheus holds {} of the {} window",
                    b.covered.as_deref().unwrap_or_default(),
                    slo.spec.window
                )),
                (None, None) => Some("no budget read from Prometheus yet".to_string()),
                _ => None,
            }
        }
        _ => None,
    };
    let long_run = budget.and_then(|b| b.long_run_burn_rate);
    Summary {
        state,
        remaining: budget.and_then(|b| b.remaining),
        burn_1h: budget.and_then(|b| b.burn_rates.get("1h").copied()),
        long_run,
        fit: fit(slo, long_run, budget.and_then(|b| b.long_run_covered.as_deref())),
        why,
    }
}

/// The calibration verdict, with the thresholds the SLO's calibration alerts use.
fn fit(slo: &ServiceLevelObjective, long_run: Option<f64>, covered: Option<&str>) -> Fit {
    let calibration = slo.spec.alerting.calibration.as_deref();
    if calibration.is_some_and(|c| !c.enabled) {
        return Fit::Unknown;
    }
    let (Some(burn), Some(covered)) = (long_run, covered.and_then(|c| Duration::parse(c).ok())) else {
        return Fit::Unknown;
    };
    let window = Duration::parse(&slo.spec.window).unwrap_or(CALIBRATION_HISTORY);
    if covered < CALIBRATION_HISTORY.max(window) {
        return Fit::Unknown;
    }
    let above = calibration
        .and_then(|c| c.too_tight.as_ref())
        .and_then(|a| a.above)
        .unwrap_or(crate::validate::DEFAULT_TOO_TIGHT_ABOVE);
    let below = calibration
        .and_then(|c| c.too_loose.as_ref())
        .and_then(|a| a.below)
        .unwrap_or(crate::validate::DEFAULT_TOO_LOOSE_BELOW);
    if burn > above {
        Fit::TooTight
    } else if burn < below {
        Fit::TooLoose
    } else {
        Fit::Fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(status: serde_json::Value) -> ServiceLevelObjective {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"objective": 99.9, "window": "30d", "indicator": {"raw": {"errorRatio": "x"}}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn the_state_follows_the_budget_and_a_refused_spec_wins() {
        let s = of(&slo(serde_json::json!({
            "conditions": [{"type": "Ready", "status": "True", "reason": "RulesApplied", "message": "", "lastTransitionTime": "2027-01-01T00:00:00Z"}],
            "budget": {"remaining": 0.42, "burnRates": {"1h": 14.4, "5m": 20}, "state": "Burning",
                        "longRunBurnRate": 0.9, "longRunCovered": "40d"},
        })));
        assert_eq!(
            (s.state, s.remaining, s.burn_1h, s.fit, s.why),
            (State::Burning, Some(0.42), Some(14.4), Fit::Fits, None)
        );
        let refused = of(&slo(serde_json::json!({
            "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": "spec.window: bad", "lastTransitionTime": "2027-01-01T00:00:00Z"}],
            "budget": {"remaining": 0.42, "state": "Healthy"},
        })));
        assert_eq!(
            (refused.state, refused.why.as_deref()),
            (State::Invalid, Some("spec.window: bad"))
        );
    }

    #[test]
    fn no_data_says_why() {
        assert_eq!(
            of(&slo(serde_json::json!({}))).why.as_deref(),
            Some("no budget read from Prometheus yet")
        );
        let blind = of(&slo(serde_json::json!({
            "conditions": [{"type": "SignalHealthy", "status": "False", "reason": "ScrapeIntervalLonger", "message": "sampled every 2m", "lastTransitionTime": "2027-01-01T00:00:00Z"}],
            "budget": {"remaining": 0.9, "state": "NoData"},
        })));
        assert_eq!(
            (blind.state, blind.why.as_deref()),
            (State::NoData, Some("ScrapeIntervalLonger: sampled every 2m"))
        );
        let young = of(&slo(
            serde_json::json!({"budget": {"state": "NoData", "covered": "9d"}}),
        ));
        assert_eq!(young.why.as_deref(), Some("Prometheus holds 9d of the 30d window"));
    }

    #[test]
    fn calibration_waits_for_the_long_run_then_compares_with_the_thresholds() {
        let with = |burn: f64, covered: &str| {
            of(&slo(
                serde_json::json!({"budget": {"state": "Healthy", "longRunBurnRate": burn, "longRunCovered": covered}}),
            ))
            .fit
        };
        assert_eq!(with(3.0, "20d"), Fit::Unknown, "less than 28 days");
        assert_eq!(with(3.0, "30d"), Fit::TooTight);
        assert_eq!(with(0.01, "30d"), Fit::TooLoose);
        assert_eq!(with(1.0, "90d"), Fit::Fits);
    }

    #[test]
    fn states_parse_back_from_their_names() {
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        assert_eq!(State::parse("burning"), Some(State::Burning));
        assert_eq!(State::parse("on fire"), None);
    }
}
