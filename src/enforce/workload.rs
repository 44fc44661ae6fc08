//! `spec.paused` on Deployments (`freezeDeployments`) and Argo Rollouts (`pauseRollouts`):
//! a paused Deployment creates no new ReplicaSet for a new pod template, a paused Rollout stays
//! at its step. Both are what `kubectl rollout pause` / `kubectl argo rollouts pause` do.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::core::{Selector, SelectorExt};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::claim::{Observed, PAUSE};
use super::{Actor, Change, Hold, Kind, Outcome, hold};
use crate::api::Action;
use crate::error::{Error, Result};

/// A kind of workload with `spec.paused`.
pub struct Workload {
    pub kind: Kind,
    pub resource: ApiResource,
    pub action: Action,
}

pub fn deployments() -> Workload {
    Workload {
        kind: Kind::Deployment,
        resource: ApiResource::erase::<Deployment>(&()),
        action: Action::FreezeDeployments,
    }
}

/// The label selector as kube's matcher; an invalid selector is a spec problem.
pub fn selector(s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector, field: &str) -> Result<Selector> {
    Selector::try_from(s.clone()).map_err(|e| Error::InvalidSpec(format!("{field}: not a valid label selector: {e}")))
}

pub fn is_paused(obj: &DynamicObject) -> bool {
    obj.data["spec"]["paused"].as_bool() == Some(true)
}

/// Objects of a kind that must not be held even when selected.
pub type Spared<'a> = &'a (dyn Fn(&DynamicObject) -> bool + Sync);

/// `spec.paused`, claimed in `slo.warden.dev/paused-by` and labelled `slo.warden.dev/held`.
pub const PAUSED: Hold = Hold {
    keys: PAUSE,
    is_held: is_paused,
    set_held: |patch, paused| patch["spec"] = json!({ "paused": paused }),
    labelled: true,
};

/// Whether `me` holds an object: while the stage in force wants it held, every object its
/// targets select and every object it already holds, whatever its labels say now (relabelling
/// a held Deployment out of the selector must not release it: only leaving the stage or an
/// override does), except what is `spared`.
pub fn chosen(want: bool, selected: bool, held_by_me: bool, spared: bool) -> bool {
    want && (selected || held_by_me) && !spared
}

/// The workloads of a namespace: from the watch cache (`cached`), else listed. `None` when the
/// kind is not served (a cluster without Argo Rollouts).
pub async fn objects(
    api: &Api<DynamicObject>,
    cached: Option<Vec<DynamicObject>>,
) -> Result<Option<Vec<DynamicObject>>> {
    if let Some(objects) = cached {
        return Ok(Some(objects));
    }
    match api.list(&ListParams::default()).await {
        Ok(l) => Ok(Some(l.items)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(super::refused(e, api, "list", "")),
    }
}

/// What [`reconcile`] did: an outcome for every object it looked at, and the objects it could
/// not change. One object that cannot be patched (a webhook of someone else's refusing it,
/// RBAC, a conflict that would not settle) never stops the others from being held or released.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub outcomes: Vec<Outcome>,
    pub errors: Vec<Error>,
}

