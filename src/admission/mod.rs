//! The admission webhook, served over HTTPS by the operator itself on every replica (leading
//! or not): `POST /validate/releases` refuses releases in frozen namespaces ([`release`]); its
//! webhook selects only namespaces labelled `slo.warden.dev/frozen=true`, so the rest of the
//! cluster never waits on it. `POST /validate/objects` checks our own kinds at apply time;
//! `POST /mutate/overrides` records who asks for a break-glass; `POST /mutate/releases` who
//! changed a workload's pod template (its webhook is called only for such changes, and never
//! refuses). `POST /validate/holds` (only
//! objects labelled `slo.warden.dev/held`) and `POST /validate/policies` keep a hold from being
//! lifted outside the override path ([`hold`]).

pub mod certs;
pub mod checks;
pub mod hold;
pub mod intake;
pub mod release;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation as KubeOperation};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::api::{ErrorBudgetOverrideSpec, ErrorBudgetPolicy, OverrideState, ServiceLevelObjective};
use crate::cache::Stores;
use crate::duration::Duration;
use crate::metrics::{AdmissionLabels, Metrics};
use crate::release::attribution as release_attribution;
use release::{Freeze, Lifted, Operation, Verdict};

#[derive(clap::Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Serve the admission webhook (HTTPS) on this address, e.g. 0.0.0.0:8443; off when unset.
    #[arg(long, env = "WEBHOOK_ADDR")]
    pub webhook_addr: Option<SocketAddr>,
    /// PEM serving certificate (chain) of the webhook; re-read when it changes.
    #[arg(long, env = "WEBHOOK_CERT_FILE", default_value = "/tls/tls.crt")]
    pub webhook_cert_file: PathBuf,
    /// PEM private key of the webhook's certificate.
    #[arg(long, env = "WEBHOOK_KEY_FILE", default_value = "/tls/tls.key")]
    pub webhook_key_file: PathBuf,
    /// Manage the certificate in this Secret (of POD_NAMESPACE, else the kubeconfig's
    /// namespace) instead of reading files: a CA and a serving certificate, renewed before
    /// expiry, its CA patched into --webhook-configuration.
    #[arg(long, env = "WEBHOOK_CERT_SECRET")]
    pub webhook_cert_secret: Option<String>,
    /// Names the managed certificate is for: the webhook Service's DNS names, or an IP
    /// (repeatable or comma-separated).
    #[arg(long = "webhook-dns-name", env = "WEBHOOK_DNS_NAMES", value_delimiter = ',')]
    pub webhook_dns_names: Vec<String>,
    /// ValidatingWebhookConfigurations whose caBundle the managed certificate's CA goes into
    /// (repeatable or comma-separated).
    #[arg(
        long = "webhook-configuration",
        env = "WEBHOOK_CONFIGURATIONS",
        value_delimiter = ','
    )]
    pub webhook_configurations: Vec<String>,
}

/// Time to read a release's freeze, and whether a refused release restores an earlier
/// revision (both within it: the chart gives the webhook 5 s).
const FREEZE_READ: std::time::Duration = std::time::Duration::from_secs(3);

pub struct Webhook {
    pub client: Client,
    pub stores: Stores,
    pub metrics: Metrics,
    /// The user the API server knows this operator as, asked once ([`Webhook::identity`]).
    pub identity: tokio::sync::OnceCell<String>,
    /// `--allow-cross-namespace-sli`: an SLI may read other namespaces.
    pub allow_cross_namespace_sli: bool,
}

impl Webhook {
    /// The freeze of the request's namespace, and the active overrides of its policies; or
    /// what could not be read.
    async fn freeze(&self, namespace: &str) -> Result<(Option<Freeze>, Vec<Lifted>), String> {
        let ns = Api::<Namespace>::all(self.client.clone())
            .get(namespace)
            .await
            .map_err(|e| format!("Namespace {namespace} ({e})"))?;
        let Some(freeze) = Freeze::of(namespace, ns.labels(), ns.annotations()) else {
            return Ok((None, vec![]));
        };
        let now = jiff::Timestamp::now();
        let mut lifted = Vec::new();
        for holder in &freeze.holders {
            let Some((policy_ns, policy)) = holder.split_once('/') else {
                continue;
            };
            // Only a policy with overrides is read: its maxOverride caps them.
            if !self
                .stores
                .overrides_in(policy_ns)
                .iter()
                .any(|o| o.spec.policy == policy)
            {
                continue;
            }
            let api: Api<ErrorBudgetPolicy> = Api::namespaced(self.client.clone(), policy_ns);
            let read = api.get_opt(policy).await;
            if let Some(p) = read.map_err(|e| format!("ErrorBudgetPolicy {holder} ({e})"))? {
                lifted.extend(self.active_overrides(holder, &p, now));
            }
        }
        Ok((Some(freeze), lifted))
    }

