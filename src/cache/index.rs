//! Which cached objects live in which namespace, kept up to date from the watch that fills the
//! cache. A policy reads the SLOs and workloads of its own namespace: with the index that costs
//! the objects of that namespace, not a scan of every cached object per policy and poll (at
//! 10,000 SLOs and 1,000 policies, ten million comparisons per poll).
//!
//! The cache stays the truth: every name is looked up there. A relist, which reports no deletion
//! of what it no longer finds, rebuilds the index from the cache once complete.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};

/// Names of the cached objects, by namespace.
#[derive(Clone, Default)]
pub struct ByNamespace {
    names: Arc<RwLock<HashMap<String, BTreeSet<String>>>>,
}

impl ByNamespace {
    /// An object the watch listed or changed (`present`), or deleted. A listed object is not in
    /// the cache until the list is complete, so this takes the watch's word for it.
    pub fn touched(&self, meta: &kube::api::ObjectMeta, present: bool) {
        let (Some(namespace), Some(name)) = (&meta.namespace, &meta.name) else {
            return;
        };
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        if present {
            insert(&mut names, meta);
        } else if let Some(in_ns) = names.get_mut(namespace) {
            in_ns.remove(name);
            if in_ns.is_empty() {
                names.remove(namespace);
            }
        }
    }

    /// Follows one event of the watch that fills `store`, after the store applied it. A
    /// complete (re)list replaces the index with what the cache now holds: a relist reports no
    /// deletion of what it no longer finds.
    pub fn follow<K>(&self, event: &kube::runtime::watcher::Event<K>, store: &Store<K>)
    where
        K: Resource + Clone + 'static,
        K::DynamicType: Eq + Hash + Clone,
    {
        use kube::runtime::watcher::Event;
        match event {
            Event::Apply(o) | Event::InitApply(o) => self.touched(o.meta(), true),
            Event::Delete(o) => self.touched(o.meta(), false),
            Event::InitDone => {
                let mut fresh = HashMap::new();
                for o in store.state() {
                    insert(&mut fresh, o.meta());
                }
                *self.names.write().unwrap_or_else(|p| p.into_inner()) = fresh;
            }
            Event::Init => {}
        }
    }

    /// The cached objects of `namespace` whose name `keep` accepts.
    pub fn get<K>(
        &self,
        namespace: &str,
        store: &Store<K>,
        dyntype: &K::DynamicType,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<Arc<K>>
    where
        K: Resource + Clone + 'static,
        K::DynamicType: Eq + Hash + Clone,
    {
        let names = self.names.read().unwrap_or_else(|p| p.into_inner());
        names
            .get(namespace)
            .into_iter()
            .flatten()
            .filter(|n| keep(n))
            // Listed but not in the cache until the list completes: not there yet.
            .filter_map(|name| store.get(&ObjectRef::new_with(name, dyntype.clone()).within(namespace)))
            .collect()
    }
}

fn insert(names: &mut HashMap<String, BTreeSet<String>>, meta: &kube::api::ObjectMeta) {
    if let (Some(namespace), Some(name)) = (&meta.namespace, &meta.name) {
        names.entry(namespace.clone()).or_default().insert(name.clone());
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;

    use super::*;

    fn cm(ns: &str, name: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.namespace = Some(ns.into());
        c.metadata.name = Some(name.into());
        c
    }

    fn names(found: &[Arc<ConfigMap>]) -> Vec<String> {
        let mut n: Vec<String> = found.iter().map(|c| c.metadata.name.clone().unwrap()).collect();
        n.sort();
        n
    }

    #[test]
    fn follows_the_watch_and_a_relist_replaces_it() {
        let mut writer: Writer<ConfigMap> = Writer::default();
        let store = writer.as_reader();
        let index = ByNamespace::default();
        let apply = |writer: &mut Writer<ConfigMap>, event: Event<ConfigMap>| {
            writer.apply_watcher_event(&event);
            index.follow(&event, &store);
        };
        // The first list: the cache holds nothing until it is complete.
        apply(&mut writer, Event::Init);
        apply(&mut writer, Event::InitApply(cm("a", "w")));
        assert!(index.get("a", &store, &(), |_| true).is_empty());
        apply(&mut writer, Event::InitDone);
        assert_eq!(names(&index.get("a", &store, &(), |_| true)), ["w"]);
        apply(&mut writer, Event::Delete(cm("a", "w")));
        for (ns, name) in [("a", "x"), ("a", "y"), ("b", "x"), ("a", "z")] {
            apply(&mut writer, Event::Apply(cm(ns, name)));
        }
        assert_eq!(names(&index.get("a", &store, &(), |_| true)), ["x", "y", "z"]);
        assert_eq!(names(&index.get("a", &store, &(), |n| n != "y")), ["x", "z"]);
        assert_eq!(names(&index.get("b", &store, &(), |_| true)), ["x"]);
        assert!(index.get("c", &store, &(), |_| true).is_empty());

        // A deletion the watch reports.
        apply(&mut writer, Event::Delete(cm("a", "y")));
        assert_eq!(names(&index.get("a", &store, &(), |_| true)), ["x", "z"]);

        // A relist that silently drops a:z and b:x and finds c:new: until it completes the
        // cache, and what the index returns, stay as they were.
        apply(&mut writer, Event::Init);
        apply(&mut writer, Event::InitApply(cm("a", "x")));
        apply(&mut writer, Event::InitApply(cm("c", "new")));
        assert_eq!(names(&index.get("a", &store, &(), |_| true)), ["x", "z"]);
        assert!(index.get("c", &store, &(), |_| true).is_empty());
        apply(&mut writer, Event::InitDone);
        assert_eq!(names(&index.get("a", &store, &(), |_| true)), ["x"]);
        assert!(index.get("b", &store, &(), |_| true).is_empty());
        assert_eq!(names(&index.get("c", &store, &(), |_| true)), ["new"]);
        let held = index.names.read().unwrap().clone();
        let set = |n: &str| BTreeSet::from([n.to_string()]);
        assert_eq!(held, HashMap::from([("a".into(), set("x")), ("c".into(), set("new"))]));
    }
}
