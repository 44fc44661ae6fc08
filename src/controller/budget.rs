//! The poll loop and what the policy reconciler shares with it: every interval, one reading of
//! every SLO's budget from Prometheus (a fixed number of queries), kept for the policies,
//! which are then all triggered; then `status.budget` of each SLO, written only where the
//! rounded values changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration as StdDuration;

use futures::{Stream, StreamExt};
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use crate::api::{BudgetState, BudgetStatus, ErrorBudgetOverride, ErrorBudgetPolicy, ServiceLevelObjective};
use crate::budget::poller::Poller;
use crate::budget::{SloSamples, Snapshot, budget_of, budget_status};
use crate::enforce::Outcome;
use crate::enforce::cache::Targets;
use crate::metrics::{KindLabels, Metrics, PolicyKindLabels, PolicyLabels, SloLabels};

/// The last poll.
#[derive(Clone, Debug)]
pub enum Reading {
    /// No `--prometheus-url`.
    Disabled,
    Failed(String),
    Ok(Arc<Snapshot>),
}

/// The watch caches of one watched scope (a namespace, or the whole cluster).
#[derive(Clone)]
pub struct Scope {
    pub slos: Store<DeserializeGuard<ServiceLevelObjective>>,
    /// The SLOs of `slos` by namespace.
    pub slo_index: super::index::ByNamespace,
    /// Each SLO the watch behind `slos` adds or changes, as cached there: the SLO reconciler
    /// of a term runs on this cache instead of keeping a second one.
    pub slo_changes: tokio::sync::broadcast::Sender<super::SloChange>,
    pub overrides: Store<ErrorBudgetOverride>,
    pub deployments: Targets,
    pub rollouts: Targets,
    /// True once `slos` holds the first complete list. Waited on through this, never through
    /// the store: its `wait_until_ready` wakes only the last of several waiters, and the SLO
    /// reconciler waits there already.
    pub slos_synced: watch::Receiver<bool>,
}

impl Scope {
    /// Until `slos` holds the first complete list.
    pub async fn slos_synced(&self) {
        let _ = self.slos_synced.clone().wait_for(|synced| *synced).await;
    }
}

#[derive(Clone)]
pub struct Stores(pub Vec<Scope>);

/// A readable SLO as the watch cache holds it: shared, never copied.
#[derive(Clone, Debug)]
pub struct CachedSlo(Arc<DeserializeGuard<ServiceLevelObjective>>);

impl CachedSlo {
    /// `None` for an object that did not deserialize (it reports itself in its own status).
    pub fn new(cached: Arc<DeserializeGuard<ServiceLevelObjective>>) -> Option<Self> {
        cached.0.is_ok().then_some(Self(cached))
    }
}

impl std::ops::Deref for CachedSlo {
    type Target = ServiceLevelObjective;

    fn deref(&self) -> &ServiceLevelObjective {
        match &self.0.0 {
            Ok(slo) => slo,
            Err(_) => unreachable!("CachedSlo::new keeps only readable SLOs"),
        }
    }
}

impl Stores {
    /// Calls `f` with every readable SLO (one that does not deserialize reports itself in its
    /// own status), straight from the cache: a poll of 10,000 SLOs copies none of them.
    pub fn for_each_slo(&self, mut f: impl FnMut(&ServiceLevelObjective)) {
        for scope in &self.0 {
            for guard in scope.slos.state() {
                if let Ok(slo) = guard.0.as_ref() {
                    f(slo);
                }
            }
        }
    }

    /// The readable SLOs of a namespace whose name `keep` accepts, shared with the cache (a
    /// poll of a thousand policies copied every SLO ten times over).
    pub fn slos_in(&self, namespace: &str, keep: impl Fn(&str) -> bool) -> Vec<CachedSlo> {
        self.0
            .iter()
            .flat_map(|s| s.slo_index.get(namespace, &s.slos, &(), &keep))
            .filter_map(CachedSlo::new)
            .collect()
    }

    /// The cached Deployments (`rollouts: false`) or Rollouts of a namespace; `None` when its
    /// cache cannot answer (not synced, kind not served).
    pub fn workloads_in(&self, namespace: &str, rollouts: bool) -> Option<Vec<kube::api::DynamicObject>> {
        let mut out = Vec::new();
        for scope in &self.0 {
            let targets = if rollouts { &scope.rollouts } else { &scope.deployments };
            out.extend(targets.in_namespace(namespace)?);
        }
        Some(out)
    }

    pub fn overrides_in(&self, namespace: &str) -> Vec<Arc<ErrorBudgetOverride>> {
        self.0
            .iter()
            .flat_map(|s| s.overrides.state())
            .filter(|o| o.namespace().as_deref() == Some(namespace))
            .collect()
    }

    async fn wait_until_ready(&self) {
        for s in &self.0 {
            s.slos_synced().await;
            let _ = s.overrides.wait_until_ready().await;
        }
    }
}