    /// The earlier revision an update of a Deployment or Rollout goes back to, when it ran
    /// before the suspect window of every policy holding the freeze ([`release::restored`]);
    /// `None` when it does not, or when anything it needs cannot be read (the freeze holds).
    async fn restored(&self, req: &AdmissionRequest<DynamicObject>, freeze: &Freeze) -> Option<release::Restored> {
        let kind = req.kind.kind.as_str();
        if !matches!(kind, "Deployment" | "Rollout") {
            return None;
        }
        let (object, old) = (req.object.as_ref()?, req.old_object.as_ref()?);
        let namespace = req.namespace.as_deref()?;
        let began: jiff::Timestamp = freeze.since.as_deref()?.parse().ok()?;
        // The longest suspect window of the policies holding the freeze.
        let mut window = jiff::SignedDuration::ZERO;
        for holder in &freeze.holders {
            let (policy_ns, policy) = holder.split_once('/')?;
            let api: Api<ErrorBudgetPolicy> = Api::namespaced(self.client.clone(), policy_ns);
            let p = api.get_opt(policy).await.ok()??;
            let w = crate::duration::Duration::parse(&p.spec.suspect_window).ok()?;
            window = window.max(jiff::SignedDuration::from_millis(i64::try_from(w.as_millis()).ok()?));
        }
        let selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
            serde_json::from_value(old.data["spec"]["selector"].clone()).ok()?;
        let selector = kube::core::Selector::try_from(selector).ok()?;
        let rs_api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            namespace,
            &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&()),
        );
        let replica_sets = rs_api
            .list(&kube::api::ListParams::default().labels(&selector.to_string()))
            .await
            .ok()?
            .items;
        let slos = self.stores.slos_in(namespace, |_| true);
        let ledgers: Vec<&[crate::api::ReleaseStatus]> = slos
            .iter()
            .filter_map(|s| s.status.as_ref().map(|st| st.releases.as_slice()))
            .collect();
        let workload_kind = if kind == "Rollout" {
            crate::enforce::Kind::Rollout
        } else {
            crate::enforce::Kind::Deployment
        };
        let started = |revision: u64, rs: &DynamicObject| {
            crate::release::started(ledgers.iter().copied(), workload_kind, &req.name, revision)
                .or_else(|| crate::release::Revision::of(rs).and_then(|r| r.started()))
        };
        release::restored(
            kind,
            old.metadata.uid.as_deref(),
            &object.data["spec"]["template"],
            &old.data["spec"]["template"],
            &replica_sets,
            started,
            began.checked_sub(window).ok()?,
        )
    }

    async fn review_release(&self, req: &AdmissionRequest<DynamicObject>) -> Verdict {
        let operation = match req.operation {
            KubeOperation::Create => Operation::Create,
            KubeOperation::Update => Operation::Update,
            _ => Operation::Other,
        };
        // The objects' own trees, not copies: a review may carry megabytes of them.
        let (object, old) = (
            req.object.as_ref().map(|o| &o.data),
            req.old_object.as_ref().map(|o| &o.data),
        );
        if !release::is_release(operation, object, old) {
            return Verdict::Allow;
        }
        let namespace = req.namespace.as_deref().unwrap_or_default();
        // Answered before the API server gives up on the webhook (the chart: 5 s), so a
        // freeze that does not come is a refusal, not a timeout that failurePolicy Ignore allows.
        let started = tokio::time::Instant::now();
        let read = tokio::time::timeout(FREEZE_READ, self.freeze(namespace)).await;
        let unread = match read.unwrap_or_else(|_| {
            Err(format!(
                "Namespace {namespace} within {}s (no answer)",
                FREEZE_READ.as_secs()
            ))
        }) {
            Ok((freeze, lifted)) => {
                let verdict = release::review(
                    &req.kind.kind,
                    &req.name,
                    operation,
                    object,
                    old,
                    freeze.as_ref(),
                    &lifted,
                );
                // A rollback to a revision that ran before the burn goes through the freeze.
                if let (Verdict::Deny(_), Some(freeze), Operation::Update) = (&verdict, &freeze, operation)
                    && !freeze.holders.is_empty()
                    && let Ok(Some(r)) = tokio::time::timeout(
                        FREEZE_READ.saturating_sub(started.elapsed()),
                        self.restored(req, freeze),
                    )
                    .await
                {
                    return Verdict::AllowWithWarning(format!(
                        "namespace {namespace} is frozen; changing the pod template of {} {} is let through: it goes back to revision {} ({}), which ran before the burn. Any other release stays refused",
                        req.kind.kind,
                        req.name,
                        r.revision,
                        r.images.join(", ")
                    ));
                }
                return verdict;
            }
            Err(unread) => unread,
        };
        // The API server calls this webhook only for namespaces labelled frozen: a freeze that
        // cannot be checked is kept, whatever the failurePolicy.
        tracing::warn!(namespace, unread = %unread, "cannot read the freeze; refusing the release");
        release::unchecked(&req.kind.kind, &req.name, operation, namespace, &unread)
    }
}

/// Reads a review, answers it with `verdict` and counts the answer.
async fn answer<F, Fut>(
    webhook: &Webhook,
    name: &'static str,
    (budget, headers, body): (&intake::Budget, HeaderMap, Body),
    verdict: F,
) -> Response
where
    F: FnOnce(AdmissionRequest<DynamicObject>) -> Fut,
    Fut: std::future::Future<Output = (AdmissionResponse, Verdict)>,
{
    let count = |result| {
        webhook
            .metrics
            .admission
            .get_or_create(&AdmissionLabels { webhook: name, result })
            .inc();
    };
    // Held until answered: the review's memory is in use until then.
    let read = match intake::read(budget, &headers, body).await {
        Ok(read) => read,
        Err(refused) => {
            count(refused.why.label());
            return refused.response;
        }
    };
    let req: AdmissionRequest<DynamicObject> = match read.review.try_into() {
        Ok(r) => r,
        Err(e) => return Json(AdmissionResponse::invalid(e.to_string()).into_review()).into_response(),
    };
    let (mut response, verdict) = verdict(req).await;
    let result = match verdict {
        Verdict::Allow => "allowed",
        Verdict::AllowWithWarning(w) => {
            response.warnings = Some(vec![w]);
            "allowed_with_warning"
        }
        Verdict::Deny(message) => {
            response = response.deny(message);
            "denied"
        }
    };
    count(result);
    Json(response.into_review()).into_response()
}

/// `POST /validate/releases`.
async fn releases(
    State(webhook): State<Arc<Webhook>>,
    Extension(budget): Extension<intake::Budget>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&webhook, "releases", (&budget, headers, body), async |req| {
        let verdict = webhook.review_release(&req).await;
        if let Verdict::Deny(_) = &verdict {
            tracing::info!(namespace = ?req.namespace, kind = %req.kind.kind, name = %req.name, user = ?req.user_info.username, "release refused");
        }
        (AdmissionResponse::from(&req), verdict)
    })
    .await
}

/// How often the managed certificate and the caBundles are checked.
const CERT_REFRESH: std::time::Duration = std::time::Duration::from_secs(600);

/// Reads the certificate files again every minute, so a renewed certificate (cert-manager, a
/// rotated Secret volume) is picked up without a restart.
async fn reload_files(config: RustlsConfig, args: WebhookArgs, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = config
            .reload_from_pem_file(&args.webhook_cert_file, &args.webhook_key_file)
            .await
        {
            tracing::warn!(error = %e, "cannot reload the webhook certificate");
        }
    }
}

