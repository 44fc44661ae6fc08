//! The release ledger end to end: the real Deployment controller numbers the ReplicaSets, the
//! traffic generator's errors fill the SLO's tiles in the real Prometheus, and the operator
//! names each release and counts what it cost, checked against the error counter itself.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use slo_warden::api::ReleaseStatus;

use super::policy::{
    BURN, burn_policy, create_deployment, create_policy, deployment, deployments, events, occurrences, policies,
    register_release_webhook, set_image, stage, wait_evaluated, wait_namespace_frozen, wait_policy, with_prometheus,
};
use super::support::{self, Ctx, K8S, Options, metric_lines};
use super::{create, fast_spec, wait_ready};

/// The SLO's ledger once `check` accepts it, with how far it was counted.
async fn wait_ledger(
    ctx: &Ctx,
    what: &str,
    timeout: Duration,
    check: impl Fn(&[ReleaseStatus], Timestamp) -> bool,
) -> (Vec<ReleaseStatus>, Timestamp) {
    ctx.eventually(&format!("the ledger of checkout: {what}"), timeout, async || {
        let slo = ctx.slos().get("checkout").await.map_err(|e| e.to_string())?;
        let status = slo.status.unwrap_or_default();
        let through = status.releases_counted_through.map(|t| t.0).ok_or("not counted yet")?;
        if check(&status.releases, through) {
            Ok((status.releases, through))
        } else {
            Err(format!(
                "through {through}: {}",
                serde_json::to_string(&status.releases).unwrap_or_default()
            ))
        }
    })
    .await
}

