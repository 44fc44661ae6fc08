//! Watch caches of the workloads policies act on (Deployments, Argo Rollouts), trimmed to what
//! the actuators read: a poll of a thousand policies then reads no workload from the API
//! server, and a cache of ten thousand Deployments stays a few megabytes.
//!
//! Until its first list is complete (or when the kind is not served: no Argo Rollouts) a cache
//! answers nothing and the actuators list the namespace instead, so a cache only ever saves
//! requests. Writes always carry the cached `resourceVersion`; a cache that lags behind our own
//! last write costs one conflict, re-read and re-planned (see [`crate::enforce`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::index::ByNamespace;
use super::slim;
use crate::release::attribution;

/// Status fields `enforce::rollout::mid_update` and `enforce::rollout::is_aborted` read.
const ROLLOUT_STATUS: [&str; 4] = ["observedGeneration", "currentPodHash", "stableRS", "abort"];

/// Keeps what the actuators and the release ledger read of a Deployment: name, namespace,
/// labels, annotations (but the last applied configuration), generation and resourceVersion;
/// `spec.paused`; who wrote the pod template and its images. Each JSON object kept costs a
/// tree node of most of a kilobyte, so nothing else is: no status (nothing reads a
/// Deployment's), no empty `spec`.
pub fn trim_deployment(obj: &mut DynamicObject) {
    trim_keeping(obj, &[]);
}

/// [`trim_deployment`] for an Argo Rollout, and the status fields of an abort.
pub fn trim_rollout(obj: &mut DynamicObject) {
    trim_keeping(obj, &ROLLOUT_STATUS);
}

fn trim_keeping(obj: &mut DynamicObject, kept_status: &[&str]) {
    let changed_by = template_manager(obj);
    let released_by = kube::ResourceExt::annotations(obj)
        .get(attribution::RELEASED_BY)
        .and_then(|a| attribution::released_by(a, &obj.data))
        .map(str::to_string);
    slim(obj);
    obj.metadata.owner_references = None;
    if let Some(a) = obj.metadata.annotations.as_mut() {
        a.remove(attribution::RELEASED_BY);
    }
    let mut kept = Map::new();
    if let Some(manager) = changed_by {
        kept.insert(TEMPLATE_MANAGER.into(), Value::String(manager));
    }
    if let Some(user) = released_by {
        kept.insert(RELEASED_BY.into(), Value::String(user));
    }
    if changed_by_kept(&kept) {
        kept.insert(TEMPLATE_IMAGES.into(), Value::Array(images_of(&obj.data)));
    }
    if let Some(paused) = obj.data.pointer("/spec/paused") {
        kept.insert("spec".into(), serde_json::json!({ "paused": paused }));
    }
    if let Some(Value::Object(status)) = obj.data.get("status") {
        let status: Map<String, Value> = kept_status
            .iter()
            .filter_map(|k| status.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        if !status.is_empty() {
            kept.insert("status".into(), Value::Object(status));
        }
    }
    obj.data = Value::Object(kept);
}

/// Where [`trim_deployment`] keeps the field manager that last wrote the pod template.
pub const TEMPLATE_MANAGER: &str = "templateManager";

/// The field manager that last wrote part of the pod template (`spec.template`), as the
/// object's `managedFields` say: who released it, as far as the cluster says (`kubectl-set`,
/// `kubectl-client-side-apply`, `argocd-controller`, `kustomize-controller`, ...).
pub fn template_manager(obj: &DynamicObject) -> Option<String> {
    obj.metadata
        .managed_fields
        .as_ref()?
        .iter()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:template").is_some())
        })
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))
        .and_then(|m| m.manager.clone())
        .map(|m| m.chars().take(128).collect())
}

/// Where [`trim_deployment`] keeps the images of the pod template (when it knows who wrote it), to tell
/// which release [`changed_by`] is about.
const TEMPLATE_IMAGES: &str = "templateImages";

fn changed_by_kept(kept: &Map<String, Value>) -> bool {
    kept.contains_key(TEMPLATE_MANAGER) || kept.contains_key(RELEASED_BY)
}

/// The images of an object's pod template's containers, in order.
fn images_of(data: &Value) -> Vec<Value> {
    data.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| c.get("image").cloned().unwrap_or(Value::Null))
                .collect()
        })
        .unwrap_or_default()
}

/// The images of the pod template whose writer [`changed_by`] names.
pub fn template_images(obj: &DynamicObject) -> Vec<&str> {
    obj.data
        .get(TEMPLATE_IMAGES)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|i| i.as_str().unwrap_or_default()).collect())
        .unwrap_or_default()
}