/// The managed certificate: issued or renewed in the Secret, served from memory, its CA in the
/// webhook configurations; checked again every [`CERT_REFRESH`], and at once when a named
/// configuration is created or changed.
async fn manage(
    config: RustlsConfig,
    client: Client,
    args: WebhookArgs,
    secret: String,
    namespace: String,
    shutdown: CancellationToken,
) {
    let mut served = None;
    let mut failures = 0;
    let nudge = Arc::new(tokio::sync::Notify::new());
    certs::watch_configurations(&client, &args.webhook_configurations, nudge.clone(), shutdown.clone());
    loop {
        let wait = match certs::ensure(&client, &namespace, &secret, &args.webhook_dns_names).await {
            Ok(bundle) => {
                if served.as_ref() != Some(&bundle.cert) {
                    match config
                        .reload_from_pem(bundle.cert.clone().into_bytes(), bundle.key.clone().into_bytes())
                        .await
                    {
                        Ok(()) => served = Some(bundle.cert.clone()),
                        Err(e) => tracing::warn!(error = %e, "cannot load the webhook certificate"),
                    }
                }
                match certs::patch_ca_bundle(&client, &args.webhook_configurations, &bundle.ca_cert).await {
                    Ok(()) => {
                        failures = 0;
                        CERT_REFRESH
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(error = %e, "cannot set the webhook caBundle");
                        crate::backoff::delay(failures)
                    }
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "cannot issue the webhook certificate");
                crate::backoff::delay(failures)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // A configuration was created or changed: its caBundle at once.
            _ = nudge.notified() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// `POST /validate/objects`: ServiceLevelObjectives and ErrorBudgetPolicies get the checks of
/// `slo-warden validate` at `kubectl apply` (a PromQL error with its field and position),
/// beyond what the CRD schema can say.
async fn objects(
    State(webhook): State<Arc<Webhook>>,
    Extension(budget): Extension<intake::Budget>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&webhook, "objects", (&budget, headers, body), async |req| {
        let problems = match &req.object {
            Some(object) => match checks::problems(&req.kind.kind, object).await {
                problems if problems.is_empty() => {
                    webhook.cluster_problems(&req.kind.kind, req.namespace.as_deref(), object)
                }
                problems => problems,
            },
            None => vec![],
        };
        let verdict = if problems.is_empty() {
            Verdict::Allow
        } else {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            Verdict::Deny(format!("{} {}: {}", req.kind.kind, req.name, list.join("; ")))
        };
        (AdmissionResponse::from(&req), verdict)
    })
    .await
}

/// Body bytes of large reviews the release attribution reads at once: its own budget, so a
/// flood of large workloads in any namespace never spends what the freeze reads with.
const ATTRIBUTION_BUDGET_BYTES: usize = 1024 * 1024;

/// `POST /mutate/releases`: a Deployment or Rollout whose pod template changes is stamped with
/// the user the API server authenticated (`slo.warden.dev/released-by`, see
/// [`crate::release::attribution`]), so the release ledger can say who released. It never
/// refuses: a review it cannot read or stamp is answered with an error, and the webhook's
/// `failurePolicy: Ignore` lets the release through unstamped.
async fn attribute_releases(
    State(webhook): State<Arc<Webhook>>,
    Extension(attribution): Extension<Attribution>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let count = |result| {
        webhook
            .metrics
            .admission
            .get_or_create(&AdmissionLabels {
                webhook: "attribution",
                result,
            })
            .inc();
    };
    let read = match intake::read(&attribution.0, &headers, body).await {
        Ok(read) => read,
        Err(refused) => {
            count(refused.why.label());
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "release not attributed: review not read",
            )
                .into_response();
        }
    };
    let req: AdmissionRequest<DynamicObject> = match read.review.try_into() {
        Ok(r) => r,
        Err(_) => {
            count(intake::Unread::Malformed.label());
            return (
                StatusCode::BAD_REQUEST,
                "release not attributed: not an admission request",
            )
                .into_response();
        }
    };
    let response = AdmissionResponse::from(&req);
    let user = req.user_info.username.as_deref().unwrap_or_default();
    let stamp = match (&req.operation, &req.object) {
        (KubeOperation::Create | KubeOperation::Update, Some(object)) => {
            release_attribution::stamp(&object.data, req.old_object.as_ref().map(|o| &o.data), user)
                .map(|value| (object, value))
        }
        _ => None,
    };
    let Some((object, value)) = stamp else {
        count("allowed");
        return Json(response.into_review()).into_response();
    };
    let patch = match object.metadata.annotations {
        Some(_) => serde_json::json!([{"op": "add",
            "path": format!("/metadata/annotations/{}", release_attribution::RELEASED_BY.replace('~', "~0").replace('/', "~1")),
            "value": value}]),
        None => serde_json::json!([{"op": "add", "path": "/metadata/annotations",
            "value": {release_attribution::RELEASED_BY: value}}]),
    };
    let stamped = serde_json::from_value::<json_patch::Patch>(patch)
        .map_err(|e| e.to_string())
        .and_then(|p| AdmissionResponse::from(&req).with_patch(p).map_err(|e| e.to_string()));
    match stamped {
        Ok(stamped) => {
            count("stamped");
            Json(stamped.into_review()).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot stamp a release");
            count("allowed");
            Json(response.into_review()).into_response()
        }
    }
}

/// The intake budget of [`attribute_releases`].
#[derive(Clone)]
struct Attribution(intake::Budget);

/// `POST /mutate/overrides`: a new ErrorBudgetOverride gets `spec.requestedBy` from the user
/// who creates it (so the policy's status, Events and the release webhook can name them), and
/// what the controller would reject is refused at apply time.
async fn overrides(
    State(webhook): State<Arc<Webhook>>,
    Extension(budget): Extension<intake::Budget>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&webhook, "overrides", (&budget, headers, body), async |req| {
        let response = AdmissionResponse::from(&req);
        let (KubeOperation::Create, Some(object)) = (&req.operation, &req.object) else {
            return (response, Verdict::Allow);
        };
        let spec: ErrorBudgetOverrideSpec = match serde_json::from_value(object.data["spec"].clone()) {
            Ok(s) => s,
            // Every problem at its field path, as slo-warden validate says them.
            Err(_) => {
                let problems: Vec<String> = problems_of("ErrorBudgetOverride", object)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                let why = match problems.is_empty() {
                    true => "spec: cannot be read".to_string(),
                    false => problems.join("; "),
                };
                return (response, Verdict::Deny(format!("ErrorBudgetOverride {}: {why}", req.name)));
            }
        };
        let namespace = req.namespace.clone().unwrap_or_default();
        if let Err(message) = webhook.check_override(&namespace, &spec).await {
            return (response, Verdict::Deny(message));
        }
        let user = req.user_info.username.clone().unwrap_or_default();
        let stamp = serde_json::from_value::<json_patch::Patch>(serde_json::json!([
            {"op": "add", "path": "/spec/requestedBy", "value": user}
        ]));
        match stamp.map_err(|e| e.to_string()).and_then(|p| response.with_patch(p).map_err(|e| e.to_string())) {
            Ok(stamped) => {
                tracing::info!(%namespace, policy = %spec.policy, %user, reason = %spec.reason, "ErrorBudgetOverride requested");
                (stamped, Verdict::Allow)
            }
            Err(e) => (
                AdmissionResponse::from(&req),
                Verdict::Deny(format!("cannot record who requests the override: {e}")),
            ),
        }
    })
    .await
}

impl Webhook {
    /// What a valid object's neighbours say against it: a policy reading a burn-rate window
    /// that one of its existing SLOs does not record (an SLO not there yet may come in the
    /// same apply, so only the controller reports that); an SLO whose SLI reads another
    /// namespace, unless the operator allows it.
    fn cluster_problems(
        &self,
        kind: &str,
        namespace: Option<&str>,
        object: &DynamicObject,
    ) -> Vec<crate::validate::Problem> {
        if kind == "ServiceLevelObjective" && !self.allow_cross_namespace_sli {
            return serde_json::to_value(object)
                .and_then(serde_json::from_value::<crate::api::ServiceLevelObjective>)
                .map(|slo| crate::validate::foreign_namespaces(&slo, namespace))
                .unwrap_or_default();
        }
        if kind != "ErrorBudgetPolicy" {
            return vec![];
        }
        let Ok(mut policy) = serde_json::to_value(object).and_then(serde_json::from_value::<ErrorBudgetPolicy>) else {
            return vec![];
        };
        let Ok(valid) = crate::policy::validate(&policy.spec) else {
            return vec![];
        };
        // The request's namespace: a new object need not name it.
        policy.metadata.namespace = namespace.map(String::from).or(policy.metadata.namespace);
        let (slos, _) = crate::policy::select::selected_slos(&policy, &self.stores);
        crate::policy::select::unrecorded_windows(&valid, &slos)
    }

    /// What the controller would reject, said at apply time.
    async fn check_override(&self, namespace: &str, spec: &ErrorBudgetOverrideSpec) -> Result<(), String> {
        if let Some(by) = &spec.requested_by {
            return Err(format!(
                "spec.requestedBy ({by}) is set by slo-warden from who creates the override; leave it out"
            ));
        }
        let api: Api<ErrorBudgetPolicy> = Api::namespaced(self.client.clone(), namespace);
        let max = match api.get_opt(&spec.policy).await {
            Ok(None) => {
                return Err(format!(
                    "there is no ErrorBudgetPolicy {namespace}/{}; spec.policy names the policy to lift",
                    spec.policy
                ));
            }
            Ok(Some(p)) => Duration::parse(&p.spec.max_override).ok(),
            // The controller checks the cap again; attribution must not wait on a lookup.
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the policy of an override");
                None
            }
        };
        // The controller's own rule (reason, duration, cap), so apply time and the controller
        // never disagree; without a readable cap only the rest is checked here.
        let now = jiff::Timestamp::now();
        let cap = max.unwrap_or(Duration::from_millis(u64::MAX));
        let e = crate::policy::overrides::evaluate(spec, now, cap, now);
        match e.state {
            OverrideState::Rejected => Err(e.message),
            _ => Ok(()),
        }
    }
}