/// `increase()` of the traffic service's request counter (`code="500"` for errors) over
/// `[from, to]`, as Prometheus evaluates it at `to`.
fn increase(ctx: &Ctx, errors: bool, from: Timestamp, to: Timestamp) -> f64 {
    let code = if errors { r#",code="500""# } else { "" };
    let seconds = to.duration_since(from).as_secs();
    let q = format!(
        r#"sum(increase(http_requests_total{{job="traffic",service="{}"{code}}}[{seconds}s] @ {}))"#,
        ctx.service,
        to.as_second()
    );
    let samples = ctx.query(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
    samples.first().map_or(0.0, |s| s.value)
}

/// v2 of web ships, its errors rise, then fall: the ledger names both releases, counts v2's
/// errors and requests within 2 % of the counter's own increase over v2's time, says how much
/// of the window's budget it burned, warns once it passed a tenth, and exports the newest
/// release of web only.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn the_ledger_counts_what_each_release_burned() {
    support::run_with("ledger", with_prometheus(), async |ctx| {
        ctx.traffic("rps=40&errors=0.002").unwrap();
        create(ctx, "checkout", fast_spec(ctx)).await;
        wait_ready(ctx, "checkout").await;
        create_deployment(ctx, "web", json!({"tier": "web"}), false).await;
        // A dry run: the burn this test makes holds nothing, and the ledger counts all the same.
        let mut spec = burn_policy("checkout", &["freezeDeployments"], "20s");
        spec["dryRun"] = json!(true);
        create_policy(ctx, "checkout", spec).await;
        wait_evaluated(ctx, "checkout").await;
        wait_ledger(ctx, "web revision 1", K8S, |r, _| {
            r.len() == 1 && r[0].workload == "web" && r[0].revision == 1 && r[0].images == ["web:1"]
        })
        .await;

        set_image(ctx, "web", "web:2").await;
        ctx.traffic("errors=0.05").unwrap();
        ctx.log("traffic: errors=0.05");
        let (ledger, _) = wait_ledger(ctx, "web revision 2 recorded", K8S, |r, _| {
            r.first().is_some_and(|r| r.revision == 2)
        })
        .await;
        let started = ledger[0].started_at.0;
        tokio::time::sleep(Duration::from_secs(150)).await;
        ctx.traffic("errors=0.01").unwrap();
        ctx.log("traffic: errors=0.01");
        let six = jiff::SignedDuration::from_mins(6);
        let (ledger, through) = wait_ledger(
            ctx,
            "six minutes of revision 2 counted",
            Duration::from_secs(480),
            |r, t| r.first().is_some_and(|r| r.revision == 2) && t.duration_since(started) >= six,
        )
        .await;
        let (v2, v1) = (&ledger[0], &ledger[1]);
        assert_eq!(
            (v2.kind.as_str(), v2.workload.as_str(), v2.images.as_slice()),
            ("Deployment", "web", &["web:2".to_string()][..])
        );
        assert_eq!((v1.revision, v1.images.as_slice()), (1, &["web:1".to_string()][..]));
        assert!(v1.started_at.0 < started);

        let (errors, requests) = (
            increase(ctx, true, started, through),
            increase(ctx, false, started, through),
        );
        ctx.log(format!(
            "revision 2 from {started} through {through}: ledger {} errors of {} requests, the counter {errors:.1} of {requests:.1}",
            v2.errors, v2.requests
        ));
        support::keep(
            ctx,
            "ledger-accuracy.txt",
            &format!(
                "errors {} vs {errors:.2}\nrequests {} vs {requests:.2}\n",
                v2.errors, v2.requests
            ),
        );
        assert!(errors > 200.0, "enough errors to measure: {errors}");
        let off = |got: f64, truth: f64| (got - truth).abs() / truth;
        assert!(off(v2.errors, errors) < 0.02, "errors {} vs {errors}", v2.errors);
        assert!(
            off(v2.requests, requests) < 0.02,
            "requests {} vs {requests}",
            v2.requests
        );
        // 5 % then 1 % errors against a 1 % budget: about three times too fast.
        let burn = v2.burn_rate_since.expect("a burn rate");
        assert!((burn - 100.0 * v2.errors / v2.requests).abs() < 0.01, "{burn}");
        assert!((2.0..5.0).contains(&burn), "{burn}");
        // The window (a day, of which the data holds the test's minutes) allowed 1 % of its
        // requests: revision 2 spent far more than that. The window's request count is the
        // 5-minute group's, read once it has written it twice.
        let (ledger, _) = wait_ledger(ctx, "a share of the budget", Duration::from_secs(420), |r, _| {
            r.first().is_some_and(|r| r.revision == 2 && r.budget_burned.is_some())
        })
        .await;
        let share = ledger[0].budget_burned.unwrap();
        let window: f64 = ctx
            .query(&format!("slo:sli_requests:count1d{}", ctx.sel("checkout")))
            .unwrap()
            .first()
            .map_or(0.0, |s| s.value);
        ctx.log(format!(
            "revision 2 burned {share} of the budget; the window holds {window} requests"
        ));
        assert!(share > 0.5, "{share}");
        assert!(
            (share - ledger[0].errors / (0.01 * window)).abs() / share < 0.05,
            "{share} vs {} / (1% of {window})",
            ledger[0].errors
        );

        let warned = events(ctx, "checkout", "ReleaseBurnedBudget").await;
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].starts_with("Deployment web revision 2 (web:2) has burned"),
            "{}",
            warned[0]
        );
        let exported = metric_lines(&ctx.operator_metrics(), "slo_warden_release_budget_burned_ratio");
        assert!(
            exported.contains(r#"workload="web""#) && exported.contains(r#"revision="2""#),
            "{exported}"
        );
        assert!(
            !exported.contains(r#"revision="1""#),
            "only the newest release: {exported}"
        );
    });
}

fn image_of(d: &k8s_openapi::api::apps::v1::Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

/// A new image of web, expected to be refused by the freeze; the refusal.
async fn refused(ctx: &Ctx, image: &str) -> String {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    let err = deployments(ctx)
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect_err("a release in a frozen namespace must be refused");
    err.to_string()
}

/// The closed loop: the traffic's errors follow the image web runs. v2 ships and burns the
/// budget; within a poll the policy rolls web back to v1 (once: a killed and restarted operator
/// does not do it again), leaves it unpaused so the rollback rolls out, and freezes the
/// namespace, where a new image and v2 again are refused (the rollback itself went through the
/// freeze: it restores a revision from before the burn). The rollback alone brings the errors
/// down, and the policy lets go.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn a_bad_release_is_rolled_back_once_and_the_freeze_refuses_it_again() {
    let options = Options {
        prometheus: true,
        webhook: true,
        ..Options::default()
    };
    support::run_with("rollback", options, async |ctx| {
        register_release_webhook(ctx, "Fail").await;
        let follow = format!("rps=20&errors=0&follow={}/app=web&image_errors=web:2=0.5", ctx.ns);
        ctx.traffic(&follow).unwrap();
        create(ctx, "checkout", fast_spec(ctx)).await;
        wait_ready(ctx, "checkout").await;
        create_deployment(ctx, "web", json!({"tier": "web"}), false).await;
        let created = Instant::now();
        let mut spec = burn_policy(
            "checkout",
            &["rollbackRelease", "freezeDeployments", "freezeNamespace"],
            "30s",
        );
        // Two minutes: v2 (shipped below) is suspect, v1 (older) is not.
        spec["suspectWindow"] = json!("2m");
        create_policy(ctx, "checkout", spec).await;
        wait_evaluated(ctx, "checkout").await;
        wait_ledger(ctx, "web revision 1", K8S, |r, _| {
            r.first().is_some_and(|r| r.revision == 1)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(150).saturating_sub(created.elapsed())).await;

        set_image(ctx, "web", "web:2").await;
        let query = format!("slo:sli_error:ratio_rate1m{} / 0.01 > 10", ctx.sel("checkout"));
        let (mut burning_at, mut rolled_back_at) = (None, None);
        ctx.eventually("the burn in Prometheus, then web rolled back", BURN, async || {
            if burning_at.is_none() && !ctx.query(&query)?.is_empty() {
                burning_at = Some(Instant::now());
            }
            let web = deployment(ctx, "web").await?;
            if rolled_back_at.is_none()
                && image_of(&web) == "web:1"
                && web.annotations().contains_key("slo.warden.dev/rolled-back-from")
            {
                rolled_back_at = Some(Instant::now());
            }
            match (burning_at, rolled_back_at) {
                (Some(_), Some(_)) => Ok(()),
                other => Err(format!(
                    "burning/rolled back seen: {other:?}; web runs {}",
                    image_of(&web)
                )),
            }
        })
        .await;
        let reaction = rolled_back_at.unwrap().saturating_duration_since(burning_at.unwrap());
        ctx.log(format!(
            "burn-to-rollback: {:.1}s (poll interval {}s)",
            reaction.as_secs_f64(),
            support::POLICY_POLL.as_secs()
        ));
        support::keep(ctx, "burn-to-rollback.txt", &format!("{:.3}\n", reaction.as_secs_f64()));

        let web = deployment(ctx, "web").await.unwrap();
        assert_eq!(web.annotations()["slo.warden.dev/rolled-back-from"], "2: web:2");
        assert_ne!(web.spec.as_ref().unwrap().paused, Some(true), "left to roll out");
        wait_namespace_frozen(ctx, true, K8S).await;
        let policy = wait_policy(ctx, "checkout", "the rollback recorded", K8S, |p| {
            p.status.as_ref().is_some_and(|s| s.rollbacks.len() == 1)
        })
        .await;
        let record = &policy.status.as_ref().unwrap().rollbacks[0];
        assert_eq!(
            (record.result.as_str(), record.from.as_str()),
            ("RolledBack", "revision 2 (web:2)")
        );
        assert_eq!(record.to.as_deref(), Some("revision 1 (web:1)"));
        assert_eq!(occurrences(ctx, "web", "RollbackRelease").await, 1);

        // Frozen: a new image is refused, and so is v2 again.
        let message = refused(ctx, "web:3").await;
        assert!(
            message.contains("changing the pod template of Deployment web is refused"),
            "{message}"
        );
        let message = refused(ctx, "web:2").await;
        assert!(message.contains("is refused"), "{message}");

        // Killed right after: the restarted operator does not roll back again.
        let revision = web.annotations()["deployment.kubernetes.io/revision"].clone();
        ctx.kill_operator();
        ctx.start_operator().await;
        tokio::time::sleep(support::POLICY_POLL * 5).await;
        let p = policies(ctx).get("checkout").await.unwrap();
        assert_eq!(p.status.as_ref().unwrap().rollbacks.len(), 1);
        assert_eq!(occurrences(ctx, "web", "RollbackRelease").await, 1);
        let web = deployment(ctx, "web").await.unwrap();
        assert_eq!(web.annotations()["deployment.kubernetes.io/revision"], revision);
        assert_eq!(image_of(&web), "web:1");

        // The rollback alone brings the errors down: the policy lets go.
        wait_namespace_frozen(ctx, false, BURN + Duration::from_secs(60)).await;
        let p = policies(ctx).get("checkout").await.unwrap();
        assert_eq!(stage(&p), "");
        let (ledger, _) = wait_ledger(ctx, "the rollback in the ledger", K8S, |r, _| {
            r.first().is_some_and(|r| r.images == ["web:1"] && r.revision == 3)
        })
        .await;
        let v2 = ledger.iter().find(|r| r.revision == 2).expect("v2 in the ledger");
        assert!(v2.errors > 0.0, "{v2:?}");
        // Who released: the user the API server authenticated, stamped by the attribution
        // webhook, with the field manager (the operator runs with the test's credentials here:
        // the rollback is told from the test's release by its field manager).
        let by = |revision: u64| {
            let r = ledger.iter().find(|r| r.revision == revision).unwrap();
            r.changed_by.clone().unwrap_or_default()
        };
        let user = support::test_user();
        assert!(by(2).starts_with(&format!("{user} (")), "{:?}", by(2));
        assert_eq!(by(3), format!("{user} ({})", slo_warden::api::MANAGER));
    });
}

/// A person undoes a bad release while the namespace is frozen: `kubectl rollout undo` goes
/// through with a warning naming the revision; a new image does not.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn kubectl_rollout_undo_goes_through_a_freeze() {
    let options = Options {
        prometheus: true,
        webhook: true,
        ..Options::default()
    };
    support::run_with("undo", options, async |ctx| {
        register_release_webhook(ctx, "Fail").await;
        let follow = format!("rps=20&errors=0&follow={}/app=web&image_errors=web:2=0.5", ctx.ns);
        ctx.traffic(&follow).unwrap();
        create(ctx, "checkout", fast_spec(ctx)).await;
        wait_ready(ctx, "checkout").await;
        create_deployment(ctx, "web", json!({"tier": "web"}), false).await;
        let created = Instant::now();
        let mut spec = burn_policy("checkout", &["freezeNamespace"], "30s");
        spec["suspectWindow"] = json!("2m");
        create_policy(ctx, "checkout", spec).await;
        wait_evaluated(ctx, "checkout").await;
        wait_ledger(ctx, "web revision 1", K8S, |r, _| {
            r.first().is_some_and(|r| r.revision == 1)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(150).saturating_sub(created.elapsed())).await;
        set_image(ctx, "web", "web:2").await;
        wait_namespace_frozen(ctx, true, BURN).await;

        let message = refused(ctx, "web:3").await;
        assert!(message.contains("is refused"), "{message}");
        let out = support::kubectl(&["rollout", "undo", "deployment/web", "-n", &ctx.ns], None)
            .expect("kubectl rollout undo in a frozen namespace");
        ctx.log(format!("kubectl rollout undo: {out}"));
        let web = deployment(ctx, "web").await.unwrap();
        assert_eq!(image_of(&web), "web:1");
        // After the undo, v2 again is a release like any other.
        let message = refused(ctx, "web:2").await;
        assert!(message.contains("is refused"), "{message}");
        let warned = ctx
            .operator_metrics()
            .lines()
            .any(|l| l.starts_with("slo_warden_admission_reviews_total") && l.contains("allowed_with_warning"));
        assert!(warned, "the undo was allowed with a warning");
    });
}

/// A Rollout (by the real Argo Rollouts controller) whose v2 burns the budget: mid-update (at
/// its canary pause) it is aborted; completed (no steps) it is undone to v1, as `kubectl argo
/// rollouts undo` does.
async fn a_rollout_release_is_taken_back(ctx: &Ctx, steps: serde_json::Value, completed: bool) {
    use super::policy::{rollout_policy, rollouts, set_rollout_image, wait_rollout};
    let follow = format!("rps=20&errors=0&follow={}/app=web&image_errors=web:2=0.5", ctx.ns);
    ctx.traffic(&follow).unwrap();
    create(ctx, "checkout", fast_spec(ctx)).await;
    wait_ready(ctx, "checkout").await;
    let r: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "labels": {"tier": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"nodeSelector": {"type": "kwok"},
                                  "containers": [{"name": "app", "image": "web:1"}]}},
            "strategy": {"canary": {"steps": steps}},
        },
    }))
    .unwrap();
    rollouts(ctx)
        .create(&kube::api::PostParams::default(), &r)
        .await
        .unwrap();
    let created = Instant::now();
    wait_rollout(ctx, "web", "healthy at v1", K8S, |s| s.promoted).await;
    let mut spec = rollout_policy(&["rollbackRelease", "pauseRollouts", "freezeNamespace"]);
    spec["suspectWindow"] = json!("2m");
    create_policy(ctx, "checkout", spec).await;
    wait_evaluated(ctx, "checkout").await;
    wait_ledger(ctx, "Rollout web revision 1", K8S, |r, _| {
        r.first().is_some_and(|r| r.kind == "Rollout" && r.revision == 1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(150).saturating_sub(created.elapsed())).await;
    set_rollout_image(ctx, "web", "web:2").await;
    if completed {
        wait_rollout(ctx, "web", "promoted to v2", K8S, |s| s.promoted).await;
    } else {
        wait_rollout(ctx, "web", "at its canary pause", K8S, |s| !s.promoted && s.step >= 1).await;
    }
    let policy = wait_policy(ctx, "checkout", "the release taken back", BURN, |p| {
        p.status.as_ref().is_some_and(|s| !s.rollbacks.is_empty())
    })
    .await;
    let record = policy.status.unwrap().rollbacks[0].clone();
    ctx.log(format!("rollback: {} {}", record.result, record.message));
    assert_eq!(record.kind, "Rollout");
    assert_eq!(record.from, "revision 2 (web:2)");
    let r = rollouts(ctx).get("web").await.unwrap();
    assert_eq!(r.annotations()["slo.warden.dev/rolled-back-from"], "2: web:2");
    assert_ne!(r.data["spec"]["paused"], true, "not held paused");
    if completed {
        assert_eq!(record.result, "RolledBack");
        assert_eq!(r.data["spec"]["template"]["spec"]["containers"][0]["image"], "web:1");
        wait_rollout(ctx, "web", "promoted back to v1", K8S, |s| s.promoted).await;
    } else {
        assert_eq!(record.result, "Aborted");
        let s = wait_rollout(ctx, "web", "aborted", K8S, |s| s.aborted).await;
        ctx.log(format!("{s:?}"));
    }
}

#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn a_rollout_mid_update_is_aborted() {
    support::run_with("rollout-abort", with_prometheus(), async |ctx| {
        let steps = json!([{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]);
        a_rollout_release_is_taken_back(ctx, steps, false).await;
    });
}

#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn a_completed_rollout_is_undone() {
    support::run_with("rollout-undo", with_prometheus(), async |ctx| {
        a_rollout_release_is_taken_back(ctx, json!([]), true).await;
    });
}

