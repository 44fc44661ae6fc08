//! Releases: the revisions of Deployments and Argo Rollouts as their ReplicaSets record them
//! (see `docs/design/release-mechanics.md`). Pure: what a ReplicaSet says about the release it
//! runs, and which release of each workload is the current one.
//!
//! A Deployment numbers its ReplicaSets in `deployment.kubernetes.io/revision`, a Rollout in
//! `rollout.argoproj.io/revision`; the highest number is the release in force. A rollback
//! reuses the old ReplicaSet and gives it the next number, keeping its creation time and the
//! numbers it had in `...revision-history`: such a release started when the number moved,
//! which the cluster does not record (the ledger records when it first saw it).

pub mod attribution;
pub mod undo;

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::DynamicObject;
use serde_json::Value;

use crate::api::{ReleaseStatus, ServiceLevelObjectiveStatus};
use crate::kind::Kind;

const DEPLOYMENT_REVISION: &str = "deployment.kubernetes.io/revision";
const DEPLOYMENT_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const ROLLOUT_REVISION: &str = "rollout.argoproj.io/revision";
const ROLLOUT_HISTORY: &str = "rollout.argoproj.io/revision-history";

/// What one ReplicaSet says about the release it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    /// The workload that controls it (`Deployment` or `Rollout`) and its name.
    pub kind: Kind,
    pub workload: String,
    /// Its revision number.
    pub number: u64,
    /// It ran earlier revisions too (a rollback brought it back): its creation is not when
    /// this revision started.
    pub reused: bool,
    pub created: Option<Timestamp>,
    /// The images of its pod template's containers, in order (init containers aside).
    pub images: Vec<String>,
}

impl Revision {
    /// The release a ReplicaSet runs, when a Deployment or a Rollout controls it and numbered
    /// it; `None` for any other (a bare ReplicaSet, one whose number does not parse).
    pub fn of(rs: &DynamicObject) -> Option<Self> {
        let owner = rs
            .metadata
            .owner_references
            .as_ref()?
            .iter()
            .find(|o| o.controller == Some(true))?;
        let (kind, revision, history) = match (owner.api_version.as_str(), owner.kind.as_str()) {
            ("apps/v1", "Deployment") => (Kind::Deployment, DEPLOYMENT_REVISION, DEPLOYMENT_HISTORY),
            (v, "Rollout") if v.starts_with("argoproj.io/") => (Kind::Rollout, ROLLOUT_REVISION, ROLLOUT_HISTORY),
            _ => return None,
        };
        let annotations = rs.metadata.annotations.as_ref()?;
        let number = annotations.get(revision)?.parse().ok()?;
        // As the API server sends it, or as the watch cache keeps it: the images alone
        // (`crate::cache::workloads::trim_replica_set`).
        let images = match &rs.data {
            Value::Array(images) => images.iter().filter_map(Value::as_str).map(String::from).collect(),
            data => data
                .pointer("/spec/template/spec/containers")?
                .as_array()?
                .iter()
                .filter_map(|c| c["image"].as_str().map(String::from))
                .collect(),
        };
        Some(Self {
            kind,
            workload: owner.name.clone(),
            number,
            reused: annotations.get(history).is_some_and(|h| !h.trim().is_empty()),
            created: rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
            images,
        })
    }

    /// When this release started, as far as the cluster says: its ReplicaSet's creation, unless
    /// the ReplicaSet was brought back by a rollback (then the cluster does not say).
    pub fn started(&self) -> Option<Timestamp> {
        self.created.filter(|_| !self.reused)
    }
}

/// The release in force of each workload: the highest revision among its ReplicaSets.
pub fn current<'a>(revisions: impl IntoIterator<Item = &'a Revision>) -> BTreeMap<(Kind, &'a str), &'a Revision> {
    let mut out: BTreeMap<(Kind, &str), &Revision> = BTreeMap::new();
    for r in revisions {
        let slot = out.entry((r.kind, r.workload.as_str())).or_insert(r);
        if r.number > slot.number {
            *slot = r;
        }
    }
    out
}

/// One release as the ledger keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub kind: Kind,
    pub workload: String,
    pub revision: u64,
    pub images: Vec<String>,
    /// The field manager that last wrote the workload's pod template when it was recorded.
    pub changed_by: Option<String>,
    /// When it started: its ReplicaSet's creation, or when the ledger first saw it.
    pub started_at: Timestamp,
    /// The SLO's errors from its start to the next release (or now), as counted from the tiles.
    pub errors: f64,
    /// The SLO's requests over the same time.
    pub requests: f64,
}

