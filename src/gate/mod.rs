//! The release gate: whether a release may go now, as the cluster's ErrorBudgetPolicies say it
//! (`slo-warden check`, for pipelines, Argo CD / Flux hooks and people). Pure: the answer from
//! the policies' status and the SLOs they act for; [`cli`] reads them with the caller's
//! credentials, so RBAC decides who may ask.
//!
//! A policy stops releases while a stage is in force and no ErrorBudgetOverride lifts it (what
//! the admission webhook refuses, and what the stage's actions would undo or hold). It cannot
//! say when it is not evaluated for its current spec, not Ready, or cannot read its SLOs'
//! data (unless a stage holds anyway: a freeze is kept on missing data).

pub mod cli;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde::Serialize;

use crate::api::condition::{FALSE, READY, TRUE};
use crate::api::{ErrorBudgetOverride, ErrorBudgetPolicy, OverrideState};
use crate::policy::status::{DATA_AVAILABLE, ENFORCING};

/// What the gate says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Answer {
    /// Releases may go.
    Go,
    /// A stage is in force: releases are refused (exit 1).
    Stop,
    /// The policies cannot tell (exit 2, unless `--on-unknown` says otherwise).
    Unknown,
}

impl Answer {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Go => "go",
            Self::Stop => "stop",
            Self::Unknown => "unknown",
        }
    }
}

/// One policy's answer and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// `namespace/name` of the policy.
    pub policy: String,
    pub answer: Answer,
    /// The stage in force, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Since when the stage (or, for an unknown answer, the condition) holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Which SLO and which value put the policy in its stage, or why it cannot tell.
    pub reason: String,
    /// How to release anyway (a stop), as the webhook says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_command: Option<String>,
}

/// What one policy says about releasing at `now`, with the namespace's ErrorBudgetOverrides.
pub fn judge(policy: &ErrorBudgetPolicy, overrides: &[ErrorBudgetOverride], now: Timestamp) -> Finding {
    let ns = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let finding = |answer, stage: Option<&str>, since: Option<String>, reason: String| Finding {
        policy: format!("{ns}/{name}"),
        answer,
        stage: stage.filter(|s| !s.is_empty()).map(String::from),
        since,
        reason,
        override_command: None,
    };
    let Some(status) = policy.status.as_ref() else {
        return finding(
            Answer::Unknown,
            None,
            None,
            "the operator has not evaluated this policy yet".into(),
        );
    };
    let condition = |type_: &str| status.conditions.iter().find(|c| c.type_ == type_);
    let since_of = |c: &Condition| Some(crate::api::rfc3339(c.last_transition_time.0));
    // A stage in force stops releases even while the operator has not evaluated an edit yet:
    // the freeze holds until it says otherwise.
    let stage = status.stage.as_str();
    let stage_since = status.since.as_ref().map(|t| crate::api::rfc3339(t.0));
    if !stage.is_empty() {
        // An active override lifts the stage: releases go, and the answer says whose. Read
        // from the overrides themselves: the policy's Overridden condition may be a poll old,
        // the override expired since.
        let active = overrides.iter().find(|o| {
            o.spec.policy == name
                && o.status.as_ref().is_some_and(|s| {
                    s.state == Some(OverrideState::Active) && s.expires_at.as_ref().is_some_and(|t| t.0 > now)
                })
        });
        if let Some(o) = active {
            let until = o
                .status
                .as_ref()
                .and_then(|s| s.expires_at.as_ref())
                .map(|t| crate::api::rfc3339(t.0));
            return finding(
                Answer::Go,
                Some(stage),
                stage_since,
                format!(
                    "stage {stage} is in force, lifted by ErrorBudgetOverride {} ({}, requested by {}) until {}",
                    o.name_any(),
                    o.spec.reason,
                    o.spec.requested_by.as_deref().unwrap_or("unknown"),
                    until.unwrap_or_default()
                ),
            );
        }
        // A dry-run policy holds nothing.
        if let Some(c) = condition(ENFORCING).filter(|c| c.status == FALSE && c.reason == "DryRun") {
            return finding(Answer::Go, Some(stage), stage_since, c.message.clone());
        }
        let mut f = finding(Answer::Stop, Some(stage), stage_since, status.reason.clone());
        f.override_command = Some(format!(
            "slo-warden override {name} -n {ns} --for 1h --reason \"<why, e.g. the incident>\""
        ));
        return f;
    }
    if status.observed_generation.is_none() || status.observed_generation != policy.metadata.generation {
        return finding(
            Answer::Unknown,
            None,
            None,
            format!(
                "the operator has not evaluated this policy's current spec yet (generation {}, evaluated {})",
                policy.metadata.generation.unwrap_or_default(),
                status
                    .observed_generation
                    .map_or("never".to_string(), |g| g.to_string())
            ),
        );
    }
    if let Some(c) = condition(READY).filter(|c| c.status != TRUE) {
        return finding(
            Answer::Unknown,
            None,
            since_of(c),
            format!("the policy is not Ready ({}): {}", c.reason, c.message),
        );
    }
    if let Some(c) = condition(DATA_AVAILABLE).filter(|c| c.status != TRUE) {
        return finding(
            Answer::Unknown,
            None,
            since_of(c),
            format!("the policy cannot read its SLOs' data ({}): {}", c.reason, c.message),
        );
    }
    finding(Answer::Go, None, None, "no stage is in force".into())
}

