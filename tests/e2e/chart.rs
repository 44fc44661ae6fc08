//! The chart as a platform team installs it: `helm install` into the real API server, two
//! operator processes run with the chart's ServiceAccount token and the chart's own flags, and
//! the webhooks called by the API server.
//!
//! Two things differ from pods, because the processes run on this machine rather than behind
//! the chart's Service: the API server reaches the webhook by URL (`https://localhost:<port>`,
//! as controller-runtime's envtest does), and each process listens on ports of its own. The
//! test checks the Service wiring it cannot dial (port 443 → the `webhook` container port →
//! `--webhook-addr`).

use std::fs;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::policy::{
    self, BURN, PAUSED_BY, WEBHOOK_KINDS, condition, create_deployment, create_policy, create_rollout, deployment,
    held_objects, holders, paused, stage, wait_ca_bundles, wait_deployment, wait_evaluated, wait_namespace_frozen,
    wait_policy, wait_reconciled, wait_rollout, webhook_configurations,
};
use super::support::{
    self, Ctx, K8S, Operator, Options, free_port, helm, kubectl, metric_lines, metric_sum_where, webhook_host,
};
use super::{BAD_PROMQL, create, fast_spec, wait_ready};

/// One operator process of the release: its ports and how to read its metrics.
struct Replica {
    name: &'static str,
    webhook_port: u16,
}

/// `helm install`s the chart into `<ns>-system`, watching the test's namespace only; the
/// release and its namespace are removed at the end of the test.
fn install(ctx: &Ctx) -> (String, String) {
    let release = ctx.ns.clone();
    let namespace = format!("{}-system", ctx.ns);
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/slo-warden");
    let scrape = std::env::var("E2E_SCRAPE_INTERVAL").unwrap_or_else(|_| "30s".into());
    let values = [
        format!("watchNamespaces={{{}}}", ctx.ns),
        format!("prometheusUrl={}", ctx.env.prometheus_url),
        format!("scrapeInterval={scrape}"),
        format!(
            "alertInterval={}",
            std::env::var("E2E_EVAL_INTERVAL").unwrap_or_else(|_| "1m".into())
        ),
        format!("pollInterval={}s", support::POLICY_POLL.as_secs()),
        "prometheusAuth.timeout=2s".into(),
        "webhook.failurePolicy=Fail".into(),
        "logFormat=text".into(),
    ];
    let mut args = vec![
        "install",
        &release,
        chart,
        "--namespace",
        &namespace,
        "--create-namespace",
        // The cluster has the CRDs already (cluster-up.sh applies crds/, the same files).
        "--skip-crds",
    ];
    for v in &values {
        args.extend(["--set", v]);
    }
    let out = helm(&args).unwrap_or_else(|e| panic!("helm install: {e}"));
    ctx.log(format!(
        "helm install {release} -n {namespace}: {}",
        out.lines().next().unwrap_or("")
    ));
    let (r, n) = (release.clone(), namespace.clone());
    ctx.on_cleanup(move || {
        if let Err(e) = helm(&["uninstall", &r, "--namespace", &n, "--wait", "--timeout", "60s"]) {
            eprintln!("helm uninstall {r}: {e}");
        }
        let _ = kubectl(&["delete", "namespace", &n, "--wait=false"], None);
    });
    (release, namespace)
}

/// The chart's flags for the controller, as rendered into its Deployment; checks the webhook
/// wiring a pod would get (Service 443 → container port `webhook` → `--webhook-addr`).
async fn chart_args(ctx: &Ctx, namespace: &str, fullname: &str) -> Vec<String> {
    let d = Api::<Deployment>::namespaced(ctx.client.clone(), namespace)
        .get(fullname)
        .await
        .expect("the chart's Deployment");
    let pod = d.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(fullname));
    let c = &pod.containers[0];
    let args = c.args.clone().unwrap_or_default();
    let port = c
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("webhook"))
        .expect("a webhook container port")
        .container_port;
    assert!(
        args.contains(&format!("--webhook-addr=0.0.0.0:{port}")),
        "--webhook-addr must be the webhook port {port}: {args:?}"
    );
    let svc = Api::<Service>::namespaced(ctx.client.clone(), namespace)
        .get(fullname)
        .await
        .expect("the chart's Service");
    let to_webhook = svc.spec.unwrap().ports.unwrap_or_default().into_iter().any(|p| {
        p.port == 443
            && p.target_port
                == Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                    "webhook".into(),
                ))
    });
    assert!(to_webhook, "the Service must send 443 to the webhook port");
    args
}

