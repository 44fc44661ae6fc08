//! The custom resources slo-warden serves (one per file) and the upstream ones it writes.

pub mod bounds;
pub mod burn_rates;
pub mod condition;
pub mod r#override;
pub mod policy;
pub mod prometheus_rule;
pub mod slo;

/// The field manager of every write slo-warden makes (server-side apply, merge patches,
/// status), and its Events' reporting controller.
pub const MANAGER: &str = "slo-warden";

/// Patch parameters that name slo-warden as the field manager, for merge patches (server-side
/// apply takes `PatchParams::apply(MANAGER)`).
pub fn merge_params() -> kube::api::PatchParams {
    kube::api::PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..kube::api::PatchParams::default()
    }
}

/// A time as the API server writes one (`2027-01-31T12:00:00Z`: RFC 3339, UTC, seconds).
pub fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub use burn_rates::BurnRates;
pub use r#override::{ErrorBudgetOverride, ErrorBudgetOverrideSpec, ErrorBudgetOverrideStatus, OverrideState};
pub use policy::{
    Action, ErrorBudgetPolicy, ErrorBudgetPolicySpec, ErrorBudgetPolicyStatus, MissingData, Rollback, Stage, Trigger,
};
pub use prometheus_rule::{PrometheusRule, PrometheusRuleSpec, Rule, RuleGroup};
pub use slo::{
    Alerting, BudgetState, BudgetStatus, BurnRateTier, Calibration, CalibrationAlert, Indicator, LatencyIndicator,
    NoTraffic, RatioIndicator, RawIndicator, ReleaseStatus, ServiceLevelObjective, ServiceLevelObjectiveSpec,
    ServiceLevelObjectiveStatus, Severity,
};
