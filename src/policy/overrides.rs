//! ErrorBudgetOverrides: active from creation for their duration, rejected when longer than
//! the policy's `maxOverride` or without a reason. A pure function of the spec, the creation
//! time and now, so the state never depends on the operator having watched it happen.

use jiff::{SignedDuration, Timestamp};

use crate::api::{ErrorBudgetOverrideSpec, OverrideState};
use crate::duration::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct Evaluated {
    pub state: OverrideState,
    pub expires_at: Option<Timestamp>,
    pub message: String,
}

/// Who asked for an override, as the webhook stamped it.
pub fn requester(spec: &ErrorBudgetOverrideSpec) -> &str {
    spec.requested_by.as_deref().unwrap_or("an unknown user")
}

pub fn evaluate(spec: &ErrorBudgetOverrideSpec, created: Timestamp, max: Duration, now: Timestamp) -> Evaluated {
    let rejected = |message: String| Evaluated {
        state: OverrideState::Rejected,
        expires_at: None,
        message,
    };
    if spec.reason.trim().is_empty() {
        return rejected("spec.reason is empty: say why the override is needed, e.g. hotfix for INC-123".into());
    }
    let duration = match Duration::parse(&spec.duration) {
        Ok(d) => d,
        Err(e) => return rejected(format!("spec.duration: {e}")),
    };
    if duration > max {
        return rejected(format!(
            "spec.duration {duration} is longer than the policy's maxOverride {max}; create one of at most {max}"
        ));
    }
    let expires_at = created + SignedDuration::from_millis(duration.as_millis() as i64);
    let at = expires_at.strftime("%Y-%m-%dT%H:%M:%SZ");
    if now < expires_at {
        Evaluated {
            state: OverrideState::Active,
            expires_at: Some(expires_at),
            message: format!(
                "policy {} is lifted until {at} by {}: {}",
                spec.policy,
                requester(spec),
                spec.reason
            ),
        }
    } else {
        Evaluated {
            state: OverrideState::Expired,
            expires_at: Some(expires_at),
            message: format!("expired at {at}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(duration: &str, reason: &str) -> ErrorBudgetOverrideSpec {
        ErrorBudgetOverrideSpec {
            policy: "checkout".into(),
            duration: duration.into(),
            reason: reason.into(),
            requested_by: Some("alice".into()),
        }
    }

    #[test]
    fn active_for_its_duration_then_expired() {
        let created = Timestamp::from_second(1_800_000_000).unwrap();
        let max = Duration::hours(4);
        let e = evaluate(&spec("2h", "hotfix for INC-123"), created, max, created);
        assert_eq!(e.state, OverrideState::Active);
        assert_eq!(e.expires_at, Some(created + SignedDuration::from_hours(2)));
        assert!(e.message.ends_with("by alice: hotfix for INC-123"), "{}", e.message);
        let later = created + SignedDuration::from_hours(2);
        assert_eq!(
            evaluate(&spec("2h", "x"), created, max, later).state,
            OverrideState::Expired
        );
    }

    #[test]
    fn over_the_cap_or_without_reason_is_rejected() {
        let created = Timestamp::from_second(1_800_000_000).unwrap();
        let e = evaluate(&spec("5h", "x"), created, Duration::hours(4), created);
        assert_eq!(e.state, OverrideState::Rejected);
        assert!(
            e.message.contains("longer than the policy's maxOverride 4h"),
            "{}",
            e.message
        );
        let e = evaluate(&spec("1h", "  "), created, Duration::hours(4), created);
        assert_eq!(e.state, OverrideState::Rejected);
    }
}