impl Webhook {
    /// The active overrides (from the cache) of `policy`, named `holder` in claims.
    fn active_overrides(&self, holder: &str, policy: &ErrorBudgetPolicy, now: jiff::Timestamp) -> Vec<Lifted> {
        let Ok(max) = Duration::parse(&policy.spec.max_override) else {
            return vec![];
        };
        let cached = self.stores.overrides_in(&policy.namespace().unwrap_or_default());
        crate::policy::overrides::active(cached.iter().map(|o| &**o), &policy.name_any(), max, now)
            .into_iter()
            .map(|a| Lifted {
                policy: holder.to_string(),
                name: a.name,
                reason: a.why,
                until: crate::api::rfc3339(a.until),
            })
            .collect()
    }

    /// The user the API server knows this operator as (a SelfSubjectReview, asked once): its
    /// own requests are the ones that may let a hold go.
    async fn identity(&self) -> Result<&str, String> {
        use k8s_openapi::api::authentication::v1::SelfSubjectReview;
        self.identity
            .get_or_try_init(|| async {
                let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
                let review = api
                    .create(&kube::api::PostParams::default(), &SelfSubjectReview::default())
                    .await
                    .map_err(|e| format!("create selfsubjectreviews: {e}"))?;
                review
                    .status
                    .and_then(|s| s.user_info)
                    .and_then(|u| u.username)
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| "the SelfSubjectReview names no user".to_string())
            })
            .await
            .map(String::as_str)
    }

    /// Which of the policies a claim names still exist, and their active overrides.
    async fn holders(&self, claimed: &[String]) -> kube::Result<hold::Holders> {
        let now = jiff::Timestamp::now();
        let mut holders = hold::Holders::default();
        for holder in claimed {
            let Some((ns, name)) = holder.split_once('/') else {
                holders.gone.push(holder.clone());
                continue;
            };
            match Api::<ErrorBudgetPolicy>::namespaced(self.client.clone(), ns)
                .get_opt(name)
                .await?
            {
                Some(p) => holders.lifted.extend(self.active_overrides(holder, &p, now)),
                None => holders.gone.push(holder.clone()),
            }
        }
        Ok(holders)
    }

    async fn review_held(&self, req: &AdmissionRequest<DynamicObject>) -> Verdict {
        let value = |o: &Option<DynamicObject>| o.as_ref().and_then(|o| serde_json::to_value(o).ok());
        let (KubeOperation::Update, Some(new), Some(old)) =
            (&req.operation, value(&req.object), value(&req.old_object))
        else {
            return Verdict::Allow;
        };
        let claimed = hold::claimed_by(&old);
        // Most updates of a held object (status, scaling) need no lookup.
        if claimed.is_empty() || hold::lifts(&old, &new).is_empty() {
            return Verdict::Allow;
        }
        let what = format!(
            "{} {}/{}",
            req.kind.kind,
            req.namespace.as_deref().unwrap_or_default(),
            req.name
        );
        let by_operator = match self.identity().await {
            Ok(me) => req.user_info.username.as_deref() == Some(me),
            Err(e) => {
                return Verdict::Deny(format!(
                    "cannot check who may let go of the hold on {what}: slo-warden does not know its own user ({e}); try again"
                ));
            }
        };
        if by_operator {
            return Verdict::Allow;
        }
        match self.holders(&claimed).await {
            Ok(holders) => hold::review_held(&req.kind.kind, &req.name, &old, &new, false, &holders),
            Err(e) => Verdict::Deny(format!(
                "cannot read the ErrorBudgetPolicies holding {what} ({e}); try again"
            )),
        }
    }

    /// Whether `namespace` is being deleted (or gone); a refusal when that cannot be read.
    async fn terminating(&self, namespace: &str) -> Result<bool, Verdict> {
        let api = Api::<Namespace>::all(self.client.clone());
        match tokio::time::timeout(FREEZE_READ, api.get_opt(namespace)).await {
            Ok(Ok(ns)) => Ok(ns.is_none_or(|ns| {
                ns.metadata.deletion_timestamp.is_some()
                    || ns.status.and_then(|s| s.phase).as_deref() == Some("Terminating")
            })),
            Ok(Err(e)) => Err(Verdict::Deny(format!(
                "cannot tell whether namespace {namespace} is being deleted ({e}); try again"
            ))),
            Err(_) => Err(Verdict::Deny(format!(
                "cannot tell whether namespace {namespace} is being deleted (no answer within {}s); try again",
                FREEZE_READ.as_secs()
            ))),
        }
    }

    /// An update or deletion of a ServiceLevelObjective: refused when it could release what a
    /// policy selecting it holds ([`hold::review_slo`]).
    async fn review_slo(&self, req: &AdmissionRequest<DynamicObject>) -> Verdict {
        let delete = match req.operation {
            KubeOperation::Update => false,
            KubeOperation::Delete => true,
            _ => return Verdict::Allow,
        };
        let namespace = req.namespace.clone().unwrap_or_default();
        let slo = |o: &DynamicObject| {
            serde_json::to_value(o)
                .and_then(serde_json::from_value::<ServiceLevelObjective>)
                .map(|mut s| {
                    s.metadata.namespace = Some(namespace.clone());
                    s
                })
                .map_err(|e| e.to_string())
        };
        // One the controller cannot read drives nothing.
        let Some(Ok(old)) = req.old_object.as_ref().map(slo) else {
            return Verdict::Allow;
        };
        let new = match (delete, req.object.as_ref().map(slo)) {
            (true, _) | (false, None) => None,
            (false, Some(Ok(new))) => Some(new),
            (false, Some(Err(e))) => {
                return Verdict::Deny(format!(
                    "cannot read the new ServiceLevelObjective {namespace}/{}: {e}",
                    req.name
                ));
            }
        };
        if !delete {
            let Some(new) = &new else {
                return Verdict::Allow;
            };
            // Most edits (status, descriptions, annotations) need no lookup.
            if hold::slo_reductions(&old, new).is_empty() && new.labels() == old.labels() {
                return Verdict::Allow;
            }
        }
        let api: Api<ErrorBudgetPolicy> = Api::namespaced(self.client.clone(), &namespace);
        let policies = match tokio::time::timeout(FREEZE_READ, api.list(&Default::default())).await {
            Ok(Ok(list)) => list.items,
            Ok(Err(e)) => {
                return Verdict::Deny(format!(
                    "cannot read the ErrorBudgetPolicies of namespace {namespace} that may select ServiceLevelObjective {} ({e}); try again",
                    req.name
                ));
            }
            Err(_) => {
                return Verdict::Deny(format!(
                    "cannot read the ErrorBudgetPolicies of namespace {namespace} that may select ServiceLevelObjective {} (no answer within {}s); try again",
                    req.name,
                    FREEZE_READ.as_secs()
                ));
            }
        };
        let now = jiff::Timestamp::now();
        let holders: Vec<hold::SloHolder> = policies
            .iter()
            .filter(|p| hold::selects(&p.spec, &old.name_any(), old.labels()))
            .filter_map(|p| {
                let holder = crate::enforce::holder(&namespace, &p.name_any());
                let holding = hold::holding(p, &self.active_overrides(&holder, p, now))?;
                Some(hold::SloHolder {
                    policy: p.name_any(),
                    holding,
                    still_selects: new
                        .as_ref()
                        .is_some_and(|n| hold::selects(&p.spec, &n.name_any(), n.labels())),
                })
            })
            .collect();
        let terminating = if delete && !holders.is_empty() {
            match self.terminating(&namespace).await {
                Ok(t) => t,
                Err(denied) => return denied,
            }
        } else {
            false
        };
        hold::review_slo(&old, new.as_ref(), &holders, terminating)
    }

    async fn review_policy(&self, req: &AdmissionRequest<DynamicObject>) -> Verdict {
        if req.kind.kind == "ServiceLevelObjective" {
            return self.review_slo(req).await;
        }
        let edit = match req.operation {
            KubeOperation::Update => hold::Edit::Update,
            KubeOperation::Delete => hold::Edit::Delete,
            _ => return Verdict::Allow,
        };
        let policy = |o: &DynamicObject| {
            serde_json::to_value(o)
                .and_then(serde_json::from_value::<ErrorBudgetPolicy>)
                .map_err(|e| e.to_string())
        };
        // What is stored was read by the controller the same way: one it cannot read holds
        // nothing.
        let Some(Ok(mut old)) = req.old_object.as_ref().map(policy) else {
            return Verdict::Allow;
        };
        let namespace = req.namespace.clone().unwrap_or_default();
        old.metadata.namespace = Some(namespace.clone());
        let new = match (edit, req.object.as_ref().map(policy)) {
            (hold::Edit::Update, Some(Ok(new))) => Some(new),
            (hold::Edit::Update, Some(Err(e))) => {
                return Verdict::Deny(format!(
                    "cannot read the new ErrorBudgetPolicy {namespace}/{}: {e}",
                    req.name
                ));
            }
            _ => None,
        };
        let holder = crate::enforce::holder(&namespace, &old.name_any());
        let lifted = self.active_overrides(&holder, &old, jiff::Timestamp::now());
        // Only a deletion of a policy that holds something needs its Namespace.
        let terminating = if edit == hold::Edit::Delete && hold::holding(&old, &lifted).is_some() {
            match self.terminating(&namespace).await {
                Ok(t) => t,
                Err(denied) => return denied,
            }
        } else {
            false
        };
        hold::review_policy(edit, &old, new.as_ref(), &lifted, terminating)
    }
}

