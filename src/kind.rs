//! The kinds of object a policy acts on, as every layer names them (the ledger, the
//! actuators, the status).

/// The kinds of object a policy holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Deployment,
    Rollout,
    Namespace,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Deployment, Kind::Rollout, Kind::Namespace];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::Rollout => "Rollout",
            Kind::Namespace => "Namespace",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment => "apps/v1",
            Kind::Rollout => "argoproj.io/v1alpha1",
            Kind::Namespace => "v1",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
