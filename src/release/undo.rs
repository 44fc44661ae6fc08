//! Rolling a workload back to the revision before its current one, as `kubectl rollout undo`
//! and `kubectl argo rollouts undo` do it (see `docs/design/release-mechanics.md`), planned from
//! fresh copies of the workload and its ReplicaSets. Pure: what to send, or why not.
//!
//! The patch is a JSON patch whose first operation tests the workload's `resourceVersion`
//! (kubectl sends none): a change made since the plan was read fails the patch instead of
//! being overwritten. It marks the workload [`ROLLED_BACK_FROM`] in the same write, so a
//! restart, another replica or the next poll never rolls the same release back twice.
//!
//! Where this differs from kubectl: a Deployment's `slo.warden.dev/*` annotations (the claims
//! of policies) are kept as they are instead of being replaced by the copies its old
//! ReplicaSet carries; and nothing is undone for a workload a GitOps tool manages (its
//! self-heal would put the bad release back).

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::{Map, Value, json};

use crate::kind::Kind;

/// The annotation saying which release slo-warden rolled a workload back from:
/// `<revision>: <images>`.
pub const ROLLED_BACK_FROM: &str = "slo.warden.dev/rolled-back-from";

const DEPLOYMENT_HASH: &str = "pod-template-hash";
const ROLLOUT_HASH: &str = "rollouts-pod-template-hash";

/// The Deployment annotations `kubectl rollout undo` keeps from the Deployment instead of
/// taking them from the ReplicaSet (`annotationsToSkip` in kubectl's `rollback.go`).
const KEPT_BY_KUBECTL: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// A revision of a workload: its number and images.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub revision: u64,
    pub images: Vec<String>,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "revision {} ({})", self.revision, self.images.join(", "))
    }
}

/// What to do about a suspect release.
#[derive(Clone, Debug, PartialEq)]
pub enum Undo {
    /// Send `patch` (a JSON patch): the workload goes back from `from` to `to`.
    Patch { from: Version, to: Version, patch: Value },
    /// A Rollout mid-update: abort it, which sends traffic and pods back to its stable
    /// ReplicaSet (`abortRollouts`).
    Abort { from: Version },
    /// The workload says it was rolled back from this release already.
    Done,
    /// A GitOps tool manages it (`manager`): undoing it in the cluster would be undone by its
    /// self-heal. `to` is what to revert to in Git.
    GitOps {
        manager: String,
        from: Version,
        to: Version,
    },
    /// Why it is not rolled back.
    Refused(String),
}

/// The revision a ReplicaSet runs for its workload (`deployment.kubernetes.io/revision` or
/// `rollout.argoproj.io/revision`: missing is 0, unparsable is none, as kubectl reads them).
fn revision(kind: Kind, rs: &DynamicObject) -> Option<u64> {
    let key = match kind {
        Kind::Rollout => "rollout.argoproj.io/revision",
        _ => "deployment.kubernetes.io/revision",
    };
    match rs.annotations().get(key) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

fn images(template: &Value) -> Vec<String> {
    template["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str().map(String::from))
        .collect()
}

/// `template` without the hash label, and without the empty and null values the API server may
/// or may not keep (`labels: {}`, `resources: {}`): two templates that differ only there are
/// the same pod.
pub fn comparable(template: &Value, hash: &str) -> Value {
    fn strip(v: &Value) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::Object(m) => {
                let m: Map<String, Value> = m.iter().filter_map(|(k, v)| Some((k.clone(), strip(v)?))).collect();
                (!m.is_empty()).then_some(Value::Object(m))
            }
            Value::Array(a) if a.is_empty() => None,
            Value::Array(a) => Some(Value::Array(
                a.iter().map(|v| strip(v).unwrap_or(Value::Null)).collect(),
            )),
            other => Some(other.clone()),
        }
    }
    let mut t = template.clone();
    if let Some(labels) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(hash);
    }
    strip(&t).unwrap_or(Value::Null)
}

