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

    #[error("this replica no longer holds the leader Lease; the new leader takes over")]
    NotLeading,

    #[error("the reconcile panicked: {0}; this is a bug in slo-warden, please report it")]
    Panicked(String),
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
            Self::NotLeading => "NotLeading",
            Self::Panicked(_) => "ReconcilePanicked",
        }
    }

    /// A failed API call to `what` (e.g. "patch deployments shop/api"): `Forbidden` when RBAC
    /// refuses it, so the status names the missing permission instead of a generic API error.
    pub fn api(e: kube::Error, what: impl FnOnce() -> String) -> Self {
        match &e {
            kube::Error::Api(s) if s.code == 403 => Self::Forbidden(what()),
            _ => Self::Kube(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status {
                code,
                ..kube::core::Status::failure("refused", "")
            }
            .boxed(),
        )
    }

    #[test]
    fn a_refused_call_names_the_request_and_the_role() {
        let e = Error::api(status(403), || {
            "patch /apis/apps/v1/namespaces/shop/deployments/api".into()
        });
        assert_eq!(e.reason(), "Forbidden");
        assert_eq!(
            e.to_string(),
            "not allowed to patch /apis/apps/v1/namespaces/shop/deployments/api; check the slo-warden ClusterRole"
        );
        for code in [409, 500, 503] {
            let e = Error::api(status(code), || unreachable!("only a 403 is described"));
            assert_eq!(e.reason(), "KubeAPIError");
        }
    }
}
