//! A small API server for reconciler tests, on `tower_test`: it keeps objects by path and
//! answers what the reconcilers send (GET of an object or a collection, merge and JSON patches
//! of an object or its status, Events) the way the kube-apiserver does: a patch carrying a
//! stale `resourceVersion` conflicts, every write bumps it. Every request is recorded, so a
//! test asserts both what was written and what the cluster holds after.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    seen: Vec<Seen>,
    /// Paths whose next patch conflicts, as if someone else wrote the object first; the value
    /// is what they wrote (merged into the object before the 409).
    conflicts: BTreeMap<String, Value>,
    version: u64,
}

#[derive(Clone, Default)]
pub struct FakeApi(Arc<Mutex<State>>);

impl FakeApi {
    /// A client talking to a new server, and the server.
    pub fn start() -> (kube::Client, Self) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = Self::default();
        let server = api.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let (parts, body) = req.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let seen = Seen {
                    method: parts.method.clone(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    body,
                };
                let content_type = parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let (code, answer) = server.answer(&seen, &content_type);
                server.0.lock().unwrap().seen.push(seen);
                send.send_response(
                    Response::builder()
                        .status(code)
                        .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                        .unwrap(),
                );
            }
        });
        (kube::Client::new(service, "default"), api)
    }

    /// Stores `obj` at its path (from its apiVersion, kind, namespace and name).
    pub fn put(&self, obj: Value) {
        let path = path_of(&obj);
        let mut state = self.0.lock().unwrap();
        state.version += 1;
        let mut obj = obj;
        obj["metadata"]["resourceVersion"] = json!(state.version.to_string());
        state.objects.insert(path, obj);
    }

    /// The object at `path`, as the server holds it now.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.0.lock().unwrap().objects.get(path).cloned()
    }

    /// Someone else writes `change` (a merge patch) into the object at `path` just before our
    /// next patch of it: that patch conflicts.
    pub fn conflict_next_patch(&self, path: &str, change: Value) {
        self.0.lock().unwrap().conflicts.insert(path.to_string(), change);
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().seen.clone()
    }

    /// The requests so far that wrote (anything but GET), Events aside.
    pub fn writes(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method != Method::GET && !s.path.contains("/events"))
            .collect()
    }

    /// The reasons of the Events published so far.
    pub fn event_reasons(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.contains("/events"))
            .filter_map(|s| s.body["reason"].as_str().map(String::from))
            .collect()
    }

    fn answer(&self, req: &Seen, content_type: &str) -> (StatusCode, Value) {
        let mut state = self.0.lock().unwrap();
        if req.path.contains("/events") {
            return (StatusCode::CREATED, req.body.clone());
        }
        let target = req.path.strip_suffix("/status").unwrap_or(&req.path).to_string();
        match req.method {
            Method::GET => {
                if let Some(obj) = state.objects.get(&target) {
                    return (StatusCode::OK, obj.clone());
                }
                if !is_collection(&target) {
                    return (StatusCode::NOT_FOUND, status(404, "NotFound", "not found"));
                }
                let prefix = format!("{target}/");
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(p, _)| p.strip_prefix(&prefix).is_some_and(|rest| !rest.contains('/')))
                    .map(|(_, o)| o.clone())
                    .collect();
                if items.is_empty() && !is_collection_served(&target) {
                    return (
                        StatusCode::NOT_FOUND,
                        status(404, "NotFound", "the server could not find the requested resource"),
                    );
                }
                let version = state.version.to_string();
                (
                    StatusCode::OK,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": version}, "items": items}),
                )
            }
            Method::PATCH => {
                let Some(mut obj) = state.objects.get(&target).cloned() else {
                    return (StatusCode::NOT_FOUND, status(404, "NotFound", "not found"));
                };
                if let Some(change) = state.conflicts.remove(&target) {
                    json_patch::merge(&mut obj, &change);
                    state.version += 1;
                    obj["metadata"]["resourceVersion"] = json!(state.version.to_string());
                    state.objects.insert(target, obj);
                    return (
                        StatusCode::CONFLICT,
                        status(409, "Conflict", "the object has been modified"),
                    );
                }
                let expected = if content_type.contains("json-patch") {
                    None
                } else {
                    req.body["metadata"]["resourceVersion"].as_str().map(String::from)
                };
                if expected.is_some_and(|v| Some(v.as_str()) != obj["metadata"]["resourceVersion"].as_str()) {
                    return (
                        StatusCode::CONFLICT,
                        status(409, "Conflict", "the object has been modified"),
                    );
                }
                if content_type.contains("json-patch") {
                    let Ok(ops) = serde_json::from_value::<json_patch::Patch>(req.body.clone()) else {
                        return (StatusCode::BAD_REQUEST, status(400, "BadRequest", "not a JSON patch"));
                    };
                    if json_patch::patch(&mut obj, &ops).is_err() {
                        return (
                            StatusCode::UNPROCESSABLE_ENTITY,
                            status(422, "Invalid", "the JSON patch does not apply"),
                        );
                    }
                } else {
                    let mut change = req.body.clone();
                    if let Some(meta) = change.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("resourceVersion");
                    }
                    json_patch::merge(&mut obj, &change);
                }
                state.version += 1;
                obj["metadata"]["resourceVersion"] = json!(state.version.to_string());
                state.objects.insert(target, obj.clone());
                (StatusCode::OK, obj)
            }
            _ => (
                StatusCode::METHOD_NOT_ALLOWED,
                status(405, "MethodNotAllowed", "not served here"),
            ),
        }
    }
}

/// Whether a path names a collection (`/api/v1/namespaces`, `.../namespaces/shop/deployments`)
/// rather than one object: after the group and version, collections have an odd number of
/// segments.
fn is_collection(path: &str) -> bool {
    let rest: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let skip = if rest.first() == Some(&"api") { 2 } else { 3 };
    rest.len().saturating_sub(skip) % 2 == 1
}

/// Collections this server serves even when empty: everything but Argo Rollouts, whose CRD a
/// test installs by putting a Rollout.
fn is_collection_served(path: &str) -> bool {
    !path.contains("/argoproj.io/")
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": message})
}

/// The API path of an object: `/api/v1/namespaces/shop` for a Namespace, else
/// `/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>` (or `/api/v1/...` for the core group).
pub fn path_of(obj: &Value) -> String {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let base = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    if kind == "Namespace" {
        return format!("{base}/namespaces/{name}");
    }
    let lower = kind.to_lowercase();
    let plural = match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    };
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{base}/namespaces/{ns}/{plural}/{name}"),
        None => format!("{base}/{plural}/{name}"),
    }
}
