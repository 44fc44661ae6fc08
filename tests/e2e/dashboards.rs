//! The Grafana dashboards (`dashboards/*.json`) against the e2e Prometheus: every query of every
//! panel, with the template variables set as a person would set them, returns at least one
//! series with a finite value; every series selector in them matches series, so a misspelt
//! name cannot hide behind a zero fill; every variable offers the test's namespace, SLO and
//! policy.
//!
//! What they read, made to exist within a minute:
//! - an SLO's rules evaluated every 5 s: `slo-warden generate` of an SLO `dashboards` in the
//!   test's namespace, as a PrometheusRule of our own with every group's interval set to 5s
//!   (its `window` group records every 5 minutes and its `calibration` group hourly), and a
//!   page tier that fires after 10 s next to one that stays pending;
//! - the operator's own metrics: Prometheus scrapes it through cluster-up.sh's `slo-warden`
//!   job (a file_sd target file per test);
//! - a policy whose stage changes: errors on the SLO `checkout` make the policy freeze the
//!   Deployment `web` and the namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use kube::api::PostParams;
use promql_parser::parser::Expr;
use serde_json::{Value, json};

use slo_warden::api::PrometheusRule;

use super::policy::{BURN, burn_policy, create_deployment, create_policy, wait_deployment, wait_evaluated};
use super::support::{self, Ctx, K8S, Operator, Options, PROM, Sample, http_ok, urlencode};
use super::{create, fast_spec, wait_ready};

/// The SLO whose rules are evaluated every 5 s (overview and detail).
const SLO: &str = "dashboards";
const WINDOW: &str = "30d";
/// The policy over `checkout` (policy view).
const POLICY: &str = "checkout";

/// The operator with Prometheus, like the policy tests', started here to know its address.
async fn start_scraped_operator(ctx: &Ctx) {
    let Ok(dir) = std::env::var("PROMETHEUS_TARGETS_DIR").map(PathBuf::from) else {
        panic!(
            "PROMETHEUS_TARGETS_DIR is not set: the directory of file_sd targets Prometheus scrapes (cluster-up.sh)"
        );
    };
    let args: Vec<String> = [
        "--prometheus-url",
        &ctx.env.prometheus_url,
        "--poll-interval",
        &format!("{}s", support::POLICY_POLL.as_secs()),
        "--prometheus-timeout",
        "2s",
    ]
    .map(String::from)
    .to_vec();
    let op = Operator::start(&ctx.ns, &ctx.dir.join("operator.log"), &args);
    let (ready, addr) = (op.url("/readyz"), op.addr);
    ctx.adopt_operator(op);
    ctx.eventually("operator /readyz", K8S, async || http_ok("GET", &ready).map(drop))
        .await;

    // Written whole under another name, then renamed: Prometheus never reads half a file.
    let target = dir.join(format!("{}.json", ctx.ns));
    let tmp = dir.join(format!("{}.json.tmp", ctx.ns));
    let entry = json!([{"targets": [addr.to_string()], "labels": {"e2e_namespace": ctx.ns}}]);
    fs::write(&tmp, entry.to_string()).expect("write the scrape target");
    fs::rename(&tmp, &target).expect("install the scrape target");
    ctx.log(format!(
        "Prometheus scrapes the operator at {addr} ({})",
        target.display()
    ));
    ctx.on_cleanup(move || {
        let _ = fs::remove_file(&target);
    });
}

