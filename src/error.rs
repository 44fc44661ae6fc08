//! One error type for the controller. Each variant has a stable, low-cardinality reason used
//! for condition reasons, Event reasons and metric labels.

#[derive(thiserror::Error, Debug)]
pub enum Error {
    #[error("{0}")]
    InvalidSpec(String),

    #[error(
        "the PrometheusRule CRD (monitoring.coreos.com/v1) is not installed in this cluster; install the prometheus-operator CRDs"
    )]
    PrometheusRuleCrdMissing,

    #[error("not allowed to {0}; check the slo-warden ClusterRole")]
    Forbidden(String),

    #[error("Kubernetes API error: {0}")]
    Kube(#[source] kube::Error),

    #[error("cannot serialize: {0}")]
    Serialization(#[from] serde_json::Error),

    #[error("object has no {0}")]
    MissingObjectKey(&'static str),

    #[error(
        "the Argo Rollouts CRD (argoproj.io/v1alpha1 Rollout) is not installed in this cluster; install Argo Rollouts or remove spec.targets.rollouts"
    )]
    RolloutCrdMissing,

    #[error("cannot query Prometheus: {0}")]
    Prometheus(String),

    #[error("{0}")]
    Config(String),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => "InvalidSpec",
            Self::PrometheusRuleCrdMissing => "PrometheusRuleCRDMissing",
            Self::Forbidden(_) => "Forbidden",
            Self::Kube(_) => "KubeAPIError",
            Self::Serialization(_) => "SerializationFailed",
            Self::MissingObjectKey(_) => "MissingObjectKey",
            Self::RolloutCrdMissing => "RolloutCRDMissing",
            Self::Prometheus(_) => "PrometheusUnavailable",
            Self::Config(_) => "InvalidConfig",
        }
    }

    /// Worth retrying soon: API hiccups, conflicts. Spec or cluster setup problems wait longer.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Kube(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
