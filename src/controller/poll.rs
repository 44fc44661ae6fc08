//! The poll loop: every interval, one reading of every SLO's budget from Prometheus (a fixed
//! number of queries, [`crate::budget::Poller`]). The reading is handed to the policy
//! reconciler through its context ([`PolicyContext::set_reading`]) and every policy is
//! triggered at once ([`triggers`]); each policy reconcile then takes the samples of its own
//! SLOs from that one reading. Only after that, `status.budget` and the `SignalHealthy`
//! condition of each SLO are written, where the rounded values changed.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures::{Stream, StreamExt};
use kube::api::Patch;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::context::PolicyContext;
use crate::api::{BudgetState, BudgetStatus, ServiceLevelObjective};
use crate::budget::poller::Poller;
use crate::budget::{Reading, SloSamples, Snapshot, TRAFFIC_WINDOW, budget_status, samples_for};
use crate::metrics::SloLabels;

/// A stream that yields once per poll, for `Controller::reconcile_all_on`.
pub fn triggers(rx: watch::Receiver<u64>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
}

pub async fn poll_loop(
    poller: Option<Poller>,
    shared: Arc<PolicyContext>,
    trigger: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = shared.stores.wait_until_ready() => {}
        _ = shutdown.cancelled() => return,
    }
    let ledgers = super::releases::Ledgers::default();
    let (poller, shared, trigger, ledgers) = (&poller, &shared, &trigger, &ledgers);
    every(shared.poll_interval, &shutdown, || async move {
        let reading = match poller {
            None => Reading::Disabled,
            Some(p) => match p.poll(&shared.metrics, &shared.request_windows()).await {
                Ok(snapshot) => Reading::Ok(Arc::new(snapshot)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read budgets from Prometheus; policies hold what they hold");
                    Reading::Failed(e.to_string())
                }
            },
        };
        shared.set_reading(reading.clone());
        // Policies first: enforcement should not wait for thousands of status writes.
        trigger.send_modify(|cycle| *cycle += 1);
        if let Reading::Ok(snapshot) = &reading {
            write_budgets(shared, snapshot, ledgers).await;
        }
    })
    .await;
}

/// Runs `cycle` at the start of every `period` until `shutdown`. Cycles start on the period
/// however long each takes; one that overruns delays the next (no burst of catch-up cycles).
/// Sleeping a whole period after each cycle instead would stretch the time from a burn to its
/// enforcement by the cycle's length (the queries and thousands of status writes).
async fn every<F, Fut>(period: StdDuration, shutdown: &CancellationToken, mut cycle: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        cycle().await;
    }
}

/// The merge patch from the current `status.budget` to `next`: a value that is gone (a burn
/// rate no longer recorded, the budget turned NaN) is sent as `null`.
fn budget_patch(current: Option<&BudgetStatus>, next: &BudgetStatus) -> serde_json::Value {
    let from = current.and_then(|c| serde_json::to_value(c).ok()).unwrap_or_default();
    let to = serde_json::to_value(next).unwrap_or_default();
    json!({"status": {"budget": crate::merge_patch::diff(&from, &to)}})
}

/// Equal as far as `kubectl get slo` can tell: the time of evaluation alone is not a change.
fn same_budget(a: Option<&BudgetStatus>, b: &BudgetStatus) -> bool {
    a.is_some_and(|a| {
        a.remaining == b.remaining
            && a.burn_rates == b.burn_rates
            && a.state == b.state
            && a.long_run_burn_rate == b.long_run_burn_rate
            && a.long_run_covered == b.long_run_covered
            && a.scrape_interval == b.scrape_interval
            && a.signal == b.signal
            && a.covered == b.covered
    })
}

