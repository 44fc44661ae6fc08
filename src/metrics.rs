//! The operator's own metrics, served on `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub controller: &'static str,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub namespace: String,
    pub policy: String,
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub namespace: String,
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyKindLabels {
    pub namespace: String,
    pub policy: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SloLabels {
    pub namespace: String,
    pub slo: String,
}

/// The newest release of one workload, as one SLO's ledger counts it. The strings are shared
/// (ten thousand SLOs following two workloads each export 40,000 series).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ReleaseLabels {
    pub namespace: Arc<String>,
    pub slo: Arc<String>,
    pub kind: &'static str,
    pub workload: Arc<String>,
    pub revision: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub webhook: &'static str,
    pub result: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub reconciliations: Family<ControllerLabels, Counter>,
    pub failures: Family<ErrorLabels, Counter>,
    pub duration: Family<ControllerLabels, Histogram>,
    /// Writes to the API server (applies and status patches), so churn is visible.
    pub writes: Family<WriteLabels, Counter>,
    /// Prometheus instant queries by result (`success`, `error`).
    pub prometheus_queries: Family<ResultLabels, Counter>,
    pub prometheus_query_duration: Histogram,
    /// Queries sent in the last poll cycle (constant in the number of SLOs).
    pub prometheus_queries_per_cycle: Gauge,
    /// Series read from Prometheus and ignored: not labelled as slo-warden's rules label
    /// theirs, or a firing alert not written by the SLO's own rules.
    pub budget_series_rejected: Counter,
    /// SLOs whose records have a second writer in the last poll (their policies hold).
    pub budget_disputed_slos: Gauge,
    /// 1 for the stage a policy is in (`stage=""` when none).
    pub policy_stage: Family<StageLabels, Gauge>,
    pub enforcement_actions: Family<ActionLabels, Counter>,
    /// Objects the operator holds paused or frozen, by kind.
    pub frozen_objects: Family<KindLabels, Gauge>,
    /// Objects each policy holds, by kind.
    pub policy_held_objects: Family<PolicyKindLabels, Gauge>,
    /// 1 while an ErrorBudgetOverride lifts a policy.
    pub policy_overridden: Family<PolicyLabels, Gauge>,
    /// 1 while an SLO's budget is spent and no policy holds anything for it.
    pub budget_exhausted_unenforced: Family<SloLabels, Gauge>,
    /// 1 while an SLO's burn signal is blind (its request series sampled too seldom).
    pub signal_unhealthy: Family<SloLabels, Gauge>,
    /// The share of an SLO's window budget the newest release of each workload burned.
    pub release_budget_burned: Family<ReleaseLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// When the newest release of each workload started (Unix seconds), for dashboards.
    pub release_started: Family<ReleaseLabels, Gauge>,
    /// Stages entered with no release in the namespace in the suspect window before the burn.
    pub burns_without_release: Family<PolicyLabels, Counter>,
    /// 1 while this replica holds the Lease (always, without leader election).
    pub leader: Gauge,
    /// Admission reviews answered, by webhook and result.
    pub admission: Family<AdmissionLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("slo_warden");
        let reconciliations = Family::<ControllerLabels, Counter>::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0])
        });
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register("reconciliations", "Reconciliations started", reconciliations.clone());
        registry.register(
            "reconcile_failures",
            "Reconciliations that failed, by reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            duration.clone(),
        );
        registry.register(
            "api_writes",
            "Writes sent to the API server, by kind of object",
            writes.clone(),
        );
        let prometheus_queries = Family::<ResultLabels, Counter>::default();
        let prometheus_query_duration = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        let prometheus_queries_per_cycle = Gauge::default();
        let policy_stage = Family::<StageLabels, Gauge>::default();
        let enforcement_actions = Family::<ActionLabels, Counter>::default();
        let frozen_objects = Family::<KindLabels, Gauge>::default();
        let policy_held_objects = Family::<PolicyKindLabels, Gauge>::default();
        let policy_overridden = Family::<PolicyLabels, Gauge>::default();
        let budget_exhausted_unenforced = Family::<SloLabels, Gauge>::default();
        let signal_unhealthy = Family::<SloLabels, Gauge>::default();
        let budget_series_rejected = Counter::default();
        let budget_disputed_slos = Gauge::default();
        registry.register(
            "budget_series_rejected",
            "Series read from Prometheus and ignored because slo-warden's rules did not write them",
            budget_series_rejected.clone(),
        );
        registry.register(
            "budget_disputed_slos",
            "SLOs whose recorded series have a second writer (their policies hold their stage)",
            budget_disputed_slos.clone(),
        );
        let leader = Gauge::default();
        let admission = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admission_reviews",
            "Admission reviews answered, by webhook and result",
            admission.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica leads: reconciles, polls Prometheus and enforces",
            leader.clone(),
        );
        registry.register(
            "prometheus_queries",
            "Instant queries sent to Prometheus, by result",
            prometheus_queries.clone(),
        );
        registry.register(
            "prometheus_query_duration_seconds",
            "Time one Prometheus query took",
            prometheus_query_duration.clone(),
        );
        registry.register(
            "prometheus_queries_per_cycle",
            "Prometheus queries sent in the last poll cycle (does not grow with the number of SLOs)",
            prometheus_queries_per_cycle.clone(),
        );
        registry.register(
            "policy_stage",
            "1 for the stage each ErrorBudgetPolicy is in (stage=\"\" when none)",
            policy_stage.clone(),
        );
        registry.register(
            "enforcement_actions",
            "Changes made to enforce or release a policy, by action and result",
            enforcement_actions.clone(),
        );
        registry.register(
            "frozen_objects",
            "Objects slo-warden holds paused or frozen, by kind",
            frozen_objects.clone(),
        );
        registry.register(
            "policy_held_objects",
            "Objects each ErrorBudgetPolicy holds paused or frozen, by kind",
            policy_held_objects.clone(),
        );
        registry.register(
            "policy_overridden",
            "1 while an ErrorBudgetOverride lifts an ErrorBudgetPolicy",
            policy_overridden.clone(),
        );
        registry.register(
            "budget_exhausted_unenforced",
            "1 while an SLO's error budget is spent and no policy holds anything for it",
            budget_exhausted_unenforced.clone(),
        );
        registry.register(
            "slo_signal_unhealthy",
            "1 while an SLO's request series are sampled too seldom for its tiles: its short windows and burn alerts are blind",
            signal_unhealthy.clone(),
        );
        let release_budget_burned = Family::<ReleaseLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "release_budget_burned_ratio",
            "Share of an SLO's window error budget the newest release of each workload burned (0.1 = a tenth)",
            release_budget_burned.clone(),
        );
        let release_started = Family::<ReleaseLabels, Gauge>::default();
        registry.register(
            "release_started_timestamp_seconds",
            "When the newest release of each workload an SLO's policies follow started",
            release_started.clone(),
        );
        let burns_without_release = Family::<PolicyLabels, Counter>::default();
        registry.register(
            "burns_without_release",
            "Stages a policy entered with no release in its namespace in the suspect window before the burn: look at dependencies, traffic and security",
            burns_without_release.clone(),
        );
        Self {
            registry: Arc::new(registry),
            burns_without_release,
            release_budget_burned,
            release_started,
            reconciliations,
            failures,
            duration,
            writes,
            prometheus_queries,
            prometheus_query_duration,
            prometheus_queries_per_cycle,
            policy_stage,
            enforcement_actions,
            frozen_objects,
            policy_held_objects,
            policy_overridden,
            budget_exhausted_unenforced,
            signal_unhealthy,
            budget_series_rejected,
            budget_disputed_slos,
            leader,
            admission,
        }
    }
}

impl Metrics {
    /// Counts a reconciliation and times it until the returned guard drops.
    pub fn reconcile(&self, controller: &'static str) -> ReconcileTimer {
        self.reconciliations
            .get_or_create(&ControllerLabels { controller })
            .inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self.duration.get_or_create(&ControllerLabels { controller }).clone(),
        }
    }

    pub fn failure(&self, controller: &'static str, reason: &'static str) {
        self.failures.get_or_create(&ErrorLabels { controller, reason }).inc();
    }

    pub fn write(&self, controller: &'static str, kind: &'static str) {
        self.writes.get_or_create(&WriteLabels { controller, kind }).inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}
