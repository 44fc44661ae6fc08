//! Reconciles a ServiceLevelObjective: validate → build rules (pure) → apply the PrometheusRule
//! → status. An invalid spec never touches the rules that are in place.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::api::{Patch, PatchParams};
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::instrument;

use super::context::Context;
use crate::api::condition::{self, FALSE, READY, TRUE};
use crate::api::{PrometheusRule, ServiceLevelObjective, ServiceLevelObjectiveStatus};
use crate::error::{Error, Result};
use crate::rules::{self, MANAGED_BY_LABEL, MANAGER};
use crate::validate;

const CONTROLLER: &str = "slo";
/// Safety net: owned PrometheusRules trigger reconciles on change, this catches anything missed.
const RESYNC: Duration = Duration::from_secs(30 * 60);

use crate::cache::Guarded;

fn key_of(meta: &ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

#[instrument(skip_all, fields(namespace, name))]
pub async fn reconcile(guard: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let meta = match &guard.0 {
        Ok(slo) => &slo.metadata,
        Err(invalid) => &invalid.metadata,
    };
    let span = tracing::Span::current();
    span.record("namespace", meta.namespace.as_deref().unwrap_or_default());
    span.record("name", meta.name.as_deref().unwrap_or_default());
    let key = key_of(meta);
    let result = super::unwind::contained(async {
        match &guard.0 {
            Ok(slo) => reconcile_slo(slo, &ctx).await,
            Err(invalid) => reconcile_unreadable(invalid, &ctx).await,
        }
    })
    .await;
    match &result {
        Ok(_) => ctx.backoff.succeeded(&key),
        Err(e) => {
            ctx.metrics.failure(CONTROLLER, e.reason());
            tracing::warn!(reason = e.reason(), error = %e, "reconcile failed");
            if let Ok(slo) = &guard.0 {
                // Say it on the object too; a failure to do so must not hide the first error.
                if let Err(status_err) = report_failure(slo, e, &ctx).await {
                    tracing::warn!(error = %status_err, "cannot record the failure in status");
                }
            }
        }
    }
    result
}

pub fn error_policy(guard: Arc<Guarded>, error: &Error, ctx: Arc<Context>) -> Action {
    let meta = match &guard.0 {
        Ok(slo) => &slo.metadata,
        Err(invalid) => &invalid.metadata,
    };
    let delay = ctx.backoff.failed(key_of(meta));
    tracing::debug!(reason = error.reason(), ?delay, "requeue after failure");
    Action::requeue(delay)
}

async fn reconcile_slo(slo: &ServiceLevelObjective, ctx: &Context) -> Result<Action> {
    let ns = slo.namespace().ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let previous = slo.status.clone().unwrap_or_default();
    let confined = |valid| match ctx.allow_cross_namespace_sli {
        true => Ok(valid),
        false => match validate::foreign_namespaces(slo, None) {
            problems if problems.is_empty() => Ok(valid),
            problems => Err(problems),
        },
    };
    match validate::validate(slo).and_then(confined) {
        Ok(valid) => {
            let mut desired = rules::prometheus_rule(&valid, &ctx.settings);
            let owner = slo
                .controller_owner_ref(&())
                .ok_or(Error::MissingObjectKey("metadata.uid"))?;
            desired.metadata.owner_references = Some(vec![owner]);
            let name = slo.name_any();
            let message = applied_message(&name, &desired.spec.groups);
            let applied = apply_rule(&ns, desired, slo, ctx).await?;
            if applied.written {
                tracing::info!(rule = %name, "applied PrometheusRule");
            }
            let mut status = next_status(
                &previous,
                slo.metadata.generation,
                TRUE,
                "RulesApplied",
                message,
                Some(name),
                slo.metadata.generation,
            );
            status.rules_digest = Some(applied.digest);
            status.prometheus_rule_version = applied.version;
            write_status(slo, &previous, status, ctx).await?;
            Ok(Action::requeue(RESYNC))
        }
        Err(problems) => {
            let kept = match previous.rules_generation {
                Some(g) => format!(" The rules generated from generation {g} stay in place until this is fixed."),
                None => " No rules have been generated yet.".to_string(),
            };
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let message = format!("{}.{kept}", list.join("; "));
            report_not_ready(slo, ctx, "InvalidSpec", "Validate", message).await?;
            tracing::info!(problems = list.len(), "spec is invalid; rules left as they are");
            Ok(Action::await_change())
        }
    }
}

/// An object the watch could not even deserialize (e.g. a field of the wrong type that slipped
/// past the schema): say so on the object and wait for it to change.
async fn reconcile_unreadable(invalid: &InvalidObject, ctx: &Context) -> Result<Action> {
    let (ns, name) = key_of(&invalid.metadata);
    let api: Api<ServiceLevelObjective> = Api::namespaced(ctx.client.clone(), &ns);
    // The parser's message may quote the whole offending value.
    let message = format!("cannot be read: {}", crate::api::bounds::shorten(&invalid.error));
    let ready = json!({
        "type": READY, "status": FALSE, "reason": "InvalidSpec", "message": message,
        "observedGeneration": invalid.metadata.generation,
        "lastTransitionTime": jiff::Timestamp::now(),
    });
    api.patch_status(
        &name,
        &crate::api::merge_params(),
        &Patch::Merge(json!({"status": {"conditions": [ready], "observedGeneration": invalid.metadata.generation}})),
    )
    .await
    .map_err(|e| api_error(e, "update servicelevelobjectives/status"))?;
    ctx.metrics.write(CONTROLLER, "status");
    let reference = ObjectReference {
        api_version: Some(ServiceLevelObjective::api_version(&()).into()),
        kind: Some(ServiceLevelObjective::kind(&()).into()),
        namespace: Some(ns),
        name: Some(name),
        uid: invalid.metadata.uid.clone(),
        ..ObjectReference::default()
    };
    super::events::publish(
        &ctx.recorder,
        &reference,
        EventType::Warning,
        "InvalidSpec",
        "Validate",
        message,
    )
    .await;
    Ok(Action::await_change())
}

/// What [`apply_rule`] did, for the status.
struct Applied {
    written: bool,
    /// [`super::rule_versions::digest`] of the rules in place.
    digest: String,
    /// The rule's `resourceVersion` after the apply (or as found).
    version: Option<String>,
}

/// What of an SLO its reconcile reads or writes: its identity, its spec (by generation) and the
/// status fields the reconciler owns. The budget writer changes none of these, so a budget that
/// moves triggers no reconcile (ten thousand SLOs would otherwise each be reconciled on every
/// budget write), while anything the reconcile would correct still does. An object that cannot
/// be read reconciles on every change.
pub fn trigger_fingerprint(guard: &Guarded) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    match &guard.0 {
        Ok(slo) => {
            let m = &slo.metadata;
            (&m.uid, m.generation, m.deletion_timestamp.is_some()).hash(&mut h);
            if let Some(s) = &slo.status {
                (s.observed_generation, &s.prometheus_rule, s.rules_generation).hash(&mut h);
                (&s.rules_digest, &s.prometheus_rule_version).hash(&mut h);
                if let Some(c) = ready_condition(s) {
                    (&c.status, &c.reason, &c.message, c.observed_generation).hash(&mut h);
                }
            }
        }
        Err(invalid) => (&invalid.metadata.uid, &invalid.metadata.resource_version).hash(&mut h),
    }
    h.finish()
}

