//! The controller process: one shutdown signal for the watches, the HTTP server and the
//! signal handler; the reconcilers live in submodules.

pub mod backoff;
pub mod slo;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::core::DeserializeGuard;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::api::{PrometheusRule, ServiceLevelObjective};
use crate::http::{self, Health};
use crate::metrics::Metrics;
use crate::rules::{MANAGED_BY_LABEL, MANAGER};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Namespaces to watch (repeatable or comma-separated); all namespaces when empty.
    #[arg(long = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Label added to every generated PrometheusRule (repeatable), e.g. release=kube-prometheus-stack.
    #[arg(long = "rule-label", env = "RULE_LABELS", value_delimiter = ',', value_parser = parse_label)]
    pub rule_labels: Vec<(String, String)>,
    /// Scrape interval of the SLIs' source series (keeps the window ratio exact).
    #[arg(long, env = "SCRAPE_INTERVAL", default_value = "30s", value_parser = crate::duration::Duration::parse)]
    pub scrape_interval: crate::duration::Duration,
    /// Prometheus to read burn rates and budgets from.
    #[arg(long, env = "PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    Json,
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
    pub backoff: backoff::Backoff<(String, String)>,
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
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        settings: crate::rules::Settings {
            scrape_interval: args.scrape_interval,
            rule_labels: args.rule_labels.into_iter().collect(),
        },
        backoff: backoff::Backoff::default(),
    });

    // One controller per watched namespace (or one for the whole cluster).
    let scopes: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.into_iter().map(Some).collect()
    };
    let mut controllers = Vec::new();
    let mut probes = Vec::new();
    for scope in scopes {
        let (slos, rules): (Api<DeserializeGuard<ServiceLevelObjective>>, Api<PrometheusRule>) = match &scope {
            Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
        probes.push((slos.clone(), rules.clone()));
        let controller = Controller::new(slos, watcher::Config::default().any_semantic())
            .owns(
                rules,
                watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}")),
            )
            .graceful_shutdown_on(shutdown.clone().cancelled_owned());
        controllers.push(controller.run(slo::reconcile, slo::error_policy, ctx.clone()).for_each(
            |result| async move {
                match result {
                    Ok((obj, _)) => tracing::debug!(object = %obj, "reconciled"),
                    Err(e) => tracing::warn!(error = %e, "reconcile loop"),
                }
            },
        ));
    }
    tokio::spawn(mark_ready_when_listable(probes, health.ready.clone(), shutdown.clone()));

    tracing::info!(version = env!("CARGO_PKG_VERSION"), "slo-warden controller started");
    futures::future::join_all(controllers).await;
    shutdown.cancel();
    server.await??;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Ready once every watched scope can be listed: the CRDs exist and RBAC allows the watches.
async fn mark_ready_when_listable(
    probes: Vec<(Api<DeserializeGuard<ServiceLevelObjective>>, Api<PrometheusRule>)>,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let lp = kube::api::ListParams::default().limit(1);
    let mut failures = 0;
    loop {
        let mut ok = true;
        for (slos, rules) in &probes {
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
