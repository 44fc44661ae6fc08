//! The webhook's serving certificate when no cert-manager is used: a CA (10 years) and a serving
//! certificate (1 year) signed by it, kept in a Secret of the operator's namespace so every
//! replica serves the same one; the serving certificate is renewed with the same CA once a third
//! of its life is left, so the `caBundle` patched into the webhook configurations stays valid.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::json;

use crate::api::MANAGER;
use crate::error::{Error, Result};

const CA_DAYS: i64 = 3650;
const SERVING_DAYS: i64 = 365;
/// Annotations on the Secret: when the serving certificate expires, and for which names.
const NOT_AFTER: &str = "slo.warden.dev/not-after";
const NAMES: &str = "slo.warden.dev/dns-names";

/// PEM texts, as kept in the Secret (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`).
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
    pub not_after: jiff::Timestamp,
    pub names: Vec<String>,
}

fn tls(e: rcgen::Error) -> Error {
    Error::Config(format!("cannot make the webhook certificate: {e}"))
}

fn offset(t: jiff::Timestamp) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).map_err(|e| Error::Config(e.to_string()))
}

/// A serving certificate for `names` (DNS names or IP addresses), signed by the CA of
/// `existing` when given, else by a new CA.
pub fn issue(existing: Option<(&str, &str)>, names: &[String], now: jiff::Timestamp) -> Result<Bundle> {
    let (ca_cert, ca_key) = match existing {
        Some((cert, key)) => (cert.to_string(), key.to_string()),
        None => {
            let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "slo-warden webhook CA");
            params.distinguished_name = dn;
            params.not_before = offset(now - jiff::SignedDuration::from_hours(1))?;
            params.not_after = offset(now + jiff::SignedDuration::from_hours(24 * CA_DAYS))?;
            let key = KeyPair::generate().map_err(tls)?;
            let cert = params.self_signed(&key).map_err(tls)?;
            (cert.pem(), key.serialize_pem())
        }
    };
    let ca_signing_key = KeyPair::from_pem(&ca_key).map_err(tls)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_signing_key).map_err(tls)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(tls)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(|| "slo-warden".into()),
    );
    params.distinguished_name = dn;
    let not_after = now + jiff::SignedDuration::from_hours(24 * SERVING_DAYS);
    params.not_before = offset(now - jiff::SignedDuration::from_hours(1))?;
    params.not_after = offset(not_after)?;
    let key = KeyPair::generate().map_err(tls)?;
    let cert = params.signed_by(&key, &issuer).map_err(tls)?;
    Ok(Bundle {
        ca_cert,
        ca_key,
        cert: cert.pem(),
        key: key.serialize_pem(),
        not_after: jiff::Timestamp::from_second(not_after.as_second()).map_err(|e| Error::Config(e.to_string()))?,
        names: names.to_vec(),
    })
}

/// Renew when a third of the serving certificate's life is left, or when the names changed.
pub fn needs_renewal(bundle: &Bundle, names: &[String], now: jiff::Timestamp) -> bool {
    // `notAfter` is read from the Secret: checked, so no value there can panic.
    let renew_at = bundle
        .not_after
        .checked_sub(jiff::SignedDuration::from_hours(24 * SERVING_DAYS / 3));
    bundle.names != names || !renew_at.is_ok_and(|at| at > now)
}

fn from_secret(secret: &Secret) -> Option<Bundle> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| data.get(k).and_then(|b| String::from_utf8(b.0.clone()).ok());
    let annotations = secret.metadata.annotations.as_ref()?;
    Some(Bundle {
        ca_cert: text("ca.crt")?,
        ca_key: text("ca.key")?,
        cert: text("tls.crt")?,
        key: text("tls.key")?,
        not_after: annotations.get(NOT_AFTER)?.parse().ok()?,
        names: annotations.get(NAMES)?.split(',').map(String::from).collect(),
    })
}

fn to_secret(name: &str, bundle: &Bundle, resource_version: Option<String>) -> Secret {
    let data = [
        ("ca.crt", &bundle.ca_cert),
        ("ca.key", &bundle.ca_key),
        ("tls.crt", &bundle.cert),
        ("tls.key", &bundle.key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.clone().into_bytes())))
    .collect();
    let mut secret = Secret {
        data: Some(data),
        type_: Some("kubernetes.io/tls".into()),
        ..Secret::default()
    };
    secret.metadata.name = Some(name.into());
    secret.metadata.resource_version = resource_version;
    secret.metadata.labels = Some(BTreeMap::from([(
        crate::rules::MANAGED_BY_LABEL.to_string(),
        MANAGER.to_string(),
    )]));
    secret.metadata.annotations = Some(BTreeMap::from([
        (NOT_AFTER.to_string(), bundle.not_after.to_string()),
        (NAMES.to_string(), bundle.names.join(",")),
    ]));
    secret
}