/// The rules of SLO `dashboards` as `slo-warden generate` writes them, every group evaluated
/// every 5 s, in a PrometheusRule of the test's namespace (rule sync loads it).
async fn install_fast_rules(ctx: &Ctx) {
    let slo = json!({
        "apiVersion": "slo.warden.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": SLO, "namespace": ctx.ns},
        "spec": {
            "service": ctx.service,
            "objective": 99.9,
            "window": WINDOW,
            "indicator": {"ratio": {
                "errors": format!(r#"http_requests_total{{job="traffic",service="{}",code="500"}}"#, ctx.service),
                "total": format!(r#"http_requests_total{{job="traffic",service="{}"}}"#, ctx.service),
            }},
            "alerting": {"burnRates": [
                {"long": "1h", "short": "5m", "factor": 14.4, "severity": "page", "for": "10s"},
                {"long": "6h", "short": "30m", "factor": 6, "severity": "page", "for": "15m"},
            ]},
        },
    });
    let mut generate = Command::new(env!("CARGO_BIN_EXE_slo-warden"));
    generate.args(["generate", "--format", "rulefile"]);
    if let Ok(s) = std::env::var("E2E_SCRAPE_INTERVAL") {
        generate.args(["--scrape-interval", &s]);
    }
    if let Ok(s) = std::env::var("E2E_EVAL_INTERVAL") {
        generate.args(["--alert-interval", &s]);
    }
    let mut child = generate
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run slo-warden generate");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_yaml::to_string(&slo).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "slo-warden generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut file: Value = serde_yaml::from_slice(&out.stdout).expect("generate prints a rule file");
    for group in file["groups"].as_array_mut().expect("groups") {
        group["interval"] = json!("5s");
    }
    let rule: PrometheusRule = serde_json::from_value(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": format!("{SLO}-every-5s")},
        "spec": file,
    }))
    .expect("a PrometheusRule");
    ctx.rules()
        .create(&PostParams::default(), &rule)
        .await
        .unwrap_or_else(|e| panic!("create PrometheusRule {SLO}-every-5s: {e}"));
    ctx.log(format!(
        "PrometheusRule {SLO}-every-5s: the rules of SLO {SLO}, every group every 5s"
    ));
}

/// Grafana's values for the variables the dashboards use.
fn variables(ctx: &Ctx) -> Vec<(&'static str, String)> {
    vec![
        ("${datasource}", "prometheus".into()),
        ("$__rate_interval", "1m".into()),
        ("$__interval", "15s".into()),
        ("$__range", "1h".into()),
        ("$namespace", ctx.ns.clone()),
        ("$slo", SLO.into()),
        ("$policy", POLICY.into()),
        ("$window", WINDOW.into()),
    ]
}

fn substitute(text: &str, vars: &[(&str, String)]) -> String {
    vars.iter()
        .fold(text.to_string(), |t, (var, value)| t.replace(var, value))
}

/// `dashboards/*.json` by file name.
fn dashboards() -> BTreeMap<String, Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).expect("dashboard JSON"))
        })
        .collect()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn finite(samples: &[Sample]) -> bool {
    samples.iter().any(|s| s.value.is_finite())
}

/// Points of a range query over the last two minutes, every 5 s (what a time series panel draws).
fn query_range(ctx: &Ctx, expr: &str) -> Result<Vec<f64>, String> {
    let end = now();
    let url = format!(
        "{}/api/v1/query_range?query={}&start={}&end={end}&step=5",
        ctx.env.prometheus_url,
        urlencode(expr),
        end - 120
    );
    let v: Value = serde_json::from_str(&http_ok("GET", &url)?).map_err(|e| e.to_string())?;
    if v["status"] != "success" {
        return Err(format!("{v}"));
    }
    Ok(v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p[1].as_str().and_then(|x| x.parse().ok()))
        .collect())
}

/// Series the dashboards read that this test does not make exist, and why.
const MAY_BE_ABSENT: [(&str, &str); 7] = [
    (
        "slo_warden_budget_exhausted_unenforced",
        "only while a spent budget goes unenforced",
    ),
    ("slo_warden_reconcile_failures_total", "only once a reconcile failed"),
    ("slo_warden_admission_reviews_total", "the webhook is not served here"),
    ("slo:long_run_covered:seconds", "from the first midnight with data on"),
    (
        "slo:sli_scrape_interval:seconds",
        "measured once the request series are 10 minutes old",
    ),
    (
        "SLOSignalUnhealthy",
        "fires only while request series are sampled too seldom",
    ),
    (
        "slo:window_covered:seconds",
        "counted hourly, from the group's first evaluation up to an hour after the rules load",
    ),
];