/// The ledger after seeing the releases in force at `now`: each one not recorded yet (a new
/// revision of its workload) is added, newest first, starting when the cluster says it did, or
/// `now` when it does not say (a rollback); at most `keep` entries stay. Entries already
/// recorded are never recomputed, so a restart reads the same start times back.
pub fn record(
    ledger: &[Entry],
    in_force: &BTreeMap<(Kind, &str), &Revision>,
    changed_by: &dyn Fn(&Revision) -> Option<String>,
    now: Timestamp,
    keep: usize,
) -> Vec<Entry> {
    let recorded = |r: &Revision| {
        ledger
            .iter()
            .any(|e| e.kind == r.kind && e.workload == r.workload && e.revision == r.number)
    };
    let mut out: Vec<Entry> = in_force
        .values()
        .filter(|r| !recorded(r))
        .map(|r| Entry {
            kind: r.kind,
            workload: r.workload.clone(),
            revision: r.number,
            images: r.images.clone(),
            changed_by: changed_by(r),
            // A creation in the future (clock skew) is not believed.
            started_at: r.started().filter(|t| *t <= now).unwrap_or(now),
            errors: 0.0,
            requests: 0.0,
        })
        .collect();
    // Who released a release in force, once the workload's template says it (its cache may
    // lag behind the ReplicaSets' when the release is first seen).
    out.extend(ledger.iter().map(|e| {
        let mut e = e.clone();
        if e.changed_by.is_none()
            && let Some(r) = in_force
                .get(&(e.kind, e.workload.as_str()))
                .filter(|r| r.number == e.revision)
        {
            e.changed_by = changed_by(r);
        }
        e
    }));
    out.sort_by_key(|e| std::cmp::Reverse(e.started_at));
    out.truncate(keep);
    // Kept until the next poll, for each of thousands of SLOs: no room for more.
    out.shrink_to_fit();
    out
}

/// One tile of an SLO: the per-second error and request rates over the `length` up to `end`
/// (`slo:sli_errors:tile_rate1m`, `slo:sli_total:tile_rate1m` for the default one-minute tiles
/// of the `sli` group).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tile {
    pub end: Timestamp,
    pub length: SignedDuration,
    pub errors_per_second: f64,
    pub total_per_second: f64,
}

impl Tile {
    fn start(&self) -> Option<Timestamp> {
        self.end.checked_sub(self.length).ok()
    }
}

/// How far a count went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counted {
    /// The end of the last tile counted.
    pub through: Option<Timestamp>,
    /// Time between the tiles counted that no tile read covered (the operator was down longer
    /// than a poll reads back, or Prometheus skipped evaluations): errors there are no
    /// release's.
    pub missed: SignedDuration,
}

/// Tile ends are whole seconds (see `budget::queries`): two tiles a second apart still abut.
const ABUTS: SignedDuration = SignedDuration::from_secs(1);

/// Adds the errors and requests of each tile (oldest first) to the releases that ran during it
/// (`ledger` newest first, as [`record`] keeps it), counting only what lies after
/// `counted_through`: a tile a release's start splits is shared in proportion to the time each
/// ran in it; errors before the oldest release are no release's. A rate that is not a number,
/// or negative, counts nothing (its time is still counted through).
pub fn attribute(ledger: &mut [Entry], tiles: &[Tile], counted_through: Option<Timestamp>) -> Counted {
    let mut counted = Counted {
        through: counted_through,
        missed: SignedDuration::ZERO,
    };
    for tile in tiles {
        let Some(mut start) = tile.start() else {
            continue;
        };
        if let Some(through) = counted.through {
            if tile.end <= through {
                continue;
            }
            if start > through + ABUTS {
                counted.missed += start.duration_since(through);
            }
            start = start.max(through);
        }
        counted.through = Some(tile.end);
        let (rate, total) = (tile.errors_per_second, tile.total_per_second);
        let counts = |r: f64| r.is_finite() && r >= 0.0;
        if !counts(rate) || !counts(total) {
            continue;
        }
        // Newest first: each release runs from its start until the next (newer) one starts;
        // releases that started together (a Deployment and a Rollout shipped at once) share it.
        let mut until = tile.end;
        let mut i = 0;
        while i < ledger.len() && until > start {
            let began = ledger[i].started_at;
            let together = ledger[i..].iter().take_while(|e| e.started_at == began).count();
            let from = began.max(start);
            if from < until {
                let seconds = until.duration_since(from).as_secs_f64() / together as f64;
                for entry in &mut ledger[i..i + together] {
                    entry.errors += rate * seconds;
                    entry.requests += total * seconds;
                }
            }
            until = until.min(began);
            i += together;
        }
    }
    counted
}

