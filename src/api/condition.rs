//! Conditions shared by our resources: the list-map schema and a helper that sets one condition,
//! keeping `lastTransitionTime` when the status does not change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::{Schema, SchemaGenerator, json_schema};

/// `conditions` as a list-map keyed by `type`, so server-side apply merges entries by type.
pub fn conditions_schema(generator: &mut SchemaGenerator) -> Schema {
    let item = generator.subschema_for::<Condition>();
    json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": item,
    })
}

/// Condition types and status values as the API spells them.
pub const READY: &str = "Ready";
pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
/// The condition type saying whether an SLO's signal can be trusted.
pub const SIGNAL_HEALTHY: &str = "SignalHealthy";
/// Its reason while Prometheus holds less of the window than the window (a new SLO).
pub const HISTORY_SHORT: &str = "HistoryShort";

/// The longest condition message kept (characters), as `metav1.Condition` bounds it: a message
/// naming every SLO a policy selects grows with them, and the status must stay writable.
pub const MESSAGE_MAX: usize = 32_768;

/// Builds the condition to store: `lastTransitionTime` is carried over from `previous` when the
/// status is unchanged, so rewriting a condition with a new message does not look like a flap.
/// A message past [`MESSAGE_MAX`] is cut short, an ellipsis marking the cut.
pub fn next_condition(
    previous: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: jiff::Timestamp,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: {
            let message = message.into();
            if message.len() > MESSAGE_MAX {
                super::bounds::cut(&message, MESSAGE_MAX)
            } else {
                message
            }
        },
        observed_generation,
        last_transition_time,
    }
}

/// Sets the conditions of one status write: each carries its `lastTransitionTime` over from
/// `previous` while its status is unchanged (see [`next_condition`]), and says which
/// `generation` it describes.
pub struct Setter<'a> {
    pub previous: &'a [Condition],
    pub generation: Option<i64>,
    pub now: jiff::Timestamp,
}

impl Setter<'_> {
    /// Puts the condition of `type_` (`(status, reason, message)`) in `conditions`, in place of
    /// the one of that type or after the others.
    pub fn set(&self, conditions: &mut Vec<Condition>, type_: &str, (status, reason, message): (&str, &str, String)) {
        let c = next_condition(self.previous, type_, status, reason, message, self.generation, self.now);
        match conditions.iter_mut().find(|x| x.type_ == type_) {
            Some(slot) => *slot = c,
            None => conditions.push(c),
        }
    }
}

/// `conditions` with `next` in place of the condition of its type, ordered by type: the order
/// every writer of a status keeps, so that none rewrites a list for its order alone.
pub fn replaced(conditions: &[Condition], next: Condition) -> Vec<Condition> {
    let mut all: Vec<Condition> = conditions.iter().filter(|c| c.type_ != next.type_).cloned().collect();
    all.push(next);
    all.sort_by(|a, b| a.type_.cmp(&b.type_));
    all
}

/// The same conditions, in whatever order (a list holds each type once).
pub fn same_set(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len() && a.iter().all(|c| b.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_condition_keeps_the_others_in_order_of_type() {
        let t = jiff::Timestamp::from_second(1_000).unwrap();
        let signal = next_condition(&[], "SignalHealthy", TRUE, "SignalHealthy", "m", Some(1), t);
        let ready = next_condition(&[], READY, TRUE, "RulesApplied", "m", Some(1), t);
        let list = replaced(std::slice::from_ref(&signal), ready.clone());
        assert_eq!(list, [ready.clone(), signal.clone()]);
        let newer = next_condition(&list, "SignalHealthy", FALSE, "HistoryShort", "n", Some(1), t);
        assert_eq!(replaced(&list, newer.clone()), [ready.clone(), newer.clone()]);
        assert!(same_set(&[signal.clone(), ready.clone()], &list));
        assert!(!same_set(&[newer, ready.clone()], &list));
        assert!(!same_set(&[ready], &list));
    }

    #[test]
    fn a_message_past_the_bound_is_cut() {
        let t = jiff::Timestamp::from_second(1_000).unwrap();
        let long = "slo-0001 (5m, 30m), ".repeat(5_000);
        let c = next_condition(&[], READY, FALSE, "NoData", long.clone(), Some(1), t);
        assert_eq!(c.message.chars().count(), MESSAGE_MAX + 1);
        assert!(c.message.ends_with('…') && long.starts_with(c.message.trim_end_matches('…')));
        let short = next_condition(&[], READY, TRUE, "Ok", "fine", Some(1), t);
        assert_eq!(short.message, "fine");
    }

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let t0 = jiff::Timestamp::from_second(1_000).unwrap();
        let t1 = jiff::Timestamp::from_second(2_000).unwrap();
        let first = next_condition(&[], READY, TRUE, "Applied", "ok", Some(1), t0);
        let same = next_condition(
            std::slice::from_ref(&first),
            READY,
            TRUE,
            "Applied",
            "still ok",
            Some(2),
            t1,
        );
        assert_eq!(same.last_transition_time, Time(t0));
        assert_eq!(same.observed_generation, Some(2));
        let flipped = next_condition(&[first], READY, FALSE, "InvalidSpec", "bad", Some(3), t1);
        assert_eq!(flipped.last_transition_time, Time(t1));
    }
}
