//! The release gates as Argo Rollouts runs them: the chart's ClusterAnalysisTemplate, applied
//! to the real API server, evaluated by the real Argo Rollouts controller against the real
//! Prometheus and slo-warden's recorded series.

use std::time::Duration;

use kube::api::{DynamicObject, PostParams};
use serde_json::json;

use super::policy::{BURN, rollout_state, rollouts, set_rollout_image, wait_rollout, with_prometheus};
use super::support::{self, Ctx, K8S, helm, kubectl};
use super::{create, fast_spec, wait_ready};

/// The chart's ClusterAnalysisTemplate, rendered for this test (named `<ns>-burn-rate`) and
/// applied; removed at the end of the test.
fn apply_analysis_template(ctx: &Ctx) -> String {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/slo-warden");
    let rendered = helm(&[
        "template",
        &ctx.ns,
        chart,
        "--namespace",
        &ctx.ns,
        "--set",
        &format!("fullnameOverride={}", ctx.ns),
        "--set",
        &format!("prometheusUrl={}", ctx.env.prometheus_url),
        "--api-versions",
        "argoproj.io/v1alpha1/ClusterAnalysisTemplate",
        "--show-only",
        "templates/release-gates.yaml",
    ])
    .unwrap_or_else(|e| panic!("helm template: {e}"));
    kubectl(&["apply", "-f", "-"], Some(&rendered)).unwrap_or_else(|e| panic!("kubectl apply: {e}\n{rendered}"));
    let name = format!("{}-burn-rate", ctx.ns);
    let cleanup = name.clone();
    ctx.on_cleanup(move || {
        let _ = kubectl(
            &["delete", "clusteranalysistemplate", &cleanup, "--ignore-not-found"],
            None,
        );
    });
    ctx.log(format!("ClusterAnalysisTemplate {name} applied"));
    name
}

/// A canary Rollout whose second step is the burn-rate analysis of SLO checkout (window 1m, at
/// most 10x, one measurement).
async fn create_gated_rollout(ctx: &Ctx, name: &str, template: &str) {
    let r: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"nodeSelector": {"type": "kwok"},
                                  "containers": [{"name": "app", "image": format!("{name}:1")}]}},
            "strategy": {"canary": {"steps": [
                {"setWeight": 50},
                {"analysis": {
                    "templates": [{"templateName": template, "clusterScope": true}],
                    "args": [
                        {"name": "namespace", "value": ctx.ns},
                        {"name": "slo", "value": "checkout"},
                        {"name": "window", "value": "1m"},
                        {"name": "maxBurn", "value": "10"},
                        {"name": "count", "value": "1"},
                    ],
                }},
                {"setWeight": 100},
            ]}},
        },
    }))
    .unwrap();
    rollouts(ctx).create(&PostParams::default(), &r).await.unwrap();
    ctx.log(format!("created Rollout {name} gated by {template}"));
}

/// The ReplicaSet a Rollout calls stable.
async fn stable_rs(ctx: &Ctx, name: &str) -> String {
    let r = rollouts(ctx).get(name).await.unwrap();
    r.data["status"]["stableRS"].as_str().unwrap_or_default().to_string()
}

/// The AnalysisRuns of the test's namespace: `name phase message` of each.
fn analysis_runs(ctx: &Ctx) -> String {
    kubectl(
        &[
            "get",
            "analysisruns",
            "-n",
            &ctx.ns,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.metricResults[0].measurements[*].value}{\"\\n\"}{end}",
        ],
        None,
    )
    .unwrap_or_default()
}