/// What a policy holds, for the gauges.
/// The kinds of object a policy can hold.
const HELD_KINDS: [&str; 3] = ["Deployment", "Rollout", "Namespace"];

fn held_labels(policy: &(String, String), kind: &'static str) -> PolicyKindLabels {
    PolicyKindLabels {
        namespace: policy.0.clone(),
        policy: policy.1.clone(),
        kind,
    }
}

#[derive(Default)]
struct Holds {
    slos: BTreeSet<String>,
    objects: BTreeSet<(&'static str, String)>,
}

/// The windows an SLO records; `None` for an invalid spec.
type RecordedWindows = Option<BTreeSet<crate::duration::Duration>>;

/// What the poll loop and the policy reconciler share.
pub struct Shared {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub backoff: Backoff<(String, String)>,
    pub poll_interval: StdDuration,
    pub stores: Stores,
    /// The policies of each watched scope, as their reconcilers' watches cache them.
    policies: Vec<Store<ErrorBudgetPolicy>>,
    /// Whether this replica leads (the Lease is ours, as the API server shows it).
    leading: watch::Receiver<bool>,
    reading: RwLock<Option<Reading>>,
    /// SLO uid → (generation, the windows it records), see [`Shared::recorded_windows`].
    windows: Mutex<std::collections::HashMap<String, (Option<i64>, RecordedWindows)>>,
    /// (namespace, policy) → what it holds.
    holds: Mutex<BTreeMap<(String, String), Holds>>,
}

impl Shared {
    pub fn new(
        client: Client,
        recorder: Recorder,
        metrics: Metrics,
        poll_interval: StdDuration,
        stores: Stores,
        policies: Vec<Store<ErrorBudgetPolicy>>,
        leading: watch::Receiver<bool>,
    ) -> Self {
        Self {
            client,
            recorder,
            metrics,
            backoff: Backoff::default(),
            poll_interval,
            stores,
            policies,
            leading,
            reading: RwLock::new(None),
            windows: Mutex::new(std::collections::HashMap::new()),
            holds: Mutex::new(BTreeMap::new()),
        }
    }

    /// Writes nothing unless this replica still leads: another replica whose clock runs ahead
    /// may have taken the Lease since this term began.
    pub fn still_leading(&self) -> crate::error::Result<()> {
        if *self.leading.borrow() {
            Ok(())
        } else {
            Err(crate::error::Error::NotLeading)
        }
    }

