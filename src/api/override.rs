//! `ErrorBudgetOverride` (slo.warden.dev/v1alpha1): a time-boxed break-glass that makes one
//! ErrorBudgetPolicy release what it holds. Its own kind, so RBAC can grant it to on-call
//! without granting policy edits; its spec is immutable so the record stays true.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bounds::{self, duration_rule};

#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "slo.warden.dev",
    version = "v1alpha1",
    kind = "ErrorBudgetOverride",
    plural = "errorbudgetoverrides",
    shortname = "ebo",
    category = "slo-warden",
    namespaced,
    status = "ErrorBudgetOverrideStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.policy"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Expires","type":"date","jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".spec.reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("an override cannot be changed; delete it or create a new one"))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBudgetOverrideSpec {
    /// Name of the ErrorBudgetPolicy (same namespace) to lift.
    #[x_kube(validation = Rule::new("self.size() > 0").message("policy must name an ErrorBudgetPolicy"))]
    #[schemars(length(max = bounds::NAME_LEN))]
    pub policy: String,
    /// How long the override lasts from its creation (a Prometheus duration, at most the
    /// policy's maxOverride and at most 30d).
    #[x_kube(validation = duration_rule("duration", bounds::POSITIVE, bounds::MAX_OVERRIDE, "2h"))]
    #[schemars(length(max = bounds::DURATION_LEN))]
    pub duration: String,
    /// Why (e.g. an incident or change ticket); shown in the policy's status and Events.
    #[x_kube(validation = Rule::new("self.matches('[^ \\t\\n]')").message("reason must say why the override is needed, e.g. hotfix for INC-123"))]
    #[schemars(length(max = bounds::TEXT_LEN))]
    pub reason: String,
    /// Who created the override, stamped by slo-warden's admission webhook from the request's
    /// user (a value set by hand is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::TEXT_LEN))]
    pub requested_by: Option<String>,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBudgetOverrideStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<OverrideState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideState {
    Active,
    Expired,
    Rejected,
}