/// A burn with no release behind it (web released long before): no rollback, and the policy
/// says where to look instead; a workload Argo CD manages is frozen, not undone, with the
/// revision to revert in Git named.
#[test]
#[ignore = "needs a cluster and Prometheus: make e2e"]
fn a_burn_without_a_release_and_a_gitops_workload_are_not_rolled_back() {
    support::run_with("norelease", with_prometheus(), async |ctx| {
        ctx.traffic("rps=20&errors=0").unwrap();
        create(ctx, "checkout", fast_spec(ctx)).await;
        wait_ready(ctx, "checkout").await;
        create_deployment(ctx, "web", json!({"tier": "web"}), false).await;
        let created = Instant::now();
        let mut spec = burn_policy(
            "checkout",
            &["rollbackRelease", "freezeDeployments", "freezeNamespace"],
            "20s",
        );
        spec["suspectWindow"] = json!("1m");
        create_policy(ctx, "checkout", spec).await;
        wait_evaluated(ctx, "checkout").await;
        wait_ledger(ctx, "web revision 1", K8S, |r, _| {
            r.first().is_some_and(|r| r.revision == 1)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(80).saturating_sub(created.elapsed())).await;

        // Errors with no release: a dependency, traffic, an attack.
        ctx.traffic("errors=0.5").unwrap();
        let policy = wait_policy(ctx, "checkout", "in stage fast-burn", BURN, |p| stage(p) == "fast-burn").await;
        let reason = &policy.status.as_ref().unwrap().reason;
        assert!(
            reason.ends_with("; no release in the 1m before the burn: look at dependencies, traffic and security"),
            "{reason}"
        );
        assert_eq!(events(ctx, "checkout", "BurnWithoutRelease").await.len(), 1);
        assert!(policy.status.as_ref().unwrap().rollbacks.is_empty());
        assert_eq!(image_of(&deployment(ctx, "web").await.unwrap()), "web:1");
        let m = ctx.operator_metrics();
        assert!(
            metric_lines(&m, "slo_warden_burns_without_release_total").contains(" 1"),
            "{}",
            metric_lines(&m, "slo_warden_burns_without_release_total")
        );
        ctx.traffic("errors=0").unwrap();
        wait_namespace_frozen(ctx, false, BURN + Duration::from_secs(60)).await;

        // Argo CD manages web now (its tracking id on the Deployment); v2 burns.
        deployments(ctx)
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {
                    "argocd.argoproj.io/tracking-id": format!("shop:apps/Deployment:{}/web", ctx.ns)}}})),
            )
            .await
            .unwrap();
        let follow = format!("errors=0&follow={}/app=web&image_errors=web:2=0.5", ctx.ns);
        ctx.traffic(&follow).unwrap();
        set_image(ctx, "web", "web:2").await;
        let policy = wait_policy(ctx, "checkout", "the GitOps rollback refused", BURN, |p| {
            p.status.as_ref().is_some_and(|s| !s.rollbacks.is_empty())
        })
        .await;
        let record = &policy.status.as_ref().unwrap().rollbacks[0];
        assert_eq!(record.result, "GitOps");
        assert!(
            record.message.contains("managed by Argo CD application shop"),
            "{}",
            record.message
        );
        assert!(
            record.message.ends_with("Revert it in Git to revision 1 (web:1)"),
            "{}",
            record.message
        );
        let web = deployment(ctx, "web").await.unwrap();
        assert_eq!(image_of(&web), "web:2", "not undone: self-heal would put it back");
        assert_eq!(web.spec.as_ref().unwrap().paused, Some(true), "frozen instead");
    });
}
