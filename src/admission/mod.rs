//! The admission webhook, served over HTTPS by the operator itself on every replica (leading
//! or not): `POST /validate/releases` refuses releases in frozen namespaces ([`release`]); its
//! webhook selects only namespaces labelled `slo.warden.dev/frozen=true`, so the rest of the
//! cluster never waits on it. `POST /validate/objects` checks our own kinds at apply time;
//! `POST /mutate/overrides` records who asks for a break-glass.

pub mod certs;
pub mod release;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation as KubeOperation};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::api::{ErrorBudgetOverrideSpec, ErrorBudgetPolicy, OverrideState};
use crate::controller::budget::Stores;
use crate::duration::Duration;
use crate::metrics::{AdmissionLabels, Metrics};
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

pub struct Webhook {
    pub client: Client,
    pub stores: Stores,
    pub metrics: Metrics,
    /// `--allow-cross-namespace-sli`: an SLI may read other namespaces.
    pub allow_cross_namespace_sli: bool,
}

impl Webhook {
    /// The freeze of the request's namespace, and the active overrides of its policies.
    async fn freeze(&self, namespace: &str) -> kube::Result<(Option<Freeze>, Vec<Lifted>)> {
        let ns = Api::<Namespace>::all(self.client.clone()).get(namespace).await?;
        let Some(freeze) = Freeze::of(namespace, ns.labels(), ns.annotations()) else {
            return Ok((None, vec![]));
        };
        let now = jiff::Timestamp::now();
        let mut lifted = Vec::new();
        for holder in &freeze.holders {
            let Some((policy_ns, policy)) = holder.split_once('/') else {
                continue;
            };
            let overrides: Vec<_> = self
                .stores
                .overrides_in(policy_ns)
                .into_iter()
                .filter(|o| o.spec.policy == policy)
                .collect();
            if overrides.is_empty() {
                continue;
            }
            let api: Api<ErrorBudgetPolicy> = Api::namespaced(self.client.clone(), policy_ns);
            let max = api
                .get_opt(policy)
                .await?
                .and_then(|p| Duration::parse(&p.spec.max_override).ok());
            for o in overrides {
                let (Some(max), Some(created)) = (max, o.metadata.creation_timestamp.as_ref()) else {
                    continue;
                };
                let e = crate::policy::overrides::evaluate(&o.spec, created.0, max, now);
                if let (OverrideState::Active, Some(until)) = (e.state, e.expires_at) {
                    lifted.push(Lifted {
                        policy: holder.clone(),
                        name: o.name_any(),
                        reason: format!("by {}: {}", crate::policy::overrides::requester(&o.spec), o.spec.reason),
                        until: until.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    });
                }
            }
        }
        Ok((Some(freeze), lifted))
    }

    async fn review_release(&self, req: &AdmissionRequest<DynamicObject>) -> Verdict {
        let operation = match req.operation {
            KubeOperation::Create => Operation::Create,
            KubeOperation::Update => Operation::Update,
            _ => Operation::Other,
        };
        let value = |o: &Option<DynamicObject>| o.as_ref().and_then(|o| serde_json::to_value(o).ok());
        let (object, old) = (value(&req.object), value(&req.old_object));
        if !release::is_release(operation, object.as_ref(), old.as_ref()) {
            return Verdict::Allow;
        }
        let Some(namespace) = req.namespace.as_deref() else {
            return Verdict::Allow;
        };
        match self.freeze(namespace).await {
            Ok((freeze, lifted)) => release::review(
                &req.kind.kind,
                &req.name,
                operation,
                object.as_ref(),
                old.as_ref(),
                freeze.as_ref(),
                &lifted,
            ),
            // Like failurePolicy Ignore: an operator that cannot read the freeze never blocks
            // every deploy; it says so.
            Err(e) => {
                tracing::warn!(namespace, error = %e, "cannot read the freeze; letting the release through");
                Verdict::AllowWithWarning(format!(
                    "slo-warden could not check whether namespace {namespace} is frozen: {e}"
                ))
            }
        }
    }
}

