//! The controller process: one shutdown signal for the watches, the HTTP server and the
//! signal handler; the reconcilers live in submodules.

pub mod args;
pub mod context;
pub mod events;
pub mod leader;
pub mod policy;
pub mod poll;
pub mod releases;
pub mod rollbacks;
pub mod rule_versions;
pub mod slo;
pub mod unwind;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{FutureExt, StreamExt, TryStreamExt};
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::api::{ErrorBudgetOverride, ErrorBudgetPolicy, PrometheusRule, ServiceLevelObjective};
use crate::backoff;
use crate::cache::{self, Guarded, SloChange, scoped};
use crate::http::{self, Health};
use crate::metrics::Metrics;
use crate::rules::{MANAGED_BY_LABEL, MANAGER};
use args::watched;
pub use args::{Args, LogFormat};
pub use context::{Context, PolicyContext};

pub fn main(args: Args) -> ExitCode {
    run_process(args.log_format, run(args))
}

/// A long-running command of the binary (`run`, `ui`): logging, the TLS provider and the
/// runtime set up, then `work` until it ends; an error is logged and fails the process.
pub fn run_process<E: std::fmt::Display>(
    log_format: LogFormat,
    work: impl std::future::Future<Output = Result<(), E>>,
) -> ExitCode {
    init_tracing(log_format);
    // Two TLS backends are linked in (kube uses ring, the HTTP client of prometheus-http-query
    // brings aws-lc-rs); pick one for the process explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "slo-warden stopped");
            ExitCode::FAILURE
        }
    }
}

