//! `slo-warden check`: reads the policies (and the SLO, the overrides, the Namespace) with the
//! caller's kubeconfig and prints the gate's answer; the exit code is the answer (0 go, 1 stop,
//! 2 unknown). A cluster that cannot be reached or read in time is an unknown answer, never a
//! go.

use std::time::Duration as StdDuration;

use jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client};
use serde::Serialize;

use super::{Answer, Finding, OnUnknown, combine, exit_code, judge};
use crate::api::{ErrorBudgetOverride, ErrorBudgetPolicy, ServiceLevelObjective};
use crate::duration::Duration;
use crate::enforce::claim::{FREEZE, FROZEN_LABEL, Observed};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Namespace whose releases to check (default: the kubeconfig's).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Only this ErrorBudgetPolicy.
    #[arg(long, conflicts_with = "slo")]
    pub policy: Option<String>,
    /// Only the ErrorBudgetPolicies that select this ServiceLevelObjective.
    #[arg(long)]
    pub slo: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// When slo-warden cannot tell (a policy not evaluated or not Ready, its data missing, the
    /// cluster unreachable): exit 2 (fail), 0 (allow) or 1 (deny).
    #[arg(long, value_enum, default_value_t = OnUnknown::Fail)]
    pub on_unknown: OnUnknown,
    /// How long to wait for the cluster before the answer is unknown.
    #[arg(long, default_value = "15s", value_parser = Duration::parse)]
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// The answer as `--output json` prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub answer: Answer,
    pub exit_code: u8,
    pub namespace: String,
    pub checked_at: String,
    pub policies: Vec<Finding>,
}

/// Runs the check; returns what to print and the exit code.
pub async fn run(args: Args) -> (String, u8) {
    let now = Timestamp::now();
    let wait = StdDuration::from_millis(args.timeout.as_millis());
    let (namespace, findings) = match tokio::time::timeout(wait, gather(&args, now)).await {
        Ok(Ok(found)) => found,
        Ok(Err((namespace, why))) => (namespace, vec![unknown(&why)]),
        Err(_) => (
            args.namespace.clone().unwrap_or_default(),
            vec![unknown(&format!("no answer from the cluster within {}", args.timeout))],
        ),
    };
    let answer = combine(&findings);
    let code = exit_code(answer, args.on_unknown);
    let out = match args.output {
        Output::Text => {
            let mut text = super::text(&namespace, answer, &findings, now);
            if answer == Answer::Unknown && args.on_unknown != OnUnknown::Fail {
                text.push_str(&format!(
                    "  --on-unknown {}: exit {code}\n",
                    if code == 0 { "allow" } else { "deny" }
                ));
            }
            text
        }
        Output::Json => {
            let report = Report {
                answer,
                exit_code: code,
                namespace,
                checked_at: crate::api::rfc3339(now),
                policies: findings,
            };
            serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
        }
    };
    (out, code)
}

/// A finding about the check itself (the cluster, a name that is not there).
fn unknown(why: &str) -> Finding {
    Finding {
        policy: String::new(),
        answer: Answer::Unknown,
        stage: None,
        since: None,
        reason: why.to_string(),
        override_command: None,
    }
}

/// What the cluster says: the namespace and each policy's finding.
async fn gather(args: &Args, now: Timestamp) -> Result<(String, Vec<Finding>), (String, String)> {
    let client = Client::try_default().await.map_err(|e| {
        (
            args.namespace.clone().unwrap_or_default(),
            format!("cannot reach the cluster: {e}"),
        )
    })?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let fail = |what: String| (ns.clone(), what);
    let policies: Api<ErrorBudgetPolicy> = Api::namespaced(client.clone(), &ns);
    let selected: Vec<ErrorBudgetPolicy> = match (&args.policy, &args.slo) {
        (Some(name), _) => match policies.get_opt(name).await {
            Ok(Some(p)) => vec![p],
            Ok(None) => return Err(fail(format!("there is no ErrorBudgetPolicy {ns}/{name}"))),
            Err(e) => return Err(fail(format!("cannot read ErrorBudgetPolicy {ns}/{name}: {e}"))),
        },
        (None, slo) => {
            let all = policies
                .list(&ListParams::default())
                .await
                .map_err(|e| fail(format!("cannot list the ErrorBudgetPolicies of {ns}: {e}")))?
                .items;
            match slo {
                None => all,
                Some(name) => {
                    let slos: Api<ServiceLevelObjective> = Api::namespaced(client.clone(), &ns);
                    let slo = match slos.get_opt(name).await {
                        Ok(Some(s)) => s,
                        Ok(None) => return Err(fail(format!("there is no ServiceLevelObjective {ns}/{name}"))),
                        Err(e) => return Err(fail(format!("cannot read ServiceLevelObjective {ns}/{name}: {e}"))),
                    };
                    all.into_iter()
                        .filter(|p| crate::policy::select::selects(p, &slo))
                        .collect()
                }
            }
        }
    };
    // Overrides lift a stage; one that cannot be read lifts nothing (the answer only gets
    // stricter).
    let overrides: Vec<ErrorBudgetOverride> = Api::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut findings: Vec<Finding> = selected.iter().map(|p| judge(p, &overrides, now)).collect();
    // A namespace frozen by hand (no policy holds it) refuses every release too. Callers that
    // may not read Namespaces get the policies' answer alone.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    if let Ok(Some(n)) = namespaces.get_opt(&ns).await {
        let labels = n.metadata.labels.unwrap_or_default();
        let annotations = n.metadata.annotations.unwrap_or_default();
        let frozen = labels.get(FROZEN_LABEL).is_some_and(|v| v == "true");
        if frozen && Observed::new(true, &annotations, FREEZE).holders.is_empty() {
            findings.push(Finding {
                policy: String::new(),
                answer: Answer::Stop,
                stage: None,
                since: None,
                reason: format!(
                    "namespace {ns} is labelled {FROZEN_LABEL}=true by hand (no ErrorBudgetPolicy holds it); \
                     kubectl label namespace {ns} {FROZEN_LABEL}- releases it"
                ),
                override_command: None,
            });
        }
    }
    Ok((ns, findings))
}