/// Whether an expression may return nothing because of series this test does not make exist:
/// a selector of one of those; an operation either side of which may be empty (`x / absent`),
/// but for `or`, which needs both and `unless`, which needs its left side; an aggregation or a
/// function of one.
fn reads_only_absent(ast: &Expr) -> bool {
    use promql_parser::parser::token::{T_LOR, T_LUNLESS};
    let absent = |s: String| MAY_BE_ABSENT.iter().any(|(name, _)| s.contains(name));
    match ast {
        Expr::VectorSelector(vs) => absent(vs.to_string()),
        Expr::MatrixSelector(ms) => absent(ms.vs.to_string()),
        Expr::Aggregate(a) => reads_only_absent(&a.expr),
        Expr::Unary(u) => reads_only_absent(&u.expr),
        Expr::Binary(b) => match b.op.id() {
            T_LOR => reads_only_absent(&b.lhs) && reads_only_absent(&b.rhs),
            T_LUNLESS => reads_only_absent(&b.lhs),
            _ => reads_only_absent(&b.lhs) || reads_only_absent(&b.rhs),
        },
        Expr::Paren(p) => reads_only_absent(&p.expr),
        Expr::Subquery(s) => reads_only_absent(&s.expr),
        Expr::Call(c) => c.args.args.iter().any(|a| reads_only_absent(a)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}

/// The series selectors of an expression, as PromQL.
fn selectors(expr: &Expr, out: &mut BTreeSet<String>) {
    match expr {
        Expr::VectorSelector(vs) => {
            out.insert(vs.to_string());
        }
        Expr::MatrixSelector(ms) => {
            out.insert(ms.vs.to_string());
        }
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| selectors(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Every query of every panel; `Err` lists each that returned nothing finite, by dashboard,
/// panel and expression, and each selector that matches no series.
fn check_panels(ctx: &Ctx, all: &BTreeMap<String, Value>) -> Result<(usize, usize), String> {
    let vars = variables(ctx);
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut used = BTreeSet::new();
    for (file, d) in all {
        for p in d["panels"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default();
            let ranged = matches!(p["type"].as_str(), Some("timeseries" | "state-timeline"));
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = substitute(t["expr"].as_str().unwrap_or_default(), &vars);
                let at = format!("{file}, panel {title:?} ({})", t["refId"].as_str().unwrap_or_default());
                checked += 1;
                let may_be_empty = match promql_parser::parser::parse(&expr) {
                    Ok(ast) => {
                        selectors(&ast, &mut used);
                        reads_only_absent(&ast)
                    }
                    Err(e) => {
                        problems.push(format!("{at}: {e}"));
                        false
                    }
                };
                match ctx.query(&expr) {
                    Ok(s) if finite(&s) || (may_be_empty && s.is_empty()) => {}
                    Ok(s) => problems.push(format!("{at}: no series with a finite value ({s:?}):\n{expr}")),
                    Err(e) => problems.push(format!("{at}: {e}")),
                }
                if ranged {
                    match query_range(ctx, &expr) {
                        Ok(points) if points.iter().any(|v| v.is_finite()) => {}
                        Ok(_) => problems.push(format!("{at}: nothing finite over the last 2 minutes:\n{expr}")),
                        Err(e) => problems.push(format!("{at}: range query: {e}")),
                    }
                }
            }
        }
        // Annotations mark events: firing alerts, which the test makes happen.
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            if let Some(expr) = a["expr"].as_str() {
                // Releases are followed for the SLOs a policy selects: checkout's, here.
                let expr = if a["name"] == "Releases" {
                    expr.replace("$slo", "checkout")
                } else {
                    expr.to_string()
                };
                let expr = substitute(&expr, &vars);
                match ctx.query(&expr) {
                    Ok(s) if finite(&s) => {}
                    Ok(_) => problems.push(format!("{file}, annotation {}: no events:\n{expr}", a["name"])),
                    Err(e) => problems.push(format!("{file}, annotation {}: {e}", a["name"])),
                }
            }
        }
    }
    let start = now() - 300;
    let selectors = used.len();
    for selector in used {
        if MAY_BE_ABSENT.iter().any(|(name, _)| selector.contains(name)) {
            continue;
        }
        let url = format!(
            "{}/api/v1/series?match[]={}&start={start}",
            ctx.env.prometheus_url,
            urlencode(&selector)
        );
        let body: Value = serde_json::from_str(&http_ok("GET", &url)?).map_err(|e| e.to_string())?;
        if body["data"].as_array().is_none_or(Vec::is_empty) {
            problems.push(format!("{selector} matches no series (misspelt, or not recorded)"));
        }
    }
    if problems.is_empty() {
        Ok((checked, selectors))
    } else {
        Err(problems.join("\n"))
    }
}

/// Every query variable offers the value the test picks.
fn check_variables(ctx: &Ctx, all: &BTreeMap<String, Value>) -> Result<(), String> {
    let vars = variables(ctx);
    let mut problems = Vec::new();
    for (file, d) in all {
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] != "query" {
                continue;
            }
            let name = v["name"].as_str().unwrap_or_default();
            let query = substitute(v["query"].as_str().unwrap_or_default(), &vars);
            // label_values(SELECTOR, LABEL), as Grafana asks Prometheus for it.
            let (selector, label) = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .and_then(|q| q.rsplit_once(','))
                .unwrap_or_else(|| panic!("{file}: variable {name}: {query} is not label_values(selector, label)"));
            let url = format!(
                "{}/api/v1/label/{}/values?match[]={}&start={}",
                ctx.env.prometheus_url,
                label.trim(),
                urlencode(selector),
                now() - 3600
            );
            let body: Value = serde_json::from_str(&http_ok("GET", &url)?).map_err(|e| e.to_string())?;
            let want = substitute(&format!("${name}"), &vars);
            if !body["data"].as_array().into_iter().flatten().any(|x| x == &json!(want)) {
                problems.push(format!(
                    "{file}: variable {name} ({query}) does not offer {want}: {}",
                    body["data"]
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

async fn wait_series(ctx: &Ctx, what: &str, query: &str) {
    ctx.eventually(what, PROM, async || match ctx.query(query)? {
        s if finite(&s) => Ok(()),
        s => Err(format!("{query}: {s:?}")),
    })
    .await;
}

/// One instant query of a panel, found by title.
fn panel_query(ctx: &Ctx, all: &BTreeMap<String, Value>, file: &str, title: &str, ref_id: &str) -> Vec<Sample> {
    let panel = all[file]["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("{file} has no panel {title:?}"));
    let target = panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["refId"] == ref_id)
        .unwrap_or_else(|| panic!("{file}, panel {title:?} has no query {ref_id}"));
    let expr = substitute(target["expr"].as_str().unwrap(), &variables(ctx));
    ctx.query(&expr)
        .unwrap_or_else(|e| panic!("{file}, panel {title:?}: {e}"))
}

#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn every_panel_returns_data() {
    let own = Options {
        own_operator: true,
        ..Options::default()
    };
    support::run_with("dash", own, async |ctx| {
        start_scraped_operator(ctx).await;
        install_fast_rules(ctx).await;
        create(ctx, "checkout", fast_spec(ctx)).await;
        wait_ready(ctx, "checkout").await;
        create_deployment(ctx, "web", json!({"tier": "web"}), false).await;
        // releaseAfter outlasts the test: the stage holds while the panels are read.
        let actions = ["freezeDeployments", "freezeNamespace"];
        create_policy(ctx, POLICY, burn_policy("checkout", &actions, "10m")).await;
        wait_evaluated(ctx, POLICY).await;

        // Half of the requests fail: checkout's policy freezes, both SLOs burn.
        ctx.traffic("errors=0.5").unwrap();
        ctx.log("traffic: errors=0.5");
        wait_deployment(ctx, "web", true, &[POLICY], BURN).await;

        let stage = format!(
            r#"slo_warden_policy_stage{{job="slo-warden",namespace="{}",policy="{POLICY}",stage="fast-burn"}} == 1"#,
            ctx.ns
        );
        wait_series(ctx, "Prometheus to scrape the operator in stage fast-burn", &stage).await;
        let firing = format!(r#"ALERTS{{namespace="{}",slo="{SLO}",alertstate="firing"}}"#, ctx.ns);
        wait_series(ctx, &format!("the burn alert of {SLO} to fire"), &firing).await;

        let all = dashboards();
        let (queries, selectors) = ctx
            .eventually("every panel of every dashboard to return data", PROM, async || {
                check_variables(ctx, &all)?;
                check_panels(ctx, &all)
            })
            .await;
        ctx.log(format!(
            "{queries} queries of {} dashboards returned data; their {selectors} selectors match series",
            all.len()
        ));

        // And they say what happened.
        let state = panel_query(ctx, &all, "slo-overview.json", "Every SLO", "H");
        assert!(
            state
                .iter()
                .any(|s| s.labels.get("slo").map(String::as_str) == Some(SLO) && s.value == 3.0),
            "the overview shows SLO {SLO} Exhausted (3) after half of its requests failed: {state:?}"
        );
        let held = panel_query(ctx, &all, "slo-policies.json", "Objects held", "A");
        assert!(
            held.len() == 1 && held[0].value == 2.0,
            "the policy view counts web and the namespace held: {held:?}"
        );
        let stages = panel_query(ctx, &all, "slo-policies.json", "Stage", "A");
        assert!(
            stages
                .iter()
                .any(|s| s.labels.get("stage").map(String::as_str) == Some("fast-burn")),
            "the stage timeline shows {POLICY} in fast-burn: {stages:?}"
        );
    });
}
