//! The custom resources slo-warden serves (one per file) and the upstream ones it writes.

pub mod bounds;
pub mod condition;
pub mod r#override;
pub mod policy;
pub mod prometheus_rule;
pub mod slo;

pub use r#override::{ErrorBudgetOverride, ErrorBudgetOverrideSpec, ErrorBudgetOverrideStatus, OverrideState};
pub use policy::{
    Action, ErrorBudgetPolicy, ErrorBudgetPolicySpec, ErrorBudgetPolicyStatus, MissingData, Stage, Trigger,
};
pub use prometheus_rule::{PrometheusRule, PrometheusRuleSpec, Rule, RuleGroup};
pub use slo::{
    Alerting, BudgetState, BudgetStatus, BurnRateTier, Calibration, CalibrationAlert, Indicator, LatencyIndicator,
    NoTraffic, RatioIndicator, RawIndicator, ServiceLevelObjective, ServiceLevelObjectiveSpec,
    ServiceLevelObjectiveStatus, Severity,
};
