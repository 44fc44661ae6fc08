//! The `resourceVersion` of every owned PrometheusRule, kept from the metadata watch the SLO
//! reconciler runs on anyway. An SLO's status records the version and the digest of its last
//! apply (or check): while the watch still shows that version and the rules the SLO asks for
//! still have that digest, the rule is exactly what the reconciler would apply, and it is not
//! read back. A restart at ten thousand SLOs then reads no rule (it read 160 MiB of them).
//!
//! Only ever a shortcut: a rule the watch has not shown (not listed yet, deleted, relabelled
//! out of the watch) or shows at another version is read back and compared, as before.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;

use crate::api::PrometheusRule;

/// Versions of the owned rules by namespace and name (hashed: a version is unique across the
/// whole store, so two keys sharing an entry can never make a stale version match).
#[derive(Clone, Default)]
pub struct RuleVersions {
    versions: Arc<Mutex<HashMap<u64, Box<str>>>>,
    hasher: std::hash::RandomState,
}

impl RuleVersions {
    fn key(&self, namespace: &str, name: &str) -> u64 {
        self.hasher.hash_one((namespace, name))
    }

    /// The version the watch last showed of a rule, if it showed the rule.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Box<str>> {
        let key = self.key(namespace, name);
        self.lock().get(&key).cloned()
    }

    /// Forgets every version: a new leadership term starts from its own watch.
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// One watched scope's follower, and whether its first list is complete.
    pub fn follower(&self) -> (Follower, tokio::sync::watch::Receiver<bool>) {
        let (synced, receiver) = tokio::sync::watch::channel(false);
        let follower = Follower {
            versions: self.clone(),
            mine: HashSet::new(),
            listing: None,
            synced,
        };
        (follower, receiver)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Box<str>>> {
        self.versions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Follows the rule watch of one scope: scopes are disjoint, so each relist replaces exactly
/// the rules its scope had.
pub struct Follower {
    versions: RuleVersions,
    /// The keys this scope put in.
    mine: HashSet<u64>,
    /// A (re)list in progress: the keys it has listed so far.
    listing: Option<HashSet<u64>>,
    synced: tokio::sync::watch::Sender<bool>,
}

impl Follower {
    pub fn follow(&mut self, event: &Event<PartialObjectMeta<PrometheusRule>>) {
        let entry = |o: &PartialObjectMeta<PrometheusRule>| {
            let m = &o.metadata;
            let key = self.versions.key(
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default(),
            );
            (key, m.resource_version.as_deref().map(Box::<str>::from))
        };
        match event {
            Event::Apply(o) => {
                let (key, version) = entry(o);
                let mut versions = self.versions.lock();
                match version {
                    Some(v) => {
                        versions.insert(key, v);
                        self.mine.insert(key);
                    }
                    None => {
                        versions.remove(&key);
                        self.mine.remove(&key);
                    }
                }
            }
            Event::Delete(o) => {
                let (key, _) = entry(o);
                self.versions.lock().remove(&key);
                self.mine.remove(&key);
            }
            Event::Init => self.listing = Some(HashSet::new()),
            // A listed version is as true as a changed one: in at once, as the reconciles the
            // listing triggers need it.
            Event::InitApply(o) => {
                let (key, version) = entry(o);
                if let Some(v) = version {
                    self.versions.lock().insert(key, v);
                    self.mine.insert(key);
                    if let Some(listing) = self.listing.as_mut() {
                        listing.insert(key);
                    }
                }
            }
            // What the list no longer holds was deleted meanwhile.
            Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                let mut versions = self.versions.lock();
                for key in self.mine.difference(&listed) {
                    versions.remove(key);
                }
                drop(versions);
                self.mine = listed;
                self.synced.send_replace(true);
            }
        }
    }
}

/// What identifies the rules the reconciler applies: a SHA-256 of the desired object (name,
/// labels, owner and groups) as JSON, in hex. Stable across restarts and replicas.
pub fn digest(desired: &PrometheusRule) -> String {
    let bytes = serde_json::to_vec(desired).unwrap_or_default();
    let hash = ring::digest::digest(&ring::digest::SHA256, &bytes);
    hash.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A rule as the metadata watch shows it, for tests.
#[cfg(test)]
pub fn watched(ns: &str, name: &str, version: &str) -> PartialObjectMeta<PrometheusRule> {
    PartialObjectMeta {
        types: None,
        metadata: kube::api::ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            resource_version: Some(version.into()),
            ..Default::default()
        },
        _phantom: std::marker::PhantomData,
    }
}

#[cfg(test)]
mod tests {
    use super::watched as rule;
    use super::*;

    #[test]
    fn follows_changes_and_deletions() {
        let versions = RuleVersions::default();
        let (mut follower, synced) = versions.follower();
        assert!(!*synced.borrow());
        follower.follow(&Event::Init);
        follower.follow(&Event::InitApply(rule("a", "x", "1")));
        assert_eq!(versions.get("a", "x").as_deref(), Some("1"));
        assert!(!*synced.borrow());
        follower.follow(&Event::InitDone);
        assert!(*synced.borrow());
        assert_eq!(versions.get("a", "x").as_deref(), Some("1"));
        follower.follow(&Event::Apply(rule("a", "x", "7")));
        assert_eq!(versions.get("a", "x").as_deref(), Some("7"));
        assert_eq!(versions.get("b", "x"), None);
        follower.follow(&Event::Delete(rule("a", "x", "8")));
        assert_eq!(versions.get("a", "x"), None);
    }

    #[test]
    fn a_relist_drops_what_it_no_longer_finds_in_its_own_scope_only() {
        let versions = RuleVersions::default();
        let (mut one, _) = versions.follower();
        let (mut two, _) = versions.follower();
        for (f, ns) in [(&mut one, "a"), (&mut two, "b")] {
            f.follow(&Event::Init);
            f.follow(&Event::InitApply(rule(ns, "x", "1")));
            f.follow(&Event::InitApply(rule(ns, "y", "2")));
            f.follow(&Event::InitDone);
        }
        // Scope a relists after a gap in which a/x was deleted and a/y changed.
        one.follow(&Event::Init);
        one.follow(&Event::InitApply(rule("a", "y", "5")));
        assert_eq!(
            versions.get("a", "x").as_deref(),
            Some("1"),
            "kept until the list is complete"
        );
        assert_eq!(versions.get("a", "y").as_deref(), Some("5"), "listed, so current");
        one.follow(&Event::InitDone);
        assert_eq!(versions.get("a", "x"), None);
        assert_eq!(versions.get("a", "y").as_deref(), Some("5"));
        assert_eq!(versions.get("b", "x").as_deref(), Some("1"));
        assert_eq!(versions.get("b", "y").as_deref(), Some("2"));
        versions.reset();
        assert_eq!(versions.get("b", "y"), None);
    }

    #[test]
    fn digest_changes_with_the_rules_and_is_stable() {
        let mut a = PrometheusRule::new("x", Default::default());
        let b = a.clone();
        assert_eq!(digest(&a), digest(&b));
        assert_eq!(digest(&a).len(), 32);
        a.metadata.labels = Some([("k".to_string(), "v".to_string())].into());
        assert_ne!(digest(&a), digest(&b));
    }
}
