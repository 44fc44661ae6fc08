//! What the reconcilers share: [`Context`] for every reconciler (the SLO reconciler needs no
//! more), and [`PolicyContext`], the policy reconciler's part, which the poll loop fills.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, RwLock};
use std::time::Duration as StdDuration;

use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use tokio::sync::watch;

use crate::api::{ErrorBudgetPolicy, ServiceLevelObjective};
use crate::backoff::Backoff;
use crate::budget::{Reading, TRAFFIC_WINDOW};
use crate::cache::Stores;
use crate::enforce::{Kind, Outcome};
use crate::metrics::{KindLabels, Metrics, PolicyKindLabels, PolicyLabels};

use super::rule_versions;

/// What every reconciler shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub settings: crate::rules::Settings,
    /// `--allow-cross-namespace-sli`.
    pub allow_cross_namespace_sli: bool,
    pub backoff: Backoff<(String, String)>,
    /// What the rule watch shows of the owned PrometheusRules.
    pub rule_versions: rule_versions::RuleVersions,
}

/// The labels of the gauge of what a policy holds of one kind.
fn held_labels(policy: &(String, String), kind: Kind) -> PolicyKindLabels {
    PolicyKindLabels {
        namespace: policy.0.clone(),
        policy: policy.1.clone(),
        kind: kind.as_str(),
    }
}

#[derive(Default)]
struct Holds {
    slos: BTreeSet<String>,
    objects: BTreeSet<(Kind, String)>,
}

/// The windows an SLO records; `None` for an invalid spec.
type RecordedWindows = Option<BTreeSet<crate::duration::Duration>>;

/// The policy reconciler's part: the caches it reads, the last poll (written by the poll loop),
/// what each policy holds, and the memo of each SLO's recorded windows.
pub struct PolicyContext {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub backoff: Backoff<(String, String)>,
    pub poll_interval: StdDuration,
    /// The share of an SLO's window budget a release must burn for a Warning on the SLO.
    pub release_event_share: f64,
    pub stores: Stores,
    /// The policies of each watched scope, as their reconcilers' watches cache them.
    policies: Vec<Store<ErrorBudgetPolicy>>,
    /// Whether this replica leads (the Lease is ours, as the API server shows it).
    leading: watch::Receiver<bool>,
    reading: RwLock<Option<Reading>>,
    /// SLO uid → (generation, the windows it records), see [`PolicyContext::recorded_windows`].
    windows: Mutex<std::collections::HashMap<String, (Option<i64>, RecordedWindows)>>,
    /// (namespace, policy) → what it holds.
    holds: Mutex<BTreeMap<(String, String), Holds>>,
}

impl PolicyContext {
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
            release_event_share: crate::release::EVENT_SHARE,
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
        let objects: BTreeSet<(Kind, String)> = outcomes
            .iter()
            .filter(|o| o.holding)
            .map(|o| (o.kind, format!("{}/{}", policy.0, o.name)))
            .collect();
        for kind in Kind::ALL {
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
        for kind in Kind::ALL {
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
        let unique: BTreeSet<&(Kind, String)> = holds.values().flat_map(|h| &h.objects).collect();
        for kind in Kind::ALL {
            let n = unique.iter().filter(|(k, _)| *k == kind).count();
            self.metrics
                .frozen_objects
                .get_or_create(&KindLabels { kind: kind.as_str() })
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
        let w = crate::rules::windows_recorded_by(slo);
        memo.insert(uid, (generation, w.clone()));
        w
    }

    /// Whether the policy may hold its Namespace: not known yet in this term, or it did at its
    /// last reconcile. A policy whose stages never freeze the namespace reads it only then.
    pub fn may_hold_namespace(&self, policy: &(String, String)) -> bool {
        let holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        holds
            .get(policy)
            .is_none_or(|h| h.objects.iter().any(|(kind, _)| *kind == Kind::Namespace))
    }

    /// The windows whose request counts some policy's `burnRate.minRequests` reads, straight
    /// from the policy caches. A policy whose counts a reading did not ask for (listed after
    /// that poll) waits for the next one instead of taking them for missing.
    pub fn request_windows(&self) -> BTreeSet<crate::duration::Duration> {
        let mut windows = BTreeSet::new();
        // The last hour's, for SLOs with a minimum of their own: SignalHealthy says when their
        // traffic is below it.
        let mut any_minimum = false;
        // And each SLO's window, while some policy may follow releases: the release ledger
        // measures a release's errors against the budget the window allows.
        let ledgers = self.policies.iter().any(|s| !s.state().is_empty());
        self.stores.for_each_slo(|slo| {
            any_minimum |= slo.spec.alerting.min_requests.unwrap_or(0) > 0;
            if ledgers && let Ok(w) = crate::duration::Duration::parse(&slo.spec.window) {
                windows.insert(w);
            }
        });
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

    /// Every cached policy.
    pub fn policies(&self) -> Vec<std::sync::Arc<ErrorBudgetPolicy>> {
        self.policies.iter().flat_map(|s| s.state()).collect()
    }

    /// SLOs (namespace, name) for which some policy holds something.
    pub fn enforced_slos(&self) -> BTreeSet<(String, String)> {
        let holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        holds
            .iter()
            .filter(|(_, h)| !h.objects.is_empty())
            .flat_map(|((ns, _), h)| h.slos.iter().map(|s| (ns.clone(), s.clone())))
            .collect()
    }
}
