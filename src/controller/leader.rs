//! Leader election on a `coordination.k8s.io` Lease, with `kube-lease-manager` (server-side
//! apply, tolerant of clock skew): only the holder reconciles, polls Prometheus and enforces;
//! every replica keeps its watch caches warm and answers `/readyz`. A replica that stops
//! (SIGTERM) releases the Lease at once; one that dies keeps it until the lease duration passes.

use kube::Client;
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
    let manager = LeaseManagerBuilder::new(client.clone(), &args.leader_elect_name)
        .with_namespace(&namespace)
        .with_identity(identity())
        .with_duration(duration)
        // Renew a third of the duration before it runs out (also the clock skew tolerated).
        .with_grace((duration / 3).max(2))
        .build()
        .await
        .map_err(|e| Error::Config(format!("cannot set up leader election: {e}")))?;
    tracing::info!(lease = %args.leader_elect_name, %namespace, "leader election on");
    let (rx, task) = manager.watch().await;
    let task = tokio::spawn(async move {
        match task.await {
            Ok(Ok(_)) => tracing::info!("Lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the Lease"),
            Err(e) => tracing::warn!(error = %e, "the Lease task failed"),
        }
    });
    Ok((rx, Some(task)))
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