async fn write_budgets(shared: &PolicyContext, snapshot: &Snapshot, ledgers: &super::releases::Ledgers) {
    let at = snapshot.at.unwrap_or_else(jiff::Timestamp::now);
    let enforced = shared.enforced_slos();
    let followed = super::releases::Followed::gather(shared);
    let mut writes = Vec::new();
    shared.stores.for_each_slo(|slo| {
        let key = (slo.namespace().unwrap_or_default(), slo.name_any());
        let samples = samples_for(slo, snapshot);
        let window_requests = crate::duration::Duration::parse(&slo.spec.window)
            .ok()
            .and_then(|w| samples.as_ref()?.requests.get(&w).copied());
        let ledger = ledgers.update(
            slo,
            samples.as_ref(),
            &followed,
            window_requests,
            shared.release_event_share,
            at,
            &shared.metrics,
        );
        let budget = budget_status(samples.as_ref(), at);
        let labels = SloLabels {
            namespace: key.0.clone(),
            slo: key.1.clone(),
        };
        if budget.state == BudgetState::Exhausted && !enforced.contains(&key) {
            shared.metrics.budget_exhausted_unenforced.get_or_create(&labels).set(1);
        } else {
            shared.metrics.budget_exhausted_unenforced.remove(&labels);
        }
        if budget.signal.is_some() {
            shared.metrics.signal_unhealthy.get_or_create(&labels).set(1);
        } else {
            shared.metrics.signal_unhealthy.remove(&labels);
        }
        let current = slo.status.as_ref().and_then(|s| s.budget.as_ref());
        let conditions = slo.status.as_ref().map_or(&[][..], |s| s.conditions.as_slice());
        let signal = signal_condition(
            samples.as_ref(),
            slo.spec.alerting.min_requests.unwrap_or(0),
            &budget,
            conditions,
            slo.metadata.generation,
            at,
        );
        let budget_changed = !same_budget(current, &budget);
        let (releases, release_events) = match ledger {
            Some(l) => (l.status, l.events),
            None => (None, Vec::new()),
        };
        if budget_changed || signal.is_some() || releases.is_some() || !release_events.is_empty() {
            let events: Vec<_> = signal_event(current, &budget)
                .into_iter()
                .chain(release_events)
                .collect();
            let reference = slo.object_ref(&());
            let mut patch = if budget_changed {
                budget_patch(current, &budget)
            } else {
                json!({"status": {}})
            };
            if let Some(releases) = releases {
                patch["status"]
                    .as_object_mut()
                    .expect("a status object")
                    .extend(releases);
            }
            if let Some(signal) = signal {
                // A merge patch replaces the whole list: the other conditions go as cached
                // (the SLO reconciler does the same with this one, so neither drops the other's
                // for longer than a cycle).
                patch["status"]["conditions"] = json!(crate::api::condition::replaced(conditions, signal));
            }
            writes.push((key, patch, (reference, events)));
        }
    });
    ledgers.finish_poll(&shared.metrics);
    futures::stream::iter(writes)
        .for_each_concurrent(8, |((ns, name), patch, (reference, events))| async move {
            let api: Api<ServiceLevelObjective> = Api::namespaced(shared.client.clone(), &ns);
            match api
                .patch_status(&name, &crate::api::merge_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    shared.metrics.write("budget", "status");
                    // Told once, with the status that says it: a failed write is retried next
                    // cycle, Event and all.
                    for (type_, reason, note) in events {
                        super::events::publish(&shared.recorder, &reference, type_, reason, "Evaluate", note).await;
                    }
                }
                Err(e) => {
                    // Its ledger is written again next cycle, whether it changed or not.
                    if let Some(uid) = &reference.uid {
                        ledgers.unwritten(uid);
                    }
                    tracing::warn!(namespace = %ns, slo = %name, error = %e, "cannot write status.budget");
                }
            }
        })
        .await;
}

pub use crate::api::condition::SIGNAL_HEALTHY;

/// The `SignalHealthy` condition an SLO should have, when it differs from the one it has:
/// `True` while its tiles hold data and Prometheus holds its window; `False` (reason
/// `ScrapeIntervalLonger` or `HistoryShort`, the message naming the measured and the assumed
/// interval or what Prometheus holds, and the fix); `Unknown` while Prometheus has no series of
/// it.
fn signal_condition(
    samples: Option<&SloSamples>,
    min_requests: u64,
    budget: &BudgetStatus,
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    generation: Option<i64>,
    at: jiff::Timestamp,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    let (status, reason, message) = match samples {
        None => (
            "Unknown",
            "NoSeries",
            "Prometheus has no series of this SLO's rules yet".to_string(),
        ),
        Some(s) => match (&s.blind, &s.history) {
            (Some(why), _) => ("False", "ScrapeIntervalLonger", why.clone()),
            (None, Some(history)) => ("False", crate::api::condition::HISTORY_SHORT, history.describe()),
            (None, None)
                if min_requests > 0
                    && s.requests
                        .get(&TRAFFIC_WINDOW)
                        .is_some_and(|n| *n < min_requests as f64) =>
            {
                (
                    "False",
                    "TooFewRequests",
                    format!(
                        "{} requests over the last {TRAFFIC_WINDOW}, below alerting.minRequests {min_requests}: a burn alert \
                     fires only once its long window has seen that many (by design, so that a few errors do not page)",
                        s.requests.get(&TRAFFIC_WINDOW).map_or(0.0, |n| n.round())
                    ),
                )
            }
            (None, None) => (
                "True",
                "SignalHealthy",
                format!(
                    "its request series are sampled about every {} and Prometheus holds its window",
                    budget.scrape_interval.as_deref().unwrap_or("(not measured)")
                ),
            ),
        },
    };
    let next =
        crate::api::condition::next_condition(conditions, SIGNAL_HEALTHY, status, reason, message, generation, at);
    let same = conditions.iter().any(|c| {
        c.type_ == next.type_
            && c.status == next.status
            && c.reason == next.reason
            && c.message == next.message
            && c.observed_generation == next.observed_generation
    });
    (!same).then_some(next)
}