/// Server-side applies the PrometheusRule unless it already matches. A rule the status says
/// was applied with these very rules, at the version the watch still shows, matches without
/// being read.
async fn apply_rule(ns: &str, desired: PrometheusRule, slo: &ServiceLevelObjective, ctx: &Context) -> Result<Applied> {
    let name = desired.name_any();
    let digest = super::rule_versions::digest(&desired);
    let status = slo.status.as_ref();
    if let (Some(recorded), Some(seen)) = (
        status.and_then(|s| s.prometheus_rule_version.as_deref()),
        ctx.rule_versions.get(ns, &name),
    ) && status.and_then(|s| s.rules_digest.as_deref()) == Some(digest.as_str())
        && *recorded == *seen
    {
        return Ok(Applied {
            written: false,
            digest,
            version: Some(recorded.to_string()),
        });
    }
    let api: Api<PrometheusRule> = Api::namespaced(ctx.client.clone(), ns);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|e| rule_error(e, "get prometheusrules"))?;
    if let Some(existing) = &existing {
        let ours = existing
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == slo.metadata.uid.as_ref());
        if !ours && existing.labels().get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGER) {
            return Err(Error::InvalidSpec(format!(
                "a PrometheusRule named {name} already exists and is not managed by slo-warden; rename the ServiceLevelObjective or remove that PrometheusRule"
            )));
        }
        if is_current(existing, &desired) {
            return Ok(Applied {
                written: false,
                digest,
                version: existing.metadata.resource_version.clone(),
            });
        }
    }
    let mut applied = api
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&desired))
        .await
        .map_err(|e| rule_error(e, "apply prometheusrules"))?;
    ctx.metrics.write(CONTROLLER, "prometheusrule");
    if applied.spec != desired.spec {
        // Server-side apply keeps fields other managers set (a hand-added group `interval`,
        // `limit`, an extra group); the rules must be exactly ours, so replace the groups.
        applied = api
            .patch(
                &name,
                &crate::api::merge_params(),
                &Patch::Merge(serde_json::json!({"spec": {"groups": desired.spec.groups}})),
            )
            .await
            .map_err(|e| rule_error(e, "patch prometheusrules"))?;
        ctx.metrics.write(CONTROLLER, "prometheusrule");
    }
    Ok(Applied {
        written: true,
        digest,
        version: applied.metadata.resource_version,
    })
}