/// Whether every field `template` sets is set the same in `replica_set`'s (hash labels aside):
/// how Argo Rollouts compares a Rollout's template with its ReplicaSets'
/// (`DeepDerivative`). A Rollout is a custom resource, so its template keeps only what was
/// written, while a ReplicaSet's has every default the API server fills in.
pub fn derivative(template: &Value, replica_set: &Value, hash: &str) -> bool {
    fn within(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Null, _) => true,
            (Value::Object(a), Value::Object(b)) => a.iter().all(|(k, v)| match b.get(k) {
                Some(w) => within(v, w),
                None => {
                    matches!(v, Value::Null)
                        || v.as_object().is_some_and(|o| o.is_empty())
                        || v.as_array().is_some_and(|x| x.is_empty())
                }
            }),
            (Value::Object(a), Value::Null) => a.is_empty(),
            (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(v, w)| within(v, w)),
            (Value::Array(a), Value::Null) => a.is_empty(),
            (a, b) => a == b,
        }
    }
    within(&comparable(template, hash), &comparable(replica_set, hash))
}

/// The GitOps tool that manages `obj`, read from the marks Argo CD and Flux put on what they
/// apply; `None` for anything else (Helm alone has no self-heal).
pub fn gitops_manager(kind: Kind, obj: &DynamicObject) -> Option<String> {
    let (labels, annotations) = (obj.labels(), obj.annotations());
    let ns = obj.namespace().unwrap_or_default();
    let group_kind = match kind {
        Kind::Rollout => "argoproj.io/Rollout",
        _ => "apps/Deployment",
    };
    // Argo CD's default: `<app>:<group>/<kind>:<namespace>/<name>`, naming the object itself
    // (the Deployment controller copies it onto ReplicaSets, where it names the Deployment).
    if let Some(id) = annotations.get("argocd.argoproj.io/tracking-id")
        && let Some((app, rest)) = id.split_once(':')
        && rest == format!("{group_kind}:{ns}/{}", obj.name_any())
    {
        return Some(format!("Argo CD application {app}"));
    }
    if let Some(name) = labels.get("kustomize.toolkit.fluxcd.io/name") {
        return Some(format!("Flux Kustomization {name}"));
    }
    if let Some(name) = labels.get("helm.toolkit.fluxcd.io/name") {
        return Some(format!("Flux HelmRelease {name}"));
    }
    // Argo CD's label tracking sets only app.kubernetes.io/instance; so does Helm, which says
    // so in app.kubernetes.io/managed-by.
    if let Some(app) = labels.get("app.kubernetes.io/instance")
        && labels.get("app.kubernetes.io/managed-by").map(String::as_str) != Some("Helm")
    {
        return Some(format!(
            "Argo CD application {app} (label app.kubernetes.io/instance; if no Argo CD manages it, remove the label to let slo-warden roll it back)"
        ));
    }
    None
}