/// The Event when an SLO's signal stops being trustworthy (a Warning when its burn alerts are
/// blind; Normal while Prometheus holds less than the window, as for every new SLO) or is again.
/// Only the change between healthy and not: the history message moves every hour.
fn signal_event(
    current: Option<&BudgetStatus>,
    next: &BudgetStatus,
) -> Option<(kube::runtime::events::EventType, &'static str, String)> {
    use kube::runtime::events::EventType;
    // `signal` says only that the signal is blind: short history (every new SLO, for a window)
    // is in `covered` and the condition, not worth an Event for each of ten thousand SLOs.
    match (current.and_then(|c| c.signal.as_ref()), &next.signal) {
        (None, Some(why)) => Some((EventType::Warning, "SignalUnhealthy", format!("blind: {why}"))),
        (Some(_), None) => Some((
            EventType::Normal,
            "SignalHealthy",
            format!(
                "its request series are sampled about every {} and Prometheus holds its window: its tiles hold data",
                next.scrape_interval.as_deref().unwrap_or("unknown")
            ),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::budget::Windows;
    use std::sync::Mutex;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn cycles_start_on_the_period_and_an_overrun_delays_the_next() {
        let start = tokio::time::Instant::now();
        let shutdown = CancellationToken::new();
        let lengths = [10, 45, 5, 5];
        let starts = Mutex::new(Vec::new());
        every(StdDuration::from_secs(30), &shutdown, || {
            let mut starts = starts.lock().unwrap();
            starts.push(start.elapsed().as_secs());
            let length = lengths[starts.len() - 1];
            if starts.len() == lengths.len() {
                shutdown.cancel();
            }
            tokio::time::sleep(StdDuration::from_secs(length))
        })
        .await;
        // Sleeping 30 s after each cycle would start them at 0, 40, 115, 150; catching up on
        // the missed tick at 60 would start the fourth at 90.
        assert_eq!(*starts.lock().unwrap(), [0, 30, 75, 105]);
    }

    #[test]
    fn values_that_are_gone_are_removed() {
        let before = BudgetStatus {
            remaining: Some(-0.2),
            burn_rates: [("5m".to_string(), 20.0), ("1d".to_string(), 3.0)].into(),
            state: BudgetState::Exhausted,
            long_run_burn_rate: Some(1.2),
            long_run_covered: Some("41d3h".into()),
            scrape_interval: Some("2m".into()),
            signal: Some("blind".into()),
            covered: Some("9d".into()),
            evaluated_at: None,
        };
        let after = BudgetStatus {
            burn_rates: [("5m".to_string(), 20.0)].into(),
            ..BudgetStatus::default()
        };
        let patch = budget_patch(Some(&before), &after);
        let budget = &patch["status"]["budget"];
        assert_eq!(budget["remaining"], serde_json::Value::Null);
        assert!(budget.as_object().unwrap().contains_key("remaining"));
        assert_eq!(budget["burnRates"], json!({"1d": null}));
        assert_eq!(budget["state"], "NoData");
        assert_eq!(budget["longRunBurnRate"], serde_json::Value::Null);
        assert!(budget.as_object().unwrap().contains_key("longRunCovered"));
        assert_eq!(budget["scrapeInterval"], serde_json::Value::Null);
        assert!(budget.as_object().unwrap().contains_key("signal"));
    }

    #[test]
    fn a_blind_signal_is_told_once_when_it_starts_and_once_when_it_ends() {
        let seeing = BudgetStatus {
            scrape_interval: Some("30s".into()),
            ..BudgetStatus::default()
        };
        let blind = BudgetStatus {
            scrape_interval: Some("2m".into()),
            signal: Some("its request series are sampled about every 120s".into()),
            ..BudgetStatus::default()
        };
        let (type_, reason, note) = signal_event(Some(&seeing), &blind).unwrap();
        assert_eq!(
            (type_, reason),
            (kube::runtime::events::EventType::Warning, "SignalUnhealthy")
        );
        assert_eq!(note, "blind: its request series are sampled about every 120s");
        assert!(
            signal_event(None, &blind).is_some(),
            "a first reading that is blind says so"
        );
        assert!(signal_event(Some(&blind), &blind).is_none());
        assert!(signal_event(Some(&seeing), &seeing).is_none());
        let (type_, reason, note) = signal_event(Some(&blind), &seeing).unwrap();
        assert_eq!(
            (type_, reason),
            (kube::runtime::events::EventType::Normal, "SignalHealthy")
        );
        assert!(note.contains("every 30s and Prometheus holds its window"), "{note}");
        // Short history (every new SLO): in the status, not an Event.
        let short = SloSamples {
            remaining: Some(0.5),
            scrape_interval: Some(30.0),
            covered: Some(7_200.0),
            ..SloSamples::default()
        }
        .with_history(crate::duration::Duration::days(30), false);
        let new = budget_status(Some(&short), jiff::Timestamp::UNIX_EPOCH);
        assert!(new.covered.is_some(), "{new:?}");
        assert!(signal_event(Some(&seeing), &new).is_none());
        assert!(signal_event(Some(&new), &seeing).is_none());
        assert!(!same_budget(Some(&seeing), &blind));
    }

    #[test]
    fn the_signal_condition_names_why_and_is_written_only_when_it_changes() {
        use crate::budget::History;
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let budget = BudgetStatus {
            scrape_interval: Some("30s".into()),
            ..BudgetStatus::default()
        };
        let healthy = SloSamples::default();
        let c = signal_condition(Some(&healthy), 0, &budget, &[], Some(4), at).unwrap();
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("SignalHealthy", "True", "SignalHealthy")
        );
        assert!(c.message.contains("every 30s"), "{}", c.message);
        assert_eq!(c.observed_generation, Some(4));
        // The same again: nothing to write.
        assert!(signal_condition(Some(&healthy), 0, &budget, std::slice::from_ref(&c), Some(4), at).is_none());
        let blind = SloSamples {
            blind: Some("its request series are sampled about every 120s but its rules assume 30s".into()),
            ..SloSamples::default()
        };
        let b = signal_condition(Some(&blind), 0, &budget, std::slice::from_ref(&c), Some(4), at).unwrap();
        assert_eq!(
            (b.status.as_str(), b.reason.as_str()),
            ("False", "ScrapeIntervalLonger")
        );
        assert!(b.message.contains("120s") && b.message.contains("30s"), "{}", b.message);
        let short = SloSamples {
            history: Some(History {
                window: crate::duration::Duration::days(30),
                covered: Some(9.0 * 86_400.0),
            }),
            ..SloSamples::default()
        };
        let h = signal_condition(Some(&short), 0, &budget, &[], Some(4), at).unwrap();
        assert_eq!((h.status.as_str(), h.reason.as_str()), ("False", "HistoryShort"));
        assert!(
            h.message.starts_with("Prometheus holds 9d of the 30d window"),
            "{}",
            h.message
        );
        let none = signal_condition(None, 0, &budget, &[], Some(4), at).unwrap();
        assert_eq!((none.status.as_str(), none.reason.as_str()), ("Unknown", "NoSeries"));
        // Traffic below the SLO's own minimum: its burn alerts cannot fire, by design.
        let quiet = SloSamples {
            requests: Windows::from([(TRAFFIC_WINDOW, 12.0)]),
            ..SloSamples::default()
        };
        let q = signal_condition(Some(&quiet), 100, &budget, &[], Some(4), at).unwrap();
        assert_eq!((q.status.as_str(), q.reason.as_str()), ("False", "TooFewRequests"));
        assert!(
            q.message
                .starts_with("12 requests over the last 1h, below alerting.minRequests 100"),
            "{}",
            q.message
        );
        assert_eq!(
            signal_condition(Some(&quiet), 10, &budget, &[], Some(4), at)
                .unwrap()
                .status,
            "True"
        );
        assert_eq!(
            signal_condition(Some(&quiet), 0, &budget, &[], Some(4), at)
                .unwrap()
                .status,
            "True"
        );
    }

    #[test]
    fn evaluation_time_alone_is_no_change() {
        let t = |s| {
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::from_second(s).unwrap(),
            ))
        };
        let a = BudgetStatus {
            remaining: Some(0.5),
            state: BudgetState::Healthy,
            evaluated_at: t(1),
            ..BudgetStatus::default()
        };
        let mut b = a.clone();
        b.evaluated_at = t(2);
        assert!(same_budget(Some(&a), &b));
        b.remaining = Some(0.4999);
        assert!(!same_budget(Some(&a), &b));
        assert!(!same_budget(None, &a));
    }
}