    /// The last poll; `None` before the first one.
    pub fn reading(&self) -> Option<Reading> {
        self.reading.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_reading(&self, reading: Reading) {
        *self.reading.write().unwrap_or_else(|p| p.into_inner()) = Some(reading);
    }

    /// Records what a policy holds after a reconcile and refreshes `frozen_objects`.
    pub fn record_holds(&self, policy: (String, String), slos: BTreeSet<String>, outcomes: &[Outcome]) {
        let objects: BTreeSet<(&'static str, String)> = outcomes
            .iter()
            .filter(|o| o.holding)
            .map(|o| (o.kind, format!("{}/{}", policy.0, o.name)))
            .collect();
        for kind in HELD_KINDS {
            let n = objects.iter().filter(|(k, _)| *k == kind).count();
            self.metrics
                .policy_held_objects
                .get_or_create(&held_labels(&policy, kind))
                .set(n as i64);
        }
        let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        holds.insert(policy, Holds { slos, objects });
        self.refresh_frozen(&holds);
    }

    pub fn forget(&self, policy: &(String, String)) {
        for kind in HELD_KINDS {
            self.metrics.policy_held_objects.remove(&held_labels(policy, kind));
        }
        self.metrics.policy_overridden.remove(&PolicyLabels {
            namespace: policy.0.clone(),
            policy: policy.1.clone(),
        });
        let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        holds.remove(policy);
        self.refresh_frozen(&holds);
    }

    fn refresh_frozen(&self, holds: &BTreeMap<(String, String), Holds>) {
        let unique: BTreeSet<&(&'static str, String)> = holds.values().flat_map(|h| &h.objects).collect();
        for kind in HELD_KINDS {
            let n = unique.iter().filter(|(k, _)| *k == kind).count();
            self.metrics
                .frozen_objects
                .get_or_create(&KindLabels { kind })
                .set(n as i64);
        }
    }

    /// The windows an SLO records, computed once per generation (validation parses PromQL).
    pub fn recorded_windows(&self, slo: &ServiceLevelObjective) -> Option<BTreeSet<crate::duration::Duration>> {
        let uid = slo.metadata.uid.clone().unwrap_or_default();
        let generation = slo.metadata.generation;
        let mut memo = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((g, w)) = memo.get(&uid)
            && *g == generation
        {
            return w.clone();
        }
        let w = super::policy::recorded_windows(slo);
        memo.insert(uid, (generation, w.clone()));
        w
    }

    /// Whether the policy may hold its Namespace: not known yet in this term, or it did at its
    /// last reconcile. A policy whose stages never freeze the namespace reads it only then.
    pub fn may_hold_namespace(&self, policy: &(String, String)) -> bool {
        let holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        holds
            .get(policy)
            .is_none_or(|h| h.objects.iter().any(|(kind, _)| *kind == "Namespace"))
    }

    /// The windows whose request counts some policy's `burnRate.minRequests` reads, straight
    /// from the policy caches. A policy whose counts a reading did not ask for (listed after
    /// that poll) waits for the next one instead of taking them for missing.
    pub fn request_windows(&self) -> BTreeSet<crate::duration::Duration> {
        let mut windows = BTreeSet::new();
        // The last hour's, for SLOs with a minimum of their own: SignalHealthy says when their
        // traffic is below it.
        let mut any_minimum = false;
        self.stores
            .for_each_slo(|slo| any_minimum |= slo.spec.alerting.min_requests.unwrap_or(0) > 0);
        if any_minimum {
            windows.insert(TRAFFIC_WINDOW);
        }
        for store in &self.policies {
            for policy in store.state() {
                let entries = policy.spec.stages.iter().flat_map(|s| &s.when);
                for b in entries.filter_map(|w| w.burn_rate.as_ref()) {
                    if b.min_requests.unwrap_or(0) > 0
                        && let Ok(w) = crate::duration::Duration::parse(&b.window)
                    {
                        windows.insert(w);
                    }
                }
            }
        }
        windows
    }

    /// SLOs (namespace, name) for which some policy holds something.
    fn enforced_slos(&self) -> BTreeSet<(String, String)> {
        let holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        holds
            .iter()
            .filter(|(_, h)| !h.objects.is_empty())
            .flat_map(|((ns, _), h)| h.slos.iter().map(|s| (ns.clone(), s.clone())))
            .collect()
    }
}

/// What the snapshot says about an SLO, with burn rates from its own budget where Prometheus
/// has not recorded one yet.
pub fn samples_for(slo: &ServiceLevelObjective, snapshot: &Snapshot) -> Option<SloSamples> {
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

/// A stream that yields once per poll, for `Controller::reconcile_all_on`.
pub fn triggers(rx: watch::Receiver<u64>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
}

pub async fn poll_loop(
    poller: Option<Poller>,
    shared: Arc<Shared>,
    trigger: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = shared.stores.wait_until_ready() => {}
        _ = shutdown.cancelled() => return,
    }
    let (poller, shared, trigger) = (&poller, &shared, &trigger);
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
            write_budgets(shared, snapshot).await;
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

async fn write_budgets(shared: &Shared, snapshot: &Snapshot) {
    let at = snapshot.at.unwrap_or_else(jiff::Timestamp::now);
    let enforced = shared.enforced_slos();
    let mut writes = Vec::new();
    shared.stores.for_each_slo(|slo| {
        let key = (slo.namespace().unwrap_or_default(), slo.name_any());
        let samples = samples_for(slo, snapshot);
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
        if budget_changed || signal.is_some() {
            let event = signal_event(current, &budget).map(|e| (slo.object_ref(&()), e));
            let mut patch = if budget_changed {
                budget_patch(current, &budget)
            } else {
                json!({"status": {}})
            };
            if let Some(signal) = signal {
                // A merge patch replaces the whole list: the other conditions go as cached
                // (the SLO reconciler does the same with this one, so neither drops the other's
                // for longer than a cycle).
                patch["status"]["conditions"] = json!(crate::api::condition::replaced(conditions, signal));
            }
            writes.push((key, patch, event));
        }
    });
    futures::stream::iter(writes)
        .for_each_concurrent(8, |((ns, name), patch, event)| async move {
            let api: Api<ServiceLevelObjective> = Api::namespaced(shared.client.clone(), &ns);
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    shared.metrics.write("budget", "status");
                    // Told once, with the status that says it: a failed write is retried next
                    // cycle, Event and all.
                    if let Some((reference, (type_, reason, note))) = event {
                        super::publish(&shared.recorder, &reference, type_, reason, "Evaluate", note).await;
                    }
                }
                Err(e) => tracing::warn!(namespace = %ns, slo = %name, error = %e, "cannot write status.budget"),
            }
        })
        .await;
}

/// The window over which an SLO's traffic is held against its `alerting.minRequests`.
const TRAFFIC_WINDOW: crate::duration::Duration = crate::duration::Duration::hours(1);

/// The condition type saying whether an SLO's signal can be trusted.
pub const SIGNAL_HEALTHY: &str = "SignalHealthy";

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
            (None, Some(history)) => ("False", "HistoryShort", history.describe()),
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
            requests: BTreeMap::from([(TRAFFIC_WINDOW, 12.0)]),
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
