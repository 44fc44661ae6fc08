//! The web UI at 10,000 SLOs (100 namespaces of 100, with 1,000 policies), served from its
//! caches as `slo-warden ui` serves it: the time of each page server-side (the request through
//! the router, every SLO summarised, the page rendered), its size, and the heap the cached
//! objects take.
//!
//! `cargo bench --bench ui` (about 10 s); `-- --slos N` for another fleet size. Exits 1 when a
//! goal is missed: the list of every SLO, and the ledger of their releases, answer within 200 ms,
//! whatever the filter or page.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use slo_warden::ui::clusters::Cluster;
use slo_warden::ui::series::Series;
use slo_warden::ui::server::{Ui, router};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, layout) };
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const GOAL: Duration = Duration::from_millis(200);

/// An SLO as the operator leaves it at scale: conditions, a budget with seven burn rates, two
/// releases.
fn slo(ns: usize, j: usize) -> slo_warden::api::ServiceLevelObjective {
    let namespace = format!("team-{ns:03}");
    let remaining = ((ns * 100 + j) * 7919 % 1000) as f64 / 1000.0;
    serde_json::from_value(json!({
        "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
        "metadata": {"name": format!("slo-{j:03}"), "namespace": namespace, "uid": format!("{ns}-{j}"),
                     "resourceVersion": "1234567", "generation": 1, "creationTimestamp": "2027-01-15T08:00:00Z",
                     "labels": {"group": format!("g{}", j / 10)}},
        "spec": {"service": format!("svc-{j}"), "objective": 99.9, "window": "30d",
                 "indicator": {"ratio": {
                     "errors": format!("http_requests_total{{job=\"api\",namespace=\"{namespace}\",service=\"svc-{j}\",code=~\"5..\"}}"),
                     "total": format!("http_requests_total{{job=\"api\",namespace=\"{namespace}\",service=\"svc-{j}\"}}")}}},
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "RulesApplied", "message": "PrometheusRule in place", "lastTransitionTime": "2027-01-15T08:01:00Z", "observedGeneration": 1},
                {"type": "SignalHealthy", "status": "True", "reason": "SignalHealthy", "message": "sampled every 30s", "lastTransitionTime": "2027-01-15T08:03:00Z", "observedGeneration": 1}],
            "budget": {"remaining": remaining, "state": if remaining < 0.2 { "Burning" } else { "Healthy" },
                       "burnRates": {"5m": 0.5, "30m": 0.4, "1h": remaining * 3.0, "2h": 0.41, "6h": 0.39, "1d": 0.4, "3d": 0.41},
                       "longRunBurnRate": 0.41, "longRunCovered": "40d", "scrapeInterval": "30s", "evaluatedAt": "2027-01-15T09:00:00Z"},
            "releases": [
                {"kind": "Deployment", "workload": format!("web-g{}-0", j / 10), "revision": 2, "images": ["registry.example.com/web:1.5.0"],
                 "changedBy": "kubectl-set", "startedAt": "2027-01-15T08:30:00Z", "errors": 12.0, "requests": 10000.0, "budgetBurned": 0.0012, "burnRateSince": 0.4},
                {"kind": "Deployment", "workload": format!("web-g{}-1", j / 10), "revision": 1, "images": ["registry.example.com/web:1.4.0"],
                 "changedBy": "kubectl-create", "startedAt": "2027-01-10T08:00:00Z", "errors": 3.0, "requests": 90000.0, "budgetBurned": 0.0003, "burnRateSince": 0.03}],
        },
    }))
    .unwrap()
}

fn policy(ns: usize, g: usize) -> slo_warden::api::ErrorBudgetPolicy {
    serde_json::from_value(json!({
        "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetPolicy",
        "metadata": {"name": format!("policy-g{g}"), "namespace": format!("team-{ns:03}")},
        "spec": {"slos": {"selector": {"matchLabels": {"group": format!("g{g}")}}},
                 "stages": [{"name": "fast-burn", "when": [{"burnRate": {"window": "5m", "above": 14.4}}], "actions": ["freezeDeployments"]}],
                 "targets": {"deployments": {"matchLabels": {"group": format!("g{g}")}}}},
        "status": {"stage": "", "reason": "every SLO within budget"},
    }))
    .unwrap()
}

async fn get(app: &axum::Router, uri: &str) -> (Duration, usize) {
    let started = Instant::now();
    let r = app
        .clone()
        .oneshot(http::Request::get(uri).body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), http::StatusCode::OK, "{uri}");
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (started.elapsed(), body.len())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let slos: usize = args
        .iter()
        .position(|a| a == "--slos")
        .and_then(|i| args.get(i + 1))
        .map_or(10_000, |n| n.parse().expect("--slos N"));
    let namespaces = slos.div_ceil(100);
    let before = LIVE.load(Ordering::Relaxed);
    let cluster = Cluster::holding(
        "prod",
        (0..slos).map(|i| slo(i / 100, i % 100)).collect(),
        (0..namespaces)
            .flat_map(|ns| (0..10).map(move |g| policy(ns, g)))
            .collect(),
        vec![],
    );
    let cached = LIVE.load(Ordering::Relaxed) - before;
    let ui = Ui {
        clusters: Arc::new(vec![cluster]),
        grafana: None,
        series: Arc::new(Series::new(Default::default())),
    };
    let app = router(ui);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "slo-warden ui at {slos} SLOs, {} policies: {:.1} MiB of cached objects",
        namespaces * 10,
        cached as f64 / 1048576.0
    );
    println!("{:<52} {:>10} {:>10} {:>10}", "page", "median", "max", "size");
    let mut missed = false;
    for (what, uri, goal) in [
        ("list, least budget first (page 1 of 100)", "/", true),
        ("list, by burn rate, page 50", "/?sort=burn&page=50", true),
        ("list, searched (\"svc-42\")", "/?q=svc-42", true),
        (
            "list, one namespace, Burning",
            "/?namespace=team-007&state=Burning",
            true,
        ),
        ("list, 500 a page", "/?per=500", true),
        ("an SLO's page", "/slos/prod/team-042/slo-042", false),
        ("policies (page 1 of 10)", "/policies", false),
        ("a policy's page", "/policies/prod/team-042/policy-g4", false),
        ("releases, newest first (2 an SLO)", "/releases", true),
        ("releases, most budget burned first", "/releases?sort=burned", true),
        ("releases, searched (an image)", "/releases?q=web:1.4.0", true),
    ] {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..15 {
            let (t, s) = runtime.block_on(get(&app, uri));
            times.push(t);
            size = s;
        }
        times.sort();
        let (median, max) = (times[times.len() / 2], times[times.len() - 1]);
        let mark = if goal && median > GOAL {
            missed = true;
            "  MISSED"
        } else {
            ""
        };
        println!(
            "{what:<52} {:>8.1}ms {:>8.1}ms {:>8.1}KiB{mark}",
            median.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0,
            size as f64 / 1024.0
        );
    }
    println!("goal: every list within {} ms (median)", GOAL.as_millis());
    if missed {
        std::process::exit(1);
    }
}
