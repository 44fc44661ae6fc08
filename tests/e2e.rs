//! End-to-end tests against a real control plane, a real Prometheus and the traffic generator
//! of `e2e/` (see e2e/README.md), with the operator running as a separate process.
//!
//! `make e2e` (e2e/scripts/e2e.sh) brings everything up, runs these and tears down. By hand:
//!
//! ```sh
//! e2e/scripts/cluster-up.sh && source /tmp/slo-warden-e2e/env
//! cargo test --test e2e -- --ignored --nocapture --test-threads=8
//! ```
//!
//! Every test gets a fresh namespace, its own traffic-generator service (named like the
//! namespace) and its own `slo-warden run --namespace <ns>`, so the tests run concurrently
//! without seeing each other's objects; the namespace is deleted at the end. The operator's
//! log and, on failure, a dump of the namespace are written to `$E2E_LOG_DIR/<namespace>/`
//! (default `target/tmp/e2e/`). Waiting is always polling against a deadline.

#[path = "e2e/support.rs"]
mod support;

#[path = "e2e/policy.rs"]
mod policy;

#[path = "e2e/chart.rs"]
mod chart;

#[path = "e2e/dashboards.rs"]
mod dashboards;

#[path = "e2e/signal.rs"]
mod signal;

#[path = "e2e/forgery.rs"]
mod forgery;

#[path = "e2e/releases.rs"]
mod releases;

#[path = "e2e/gates.rs"]
mod gates;

#[path = "e2e/ui.rs"]
mod ui;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use slo_warden::api::{PrometheusRule, ServiceLevelObjective};
use support::{Ctx, K8S, PROM, metric_lines, metric_sum, ready, slo, warnings};