/// Logs as `--log-format` says, filtered by `RUST_LOG` (default `info,kube=warn`).
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    // Colours only on a terminal; log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // An operator limited to some namespaces reads only their SLOs' budgets.
    let namespaces = watched(args.namespaces);
    let poller = crate::budget::Poller::new(&args.prometheus)?.map(|p| {
        p.scoped(&namespaces)
            .alert_interval(args.alert_interval)
            .scrape_interval(args.scrape_interval)
    });
    let client = Client::try_default().await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let metrics = Metrics::default();
    let health = Health {
        metrics: metrics.clone(),
        ready: Arc::new(AtomicBool::new(false)),
    };
    let server = tokio::spawn(http::serve(args.http_addr, health.clone(), shutdown.clone()));

    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: recorder.clone(),
        metrics: metrics.clone(),
        settings: crate::rules::Settings {
            scrape_interval: args.scrape_interval,
            alert_interval: args.alert_interval,
            rule_labels: args.rule_labels.into_iter().collect(),
        },
        allow_cross_namespace_sli: args.allow_cross_namespace_sli,
        backoff: backoff::Backoff::default(),
        rule_versions: rule_versions::RuleVersions::default(),
    });

    // One set of controllers per watched namespace (or one for the whole cluster).
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };

    // Every replica keeps the watch caches the policies read (SLOs and overrides) warm, so a
    // new leader starts from a full picture, and answers /readyz.
    let mut stores = Vec::new();
    let mut tasks = Vec::new();
    let mut probes = Vec::new();
    for scope in &scopes {
        let (caches, watches) = cache::ScopeCaches::watch(&client, scope, slo::trigger_fingerprint, shutdown.clone());
        tasks.extend(watches);
        stores.push(caches);
        probes.push((scoped(&client, scope), scoped(&client, scope), scoped(&client, scope)));
    }
    let stores = cache::Stores(stores);
    tokio::spawn(mark_ready_when_listable(probes, health.ready.clone(), shutdown.clone()));
    // Every replica answers admission reviews.
    let webhook = args.webhook.webhook_addr.map(|addr| {
        let state = Arc::new(crate::admission::Webhook {
            client: client.clone(),
            stores: stores.clone(),
            metrics: metrics.clone(),
            identity: Default::default(),
            allow_cross_namespace_sli: args.allow_cross_namespace_sli,
        });
        tokio::spawn(crate::admission::serve(
            args.webhook.clone(),
            addr,
            state,
            shutdown.clone(),
        ))
    });
    match &poller {
        // The URL as the poller reads it, without the user name and password it may carry.
        Some(p) => tracing::info!(
            prometheus = %p.url(),
            interval = %args.poll_interval,
            "reading error budgets from Prometheus"
        ),
        None => tracing::warn!(
            "no --prometheus-url: generating rules only; ErrorBudgetPolicies cannot read budgets and keep what they hold"
        ),
    }
    let (mut leading, lease) = leader::leadership(&args.leader, &client).await?;
    let term_settings = Term {
        scopes,
        ctx,
        stores,
        poller,
        poll_interval: std::time::Duration::from_millis(args.poll_interval.as_millis()),
        release_event_share: args.release_event_share,
        leading: leading.clone(),
    };

    tracing::info!(version = env!("CARGO_PKG_VERSION"), "slo-warden controller started");
    let failed = lead_when_elected(&term_settings, &mut leading, &shutdown, &metrics).await;
    shutdown.cancel();
    // Our writes have stopped: hand the Lease over (the manager releases it once every
    // receiver of our leadership is gone, the term settings' too).
    drop(term_settings);
    drop(leading);
    if let Some(lease) = lease {
        let _ = lease.await;
    }
    for t in tasks {
        let _ = t.await;
    }
    if let Some(webhook) = webhook {
        webhook.await??;
    }
    server.await??;
    if let Some(why) = failed {
        return Err(why.into());
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Runs a term of `term_settings` each time this replica leads, until `shutdown`; why leading
/// stopped for good when it was not the shutdown.
async fn lead_when_elected(
    term_settings: &Term,
    leading: &mut tokio::sync::watch::Receiver<bool>,
    shutdown: &CancellationToken,
    metrics: &Metrics,
) -> Option<&'static str> {
    let mut failed = None;
    'terms: while !shutdown.is_cancelled() {
        // Wait for the Lease (at once without leader election).
        while !*leading.borrow_and_update() {
            tokio::select! {
                changed = leading.changed() => if changed.is_err() {
                    failed = Some("leader election stopped");
                    break 'terms;
                },
                _ = shutdown.cancelled() => break 'terms,
            }
        }
        tracing::info!("leading: reconciling, polling and enforcing");
        metrics.leader.set(1);
        let term = shutdown.child_token();
        let work = term_settings.lead(term.clone());
        tokio::pin!(work);
        let lost = loop {
            tokio::select! {
                _ = &mut work => break false,
                changed = leading.changed() => if changed.is_err() || !*leading.borrow_and_update() {
                    break true;
                },
            }
        };
        if lost {
            // Stop before anyone else can start: the Lease outlives us by its duration.
            tracing::warn!("lost the Lease: stopping reconcilers and the poller");
            term.cancel();
            work.await;
        }
        metrics.leader.set(0);
    }
    failed
}

/// What a leadership term runs: the SLO and policy reconcilers and the poll loop, with the
/// context they share (its client, recorder and metrics serve the policy reconciler too).
struct Term {
    scopes: Vec<Option<String>>,
    ctx: Arc<Context>,
    stores: cache::Stores,
    poller: Option<crate::budget::Poller>,
    poll_interval: std::time::Duration,
    release_event_share: f64,
    /// Checked again before every policy write, so a replica that lost the Lease mid-term
    /// writes nothing more.
    leading: tokio::sync::watch::Receiver<bool>,
}

