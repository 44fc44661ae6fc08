//! The watch caches every replica keeps warm (leading or not): SLOs, overrides and the
//! workloads policies act on, per watched scope (a namespace, or the whole cluster). The
//! reconcilers, the poll and the webhook read them instead of the API server; a new leader
//! starts from a full picture.
//!
//! Every cache is filled the same way ([`reflect`]): a watch whose objects are slimmed before
//! they are stored, backed off on errors, kept running by [`drain`] until shutdown.

pub mod index;
pub mod slos;
pub mod workloads;

use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::api::DynamicObject;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api::{ErrorBudgetOverride, ServiceLevelObjective};
use crate::enforce::Kind;
pub use slos::{CachedSlo, Guarded, SloChange};
use slos::{Fingerprint, Fingerprints};
use workloads::Targets;

/// What no reconciler reads and every object carries: `managedFields` (a tree per field
/// manager) and kubectl's last applied configuration, often more than the object itself. Every
/// watch cache of the operator keeps objects without them.
pub fn slim<K: kube::Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// The one way a cache is filled: `api`'s watch, each object passed through `modify` (at
/// least [`slim`]) before `writer` stores it, retried with backoff after an error.
pub fn reflect<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    modify: impl FnMut(&mut K) + Send + 'static,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    reflector::reflector(
        writer,
        watcher(api, watcher::Config::default().any_semantic()).modify(modify),
    )
    .default_backoff()
}

/// A reconciler's own watch of its kind, slimmed: the objects that trigger it and its cache.
#[allow(clippy::type_complexity)]
pub fn reconciled<K>(
    client: &Client,
    scope: &Option<String>,
) -> (impl Stream<Item = Result<K, watcher::Error>> + Send + 'static, Store<K>)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    <K as kube::Resource>::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (cache, writer) = reflector::store();
    let stream = reflect(scoped::<K>(client, scope), writer, slim).touched_objects();
    (stream, cache)
}

/// An API of one watched scope: a namespace, or all of them.
pub fn scoped<K>(client: &Client, scope: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Keeps a watch cache running until shutdown, handing each item to `each`; errors are logged
/// (the watch retries them with backoff).
pub async fn drain<S, T, E>(stream: S, what: &'static str, each: impl FnMut(T), shutdown: CancellationToken)
where
    S: Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    drain_with(
        stream,
        each,
        |e| tracing::warn!(error = %e, "watch of {what}"),
        shutdown,
    )
    .await;
}

/// [`drain`], with errors handed to `failed`.
pub async fn drain_with<S, T, E>(
    stream: S,
    mut each: impl FnMut(T),
    mut failed: impl FnMut(E),
    shutdown: CancellationToken,
) where
    S: Stream<Item = Result<T, E>>,
{
    let mut stream = std::pin::pin!(stream);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Err(e)) => failed(e),
                Some(Ok(object)) => each(object),
                None => return,
            },
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The watch caches of one watched scope (a namespace, or the whole cluster).
#[derive(Clone)]
pub struct ScopeCaches {
    pub slos: Store<Guarded>,
    /// The SLOs of `slos` by namespace.
    pub slo_index: index::ByNamespace,
    /// Each SLO the watch behind `slos` adds or changes in what its reconcile reads, as cached
    /// there: the SLO reconciler of a term runs on this cache instead of keeping a second one.
    pub slo_changes: tokio::sync::broadcast::Sender<SloChange>,
    pub overrides: Store<ErrorBudgetOverride>,
    pub deployments: Targets,
    pub rollouts: Targets,
    /// The ReplicaSets of Deployments and Rollouts: their releases.
    pub replica_sets: Targets,
    /// True once `slos` holds the first complete list. Waited on through this, never through
    /// the store: its `wait_until_ready` wakes only the last of several waiters, and the SLO
    /// reconciler waits there already.
    pub slos_synced: watch::Receiver<bool>,
}

