//! The SLOs as the shared watch caches them, and what that watch tells a term's SLO
//! reconciler: each change it would read, or that every SLO was listed again.

use std::sync::Arc;

use kube::core::DeserializeGuard;

use crate::api::ServiceLevelObjective;

/// A cached SLO, readable or not (an SLO that does not deserialize reports itself in its own
/// status instead of stalling the watch).
pub type Guarded = DeserializeGuard<ServiceLevelObjective>;

/// A readable SLO as the watch cache holds it: shared, never copied.
#[derive(Clone, Debug)]
pub struct CachedSlo(Arc<Guarded>);

impl CachedSlo {
    /// `None` for an object that did not deserialize (it reports itself in its own status).
    pub fn new(cached: Arc<Guarded>) -> Option<Self> {
        cached.0.is_ok().then_some(Self(cached))
    }
}

impl std::ops::Deref for CachedSlo {
    type Target = ServiceLevelObjective;

    fn deref(&self) -> &ServiceLevelObjective {
        match &self.0.0 {
            Ok(slo) => slo,
            Err(_) => unreachable!("CachedSlo::new keeps only readable SLOs"),
        }
    }
}

/// What the shared SLO watch tells a term's reconciler.
#[derive(Clone)]
pub enum SloChange {
    /// An SLO added or changed, as cached.
    Touched(Arc<Guarded>),
    /// The watch listed every SLO again (a new watch, or one that fell too far behind).
    Relisted,
}

/// Changes of SLOs buffered for a term's reconciler; one that falls further behind reconciles
/// every SLO instead.
pub const SLO_CHANGES: usize = 1024;

/// What of an SLO its reconcile reads, as one number: a change passes on only when it moves.
pub type Fingerprint = fn(&Guarded) -> u64;

/// The last fingerprint of each SLO the watch showed, by hashed namespace and name (two SLOs
/// sharing an entry would at worst cost a reconcile, or delay one to the resync).
pub struct Fingerprints {
    fingerprint: Fingerprint,
    last: std::collections::HashMap<u64, u64>,
    hasher: std::hash::RandomState,
}

impl Fingerprints {
    pub fn new(fingerprint: Fingerprint) -> Self {
        Self {
            fingerprint,
            last: std::collections::HashMap::new(),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn key(&self, slo: &Guarded) -> u64 {
        use std::hash::BuildHasher;
        let m = kube::Resource::meta(slo);
        self.hasher.hash_one((&m.namespace, &m.name))
    }

    /// Whether the SLO changed in what its reconcile reads since the watch last showed it.
    pub fn changed(&mut self, slo: &Guarded) -> bool {
        let fingerprint = (self.fingerprint)(slo);
        self.last.insert(self.key(slo), fingerprint) != Some(fingerprint)
    }

    pub fn forget(&mut self, slo: &Guarded) {
        let key = self.key(slo);
        self.last.remove(&key);
    }

    /// A complete (re)list: every SLO is reconciled again, from these.
    pub fn relisted(&mut self, slos: &[Arc<Guarded>]) {
        self.last = slos.iter().map(|s| (self.key(s), (self.fingerprint)(s))).collect();
    }
}