impl Term {
    /// Runs until `term` is cancelled. Every term starts from the cluster: nothing it decides
    /// depends on what an earlier term (or another replica) kept in memory.
    async fn lead(&self, term: CancellationToken) {
        let policy_watches: Vec<_> = self
            .scopes
            .iter()
            .map(|scope| cache::reconciled::<ErrorBudgetPolicy>(&self.ctx.client, scope))
            .collect();
        let mut shared = PolicyContext::new(
            self.ctx.client.clone(),
            self.ctx.recorder.clone(),
            self.ctx.metrics.clone(),
            self.poll_interval,
            self.stores.clone(),
            policy_watches.iter().map(|(_, cache)| cache.clone()).collect(),
            self.leading.clone(),
        );
        shared.release_event_share = self.release_event_share;
        let shared = Arc::new(shared);
        let mut policy_watches = policy_watches.into_iter();
        let (trigger, triggered) = tokio::sync::watch::channel(0u64);
        let poll = tokio::spawn(poll::poll_loop(
            self.poller.clone(),
            shared.clone(),
            trigger,
            term.clone(),
        ));
        let mut controllers = Vec::new();
        self.ctx.rule_versions.reset();
        for (scope, stores) in self.scopes.iter().zip(&self.stores.0) {
            let (mut versions, rules_synced) = self.ctx.rule_versions.follower();
            let controller = Controller::for_shared_stream(slo_triggers(stores, rules_synced), stores.slos.clone())
                // Only the owner references and versions of rules are read: their metadata
                // suffices, and a relist of ten thousand rules then moves a tenth of the bytes.
                .owns_stream(
                    watcher(
                        scoped::<PartialObjectMeta<PrometheusRule>>(&self.ctx.client, scope),
                        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}")),
                    )
                    .default_backoff()
                    .map_ok(move |event| {
                        versions.follow(&event);
                        event
                    })
                    .touched_objects(),
                )
                .with_config(controller_config().debounce(SLO_DEBOUNCE))
                .graceful_shutdown_on(term.clone().cancelled_owned());
            controllers.push(
                controller
                    .run(slo::reconcile, slo::error_policy, self.ctx.clone())
                    .for_each(log_result)
                    .boxed_local(),
            );
            let (policies, policy_cache) = policy_watches.next().expect("one policy watch per scope");
            let policy_controller = Controller::for_stream(policies, policy_cache)
                .watches(
                    scoped::<ErrorBudgetOverride>(&self.ctx.client, scope),
                    watcher::Config::default(),
                    |o: ErrorBudgetOverride| {
                        let ns = o.namespace()?;
                        Some(ObjectRef::<ErrorBudgetPolicy>::new(&o.spec.policy).within(&ns))
                    },
                )
                .reconcile_all_on(poll::triggers(triggered.clone()))
                .with_config(controller_config())
                .graceful_shutdown_on(term.clone().cancelled_owned());
            controllers.push(
                policy_controller
                    .run(policy::reconcile, policy::error_policy, shared.clone())
                    .for_each(log_result)
                    .boxed_local(),
            );
        }
        // A controller stops once its in-flight reconciles finish, but one whose cache never
        // synced (API server unreachable, a watch RBAC refuses) waits for that first, for ever:
        // after the term ends they get `STOP_GRACE`, then are dropped (their reconciles with
        // them; every write is idempotent and carries a resourceVersion).
        let all = futures::future::join_all(controllers);
        tokio::pin!(all);
        tokio::select! {
            _ = &mut all => {}
            _ = async {
                term.cancelled().await;
                tokio::time::sleep(STOP_GRACE).await;
            } => tracing::warn!(grace = ?STOP_GRACE, "reconcilers did not stop in time after the term ended; stopping them"),
        }
        term.cancel();
        let _ = poll.await;
    }
}

/// How long reconciles in flight may finish after a term ends (shutdown, a lost Lease).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a term's first reconciles wait for the rule watch's first list: with it, an SLO
/// whose rule is as it left it reads nothing back; without it (a watch that cannot list), each
/// reads its rule.
const RULES_LISTED: std::time::Duration = std::time::Duration::from_secs(60);