/// Plans the rollback of `workload` (fresh from the API server) from its release `suspect`,
/// given every ReplicaSet of its namespace that its selector matches (fresh too). `earlier_ok`
/// says whether the revision before may be rolled back to (it is not itself suspect), or why
/// not.
/// `mid_update`: a Rollout's update is in progress (its pods are not the stable ones yet).
pub fn plan(
    kind: Kind,
    workload: &DynamicObject,
    replica_sets: &[DynamicObject],
    suspect: u64,
    mid_update: bool,
    earlier_ok: impl Fn(&Version, &DynamicObject) -> Result<(), String>,
) -> Undo {
    let name = workload.name_any();
    if let Some(mark) = workload.annotations().get(ROLLED_BACK_FROM)
        && mark.split(':').next().and_then(|r| r.trim().parse::<u64>().ok()) == Some(suspect)
    {
        return Undo::Done;
    }
    let hash = match kind {
        Kind::Rollout => ROLLOUT_HASH,
        _ => DEPLOYMENT_HASH,
    };
    let uid = workload.uid();
    // Its own ReplicaSets, as kubectl's IsControlledBy picks them.
    let mut owned: Vec<(u64, &DynamicObject)> = replica_sets
        .iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
        })
        .filter_map(|rs| Some((revision(kind, rs)?, rs)))
        .collect();
    owned.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
    let version = |(r, rs): &(u64, &DynamicObject)| Version {
        revision: *r,
        images: images(&rs.data["spec"]["template"]),
    };
    let Some(current) = owned.first() else {
        return Undo::Refused(format!("{kind} {name} has no ReplicaSets"));
    };
    let from = version(current);
    if current.0 != suspect {
        return Undo::Refused(format!(
            "{kind} {name} runs revision {} now, not the suspect revision {suspect}: someone released or rolled back since",
            current.0
        ));
    }
    let template = &workload.data["spec"]["template"];
    let same = match kind {
        Kind::Rollout => derivative(template, &current.1.data["spec"]["template"], hash),
        _ => comparable(template, hash) == comparable(&current.1.data["spec"]["template"], hash),
    };
    if !same {
        return Undo::Refused(format!(
            "the pod template of {kind} {name} was changed after revision {suspect} (not rolled out yet): that change is someone's, and is left alone"
        ));
    }
    let Some(previous) = owned.get(1) else {
        return Undo::Refused(format!(
            "{kind} {name} has no revision before {suspect} left (its older ReplicaSets are gone: revisionHistoryLimit)"
        ));
    };
    let to = version(previous);
    if let Err(why) = earlier_ok(&to, previous.1) {
        return Undo::Refused(why);
    }
    if let Some(manager) = gitops_manager(kind, workload) {
        return Undo::GitOps { manager, from, to };
    }
    if kind == Kind::Rollout {
        if !workload.data["spec"]["workloadRef"].is_null() {
            return Undo::Refused(format!(
                "Rollout {name} takes its template from spec.workloadRef: roll back the referenced workload"
            ));
        }
        if mid_update {
            return Undo::Abort { from };
        }
    } else if workload.data["spec"]["paused"].as_bool() == Some(true) {
        // Ours are let go before a rollback is planned: this pause is someone's.
        return Undo::Refused(format!(
            "Deployment {name} is paused, not by this policy: slo-warden never resumes what a person paused (kubectl rollout undo refuses it too)"
        ));
    }
    let mut restored = previous.1.data["spec"]["template"].clone();
    if let Some(labels) = restored.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(hash);
    }
    let mark = format!("{suspect}: {}", from.images.join(", "));
    let annotations = match kind {
        Kind::Rollout => {
            let mut a = workload.annotations().clone();
            a.insert(ROLLED_BACK_FROM.into(), mark);
            a
        }
        _ => deployment_annotations(workload.annotations(), previous.1.annotations(), mark),
    };
    let patch = json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": workload.resource_version()},
        {"op": "replace", "path": "/spec/template", "value": restored},
        // `add` replaces the map when there is one and creates it when there is none.
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
    ]);
    Undo::Patch { from, to, patch }
}

