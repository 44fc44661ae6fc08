//! `ErrorBudgetPolicy` (slo.warden.dev/v1alpha1): which SLOs drive it, the stages it moves
//! through as their budgets burn, what each stage does to the namespace's workloads.
//!
//! The schema and its CEL rules refuse the obvious mistakes at `kubectl apply`; what needs the
//! cluster (does the SLO exist, does it record that window) is checked by the controller.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bounds::{self, duration_rule};

#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "slo.warden.dev",
    version = "v1alpha1",
    kind = "ErrorBudgetPolicy",
    plural = "errorbudgetpolicies",
    shortname = "ebp",
    category = "slo-warden",
    namespaced,
    status = "ErrorBudgetPolicyStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Stage","type":"string","description":"The stage in force (empty when none)","jsonPath":".status.stage"}"#,
    printcolumn = r#"{"name":"Enforcing","type":"string","description":"Whether the operator holds anything for this policy","jsonPath":".status.conditions[?(@.type==\"Enforcing\")].status"}"#,
    printcolumn = r#"{"name":"Since","type":"date","jsonPath":".status.since"}"#,
    printcolumn = r#"{"name":"Dry-Run","type":"boolean","jsonPath":".spec.dryRun"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBudgetPolicySpec {
    /// The ServiceLevelObjectives (in this namespace) that drive the policy.
    pub slos: SloSelection,

    /// Stages ordered from mild to severe. The last stage whose `when` holds for any selected
    /// SLO is in force.
    #[x_kube(validation = Rule::new("self.size() > 0").message("set at least one stage in spec.stages"))]
    #[x_kube(validation = Rule::new("self.all(s, self.exists_one(t, t.name == s.name))").message("stage names must be unique"))]
    #[schemars(length(max = bounds::STAGES))]
    pub stages: Vec<Stage>,

    /// The workloads (in this namespace) the actions apply to.
    #[serde(default, skip_serializing_if = "Targets::is_empty")]
    pub targets: Targets,

    /// A stage is left only after its `when` has been false this long (a Prometheus duration,
    /// at most 7d).
    #[serde(default = "default_release_after")]
    #[schemars(length(max = bounds::DURATION_LEN))]
    #[x_kube(validation = duration_rule("releaseAfter", bounds::POSITIVE, bounds::MAX_RELEASE_AFTER, "15m"))]
    pub release_after: String,

    /// What to do while the budget of a selected SLO cannot be read: `hold` keeps the current
    /// stage, `release` treats missing data as healthy, `enforce` moves to the most severe stage.
    #[serde(default)]
    pub on_missing_data: MissingData,

    /// The longest an ErrorBudgetOverride of this policy may last (a Prometheus duration, at
    /// most 30d).
    #[serde(default = "default_max_override")]
    #[schemars(length(max = bounds::DURATION_LEN))]
    #[x_kube(validation = duration_rule("maxOverride", bounds::POSITIVE, bounds::MAX_OVERRIDE, "4h"))]
    pub max_override: String,

    /// Compute and report stages and actions without changing any workload.
    #[serde(default)]
    pub dry_run: bool,

    /// A release of a target workload that started this long before a stage is entered is
    /// suspected of causing the burn: `rollbackRelease` rolls it back, and a stage entered with
    /// no release in it says so (a Prometheus duration from 1m to 1d).
    #[serde(default = "default_suspect_window")]
    #[schemars(length(max = bounds::DURATION_LEN))]
    #[x_kube(validation = duration_rule("suspectWindow", bounds::MIN_SUSPECT_WINDOW, bounds::MAX_SUSPECT_WINDOW, "30m"))]
    pub suspect_window: String,
}

fn default_suspect_window() -> String {
    "30m".into()
}

fn default_release_after() -> String {
    "15m".into()
}

fn default_max_override() -> String {
    "4h".into()
}

/// Exactly one of `names` or `selector`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("has(self.names) != has(self.selector)").message("set exactly one of slos.names or slos.selector"))]
#[serde(rename_all = "camelCase")]
pub struct SloSelection {
    /// Names of ServiceLevelObjectives in the policy's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.size() > 0").message("slos.names must name at least one ServiceLevelObjective"))]
    #[schemars(length(max = bounds::SLO_NAMES), inner(length(min = 1, max = bounds::NAME_LEN)))]
    pub names: Option<Vec<String>>,
    /// A label selector over the ServiceLevelObjectives in the policy's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bounds::label_selector_schema")]
    pub selector: Option<LabelSelector>,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// Name shown in status, Events and metrics (e.g. `fast-burn`, `exhausted`).
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("stage names are lowercase letters, digits and '-', e.g. fast-burn"))]
    #[schemars(length(min = 1, max = bounds::LABEL_VALUE_LEN))]
    pub name: String,
    /// The stage holds when any entry holds for any selected SLO.
    #[x_kube(validation = Rule::new("self.size() > 0").message("set at least one entry in when"))]
    #[schemars(length(max = bounds::WHEN))]
    pub when: Vec<Trigger>,
    /// What is done while the stage is in force.
    #[schemars(length(max = bounds::ACTIONS))]
    #[serde(default)]
    pub actions: Vec<Action>,
}