/// `POST /validate/holds`: updates of Deployments and Rollouts labelled `slo.warden.dev/held`.
async fn holds(
    State(webhook): State<Arc<Webhook>>,
    Extension(budget): Extension<intake::Budget>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&webhook, "holds", (&budget, headers, body), async |req| {
        let verdict = webhook.review_held(&req).await;
        if let Verdict::Deny(_) = &verdict {
            tracing::info!(namespace = ?req.namespace, kind = %req.kind.kind, name = %req.name, user = ?req.user_info.username, "lifting a hold refused");
        }
        (AdmissionResponse::from(&req), verdict)
    })
    .await
}

/// `POST /validate/policies`: updates and deletions of ErrorBudgetPolicies and of the
/// ServiceLevelObjectives that drive them.
async fn policies(
    State(webhook): State<Arc<Webhook>>,
    Extension(budget): Extension<intake::Budget>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&webhook, "policies", (&budget, headers, body), async |req| {
        let verdict = webhook.review_policy(&req).await;
        if let Verdict::Deny(_) = &verdict {
            tracing::info!(namespace = ?req.namespace, name = %req.name, operation = ?req.operation, user = ?req.user_info.username, "policy edit refused");
        }
        (AdmissionResponse::from(&req), verdict)
    })
    .await
}