/// The `Ready=True` message: what the PrometheusRule holds.
fn applied_message(name: &str, groups: &[crate::api::RuleGroup]) -> String {
    let rules = groups.iter().flat_map(|g| &g.rules);
    let alerts = rules.clone().filter(|r| r.alert.is_some()).count();
    let records = rules.count() - alerts;
    format!("PrometheusRule {name} holds {records} recording and {alerts} alerting rules")
}

/// The live object already says what we would apply (extra labels or fields set by others are
/// theirs to keep).
pub fn is_current(existing: &PrometheusRule, desired: &PrometheusRule) -> bool {
    let labels_ok = desired
        .labels()
        .iter()
        .all(|(k, v)| existing.labels().get(k) == Some(v));
    let owners_ok = desired
        .owner_references()
        .iter()
        .all(|o| existing.owner_references().contains(o));
    existing.spec == desired.spec && labels_ok && owners_ok
}

fn ready_condition(status: &ServiceLevelObjectiveStatus) -> Option<&Condition> {
    status.conditions.iter().find(|c| c.type_ == READY)
}

/// The status after this reconcile; `budget` is left to the policy engine.
pub fn next_status(
    previous: &ServiceLevelObjectiveStatus,
    generation: Option<i64>,
    ready: &str,
    reason: &str,
    message: String,
    prometheus_rule: Option<String>,
    rules_generation: Option<i64>,
) -> ServiceLevelObjectiveStatus {
    let now = jiff::Timestamp::now();
    let conditions = condition::replaced(
        &previous.conditions,
        condition::next_condition(&previous.conditions, READY, ready, reason, message, generation, now),
    );
    ServiceLevelObjectiveStatus {
        observed_generation: generation,
        conditions,
        prometheus_rule,
        rules_generation,
        rules_digest: previous.rules_digest.clone(),
        prometheus_rule_version: previous.prometheus_rule_version.clone(),
        budget: previous.budget.clone(),
        releases: previous.releases.clone(),
        releases_counted_from: previous.releases_counted_from.clone(),
        releases_counted_through: previous.releases_counted_through.clone(),
        releases_missed: previous.releases_missed.clone(),
    }
}

/// Patches the fields this reconciler owns, only when they changed.
async fn write_status(
    slo: &ServiceLevelObjective,
    previous: &ServiceLevelObjectiveStatus,
    next: ServiceLevelObjectiveStatus,
    ctx: &Context,
) -> Result<()> {
    if same_status(previous, &next) {
        return Ok(());
    }
    let api: Api<ServiceLevelObjective> = Api::namespaced(ctx.client.clone(), &slo.namespace().unwrap_or_default());
    let patch = json!({"status": {
        "observedGeneration": next.observed_generation,
        "conditions": next.conditions,
        "prometheusRule": next.prometheus_rule,
        "rulesGeneration": next.rules_generation,
        "rulesDigest": next.rules_digest,
        "prometheusRuleVersion": next.prometheus_rule_version,
    }});
    api.patch_status(&slo.name_any(), &crate::api::merge_params(), &Patch::Merge(&patch))
        .await
        .map_err(|e| api_error(e, "update servicelevelobjectives/status"))?;
    ctx.metrics.write(CONTROLLER, "status");
    Ok(())
}

