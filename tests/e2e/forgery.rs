//! Budgets nobody can forge: another namespace's PrometheusRule recording an SLO's budget and
//! firing its alert, as a hostile tenant would, freezes nothing, while the operator goes on
//! enforcing a real burn.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

use slo_warden::api::PrometheusRule;

use super::policy::{
    BURN, burn_policy, condition, create_deployment, create_policy, deployment, events, paused, policies, stage,
    wait_deployment, wait_policy,
};
use super::support::{self, Ctx, K8S, Options, metric_sum_where};
use super::{create, fast_spec, wait_ready};

/// The tenant's PrometheusRule `forge` in its own namespace: `rules` in one group evaluated
/// every 5 s.
async fn forge(ctx: &Ctx, tenant: &str, rules: Vec<Value>) {
    let rule: PrometheusRule = serde_json::from_value(json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": {"name": "forge", "namespace": tenant},
        "spec": {"groups": [{"name": "forge", "interval": "5s", "rules": rules}]},
    }))
    .unwrap();
    let api: Api<PrometheusRule> = Api::namespaced(ctx.client.clone(), tenant);
    let _ = api.delete("forge", &DeleteParams::default()).await;
    ctx.eventually("the previous forge to be gone", K8S, async || {
        match api.get_opt("forge").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;
    api.create(&PostParams::default(), &rule)
        .await
        .unwrap_or_else(|e| panic!("create PrometheusRule {tenant}/forge: {e}"));
    ctx.log(format!(
        "tenant {tenant}: PrometheusRule forge with {} rules",
        rule.spec.groups[0].rules.len()
    ));
}

/// Waits until Prometheus answers `query` with a series whose value is `value`.
async fn wait_series(ctx: &Ctx, what: &str, query: &str, value: f64) {
    ctx.eventually(what, K8S, async || {
        let found = ctx.query(query)?;
        if found.iter().any(|s| s.value == value) {
            Ok(())
        } else {
            Err(format!("{query}: {found:?}"))
        }
    })
    .await;
}

/// Neither web is paused nor the checkout policy in a stage, for `period`.
async fn stays_unfrozen(ctx: &Ctx, period: Duration) {
    let until = std::time::Instant::now() + period;
    while std::time::Instant::now() < until {
        let web = deployment(ctx, "web").await.unwrap();
        assert!(
            !paused(&web),
            "web was paused by a forged budget: {:?}",
            web.metadata.annotations
        );
        let p = policies(ctx).get("checkout").await.unwrap();
        assert_eq!(
            stage(&p),
            "",
            "a forged budget put the policy in a stage: {:?}",
            p.status
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Team A's PrometheusRule records team B's budget as spent and fires B's burn alert: first
/// with plain `namespace`/`slo` labels, ignored and counted; then an exact copy of B's series,
/// marker included, which writes into B's own series and disputes B's data. B's policy
/// (budget below 0 or a critical burn alert → freeze web) enters no stage, its status names the
/// dispute, and a second SLO's real burn still freezes web through its own policy.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn a_forged_budget_from_another_namespace_freezes_nothing() {
    let options = Options {
        prometheus: true,
        ..Options::default()
    };
    support::run_with("forgery", options, async |ctx| {
        let tenant = format!("{}-a", ctx.ns);
        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": tenant, "labels": {"slo-warden.dev/e2e": "forgery"}}
        }))
        .unwrap();
        namespaces.create(&PostParams::default(), &ns).await.unwrap();
        let cleanup = tenant.clone();
        ctx.on_cleanup(move || {
            let _ = support::kubectl(&["delete", "namespace", &cleanup, "--wait=false"], None);
        });

        create(ctx, "checkout", fast_spec(ctx)).await;
        create(ctx, "checkout-2", fast_spec(ctx)).await;
        wait_ready(ctx, "checkout").await;
        wait_ready(ctx, "checkout-2").await;
        create_deployment(ctx, "web", json!({"tier": "web"}), false).await;
        create_policy(
            ctx,
            "checkout",
            json!({
                "slos": {"names": ["checkout"]},
                "stages": [{"name": "exhausted",
                            "when": [{"budgetRemaining": {"below": 0}}, {"alertFiring": {"severity": "critical"}}],
                            "actions": ["freezeDeployments"]}],
                "targets": {"deployments": {"matchLabels": {"tier": "web"}}},
                "releaseAfter": "10s",
            }),
        )
        .await;
        create_policy(ctx, "burn", burn_policy("checkout-2", &["freezeDeployments"], "10s")).await;
        wait_policy(ctx, "checkout", "Ready", K8S, |p| {
            condition(p, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;

        let b = &ctx.ns;
        let alert = |marker: bool| {
            let mut labels = json!({"namespace": b, "slo": "checkout", "service": ctx.service,
                                    "severity": "critical", "long": "2m", "short": "1m"});
            if marker {
                labels["slo_warden"] = json!(format!("{b}/checkout"));
            }
            json!({"alert": "ErrorBudgetBurn", "expr": "vector(1)", "labels": labels})
        };
        let spent = |marker: bool| {
            let mut labels = json!({"namespace": b, "slo": "checkout"});
            if marker {
                labels["slo_warden"] = json!(format!("{b}/checkout"));
            }
            json!({"record": "slo:error_budget_remaining:ratio", "expr": "vector(-1)", "labels": labels})
        };

        // The forgery of the report: plain labels; and B's burn alert with exactly the labels
        // of B's own alert, firing while B's is not.
        forge(ctx, &tenant, vec![spent(false), alert(true)]).await;
        let budget = format!(r#"slo:error_budget_remaining:ratio{{namespace="{b}",slo="checkout"}}"#);
        wait_series(ctx, "the forged budget in Prometheus", &budget, -1.0).await;
        let firing = format!(r#"ALERTS{{namespace="{b}",slo="checkout",alertstate="firing"}}"#);
        wait_series(ctx, "the forged alert firing in Prometheus", &firing, 1.0).await;
        stays_unfrozen(ctx, Duration::from_secs(20)).await;
        let rejected = || metric_sum_where(&ctx.operator_metrics(), "slo_warden_budget_series_rejected_total", &[]);
        assert!(rejected() > 0.0, "the forged series were not counted");
        let log = std::fs::read_to_string(ctx.dir.join("operator.log")).unwrap_or_default();
        assert!(
            log.contains("ignored series that slo-warden's rules did not write"),
            "no warning in the operator's log"
        );

        // An exact copy of B's budget series writes into it: B's data is disputed.
        forge(ctx, &tenant, vec![spent(true), alert(true)]).await;
        let p = wait_policy(ctx, "checkout", "DataAvailable=False DisputedData", K8S, |p| {
            condition(p, "DataAvailable").is_some_and(|c| c.1 == "DisputedData")
        })
        .await;
        let (_, _, message) = condition(&p, "DataAvailable").unwrap();
        assert!(
            message.contains(&format!(
                r#"slo:error_budget_remaining:ratio{{namespace="{b}",slo="checkout""#
            )),
            "{message}"
        );
        assert!(!events(ctx, "checkout", "DisputedData").await.is_empty());
        assert!(metric_sum_where(&ctx.operator_metrics(), "slo_warden_budget_disputed_slos", &[]) >= 1.0);
        stays_unfrozen(ctx, Duration::from_secs(10)).await;

        // The operator is alive and enforcing: a real burn freezes web through checkout-2's
        // policy, while checkout's, disputed, still holds no stage.
        ctx.traffic("errors=0.5").unwrap();
        ctx.log("traffic: errors=0.5");
        wait_deployment(ctx, "web", true, &["burn"], BURN).await;
        let p = policies(ctx).get("checkout").await.unwrap();
        assert_eq!(stage(&p), "", "{:?}", p.status);
        assert!(p.status.unwrap().reason.starts_with("no stage entered: disputed data"));
        ctx.traffic("errors=0").unwrap();
        wait_deployment(ctx, "web", false, &[], BURN).await;
    });
}
