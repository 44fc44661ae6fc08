//! `slo-warden ui`: one page for every SLO, budget and freeze of every connected cluster, served
//! from watch caches of their SLOs, policies and overrides. Read only: it needs get, list and
//! watch on the three kinds, nothing else.
//!
//! Server-rendered HTML (maud, escaped by construction) with a stylesheet and a small script
//! embedded in the binary: nothing is downloaded at build or run time, and every page works
//! without the script.

pub mod clusters;
pub mod format;
pub mod list;
pub mod pages;
pub mod server;
pub mod summary;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use clusters::Cluster;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A cluster to show: NAME=CONTEXT (a context of the kubeconfig) or NAME alone (the default
    /// configuration: in a pod its service account, elsewhere the current context). Repeatable;
    /// default: one cluster, `local`, with the default configuration.
    #[arg(long = "cluster", value_parser = clusters::parse_cluster)]
    pub clusters: Vec<(String, Option<String>)>,
    /// Address to serve the UI on.
    #[arg(long, env = "UI_HTTP_ADDR", default_value = "127.0.0.1:8081")]
    pub http_addr: SocketAddr,
    /// Grafana's URL (with its path prefix), for links to slo-warden's dashboards.
    #[arg(long, env = "GRAFANA_URL")]
    pub grafana_url: Option<String>,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = crate::controller::LogFormat::Text)]
    pub log_format: crate::controller::LogFormat,
}

pub fn main(args: Args) -> ExitCode {
    crate::controller::init_tracing(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if let Some(g) = &args.grafana_url
        && !(g.starts_with("https://") || g.starts_with("http://"))
    {
        return Err(format!("--grafana-url {g:?}: an http:// or https:// URL"));
    }
    let wanted = if args.clusters.is_empty() {
        vec![("local".to_string(), None)]
    } else {
        args.clusters.clone()
    };
    let mut names = std::collections::BTreeSet::new();
    for (name, _) in &wanted {
        if !names.insert(name) {
            return Err(format!(
                "--cluster {name} is given twice: each cluster needs its own name"
            ));
        }
    }
    let shutdown = CancellationToken::new();
    let mut clusters = Vec::new();
    let mut tasks = Vec::new();
    for (name, context) in &wanted {
        let (cluster, t) = Cluster::connect(name, context.as_deref(), shutdown.clone()).await?;
        clusters.push(cluster);
        tasks.extend(t);
    }
    let ui = server::Ui {
        clusters: Arc::new(clusters),
        grafana: args.grafana_url.as_deref().map(Arc::from),
    };
    let app = server::router(ui);
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        crate::controller::cancel_on_signal(stop).await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    tracing::info!(addr = %args.http_addr, clusters = ?names, "serving the UI");
    eprintln!("slo-warden UI: http://{}/", args.http_addr);
    let served = crate::serving::server(axum_server::bind(args.http_addr), &server::LIMITS)
        .handle(handle)
        .serve(app.into_make_service())
        .await
        .map_err(|e| format!("cannot serve on {}: {e}", args.http_addr));
    shutdown.cancel();
    for t in tasks {
        let _ = t.await;
    }
    served
}