/// The gate's answer for several policies: a stop if any stops, else unknown if any cannot
/// tell, else go (no policy at all: go, nothing acts on releases here).
pub fn combine(findings: &[Finding]) -> Answer {
    if findings.iter().any(|f| f.answer == Answer::Stop) {
        Answer::Stop
    } else if findings.iter().any(|f| f.answer == Answer::Unknown) {
        Answer::Unknown
    } else {
        Answer::Go
    }
}

/// What to do with an answer the policies cannot give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnUnknown {
    /// Exit 2.
    Fail,
    /// Let the release go (exit 0), saying so.
    Allow,
    /// Stop the release (exit 1).
    Deny,
}

/// The exit code of an answer: 0 go, 1 stop, 2 unknown (or what `on_unknown` makes of it).
pub fn exit_code(answer: Answer, on_unknown: OnUnknown) -> u8 {
    match (answer, on_unknown) {
        (Answer::Go, _) | (Answer::Unknown, OnUnknown::Allow) => 0,
        (Answer::Stop, _) | (Answer::Unknown, OnUnknown::Deny) => 1,
        (Answer::Unknown, OnUnknown::Fail) => 2,
    }
}

/// The report a person reads (`--output text`).
pub fn text(namespace: &str, answer: Answer, findings: &[Finding], at: Timestamp) -> String {
    let mut out = match answer {
        Answer::Go => format!("GO: releases in namespace {namespace} may go"),
        Answer::Stop => format!("STOP: releases in namespace {namespace} are frozen"),
        Answer::Unknown => format!("UNKNOWN: slo-warden cannot tell whether releases in namespace {namespace} may go"),
    };
    out.push_str(&format!(" (as of {})\n", crate::api::rfc3339(at)));
    if findings.is_empty() {
        out.push_str("  no ErrorBudgetPolicy acts on it\n");
    }
    for f in findings {
        if f.policy.is_empty() {
            out.push_str(&format!("  {}: {}\n", f.answer.as_str(), f.reason));
            continue;
        }
        out.push_str(&format!("  ErrorBudgetPolicy {}: {}", f.policy, f.answer.as_str()));
        if let Some(stage) = &f.stage {
            out.push_str(&format!(", stage {stage}"));
        }
        if let Some(since) = &f.since {
            out.push_str(&format!(" since {since}"));
        }
        out.push_str(&format!(": {}\n", f.reason));
        if let Some(command) = &f.override_command {
            out.push_str(&format!("    to release anyway, get an override: {command}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policy(generation: i64, status: serde_json::Value) -> ErrorBudgetPolicy {
        serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetPolicy",
            "metadata": {"name": "checkout", "namespace": "shop", "generation": generation},
            "spec": {"slos": {"names": ["checkout"]}, "stages": [{"name": "fast-burn", "when": [{"burnRate": {"window": "1h", "above": 14.4}}],
                                  "actions": ["freezeNamespace"]}]},
            "status": status,
        }))
        .unwrap()
    }

    fn condition(type_: &str, status: &str, reason: &str, message: &str) -> serde_json::Value {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastTransitionTime": "2027-01-15T08:00:00Z"})
    }

    fn now() -> Timestamp {
        "2027-01-15T09:00:00Z".parse().unwrap()
    }

    fn judge(p: &ErrorBudgetPolicy) -> Finding {
        super::judge(p, &[], now())
    }

    fn an_override(until: &str, state: &str) -> ErrorBudgetOverride {
        serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetOverride",
            "metadata": {"name": "checkout-x7", "namespace": "shop"},
            "spec": {"policy": "checkout", "duration": "2h", "reason": "INC-9", "requestedBy": "alice"},
            "status": {"state": state, "expiresAt": until, "message": ""},
        }))
        .unwrap()
    }

    fn ready() -> serde_json::Value {
        condition("Ready", "True", "Evaluated", "")
    }

    #[test]
    fn a_stage_in_force_stops_releases_with_the_reason_and_the_override() {
        let p = policy(
            2,
            json!({"observedGeneration": 2, "stage": "fast-burn", "since": "2027-01-15T08:02:00Z",
                   "reason": "SLO checkout: burn rate 1h 31.2 > 14.4",
                   "conditions": [ready(), condition("DataAvailable", "True", "DataAvailable", "")]}),
        );
        let f = judge(&p);
        assert_eq!(f.answer, Answer::Stop);
        assert_eq!(f.stage.as_deref(), Some("fast-burn"));
        assert_eq!(f.since.as_deref(), Some("2027-01-15T08:02:00Z"));
        assert_eq!(f.reason, "SLO checkout: burn rate 1h 31.2 > 14.4");
        assert_eq!(
            f.override_command.as_deref(),
            Some("slo-warden override checkout -n shop --for 1h --reason \"<why, e.g. the incident>\"")
        );
        assert_eq!(exit_code(combine(&[f]), OnUnknown::Allow), 1, "a stop is never allowed");
    }

    #[test]
    fn a_freeze_held_on_missing_data_still_stops() {
        let p = policy(
            1,
            json!({"observedGeneration": 1, "stage": "fast-burn", "reason": "held: data missing",
                   "conditions": [ready(), condition("DataAvailable", "False", "NoData", "missing from Prometheus: shop/checkout")]}),
        );
        assert_eq!(judge(&p).answer, Answer::Stop);
    }

    #[test]
    fn an_override_or_a_dry_run_lets_releases_go_and_says_so() {
        let lifted = policy(
            1,
            json!({"observedGeneration": 1, "stage": "fast-burn", "reason": "r",
                   "conditions": [ready(), condition("Overridden", "True", "OverrideActive", "")]}),
        );
        let f = super::judge(&lifted, &[an_override("2027-01-15T10:00:00Z", "Active")], now());
        assert_eq!(f.answer, Answer::Go);
        assert_eq!(
            f.reason,
            "stage fast-burn is in force, lifted by ErrorBudgetOverride checkout-x7 (INC-9, requested by alice) until 2027-01-15T10:00:00Z"
        );
        // Expired since the policy's last poll, or rejected: the stage stops releases again.
        let expired = super::judge(&lifted, &[an_override("2027-01-15T08:59:00Z", "Active")], now());
        assert_eq!(expired.answer, Answer::Stop);
        let rejected = super::judge(&lifted, &[an_override("2027-01-15T10:00:00Z", "Rejected")], now());
        assert_eq!(rejected.answer, Answer::Stop);
        let dry = policy(
            1,
            json!({"observedGeneration": 1, "stage": "fast-burn", "reason": "r",
                   "conditions": [ready(), condition("Enforcing", "False", "DryRun", "dry run: stage fast-burn would hold namespace shop")]}),
        );
        assert_eq!(judge(&dry).answer, Answer::Go);
    }

    #[test]
    fn a_policy_that_cannot_tell_is_unknown() {
        let never = policy(1, serde_json::Value::Null);
        assert_eq!(judge(&never).answer, Answer::Unknown);
        let edited = policy(
            3,
            json!({"observedGeneration": 2, "stage": "fast-burn", "conditions": [ready()]}),
        );
        assert_eq!(
            judge(&edited).answer,
            Answer::Stop,
            "an edit not evaluated yet releases nothing"
        );
        let stale = policy(3, json!({"observedGeneration": 2, "conditions": [ready()]}));
        let f = judge(&stale);
        assert_eq!(f.answer, Answer::Unknown);
        assert!(f.reason.contains("generation 3, evaluated 2"), "{}", f.reason);
        let invalid = policy(
            1,
            json!({"observedGeneration": 1, "conditions": [condition("Ready", "False", "Invalid", "spec.stages[0]: ...")]}),
        );
        assert!(judge(&invalid).reason.contains("not Ready (Invalid)"));
        let blind = policy(
            1,
            json!({"observedGeneration": 1, "conditions": [ready(), condition("DataAvailable", "False", "PrometheusUnavailable", "connection refused")]}),
        );
        let f = judge(&blind);
        assert_eq!(
            (f.answer, f.since.as_deref()),
            (Answer::Unknown, Some("2027-01-15T08:00:00Z"))
        );
        assert_eq!(exit_code(Answer::Unknown, OnUnknown::Fail), 2);
        assert_eq!(exit_code(Answer::Unknown, OnUnknown::Allow), 0);
        assert_eq!(exit_code(Answer::Unknown, OnUnknown::Deny), 1);
    }

    #[test]
    fn a_quiet_policy_lets_releases_go() {
        let quiet = policy(
            1,
            json!({"observedGeneration": 1, "conditions": [ready(), condition("DataAvailable", "True", "DataAvailable", "")]}),
        );
        let f = judge(&quiet);
        assert_eq!(f.answer, Answer::Go);
        // A stop anywhere stops; an unknown beside a go is unknown; nothing at all is go.
        let stop = Finding {
            answer: Answer::Stop,
            ..f.clone()
        };
        let unknown = Finding {
            answer: Answer::Unknown,
            ..f.clone()
        };
        assert_eq!(combine(&[f.clone(), unknown.clone(), stop]), Answer::Stop);
        assert_eq!(combine(&[f.clone(), unknown]), Answer::Unknown);
        assert_eq!(combine(&[]), Answer::Go);
        let report = text("shop", Answer::Go, &[f], "2027-01-15T08:00:00Z".parse().unwrap());
        assert!(report.starts_with("GO: releases in namespace shop may go"), "{report}");
    }
}