/// The certificate in the Secret, created or renewed as needed. Replicas racing on it settle
/// on one: a lost create or update (409) reads the winner's.
pub async fn ensure(client: &Client, namespace: &str, name: &str, names: &[String]) -> Result<Bundle> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for _ in 0..3 {
        let now = jiff::Timestamp::now();
        let existing = api
            .get_opt(name)
            .await
            .map_err(|e| Error::api(e, || format!("get secrets {namespace}/{name}")))?;
        let current = existing.as_ref().and_then(from_secret);
        if let Some(b) = &current
            && !needs_renewal(b, names, now)
        {
            return Ok(b.clone());
        }
        let bundle = issue(
            current.as_ref().map(|b| (b.ca_cert.as_str(), b.ca_key.as_str())),
            names,
            now,
        )?;
        let written = match &existing {
            None => {
                api.create(&PostParams::default(), &to_secret(name, &bundle, None))
                    .await
            }
            Some(s) => {
                let secret = to_secret(name, &bundle, s.metadata.resource_version.clone());
                api.replace(name, &PostParams::default(), &secret).await
            }
        };
        match written {
            Ok(_) => {
                tracing::info!(secret = %name, not_after = %bundle.not_after, "webhook serving certificate issued");
                return Ok(bundle);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => {
                let verb = if existing.is_some() { "update" } else { "create" };
                return Err(Error::api(e, || format!("{verb} secrets {namespace}/{name}")));
            }
        }
    }
    Err(Error::Config(format!(
        "Secret {namespace}/{name} keeps changing under us"
    )))
}

/// Puts the CA into every webhook of the webhook configurations named (validating and
/// mutating ones may share a name), when it is not there already.
pub async fn patch_ca_bundle(client: &Client, configurations: &[String], ca_pem: &str) -> Result<()> {
    let bundle = base64(ca_pem.as_bytes());
    for name in configurations {
        let mut found = false;
        for kind in CONFIGURATION_KINDS {
            let (api, resource) = configuration_api(client, kind);
            let Some(config) = api
                .get_opt(name)
                .await
                .map_err(|e| Error::api(e, || format!("get {} {name}", resource.plural)))?
            else {
                continue;
            };
            found = true;
            let stale: Vec<serde_json::Value> = config.data["webhooks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|w| w["clientConfig"]["caBundle"].as_str() != Some(bundle.as_str()))
                .map(|w| json!({"name": w["name"], "clientConfig": {"caBundle": bundle}}))
                .collect();
            if stale.is_empty() {
                continue;
            }
            // Strategic merge: webhooks merge by name, only caBundle changes.
            api.patch(
                name,
                &crate::api::merge_params(),
                &Patch::Strategic(json!({"webhooks": stale})),
            )
            .await
            .map_err(|e| Error::api(e, || format!("patch {} {name}", resource.plural)))?;
            tracing::info!(configuration = %name, kind, "caBundle set");
        }
        // Retried soon: at install time the configuration may come after the operator.
        if !found {
            return Err(Error::Config(format!(
                "no webhook configuration named {name} (yet); its caBundle is not set"
            )));
        }
    }
    Ok(())
}

const CONFIGURATION_KINDS: [&str; 2] = ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"];

/// The API of one kind of webhook configuration (and its resource, for messages).
fn configuration_api(client: &Client, kind: &str) -> (Api<DynamicObject>, ApiResource) {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind));
    (Api::all_with(client.clone(), &resource), resource)
}

/// Wakes `nudge` whenever a named webhook configuration is created or changed: one added after
/// the operator started, or rewritten without the caBundle (an upgrade, a GitOps sync that
/// replaces it), gets the CA at once instead of at the next check (up to 10 minutes, or the
/// backoff's 5 while it does not exist). Each watch reads one name only; without list and watch
/// on them (an older chart's role) the periodic check still sets the caBundle.
pub fn watch_configurations(
    client: &Client,
    configurations: &[String],
    nudge: std::sync::Arc<tokio::sync::Notify>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    for name in configurations {
        for kind in CONFIGURATION_KINDS {
            let (api, _) = configuration_api(client, kind);
            let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
            let (nudge, shutdown, name) = (nudge.clone(), shutdown.clone(), name.clone());
            tokio::spawn(async move {
                let mut events = std::pin::pin!(watcher(api, config).default_backoff());
                let mut warned = false;
                loop {
                    let event = tokio::select! {
                        e = events.next() => e,
                        _ = shutdown.cancelled() => return,
                    };
                    match event {
                        None => return,
                        Some(Ok(watcher::Event::Apply(_) | watcher::Event::InitApply(_))) => {
                            warned = false;
                            nudge.notify_one();
                        }
                        Some(Ok(_)) => {}
                        // Once until it works again: the periodic check covers what it misses.
                        Some(Err(e)) if !warned => {
                            warned = true;
                            tracing::warn!(configuration = %name, kind, error = %e, "cannot watch the webhook configuration; its caBundle is checked every 10 minutes only");
                        }
                        Some(Err(e)) => {
                            tracing::debug!(configuration = %name, kind, error = %e, "watch of the webhook configuration")
                        }
                    }
                }
            });
        }
    }
}

pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_the_serving_certificate_with_the_same_ca() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let names = vec!["slo-warden.ops.svc".to_string(), "127.0.0.1".to_string()];
        let first = issue(None, &names, now).unwrap();
        assert!(first.cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!needs_renewal(&first, &names, now));
        let later = now + jiff::SignedDuration::from_hours(24 * 250);
        assert!(needs_renewal(&first, &names, later), "a third of the year left");
        assert!(needs_renewal(&first, &names[..1], now), "other names");
        let renewed = issue(Some((&first.ca_cert, &first.ca_key)), &names, later).unwrap();
        assert_eq!(renewed.ca_cert, first.ca_cert, "the caBundle stays valid");
        assert_ne!(renewed.cert, first.cert);
        let secret = to_secret("tls", &renewed, None);
        assert_eq!(from_secret(&secret), Some(renewed));
        // A notAfter annotation at jiff's earliest time renews, and does not panic.
        let ancient = Bundle {
            not_after: jiff::Timestamp::MIN,
            ..first
        };
        assert!(needs_renewal(&ancient, &names, now));
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }
}