/// What `slo-warden validate` would say about an object of our kinds: every problem, each at
/// its field path.
pub fn problems_of(kind: &str, object: &DynamicObject) -> Vec<crate::validate::Problem> {
    match serde_json::to_value(object) {
        Ok(value) => crate::documents::problems_of(kind, value, crate::documents::Check::Admission),
        Err(e) => vec![crate::validate::Problem {
            field: ".".into(),
            message: crate::api::bounds::shorten(&e.to_string()),
        }],
    }
}

/// The webhook's routes, within [`intake::LIMITS`]; each review is read by [`intake::read`].
pub fn router(webhook: Arc<Webhook>, budget: intake::Budget) -> Router {
    let app = Router::new()
        .route("/validate/releases", post(releases))
        .route("/validate/objects", post(objects))
        .route("/mutate/overrides", post(overrides))
        .route("/validate/holds", post(holds))
        .route("/validate/policies", post(policies))
        .route("/mutate/releases", post(attribute_releases))
        .layer(Extension(budget))
        .layer(Extension(Attribution(intake::Budget::of(ATTRIBUTION_BUDGET_BYTES))))
        .with_state(webhook);
    crate::serving::limit(app, &intake::LIMITS, None)
}

/// Serves the webhook until `shutdown`.
pub async fn serve(
    args: WebhookArgs,
    addr: SocketAddr,
    webhook: Arc<Webhook>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let config = match &args.webhook_cert_secret {
        Some(secret) => {
            let namespace = std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| webhook.client.default_namespace().to_string());
            // Serve only once a certificate is there: issue (or read) it first.
            let bundle = loop {
                match certs::ensure(&webhook.client, &namespace, secret, &args.webhook_dns_names).await {
                    Ok(b) => break b,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot issue the webhook certificate yet");
                        tokio::select! {
                            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                            _ = shutdown.cancelled() => return Ok(()),
                        }
                    }
                }
            };
            let config = RustlsConfig::from_pem(bundle.cert.into_bytes(), bundle.key.into_bytes()).await?;
            tokio::spawn(manage(
                config.clone(),
                webhook.client.clone(),
                args.clone(),
                secret.clone(),
                namespace,
                shutdown.clone(),
            ));
            config
        }
        None => {
            let config = RustlsConfig::from_pem_file(&args.webhook_cert_file, &args.webhook_key_file).await?;
            tokio::spawn(reload_files(config.clone(), args.clone(), shutdown.clone()));
            config
        }
    };
    serve_tls(addr, config, webhook, shutdown).await
}

/// Serves the webhook's routes over TLS with `config` until `shutdown`, within
/// [`intake::LIMITS`].
pub async fn serve_tls(
    addr: SocketAddr,
    config: RustlsConfig,
    webhook: Arc<Webhook>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(webhook, intake::Budget::default());
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    tracing::info!(%addr, "serving the admission webhook (HTTPS)");
    let tls = axum_server::tls_rustls::RustlsAcceptor::new(config).handshake_timeout(intake::LIMITS.headers);
    crate::serving::server(axum_server::bind(addr).acceptor(tls), &intake::LIMITS)
        .handle(handle)
        .serve(app.into_make_service())
        .await
}

#[cfg(test)]
mod tests {
    use http::{Request, Response, StatusCode};
    use kube::client::Body as KubeBody;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;

    type Handle = tower_test::mock::Handle<Request<KubeBody>, Response<KubeBody>>;

    fn app() -> (Router, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<KubeBody>, Response<KubeBody>>();
        let webhook = Arc::new(Webhook {
            client: Client::new(service, "default"),
            stores: Stores(vec![]),
            metrics: Metrics::default(),
            identity: Default::default(),
            allow_cross_namespace_sli: false,
        });
        (router(webhook, intake::Budget::default()), handle)
    }

