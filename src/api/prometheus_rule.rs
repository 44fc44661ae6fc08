//! The subset of prometheus-operator's `monitoring.coreos.com/v1` PrometheusRule we write.
//! Its CRD is upstream's; this type only (de)serializes, it is never printed by `slo-warden crds`.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PrometheusRule",
    plural = "prometheusrules",
    namespaced
)]
pub struct PrometheusRuleSpec {
    pub groups: Vec<RuleGroup>,
    /// Fields we never set (kept so that a comparison with the live object sees them).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A Prometheus rule group, as in a rule file or a PrometheusRule.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    pub rules: Vec<Rule>,
    /// Fields we never set (`limit`, `partial_response_strategy`, ...).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A recording rule (`record`) or an alerting rule (`alert`).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields we never set (`keep_firing_for`, ...).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, serde_json::Value>,
}
