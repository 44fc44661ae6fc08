//! The clusters the UI shows: for each, a client (a kubeconfig context, or the pod's own service
//! account) and watch caches of its SLOs, policies and overrides, slimmed as the operator's are.
//! Pages read the caches only: a request never lists anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::api::{ErrorBudgetOverride, ErrorBudgetPolicy};
use crate::cache::{Guarded, drain_with, reflect, slim};

pub type GuardedPolicy = DeserializeGuard<ErrorBudgetPolicy>;
pub type GuardedOverride = DeserializeGuard<ErrorBudgetOverride>;

/// One connected cluster.
#[derive(Clone)]
pub struct Cluster {
    pub name: Arc<str>,
    pub slos: Store<Guarded>,
    pub policies: Store<GuardedPolicy>,
    pub overrides: Store<GuardedOverride>,
    pub health: Arc<Health>,
}

/// Whether a cluster's caches hold a complete list, and the last error of its watches.
#[derive(Default)]
pub struct Health {
    /// SLOs, policies, overrides.
    synced: [AtomicBool; 3],
    error: Mutex<Option<(jiff::Timestamp, String)>>,
}

impl Health {
    /// Every cache holds its first complete list.
    pub fn synced(&self) -> bool {
        self.synced.iter().all(|s| s.load(Ordering::Relaxed))
    }

    /// The last error of a watch, and when, while it has not listed again since.
    pub fn error(&self) -> Option<(jiff::Timestamp, String)> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn listed(&self, which: usize) {
        self.synced[which].store(true, Ordering::Relaxed);
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    #[cfg(test)]
    pub fn fail(&self, message: &str) {
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some((jiff::Timestamp::now(), message.to_string()));
    }

    fn failed(&self, what: &str, error: &watcher::Error) {
        let message: String = format!("watch of {what}: {error}").chars().take(512).collect();
        tracing::warn!(%message, "cluster watch failed");
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some((jiff::Timestamp::now(), message));
    }
}

/// `NAME=CONTEXT` (a context of the kubeconfig), or `NAME` alone: the default configuration
/// (in a pod, its service account; elsewhere the kubeconfig's current context).
pub fn parse_cluster(s: &str) -> Result<(String, Option<String>), String> {
    let (name, context) = match s.split_once('=') {
        Some((name, context)) => (name, Some(context.to_string())),
        None => (s, None),
    };
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !valid {
        return Err(format!(
            "{name:?} is not a cluster name: 1 to 63 letters, digits, '-', '_' or '.' (e.g. prod-eu=prod-eu-admin)"
        ));
    }
    if context.as_deref() == Some("") {
        return Err(format!("{s:?}: the context after '=' is empty"));
    }
    Ok((name.to_string(), context))
}

impl Cluster {
    /// Connects to a cluster and starts its watches (until `shutdown`).
    pub async fn connect(
        name: &str,
        context: Option<&str>,
        shutdown: CancellationToken,
    ) -> Result<(Self, Vec<tokio::task::JoinHandle<()>>), String> {
        let config = match context {
            Some(context) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
                context: Some(context.to_string()),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("cluster {name}: kubeconfig context {context:?}: {e}"))?,
            None => kube::Config::infer()
                .await
                .map_err(|e| format!("cluster {name}: no in-cluster or kubeconfig configuration: {e}"))?,
        };
        let client = Client::try_from(config).map_err(|e| format!("cluster {name}: {e}"))?;
        Ok(Self::watch(name, &client, shutdown))
    }

    fn watch(name: &str, client: &Client, shutdown: CancellationToken) -> (Self, Vec<tokio::task::JoinHandle<()>>) {
        let health = Arc::new(Health::default());
        let mut tasks = Vec::new();
        let slos = follow::<Guarded>(client, 0, "ServiceLevelObjectives", &health, &shutdown, &mut tasks);
        let policies = follow::<GuardedPolicy>(client, 1, "ErrorBudgetPolicies", &health, &shutdown, &mut tasks);
        let overrides = follow::<GuardedOverride>(client, 2, "ErrorBudgetOverrides", &health, &shutdown, &mut tasks);
        (
            Self {
                name: name.into(),
                slos,
                policies,
                overrides,
                health,
            },
            tasks,
        )
    }

    /// A cluster whose caches hold these objects, listed (for tests and benchmarks).
    pub fn holding(
        name: &str,
        slos: Vec<crate::api::ServiceLevelObjective>,
        policies: Vec<ErrorBudgetPolicy>,
        overrides: Vec<ErrorBudgetOverride>,
    ) -> Self {
        fn hold<K>(objects: Vec<K>) -> Store<DeserializeGuard<K>>
        where
            K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
        {
            let mut writer = reflector::store::Writer::<DeserializeGuard<K>>::default();
            for o in objects {
                writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(o))));
            }
            writer.as_reader()
        }
        let health = Health::default();
        for i in 0..3 {
            health.listed(i);
        }
        Self {
            name: name.into(),
            slos: hold(slos),
            policies: hold(policies),
            overrides: hold(overrides),
            health: Arc::new(health),
        }
    }
}

/// The readable objects of a cache that `keep` accepts, copied out of their guards, by name.
pub fn readable<K>(store: &Store<DeserializeGuard<K>>, keep: impl Fn(&K) -> bool) -> Vec<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    let mut found: Vec<Arc<K>> = store
        .state()
        .iter()
        .filter_map(|o| o.0.as_ref().ok())
        .filter(|o| keep(o))
        .map(|o| Arc::new(o.clone()))
        .collect();
    found.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    found
}

fn follow<K>(
    client: &Client,
    which: usize,
    what: &'static str,
    health: &Arc<Health>,
    shutdown: &CancellationToken,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflect(Api::<K>::all(client.clone()), writer, slim);
    let (listed, failed) = (health.clone(), health.clone());
    tasks.push(tokio::spawn(drain_with(
        stream,
        move |event| {
            if matches!(event, watcher::Event::InitDone) {
                listed.listed(which);
            }
        },
        move |e| failed.failed(what, &e),
        shutdown.clone(),
    )));
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_and_contexts() {
        assert_eq!(
            parse_cluster("prod=prod-admin"),
            Ok(("prod".into(), Some("prod-admin".into())))
        );
        assert_eq!(parse_cluster("local"), Ok(("local".into(), None)));
        assert_eq!(
            parse_cluster("a=b=c"),
            Ok(("a".into(), Some("b=c".into()))),
            "a context may hold '='"
        );
        assert!(parse_cluster("=ctx").unwrap_err().contains("is not a cluster name"));
        assert!(parse_cluster("pröd=x").unwrap_err().contains("is not a cluster name"));
        assert!(parse_cluster("prod=").unwrap_err().contains("empty"));
        assert!(parse_cluster(&"x".repeat(64)).is_err());
    }
}