    /// An image change of Deployment web in shop, as the API server sends it (uid first), with
    /// `labels` bytes of labels on both copies.
    fn image_change(labels: usize) -> Vec<u8> {
        let object = |image: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "shop", "labels": {"pad": "x".repeat(labels)}},
                   "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
        };
        format!(
            r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{"uid":"u1","kind":{{"group":"apps","version":"v1","kind":"Deployment"}},"resource":{{"group":"apps","version":"v1","resource":"deployments"}},"name":"web","namespace":"shop","operation":"UPDATE","userInfo":{{"username":"dev"}},"object":{},"oldObject":{}}}}}"#,
            object("web:2"),
            object("web:1")
        )
        .into_bytes()
    }

    async fn review(app: Router, body: Vec<u8>) -> Value {
        review_at(app, "/validate/releases", body).await
    }

    async fn review_at(app: Router, path: &str, body: Vec<u8>) -> Value {
        let request = axum::http::Request::post(path)
            .header("content-length", body.len())
            .body(Body::from(body))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let review: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(review["response"]["uid"], "u1");
        review["response"].clone()
    }

    /// Answers the Namespace read with `status` and `body`.
    async fn namespace_read(handle: &mut Handle, status: StatusCode, body: Value) {
        let (req, send) = handle.next_request().await.expect("a Namespace read");
        assert_eq!(req.uri().path(), "/api/v1/namespaces/shop");
        send.send_response(
            Response::builder()
                .status(status)
                .body(KubeBody::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }

    fn frozen() -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "shop", "labels": {"slo.warden.dev/frozen": "true"},
                            "annotations": {"slo.warden.dev/frozen-by": "shop/checkout"}}})
    }

    #[tokio::test]
    async fn a_large_release_is_read_whole_and_judged() {
        let (app, mut handle) = app();
        // 2.5 MB: over the 2 MiB a webhook used to read.
        let body = image_change(1_250_000);
        assert!(body.len() > 2_500_000);
        let (answer, ()) = tokio::join!(review(app, body), namespace_read(&mut handle, StatusCode::OK, frozen()));
        assert_eq!(answer["allowed"], false);
        let message = answer["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "changing the pod template of Deployment web is refused: releases in namespace shop are frozen"
            ),
            "{message}"
        );
    }

    /// The override webhook runs before the API server checks the schema: a value of the wrong
    /// type is refused at its field path, with every other problem of the object.
    #[tokio::test]
    async fn an_override_of_the_wrong_types_is_refused_at_its_fields() {
        let (app, _handle) = app();
        let body = serde_json::to_vec(&json!({
            "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
            "request": {"uid": "u1", "kind": {"group": "slo.warden.dev", "version": "v1alpha1", "kind": "ErrorBudgetOverride"},
                        "resource": {"group": "slo.warden.dev", "version": "v1alpha1", "resource": "errorbudgetoverrides"},
                        "name": "hotfix", "namespace": "shop", "operation": "CREATE", "userInfo": {"username": "dev"},
                        "object": {"apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetOverride",
                                   "metadata": {"name": "hotfix", "namespace": "shop"},
                                   "spec": {"policy": "checkout", "duration": 5, "reason": ["incident"]}}},
        }))
        .unwrap();
        let answer = review_at(app, "/mutate/overrides", body).await;
        assert_eq!(answer["allowed"], false);
        let message = answer["status"]["message"].as_str().unwrap();
        assert!(message.starts_with("ErrorBudgetOverride hotfix: "), "{message}");
        assert!(
            message.contains("spec.duration: ") && message.contains("spec.reason: "),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_namespace_it_cannot_read_refuses_the_release() {
        let (app, mut handle) = app();
        let unavailable = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500});
        let (answer, ()) = tokio::join!(
            review(app, image_change(10)),
            namespace_read(&mut handle, StatusCode::INTERNAL_SERVER_ERROR, unavailable)
        );
        assert_eq!(answer["allowed"], false);
        let message = answer["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("slo-warden could not read Namespace shop ("),
            "{message}"
        );
        assert!(
            message.contains("releases there are refused while the freeze cannot be checked"),
            "{message}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_namespace_read_that_never_answers_refuses_the_release_in_time() {
        let (app, mut handle) = app();
        let started = tokio::time::Instant::now();
        let silent = async {
            let pending = handle.next_request().await;
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            drop(pending);
        };
        let answer = tokio::select! {
            answer = review(app, image_change(10)) => answer,
            () = silent => panic!("no answer"),
        };
        assert_eq!(started.elapsed(), FREEZE_READ);
        assert_eq!(answer["allowed"], false);
        let message = answer["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("could not read Namespace shop within 3s (no answer)"),
            "{message}"
        );
    }

    /// The webhook on caches holding `slos`, against a cluster that keeps objects.
    fn app_on(slos: Vec<ServiceLevelObjective>) -> (Router, crate::fake_api::FakeApi) {
        let (client, api) = crate::fake_api::FakeApi::start();
        let webhook = Arc::new(Webhook {
            client,
            stores: Stores(vec![crate::cache::ScopeCaches::holding(slos, vec![])]),
            metrics: Metrics::default(),
            identity: Default::default(),
            allow_cross_namespace_sli: false,
        });
        (router(webhook, intake::Budget::default()), api)
    }

    /// A review of `operation` on `object` (a `kind` of slo.warden.dev) in namespace shop, by dev.
    fn review_of(kind: &str, resource: &str, operation: &str, object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
            "request": {"uid": "u1", "kind": {"group": "slo.warden.dev", "version": "v1alpha1", "kind": kind},
                        "resource": {"group": "slo.warden.dev", "version": "v1alpha1", "resource": resource},
                        "name": object["metadata"]["name"], "namespace": "shop", "operation": operation,
                        "userInfo": {"username": "dev@example.com"}, "object": object},
        }))
        .unwrap()
    }

    fn slo_object(errors: &str) -> Value {
        json!({"apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
               "metadata": {"name": "checkout", "namespace": "shop"},
               "spec": {"objective": 99.9, "window": "30d",
                        "indicator": {"ratio": {"errors": errors, "total": "http_requests_total"}}}})
    }

    fn policy_object(window: &str) -> Value {
        json!({"apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetPolicy",
               "metadata": {"name": "checkout", "namespace": "shop"},
               "spec": {"slos": {"names": ["checkout"]},
                        "stages": [{"name": "page", "when": [{"burnRate": {"window": window, "above": 14.4}}],
                                    "actions": ["freezeDeployments"]}],
                        "maxOverride": "4h"}})
    }

    fn override_object(extra: Value) -> Value {
        let mut spec = json!({"policy": "checkout", "duration": "1h", "reason": "hotfix for INC-1"});
        json_patch::merge(&mut spec, &extra);
        json!({"apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetOverride",
               "metadata": {"name": "hotfix", "namespace": "shop"}, "spec": spec})
    }

    fn message(answer: &Value) -> &str {
        answer["status"]["message"].as_str().unwrap_or_default()
    }

    #[tokio::test]
    async fn an_slo_whose_promql_does_not_parse_is_refused_at_its_field() {
        let (app, _) = app_on(vec![]);
        let answer = review_at(
            app.clone(),
            "/validate/objects",
            review_of(
                "ServiceLevelObjective",
                "servicelevelobjectives",
                "CREATE",
                slo_object("rate(http_requests_total[5m"),
            ),
        )
        .await;
        assert_eq!(answer["allowed"], false);
        assert!(
            message(&answer).starts_with("ServiceLevelObjective checkout: spec.indicator.ratio.errors: "),
            "{}",
            message(&answer)
        );
        let answer = review_at(
            app,
            "/validate/objects",
            review_of(
                "ServiceLevelObjective",
                "servicelevelobjectives",
                "CREATE",
                slo_object("http_requests_total{code=~\"5..\"}"),
            ),
        )
        .await;
        assert_eq!(answer["allowed"], true, "{answer}");
    }

    #[tokio::test]
    async fn an_slo_reading_another_namespace_is_refused_unless_allowed() {
        let (app, _) = app_on(vec![]);
        let answer = review_at(
            app,
            "/validate/objects",
            review_of(
                "ServiceLevelObjective",
                "servicelevelobjectives",
                "CREATE",
                slo_object("http_requests_total{namespace=\"billing\"}"),
            ),
        )
        .await;
        assert_eq!(answer["allowed"], false);
        assert!(message(&answer).contains("billing"), "{}", message(&answer));
    }

    #[tokio::test]
    async fn a_policy_reading_a_window_its_slo_does_not_record_is_refused() {
        let slo: ServiceLevelObjective = serde_json::from_value(slo_object("errors_total")).unwrap();
        let (app, _) = app_on(vec![slo]);
        let answer = review_at(
            app.clone(),
            "/validate/objects",
            review_of(
                "ErrorBudgetPolicy",
                "errorbudgetpolicies",
                "CREATE",
                policy_object("7h"),
            ),
        )
        .await;
        assert_eq!(answer["allowed"], false);
        assert!(message(&answer).contains("7h"), "{}", message(&answer));
        let answer = review_at(
            app,
            "/validate/objects",
            review_of(
                "ErrorBudgetPolicy",
                "errorbudgetpolicies",
                "CREATE",
                policy_object("1h"),
            ),
        )
        .await;
        assert_eq!(answer["allowed"], true, "{answer}");
    }

    /// The JSON patch of a mutating answer.
    fn patch_of(answer: &Value) -> Value {
        let bytes: Vec<u8> = serde_json::from_value(answer["patch"].clone()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_new_pod_template_is_stamped_with_who_released_it() {
        let (app, _) = app_on(vec![]);
        // An image change: stamped, the annotation added to those there are.
        let answer = review_at(app.clone(), "/mutate/releases", image_change(3)).await;
        assert_eq!(answer["allowed"], true, "{answer}");
        let patch = patch_of(&answer);
        assert_eq!(patch[0]["path"], "/metadata/annotations");
        let stamp = patch[0]["value"][crate::release::attribution::RELEASED_BY]
            .as_str()
            .unwrap();
        let template = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}});
        assert_eq!(crate::release::attribution::released_by(stamp, &template), Some("dev"));

        // With annotations already there, only ours is added.
        let object = |image: &str, replicas: u32| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "shop", "annotations": {"team": "pay"}},
                   "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
        };
        let review = |object: Value, old: Value| {
            serde_json::to_vec(&json!({
                "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
                "request": {"uid": "u1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                            "name": "web", "namespace": "shop", "operation": "UPDATE",
                            "userInfo": {"username": "alice"}, "object": object, "oldObject": old},
            }))
            .unwrap()
        };
        let answer = review_at(
            app.clone(),
            "/mutate/releases",
            review(object("web:3", 1), object("web:2", 1)),
        )
        .await;
        assert_eq!(
            patch_of(&answer)[0]["path"],
            "/metadata/annotations/slo.warden.dev~1released-by"
        );
        assert!(patch_of(&answer)[0]["value"].as_str().unwrap().ends_with(" alice"));

        // Scaling keeps the template: allowed, nothing stamped.
        let answer = review_at(app, "/mutate/releases", review(object("web:3", 5), object("web:3", 1))).await;
        assert_eq!(answer["allowed"], true, "{answer}");
        assert!(answer.get("patch").is_none(), "{answer}");
    }

    #[tokio::test]
    async fn a_release_that_cannot_be_read_is_not_refused_by_the_attribution() {
        let (app, _) = app_on(vec![]);
        // A review over the limit: no answer refusing it (the API server's failurePolicy
        // Ignore lets it through unstamped), where the freeze refuses it with its uid.
        let body = image_change(intake::BODY_LIMIT);
        let response = app
            .oneshot(
                axum::http::Request::post("/mutate/releases")
                    .header("content-type", "application/json")
                    .header("content-length", body.len())
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn an_override_is_stamped_with_who_asked_for_it() {
        let (app, api) = app_on(vec![]);
        api.put(policy_object("1h"));
        let answer = review_at(
            app,
            "/mutate/overrides",
            review_of(
                "ErrorBudgetOverride",
                "errorbudgetoverrides",
                "CREATE",
                override_object(json!({})),
            ),
        )
        .await;
        assert_eq!(answer["allowed"], true, "{answer}");
        assert_eq!(answer["patchType"], "JSONPatch");
        // kube sends the patch's bytes as a list of numbers, which the API server reads as well.
        let bytes: Vec<u8> = serde_json::from_value(answer["patch"].clone()).unwrap();
        let patch: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/spec/requestedBy", "value": "dev@example.com"}])
        );
    }

    #[tokio::test]
    async fn an_override_the_controller_would_reject_is_refused_at_apply() {
        let (app, api) = app_on(vec![]);
        // No such policy.
        let answer = review_at(
            app.clone(),
            "/mutate/overrides",
            review_of(
                "ErrorBudgetOverride",
                "errorbudgetoverrides",
                "CREATE",
                override_object(json!({})),
            ),
        )
        .await;
        assert_eq!(answer["allowed"], false);
        assert!(
            message(&answer).starts_with("there is no ErrorBudgetPolicy shop/checkout"),
            "{}",
            message(&answer)
        );
        api.put(policy_object("1h"));
        // Longer than the policy's maxOverride.
        let answer = review_at(
            app.clone(),
            "/mutate/overrides",
            review_of(
                "ErrorBudgetOverride",
                "errorbudgetoverrides",
                "CREATE",
                override_object(json!({"duration": "8h"})),
            ),
        )
        .await;
        assert_eq!(answer["allowed"], false);
        assert!(message(&answer).contains("maxOverride 4h"), "{}", message(&answer));
        // Who asked is not the requester's to say.
        let answer = review_at(
            app,
            "/mutate/overrides",
            review_of(
                "ErrorBudgetOverride",
                "errorbudgetoverrides",
                "CREATE",
                override_object(json!({"requestedBy": "alice"})),
            ),
        )
        .await;
        assert_eq!(answer["allowed"], false);
        assert!(
            message(&answer).starts_with("spec.requestedBy (alice) is set by slo-warden"),
            "{}",
            message(&answer)
        );
    }
}
