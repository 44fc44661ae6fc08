//! `slo-warden override`: creates an ErrorBudgetOverride (break-glass) for a policy, after
//! checking what the API server and the controller would refuse, so on-call gets the error
//! at once.

use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};

use crate::api::{ErrorBudgetOverride, ErrorBudgetOverrideSpec, ErrorBudgetPolicy};
use crate::duration::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The ErrorBudgetPolicy to lift.
    pub policy: String,
    /// Namespace of the policy (default: the kubeconfig's).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// How long the override lasts, at most the policy's maxOverride (e.g. 2h).
    #[arg(long = "for", value_parser = Duration::parse)]
    pub duration: Duration,
    /// Why: an incident or change ticket (shown in the policy's status and Events).
    #[arg(long)]
    pub reason: String,
    /// Print the object as YAML instead of creating it (e.g. to commit it for Argo CD / Flux).
    #[arg(long)]
    pub print: bool,
}

/// The override to create: named after the policy, with a unique suffix from the API server.
pub fn build(policy: &str, duration: Duration, reason: &str) -> Result<ErrorBudgetOverride, String> {
    if reason.trim().is_empty() {
        return Err("--reason must say why the override is needed, e.g. \"hotfix for INC-123\"".into());
    }
    let mut o = ErrorBudgetOverride::new(
        "",
        ErrorBudgetOverrideSpec {
            policy: policy.to_string(),
            duration: duration.to_string(),
            reason: reason.trim().to_string(),
            requested_by: None,
        },
    );
    o.metadata.name = None;
    o.metadata.generate_name = Some(format!("{policy}-"));
    Ok(o)
}

/// Checks the policy and creates the override; returns what to tell the user.
pub async fn run(args: Args) -> Result<String, String> {
    let mut o = build(&args.policy, args.duration, &args.reason)?;
    if args.print {
        o.metadata.namespace = args.namespace.clone();
        return serde_yaml::to_string(&o).map_err(|e| e.to_string());
    }
    let client = Client::try_default()
        .await
        .map_err(|e| format!("cannot reach the cluster: {e}"))?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let policies: Api<ErrorBudgetPolicy> = Api::namespaced(client.clone(), &ns);
    let policy = policies
        .get_opt(&args.policy)
        .await
        .map_err(|e| format!("cannot read ErrorBudgetPolicy {ns}/{}: {e}", args.policy))?
        .ok_or_else(|| format!("there is no ErrorBudgetPolicy {ns}/{}", args.policy))?;
    if let Ok(max) = Duration::parse(&policy.spec.max_override)
        && args.duration > max
    {
        return Err(format!(
            "--for {} is longer than the policy's maxOverride {max}; ask for at most {max}",
            args.duration
        ));
    }
    let api: Api<ErrorBudgetOverride> = Api::namespaced(client, &ns);
    let created = api
        .create(&PostParams::default(), &o)
        .await
        .map_err(|e| format!("cannot create the ErrorBudgetOverride: {e}"))?;
    let stage = policy.status.map(|s| s.stage).unwrap_or_default();
    let stage = if stage.is_empty() {
        "no stage".to_string()
    } else {
        format!("stage {stage}")
    };
    Ok(format!(
        "errorbudgetoverride {ns}/{} created: policy {} ({stage}) releases what it holds for {} from now ({}).\n\
         Watch: kubectl get ebp {} -n {ns}; end it early: kubectl delete ebo {} -n {ns}",
        created.name_any(),
        args.policy,
        args.duration,
        args.reason.trim(),
        args.policy,
        created.name_any()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_named_override_and_refuses_an_empty_reason() {
        let o = build("checkout", Duration::hours(2), " hotfix for INC-123 ").unwrap();
        assert_eq!(o.metadata.generate_name.as_deref(), Some("checkout-"));
        assert_eq!(o.spec.duration, "2h");
        assert_eq!(o.spec.reason, "hotfix for INC-123");
        assert!(build("checkout", Duration::hours(2), "  ").is_err());
    }
}