const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// A ratio SLO on the test's traffic service with one fast tier, so that a burn shows up in
/// about a minute: 99% over 1d, page when both 2m and 1m burn above 10x for 10s. Its budget
/// counts from the first tile (`partialWindows`): a test cannot wait a day for the window.
fn fast_spec(ctx: &Ctx) -> Value {
    json!({
        "service": ctx.service,
        "objective": 99,
        "window": "1d",
        "partialWindows": true,
        "indicator": {"ratio": {
            "errors": format!(r#"http_requests_total{{job="traffic",service="{}",code="500"}}"#, ctx.service),
            "total": format!(r#"http_requests_total{{job="traffic",service="{}"}}"#, ctx.service),
        }},
        "alerting": {
            "burnRates": [{"long": "2m", "short": "1m", "factor": 10, "severity": "page", "for": "10s"}],
            "noTraffic": {"enabled": false},
        },
    })
}

fn latency_spec(ctx: &Ctx) -> Value {
    json!({
        "service": ctx.service,
        "objective": 99.5,
        "window": "7d",
        "indicator": {"latency": {
            "histogram": format!(r#"http_request_duration_seconds{{job="traffic",service="{}"}}"#, ctx.service),
            "threshold": "300ms",
        }},
    })
}

/// Bad PromQL the CRD's CEL rules cannot see (a missing parenthesis).
const BAD_PROMQL: &str = "sum(rate(x[$window])";

async fn create(ctx: &Ctx, name: &str, spec: Value) -> ServiceLevelObjective {
    let created = ctx
        .slos()
        .create(&PostParams::default(), &slo(name, spec))
        .await
        .unwrap_or_else(|e| panic!("create SLO {name}: {e}"));
    ctx.log(format!(
        "created ServiceLevelObjective {name} (uid {})",
        created.uid().unwrap_or_default()
    ));
    created
}

/// Waits until the SLO is `Ready=True`/`RulesApplied` for its current generation; returns it.
async fn wait_ready(ctx: &Ctx, name: &str) -> ServiceLevelObjective {
    wait_ready_condition(ctx, name, "True", "RulesApplied").await
}

/// Waits until the SLO is `Ready=False`/`InvalidSpec` for its current generation; returns it.
async fn wait_invalid(ctx: &Ctx, name: &str) -> ServiceLevelObjective {
    wait_ready_condition(ctx, name, "False", "InvalidSpec").await
}

async fn wait_ready_condition(ctx: &Ctx, name: &str, want: &str, reason: &str) -> ServiceLevelObjective {
    ctx.eventually(&format!("SLO {name} Ready={want} {reason}"), K8S, async || {
        let slo = ctx.slos().get(name).await.map_err(|e| e.to_string())?;
        let c = ready(&slo).ok_or("no Ready condition yet")?;
        let status = slo.status.clone().unwrap_or_default();
        if c.status == want && c.reason == reason && status.observed_generation == slo.metadata.generation {
            Ok(slo)
        } else {
            Err(format!(
                "Ready={} {}: {} (observedGeneration {:?})",
                c.status, c.reason, c.message, status.observed_generation
            ))
        }
    })
    .await
}

/// Waits for the SLO's PrometheusRule and checks what makes it ours: the managed-by label and a
/// controller owner reference to the SLO.
async fn wait_rule(ctx: &Ctx, slo: &ServiceLevelObjective) -> PrometheusRule {
    let name = slo.name_any();
    let rule = ctx
        .eventually(&format!("PrometheusRule {name}"), K8S, async || {
            ctx.rules()
                .get_opt(&name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "not there yet".to_string())
        })
        .await;
    assert_owned(&rule, slo);
    rule
}

fn assert_owned(rule: &PrometheusRule, slo: &ServiceLevelObjective) {
    let name = rule.name_any();
    assert_eq!(
        rule.labels().get(MANAGED_BY).map(String::as_str),
        Some("slo-warden"),
        "labels of PrometheusRule {name}: {:?}",
        rule.labels()
    );
    let controllers: Vec<_> = rule
        .owner_references()
        .iter()
        .filter(|o| o.controller == Some(true))
        .collect();
    assert_eq!(
        controllers.len(),
        1,
        "PrometheusRule {name} needs exactly one controller owner: {:?}",
        rule.owner_references()
    );
    let owner = controllers[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str(),
            Some(&owner.uid)
        ),
        (
            "slo.warden.dev/v1alpha1",
            "ServiceLevelObjective",
            slo.name_any().as_str(),
            slo.meta().uid.as_ref()
        ),
        "controller owner of PrometheusRule {name}"
    );
}

/// Waits until Prometheus has loaded the SLO's sli and window rule groups (via rule sync).
async fn wait_groups_loaded(ctx: &Ctx, name: &str) -> BTreeMap<String, Value> {
    let want: Vec<String> = ["sli", "window"]
        .iter()
        .map(|g| format!("{}/{name}:{g}", ctx.ns))
        .collect();
    ctx.eventually(
        &format!("Prometheus to load the rule groups of {name}"),
        PROM,
        async || {
            let loaded = ctx.loaded_groups()?;
            let missing: Vec<&String> = want.iter().filter(|g| !loaded.contains_key(*g)).collect();
            if missing.is_empty() {
                Ok(loaded)
            } else {
                Err(format!(
                    "missing {missing:?}; loaded {:?}",
                    loaded.keys().collect::<Vec<_>>()
                ))
            }
        },
    )
    .await
}

async fn wait_groups_gone(ctx: &Ctx, name: &str) {
    let prefix = format!("{}/{name}:", ctx.ns);
    ctx.eventually(
        &format!("Prometheus to drop the rule groups of {name}"),
        PROM,
        async || {
            let left: Vec<String> = ctx
                .loaded_groups()?
                .into_keys()
                .filter(|g| g.starts_with(&prefix))
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still loaded: {left:?}"))
            }
        },
    )
    .await
}

fn alert_query(ctx: &Ctx, slo: &str, state: Option<&str>) -> String {
    let state = state.map(|s| format!(r#",alertstate="{s}""#)).unwrap_or_default();
    format!(
        r#"ALERTS{{alertname="ErrorBudgetBurn",slo="{slo}",namespace="{}"{state}}}"#,
        ctx.ns
    )
}

/// The rules of an SLO reach Prometheus, record the traffic generator's error ratio, and the
/// burn-rate alert goes pending, fires when errors rise and clears when they fall.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn rules_reach_prometheus_and_the_burn_alert_fires_and_clears() {
    support::run("alert", async |ctx| {
        let name = "checkout-fast";
        let slo = create(ctx, name, fast_spec(ctx)).await;
        let rule = wait_rule(ctx, &slo).await;
        let slo = wait_ready(ctx, name).await;
        let status = slo.status.clone().unwrap();
        assert_eq!(status.prometheus_rule.as_deref(), Some(name));
        assert_eq!(status.rules_generation, slo.metadata.generation);
        let names: Vec<&str> = rule.spec.groups.iter().map(|g| g.name.as_str()).collect();
        let prefix = format!("{}/{name}", ctx.ns);
        assert_eq!(
            names,
            [
                format!("{prefix}:sli"),
                format!("{prefix}:window"),
                format!("{prefix}:calibration")
            ]
        );

        let loaded = wait_groups_loaded(ctx, name).await;
        let file = loaded[&format!("{prefix}:sli")]["file"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ctx.log(format!("rule groups loaded from {file}"));

        // The recording rules see the (error-free) traffic of this test's service.
        let sel = ctx.sel(name);
        ctx.eventually(
            "slo:sli_error:ratio_rate1m == 0 and ratio_rate2m == 0",
            PROM,
            async || {
                for w in ["1m", "2m"] {
                    let s = ctx.query(&format!("slo:sli_error:ratio_rate{w}{sel}"))?;
                    match s.as_slice() {
                        [one] if one.value == 0.0 => {}
                        other => return Err(format!("ratio_rate{w}: {other:?}")),
                    }
                }
                Ok(())
            },
        )
        .await;
        // Every rule Prometheus has evaluated so far is healthy (no PromQL errors).
        ctx.eventually(
            "the sli group (records and alerts) evaluated without errors",
            PROM,
            async || {
                let groups = ctx.loaded_groups()?;
                let mut unknown = 0;
                for g in groups.values() {
                    for r in g["rules"].as_array().into_iter().flatten() {
                        match r["health"].as_str() {
                            Some("ok") => {}
                            Some("err") => {
                                panic!("rule {} of group {} fails: {}", r["name"], g["name"], r["lastError"])
                            }
                            // 5m and 1h intervals
                            _ if g["name"]
                                .as_str()
                                .is_some_and(|n| n.ends_with(":window") || n.ends_with(":calibration")) => {}
                            _ => unknown += 1,
                        }
                    }
                }
                if unknown == 0 {
                    Ok(())
                } else {
                    Err(format!("{unknown} rules not evaluated yet"))
                }
            },
        )
        .await;
        assert!(
            ctx.query(&alert_query(ctx, name, None)).unwrap().is_empty(),
            "no alert while there are no errors"
        );

        // Half of the requests fail: a 50x burn of a 1% budget, far above the 10x tier.
        ctx.traffic("errors=0.5").unwrap();
        ctx.log("traffic: errors=0.5");
        let mut seen_pending = false;
        let firing = ctx
            .eventually("ErrorBudgetBurn to fire", Duration::from_secs(240), async || {
                if !ctx.query(&alert_query(ctx, name, Some("pending")))?.is_empty() {
                    seen_pending = true;
                }
                match ctx.query(&alert_query(ctx, name, Some("firing")))?.pop() {
                    Some(alert) => Ok(alert),
                    None => {
                        let r1 = ctx.query(&format!("slo:sli_error:ratio_rate1m{sel}"))?;
                        let r2 = ctx.query(&format!("slo:sli_error:ratio_rate2m{sel}"))?;
                        Err(format!(
                            "not firing; ratio 1m {:?} 2m {:?}",
                            r1.first().map(|s| s.value),
                            r2.first().map(|s| s.value)
                        ))
                    }
                }
            })
            .await;
        assert!(
            seen_pending,
            "the alert fired without being seen pending first (for: 10s)"
        );
        let labels = &firing.labels;
        for (k, v) in [
            ("service", ctx.service.as_str()),
            ("severity", "critical"),
            ("long", "2m"),
            ("short", "1m"),
            ("slo", name),
            ("namespace", ctx.ns.as_str()),
        ] {
            assert_eq!(
                labels.get(k).map(String::as_str),
                Some(v),
                "label {k} of the firing alert: {labels:?}"
            );
        }
        ctx.eventually(
            "slo:sli_error:ratio_rate1m to read the generator's 50% errors",
            PROM,
            async || match ctx.query(&format!("slo:sli_error:ratio_rate1m{sel}"))?.as_slice() {
                [s] if (s.value - 0.5).abs() < 0.05 => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
        .await;

        // Errors stop: the short window drops below the threshold and the alert clears.
        ctx.traffic("errors=0").unwrap();
        ctx.log("traffic: errors=0");
        ctx.eventually("ErrorBudgetBurn to clear", Duration::from_secs(240), async || {
            let alerts = ctx.query(&alert_query(ctx, name, None))?;
            if alerts.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{:?}",
                    alerts.iter().map(|a| &a.labels["alertstate"]).collect::<Vec<_>>()
                ))
            }
        })
        .await;
    });
}

/// Deleting an SLO lets the garbage collector remove its PrometheusRule, and Prometheus
/// drops its groups.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn deleting_the_slo_garbage_collects_its_rule() {
    support::run("delete", async |ctx| {
        let name = "doomed";
        let slo = create(ctx, name, fast_spec(ctx)).await;
        let rule = wait_rule(ctx, &slo).await;
        wait_groups_loaded(ctx, name).await;

        ctx.slos()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete SLO");
        ctx.eventually("the SLO to be gone", K8S, async || {
            match ctx.slos().get_opt(name).await {
                Ok(None) => Ok(()),
                Ok(Some(s)) => Err(format!("still there, finalizers {:?}", s.finalizers())),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        ctx.eventually(
            "the garbage collector to delete the PrometheusRule",
            K8S,
            async || match ctx.rules().get_opt(name).await {
                Ok(None) => Ok(()),
                Ok(Some(r)) if r.uid() != rule.uid() => {
                    panic!("PrometheusRule {name} was recreated after its SLO was deleted")
                }
                Ok(Some(_)) => Err("still there".into()),
                Err(e) => Err(e.to_string()),
            },
        )
        .await;
        wait_groups_gone(ctx, name).await;
    });
}

/// What the CRD's validation rules refuse never reaches the operator.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn the_api_server_rejects_invalid_slos() {
    support::run("reject", async |ctx| {
        let reject = async |name: &str, spec: Value, expect: &str| match ctx
            .slos()
            .create(&PostParams::default(), &slo(name, spec))
            .await
        {
            Ok(_) => {
                panic!("the API server accepted SLO {name}; expected a rejection with {expect:?}")
            }
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 422, "SLO {name}: {s:?}");
                assert!(
                    s.message.contains(expect),
                    "SLO {name}: message {:?} should contain {expect:?}",
                    s.message
                );
                ctx.log(format!("rejected {name}: {}", s.message));
            }
            Err(e) => panic!("SLO {name}: unexpected error {e}"),
        };
        let mut spec = fast_spec(ctx);
        spec["objective"] = json!(100);
        reject(
            "objective-100",
            spec,
            "objective must be a percentage strictly between 0 and 100",
        )
        .await;

        let mut spec = fast_spec(ctx);
        spec["objective"] = json!(0);
        reject(
            "objective-0",
            spec,
            "objective must be a percentage strictly between 0 and 100",
        )
        .await;

        let mut spec = fast_spec(ctx);
        spec["indicator"]["ratio"]["good"] = json!(format!(
            r#"http_requests_total{{service="{}",code="200"}}"#,
            ctx.service
        ));
        reject(
            "errors-and-good",
            spec,
            "set exactly one of indicator.ratio.errors or indicator.ratio.good",
        )
        .await;

        let mut spec = fast_spec(ctx);
        spec["window"] = json!("a month");
        reject("bad-window", spec, "window must be a Prometheus duration").await;
        let mut spec = fast_spec(ctx);
        spec["window"] = json!("10000y");
        reject(
            "huge-window",
            spec,
            "spec.window: Invalid value: \"string\": window must be a Prometheus duration from 1d to 365d, e.g. 30d",
        )
        .await;

        let list = ctx.slos().list(&Default::default()).await.unwrap();
        assert!(
            list.items.is_empty(),
            "nothing was stored: {:?}",
            list.items.iter().map(|s| s.name_any()).collect::<Vec<_>>()
        );
    });
}

/// The CRD bounds what one SLO may cost Prometheus before any webhook or operator sees it: an
/// SLI field over 4096 characters (the 80 KB expression that took seconds to parse) and more
/// than 8 burn-rate tiers (400 made a 549 KB PrometheusRule) are refused, and nothing is stored.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn the_api_server_rejects_invalid_slo_sizes() {
    support::run("rejectsize", async |ctx| {
        let refused =
            async |name: &str, spec: Value| match ctx.slos().create(&PostParams::default(), &slo(name, spec)).await {
                Ok(_) => panic!("the API server accepted SLO {name}"),
                Err(kube::Error::Api(s)) => {
                    assert_eq!(s.code, 422, "SLO {name}: {s:?}");
                    ctx.log(format!(
                        "rejected {name}: {}",
                        s.message.chars().take(300).collect::<String>()
                    ));
                    s.message
                }
                Err(e) => panic!("SLO {name}: unexpected error {e}"),
            };
        let mut spec = fast_spec(ctx);
        let terms = vec![format!("sum(rate(http_requests_total{{service=\"{}\"}}[$window]))", ctx.service); 4000];
        spec["indicator"]["ratio"]["errors"] = json!(terms.join(" + "));
        let message = refused("long-promql", spec).await;
        assert!(
            message.contains("spec.indicator.ratio.errors: Too long") && message.contains("4096"),
            "{message}"
        );

        let mut spec = fast_spec(ctx);
        let tier = |i: u64| json!({"long": format!("{}m", i + 2), "short": "1m", "factor": 10, "severity": "page"});
        spec["alerting"]["burnRates"] = json!((0..400).map(tier).collect::<Vec<_>>());
        let message = refused("many-tiers", spec).await;
        assert!(
            message.contains("spec.alerting.burnRates: Too many: 400: must have at most 8 items"),
            "{message}"
        );

        // At the bounds, accepted.
        let mut spec = fast_spec(ctx);
        spec["alerting"]["burnRates"] = json!((0..8).map(tier).collect::<Vec<_>>());
        ctx.slos()
            .create(&PostParams::default(), &slo("eight-tiers", spec))
            .await
            .expect("8 tiers are allowed");
        let names: Vec<String> = ctx
            .slos()
            .list(&Default::default())
            .await
            .unwrap()
            .iter()
            .map(|s| s.name_any())
            .collect();
        assert_eq!(names, ["eight-tiers"], "only the SLO within the bounds was stored");
    });
}

