//! The controller process: one shutdown signal for the watches, the HTTP server and the
//! signal handler; the reconcilers live in submodules.

pub mod backoff;
pub mod budget;
pub mod index;
pub mod leader;
pub mod policy;
pub mod rule_versions;
pub mod slo;
pub mod unwind;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{FutureExt, StreamExt, TryStreamExt};
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::api::{ErrorBudgetOverride, ErrorBudgetPolicy, PrometheusRule, ServiceLevelObjective};
use crate::enforce::cache::slim;
use crate::http::{self, Health};
use crate::metrics::Metrics;
use crate::rules::{MANAGED_BY_LABEL, MANAGER};

/// A namespace name as Kubernetes allows it (an RFC 1123 label), checked at startup: it goes
/// into API paths and into the PromQL matchers that limit the budget queries to it. An empty
/// value (`WATCH_NAMESPACES=""`, a trailing comma) adds no namespace.
fn namespace_name(s: &str) -> Result<String, String> {
    let ok = s.is_empty()
        || (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a namespace name: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

/// The namespaces to watch from the flag's values: empty values dropped, each namespace once,
/// sorted.
fn watched(mut namespaces: Vec<String>) -> Vec<String> {
    namespaces.retain(|n| !n.is_empty());
    namespaces.sort_unstable();
    namespaces.dedup();
    namespaces
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Namespaces to watch (repeatable or comma-separated); all namespaces when none is given.
    #[arg(long = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',', value_parser = namespace_name)]
    pub namespaces: Vec<String>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Label added to every generated PrometheusRule (repeatable), e.g. release=kube-prometheus-stack.
    #[arg(long = "rule-label", env = "RULE_LABELS", value_delimiter = ',', value_parser = parse_label)]
    pub rule_labels: Vec<(String, String)>,
    /// Scrape interval of the SLIs' source series, at most 5m (an SLO's spec.scrapeInterval
    /// overrides it): each tile reads one interval more than its length.
    #[arg(long, env = "SCRAPE_INTERVAL", default_value = "30s", value_parser = parse_scrape_interval)]
    pub scrape_interval: crate::duration::Duration,
    /// How often the burn-rate alerts (and the short-window tiles they read) are evaluated:
    /// the `sli` rule group's interval, and the length of its tiles.
    #[arg(long, env = "ALERT_INTERVAL", default_value = "1m", value_parser = parse_alert_interval)]
    pub alert_interval: crate::duration::Duration,
    /// Let SLIs read series of other namespaces (a `namespace` matcher other than the SLO's
    /// own). Off: such an SLO is refused (at apply by the webhook, and in its status), as a
    /// tenant could otherwise measure, or make its alerts read, another team's traffic.
    #[arg(long, env = "ALLOW_CROSS_NAMESPACE_SLI")]
    pub allow_cross_namespace_sli: bool,
    #[command(flatten)]
    pub prometheus: crate::budget::PrometheusArgs,
    #[command(flatten)]
    pub leader: leader::LeaderArgs,
    #[command(flatten)]
    pub webhook: crate::admission::WebhookArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    Json,
}

/// A `--scrape-interval`: positive and at most an SLO's `spec.scrapeInterval` (5m). Below a
/// second only for series stamped exactly on the evaluations, as in rule unit tests.
pub fn parse_scrape_interval(s: &str) -> Result<crate::duration::Duration, String> {
    use crate::api::bounds;
    bounds::duration(s, bounds::POSITIVE, bounds::MAX_SCRAPE_INTERVAL, "1m")
}

/// A `--alert-interval`, within the bounds of [`crate::rules::check_alert_interval`].
pub fn parse_alert_interval(s: &str) -> Result<crate::duration::Duration, String> {
    crate::rules::check_alert_interval(crate::duration::Duration::parse(s)?)
}

/// `key=value` of a `--rule-label`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

/// What every reconciler shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub settings: crate::rules::Settings,
    /// `--allow-cross-namespace-sli`.
    pub allow_cross_namespace_sli: bool,
    pub backoff: backoff::Backoff<(String, String)>,
    /// What the rule watch shows of the owned PrometheusRules.
    pub rule_versions: rule_versions::RuleVersions,
}

pub fn main(args: Args) -> ExitCode {
    init_tracing(args.log_format);
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
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "slo-warden stopped");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
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
        let (slo_store, writer) = reflector::store();
        let slo_watch = reflector::reflector(
            writer,
            watcher(
                scoped::<DeserializeGuard<ServiceLevelObjective>>(&client, scope),
                watcher::Config::default().any_semantic(),
            )
            .modify(slim),
        )
        .default_backoff();
        let (override_store, writer) = reflector::store();
        let override_watch = reflector::reflector(
            writer,
            watcher(
                scoped::<ErrorBudgetOverride>(&client, scope),
                watcher::Config::default().any_semantic(),
            )
            .modify(slim),
        )
        .default_backoff()
        .touched_objects();
        let (slo_changes, _) = tokio::sync::broadcast::channel(SLO_CHANGES);
        // Synced once the first list is in the cache. Known from the watch itself: the
        // cache's own `wait_until_ready` wakes only one of several waiters, and the SLO
        // reconciler of each term is one already.
        let (synced, slos_synced) = tokio::sync::watch::channel(false);
        let slo_index = index::ByNamespace::default();
        let (cache, changes, by_namespace) = (slo_store.clone(), slo_changes.clone(), slo_index.clone());
        let mut seen = Fingerprints::default();
        tasks.push(tokio::spawn(drain(
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
        )));
        tasks.push(tokio::spawn(drain(
            override_watch,
            "ErrorBudgetOverrides",
            |_| {},
            shutdown.clone(),
        )));
        // The workloads policies act on, so that a poll lists none of them.
        let (deployments, task) = crate::enforce::cache::Targets::watch(
            &client,
            scope,
            crate::enforce::workload::deployments().resource,
            shutdown.clone(),
        );
        tasks.push(task);
        let (rollouts, task) = crate::enforce::cache::Targets::watch(
            &client,
            scope,
            crate::enforce::rollout::resource(),
            shutdown.clone(),
        );
        tasks.push(task);
        stores.push(budget::Scope {
            slos: slo_store,
            slo_index,
            slo_changes,
            slos_synced,
            overrides: override_store,
            deployments,
            rollouts,
        });
        probes.push((scoped(&client, scope), scoped(&client, scope), scoped(&client, scope)));
    }
    let stores = budget::Stores(stores);
    tokio::spawn(mark_ready_when_listable(probes, health.ready.clone(), shutdown.clone()));
    // Every replica answers admission reviews.
    let webhook = match args.webhook.webhook_addr {
        Some(addr) => {
            let state = Arc::new(crate::admission::Webhook {
                client: client.clone(),
                stores: stores.clone(),
                metrics: metrics.clone(),
                identity: Default::default(),
                allow_cross_namespace_sli: args.allow_cross_namespace_sli,
            });
            Some(tokio::spawn(crate::admission::serve(
                args.webhook.clone(),
                addr,
                state,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    match &poller {
        // The URL as the poller reads it, without the user name and password it may carry.
        Some(p) => tracing::info!(
            prometheus = %p.url(),
            interval = %args.prometheus.poll_interval,
            "reading error budgets from Prometheus"
        ),
        None => tracing::warn!(
            "no --prometheus-url: generating rules only; ErrorBudgetPolicies cannot read budgets and keep what they hold"
        ),
    }
    let (mut leading, lease) = leader::leadership(&args.leader, &client).await?;
    let term_settings = Term {
        client: client.clone(),
        scopes,
        ctx,
        stores,
        poller,
        recorder,
        metrics: metrics.clone(),
        poll_interval: std::time::Duration::from_millis(args.prometheus.poll_interval.as_millis()),
        leading: leading.clone(),
    };

    tracing::info!(version = env!("CARGO_PKG_VERSION"), "slo-warden controller started");
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

/// An API of one watched scope: a namespace, or all of them.
fn scoped<K>(client: &Client, scope: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// What a leadership term runs: the SLO and policy reconcilers and the poll loop.
struct Term {
    client: Client,
    scopes: Vec<Option<String>>,
    ctx: Arc<Context>,
    stores: budget::Stores,
    poller: Option<crate::budget::Poller>,
    recorder: Recorder,
    metrics: Metrics,
    poll_interval: std::time::Duration,
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
            .map(|scope| slim_watch::<ErrorBudgetPolicy>(&self.client, scope))
            .collect();
        let shared = Arc::new(budget::Shared::new(
            self.client.clone(),
            self.recorder.clone(),
            self.metrics.clone(),
            self.poll_interval,
            self.stores.clone(),
            policy_watches.iter().map(|(_, cache)| cache.clone()).collect(),
            self.leading.clone(),
        ));
        let mut policy_watches = policy_watches.into_iter();
        let (trigger, triggered) = tokio::sync::watch::channel(0u64);
        let poll = tokio::spawn(budget::poll_loop(
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
                        scoped::<PartialObjectMeta<PrometheusRule>>(&self.client, scope),
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
                    scoped::<ErrorBudgetOverride>(&self.client, scope),
                    watcher::Config::default(),
                    |o: ErrorBudgetOverride| {
                        let ns = o.namespace()?;
                        Some(ObjectRef::<ErrorBudgetPolicy>::new(&o.spec.policy).within(&ns))
                    },
                )
                .reconcile_all_on(budget::triggers(triggered.clone()))
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

/// Changes of SLOs buffered for a term's reconciler; one that falls further behind reconciles
/// every SLO instead.
const SLO_CHANGES: usize = 1024;

type Guarded = DeserializeGuard<ServiceLevelObjective>;

/// What the shared SLO watch tells a term's reconciler.
#[derive(Clone)]
pub enum SloChange {
    /// An SLO added or changed, as cached.
    Touched(Arc<Guarded>),
    /// The watch listed every SLO again (a new watch, or one that fell too far behind).
    Relisted,
}

/// How long a term's first reconciles wait for the rule watch's first list: with it, an SLO
/// whose rule is as it left it reads nothing back; without it (a watch that cannot list), each
/// reads its rule.
const RULES_LISTED: std::time::Duration = std::time::Duration::from_secs(60);

/// What the SLO reconciler of a term runs on: every SLO once when the shared cache and the
/// rule watch are ready (a term starts from the cluster), then each SLO its watch touches.
/// Subscribed before the first listing, so nothing in between is missed; should the
/// reconciler fall behind, every SLO again.
fn slo_triggers(
    scope: &budget::Scope,
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

/// The last [`slo::trigger_fingerprint`] of each SLO the watch showed, by hashed namespace and
/// name (two SLOs sharing an entry would at worst cost a reconcile, or delay one to the resync).
#[derive(Default)]
struct Fingerprints {
    last: std::collections::HashMap<u64, u64>,
    hasher: std::hash::RandomState,
}

impl Fingerprints {
    fn key(&self, slo: &Guarded) -> u64 {
        use std::hash::BuildHasher;
        let m = kube::Resource::meta(slo);
        self.hasher.hash_one((&m.namespace, &m.name))
    }

    /// Whether the SLO changed in what its reconcile reads since the watch last showed it.
    fn changed(&mut self, slo: &Guarded) -> bool {
        let fingerprint = slo::trigger_fingerprint(slo);
        self.last.insert(self.key(slo), fingerprint) != Some(fingerprint)
    }

    fn forget(&mut self, slo: &Guarded) {
        let key = self.key(slo);
        self.last.remove(&key);
    }

    /// A complete (re)list: every SLO is reconciled again, from these.
    fn relisted(&mut self, slos: &[Arc<Guarded>]) {
        self.last = slos
            .iter()
            .map(|s| (self.key(s), slo::trigger_fingerprint(s)))
            .collect();
    }
}

/// A controller's watch of its kind, slimmed: the objects that trigger it and its cache.
#[allow(clippy::type_complexity)]
fn slim_watch<K>(
    client: &Client,
    scope: &Option<String>,
) -> (
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    reflector::Store<K>,
)
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
    let stream = reflector::reflector(
        writer,
        watcher(scoped::<K>(client, scope), watcher::Config::default().any_semantic()).modify(slim),
    )
    .default_backoff()
    .touched_objects();
    (stream, cache)
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

/// Keeps a watch cache running until shutdown.
async fn drain<S, T, E>(stream: S, what: &'static str, mut each: impl FnMut(T), shutdown: CancellationToken)
where
    S: futures::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut stream = std::pin::pin!(stream);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Err(e)) => tracing::warn!(error = %e, "watch of {what}"),
                Some(Ok(object)) => each(object),
                None => return,
            },
            _ = shutdown.cancelled() => return,
        }
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

/// The longest note the API server stores in an Event (bytes); a longer one refuses the Event.
pub const EVENT_NOTE_BYTES: usize = 1024;

/// Publishes an Event about `reference`; a failure is logged, never fatal to a reconcile. A
/// note longer than the API server takes (a policy's message naming many SLOs) is cut short,
/// an ellipsis marking the cut, rather than lose the Event.
pub async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: kube::runtime::events::EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = kube::runtime::events::Event {
        type_,
        reason: reason.into(),
        note: Some(crate::api::bounds::cut_bytes(&note, EVENT_NOTE_BYTES)),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %e, reason, "cannot publish event");
    }
}

async fn cancel_on_signal(token: CancellationToken) {
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: Args,
    }

    fn namespaces(args: &[&str]) -> Result<Vec<String>, String> {
        Cli::try_parse_from(std::iter::once("slo-warden").chain(args.iter().copied()))
            .map(|c| c.run.namespaces)
            .map_err(|e| e.to_string())
    }

    fn guarded(name: &str, generation: i64, resource_version: &str) -> Arc<Guarded> {
        let slo: ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": name, "namespace": "shop", "uid": name, "generation": generation,
                         "resourceVersion": resource_version},
            "spec": {"objective": 99.9, "window": "30d", "indicator": {"raw": {"errorRatio": "x"}}},
        }))
        .unwrap();
        Arc::new(DeserializeGuard(Ok(slo)))
    }

    /// Touches that change nothing the reconcile reads are not passed on; after a relist or a
    /// deletion the next touch is.
    #[test]
    fn only_changes_the_reconcile_reads_trigger_it() {
        let mut seen = Fingerprints::default();
        assert!(seen.changed(&guarded("a", 1, "10")));
        assert!(!seen.changed(&guarded("a", 1, "11")), "a budget write");
        assert!(seen.changed(&guarded("b", 1, "12")));
        assert!(seen.changed(&guarded("a", 2, "13")), "a new spec");
        seen.relisted(&[guarded("a", 3, "20")]);
        assert!(!seen.changed(&guarded("a", 3, "21")));
        assert!(
            seen.changed(&guarded("b", 1, "22")),
            "not listed: gone, then created again"
        );
        seen.forget(&guarded("b", 1, "23"));
        assert!(seen.changed(&guarded("b", 1, "24")));
    }

    #[test]
    fn watched_namespaces_are_namespace_names() {
        assert_eq!(namespaces(&[]).unwrap(), Vec::<String>::new());
        assert_eq!(
            namespaces(&["--namespace", "shop,web-2", "--namespace=a"]).unwrap(),
            ["shop", "web-2", "a"]
        );
        // They become PromQL matchers and API paths: anything else is refused at startup.
        // Empty values add nothing (WATCH_NAMESPACES="" is all namespaces); a namespace given
        // twice is watched once, whatever order the flags gave.
        assert_eq!(watched(namespaces(&["--namespace="]).unwrap()), Vec::<String>::new());
        assert_eq!(
            watched(namespaces(&["--namespace=web,,shop", "--namespace=web,"]).unwrap()),
            ["shop", "web"]
        );
        for bad in [
            r#"shop"} or vector(1) #"#,
            "Shop",
            "-web",
            "web-",
            "a.b",
            &"x".repeat(64),
        ] {
            let e = namespaces(&[&format!("--namespace={bad}")]).unwrap_err();
            assert!(e.contains("is not a namespace name"), "{bad}: {e}");
        }
    }
}