/// The burn rate over `errors` and `requests` (error ratio / budget).
pub fn burn_rate(errors: f64, requests: f64, budget: f64) -> Option<f64> {
    (requests > 0.0)
        .then(|| crate::burn_rate::burn(errors / requests, budget))
        .flatten()
}

/// The share of the SLO window's error budget that `errors` spent: the budget allows
/// `budget × requests` errors over the window (the requests the window holds now).
pub fn budget_share(errors: f64, budget: f64, window_requests: f64) -> Option<f64> {
    let allowed = budget * window_requests;
    (allowed > 0.0).then(|| errors / allowed).filter(|s| s.is_finite())
}

/// A release suspected of causing a burn: the release in force of a target workload that
/// started within the policy's `suspectWindow` before the burn began.
#[derive(Clone, Debug, PartialEq)]
pub struct Suspect {
    pub kind: Kind,
    pub name: String,
    pub revision: u64,
    pub images: Vec<String>,
    pub started_at: Timestamp,
}

impl Suspect {
    pub fn version(&self) -> undo::Version {
        undo::Version {
            revision: self.revision,
            images: self.images.clone(),
        }
    }
}

/// The releases that may have caused a burn that began at `burn`: of each workload `target`
/// accepts, its newest release in the SLOs' ledgers (`ledgers`, each newest first), when it
/// started within `window` before the burn. Each once, however many SLOs list it.
pub fn suspects<'a>(
    ledgers: impl IntoIterator<Item = &'a [ReleaseStatus]>,
    burn: Timestamp,
    window: SignedDuration,
    target: impl Fn(Kind, &str) -> bool,
) -> Vec<Suspect> {
    let from = burn.checked_sub(window).unwrap_or(burn);
    let mut newest: BTreeMap<(Kind, String), &ReleaseStatus> = BTreeMap::new();
    for ledger in ledgers {
        for r in ledger {
            let Some(kind) = kind_of(&r.kind) else { continue };
            let slot = newest.entry((kind, r.workload.clone())).or_insert(r);
            if (r.started_at.0, r.revision) > (slot.started_at.0, slot.revision) {
                *slot = r;
            }
        }
    }
    newest
        .into_iter()
        .filter(|((kind, name), r)| target(*kind, name) && r.started_at.0 >= from && r.started_at.0 <= burn)
        .map(|((kind, name), r)| Suspect {
            kind,
            name,
            revision: r.revision,
            images: r.images.clone(),
            started_at: r.started_at.0,
        })
        .collect()
}

/// When `revision` of a workload started, as the ledgers recorded it.
pub fn started<'a>(
    ledgers: impl IntoIterator<Item = &'a [ReleaseStatus]>,
    kind: Kind,
    name: &str,
    revision: u64,
) -> Option<Timestamp> {
    ledgers
        .into_iter()
        .flatten()
        .find(|r| kind_of(&r.kind) == Some(kind) && r.workload == name && r.revision == revision)
        .map(|r| r.started_at.0)
}

fn kind_of(kind: &str) -> Option<Kind> {
    match kind {
        "Deployment" => Some(Kind::Deployment),
        "Rollout" => Some(Kind::Rollout),
        _ => None,
    }
}

/// The share of an SLO's window budget a release burns before a Warning says so (the default
/// of `--release-event-share`).
pub const EVENT_SHARE: f64 = 0.1;

/// At most this many releases are kept per SLO (`status.releases`).
pub const KEPT: usize = 10;