/// PromQL the API server cannot check: the operator reports it (condition and Warning event),
/// never generates rules from it, and keeps the last good rules of an SLO edited into it.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn bad_promql_is_reported_and_the_last_good_rules_stay() {
    support::run("promql", async |ctx| {
        // A new SLO with bad PromQL: no rules at all.
        let mut spec = fast_spec(ctx);
        spec["indicator"]["ratio"]["errors"] = json!(BAD_PROMQL);
        create(ctx, "broken", spec).await;
        let broken = wait_invalid(ctx, "broken").await;
        let c = ready(&broken).unwrap();
        assert!(
            c.message.contains("spec.indicator.ratio.errors: is not valid PromQL"),
            "message: {}",
            c.message
        );
        let status = broken.status.clone().unwrap();
        assert_eq!(status.rules_generation, None, "no rules were ever generated");
        ctx.eventually("a Warning event InvalidSpec for broken", K8S, async || {
            let w = warnings(&ctx.events(), "broken", "InvalidSpec").await?;
            match w.first() {
                Some(e) if e.note.as_deref().is_some_and(|n| n.contains("is not valid PromQL")) => Ok(()),
                Some(e) => Err(format!("note {:?}", e.note)),
                None => Err("no event yet".into()),
            }
        })
        .await;
        assert!(
            ctx.rules().get_opt("broken").await.unwrap().is_none(),
            "no PrometheusRule for an SLO that never was valid"
        );

        // A valid SLO edited into bad PromQL keeps its rules and says so.
        let name = "edited";
        let created = create(ctx, name, fast_spec(ctx)).await;
        wait_rule(ctx, &created).await;
        let good = wait_ready(ctx, name).await;
        let good_generation = good.metadata.generation;
        assert_eq!(good.status.as_ref().unwrap().rules_generation, good_generation);
        wait_groups_loaded(ctx, name).await;
        let before = ctx.rules().get(name).await.unwrap();

        let patch = json!({"spec": {"indicator": {"ratio": {"errors": BAD_PROMQL}}}});
        let edited = ctx
            .slos()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("edit SLO");
        assert!(
            edited.metadata.generation > good_generation,
            "the edit bumps the generation"
        );
        ctx.log(format!(
            "edited {name} to bad PromQL (generation {:?})",
            edited.metadata.generation
        ));
        let invalid = wait_invalid(ctx, name).await;
        let status = invalid.status.clone().unwrap();
        let c = ready(&invalid).unwrap();
        assert_eq!(status.observed_generation, edited.metadata.generation);
        assert_eq!(
            status.rules_generation, good_generation,
            "rulesGeneration stays at the last good generation"
        );
        assert_eq!(status.prometheus_rule.as_deref(), Some(name));
        assert!(c.message.contains("is not valid PromQL"), "message: {}", c.message);
        assert!(
            c.message
                .contains(&format!("generation {} stay in place", good_generation.unwrap())),
            "the message says the old rules stay: {}",
            c.message
        );
        ctx.eventually("a Warning event InvalidSpec for edited", K8S, async || {
            if warnings(&ctx.events(), name, "InvalidSpec").await?.is_empty() {
                Err("no event yet".into())
            } else {
                Ok(())
            }
        })
        .await;
        let after = ctx.rules().get(name).await.unwrap();
        assert_eq!(
            after.resource_version(),
            before.resource_version(),
            "the last good PrometheusRule was not touched"
        );
        assert_eq!(after.spec, before.spec);
        assert!(
            ctx.loaded_groups()
                .unwrap()
                .contains_key(&format!("{}/{name}:sli", ctx.ns)),
            "Prometheus keeps the old rules"
        );

        // Fixing the spec brings the rules up to date again.
        let fixed = format!(
            r#"http_requests_total{{job="traffic",service="{}",code=~"5.."}}"#,
            ctx.service
        );
        let patch = json!({"spec": {"indicator": {"ratio": {"errors": fixed}}}});
        let edited = ctx
            .slos()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("fix SLO");
        let fixed_slo = wait_ready(ctx, name).await;
        assert_eq!(
            fixed_slo.status.as_ref().unwrap().rules_generation,
            edited.metadata.generation
        );
        let rule = ctx.rules().get(name).await.unwrap();
        let exprs: String = rule
            .spec
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .map(|r| r.expr.as_str())
            .collect();
        assert!(
            exprs.contains(r#"code=~"5..""#),
            "the PrometheusRule uses the fixed selector"
        );
    });
}