/// Where [`trim_deployment`] keeps the user the release-attribution webhook stamped for the current pod
/// template ([`attribution::released_by`]).
pub const RELEASED_BY: &str = "releasedBy";

/// Who released the workload's current pod template, as [`trim_deployment`] kept it: the user the
/// webhook saw and the field manager (`alice (kubectl-set)`), or either one alone.
pub fn changed_by(obj: &DynamicObject) -> Option<String> {
    let manager = obj.data.get(TEMPLATE_MANAGER).and_then(Value::as_str);
    let user = obj.data.get(RELEASED_BY).and_then(Value::as_str);
    let by = match (user, manager) {
        (Some(u), Some(m)) => format!("{u} ({m})"),
        (Some(by), None) | (None, Some(by)) => by.to_string(),
        (None, None) => return None,
    };
    Some(by.chars().take(128).collect())
}

/// The annotations of a ReplicaSet the release ledger reads.
const KEPT_RS_ANNOTATIONS: [&str; 4] = [
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "rollout.argoproj.io/revision",
    "rollout.argoproj.io/revision-history",
];

/// Keeps what the release ledger reads of a ReplicaSet (`crate::release::Revision::of`): name,
/// namespace, creation, its controlling owner, its revision annotations and its containers'
/// images, the images alone as its data (a list, not the template's four nested objects: each
/// costs a tree node of most of a kilobyte). A ReplicaSet of ten containers is a few hundred
/// bytes.
pub fn trim_replica_set(obj: &mut DynamicObject) {
    slim(obj);
    let meta = &mut obj.metadata;
    meta.labels = None;
    if let Some(owners) = meta.owner_references.as_mut() {
        owners.retain(|o| o.controller == Some(true));
    }
    if let Some(a) = meta.annotations.as_mut() {
        a.retain(|k, _| KEPT_RS_ANNOTATIONS.contains(&k.as_str()));
    }
    obj.data = Value::Array(images_of(&obj.data));
}

/// One kind of workload in one watched scope.
#[derive(Clone)]
pub struct Targets {
    store: Store<DynamicObject>,
    by_namespace: ByNamespace,
    resource: ApiResource,
    synced: Arc<AtomicBool>,
}