/// What the SLO reconciler of a term runs on: every SLO once when the shared cache and the
/// rule watch are ready (a term starts from the cluster), then each SLO its watch touches.
/// Subscribed before the first listing, so nothing in between is missed; should the
/// reconciler fall behind, every SLO again.
fn slo_triggers(
    scope: &cache::ScopeCaches,
    mut rules_synced: tokio::sync::watch::Receiver<bool>,
) -> impl futures::Stream<Item = Arc<Guarded>> + Send + 'static {
    let changes = scope.slo_changes.subscribe();
    let (scope, again) = (scope.clone(), scope.slos.clone());
    let all = futures::stream::once(async move {
        scope.slos_synced().await;
        if tokio::time::timeout(RULES_LISTED, rules_synced.wait_for(|s| *s))
            .await
            .is_err()
        {
            tracing::warn!(wait = ?RULES_LISTED, "owned PrometheusRules not listed yet; reconciling SLOs without them");
        }
        futures::stream::iter(scope.slos.state())
    })
    .flatten();
    let touched = futures::stream::unfold(changes, move |mut changes| {
        let again = again.clone();
        async move {
            use tokio::sync::broadcast::error::RecvError;
            let batch = match changes.recv().await {
                Ok(SloChange::Touched(slo)) => vec![slo],
                Ok(SloChange::Relisted) => again.state(),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "SLO changes came faster than reconciles; reconciling every SLO");
                    again.state()
                }
                Err(RecvError::Closed) => return None,
            };
            Some((futures::stream::iter(batch), changes))
        }
    })
    .flatten();
    all.chain(touched)
}

/// Reconciles at once per controller. Unbounded, a cold start of ten thousand SLOs holds ten
/// thousand requests and their buffers in flight (the process keeps that memory afterwards);
/// this many keep the API server busy without queueing behind each other.
const CONCURRENCY: u16 = 16;

/// An SLO reconcile triggers itself twice: by creating its rule and by writing its status.
/// Without a pause the second run can read the cache before the status write reached it, see
/// no status, and write it again (a cold start of 10,000 SLOs wrote 2.7 statuses per SLO).
/// Requests for one SLO within this time are merged into one.
const SLO_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(1);

fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(CONCURRENCY)
}

async fn log_result<K: std::fmt::Display, E: std::fmt::Display>(
    result: Result<(K, kube::runtime::controller::Action), E>,
) {
    match result {
        Ok((obj, _)) => tracing::debug!(object = %obj, "reconciled"),
        Err(e) => tracing::warn!(error = %e, "reconcile loop"),
    }
}

/// The lists that must work in one watched scope before the controller is ready.
type Probe = (
    Api<DeserializeGuard<ServiceLevelObjective>>,
    Api<PrometheusRule>,
    Api<ErrorBudgetPolicy>,
);

/// Ready once every watched scope can be listed: the CRDs exist and RBAC allows the watches.
async fn mark_ready_when_listable(probes: Vec<Probe>, ready: Arc<AtomicBool>, shutdown: CancellationToken) {
    let lp = kube::api::ListParams::default().limit(1);
    let mut failures = 0;
    loop {
        let mut ok = true;
        for (slos, rules, policies) in &probes {
            if let Err(e) = policies.list_metadata(&lp).await {
                tracing::warn!(error = %e, "cannot list ErrorBudgetPolicies yet");
                ok = false;
            }
            if let Err(e) = slos.list_metadata(&lp).await {
                tracing::warn!(error = %e, "cannot list ServiceLevelObjectives yet");
                ok = false;
            }
            if let Err(e) = rules.list_metadata(&lp).await {
                tracing::warn!(error = %e, "cannot list PrometheusRules yet");
                ok = false;
            }
        }
        if ok {
            ready.store(true, Ordering::Relaxed);
            tracing::info!("watches can list; ready");
            return;
        }
        failures += 1;
        tokio::select! {
            _ = tokio::time::sleep(backoff::delay(failures)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Cancels `token` on SIGINT or SIGTERM.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
    token.cancel();
}