/// Parses a review, answers it with `verdict` and counts the answer.
async fn answer<F, Fut>(
    webhook: &Webhook,
    name: &'static str,
    review: AdmissionReview<DynamicObject>,
    verdict: F,
) -> Json<AdmissionReview<DynamicObject>>
where
    F: FnOnce(AdmissionRequest<DynamicObject>) -> Fut,
    Fut: std::future::Future<Output = (AdmissionResponse, Verdict)>,
{
    let req: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return Json(AdmissionResponse::invalid(e.to_string()).into_review()),
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
    webhook
        .metrics
        .admission
        .get_or_create(&AdmissionLabels { webhook: name, result })
        .inc();
    Json(response.into_review())
}

/// `POST /validate/releases`.
async fn releases(
    State(webhook): State<Arc<Webhook>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    answer(&webhook, "releases", review, async |req| {
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
/// webhook configurations; checked again every [`CERT_REFRESH`].
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
                        crate::controller::backoff::delay(failures)
                    }
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "cannot issue the webhook certificate");
                crate::controller::backoff::delay(failures)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// `POST /validate/objects`: ServiceLevelObjectives and ErrorBudgetPolicies get the checks of
/// `slo-warden validate` at `kubectl apply` (a PromQL error with its field and position),
/// beyond what the CRD schema can say.
async fn objects(
    State(webhook): State<Arc<Webhook>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    answer(&webhook, "objects", review, async |req| {
        let problems = match &req.object {
            Some(object) => match problems_of(&req.kind.kind, object) {
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

/// `POST /mutate/overrides`: a new ErrorBudgetOverride gets `spec.requestedBy` from the user
/// who creates it (so the policy's status, Events and the release webhook can name them), and
/// what the controller would reject is refused at apply time.
async fn overrides(
    State(webhook): State<Arc<Webhook>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    answer(&webhook, "overrides", review, async |req| {
        let response = AdmissionResponse::from(&req);
        let (KubeOperation::Create, Some(object)) = (&req.operation, &req.object) else {
            return (response, Verdict::Allow);
        };
        let spec: ErrorBudgetOverrideSpec = match serde_json::from_value(object.data["spec"].clone()) {
            Ok(s) => s,
            Err(e) => return (response, Verdict::Deny(format!("spec: {e}"))),
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
        let (slos, _) = crate::controller::policy::selected_slos(&policy, &self.stores);
        crate::controller::policy::unrecorded_windows(&valid, &slos)
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

/// What `slo-warden validate` would say about an object of our kinds.
pub fn problems_of(kind: &str, object: &DynamicObject) -> Vec<crate::validate::Problem> {
    let value = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => {
            return vec![crate::validate::Problem {
                field: "spec".into(),
                message: e.to_string(),
            }];
        }
    };
    let parse_error = |e: serde_json::Error| {
        vec![crate::validate::Problem {
            field: "spec".into(),
            message: e.to_string(),
        }]
    };
    match kind {
        "ServiceLevelObjective" => match serde_json::from_value::<crate::api::ServiceLevelObjective>(value) {
            Ok(slo) => crate::validate::validate(&slo).err().unwrap_or_default(),
            Err(e) => parse_error(e),
        },
        "ErrorBudgetPolicy" => match serde_json::from_value::<ErrorBudgetPolicy>(value) {
            Ok(p) => crate::policy::validate(&p.spec).err().unwrap_or_default(),
            Err(e) => parse_error(e),
        },
        _ => vec![],
    }
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
    let app = Router::new()
        .route("/validate/releases", post(releases))
        .route("/validate/objects", post(objects))
        .route("/mutate/overrides", post(overrides))
        .with_state(webhook);
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    tracing::info!(%addr, "serving the admission webhook (HTTPS)");
    axum_server::bind_rustls(addr, config)
        .handle(handle)
        .serve(app.into_make_service())
        .await
}