/// Hand edits of a generated PrometheusRule are undone: a changed expression, a removed
/// managed-by label, setting fields we never set, and deleting it outright.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn hand_edits_of_the_rule_are_repaired() {
    support::run("repair", async |ctx| {
        let name = "guarded";
        let slo = create(ctx, name, fast_spec(ctx)).await;
        let original = wait_rule(ctx, &slo).await;
        wait_ready(ctx, name).await;
        let hand = PatchParams {
            field_manager: Some("e2e-hand-edit".into()),
            ..PatchParams::default()
        };

        // 1. Change one expression (a merge patch replaces the whole groups list).
        let mut groups = serde_json::to_value(&original.spec.groups).unwrap();
        groups[0]["rules"][0]["expr"] = json!("vector(42)");
        let edited = ctx
            .rules()
            .patch(name, &hand, &Patch::Merge(json!({"spec": {"groups": groups}})))
            .await
            .expect("edit rule");
        assert_ne!(edited.spec, original.spec);
        ctx.log("changed an expression by hand");
        ctx.eventually("the expression to be repaired", K8S, async || {
            let r = ctx.rules().get(name).await.map_err(|e| e.to_string())?;
            if r.spec == original.spec {
                Ok(())
            } else {
                Err(format!("expr {:?}", r.spec.groups[0].rules[0].expr))
            }
        })
        .await;

        // 1b. Set fields the generator never sets (server-side apply alone would keep them,
        // because they belong to another field manager).
        let mut groups = serde_json::to_value(&original.spec.groups).unwrap();
        groups[0]["interval"] = json!("10m");
        groups[0]["limit"] = json!(3);
        ctx.rules()
            .patch(name, &hand, &Patch::Merge(json!({"spec": {"groups": groups}})))
            .await
            .expect("set interval and limit");
        ctx.log("set a group interval and limit by hand");
        ctx.eventually("the hand-set interval and limit to be removed", K8S, async || {
            let r = ctx.rules().get(name).await.map_err(|e| e.to_string())?;
            if r.spec == original.spec {
                Ok(())
            } else {
                Err(format!(
                    "group 0: interval {:?}, other {:?}",
                    r.spec.groups[0].interval, r.spec.groups[0].other
                ))
            }
        })
        .await;

        // 2. Remove the managed-by label (the operator's watch selects on it).
        ctx.rules()
            .patch(
                name,
                &hand,
                &Patch::Merge(json!({"metadata": {"labels": {MANAGED_BY: null}}})),
            )
            .await
            .expect("remove label");
        ctx.log(format!("removed label {MANAGED_BY} by hand"));
        ctx.eventually("the managed-by label to be restored", K8S, async || {
            let r = ctx.rules().get(name).await.map_err(|e| e.to_string())?;
            match r.labels().get(MANAGED_BY) {
                Some(v) if v == "slo-warden" => Ok(()),
                other => Err(format!("label {other:?}")),
            }
        })
        .await;

        // 3. Delete it.
        ctx.rules()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete rule");
        ctx.log("deleted the PrometheusRule by hand");
        let recreated = ctx
            .eventually("the PrometheusRule to be recreated", K8S, async || {
                match ctx.rules().get_opt(name).await {
                    Ok(Some(r)) if r.uid() != original.uid() => Ok(r),
                    Ok(_) => Err("not recreated yet".into()),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await;
        assert_owned(&recreated, &slo);
        assert_eq!(recreated.spec, original.spec);
        let status = ctx.slos().get(name).await.unwrap().status.unwrap();
        assert_eq!(ready(&ctx.slos().get(name).await.unwrap()).unwrap().status, "True");
        assert_eq!(status.rules_generation, slo.metadata.generation);
    });
}

/// A restarted operator finds everything as it left it and writes nothing.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn restarting_the_operator_causes_no_churn() {
    support::run("restart", async |ctx| {
        let mut broken = fast_spec(ctx);
        broken["indicator"]["ratio"]["errors"] = json!(BAD_PROMQL);
        let valid = [("availability", fast_spec(ctx)), ("latency", latency_spec(ctx))];
        for (name, spec) in valid.iter().cloned() {
            create(ctx, name, spec).await;
        }
        create(ctx, "broken", broken).await;
        for (name, _) in &valid {
            let slo = wait_ready(ctx, name).await;
            wait_rule(ctx, &slo).await;
        }
        wait_invalid(ctx, "broken").await;
        ctx.eventually("the Warning event for broken", K8S, async || {
            if warnings(&ctx.events(), "broken", "InvalidSpec").await?.is_empty() {
                Err("no event yet".into())
            } else {
                Ok(())
            }
        })
        .await;

        // Steady: nothing in the namespace changes for 3 s.
        let mut last = (String::new(), std::time::Instant::now());
        ctx.eventually("a steady state (no writes for 3s)", K8S, async || {
            let now = snapshot(ctx).await?;
            if now != last.0 {
                last = (now, std::time::Instant::now());
            }
            if last.1.elapsed() >= Duration::from_secs(3) {
                Ok(())
            } else {
                Err("objects still changing".into())
            }
        })
        .await;

        let status = ctx.stop_operator();
        assert!(status.success(), "the operator shuts down cleanly on SIGTERM: {status}");
        let before = snapshot(ctx).await.unwrap();
        support::keep(ctx, "restart-before.txt", &before);

        ctx.start_operator().await;
        let metrics = ctx
            .eventually("the restarted operator to reconcile all 3 SLOs", K8S, async || {
                let m = ctx.operator_metrics();
                match metric_sum(&m, "slo_warden_reconciliations_total") {
                    Some(n) if n >= 3.0 => Ok(m),
                    n => Err(format!("reconciliations {n:?}")),
                }
            })
            .await;
        ctx.log(metric_lines(&metrics, "slo_warden_reconciliations_total"));
        // Give anything the reconciles might trigger (watch events of its own writes) time to show.
        tokio::time::sleep(Duration::from_secs(5)).await;

        let after = snapshot(ctx).await.unwrap();
        support::keep(ctx, "restart-after.txt", &after);
        assert_eq!(
            after, before,
            "resourceVersions after the restart (left) differ from before (right)"
        );
        let metrics = ctx.operator_metrics();
        let writes = metric_sum(&metrics, "slo_warden_api_writes_total").unwrap_or(0.0);
        assert_eq!(
            writes,
            0.0,
            "the restarted operator wrote to the API server:\n{}",
            metric_lines(&metrics, "slo_warden_api_writes_total")
        );
        let failures = metric_sum(&metrics, "slo_warden_reconcile_failures_total").unwrap_or(0.0);
        assert_eq!(
            failures,
            0.0,
            "{}",
            metric_lines(&metrics, "slo_warden_reconcile_failures_total")
        );
    });
}

/// `kind/name resourceVersion` of every SLO, PrometheusRule and Event of the namespace, sorted.
async fn snapshot(ctx: &Ctx) -> Result<String, String> {
    let lp = Default::default();
    let mut lines = Vec::new();
    for s in ctx.slos().list(&lp).await.map_err(|e| e.to_string())? {
        lines.push(format!(
            "ServiceLevelObjective/{} {}",
            s.name_any(),
            s.resource_version().unwrap_or_default()
        ));
    }
    for r in ctx.rules().list(&lp).await.map_err(|e| e.to_string())? {
        lines.push(format!(
            "PrometheusRule/{} {}",
            r.name_any(),
            r.resource_version().unwrap_or_default()
        ));
    }
    for e in ctx.events().list(&lp).await.map_err(|e| e.to_string())? {
        lines.push(format!(
            "Event/{} {} ({} {})",
            e.name_any(),
            e.resource_version().unwrap_or_default(),
            e.reason.unwrap_or_default(),
            e.regarding.and_then(|r| r.name).unwrap_or_default()
        ));
    }
    lines.sort();
    Ok(lines.join("\n"))
}