/// One condition on an SLO's budget: exactly one of `burnRate`, `budgetRemaining`, `alertFiring`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("[has(self.burnRate), has(self.budgetRemaining), has(self.alertFiring)].filter(x, x).size() == 1").message("each when entry sets exactly one of burnRate, budgetRemaining or alertFiring"))]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn_rate: Option<BurnRateTrigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_remaining: Option<BudgetRemainingTrigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_firing: Option<AlertFiringTrigger>,
}

/// Holds while the SLO burns its budget faster than `above` times the sustainable rate over
/// `window`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BurnRateTrigger {
    /// A window the SLO records (5m, 30m, 1h, 2h, 6h, 1d, 3d, its own window, its tiers'; at
    /// most 365d).
    #[x_kube(validation = duration_rule("burnRate.window", bounds::POSITIVE, bounds::MAX_BURN_RATE_WINDOW, "1h"))]
    #[schemars(length(max = bounds::DURATION_LEN))]
    pub window: String,
    /// Burn-rate factor (1 spends exactly the budget over the SLO window).
    #[x_kube(validation = Rule::new("self >= 0.0").message("burnRate.above must not be negative"))]
    pub above: f64,
    /// The entry holds only when the SLO saw at least this many requests (observations, for a
    /// latency indicator) over `window`: below it, it does not hold, and the status says so. 0 or
    /// absent: no minimum. An SLO with a `raw` indicator counts no requests: its entry is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = bounds::MAX_MIN_REQUESTS))]
    pub min_requests: Option<u64>,
}

/// Holds while the fraction of budget left is below `below` (may be negative: -0.1 is 10% over).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BudgetRemainingTrigger {
    pub below: f64,
}

/// Holds while any burn-rate alert of the SLO with this `severity` label is firing.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertFiringTrigger {
    #[x_kube(validation = Rule::new("self.size() > 0").message("alertFiring.severity must not be empty, e.g. critical"))]
    #[schemars(length(max = bounds::SEVERITY_LEN))]
    pub severity: String,
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// `spec.paused: true` on the target Deployments.
    FreezeDeployments,
    /// `spec.paused: true` on the target Argo Rollouts.
    PauseRollouts,
    /// `status.abort: true` on target Argo Rollouts that are mid-update (back to stable).
    AbortRollouts,
    /// Label the policy's Namespace `slo.warden.dev/frozen: "true"`.
    FreezeNamespace,
    /// Roll back each target Deployment or Argo Rollout whose release started within
    /// `suspectWindow` before the stage was entered, once, to the revision before (a Rollout
    /// mid-update is aborted). Not for workloads Argo CD or Flux manage: they are frozen and the
    /// revision to revert in Git is named.
    RollbackRelease,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FreezeDeployments => "freezeDeployments",
            Self::PauseRollouts => "pauseRollouts",
            Self::AbortRollouts => "abortRollouts",
            Self::FreezeNamespace => "freezeNamespace",
            Self::RollbackRelease => "rollbackRelease",
        }
    }
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MissingData {
    #[default]
    Hold,
    Release,
    Enforce,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    /// Deployments in the policy's namespace; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bounds::label_selector_schema")]
    pub deployments: Option<LabelSelector>,
    /// Argo Rollouts (argoproj.io/v1alpha1) in the policy's namespace; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bounds::label_selector_schema")]
    pub rollouts: Option<LabelSelector>,
}

impl Targets {
    fn is_empty(&self) -> bool {
        self.deployments.is_none() && self.rollouts.is_none()
    }
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBudgetPolicyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The stage in force; empty when none.
    #[serde(default)]
    pub stage: String,
    /// When the stage in force (or, with none, the last release) began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// Which SLO and which value put the policy in its stage.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// When the stage's `when` stopped holding; the stage is left `releaseAfter` later unless it
    /// holds again first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_since: Option<Time>,
    /// What the operator holds for this policy right now (read back from the objects).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enforced: Vec<Enforced>,
    /// The last 20 stage transitions, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Transition>,
    /// What `rollbackRelease` did (or would do, or would not do and why) about each suspect
    /// release, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = bounds::ROLLBACKS))]
    pub rollbacks: Vec<Rollback>,
    /// Ready, Enforcing, DataAvailable, Overridden.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::api::condition::conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// One suspect release and what `rollbackRelease` did about it.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// `Deployment` or `Rollout`.
    #[schemars(length(max = 16))]
    pub kind: String,
    #[schemars(length(max = 253))]
    pub name: String,
    /// The suspect release's revision.
    pub revision: u64,
    /// The suspect release: its revision and images.
    #[schemars(length(max = 1024))]
    pub from: String,
    /// The revision it went (or would go, or should go in Git) back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub to: Option<String>,
    /// `RolledBack`, `Aborted`, `DryRun`, `GitOps` (frozen; revert in Git) or `Refused`.
    #[schemars(length(max = 32))]
    pub result: String,
    #[schemars(length(max = 2048))]
    pub message: String,
    pub time: Time,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Enforced {
    pub kind: String,
    pub name: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub time: Time,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub reason: String,
}