impl ScopeCaches {
    /// Starts the watches of one scope (until `shutdown`): the caches and the tasks keeping
    /// them. An SLO change is passed on to `slo_changes` only when its `fingerprint` moved.
    pub fn watch(
        client: &Client,
        scope: &Option<String>,
        fingerprint: Fingerprint,
        shutdown: CancellationToken,
    ) -> (Self, Vec<tokio::task::JoinHandle<()>>) {
        let (slos, writer) = reflector::store();
        let slo_watch = reflect(scoped::<Guarded>(client, scope), writer, slim);
        let (overrides, writer) = reflector::store();
        let override_watch = reflect(scoped::<ErrorBudgetOverride>(client, scope), writer, slim);
        let (slo_changes, _) = tokio::sync::broadcast::channel(slos::SLO_CHANGES);
        // Synced once the first list is in the cache. Known from the watch itself: the
        // cache's own `wait_until_ready` wakes only one of several waiters, and the SLO
        // reconciler of each term is one already.
        let (synced, slos_synced) = watch::channel(false);
        let slo_index = index::ByNamespace::default();
        let (cache, changes, by_namespace) = (slos.clone(), slo_changes.clone(), slo_index.clone());
        let mut seen = Fingerprints::new(fingerprint);
        let mut tasks = vec![tokio::spawn(drain(
            slo_watch,
            "ServiceLevelObjectives",
            move |event: watcher::Event<Guarded>| {
                by_namespace.follow(&event, &cache);
                let change = match event {
                    // The cached copy, when the reconciler would see anything new in it; a
                    // deleted SLO has none, and nothing to reconcile.
                    watcher::Event::Apply(slo) => cache
                        .get(&ObjectRef::from_obj(&slo))
                        .filter(|slo| seen.changed(slo))
                        .map(SloChange::Touched),
                    watcher::Event::Delete(slo) => {
                        seen.forget(&slo);
                        None
                    }
                    // A (re)list is in the cache once complete: every SLO may have changed.
                    watcher::Event::InitDone => {
                        seen.relisted(&cache.state());
                        synced.send_replace(true);
                        Some(SloChange::Relisted)
                    }
                    watcher::Event::Init | watcher::Event::InitApply(_) => None,
                };
                // Without a term running there is no receiver, and nothing is kept.
                if let Some(change) = change {
                    let _ = changes.send(change);
                }
            },
            shutdown.clone(),
        ))];
        tasks.push(tokio::spawn(drain(
            override_watch,
            "ErrorBudgetOverrides",
            |_| {},
            shutdown.clone(),
        )));
        // The workloads policies act on, so that a poll lists none of them.
        let (deployments, task) = Targets::watch(
            client,
            scope,
            crate::enforce::workload::deployments().resource,
            workloads::trim_deployment,
            shutdown.clone(),
        );
        tasks.push(task);
        let (rollouts, task) = Targets::watch(
            client,
            scope,
            crate::enforce::rollout::resource(),
            workloads::trim_rollout,
            shutdown.clone(),
        );
        tasks.push(task);
        let (replica_sets, task) = Targets::watch(
            client,
            scope,
            kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&()),
            workloads::trim_replica_set,
            shutdown,
        );
        tasks.push(task);
        let caches = Self {
            slos,
            slo_index,
            slo_changes,
            overrides,
            deployments,
            rollouts,
            replica_sets,
            slos_synced,
        };
        (caches, tasks)
    }

    /// Caches holding `slos` and `overrides`, synced, whose workload caches never sync (the
    /// actuators list instead), for tests.
    #[cfg(test)]
    pub fn holding(slos: Vec<ServiceLevelObjective>, overrides: Vec<ErrorBudgetOverride>) -> Self {
        let (slo_store, mut writer) = reflector::store::<Guarded>();
        let slo_index = index::ByNamespace::default();
        for slo in slos {
            let event = watcher::Event::Apply(kube::core::DeserializeGuard(Ok(slo)));
            writer.apply_watcher_event(&event);
            slo_index.follow(&event, &slo_store);
        }
        let (override_store, mut writer) = reflector::store();
        for o in overrides {
            writer.apply_watcher_event(&watcher::Event::Apply(o));
        }
        let (slo_changes, _) = tokio::sync::broadcast::channel(1);
        Self {
            slos: slo_store,
            slo_index,
            slo_changes,
            overrides: override_store,
            deployments: Targets::unsynced(crate::enforce::workload::deployments().resource),
            rollouts: Targets::unsynced(crate::enforce::rollout::resource()),
            replica_sets: Targets::unsynced(kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(
                &(),
            )),
            slos_synced: watch::channel(true).1,
        }
    }

    /// [`ScopeCaches::holding`], with synced caches of `deployments` and `replica_sets`.
    #[cfg(test)]
    pub fn holding_workloads(
        slos: Vec<ServiceLevelObjective>,
        deployments: Vec<DynamicObject>,
        replica_sets: Vec<DynamicObject>,
    ) -> Self {
        Self {
            deployments: Targets::holding(
                crate::enforce::workload::deployments().resource,
                deployments,
                workloads::trim_deployment,
            ),
            replica_sets: Targets::holding(
                kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&()),
                replica_sets,
                workloads::trim_replica_set,
            ),
            ..Self::holding(slos, vec![])
        }
    }

    /// Until `slos` holds the first complete list.
    pub async fn slos_synced(&self) {
        let _ = self.slos_synced.clone().wait_for(|synced| *synced).await;
    }
}