/// Equal apart from `lastTransitionTime` of conditions whose status did not change (those are
/// carried over, so a plain comparison works).
pub fn same_status(a: &ServiceLevelObjectiveStatus, b: &ServiceLevelObjectiveStatus) -> bool {
    a.observed_generation == b.observed_generation
        && a.prometheus_rule == b.prometheus_rule
        && a.rules_generation == b.rules_generation
        && a.rules_digest == b.rules_digest
        && a.prometheus_rule_version == b.prometheus_rule_version
        && condition::same_set(&a.conditions, &b.conditions)
}

async fn report_failure(slo: &ServiceLevelObjective, error: &Error, ctx: &Context) -> Result<()> {
    report_not_ready(slo, ctx, error.reason(), "Reconcile", error.to_string()).await
}

/// `Ready=False` with `reason`, leaving the rules in place and `rulesGeneration` as it was; a
/// Warning Event goes out when the reason or message is new for this generation.
async fn report_not_ready(
    slo: &ServiceLevelObjective,
    ctx: &Context,
    reason: &str,
    action: &str,
    message: String,
) -> Result<()> {
    let previous = slo.status.clone().unwrap_or_default();
    let changed = ready_condition(&previous)
        .is_none_or(|c| c.reason != reason || c.message != message || c.observed_generation != slo.metadata.generation);
    let status = next_status(
        &previous,
        slo.metadata.generation,
        FALSE,
        reason,
        message.clone(),
        previous.prometheus_rule.clone(),
        previous.rules_generation,
    );
    write_status(slo, &previous, status, ctx).await?;
    if changed {
        super::events::publish(
            &ctx.recorder,
            &slo.object_ref(&()),
            EventType::Warning,
            reason,
            action,
            message,
        )
        .await;
    }
    Ok(())
}

fn api_error(e: kube::Error, what: &str) -> Error {
    Error::api(e, || what.into())
}

/// A 404 on a PrometheusRule request means its resource type is not served.
fn rule_error(e: kube::Error, what: &str) -> Error {
    match &e {
        kube::Error::Api(s) if s.code == 404 => Error::PrometheusRuleCrdMissing,
        _ => api_error(e, what),
    }
}

