//! The CRDs slo-warden serves, generated from the Rust types; `crds/` holds a committed copy.

use kube::CustomResourceExt;

use crate::api::{ErrorBudgetOverride, ErrorBudgetPolicy, ServiceLevelObjective};

/// (file name, YAML) for every CRD, in a stable order.
pub fn documents() -> Vec<(String, String)> {
    [
        ServiceLevelObjective::crd(),
        ErrorBudgetPolicy::crd(),
        ErrorBudgetOverride::crd(),
    ]
    .into_iter()
    .map(|crd| {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let yaml = serde_yaml::to_string(&crd).unwrap_or_default();
        (format!("{name}.yaml"), yaml)
    })
    .collect()
}

/// All CRDs as one multi-document stream.
pub fn stream() -> String {
    documents().into_iter().map(|(_, y)| format!("---\n{y}")).collect()
}