/// An SLO's ledger: its releases newest first, and the span of tiles counted into them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ledger {
    pub entries: Vec<Entry>,
    /// Where counting began: a release that started before has its errors from here on.
    pub counted_from: Option<Timestamp>,
    /// The end of the last tile counted.
    pub counted_through: Option<Timestamp>,
    /// Time since counting began that no tile covered (see [`Counted::missed`]).
    pub missed: SignedDuration,
}

impl Ledger {
    /// The ledger an SLO's status holds (what a restart or a new leader continues from).
    pub fn read(status: Option<&ServiceLevelObjectiveStatus>) -> Self {
        let Some(status) = status else {
            return Self::default();
        };
        Self {
            entries: status
                .releases
                .iter()
                .filter_map(|r| {
                    Some(Entry {
                        kind: kind_of(&r.kind)?,
                        workload: r.workload.clone(),
                        revision: r.revision,
                        images: r.images.clone(),
                        changed_by: r.changed_by.clone(),
                        started_at: r.started_at.0,
                        errors: finite(r.errors),
                        requests: finite(r.requests),
                    })
                })
                .collect(),
            counted_from: status.releases_counted_from.as_ref().map(|t| t.0),
            counted_through: status.releases_counted_through.as_ref().map(|t| t.0),
            missed: status
                .releases_missed
                .as_deref()
                .and_then(|m| crate::duration::Duration::parse(m).ok())
                .map_or(SignedDuration::ZERO, |d| {
                    SignedDuration::from_millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                }),
        }
    }

    /// One poll: the releases in force recorded (see [`record`]), the tiles not counted yet
    /// added to them (see [`attribute`]).
    pub fn advance(
        &self,
        in_force: &BTreeMap<(Kind, &str), &Revision>,
        changed_by: &dyn Fn(&Revision) -> Option<String>,
        tiles: &[Tile],
        now: Timestamp,
    ) -> Self {
        let mut entries = record(&self.entries, in_force, changed_by, now, KEPT);
        let counted = attribute(&mut entries, tiles, self.counted_through);
        let first = tiles
            .iter()
            .filter(|t| self.counted_through.is_none_or(|c| t.end > c))
            .filter_map(Tile::start)
            .min();
        Self {
            entries,
            counted_from: self.counted_from.or(first),
            counted_through: counted.through,
            missed: self.missed.saturating_add(counted.missed),
        }
    }

    /// [`Ledger::missed`] as the status spells it (`12m30s`), when any.
    pub fn missed(&self) -> Option<String> {
        let ms = u64::try_from(self.missed.as_millis()).ok().filter(|ms| *ms > 0)?;
        Some(crate::duration::Duration::from_millis(ms).to_string())
    }

    /// `status.releases`: each entry with the share of the window's budget it burned (`budget`
    /// is the SLO's error budget, `window_requests` the requests its window holds) and its burn
    /// rate, rounded as the status shows them.
    pub fn releases(&self, budget: f64, window_requests: Option<f64>) -> Vec<ReleaseStatus> {
        self.entries
            .iter()
            .map(|e| ReleaseStatus {
                kind: e.kind.as_str().to_string(),
                workload: e.workload.clone(),
                revision: e.revision,
                images: e.images.iter().take(16).cloned().collect(),
                changed_by: e.changed_by.clone(),
                started_at: Time(e.started_at),
                errors: round(e.errors, 2),
                requests: e.requests.round(),
                budget_burned: window_requests
                    .and_then(|w| budget_share(e.errors, budget, w))
                    .map(|s| round(s, 4)),
                burn_rate_since: burn_rate(e.errors, e.requests, budget).map(|b| round(b, 3)),
            })
            .collect()
    }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() && v >= 0.0 { v } else { 0.0 }
}