/// The watch caches of every watched scope.
#[derive(Clone)]
pub struct Stores(pub Vec<ScopeCaches>);

impl Stores {
    /// Calls `f` with every readable SLO (one that does not deserialize reports itself in its
    /// own status), straight from the cache: a poll of 10,000 SLOs copies none of them.
    pub fn for_each_slo(&self, mut f: impl FnMut(&ServiceLevelObjective)) {
        for scope in &self.0 {
            for guard in scope.slos.state() {
                if let Ok(slo) = guard.0.as_ref() {
                    f(slo);
                }
            }
        }
    }

    /// The readable SLOs of a namespace whose name `keep` accepts, shared with the cache (a
    /// poll of a thousand policies copied every SLO ten times over).
    pub fn slos_in(&self, namespace: &str, keep: impl Fn(&str) -> bool) -> Vec<CachedSlo> {
        self.0
            .iter()
            .flat_map(|s| s.slo_index.get(namespace, &s.slos, &(), &keep))
            .filter_map(CachedSlo::new)
            .collect()
    }

    /// The cached Deployments or Rollouts of a namespace; `None` when its cache cannot answer
    /// (not synced, kind not served) and for a Namespace (never cached).
    pub fn workloads_in(&self, namespace: &str, kind: Kind) -> Option<Vec<DynamicObject>> {
        let mut out = Vec::new();
        for scope in &self.0 {
            let targets = match kind {
                Kind::Deployment => &scope.deployments,
                Kind::Rollout => &scope.rollouts,
                Kind::Namespace => return None,
            };
            out.extend(targets.in_namespace(namespace)?);
        }
        Some(out)
    }

    /// Calls `f` with each cached Deployment or Rollout of a namespace; nothing while its cache
    /// is not synced.
    pub fn for_each_workload(&self, namespace: &str, kind: Kind, mut f: impl FnMut(&Arc<DynamicObject>)) {
        for scope in &self.0 {
            let targets = match kind {
                Kind::Deployment => &scope.deployments,
                Kind::Rollout => &scope.rollouts,
                Kind::Namespace => return,
            };
            let _ = targets.for_each_in(namespace, &mut f);
        }
    }

    /// The releases the cached ReplicaSets of a namespace run; `None` until every scope's
    /// ReplicaSets are listed.
    pub fn revisions_in(&self, namespace: &str) -> Option<Vec<crate::release::Revision>> {
        let mut out = Vec::new();
        for scope in &self.0 {
            scope
                .replica_sets
                .for_each_in(namespace, |rs| out.extend(crate::release::Revision::of(rs)))?;
        }
        Some(out)
    }

    pub fn overrides_in(&self, namespace: &str) -> Vec<Arc<ErrorBudgetOverride>> {
        self.0
            .iter()
            .flat_map(|s| s.overrides.state())
            .filter(|o| o.namespace().as_deref() == Some(namespace))
            .collect()
    }

    /// Until every scope's SLOs and overrides are listed.
    pub async fn wait_until_ready(&self) {
        for s in &self.0 {
            s.slos_synced().await;
            let _ = s.overrides.wait_until_ready().await;
        }
    }
}