impl Targets {
    /// Starts the watch (until `shutdown`); returns the cache and the task keeping it.
    pub fn watch(
        client: &Client,
        scope: &Option<String>,
        resource: ApiResource,
        trim: fn(&mut DynamicObject),
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let api: Api<DynamicObject> = match scope {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let writer = reflector::store::Writer::new(resource.clone());
        let store = writer.as_reader();
        let synced = Arc::new(AtomicBool::new(false));
        let stream = super::reflect(api, writer, trim);
        let (kind, resource_kind) = (resource.kind.clone(), resource.kind.clone());
        let by_namespace = ByNamespace::default();
        let (ready, flag, index) = (store.clone(), synced.clone(), by_namespace.clone());
        let mut warned = false;
        let task = tokio::spawn(super::drain_with(
            stream,
            move |event| {
                index.follow(&event, &ready);
                // The store has applied the event: a complete list is in it.
                if matches!(event, watcher::Event::InitDone) && !flag.swap(true, Ordering::Relaxed) {
                    tracing::debug!(kind = %kind, "watch cache synced");
                }
            },
            // A kind that is not served (no Argo Rollouts) fails here for good: the actuators
            // list instead, and report that.
            move |e| {
                if !warned {
                    tracing::info!(kind = %resource_kind, error = %e, "cannot watch; policies will list instead");
                    warned = true;
                }
            },
            shutdown,
        ));
        (
            Self {
                store,
                by_namespace,
                resource,
                synced,
            },
            task,
        )
    }

    /// A cache that never syncs: the actuators list instead (for tests).
    #[cfg(test)]
    pub fn unsynced(resource: ApiResource) -> Self {
        let writer = reflector::store::Writer::new(resource.clone());
        Self {
            store: writer.as_reader(),
            by_namespace: ByNamespace::default(),
            resource,
            synced: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A synced cache holding `objects` (trimmed with `trim`), for tests.
    #[cfg(test)]
    pub fn holding(resource: ApiResource, objects: Vec<DynamicObject>, trim: fn(&mut DynamicObject)) -> Self {
        let mut writer = reflector::store::Writer::new(resource.clone());
        let store = writer.as_reader();
        let by_namespace = ByNamespace::default();
        for mut o in objects {
            trim(&mut o);
            let event = watcher::Event::Apply(o);
            writer.apply_watcher_event(&event);
            by_namespace.follow(&event, &store);
        }
        Self {
            store,
            by_namespace,
            resource,
            synced: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Calls `f` with each cached object of `namespace`, without copying it; `None` before the
    /// first complete list.
    pub fn for_each_in(&self, namespace: &str, mut f: impl FnMut(&Arc<DynamicObject>)) -> Option<()> {
        if !self.synced.load(Ordering::Relaxed) {
            return None;
        }
        for o in self.by_namespace.get(namespace, &self.store, &self.resource, |_| true) {
            f(&o);
        }
        Some(())
    }

    /// The cached objects of `namespace`, or `None` before the first complete list.
    pub fn in_namespace(&self, namespace: &str) -> Option<Vec<DynamicObject>> {
        if !self.synced.load(Ordering::Relaxed) {
            return None;
        }
        Some(
            self.by_namespace
                .get(namespace, &self.store, &self.resource, |_| true)
                .into_iter()
                .map(|o| (*o).clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;
    use serde_json::json;

    #[test]
    fn trimming_keeps_what_the_actuators_read() {
        let mut obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {
                "name": "web", "namespace": "shop", "generation": 3, "resourceVersion": "42",
                "labels": {"tier": "web"},
                "annotations": {"slo.warden.dev/paused-by": "shop/checkout",
                                "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
                "managedFields": [{"manager": "kubectl"}],
            },
            "spec": {"paused": true, "replicas": 3, "template": {"spec": {"containers": [{"name": "app"}]}}},
            "status": {"observedGeneration": "3", "currentPodHash": "a", "stableRS": "b", "abort": false,
                       "conditions": [{"type": "Progressing"}]},
        }))
        .unwrap();
        trim_rollout(&mut obj);
        assert_eq!(
            obj.data,
            json!({
                "spec": {"paused": true},
                "status": {"observedGeneration": "3", "currentPodHash": "a", "stableRS": "b", "abort": false},
            })
        );
        assert!(obj.metadata.managed_fields.is_none());
        assert_eq!(
            obj.annotations().keys().collect::<Vec<_>>(),
            ["slo.warden.dev/paused-by"],
            "the claim is kept, the last applied configuration dropped"
        );
        assert_eq!(obj.metadata.generation, Some(3));
        assert_eq!(obj.resource_version().as_deref(), Some("42"));
        assert!(crate::enforce::rollout::mid_update(&obj));
        assert!(crate::enforce::workload::is_paused(&obj));

        // A Deployment that was never paused keeps no spec at all, and no status: not paused.
        let mut d: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": 1}, "status": {"replicas": 1, "observedGeneration": 1},
        }))
        .unwrap();
        trim_deployment(&mut d);
        assert_eq!(d.data, json!({}));
        assert!(!crate::enforce::workload::is_paused(&d));
    }

    #[test]
    fn the_manager_that_last_wrote_the_pod_template_is_kept() {
        let mut obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "managedFields": [
                {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2027-01-10T08:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {}}, "f:replicas": {}}}},
                {"manager": "kubectl-set", "operation": "Update", "time": "2027-01-15T08:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}}},
                {"manager": "slo-warden", "operation": "Update", "time": "2027-01-15T09:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:paused": {}}}},
            ]},
            "spec": {"replicas": 1},
        }))
        .unwrap();
        assert_eq!(template_manager(&obj).as_deref(), Some("kubectl-set"));
        trim_deployment(&mut obj);
        assert_eq!(changed_by(&obj).as_deref(), Some("kubectl-set"));
        assert!(obj.metadata.managed_fields.is_none());
    }

    #[test]
    fn the_user_stamped_for_the_current_template_is_kept_and_a_stale_stamp_is_not() {
        let deployment = |image: &str, stamp: &str| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop",
                    "annotations": {attribution::RELEASED_BY: stamp},
                    "managedFields": [{"manager": "kubectl-set", "operation": "Update", "time": "2027-01-15T08:00:00Z",
                        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {}}}}]},
                "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
            }))
            .unwrap()
        };
        let template = json!({"spec": {"containers": [{"name": "app", "image": "web:1.5.0"}]}});
        let stamp = attribution::stamp(&json!({"spec": {"template": template}}), None, "alice").unwrap();
        let mut stamped = deployment("web:1.5.0", &stamp);
        trim_deployment(&mut stamped);
        assert_eq!(changed_by(&stamped).as_deref(), Some("alice (kubectl-set)"));
        assert_eq!(template_images(&stamped), ["web:1.5.0"]);
        assert!(
            !stamped.annotations().contains_key(attribution::RELEASED_BY),
            "kept once, in data"
        );
        // The template changed since (the webhook was not called): the manager alone.
        let mut stale = deployment("web:1.6.0", &stamp);
        trim_deployment(&mut stale);
        assert_eq!(changed_by(&stale).as_deref(), Some("kubectl-set"));
    }
}
