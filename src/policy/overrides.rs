//! ErrorBudgetOverrides: active from creation for their duration, rejected when longer than
//! the policy's `maxOverride` (and [`MAX_OVERRIDE`] whatever the policy says) or without a
//! reason. A pure function of the spec, the creation time and now, so the state never depends
//! on the operator having watched it happen.

use jiff::Timestamp;

use crate::api::bounds::{self, MAX_OVERRIDE};
use crate::api::{ErrorBudgetOverride, ErrorBudgetOverrideSpec, OverrideState};
use crate::duration::Duration;
use crate::validate::Problem;

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

/// What is wrong with an override's spec on its own (the CRD's bounds, in its words), without
/// its policy or the time.
pub fn problems(spec: &ErrorBudgetOverrideSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| {
        problems.push(Problem {
            field: field.into(),
            message,
        })
    };
    if spec.policy.is_empty() {
        problem("spec.policy", "must name an ErrorBudgetPolicy".into());
    } else if let Err(e) = bounds::length(&spec.policy, bounds::NAME_LEN) {
        problem("spec.policy", e);
    }
    if let Err(e) = bounds::duration(&spec.duration, bounds::POSITIVE, MAX_OVERRIDE, "2h") {
        problem("spec.duration", e);
    }
    if spec.reason.trim().is_empty() {
        problem(
            "spec.reason",
            "must say why the override is needed, e.g. hotfix for INC-123".into(),
        );
    } else if let Err(e) = bounds::length(&spec.reason, bounds::TEXT_LEN) {
        problem("spec.reason", e);
    }
    if let Some(by) = &spec.requested_by
        && let Err(e) = bounds::length(by, bounds::TEXT_LEN)
    {
        problem("spec.requestedBy", e);
    }
    problems
}

pub fn evaluate(spec: &ErrorBudgetOverrideSpec, created: Timestamp, max: Duration, now: Timestamp) -> Evaluated {
    let rejected = |message: String| Evaluated {
        state: OverrideState::Rejected,
        expires_at: None,
        message,
    };
    if let Some(p) = problems(spec).first() {
        return rejected(p.to_string());
    }
    let duration = match bounds::duration(&spec.duration, bounds::POSITIVE, MAX_OVERRIDE, "2h") {
        Ok(d) => d,
        Err(e) => return rejected(format!("spec.duration: {e}")),
    };
    let max = max.min(MAX_OVERRIDE);
    if duration > max {
        return rejected(format!(
            "spec.duration {duration} is longer than the policy's maxOverride {max}; create one of at most {max}"
        ));
    }
    let Some(expires_at) = duration.checked_after(created) else {
        return rejected(format!(
            "spec.duration {duration} from its creation at {} ends past the latest time there is",
            crate::api::rfc3339(created)
        ));
    };
    let at = crate::api::rfc3339(expires_at);
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

/// An override in force: its name, who asked for it and why, and until when.
#[derive(Clone, Debug, PartialEq)]
pub struct Active {
    pub name: String,
    /// `by alice@example.com: hotfix for INC-123`.
    pub why: String,
    pub until: Timestamp,
}

/// An override object evaluated at `now` under its policy's `max`; `None` until the API server
/// has stamped its creation.
pub fn evaluate_object(o: &ErrorBudgetOverride, max: Duration, now: Timestamp) -> Option<Evaluated> {
    let created = o.metadata.creation_timestamp.as_ref()?;
    Some(evaluate(&o.spec, created.0, max, now))
}

impl Evaluated {
    /// What the override `o` says while this evaluation finds it in force.
    pub fn active(&self, o: &ErrorBudgetOverride) -> Option<Active> {
        match (self.state, self.expires_at) {
            (OverrideState::Active, Some(until)) => Some(Active {
                name: o.metadata.name.clone().unwrap_or_default(),
                why: format!("by {}: {}", requester(&o.spec), o.spec.reason),
                until,
            }),
            _ => None,
        }
    }
}

/// The overrides of the policy named `policy` in force at `now` under its `max`, in the order
/// given.
pub fn active<'a>(
    overrides: impl IntoIterator<Item = &'a ErrorBudgetOverride>,
    policy: &str,
    max: Duration,
    now: Timestamp,
) -> Vec<Active> {
    overrides
        .into_iter()
        .filter(|o| o.spec.policy == policy)
        .filter_map(|o| evaluate_object(o, max, now)?.active(o))
        .collect()
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use proptest::prelude::*;

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

    #[test]
    fn thirty_days_at_most_whatever_the_policy_allows() {
        let created = Timestamp::from_second(1_800_000_000).unwrap();
        let huge = Duration::from_millis(u64::MAX);
        let e = evaluate(&spec("30d", "x"), created, huge, created);
        assert_eq!(e.state, OverrideState::Active);
        assert_eq!(e.expires_at, Some(created + SignedDuration::from_hours(720)));
        for past in ["30d1ms", "10000y", "9999999999999y"] {
            let e = evaluate(&spec(past, "x"), created, huge, created);
            assert_eq!(e.state, OverrideState::Rejected, "{past}");
            assert!(
                e.message
                    .starts_with("spec.duration: must be a Prometheus duration of at most 30d"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn strings_at_their_bound_and_just_past_it() {
        let fields = |policy: usize, reason: usize| -> Vec<String> {
            let mut s = spec("2h", &"r".repeat(reason));
            s.policy = "p".repeat(policy);
            problems(&s).iter().map(ToString::to_string).collect()
        };
        assert!(fields(253, 1024).is_empty());
        assert_eq!(
            fields(254, 1025),
            [
                "spec.policy: must be at most 253 characters (got 254)",
                "spec.reason: must be at most 1024 characters (got 1025)"
            ]
        );
        assert_eq!(fields(0, 1), ["spec.policy: must name an ErrorBudgetPolicy"]);
    }

    #[test]
    fn an_expiry_past_the_end_of_time_is_rejected_not_a_panic() {
        let e = evaluate(&spec("30d", "x"), Timestamp::MAX, MAX_OVERRIDE, Timestamp::MAX);
        assert_eq!(e.state, OverrideState::Rejected);
        assert!(
            e.message.contains("ends past the latest time there is"),
            "{}",
            e.message
        );
        let e = evaluate(&spec("1ms", "x"), Timestamp::MIN, MAX_OVERRIDE, Timestamp::MAX);
        assert_eq!(e.state, OverrideState::Expired);
    }

    proptest! {
        /// Any duration, cap, creation and evaluation time: a state, never a panic; active
        /// only for at most the cap and 30 days.
        #[test]
        fn any_times_any_durations(
            n in any::<u64>(),
            unit in prop::sample::select(vec!["ms", "s", "m", "h", "d", "w", "y"]),
            max in any::<u64>(),
            created in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
            now in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
        ) {
            let created = Timestamp::from_second(created).unwrap();
            let now = Timestamp::from_second(now).unwrap();
            let max = Duration::from_millis(max);
            let e = evaluate(&spec(&format!("{n}{unit}"), "x"), created, max, now);
            if let Some(at) = e.expires_at {
                let lasts = at.duration_since(created);
                prop_assert!(lasts <= SignedDuration::from_hours(720));
                prop_assert!(lasts.as_millis() <= i128::from(max.as_millis()));
            }
        }
    }
}
