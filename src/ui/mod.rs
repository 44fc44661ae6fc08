//! `slo-warden ui`: one page for every SLO, budget and freeze of every connected cluster, served
//! from watch caches of their SLOs, policies and overrides. Read only: it needs get, list and
//! watch on the three kinds, nothing else.
//!
//! Server-rendered HTML (maud, escaped by construction) with a stylesheet and a small script
//! embedded in the binary: nothing is downloaded at build or run time, and every page works
//! without the script.

pub mod chart;
pub mod clusters;
pub mod format;
pub mod list;
pub mod pages;
pub mod paging;
pub mod releases;
pub mod series;
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
    /// The Prometheus of one cluster, when clusters have their own: NAME=URL (repeatable). The
    /// other clusters read --prometheus-url. The other --prometheus-* flags apply to all.
    #[arg(long = "cluster-prometheus-url", value_parser = parse_cluster_url)]
    pub cluster_prometheus: Vec<(String, String)>,
    /// The external label that names the cluster on each series, when one Prometheus (Thanos,
    /// Mimir) at --prometheus-url holds several clusters' series: the charts of cluster NAME read
    /// {LABEL="NAME"} there. Not applied to a cluster with its own --cluster-prometheus-url.
    #[arg(long, env = "PROMETHEUS_CLUSTER_LABEL")]
    pub prometheus_cluster_label: Option<String>,
    #[command(flatten)]
    pub prometheus: crate::budget::args::PrometheusArgs,
    /// Grafana's URL (with its path prefix), for links to slo-warden's dashboards.
    #[arg(long, env = "GRAFANA_URL")]
    pub grafana_url: Option<String>,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = crate::controller::LogFormat::Text)]
    pub log_format: crate::controller::LogFormat,
}

fn parse_cluster_url(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, url)) if !name.is_empty() && !url.is_empty() => Ok((name.to_string(), url.to_string())),
        _ => Err(format!(
            "{s:?} is not NAME=URL (e.g. prod-eu=http://prometheus.prod-eu:9090)"
        )),
    }
}

pub fn main(args: Args) -> ExitCode {
    crate::controller::run_process(args.log_format, run(args))
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
    if let Some(label) = &args.prometheus_cluster_label
        && !crate::validate::is_label_name(label)
    {
        return Err(format!(
            "--prometheus-cluster-label {label:?}: not a Prometheus label name"
        ));
    }
    let mut sources = std::collections::HashMap::new();
    for (name, _) in &wanted {
        let own = args
            .cluster_prometheus
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, u)| u.clone());
        let cluster_label = match own {
            Some(_) => None,
            None => args.prometheus_cluster_label.clone(),
        };
        let poller = crate::budget::Poller::new(&crate::budget::args::PrometheusArgs {
            prometheus_url: own.or_else(|| args.prometheus.prometheus_url.clone()),
            ..args.prometheus.clone()
        })
        .map_err(|e| format!("cluster {name}: {e}"))?;
        if let Some(prometheus) = poller {
            sources.insert(
                name.clone(),
                series::Source {
                    prometheus,
                    cluster_label,
                },
            );
        }
    }
    for (name, _) in &args.cluster_prometheus {
        if !names.contains(&name) {
            return Err(format!(
                "--cluster-prometheus-url {name}=...: no --cluster is named {name}"
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
        series: Arc::new(series::Series::new(sources)),
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