/// A canary gated by the chart's ClusterAnalysisTemplate: promoted while the SLO is quiet,
/// aborted by Argo Rollouts when a release comes while the SLO burns.
#[test]
#[ignore = "needs a cluster, Prometheus and Argo Rollouts: make e2e"]
fn a_canary_gated_on_the_slo_burn_rate_is_promoted_when_quiet_and_aborted_when_burning() {
    support::run_with("gate", with_prometheus(), async |ctx| {
        create(ctx, "checkout", fast_spec(ctx)).await;
        wait_ready(ctx, "checkout").await;
        let template = apply_analysis_template(ctx);
        create_gated_rollout(ctx, "canary", &template).await;
        wait_rollout(ctx, "canary", "Healthy", K8S, |s| s.phase == "Healthy" && s.promoted).await;
        // The recorded burn rate must be there before a canary asks for it (a window with no
        // series, or a budget its window group has not recorded yet, is inconclusive, and the
        // canary would pause for a person). The budget is recorded by the window group, every
        // tile (5m), first at an offset Prometheus derives from the group's name: up to a tile
        // after the rules are loaded.
        let query = format!(
            r#"max by (namespace, slo) (slo:sli_error:ratio_rate1m{{namespace="{ns}",slo="checkout"}}) / max by (namespace, slo) (slo:error_budget:ratio{{namespace="{ns}",slo="checkout"}})"#,
            ns = ctx.ns
        );
        ctx.eventually(
            "the SLO's 1m burn rate in Prometheus",
            Duration::from_secs(6 * 60) + super::support::PROM,
            async || {
                if ctx.query(&query)?.is_empty() {
                    Err("no series yet".into())
                } else {
                    Ok(())
                }
            },
        )
        .await;

        // Quiet: the analysis passes and the canary is promoted.
        let stable = stable_rs(ctx, "canary").await;
        set_rollout_image(ctx, "canary", "canary:2").await;
        ctx.eventually(
            "canary:2 promoted by a passing analysis",
            Duration::from_secs(120),
            async || {
                let now = stable_rs(ctx, "canary").await;
                let s = rollout_state(ctx, "canary").await?;
                if now != stable && s.phase == "Healthy" && s.promoted {
                    Ok(())
                } else {
                    Err(format!("{s:?}; AnalysisRuns: {}", analysis_runs(ctx)))
                }
            },
        )
        .await;
        let runs = analysis_runs(ctx);
        assert!(runs.lines().any(|l| l.contains(" Successful ")), "{runs}");

        // Burning: a release now fails the analysis, and Argo aborts it.
        ctx.traffic("errors=0.5").unwrap();
        let burning = format!("{query} > 10");
        ctx.eventually("the burn in Prometheus", BURN, async || {
            if ctx.query(&burning)?.is_empty() {
                Err("not burning yet".into())
            } else {
                Ok(())
            }
        })
        .await;
        set_rollout_image(ctx, "canary", "canary:3").await;
        let state = wait_rollout(
            ctx,
            "canary",
            "aborted by a failing analysis",
            Duration::from_secs(120),
            |s| s.aborted,
        )
        .await;
        ctx.log(format!("canary after the failing analysis: {state:?}"));
        let runs = analysis_runs(ctx);
        assert!(runs.lines().any(|l| l.contains(" Failed ")), "{runs}");
        let state = rollout_state(ctx, "canary").await.unwrap();
        assert!(!state.promoted, "canary:3 is not promoted: {state:?}");
    });
}

/// The gate examples of `examples/gates/` and the chart's Flagger MetricTemplate, as the real
/// API server validates them against Argo Rollouts' and Flagger's own CRDs (server-side dry
/// run: nothing is created).
#[test]
#[ignore = "needs a cluster: make e2e"]
fn the_gate_examples_pass_the_api_servers_validation() {
    support::run_with("gate-examples", support::Options::default(), async |ctx| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gates");
        let mut checked = Vec::new();
        for file in [
            "argo-rollout.yaml",
            "flagger-canary.yaml",
            "release-gate-rbac.yaml",
            "argocd-presync-job.yaml",
        ] {
            let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
            let text = text.replace("namespace: shop", &format!("namespace: {}", ctx.ns));
            let out = kubectl(&["create", "--dry-run=server", "-o", "name", "-f", "-"], Some(&text))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            checked.push(format!("{file}: {}", out.trim().replace('\n', ", ")));
        }
        let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/slo-warden");
        let rendered = helm(&[
            "template",
            "slo-warden",
            chart,
            "--namespace",
            &ctx.ns,
            "--set",
            "prometheusUrl=http://prometheus.monitoring:9090",
            "--set",
            "releaseGates.flagger.enabled=true",
            "--show-only",
            "templates/release-gates.yaml",
        ])
        .unwrap();
        let out = kubectl(
            &["create", "--dry-run=server", "-o", "name", "-f", "-"],
            Some(&rendered),
        )
        .unwrap_or_else(|e| panic!("the chart's MetricTemplate: {e}\n{rendered}"));
        assert!(out.contains("metrictemplate.flagger.app/slo-warden-burn-rate"), "{out}");
        checked.push(format!("chart: {}", out.trim()));
        ctx.log(checked.join("; "));
        // A schema that checks: a misspelt field of the Canary is refused, not ignored.
        let canary = std::fs::read_to_string(format!("{dir}/flagger-canary.yaml"))
            .unwrap()
            .replace("namespace: shop", &format!("namespace: {}", ctx.ns))
            .replace("thresholdRange:", "thresholdRnage:");
        let err = kubectl(
            &["create", "--dry-run=server", "--validate=strict", "-f", "-"],
            Some(&canary),
        )
        .expect_err("a misspelt Canary field must be refused");
        assert!(err.contains("thresholdRnage"), "{err}");
    });
}