/// A kubeconfig that authenticates as the chart's ServiceAccount, with a token from the
/// TokenRequest API (what the kubelet mounts into the pod).
async fn service_account_kubeconfig(ctx: &Ctx, namespace: &str, name: &str) -> std::path::PathBuf {
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 7200}})).unwrap();
    let token = Api::<ServiceAccount>::namespaced(ctx.client.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("a token for the chart's ServiceAccount")
        .status
        .expect("TokenRequest status")
        .token;
    let admin = kube::config::Kubeconfig::read_from(&ctx.env.kubeconfig).expect("read KUBECONFIG");
    let current = admin.current_context.clone().unwrap_or_default();
    let cluster_name = admin
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .expect("the current context's cluster");
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .expect("the current cluster");
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [serde_json::to_value(cluster).unwrap()],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": cluster_name, "user": name, "namespace": namespace}}],
        "current-context": name,
    });
    let path = ctx.dir.join("service-account.kubeconfig");
    fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

/// Points the chart's webhook configurations at one replica (the URL stands in for the Service
/// and its endpoints); the caBundle is kept.
async fn route_webhooks_to(ctx: &Ctx, fullname: &str, replica: &Replica) {
    ctx.eventually(&format!("webhooks routed to {}", replica.name), K8S, async || {
        for kind in WEBHOOK_KINDS {
            let api = webhook_configurations(ctx, kind);
            let mut config = api.get(fullname).await.map_err(|e| e.to_string())?;
            for hook in config.data["webhooks"].as_array_mut().into_iter().flatten() {
                let cc = &mut hook["clientConfig"];
                let path = match (cc["service"]["path"].as_str(), cc["url"].as_str()) {
                    (Some(path), _) => path.to_string(),
                    (None, Some(url)) => url
                        .trim_start_matches("https://")
                        .split_once('/')
                        .map_or("/".into(), |(_, p)| format!("/{p}")),
                    _ => return Err(format!("{kind} {fullname}: no clientConfig: {cc}")),
                };
                let mut new = json!({"url": format!("https://{}:{}{path}", webhook_host(), replica.webhook_port)});
                if let Some(ca) = cc.get("caBundle") {
                    new["caBundle"] = ca.clone();
                }
                *cc = new;
            }
            api.replace(fullname, &PostParams::default(), &config)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await;
}

fn leads(op: &Operator) -> f64 {
    op.metrics()
        .map(|m| metric_sum_where(&m, "slo_warden_leader", &[]))
        .unwrap_or(0.0)
}

/// `kubectl patch rollout canary` with a new image (`kubectl set image` knows no Rollouts).
fn set_rollout_image(ns: &str, image: &str) -> Result<String, String> {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    kubectl(
        &[
            "patch",
            "rollout",
            "canary",
            "-n",
            ns,
            "--type",
            "merge",
            "-p",
            &patch.to_string(),
        ],
        None,
    )
}

/// `kubectl set image deployment/web app=IMAGE`.
fn set_web_image(ns: &str, image: &str) -> Result<String, String> {
    kubectl(
        &["set", "image", "deployment/web", &format!("app={image}"), "-n", ns],
        None,
    )
}

fn override_yaml(name: &str) -> String {
    format!(
        "apiVersion: slo.warden.dev/v1alpha1\nkind: ErrorBudgetOverride\nmetadata:\n  name: {name}\nspec:\n  policy: checkout\n  duration: 30m\n  reason: hotfix for INC-7\n"
    )
}

/// `helm install` as a platform team would (watching one namespace), then the operator as the
/// chart runs it, twice: with only the chart's RBAC it generates rules, freezes, serves the
/// webhooks with its own certificate, refuses releases and bad objects at `kubectl apply`,
/// attributes a break-glass to the user who applied it, fails over without releasing, and
/// releases on recovery — and is never forbidden anything on the way.
#[test]
#[ignore = "needs a cluster, Prometheus and helm: make e2e"]
fn the_chart_installs_an_operator_that_needs_nothing_more() {
    let options = Options {
        own_operator: true,
        ..Options::default()
    };
    support::run_with("chart", options, async |ctx| {
        let (release, system) = install(ctx);
        let fullname = format!("{release}-slo-warden");
        let ns = ctx.ns.clone();
        let chart_args = chart_args(ctx, &system, &fullname).await;
        ctx.log(format!("chart flags: {}", chart_args.join(" ")));
        let kubeconfig = service_account_kubeconfig(ctx, &system, &fullname).await;

        // Two replicas, as the chart runs them: its flags, with local ports instead of the pod's.
        let replicas = [
            Replica {
                name: "a",
                webhook_port: free_port(),
            },
            Replica {
                name: "b",
                webhook_port: free_port(),
            },
        ];
        route_webhooks_to(ctx, &fullname, &replicas[0]).await;
        let mut ops: Vec<Option<Operator>> = Vec::new();
        for r in &replicas {
            let args: Vec<String> = chart_args
                .iter()
                .map(|a| {
                    if a.starts_with("--http-addr=") {
                        format!("--http-addr=127.0.0.1:{}", free_port())
                    } else if a.starts_with("--webhook-addr=") {
                        format!("--webhook-addr={}", support::webhook_bind(r.webhook_port))
                    } else if a.starts_with("--webhook-dns-name=") {
                        format!("{a},{}", webhook_host())
                    } else {
                        a.clone()
                    }
                })
                .collect();
            let pod = format!("{fullname}-{}", r.name);
            let log = ctx.dir.join(format!("operator-{}.log", r.name));
            let op = Operator::spawn(
                &args,
                &[
                    ("KUBECONFIG", kubeconfig.to_str().unwrap()),
                    ("POD_NAMESPACE", &system),
                    ("POD_NAME", &pod),
                ],
                &log,
            );
            ctx.log(format!(
                "replica {} started (pid {}, {})",
                r.name,
                op.pid(),
                log.display()
            ));
            ops.push(Some(op));
        }
        let ready = |op: &Operator| support::http_ok("GET", &op.url("/readyz")).map(drop);
        ctx.eventually("both replicas ready", K8S, async || {
            ops.iter().flatten().try_for_each(ready)
        })
        .await;
        let leader = ctx
            .eventually("one replica to lead", K8S, async || {
                let l: Vec<usize> = (0..2).filter(|&i| leads(ops[i].as_ref().unwrap()) == 1.0).collect();
                match l.as_slice() {
                    [i] => Ok(*i),
                    other => Err(format!("leaders: {other:?}")),
                }
            })
            .await;
        ctx.log(format!("replica {} leads", replicas[leader].name));
        wait_ca_bundles(ctx, &fullname).await;

        // Bad input is refused by `kubectl apply`, with the validator's message.
        let mut bad = fast_spec(ctx);
        bad["indicator"]["ratio"]["errors"] = json!(BAD_PROMQL);
        let bad_slo = serde_yaml::to_string(&json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "broken", "namespace": ns}, "spec": bad,
        }))
        .unwrap();
        let err = kubectl(&["apply", "-f", "-"], Some(&bad_slo)).expect_err("an SLO with bad PromQL must be refused");
        ctx.log(format!("kubectl apply (bad PromQL): {err}"));
        assert!(
            err.contains(r#"admission webhook "objects.slo.warden.dev" denied the request"#)
                && err.contains("spec.indicator.ratio.errors: is not valid PromQL"),
            "{err}"
        );

        // The SLO: rules applied and status written with the chart's permissions.
        create(ctx, "checkout", fast_spec(ctx)).await;
        wait_ready(ctx, "checkout").await;
        let mut unrecorded = policy::burn_policy("checkout", &["freezeDeployments"], "15s");
        unrecorded["stages"][0]["when"][0]["burnRate"]["window"] = json!("7m");
        let bad_policy = serde_yaml::to_string(&json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetPolicy",
            "metadata": {"name": "checkout", "namespace": ns}, "spec": unrecorded,
        }))
        .unwrap();
        let err = kubectl(&["apply", "-f", "-"], Some(&bad_policy))
            .expect_err("a policy reading a window its SLO does not record must be refused");
        ctx.log(format!("kubectl apply (unrecorded window): {err}"));
        assert!(
            err.contains(
                "spec.stages[0].when[0].burnRate.window: ServiceLevelObjective checkout does not record a 7m window"
            ),
            "{err}"
        );

        create_deployment(ctx, "web", json!({"tier": "web"}), false).await;
        create_rollout(ctx, "canary").await;
        wait_rollout(ctx, "canary", "Healthy", K8S, |s| s.phase == "Healthy" && s.promoted).await;
        let mut spec = policy::burn_policy(
            "checkout",
            &["freezeDeployments", "pauseRollouts", "freezeNamespace"],
            "15s",
        );
        spec["targets"]["rollouts"] = json!({"matchLabels": {"tier": "web"}});
        create_policy(ctx, "checkout", spec).await;
        wait_evaluated(ctx, "checkout").await;

        ctx.traffic("errors=0.5").unwrap();
        ctx.log("traffic: errors=0.5");
        wait_deployment(ctx, "web", true, &["checkout"], BURN).await;
        wait_rollout(ctx, "canary", "paused by the policy", K8S, |s| s.paused).await;
        wait_namespace_frozen(ctx, true, K8S).await;

        // Releases are refused with the reason and the way out; replica a answers.
        let err = set_web_image(&ns, "web:2").expect_err("kubectl set image in a frozen namespace must be refused");
        ctx.log(format!("kubectl set image deployment/web: {err}"));
        for want in [
            r#"admission webhook "releases.slo.warden.dev" denied the request"#.to_string(),
            format!(
                "changing the pod template of Deployment web is refused: releases in namespace {ns} are frozen since"
            ),
            "checkout: burn rate over 1m".to_string(),
            format!("slo-warden override checkout -n {ns} --for 1h"),
        ] {
            assert!(err.contains(&want), "missing {want:?} in: {err}");
        }
        // Replica b serves the same certificate: the Rollout is refused through it.
        route_webhooks_to(ctx, &fullname, &replicas[1]).await;
        let err =
            set_rollout_image(&ns, "canary:2").expect_err("a new Rollout image in a frozen namespace must be refused");
        ctx.log(format!("kubectl patch rollout/canary: {err}"));
        assert!(
            err.contains("changing the pod template of Rollout canary is refused"),
            "{err}"
        );
        kubectl(&["scale", "deployment/web", "--replicas=3", "-n", &ns], None)
            .expect("scaling in a frozen namespace is allowed");

        // Break-glass by alice, who holds the built-in edit role in the namespace (the chart
        // aggregates the slo.warden.dev kinds into it).
        kubectl(
            &[
                "create",
                "rolebinding",
                "alice-edit",
                "--clusterrole=edit",
                "--user=alice",
                "-n",
                &ns,
            ],
            None,
        )
        .unwrap();
        ctx.eventually(
            "alice may create ErrorBudgetOverrides (edit role)",
            K8S,
            async || match kubectl(
                &[
                    "auth",
                    "can-i",
                    "create",
                    "errorbudgetoverrides.slo.warden.dev",
                    "--as=alice",
                    "-n",
                    &ns,
                ],
                None,
            ) {
                Ok(yes) if yes.trim() == "yes" => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
        .await;
        kubectl(
            &["create", "--as=alice", "-n", &ns, "-f", "-"],
            Some(&override_yaml("hotfix")),
        )
        .expect("alice may break glass");
        let by = kubectl(
            &[
                "get",
                "errorbudgetoverride",
                "hotfix",
                "-n",
                &ns,
                "-o",
                "jsonpath={.spec.requestedBy}",
            ],
            None,
        )
        .unwrap();
        assert_eq!(by, "alice", "the webhook records who applied the override");
        ctx.eventually("the new image accepted under alice's override", K8S, async || {
            set_web_image(&ns, "web:2").map(drop)
        })
        .await;
        wait_policy(ctx, "checkout", "Overridden, naming alice", K8S, |p| {
            condition(p, "Overridden").is_some_and(|c| c.0 == "True" && c.2.contains("by alice: hotfix for INC-7"))
        })
        .await;
        wait_deployment(ctx, "web", false, &[], K8S).await;

        // The override withdrawn, the freeze is back (still burning).
        kubectl(&["delete", "errorbudgetoverride", "hotfix", "-n", &ns], None).unwrap();
        wait_deployment(ctx, "web", true, &["checkout"], K8S).await;
        wait_namespace_frozen(ctx, true, K8S).await;

        // Failover: the leader dies; the other takes over within the lease (15 s) and changes
        // nothing. The webhook follows the survivor, as the Service's endpoints would.
        let standby = 1 - leader;
        let steady = held_objects(ctx).await;
        ops[leader].take().unwrap().kill();
        let killed = Instant::now();
        ctx.log(format!("replica {} killed (SIGKILL)", replicas[leader].name));
        route_webhooks_to(ctx, &fullname, &replicas[standby]).await;
        let survivor = ops[standby].take().unwrap();
        let mut paused_throughout = true;
        ctx.eventually("the other replica to take over", Duration::from_secs(30), async || {
            paused_throughout &= paused(&deployment(ctx, "web").await?);
            match leads(&survivor) {
                1.0 => Ok(()),
                n => Err(format!("slo_warden_leader {n}")),
            }
        })
        .await;
        let takeover = killed.elapsed();
        ctx.log(format!("failover: {:.1}s (lease duration 15s)", takeover.as_secs_f64()));
        assert!(takeover <= Duration::from_secs(20), "failover took {takeover:?}");
        wait_reconciled(ctx, "the new leader to evaluate the policy", 2.0, || survivor.metrics()).await;
        assert!(paused_throughout, "the freeze was lifted during the failover");
        assert_eq!(held_objects(ctx).await, steady, "the failover changed objects");
        ctx.adopt_operator(survivor);

        // Recovery releases everything; then releases go through.
        ctx.traffic("errors=0").unwrap();
        ctx.log("traffic: errors=0");
        wait_policy(ctx, "checkout", "released", BURN, |p| stage(p).is_empty()).await;
        wait_namespace_frozen(ctx, false, K8S).await;
        wait_deployment(ctx, "web", false, &[], K8S).await;
        wait_rollout(ctx, "canary", "unpaused", K8S, |s| !s.paused).await;
        let r = policy::rollouts(ctx).get("canary").await.unwrap();
        assert!(holders(r.annotations(), PAUSED_BY).is_empty(), "{:?}", r.annotations());
        set_rollout_image(&ns, "canary:2").expect("after the release a new Rollout image is accepted");
        set_web_image(&ns, "web:3").expect("after the release a new image is accepted");

        // Deleting the policy: the finalizer is removed with the chart's permissions.
        kubectl(
            &["delete", "errorbudgetpolicy", "checkout", "-n", &ns, "--timeout=60s"],
            None,
        )
        .expect("the policy is deleted (its finalizer removed)");
        let m = ctx.operator_metrics();
        assert_eq!(
            metric_sum_where(&m, "slo_warden_reconcile_failures_total", &[]),
            0.0,
            "{}",
            metric_lines(&m, "slo_warden_reconcile_failures_total")
        );
        // The chart's RBAC was enough for everything both replicas did.
        for r in &replicas {
            let log = fs::read_to_string(ctx.dir.join(format!("operator-{}.log", r.name))).unwrap_or_default();
            let denied: Vec<&str> = log
                .lines()
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    l.contains("forbidden") || l.contains(" 403")
                })
                .collect();
            assert!(
                denied.is_empty(),
                "replica {} was refused:\n{}",
                r.name,
                denied.join("\n")
            );
        }
    });
}
