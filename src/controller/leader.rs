//! Leader election on a `coordination.k8s.io` Lease, with `kube-lease-manager` (server-side
//! apply, tolerant of clock skew): only the holder reconciles, polls Prometheus and enforces;
//! every replica keeps its watch caches warm and answers `/readyz`. A replica that stops
//! (SIGTERM) releases the Lease at once; one that dies keeps it until the lease duration passes.
//!
//! The manager decides from renew times read against its own clock, so a replica whose clock
//! runs ahead by more than the grace takes the Lease while the holder still believes it holds
//! it, until the holder's next renewal. A watch of the Lease fences that: a replica leads only
//! while the Lease, as the API server last showed it, names it as well, so the holder stops
//! within moments of a takeover whatever the clocks say.

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::watcher;
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::duration::Duration;
use crate::error::{Error, Result};

#[derive(clap::Args, Debug, Clone)]
pub struct LeaderArgs {
    /// Reconcile only while holding the Lease (run more than one replica with this).
    #[arg(long, env = "LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: POD_NAMESPACE, else the kubeconfig's namespace).
    #[arg(long, env = "LEADER_ELECT_NAMESPACE")]
    pub leader_elect_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, env = "LEADER_ELECT_NAME", default_value = "slo-warden")]
    pub leader_elect_name: String,
    /// How long the Lease outlives a leader that stops renewing it (whole seconds, at least 6s):
    /// the longest failover after a crash.
    #[arg(long, env = "LEADER_ELECT_LEASE_DURATION", default_value = "15s", value_parser = Duration::parse)]
    pub leader_elect_lease_duration: Duration,
}

/// Whether this replica leads, as it changes; the task keeps the Lease and releases it once
/// the receiver is dropped. Without election the answer is always yes.
pub async fn leadership(args: &LeaderArgs, client: &Client) -> Result<(watch::Receiver<bool>, Option<JoinHandle<()>>)> {
    if !args.leader_elect {
        let (tx, rx) = watch::channel(true);
        // Keep the sender alive for the life of the process: the receiver never sees a change.
        std::mem::forget(tx);
        return Ok((rx, None));
    }
    let duration = args.leader_elect_lease_duration.as_millis() / 1000;
    if duration < 6 {
        return Err(Error::Config(format!(
            "--leader-elect-lease-duration {} is too short; use at least 6s (15s is the default)",
            args.leader_elect_lease_duration
        )));
    }
    let namespace = args
        .leader_elect_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| client.default_namespace().to_string());
    let me = identity();
    let manager = LeaseManagerBuilder::new(client.clone(), &args.leader_elect_name)
        .with_namespace(&namespace)
        .with_identity(&me)
        .with_duration(duration)
        // Renew a third of the duration before it runs out (also the clock skew tolerated).
        .with_grace((duration / 3).max(2))
        .build()
        .await
        .map_err(|e| Error::Config(format!("cannot set up leader election: {e}")))?;
    tracing::info!(lease = %args.leader_elect_name, %namespace, "leader election on");
    let (managed, task) = manager.watch().await;
    let holder = watch_holder(Api::namespaced(client.clone(), &namespace), &args.leader_elect_name);
    let rx = fenced(managed, holder, me);
    let task = tokio::spawn(async move {
        match task.await {
            Ok(Ok(_)) => tracing::info!("Lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the Lease"),
            Err(e) => tracing::warn!(error = %e, "the Lease task failed"),
        }
    });
    Ok((rx, Some(task)))
}

/// The Lease's `holderIdentity` as the API server shows it (`None` before the first answer
/// or without a Lease); the watch runs until every receiver is gone.
fn watch_holder(api: Api<Lease>, name: &str) -> watch::Receiver<Option<String>> {
    let (tx, rx) = watch::channel(None);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        let events = kube::runtime::WatchStreamExt::default_backoff(watcher(api, config));
        let mut events = std::pin::pin!(events);
        loop {
            let event = tokio::select! {
                e = events.next() => e,
                _ = tx.closed() => return,
            };
            match event {
                Some(Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease))) => {
                    tx.send_replace(lease.spec.and_then(|s| s.holder_identity));
                }
                Some(Ok(watcher::Event::Delete(_))) => {
                    tx.send_replace(None);
                }
                Some(Ok(_)) => {}
                // The manager's own view still gates leadership meanwhile.
                Some(Err(e)) => tracing::debug!(error = %e, "Lease watch"),
                None => return,
            }
        }
    });
    rx
}

/// Leading: the manager says so and the Lease names `me`. Ends (the receiver sees the sender
/// gone) when the manager's channel does; dropping every receiver drops the manager's, which
/// releases the Lease.
fn fenced(
    mut managed: watch::Receiver<bool>,
    mut holder: watch::Receiver<Option<String>>,
    me: String,
) -> watch::Receiver<bool> {
    fn leads(managed: &watch::Receiver<bool>, holder: &watch::Receiver<Option<String>>, me: &str) -> bool {
        *managed.borrow() && holder.borrow().as_deref() == Some(me)
    }
    let (tx, rx) = watch::channel(leads(&managed, &holder, &me));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = managed.changed() => if changed.is_err() { return },
                changed = holder.changed() => if changed.is_err() {
                    // No more watch: the manager alone decides from here.
                    holder = watch::channel(Some(me.clone())).1;
                },
                _ = tx.closed() => return,
            }
            let now = leads(&managed, &holder, &me);
            if !now && *tx.borrow() && *managed.borrow() {
                tracing::warn!(holder = ?*holder.borrow(), "the Lease names another holder: stopping before our next renewal");
            }
            tx.send_if_modified(|v| std::mem::replace(v, now) != now);
        }
    });
    rx
}

/// Who holds the Lease: the pod name in a cluster, else host and process.
fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn leads_only_while_the_lease_names_us_too() {
        let (managed_tx, managed) = watch::channel(false);
        let (holder_tx, holder) = watch::channel(None);
        let leading = fenced(managed, holder, "a".into());
        assert!(!*leading.borrow());
        managed_tx.send_replace(true);
        settle().await;
        assert!(!*leading.borrow(), "the Lease does not name us yet");
        holder_tx.send_replace(Some("a".into()));
        settle().await;
        assert!(*leading.borrow());
        // A replica with a clock far ahead takes the Lease: we stop before the manager notices.
        holder_tx.send_replace(Some("b".into()));
        settle().await;
        assert!(!*leading.borrow());
        holder_tx.send_replace(Some("a".into()));
        settle().await;
        assert!(*leading.borrow());
        managed_tx.send_replace(false);
        settle().await;
        assert!(!*leading.borrow());
    }

    #[tokio::test]
    async fn ends_with_the_manager_and_releases_when_dropped() {
        let (managed_tx, managed) = watch::channel(true);
        let (_holder_tx, holder) = watch::channel(Some("a".to_string()));
        let mut leading = fenced(managed, holder, "a".into());
        drop(managed_tx);
        assert!(leading.changed().await.is_err(), "the fence ends with the manager");

        let (managed_tx, managed) = watch::channel(true);
        let (_holder_tx, holder) = watch::channel(Some("a".to_string()));
        drop(fenced(managed, holder, "a".into()));
        tokio::time::timeout(std::time::Duration::from_secs(5), managed_tx.closed())
            .await
            .expect("dropping the fence drops the manager's receiver, which releases the Lease");
    }
}