/// `v` rounded to `decimals` places.
fn round(v: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (v * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rs(owner: serde_json::Value, annotations: serde_json::Value, images: &[&str]) -> DynamicObject {
        let containers: Vec<_> = images.iter().map(|i| json!({"name": "app", "image": i})).collect();
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "shop", "creationTimestamp": "2027-01-15T08:00:00Z",
                         "ownerReferences": [owner], "annotations": annotations},
            "spec": {"template": {"spec": {"containers": containers, "initContainers": [{"name": "init", "image": "busybox"}]}}},
        }))
        .unwrap()
    }

    fn deployment(name: &str) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": "u", "controller": true})
    }

    #[test]
    fn a_deployment_replica_set_names_its_release() {
        let r = Revision::of(&rs(
            deployment("web"),
            json!({DEPLOYMENT_REVISION: "3"}),
            &["web:1.5.0", "sidecar:2"],
        ))
        .unwrap();
        assert_eq!((r.kind, r.workload.as_str(), r.number), (Kind::Deployment, "web", 3));
        assert_eq!(r.images, ["web:1.5.0", "sidecar:2"]);
        assert_eq!(r.started(), Some("2027-01-15T08:00:00Z".parse().unwrap()));
    }

    #[test]
    fn a_replica_set_trimmed_by_the_watch_cache_names_the_same_release() {
        for (owner, annotations) in [
            (deployment("web"), json!({DEPLOYMENT_REVISION: "3"})),
            (
                deployment("web"),
                json!({DEPLOYMENT_REVISION: "5", DEPLOYMENT_HISTORY: "1,3"}),
            ),
            (
                json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "canary", "uid": "u", "controller": true}),
                json!({ROLLOUT_REVISION: "7"}),
            ),
        ] {
            let full = rs(owner, annotations, &["web:1.5.0", "sidecar:2"]);
            let mut trimmed = full.clone();
            crate::cache::workloads::trim_replica_set(&mut trimmed);
            assert!(trimmed.data.is_array(), "kept as the images alone");
            let read = Revision::of(&trimmed);
            assert_eq!(read, Revision::of(&full));
            assert_eq!(read.unwrap().images, ["web:1.5.0", "sidecar:2"]);
        }
    }

    #[test]
    fn a_rollout_replica_set_names_its_release() {
        let owner = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "canary", "uid": "u", "controller": true});
        let r = Revision::of(&rs(owner, json!({ROLLOUT_REVISION: "7"}), &["web:2"])).unwrap();
        assert_eq!((r.kind, r.workload.as_str(), r.number), (Kind::Rollout, "canary", 7));
    }

    #[test]
    fn a_replica_set_brought_back_by_a_rollback_does_not_say_when_it_started() {
        let r = Revision::of(&rs(
            deployment("web"),
            json!({DEPLOYMENT_REVISION: "5", DEPLOYMENT_HISTORY: "1,3"}),
            &["web:1.4.0"],
        ))
        .unwrap();
        assert!(r.reused);
        assert_eq!(r.started(), None);
    }

    #[test]
    fn replica_sets_of_nothing_we_know_name_no_release() {
        let not_controller = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u"});
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "name": "web", "uid": "u", "controller": true});
        for (owner, annotations) in [
            (not_controller, json!({DEPLOYMENT_REVISION: "1"})),
            (job, json!({DEPLOYMENT_REVISION: "1"})),
            (deployment("web"), json!({})),
            (deployment("web"), json!({DEPLOYMENT_REVISION: "one"})),
        ] {
            assert_eq!(Revision::of(&rs(owner, annotations, &["web:1"])), None);
        }
    }

    #[test]
    fn the_release_in_force_is_the_highest_revision_of_each_workload() {
        let revision = |kind, workload: &str, number| Revision {
            kind,
            workload: workload.into(),
            number,
            reused: false,
            created: None,
            images: vec![],
        };
        let all = [
            revision(Kind::Deployment, "web", 2),
            revision(Kind::Deployment, "web", 4),
            revision(Kind::Deployment, "web", 3),
            revision(Kind::Rollout, "web", 1),
            revision(Kind::Deployment, "api", 9),
        ];
        let now: Vec<(Kind, &str, u64)> = current(&all).into_iter().map(|((k, w), r)| (k, w, r.number)).collect();
        assert_eq!(
            now,
            [
                (Kind::Deployment, "api", 9),
                (Kind::Deployment, "web", 4),
                (Kind::Rollout, "web", 1)
            ]
        );
    }

    fn nobody(_: &Revision) -> Option<String> {
        None
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn revision(workload: &str, number: u64, created: &str, reused: bool) -> Revision {
        Revision {
            kind: Kind::Deployment,
            workload: workload.into(),
            number,
            reused,
            created: Some(at(created)),
            images: vec![format!("{workload}:{number}")],
        }
    }

    #[test]
    fn new_releases_are_recorded_once_newest_first_and_the_ledger_is_bounded() {
        let now = at("2027-01-15T09:00:00Z");
        let web2 = revision("web", 2, "2027-01-15T08:30:00Z", false);
        let api7 = revision("api", 7, "2027-01-15T08:45:00Z", false);
        let ledger = record(&[], &current([&web2, &api7]), &nobody, now, 10);
        let seen: Vec<(&str, u64, Timestamp)> = ledger
            .iter()
            .map(|e| (e.workload.as_str(), e.revision, e.started_at))
            .collect();
        assert_eq!(
            seen,
            [
                ("api", 7, at("2027-01-15T08:45:00Z")),
                ("web", 2, at("2027-01-15T08:30:00Z"))
            ]
        );
        assert_eq!(ledger[0].images, ["api:7"]);
        // Seen again later: nothing changes, the start stays what was recorded.
        let again = record(
            &ledger,
            &current([&web2, &api7]),
            &nobody,
            at("2027-01-15T10:00:00Z"),
            10,
        );
        assert_eq!(again, ledger);
        // A rollback of web brings revision 1's ReplicaSet back as revision 3: started when seen.
        let rolled_back = revision("web", 3, "2027-01-10T00:00:00Z", true);
        let later = at("2027-01-15T10:05:00Z");
        let after = record(&again, &current([&rolled_back, &api7]), &nobody, later, 2);
        assert_eq!(after.len(), 2, "bounded");
        assert_eq!(
            (after[0].workload.as_str(), after[0].revision, after[0].started_at),
            ("web", 3, later)
        );
        assert_eq!(after[1].workload, "api");
    }

    #[test]
    fn who_released_is_recorded_once_the_workload_says_it() {
        let now = at("2027-01-15T09:00:00Z");
        let web2 = revision("web", 2, "2027-01-15T08:30:00Z", false);
        // The workload's cache still has the template before revision 2: nobody yet.
        let ledger = record(&[], &current([&web2]), &nobody, now, 10);
        assert_eq!(ledger[0].changed_by, None);
        let alice = |r: &Revision| (r.number == 2).then(|| "alice (kubectl-set)".to_string());
        let later = record(&ledger, &current([&web2]), &alice, at("2027-01-15T09:01:00Z"), 10);
        assert_eq!(later[0].changed_by.as_deref(), Some("alice (kubectl-set)"));
        // Once recorded it stays, whoever changes the workload next.
        let bob = |_: &Revision| Some("bob (kubectl-edit)".to_string());
        let after = record(&later, &current([&web2]), &bob, at("2027-01-15T09:02:00Z"), 10);
        assert_eq!(after[0].changed_by.as_deref(), Some("alice (kubectl-set)"));
    }

    #[test]
    fn a_creation_in_the_future_is_not_believed() {
        let now = at("2027-01-15T09:00:00Z");
        let skewed = revision("web", 2, "2027-01-15T09:10:00Z", false);
        assert_eq!(record(&[], &current([&skewed]), &nobody, now, 10)[0].started_at, now);
    }

    fn entry(workload: &str, started_at: &str) -> Entry {
        Entry {
            kind: Kind::Deployment,
            workload: workload.into(),
            revision: 1,
            images: vec![],
            changed_by: None,
            started_at: at(started_at),
            errors: 0.0,
            requests: 0.0,
        }
    }

    fn tile(end: &str, errors_per_second: f64) -> Tile {
        Tile {
            end: at(end),
            length: jiff::SignedDuration::from_mins(5),
            errors_per_second,
            total_per_second: 100.0,
        }
    }

    #[test]
    fn errors_go_to_the_release_that_ran_and_a_split_tile_is_shared() {
        // web 2 from 08:00, web 3 from 08:12 (two minutes into the 08:10–08:15 tile).
        let mut ledger = vec![
            entry("web", "2027-01-15T08:12:00Z"),
            entry("web", "2027-01-15T08:00:00Z"),
        ];
        let tiles = [
            tile("2027-01-15T08:05:00Z", 1.0),
            tile("2027-01-15T08:10:00Z", 1.0),
            tile("2027-01-15T08:15:00Z", 2.0),
            tile("2027-01-15T08:20:00Z", 3.0),
        ];
        let counted = attribute(&mut ledger, &tiles, None);
        assert_eq!(counted.through, Some(at("2027-01-15T08:20:00Z")));
        assert_eq!(counted.missed, SignedDuration::ZERO);
        // web 3: 3 min × 2/s + 5 min × 3/s; web 2: 10 min × 1/s + 2 min × 2/s.
        assert_eq!(ledger[0].errors, 180.0 * 2.0 + 300.0 * 3.0);
        assert_eq!(ledger[1].errors, 600.0 + 120.0 * 2.0);
        // The same tiles again, and one more: only the new one counts.
        let more = [tiles[3], tile("2027-01-15T08:25:00Z", 1.0)];
        let counted = attribute(&mut ledger, &more, counted.through);
        assert_eq!(counted.through, Some(at("2027-01-15T08:25:00Z")));
        assert_eq!(ledger[0].errors, 180.0 * 2.0 + 300.0 * 3.0 + 300.0);
    }

    #[test]
    fn errors_before_the_oldest_release_and_rates_that_are_not_numbers_count_for_none() {
        let mut ledger = vec![entry("web", "2027-01-15T08:03:00Z")];
        let tiles = [
            tile("2027-01-15T07:55:00Z", 5.0),
            tile("2027-01-15T08:05:00Z", 1.0),
            tile("2027-01-15T08:10:00Z", f64::NAN),
            tile("2027-01-15T08:15:00Z", -1.0),
        ];
        let counted = attribute(&mut ledger, &tiles, None);
        assert_eq!(counted.through, Some(at("2027-01-15T08:15:00Z")));
        assert_eq!(ledger[0].errors, 120.0, "two minutes of the 08:00–08:05 tile");
        assert_eq!(counted.missed, SignedDuration::from_mins(5), "no tile read 07:55–08:00");
    }

    #[test]
    fn a_tile_is_counted_only_past_where_counting_stopped() {
        let mut ledger = vec![entry("web", "2027-01-15T08:00:00Z")];
        // Counted through 08:03; a 5-minute tile to 08:05 adds its last two minutes only, and
        // tiles that end a second off still abut.
        let tiles = [
            tile("2027-01-15T08:05:00Z", 1.0),
            Tile {
                length: SignedDuration::from_mins(1),
                ..tile("2027-01-15T08:06:01Z", 1.0)
            },
        ];
        let counted = attribute(&mut ledger, &tiles, Some(at("2027-01-15T08:03:00Z")));
        assert_eq!(ledger[0].errors, 120.0 + 60.0);
        assert_eq!(counted.missed, SignedDuration::ZERO);
        assert_eq!(counted.through, Some(at("2027-01-15T08:06:01Z")));
    }

    #[test]
    fn the_budget_share_is_against_what_the_window_allows() {
        // 99.9 %: 1,000,000 requests allow 1,000 errors; 250 spent a quarter.
        assert_eq!(budget_share(250.0, 0.001, 1_000_000.0), Some(0.25));
        assert_eq!(budget_share(1.0, 0.001, 0.0), None, "no requests: no share");
        assert_eq!(budget_share(f64::NAN, 0.001, 10.0), None);
    }

    /// Against the error count integrated directly over each release's interval, for an error
    /// rate that changes every minute and releases that start anywhere in a tile.
    #[test]
    fn the_count_matches_the_errors_of_each_interval() {
        let t0 = at("2027-01-15T00:00:00Z");
        let minute = |m: i64| t0 + jiff::SignedDuration::from_mins(m);
        // Per-minute rates; a tile's rate is the mean of its five minutes.
        let rates: Vec<f64> = (0..240).map(|m| ((m * 37) % 11) as f64 / 10.0).collect();
        let starts = [0, 17, 18, 93, 161];
        let mut ledger: Vec<Entry> = starts
            .iter()
            .rev()
            .map(|m| Entry {
                started_at: minute(*m),
                ..entry("web", "2027-01-15T00:00:00Z")
            })
            .collect();
        let tiles: Vec<Tile> = (1..=48)
            .map(|k| Tile {
                end: minute(5 * k),
                length: jiff::SignedDuration::from_mins(5),
                errors_per_second: rates[5 * (k as usize - 1)..5 * k as usize].iter().sum::<f64>() / 5.0,
                total_per_second: 100.0,
            })
            .collect();
        attribute(&mut ledger, &tiles, None);
        for (i, m) in starts.iter().enumerate() {
            let next = starts.get(i + 1).copied().unwrap_or(240);
            // What the tiles can know: each minute at its tile's mean rate.
            let expected: f64 = (*m..next)
                .map(|x| tiles[(x / 5) as usize].errors_per_second * 60.0)
                .sum();
            let got = ledger[starts.len() - 1 - i].errors;
            assert!(
                (got - expected).abs() < 1e-6,
                "release from minute {m}: {got} vs {expected}"
            );
        }
        let total: f64 = ledger.iter().map(|e| e.errors).sum();
        let all: f64 = rates.iter().map(|r| r * 60.0).sum();
        assert!((total - all).abs() < 1e-6, "every error counted once: {total} vs {all}");
    }

    #[test]
    fn releases_that_started_together_share_what_followed() {
        let mut ledger = vec![
            Entry {
                kind: Kind::Rollout,
                ..entry("web", "2027-01-15T08:02:00Z")
            },
            entry("web", "2027-01-15T08:02:00Z"),
            entry("web", "2027-01-15T07:00:00Z"),
        ];
        attribute(&mut ledger, &[tile("2027-01-15T08:05:00Z", 2.0)], None);
        assert_eq!(
            (ledger[0].errors, ledger[1].errors),
            (180.0, 180.0),
            "3 min × 2/s, shared"
        );
        assert_eq!(ledger[2].errors, 240.0, "the two minutes before them");
    }

    #[test]
    fn requests_are_counted_with_the_errors_and_give_the_burn_rate() {
        let mut ledger = vec![entry("web", "2027-01-15T08:02:00Z")];
        attribute(&mut ledger, &[tile("2027-01-15T08:05:00Z", 1.0)], None);
        assert_eq!((ledger[0].errors, ledger[0].requests), (180.0, 18_000.0));
        // 1 % errors against a 0.1 % budget: burning ten times too fast.
        let b = burn_rate(ledger[0].errors, ledger[0].requests, 0.001).unwrap();
        assert!((b - 10.0).abs() < 1e-9, "{b}");
        assert_eq!(burn_rate(1.0, 0.0, 0.001), None);
        // A tile whose requests are not a number counts nothing, errors included.
        let bad = Tile {
            total_per_second: f64::NAN,
            ..tile("2027-01-15T08:10:00Z", 1.0)
        };
        attribute(&mut ledger, &[bad], Some(at("2027-01-15T08:05:00Z")));
        assert_eq!(ledger[0].errors, 180.0);
    }

    #[test]
    fn a_ledger_goes_through_the_status_and_continues_where_it_stopped() {
        let web = revision("web", 2, "2027-01-15T08:02:00Z", false);
        let start = Ledger::default();
        let one = start.advance(
            &current([&web]),
            &nobody,
            &[tile("2027-01-15T08:05:00Z", 1.0)],
            at("2027-01-15T08:06:00Z"),
        );
        assert_eq!(one.counted_from, Some(at("2027-01-15T08:00:00Z")));
        assert_eq!(one.counted_through, Some(at("2027-01-15T08:05:00Z")));
        let status = ServiceLevelObjectiveStatus {
            releases: one.releases(0.001, Some(1_000_000.0)),
            releases_counted_from: one.counted_from.map(Time),
            releases_counted_through: one.counted_through.map(Time),
            ..Default::default()
        };
        assert_eq!(status.releases[0].kind, "Deployment");
        assert_eq!(status.releases[0].errors, 180.0);
        assert_eq!(
            status.releases[0].budget_burned,
            Some(0.18),
            "180 of the 1,000 errors allowed"
        );
        assert_eq!(status.releases[0].burn_rate_since, Some(10.0));
        let back = Ledger::read(Some(&status));
        assert_eq!(back, one, "what the status holds is what was counted");
        // The same tile read again after a restart counts nothing; the next one counts.
        let tiles = [tile("2027-01-15T08:05:00Z", 1.0), tile("2027-01-15T08:10:00Z", 2.0)];
        let two = back.advance(&current([&web]), &nobody, &tiles, at("2027-01-15T08:11:00Z"));
        assert_eq!(two.entries[0].errors, 180.0 + 600.0);
        assert_eq!(two.counted_from, one.counted_from, "counting began once");
        // Without the window's requests there is no share, but there is a burn rate.
        let unknown = two.releases(0.001, None);
        assert_eq!(unknown[0].budget_burned, None);
        assert!(unknown[0].burn_rate_since.is_some());
    }
}