/// The reconciler's API calls, checked against a scripted API server (no cluster).
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use http::{Method, Request, Response, StatusCode};
    use kube::client::Body;
    use kube::core::DeserializeGuard;
    use kube::runtime::events::{Recorder, Reporter};
    use serde_json::Value;

    use super::*;

    fn guarded_at(name: &str, generation: i64, resource_version: &str) -> Arc<Guarded> {
        let slo: ServiceLevelObjective = serde_json::from_value(serde_json::json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": name, "namespace": "shop", "uid": name, "generation": generation,
                         "resourceVersion": resource_version},
            "spec": {"objective": 99.9, "window": "30d", "indicator": {"raw": {"errorRatio": "x"}}},
        }))
        .unwrap();
        Arc::new(DeserializeGuard(Ok(slo)))
    }

    /// Touches that change nothing the reconcile reads are not passed on; after a relist or a
    /// deletion the next touch is.
    #[test]
    fn only_changes_the_reconcile_reads_trigger_it() {
        let mut seen = crate::cache::slos::Fingerprints::new(trigger_fingerprint);
        assert!(seen.changed(&guarded_at("a", 1, "10")));
        assert!(!seen.changed(&guarded_at("a", 1, "11")), "a budget write");
        assert!(seen.changed(&guarded_at("b", 1, "12")));
        assert!(seen.changed(&guarded_at("a", 2, "13")), "a new spec");
        seen.relisted(&[guarded_at("a", 3, "20")]);
        assert!(!seen.changed(&guarded_at("a", 3, "21")));
        assert!(
            seen.changed(&guarded_at("b", 1, "22")),
            "not listed: gone, then created again"
        );
        seen.forget(&guarded_at("b", 1, "23"));
        assert!(seen.changed(&guarded_at("b", 1, "24")));
    }
    use crate::backoff::Backoff;
    use crate::metrics::Metrics;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn context() -> (Arc<Context>, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: None,
        };
        let ctx = Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics: Metrics::default(),
            settings: rules::Settings {
                rule_labels: BTreeMap::from([("release".into(), "kps".into())]),
                ..rules::Settings::default()
            },
            allow_cross_namespace_sli: false,
            backoff: Backoff::default(),
            rule_versions: Default::default(),
        };
        (Arc::new(ctx), handle)
    }

    fn slo(objective: &str, status: Option<Value>) -> ServiceLevelObjective {
        let mut v = serde_json::json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "uid-1", "generation": 3, "resourceVersion": "7"},
            "spec": {"objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": objective, "total": "http_requests_total"}}},
        });
        if let Some(s) = status {
            v["status"] = s;
        }
        serde_json::from_value(v).unwrap()
    }

    async fn next(handle: &mut Handle) -> (Request<Body>, Value, tower_test::mock::SendResponse<Response<Body>>) {
        let (req, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
            .await
            .expect("timed out waiting for a request")
            .expect("client dropped");
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (Request::from_parts(parts, Body::empty()), json, send)
    }

    fn respond(send: tower_test::mock::SendResponse<Response<Body>>, code: StatusCode, body: Value) {
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }

    fn not_found() -> Value {
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
    }

    /// The reconcile's result; a reconcile still waiting for a request nobody answers fails the
    /// test instead of hanging it.
    async fn finish(task: tokio::task::JoinHandle<Result<Action>>) -> Result<Action> {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("reconcile still waiting for the API server")
            .unwrap()
    }

    fn guard(slo: ServiceLevelObjective) -> Arc<Guarded> {
        Arc::new(DeserializeGuard(Ok(slo)))
    }

    #[tokio::test]
    async fn new_slo_applies_an_owned_rule_and_reports_ready() {
        let (ctx, mut api) = context();
        let task = tokio::spawn(reconcile(
            guard(slo("http_requests_total{code=~\"5..\"}", None)),
            ctx.clone(),
        ));

        let (req, _, send) = next(&mut api).await;
        assert_eq!(
            (req.method(), req.uri().path()),
            (
                &Method::GET,
                "/apis/monitoring.coreos.com/v1/namespaces/shop/prometheusrules/checkout"
            )
        );
        respond(send, StatusCode::NOT_FOUND, not_found());

        let (req, body, send) = next(&mut api).await;
        assert_eq!(req.method(), Method::PATCH);
        let query = req.uri().query().unwrap_or_default();
        assert!(
            query.contains("fieldManager=slo-warden") && query.contains("force=true"),
            "{query}"
        );
        assert_eq!(req.headers()["content-type"], "application/apply-patch+yaml");
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(body["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(body["metadata"]["labels"]["app.kubernetes.io/managed-by"], "slo-warden");
        assert_eq!(body["metadata"]["labels"]["release"], "kps");
        assert_eq!(body["spec"]["groups"].as_array().unwrap().len(), 3);
        respond(send, StatusCode::OK, body.clone());

        let (req, body, send) = next(&mut api).await;
        assert_eq!(
            (req.method(), req.uri().path()),
            (
                &Method::PATCH,
                "/apis/slo.warden.dev/v1alpha1/namespaces/shop/servicelevelobjectives/checkout/status"
            )
        );
        assert_eq!(req.headers()["content-type"], "application/merge-patch+json");
        assert!(
            req.uri()
                .query()
                .unwrap_or_default()
                .contains("fieldManager=slo-warden"),
            "{}",
            req.uri()
        );
        let status = &body["status"];
        assert_eq!(status["conditions"][0]["type"], "Ready");
        assert_eq!(status["conditions"][0]["status"], "True");
        assert_eq!(status["conditions"][0]["reason"], "RulesApplied");
        assert_eq!(status["conditions"][0]["observedGeneration"], 3);
        assert_eq!(status["rulesGeneration"], 3);
        assert_eq!(status["prometheusRule"], "checkout");
        assert!(
            status.get("budget").is_none(),
            "the budget belongs to the policy engine"
        );
        respond(send, StatusCode::OK, serde_json::to_value(slo("x", None)).unwrap());

        finish(task).await.unwrap();
    }

    #[tokio::test]
    async fn fields_set_by_others_inside_the_rules_are_removed() {
        let (ctx, mut api) = context();
        let task = tokio::spawn(reconcile(guard(slo("errors_total", None)), ctx.clone()));
        let (_, _, send) = next(&mut api).await;
        respond(send, StatusCode::NOT_FOUND, not_found());
        // The apply leaves a hand-set `limit` and `interval` owned by another manager in place.
        let (_, mut applied, send) = next(&mut api).await;
        let desired_groups = applied["spec"]["groups"].clone();
        let fixed = applied.clone();
        applied["spec"]["groups"][0]["limit"] = 10.into();
        applied["spec"]["groups"][0]["interval"] = "10m".into();
        respond(send, StatusCode::OK, applied);

        let (req, body, send) = next(&mut api).await;
        assert_eq!(req.method(), Method::PATCH);
        assert_eq!(req.headers()["content-type"], "application/merge-patch+json");
        assert!(req.uri().path().ends_with("/prometheusrules/checkout"), "{}", req.uri());
        assert_eq!(
            body["spec"]["groups"], desired_groups,
            "the groups are replaced by exactly ours"
        );
        respond(send, StatusCode::OK, fixed);

        let (req, body, send) = next(&mut api).await;
        assert!(req.uri().path().ends_with("/status"));
        assert_eq!(body["status"]["conditions"][0]["status"], "True");
        respond(send, StatusCode::OK, serde_json::to_value(slo("x", None)).unwrap());
        finish(task).await.unwrap();
    }

    #[tokio::test]
    async fn unchanged_rule_and_status_cause_no_writes() {
        let (ctx, mut api, existing, status) = applied_before();
        let obj = slo(
            "http_requests_total{code=~\"5..\"}",
            Some(serde_json::to_value(&status).unwrap()),
        );
        // The rule watch has not shown the rule (not listed yet): it is read back.
        let task = tokio::spawn(reconcile(guard(obj), ctx.clone()));

        let (req, _, send) = next(&mut api).await;
        assert_eq!(req.method(), Method::GET);
        respond(send, StatusCode::OK, serde_json::to_value(&existing).unwrap());

        if let Ok(Some((req, _))) = tokio::time::timeout(Duration::from_millis(500), api.next_request()).await {
            panic!("no further request expected, got {} {}", req.method(), req.uri());
        }
        finish(task).await.unwrap();
        assert!(
            !ctx.metrics.encode().contains("api_writes_total{"),
            "{}",
            ctx.metrics.encode()
        );
    }

    /// A rule applied with these rules (`status.rulesDigest`) at the version the rule watch
    /// still shows is not read back: a restart reads no rule.
    #[tokio::test]
    async fn a_rule_the_watch_shows_as_applied_is_not_read_back() {
        let (_, mut api, _, _, task) = reconcile_with_rule_watched_at("41");
        if let Ok(Some((req, _))) = tokio::time::timeout(Duration::from_millis(500), api.next_request()).await {
            panic!("no request expected, got {} {}", req.method(), req.uri());
        }
        finish(task).await.unwrap();
    }

    /// Anyone else's write moves the rule's version: the rule is read back and its foreign edit
    /// undone, and the status records the new version.
    #[tokio::test]
    async fn a_rule_changed_since_is_read_back_and_restored() {
        let (_, mut api, existing, status, task) = reconcile_with_rule_watched_at("45");
        let mut edited = existing.clone();
        edited.metadata.resource_version = Some("45".into());
        edited.spec.groups.pop();
        let (req, _, send) = next(&mut api).await;
        assert_eq!(req.method(), Method::GET);
        respond(send, StatusCode::OK, serde_json::to_value(&edited).unwrap());
        let (req, body, send) = next(&mut api).await;
        assert_eq!(req.method(), Method::PATCH);
        assert!(req.uri().path().ends_with("/prometheusrules/checkout"), "{}", req.uri());
        let mut restored = body.clone();
        restored["metadata"]["resourceVersion"] = "46".into();
        respond(send, StatusCode::OK, restored);
        let (req, body, send) = next(&mut api).await;
        assert!(req.uri().path().ends_with("/status"), "{}", req.uri());
        assert_eq!(body["status"]["prometheusRuleVersion"], "46");
        assert_eq!(
            body["status"]["rulesDigest"],
            status.rules_digest.clone().unwrap().as_str()
        );
        respond(
            send,
            StatusCode::OK,
            serde_json::to_value(slo("x", Some(body["status"].clone()))).unwrap(),
        );
        finish(task).await.unwrap();
    }

    /// A budget write changes nothing the reconcile reads; a new spec, or a Ready condition
    /// someone else changed, does.
    #[tokio::test]
    async fn only_what_the_reconcile_reads_triggers_it() {
        let (_, _, _, status) = applied_before();
        let with = |f: &dyn Fn(&mut ServiceLevelObjective)| {
            let mut obj = slo(
                "http_requests_total{code=~\"5..\"}",
                Some(serde_json::to_value(&status).unwrap()),
            );
            f(&mut obj);
            trigger_fingerprint(&DeserializeGuard(Ok(obj)))
        };
        let base = with(&|_| {});
        let budget = with(&|o| {
            let s = o.status.as_mut().unwrap();
            s.budget = Some(crate::api::BudgetStatus {
                remaining: Some(0.5),
                ..Default::default()
            });
            s.conditions.push(Condition {
                type_: "SignalHealthy".into(),
                status: "True".into(),
                reason: "Sampled".into(),
                message: "m".into(),
                observed_generation: Some(3),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
            });
            o.metadata.resource_version = Some("8".into());
            o.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
        });
        assert_eq!(base, budget);
        assert_ne!(base, with(&|o| o.metadata.generation = Some(4)));
        assert_ne!(
            base,
            with(&|o| o.status.as_mut().unwrap().conditions[0].status = "False".into())
        );
        assert_ne!(
            base,
            with(&|o| o.status.as_mut().unwrap().prometheus_rule_version = Some("9".into()))
        );
        assert_ne!(base, with(&|o| o.status = None));
    }

    /// The budget writer last wrote the list with its condition last: a reconcile (a restart)
    /// finds nothing to write for the order alone.
    #[tokio::test]
    async fn the_order_of_conditions_is_no_change() {
        let (_, _, _, status) = applied_before();
        let signal = Condition {
            type_: "SignalHealthy".into(),
            status: "True".into(),
            reason: "SignalHealthy".into(),
            message: "m".into(),
            observed_generation: Some(3),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        };
        let mut budget_last = status.clone();
        budget_last.conditions.push(signal);
        let ready = budget_last.conditions[0].clone();
        let next = next_status(
            &budget_last,
            Some(3),
            TRUE,
            "RulesApplied",
            ready.message.clone(),
            budget_last.prometheus_rule.clone(),
            Some(3),
        );
        assert_eq!(
            next.conditions.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            ["Ready", "SignalHealthy"]
        );
        let mut reversed = next.clone();
        reversed.conditions.reverse();
        assert!(same_status(&reversed, &next));
        reversed.conditions[0].message = "other".into();
        assert!(!same_status(&reversed, &next));
    }

    /// The reconcile of the SLO [`applied_before`] left, while the rule watch shows its rule at
    /// `version`.
    #[allow(clippy::type_complexity)]
    fn reconcile_with_rule_watched_at(
        version: &str,
    ) -> (
        Arc<Context>,
        Handle,
        PrometheusRule,
        ServiceLevelObjectiveStatus,
        tokio::task::JoinHandle<Result<Action>>,
    ) {
        let (ctx, api, existing, status) = applied_before();
        let (mut follower, _) = ctx.rule_versions.follower();
        let watched = crate::controller::rule_versions::watched("shop", "checkout", version);
        follower.follow(&kube::runtime::watcher::Event::Apply(watched));
        let obj = slo(
            "http_requests_total{code=~\"5..\"}",
            Some(serde_json::to_value(&status).unwrap()),
        );
        let task = tokio::spawn(reconcile(guard(obj), ctx.clone()));
        (ctx, api, existing, status, task)
    }

    /// The SLO's rule as applied at version 41 (with a label someone else added, theirs to
    /// keep), and the status that apply left.
    fn applied_before() -> (Arc<Context>, Handle, PrometheusRule, ServiceLevelObjectiveStatus) {
        let (ctx, api) = context();
        let obj = slo("http_requests_total{code=~\"5..\"}", None);
        let valid = validate::validate(&obj).unwrap();
        let mut desired = rules::prometheus_rule(&valid, &ctx.settings);
        desired.metadata.owner_references = Some(vec![obj.controller_owner_ref(&()).unwrap()]);
        let digest = super::super::rule_versions::digest(&desired);
        let mut existing = desired;
        existing.metadata.resource_version = Some("41".into());
        // A label someone else added is theirs to keep and does not make the rule stale.
        existing
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("team".into(), "payments".into());
        let message = applied_message("checkout", &existing.spec.groups);
        assert_eq!(
            message,
            "PrometheusRule checkout holds 29 recording and 8 alerting rules"
        );
        let mut status = next_status(
            &Default::default(),
            Some(3),
            TRUE,
            "RulesApplied",
            message,
            Some("checkout".into()),
            Some(3),
        );
        status.rules_digest = Some(digest);
        status.prometheus_rule_version = Some("41".into());
        (ctx, api, existing, status)
    }

    #[tokio::test]
    async fn invalid_spec_keeps_the_rules_and_says_why() {
        let (ctx, mut api) = context();
        let previous = serde_json::json!({"observedGeneration": 2, "rulesGeneration": 2, "prometheusRule": "checkout",
            "conditions": [{"type": "Ready", "status": "True", "reason": "RulesApplied", "message": "ok",
                            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2}]});
        let task = tokio::spawn(reconcile(
            guard(slo("sum(rate(x[$window])", Some(previous))),
            ctx.clone(),
        ));

        // No PrometheusRule request at all: the status patch comes first.
        let (req, body, send) = next(&mut api).await;
        assert!(
            req.uri().path().ends_with("/servicelevelobjectives/checkout/status"),
            "{}",
            req.uri()
        );
        let cond = &body["status"]["conditions"][0];
        assert_eq!(cond["status"], "False");
        assert_eq!(cond["reason"], "InvalidSpec");
        let message = cond["message"].as_str().unwrap();
        assert!(
            message.starts_with("spec.indicator.ratio.errors: is not valid PromQL"),
            "{message}"
        );
        assert!(
            message.ends_with("The rules generated from generation 2 stay in place until this is fixed."),
            "{message}"
        );
        assert_eq!(body["status"]["rulesGeneration"], 2);
        respond(send, StatusCode::OK, serde_json::to_value(slo("x", None)).unwrap());

        let (req, body, send) = next(&mut api).await;
        assert_eq!(
            (req.method(), req.uri().path()),
            (&Method::POST, "/apis/events.k8s.io/v1/namespaces/shop/events")
        );
        assert_eq!(body["type"], "Warning");
        assert_eq!(body["reason"], "InvalidSpec");
        assert_eq!(body["regarding"]["name"], "checkout");
        respond(send, StatusCode::CREATED, body.clone());

        assert_eq!(finish(task).await.unwrap(), Action::await_change());
    }

    #[tokio::test]
    async fn missing_prometheusrule_crd_is_named_in_status() {
        let (ctx, mut api) = context();
        let task = tokio::spawn(reconcile(guard(slo("errors_total", None)), ctx.clone()));
        let (_, _, send) = next(&mut api).await;
        respond(send, StatusCode::NOT_FOUND, not_found());
        let (req, _, send) = next(&mut api).await;
        assert_eq!(req.method(), Method::PATCH);
        respond(send, StatusCode::NOT_FOUND, not_found());

        let (req, body, send) = next(&mut api).await;
        assert!(req.uri().path().ends_with("/status"));
        assert_eq!(body["status"]["conditions"][0]["reason"], "PrometheusRuleCRDMissing");
        respond(send, StatusCode::OK, serde_json::to_value(slo("x", None)).unwrap());
        let (_, body, send) = next(&mut api).await;
        assert_eq!(body["reason"], "PrometheusRuleCRDMissing");
        respond(send, StatusCode::CREATED, body.clone());

        let err = finish(task).await.unwrap_err();
        assert_eq!(err.reason(), "PrometheusRuleCRDMissing");
        assert!(
            ctx.metrics
                .encode()
                .contains(r#"reconcile_failures_total{controller="slo",reason="PrometheusRuleCRDMissing"} 1"#)
        );
    }

    #[tokio::test]
    async fn refuses_to_take_over_a_foreign_rule() {
        let (ctx, mut api) = context();
        let task = tokio::spawn(reconcile(guard(slo("errors_total", None)), ctx.clone()));
        let (_, _, send) = next(&mut api).await;
        let foreign = serde_json::json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "checkout", "namespace": "shop"}, "spec": {"groups": []}});
        respond(send, StatusCode::OK, foreign);
        let (req, body, send) = next(&mut api).await;
        assert!(
            req.uri().path().ends_with("/status"),
            "must not patch the foreign rule: {}",
            req.uri()
        );
        let message = body["status"]["conditions"][0]["message"].as_str().unwrap().to_string();
        assert!(message.contains("not managed by slo-warden"), "{message}");
        respond(send, StatusCode::OK, serde_json::to_value(slo("x", None)).unwrap());
        let (_, _, send) = next(&mut api).await;
        respond(send, StatusCode::CREATED, serde_json::json!({}));
        assert!(finish(task).await.is_err());
    }
}