/// A Deployment's annotations after `kubectl rollout undo` to a ReplicaSet: the ReplicaSet's,
/// but for those kubectl keeps from the Deployment and slo-warden's own (the claims on the
/// Deployment now, not the copies the ReplicaSet took when it last ran), with `mark`.
fn deployment_annotations(
    current: &BTreeMap<String, String>,
    replica_set: &BTreeMap<String, String>,
    mark: String,
) -> BTreeMap<String, String> {
    let ours = |k: &str| KEPT_BY_KUBECTL.contains(&k) || k.starts_with("slo.warden.dev/");
    let mut out: BTreeMap<String, String> = replica_set
        .iter()
        .filter(|(k, _)| !ours(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(
        current
            .iter()
            .filter(|(k, _)| ours(k))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    out.insert(ROLLED_BACK_FROM.into(), mark);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(image: &str, annotations: Value, labels: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "d1", "resourceVersion": "77",
                         "annotations": annotations, "labels": labels},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": image, "resources": {}}]}}},
        }))
        .unwrap()
    }

    fn replica_set(name: &str, revision: &str, image: &str, owner: &str, annotations: Value) -> DynamicObject {
        let mut a = annotations;
        a["deployment.kubernetes.io/revision"] = json!(revision);
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "shop", "annotations": a,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                              "uid": owner, "controller": true}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": name}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}},
        }))
        .unwrap()
    }

    fn history() -> Vec<DynamicObject> {
        vec![
            replica_set("web-a", "1", "web:1.3.0", "d1", json!({})),
            replica_set(
                "web-b",
                "2",
                "web:1.4.0",
                "d1",
                json!({"kubernetes.io/change-cause": "ship 1.4.0", "slo.warden.dev/paused-by": "shop/old"}),
            ),
            replica_set("web-c", "3", "web:1.5.0", "d1", json!({})),
            // Another Deployment's, matching the same selector: never picked.
            replica_set("other-z", "9", "web:0.1", "d2", json!({})),
        ]
    }

    fn ok(_: &Version, _: &DynamicObject) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn a_deployment_goes_back_to_the_revision_before_as_kubectl_undo_sends_it() {
        let d = deployment(
            "web:1.5.0",
            json!({"deployment.kubernetes.io/revision": "3", "team": "pay", "slo.warden.dev/paused-by": "shop/checkout"}),
            json!({"app": "web"}),
        );
        let Undo::Patch { from, to, patch } = plan(Kind::Deployment, &d, &history(), 3, false, ok) else {
            panic!("{:?}", plan(Kind::Deployment, &d, &history(), 3, false, ok));
        };
        assert_eq!(from.to_string(), "revision 3 (web:1.5.0)");
        assert_eq!(to.to_string(), "revision 2 (web:1.4.0)");
        assert_eq!(
            patch[0],
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": "77"})
        );
        assert_eq!(
            patch[1],
            json!({"op": "replace", "path": "/spec/template", "value": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:1.4.0"}]}}}),
            "the ReplicaSet's template without its hash label"
        );
        assert_eq!(
            patch[2]["value"],
            json!({
                "kubernetes.io/change-cause": "ship 1.4.0",
                "deployment.kubernetes.io/revision": "3",
                "slo.warden.dev/paused-by": "shop/checkout",
                "slo.warden.dev/rolled-back-from": "3: web:1.5.0",
            }),
            "the ReplicaSet's annotations (its change cause), the Deployment's revision and claims; \
             a Deployment annotation the ReplicaSet lacks goes, as with kubectl"
        );
    }

    #[test]
    fn a_release_is_rolled_back_once() {
        let d = deployment("web:1.4.0", json!({ROLLED_BACK_FROM: "3: web:1.5.0"}), json!({}));
        assert_eq!(plan(Kind::Deployment, &d, &history(), 3, false, ok), Undo::Done);
    }

    #[test]
    fn what_is_not_rolled_back_says_why() {
        let refused = |u: Undo| match u {
            Undo::Refused(why) => why,
            other => panic!("{other:?}"),
        };
        // Someone released since: revision 4 is in force.
        let mut newer = history();
        newer.push(replica_set("web-d", "4", "web:1.6.0", "d1", json!({})));
        let d = deployment("web:1.6.0", json!({}), json!({}));
        assert!(refused(plan(Kind::Deployment, &d, &newer, 3, false, ok)).contains("runs revision 4 now"));
        // The template changed after the suspect release (paused, not rolled out).
        let d = deployment("web:1.5.1", json!({}), json!({}));
        assert!(refused(plan(Kind::Deployment, &d, &history(), 3, false, ok)).contains("was changed after revision 3"));
        // No earlier revision left.
        let only = vec![replica_set("web-c", "3", "web:1.5.0", "d1", json!({}))];
        let d = deployment("web:1.5.0", json!({}), json!({}));
        assert!(refused(plan(Kind::Deployment, &d, &only, 3, false, ok)).contains("no revision before 3"));
        // The revision before is itself suspect.
        let why = refused(plan(Kind::Deployment, &d, &history(), 3, false, |v, _| {
            Err(format!("{v} started within the suspect window too"))
        }));
        assert_eq!(why, "revision 2 (web:1.4.0) started within the suspect window too");
        // Paused by a person.
        let mut paused = deployment("web:1.5.0", json!({}), json!({}));
        paused.data["spec"]["paused"] = json!(true);
        assert!(
            refused(plan(Kind::Deployment, &paused, &history(), 3, false, ok))
                .contains("never resumes what a person paused")
        );
    }

    #[test]
    fn a_workload_a_gitops_tool_manages_is_named_with_what_to_revert_in_git() {
        let argo = deployment(
            "web:1.5.0",
            json!({"argocd.argoproj.io/tracking-id": "shop-web:apps/Deployment:shop/web"}),
            json!({}),
        );
        let Undo::GitOps { manager, from, to } = plan(Kind::Deployment, &argo, &history(), 3, false, ok) else {
            panic!()
        };
        assert_eq!(manager, "Argo CD application shop-web");
        assert_eq!(
            (from.revision, to.images.as_slice()),
            (3, &["web:1.4.0".to_string()][..])
        );
        let flux = deployment(
            "web:1.5.0",
            json!({}),
            json!({"kustomize.toolkit.fluxcd.io/name": "apps"}),
        );
        assert!(matches!(
            plan(Kind::Deployment, &flux, &history(), 3, false, ok),
            Undo::GitOps { .. }
        ));
        let helm_release = deployment("web:1.5.0", json!({}), json!({"helm.toolkit.fluxcd.io/name": "web"}));
        assert_eq!(
            gitops_manager(Kind::Deployment, &helm_release).as_deref(),
            Some("Flux HelmRelease web")
        );
        // A tracking id copied from another object is not this object's.
        let copied = deployment(
            "web:1.5.0",
            json!({"argocd.argoproj.io/tracking-id": "shop-api:apps/Deployment:shop/api"}),
            json!({}),
        );
        assert_eq!(gitops_manager(Kind::Deployment, &copied), None);
        // Helm alone sets app.kubernetes.io/instance and says it is Helm.
        let helm = deployment(
            "web:1.5.0",
            json!({}),
            json!({"app.kubernetes.io/instance": "web", "app.kubernetes.io/managed-by": "Helm"}),
        );
        assert_eq!(gitops_manager(Kind::Deployment, &helm), None);
        let labelled = deployment("web:1.5.0", json!({}), json!({"app.kubernetes.io/instance": "web"}));
        assert!(
            gitops_manager(Kind::Deployment, &labelled)
                .unwrap()
                .starts_with("Argo CD application web")
        );
    }

    fn rollout(status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "uid": "r1", "resourceVersion": "9", "generation": 4},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": "web:2"}]}}},
            "status": status,
        }))
        .unwrap()
    }

    fn rollout_rs(name: &str, revision: &str, image: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "shop",
                         "annotations": {"rollout.argoproj.io/revision": revision},
                         "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web",
                                              "uid": "r1", "controller": true}]},
            // With the defaults the API server fills into a ReplicaSet, which a Rollout's
            // template (a custom resource) does not get.
            "spec": {"template": {"metadata": {"labels": {"app": "web", "rollouts-pod-template-hash": name}},
                                  "spec": {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                                           "containers": [{"name": "app", "image": image, "imagePullPolicy": "IfNotPresent",
                                                           "terminationMessagePath": "/dev/termination-log"}]}}},
        }))
        .unwrap()
    }

    #[test]
    fn a_rollout_mid_update_is_aborted_and_a_completed_one_undone() {
        let rss = [rollout_rs("h1", "1", "web:1"), rollout_rs("h2", "2", "web:2")];
        let mid = rollout(json!({"observedGeneration": "4", "currentPodHash": "h2", "stableRS": "h1"}));
        assert!(matches!(
            plan(Kind::Rollout, &mid, &rss, 2, true, ok),
            Undo::Abort { .. }
        ));
        let done = rollout(json!({"observedGeneration": "4", "currentPodHash": "h2", "stableRS": "h2"}));
        let Undo::Patch { to, patch, .. } = plan(Kind::Rollout, &done, &rss, 2, false, ok) else {
            panic!()
        };
        assert_eq!(to.revision, 1);
        assert_eq!(patch[1]["value"]["spec"]["containers"][0]["image"], "web:1");
        assert_eq!(patch[1]["value"]["metadata"], json!({"labels": {"app": "web"}}));
        assert_eq!(patch[2]["value"], json!({ROLLED_BACK_FROM: "2: web:2"}));
        // A template changed after the release is still told apart.
        let mut changed = done.clone();
        changed.data["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:3");
        assert!(matches!(
            plan(Kind::Rollout, &changed, &rss, 2, false, ok),
            Undo::Refused(_)
        ));
    }
}
