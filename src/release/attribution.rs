//! Who released: the user the API server authenticated for a change of a workload's pod
//! template, as the release-attribution webhook (`POST /mutate/releases`) stamps it on the
//! workload: `slo.warden.dev/released-by: "<template fingerprint> <user>"`.
//!
//! The fingerprint ties the stamp to the template it was made for: when the template changes
//! while the webhook is not called (the operator down: the webhook fails open), the stamp no
//! longer matches and is not believed; the ledger then names the field manager alone
//! (`managedFields`). A stamp names nobody it was not made for.

use ring::digest::{SHA256, digest};
use serde_json::Value;

/// The annotation the webhook stamps on a Deployment or Rollout whose pod template changes.
pub const RELEASED_BY: &str = "slo.warden.dev/released-by";

/// The longest user name kept (the ledger's `changedBy` holds 128 characters).
const USER_CHARS: usize = 100;

/// The fingerprint of a pod template: the first 16 hex digits of the SHA-256 of its JSON (keys
/// sorted, as `serde_json` keeps them), the same whether read from a review or a watch.
pub fn fingerprint(template: &Value) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    digest(&SHA256, &json).as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The pod template of a workload object (`spec.template`), if it has one (a Rollout may
/// reference a workload instead).
pub fn template(object: &Value) -> Option<&Value> {
    object.pointer("/spec/template").filter(|t| t.is_object())
}

/// What the webhook stamps for `user` on an object whose pod template is new: `None` when the
/// object has no template, or when `old` has the same one (scaling, pausing, metadata).
pub fn stamp(object: &Value, old: Option<&Value>, user: &str) -> Option<String> {
    let new = template(object)?;
    if old.and_then(template) == Some(new) {
        return None;
    }
    let user: String = user.chars().filter(|c| !c.is_control()).take(USER_CHARS).collect();
    let user = if user.is_empty() { "unknown" } else { user.as_str() };
    Some(format!("{} {user}", fingerprint(new)))
}

/// The user a stamp names, if it was made for the object's current pod template.
pub fn released_by<'a>(annotation: &'a str, object: &Value) -> Option<&'a str> {
    let (print, user) = annotation.split_once(' ')?;
    let current = template(object)?;
    (!user.is_empty() && print == fingerprint(current)).then_some(user)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(image: &str, replicas: u32) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"replicas": replicas, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": image}]}}}})
    }

    #[test]
    fn a_new_template_is_stamped_with_its_user_and_only_then() {
        let old = deployment("web:1.4.0", 3);
        let new = deployment("web:1.5.0", 3);
        let stamp = stamp(&new, Some(&old), "alice@example.com").expect("a new template");
        assert_eq!(released_by(&stamp, &new), Some("alice@example.com"));
        // Scaling keeps the template: no stamp, the last one stays.
        assert_eq!(super::stamp(&deployment("web:1.4.0", 5), Some(&old), "bob"), None);
        // A creation is a release.
        assert!(super::stamp(&old, None, "bob").is_some());
        // No template (a Rollout referencing a workload): nothing to attribute.
        assert_eq!(super::stamp(&json!({"spec": {"workloadRef": {}}}), None, "bob"), None);
    }

    #[test]
    fn a_stamp_made_for_another_template_names_nobody() {
        let old = deployment("web:1.4.0", 3);
        let new = deployment("web:1.5.0", 3);
        let stamp = stamp(&new, Some(&old), "alice").unwrap();
        // The template changed again without the webhook (the operator down).
        assert_eq!(released_by(&stamp, &deployment("web:1.6.0", 3)), None);
        assert_eq!(released_by(&stamp, &deployment("web:1.5.0", 7)), Some("alice"));
        // A hand-written annotation names nobody unless it carries the fingerprint.
        assert_eq!(released_by("mallory", &new), None);
        assert_eq!(released_by("0000000000000000 mallory", &new), None);
    }

    #[test]
    fn key_order_does_not_change_the_fingerprint() {
        let a: Value =
            serde_json::from_str(r#"{"spec": {"containers": [{"name": "a", "image": "x"}]}, "metadata": {}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"metadata": {}, "spec": {"containers": [{"image": "x", "name": "a"}]}}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 16);
    }

    #[test]
    fn user_names_are_bounded_and_printable() {
        let new = deployment("web:1.5.0", 3);
        let long = "x".repeat(1000) + "\n";
        let stamp = stamp(&new, None, &long).unwrap();
        assert_eq!(released_by(&stamp, &new).unwrap().len(), USER_CHARS);
        let stamp = super::stamp(&new, None, "").unwrap();
        assert_eq!(released_by(&stamp, &new), Some("unknown"));
    }
}