/// Makes every workload of the namespace (all of them: one we hold may no longer match the
/// selector; `cached`, else listed) match: held by `me` when `want`, selected and not
/// `spared`, else not by `me`. `None` when the kind is not served (a cluster without Argo
/// Rollouts). An object that cannot be changed is reported as it is (held or not, from its
/// claim) with its error, and the rest are still made to match.
pub async fn reconcile(
    actor: &Actor<'_>,
    workload: &Workload,
    cached: Option<Vec<DynamicObject>>,
    selected: Option<&Selector>,
    spared: Spared<'_>,
    want: bool,
) -> Result<Option<Reconciled>> {
    let (namespace, me, now) = (actor.namespace, actor.me, actor.now);
    let api: Api<DynamicObject> = Api::namespaced_with(actor.client.clone(), namespace, &workload.resource);
    let Some(objects) = objects(&api, cached).await? else {
        return Ok(None);
    };
    let mut out = Reconciled::default();
    for obj in objects {
        let is_selected = selected.is_some_and(|s| s.matches(obj.labels()));
        let held_by_me = Observed::new(is_paused(&obj), obj.annotations(), PAUSE).holds(me);
        let chosen = chosen(want, is_selected, held_by_me, spared(&obj));
        let (obj, change, holding) = match hold(&api, obj.clone(), &PAUSED, actor, chosen).await {
            Ok((obj, change)) => {
                let holding = chosen && change != Change::NotClaimed;
                (obj, change, holding)
            }
            Err(e) => {
                tracing::warn!(namespace, kind = %workload.kind, name = %obj.name_any(), error = %e, "cannot change the hold of one object; the others are still reconciled");
                out.errors.push(e);
                let holding = held_by_me;
                (obj, Change::Unchanged, holding)
            }
        };
        if change == Change::Unchanged && !holding && !is_selected {
            continue;
        }
        let since = if holding {
            obj.annotations()
                .get(PAUSE.at)
                .cloned()
                .or_else(|| Some(now.to_string()))
        } else {
            None
        };
        out.outcomes.push(Outcome {
            kind: workload.kind,
            name: obj.name_any(),
            action: workload.action,
            change,
            holding,
            selected: is_selected,
            since,
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use http::{Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::Value;

    use super::*;

    fn held_deployment(name: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "resourceVersion": "5",
                         "annotations": {"slo.warden.dev/paused-by": "shop/checkout",
                                         "slo.warden.dev/paused-at": "2026-01-01T00:00:00Z"}},
            "spec": {"paused": true},
        }))
        .unwrap()
    }

    #[test]
    fn a_held_object_stays_held_while_the_stage_wants_it_whatever_its_labels() {
        // (want, selected, held by me, spared) → held
        let cases = [
            ((true, true, false, false), true),
            // Relabelled out of the selector while held: still held.
            ((true, false, true, false), true),
            // Never selected, never held: left alone.
            ((true, false, false, false), false),
            // The stage is left or an override lifts it: released, selected or not.
            ((false, true, true, false), false),
            ((false, false, true, false), false),
            // A Rollout being aborted is not held paused.
            ((true, true, true, true), false),
        ];
        for ((want, selected, held, spared), expected) in cases {
            assert_eq!(
                chosen(want, selected, held, spared),
                expected,
                "want {want}, selected {selected}, held {held}, spared {spared}"
            );
        }
    }

    /// The first patch is refused; the second object is still released, and the refused one is
    /// reported as still held, with its error.
    #[tokio::test]
    async fn one_object_that_cannot_be_patched_does_not_stop_the_others() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "shop");
        let server = tokio::spawn(async move {
            let mut patched = Vec::new();
            for _ in 0..2 {
                let (req, send) = handle.next_request().await.expect("a request");
                assert_eq!(req.method(), http::Method::PATCH);
                let name = req.uri().path().rsplit('/').next().unwrap_or_default().to_string();
                patched.push(name.clone());
                if name == "api" {
                    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": "admission webhook \"x\" denied the request", "reason": "Forbidden", "code": 403});
                    send.send_response(
                        Response::builder()
                            .status(StatusCode::FORBIDDEN)
                            .body(Body::from(serde_json::to_vec(&status).unwrap()))
                            .unwrap(),
                    );
                } else {
                    let mut released = serde_json::to_value(held_deployment(&name)).unwrap();
                    released["spec"]["paused"] = Value::Bool(false);
                    released["metadata"]["annotations"] = json!({});
                    send.send_response(
                        Response::builder()
                            .body(Body::from(serde_json::to_vec(&released).unwrap()))
                            .unwrap(),
                    );
                }
            }
            patched
        });
        let spare_none = |_: &DynamicObject| false;
        let actor = Actor {
            client: &client,
            namespace: "shop",
            me: "shop/checkout",
            reason: "",
            now: jiff::Timestamp::UNIX_EPOCH,
        };
        let r = reconcile(
            &actor,
            &deployments(),
            Some(vec![held_deployment("api"), held_deployment("web")]),
            None,
            &spare_none,
            false,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(server.await.unwrap(), ["api", "web"], "both objects were patched");
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        let by_name = |n: &str| r.outcomes.iter().find(|o| o.name == n).unwrap();
        assert!(by_name("api").holding, "the refused one is still held");
        assert_eq!(by_name("api").change, Change::Unchanged);
        assert!(!by_name("web").holding);
        assert_eq!(by_name("web").change, Change::Released);
    }
}
