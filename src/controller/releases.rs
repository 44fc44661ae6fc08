//! The release ledger of each SLO, kept by the poll loop: which releases ran the workloads the
//! SLO's policies target, and the budget each one burned (`status.releases`), counted from the
//! tiles of its `sli` rule group, which every poll reads anyway (no query per SLO or per
//! release). A raw SLI records no tiles (it counts no requests): its SLO keeps no ledger. The counting
//! itself is pure ([`crate::release`]); this module finds what each SLO follows in the watch
//! caches, keeps the ledgers of this term, and says what to write, tell and export.
//!
//! A ledger is written to the SLO's status together with how far it counted, so a restart or a
//! new leader continues where the last write stopped. Between writes the term keeps it in
//! memory: the cached status may lag behind our own last write, and counting a tile twice
//! would blame a release for errors it did not make.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::context::PolicyContext;
use crate::api::{ErrorBudgetPolicy, ReleaseStatus, ServiceLevelObjective};
use crate::budget::SloSamples;
use crate::enforce::Kind;
use crate::metrics::{Metrics, ReleaseLabels};
use crate::release::{Ledger, Revision};

/// A ledger's status is written at least this often (plus its share of [`PERSIST_SPREAD`])
/// while it counts, so that a restart loses no more than this of requests (errors are written
/// as soon as they move the budget share). An hour: ten thousand SLOs cost about two writes a
/// second for it.
const PERSIST_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);
/// How far the SLOs' periodic writes are spread beyond [`PERSIST_EVERY`].
const PERSIST_SPREAD: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);
/// A change of a release's budget share worth a write: a thousandth of the window's budget.
const SHARE_STEP: f64 = 0.001;

/// What the policies of each namespace follow, gathered once per poll from the caches.
pub struct Followed {
    namespaces: HashMap<String, Namespace>,
}

/// The workloads whose releases matter to a policy.
type Workloads = BTreeSet<(Kind, String)>;

struct Namespace {
    /// Each policy, and the workloads whose releases matter to it.
    policies: Vec<(Arc<ErrorBudgetPolicy>, Workloads)>,
    /// The release in force of each workload of the namespace (the highest revision of its
    /// ReplicaSets); `None` until the cache is synced.
    current: Option<BTreeMap<(Kind, String), Revision>>,
    /// Who last wrote each workload's pod template (the attribution webhook's stamp, its
    /// managedFields), and the template's images.
    changed_by: HashMap<(Kind, String), (String, Vec<String>)>,
}

impl Followed {
    pub fn gather(shared: &PolicyContext) -> Self {
        let mut by_namespace: HashMap<String, Vec<Arc<ErrorBudgetPolicy>>> = HashMap::new();
        for policy in shared.policies() {
            by_namespace
                .entry(policy.namespace().unwrap_or_default())
                .or_default()
                .push(policy);
        }
        let namespaces = by_namespace
            .into_iter()
            .map(|(ns, policies)| {
                let mut workloads = Vec::new();
                for kind in [Kind::Deployment, Kind::Rollout] {
                    shared
                        .stores
                        .for_each_workload(&ns, kind, |w| workloads.push((kind, Arc::clone(w))));
                }
                let policies = policies
                    .into_iter()
                    .map(|p| {
                        let followed =
                            crate::policy::select::release_targets(&p, workloads.iter().map(|(k, w)| (*k, &**w)));
                        (p, followed)
                    })
                    .collect();
                let current = shared.stores.revisions_in(&ns).map(|r| in_force_of(&r));
                let changed_by = workloads
                    .iter()
                    .filter_map(|(k, w)| {
                        let by = crate::cache::workloads::changed_by(w)?;
                        let images = crate::cache::workloads::template_images(w);
                        Some(((*k, w.name_any()), (by, images.into_iter().map(String::from).collect())))
                    })
                    .collect();
                (
                    ns,
                    Namespace {
                        policies,
                        current,
                        changed_by,
                    },
                )
            })
            .collect();
        Self { namespaces }
    }

    /// Who wrote the pod template of a release of `namespace`, when the workload's current
    /// template is that release's (same images; the workload's cache may lag behind the
    /// ReplicaSets').
    pub fn changed_by(&self, namespace: &str, release: &Revision) -> Option<String> {
        let (by, images) = self
            .namespaces
            .get(namespace)?
            .changed_by
            .get(&(release.kind, release.workload.clone()))?;
        (*images == release.images).then(|| by.clone())
    }

    /// The releases in force of the workloads that the policies selecting `slo` follow:
    /// `None` when no policy selects it, or the ReplicaSets are not listed yet.
    pub fn in_force(&self, slo: &ServiceLevelObjective) -> Option<BTreeMap<(Kind, &str), &Revision>> {
        let ns = self.namespaces.get(&slo.namespace().unwrap_or_default())?;
        let mut selected = false;
        let mut in_force = BTreeMap::new();
        for (_, followed) in ns
            .policies
            .iter()
            .filter(|(p, _)| crate::policy::select::selects(p, slo))
        {
            selected = true;
            let current = ns.current.as_ref()?;
            for key in followed {
                if let Some(r) = current.get(key) {
                    in_force.insert((key.0, key.1.as_str()), r);
                }
            }
        }
        selected.then_some(in_force)
    }
}

/// The release in force of each workload, owned (computed once per namespace and poll).
fn in_force_of(revisions: &[Revision]) -> BTreeMap<(Kind, String), Revision> {
    crate::release::current(revisions)
        .into_iter()
        .map(|((kind, workload), r)| ((kind, workload.to_string()), r.clone()))
        .collect()
}

/// What one poll changes of an SLO's ledger.
pub struct Update {
    /// The status fields to merge (`releases`, `releasesCountedFrom`, `releasesCountedThrough`),
    /// when they are worth a write.
    pub status: Option<serde_json::Map<String, serde_json::Value>>,
    /// Warnings about releases that crossed the share of the budget worth telling.
    pub events: Vec<(EventType, &'static str, String)>,
}

/// The ledgers of this term, by SLO uid, and the poll they were last seen in.
#[derive(Default)]
pub struct Ledgers {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Boxed: the table keeps room for up to twice the SLOs, and an empty slot then costs a
    /// pointer instead of a whole ledger.
    kept: HashMap<String, Box<Kept>>,
    /// The poll under way: a ledger not updated in it belongs to an SLO gone or no longer
    /// followed, and is dropped with its metric series when it ends.
    poll: u64,
}

/// One SLO's ledger as this term counted it, what its status last got of it and the metric
/// series it exports.
struct Kept {
    ledger: Ledger,
    /// `None` until a write is known to have landed (or when the last one failed).
    written: Option<Written>,
    /// The series of the newest release of each workload (labels share their strings).
    exported: Vec<ReleaseLabels>,
    seen: u64,
}

/// What a status write said of a ledger: enough to tell whether the next one says anything
/// new, without a copy of the releases.
struct Written {
    releases: Vec<Told>,
    through: Option<Timestamp>,
}

/// One release as a status write told it.
#[derive(Clone, Copy, PartialEq)]
struct Told {
    /// Its kind, workload and revision, hashed.
    release: u64,
    started_at: Timestamp,
    budget_burned: Option<f64>,
    errors: f64,
}

impl Told {
    fn of(r: &ReleaseStatus) -> Self {
        Self {
            release: identity(r),
            started_at: r.started_at.0,
            budget_burned: r.budget_burned,
            errors: r.errors,
        }
    }
}

/// A release's kind, workload and revision, hashed (in this process only).
fn identity(r: &ReleaseStatus) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    (&r.kind, &r.workload, r.revision).hash(&mut h);
    h.finish()
}

impl Written {
    fn of(releases: &[ReleaseStatus], through: Option<Timestamp>) -> Self {
        Self {
            releases: releases.iter().map(Told::of).collect(),
            through,
        }
    }
}

impl Ledgers {
    /// One poll of one SLO: new releases recorded, new tiles counted, its metric series set.
    /// `None` for an SLO no policy follows releases for and whose status holds no ledger.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &self,
        slo: &ServiceLevelObjective,
        samples: Option<&SloSamples>,
        followed: &Followed,
        window_requests: Option<f64>,
        event_share: f64,
        at: Timestamp,
        metrics: &Metrics,
    ) -> Option<Update> {
        let uid = slo.meta().uid.clone().unwrap_or_default();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let poll = inner.poll;
        let kept = inner.kept.remove(&uid).map(|k| *k);
        let (update, next) = Self::count(slo, kept, samples, followed, window_requests, event_share, at, metrics);
        if let Some(mut next) = next {
            next.seen = poll;
            inner.kept.insert(uid, Box::new(next));
        }
        update
    }

    #[allow(clippy::too_many_arguments)]
    fn count(
        slo: &ServiceLevelObjective,
        kept: Option<Kept>,
        samples: Option<&SloSamples>,
        followed: &Followed,
        window_requests: Option<f64>,
        event_share: f64,
        at: Timestamp,
        metrics: &Metrics,
    ) -> (Option<Update>, Option<Kept>) {
        let status = slo.status.as_ref();
        let stored_through = status.and_then(|s| s.releases_counted_through.as_ref()).map(|t| t.0);
        // The term's own count, unless the status holds a later one (another replica led
        // meanwhile); the status itself the first time. Only then is it read from the status.
        let (prior, written, exported) = match kept {
            Some(k) if k.ledger.counted_through >= stored_through => (k.ledger, k.written, k.exported),
            other => {
                let written = status.map(|s| Written::of(&s.releases, stored_through));
                (
                    Ledger::read(status),
                    written,
                    other.map(|k| k.exported).unwrap_or_default(),
                )
            }
        };
        let in_force = followed.in_force(slo);
        if slo.spec.indicator.raw.is_some()
            || (in_force.as_ref().is_none_or(BTreeMap::is_empty) && prior.entries.is_empty())
        {
            unexport(metrics, &exported);
            return (None, None);
        }
        let tiles = samples.map_or(&[][..], |s| s.tiles.as_slice());
        let ns = slo.namespace().unwrap_or_default();
        let changed_by = |release: &Revision| followed.changed_by(&ns, release);
        let next = prior.advance(&in_force.unwrap_or_default(), &changed_by, tiles, at);
        let budget = (100.0 - slo.spec.objective) / 100.0;
        let releases = next.releases(budget, window_requests);
        // Told against what the status says: a share first known past the mark is news too.
        let told = written.as_ref().map_or(&[][..], |w| w.releases.as_slice());
        let events = crossed(told, &releases, event_share, &slo.spec.window);
        let exported = export(metrics, slo, &releases, exported);
        // An Event goes with the status that says it (and is told again if that write fails).
        let uid = slo.meta().uid.as_deref().unwrap_or_default();
        let write = !events.is_empty()
            || match &written {
                Some(w) => worth_writing(&w.releases, &releases) || stale(w.through, next.counted_through, uid),
                None => true,
            };
        let patch = write.then(|| {
            let mut m = serde_json::Map::new();
            m.insert("releases".into(), json!(releases));
            m.insert(
                "releasesCountedFrom".into(),
                json!(next.counted_from.map(crate::api::rfc3339)),
            );
            m.insert(
                "releasesCountedThrough".into(),
                json!(next.counted_through.map(crate::api::rfc3339)),
            );
            m.insert("releasesMissed".into(), json!(next.missed()));
            m
        });
        let written = if write {
            Some(Written::of(&releases, next.counted_through))
        } else {
            written
        };
        let kept = Kept {
            ledger: next,
            written,
            exported,
            seen: 0,
        };
        (Some(Update { status: patch, events }), Some(kept))
    }

    /// The status write of an SLO's ledger failed: the next poll writes it again.
    pub fn unwritten(&self, uid: &str) {
        if let Some(k) = self.inner.lock().unwrap_or_else(|p| p.into_inner()).kept.get_mut(uid) {
            k.written = None;
        }
    }

    /// Ends a poll: the ledgers it did not update (their SLO gone, or no longer followed) are
    /// dropped, and their metric series removed.
    pub fn finish_poll(&self, metrics: &Metrics) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let poll = inner.poll;
        inner.kept.retain(|_, k| {
            let keep = k.seen == poll;
            if !keep {
                unexport(metrics, &k.exported);
            }
            keep
        });
        inner.poll = poll.wrapping_add(1);
    }
}

/// Sets the metric series of an SLO's ledger (the newest release of each workload, the ledger
/// being newest first) and removes those it exported before that are not among them; returns
/// what it exports now.
fn export(
    metrics: &Metrics,
    slo: &ServiceLevelObjective,
    releases: &[ReleaseStatus],
    before: Vec<ReleaseLabels>,
) -> Vec<ReleaseLabels> {
    let mut workloads = BTreeSet::new();
    let newest: Vec<&ReleaseStatus> = releases
        .iter()
        .filter(|r| workloads.insert((r.kind.as_str(), r.workload.as_str())))
        .collect();
    let is_newest = |l: &ReleaseLabels| {
        newest
            .iter()
            .any(|r| (r.kind.as_str(), r.workload.as_str(), r.revision) == (l.kind, l.workload.as_str(), l.revision))
    };
    let (mut now, gone): (Vec<ReleaseLabels>, Vec<ReleaseLabels>) = before.into_iter().partition(is_newest);
    unexport(metrics, &gone);
    // The strings of this SLO's series, shared by its labels in both families.
    let (mut namespace, mut name) = match now.first() {
        Some(l) => (Some(Arc::clone(&l.namespace)), Some(Arc::clone(&l.slo))),
        None => (None, None),
    };
    for r in newest {
        let known = now
            .iter()
            .find(|l| (l.kind, l.workload.as_str(), l.revision) == (r.kind.as_str(), r.workload.as_str(), r.revision));
        let labels = match known {
            Some(l) => l.clone(),
            None => {
                let labels = ReleaseLabels {
                    namespace: Arc::clone(
                        namespace.get_or_insert_with(|| Arc::new(slo.namespace().unwrap_or_default())),
                    ),
                    slo: Arc::clone(name.get_or_insert_with(|| Arc::new(slo.name_any()))),
                    kind: kind_label(&r.kind),
                    workload: Arc::new(r.workload.clone()),
                    revision: r.revision,
                };
                now.push(labels.clone());
                labels
            }
        };
        match r.budget_burned {
            Some(share) => {
                metrics.release_budget_burned.get_or_create(&labels).set(share);
            }
            None => {
                metrics.release_budget_burned.remove(&labels);
            }
        }
        metrics
            .release_started
            .get_or_create(&labels)
            .set(r.started_at.0.as_second());
    }
    // Kept until the next poll for each of thousands of SLOs: no room to spare.
    now.shrink_to_fit();
    now
}

/// Removes the metric series of releases no longer exported.
fn unexport(metrics: &Metrics, gone: &[ReleaseLabels]) {
    for labels in gone {
        metrics.release_budget_burned.remove(labels);
        metrics.release_started.remove(labels);
    }
}

/// The `kind` label of a release's workload.
fn kind_label(kind: &str) -> &'static str {
    [Kind::Deployment, Kind::Rollout]
        .into_iter()
        .map(Kind::as_str)
        .find(|k| *k == kind)
        .unwrap_or("other")
}

/// Whether the ledger changed in what `kubectl get slo -o yaml` is for: a release recorded, or
/// a release's share of the budget moved by [`SHARE_STEP`] (its errors, where the share is not
/// known).
fn worth_writing(stored: &[Told], next: &[ReleaseStatus]) -> bool {
    stored.len() != next.len()
        || stored.iter().zip(next).any(|(a, b)| {
            (a.release, a.started_at) != (identity(b), b.started_at.0)
                || match (a.budget_burned, b.budget_burned) {
                    (Some(x), Some(y)) => (x - y).abs() >= SHARE_STEP,
                    (None, None) => (a.errors - b.errors).abs() >= 1.0,
                    _ => true,
                }
        })
}

/// Whether the stored count is [`PERSIST_EVERY`] behind the one in memory, plus a share of
/// [`PERSIST_SPREAD`] of the SLO's own (from its uid): the ledgers a cold start recorded in one
/// poll are not all written again in one poll an hour later.
fn stale(stored: Option<Timestamp>, counted: Option<Timestamp>, uid: &str) -> bool {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    uid.hash(&mut h);
    let spread_seconds = i64::try_from(h.finish() % PERSIST_SPREAD.as_secs().unsigned_abs()).unwrap_or(0);
    let due = PERSIST_EVERY + jiff::SignedDuration::from_secs(spread_seconds);
    match (stored, counted) {
        (Some(s), Some(c)) => c.duration_since(s) >= due,
        (None, Some(_)) => true,
        _ => false,
    }
}

/// The Warnings for releases whose share of the budget reached `share` in this poll.
fn crossed(
    before: &[Told],
    after: &[ReleaseStatus],
    share: f64,
    window: &str,
) -> Vec<(EventType, &'static str, String)> {
    after
        .iter()
        .filter(|r| r.budget_burned.is_some_and(|b| b >= share))
        .filter(|r| {
            !before
                .iter()
                .any(|p| p.release == identity(r) && p.budget_burned.is_some_and(|b| b >= share))
        })
        .map(|r| {
            (
                EventType::Warning,
                "ReleaseBurnedBudget",
                format!(
                    "{} {} revision {} ({}) has burned {:.1}% of the {window} error budget since {} (burn rate {} since)",
                    r.kind,
                    r.workload,
                    r.revision,
                    r.images.join(", "),
                    r.budget_burned.unwrap_or_default() * 100.0,
                    crate::api::rfc3339(r.started_at.0),
                    r.burn_rate_since.map_or("unknown".to_string(), |b| format!("{b}")),
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::release::Tile;

    fn slo(status: serde_json::Value) -> ServiceLevelObjective {
        serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "u1", "labels": {"team": "pay"}},
            "spec": {"objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "e", "total": "t"}}},
            "status": status,
        }))
        .unwrap()
    }

    fn policy(name: &str, spec: serde_json::Value) -> Arc<ErrorBudgetPolicy> {
        let mut p = json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetPolicy",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"stages": [{"name": "page", "when": [{"burnRate": {"window": "1h", "above": 14.4}}],
                                  "actions": ["freezeDeployments"]}]},
        });
        for (k, v) in spec.as_object().unwrap() {
            p["spec"][k] = v.clone();
        }
        Arc::new(serde_json::from_value(p).unwrap())
    }

    fn workload(kind: &str, name: &str, labels: serde_json::Value) -> kube::api::DynamicObject {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "labels": labels}}))
        .unwrap()
    }

    fn revision(workload: &str, number: u64, created: &str) -> Revision {
        Revision {
            kind: Kind::Deployment,
            workload: workload.into(),
            number,
            reused: false,
            created: Some(created.parse().unwrap()),
            images: vec![format!("{workload}:{number}")],
        }
    }

    /// The policies of namespace `shop` and the releases its ReplicaSets run.
    fn followed(policies: Vec<Arc<ErrorBudgetPolicy>>, revisions: Option<Vec<Revision>>) -> Followed {
        let workloads = [
            (Kind::Deployment, workload("Deployment", "web", json!({"app": "web"}))),
            (
                Kind::Deployment,
                workload("Deployment", "batch", json!({"app": "batch"})),
            ),
        ];
        let policies = policies
            .into_iter()
            .map(|p| {
                let f = crate::policy::select::release_targets(&p, workloads.iter().map(|(k, w)| (*k, w)));
                (p, f)
            })
            .collect();
        Followed {
            namespaces: HashMap::from([(
                "shop".to_string(),
                Namespace {
                    policies,
                    current: revisions.as_deref().map(in_force_of),
                    changed_by: HashMap::from([(
                        (Kind::Deployment, "web".to_string()),
                        ("kubectl-set".to_string(), vec!["web:2".to_string()]),
                    )]),
                },
            )]),
        }
    }

    fn tile(end: &str, errors_per_second: f64) -> Tile {
        Tile {
            end: end.parse().unwrap(),
            length: jiff::SignedDuration::from_mins(5),
            errors_per_second,
            total_per_second: 100.0,
        }
    }

    /// The exposition lines of `metrics` that start with `prefix`.
    fn metric_lines(metrics: &Metrics, prefix: &str) -> Vec<String> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(String::from)
            .collect()
    }

    fn samples(tiles: Vec<Tile>) -> SloSamples {
        SloSamples {
            tiles,
            ..SloSamples::default()
        }
    }

    #[test]
    fn an_slo_follows_the_releases_of_what_its_policies_target() {
        let revisions = vec![
            revision("web", 1, "2027-01-15T07:00:00Z"),
            revision("web", 2, "2027-01-15T08:00:00Z"),
            revision("batch", 5, "2027-01-15T08:00:00Z"),
        ];
        let targets_web =
            json!({"slos": {"names": ["checkout"]}, "targets": {"deployments": {"matchLabels": {"app": "web"}}}});
        let f = followed(vec![policy("p", targets_web.clone())], Some(revisions.clone()));
        let in_force = f.in_force(&slo(json!({}))).unwrap();
        let seen: Vec<_> = in_force.values().map(|r| (r.workload.as_str(), r.number)).collect();
        assert_eq!(seen, [("web", 2)], "the newest revision of web; batch is no target");
        // A policy that freezes the namespace follows every workload in it.
        let whole = json!({"slos": {"selector": {"matchLabels": {"team": "pay"}}},
                           "stages": [{"name": "page", "when": [{"burnRate": {"window": "1h", "above": 14.4}}],
                                       "actions": ["freezeNamespace"]}]});
        let f = followed(vec![policy("p", whole)], Some(revisions.clone()));
        assert_eq!(f.in_force(&slo(json!({}))).unwrap().len(), 2);
        // No policy selects the SLO; or the ReplicaSets are not listed yet.
        let other = json!({"slos": {"names": ["other"]}, "targets": {"deployments": {"matchLabels": {"app": "web"}}}});
        assert!(
            followed(vec![policy("p", other)], Some(revisions))
                .in_force(&slo(json!({})))
                .is_none()
        );
        assert!(
            followed(vec![policy("p", targets_web)], None)
                .in_force(&slo(json!({})))
                .is_none()
        );
    }

    #[test]
    fn the_ledger_is_written_when_it_says_something_new_and_kept_in_memory_between() {
        let targets =
            json!({"slos": {"names": ["checkout"]}, "targets": {"deployments": {"matchLabels": {"app": "web"}}}});
        let f = followed(
            vec![policy("p", targets)],
            Some(vec![revision("web", 2, "2027-01-15T08:02:00Z")]),
        );
        let ledgers = Ledgers::default();
        let metrics = Metrics::default();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let quiet = slo(json!({}));
        // First poll: the release is recorded and written, with how far it was counted.
        let one = ledgers
            .update(
                &quiet,
                Some(&samples(vec![tile("2027-01-15T08:05:00Z", 0.0)])),
                &f,
                Some(1e6),
                0.1,
                at("2027-01-15T08:05:30Z"),
                &metrics,
            )
            .unwrap();
        let status = one.status.expect("a new release is written");
        assert_eq!(status["releases"][0]["workload"], "web");
        assert_eq!(status["releases"][0]["revision"], 2);
        assert_eq!(
            status["releases"][0]["changedBy"], "kubectl-set",
            "who wrote the template, by managedFields"
        );
        assert_eq!(status["releasesCountedThrough"], "2027-01-15T08:05:00Z");
        assert!(one.events.is_empty());
        let series = metric_lines(&metrics, "slo_warden_release_started_timestamp_seconds{");
        assert_eq!(series.len(), 1, "{series:?}");
        assert!(series[0].contains(r#"workload="web",revision="2""#), "{series:?}");
        // The cache still shows the SLO without it (our write not back yet): the term's memory
        // counts on, and the same tile is not counted twice.
        let again = ledgers
            .update(
                &quiet,
                Some(&samples(vec![tile("2027-01-15T08:05:00Z", 50.0)])),
                &f,
                Some(1e6),
                0.1,
                at("2027-01-15T08:06:00Z"),
                &metrics,
            )
            .unwrap();
        assert!(again.status.is_none(), "nothing new");
        // A burn: 300 s × 5/s = 1,500 errors of the 1,000 the window allows, told once.
        let burn = ledgers
            .update(
                &quiet,
                Some(&samples(vec![tile("2027-01-15T08:10:00Z", 5.0)])),
                &f,
                Some(1e6),
                0.1,
                at("2027-01-15T08:10:30Z"),
                &metrics,
            )
            .unwrap();
        let status = burn.status.expect("the share moved");
        assert_eq!(status["releases"][0]["errors"], 1500.0);
        assert_eq!(status["releases"][0]["budgetBurned"], 1.5);
        assert_eq!(burn.events.len(), 1);
        let (type_, reason, note) = &burn.events[0];
        assert_eq!((type_, *reason), (&EventType::Warning, "ReleaseBurnedBudget"));
        assert!(
            note.starts_with(
                "Deployment web revision 2 (web:2) has burned 150.0% of the 30d error budget since 2027-01-15T08:02:00Z"
            ),
            "{note}"
        );
        let later = ledgers
            .update(
                &quiet,
                Some(&samples(vec![tile("2027-01-15T08:15:00Z", 5.0)])),
                &f,
                Some(1e6),
                0.1,
                at("2027-01-15T08:15:30Z"),
                &metrics,
            )
            .unwrap();
        assert!(later.events.is_empty(), "told once");
        // A new term reads the status back: what was written, and nothing counted twice.
        let written = slo(
            json!({"releases": status["releases"], "releasesCountedFrom": status["releasesCountedFrom"],
                                 "releasesCountedThrough": status["releasesCountedThrough"]}),
        );
        let fresh = Ledgers::default();
        let next = fresh
            .update(
                &written,
                Some(&samples(vec![tile("2027-01-15T08:10:00Z", 5.0)])),
                &f,
                Some(1e6),
                0.1,
                at("2027-01-15T08:11:00Z"),
                &metrics,
            )
            .unwrap();
        assert!(next.status.is_none());
        assert!(next.events.is_empty(), "the status says it was told");
    }

    #[test]
    fn a_share_first_known_past_the_mark_is_told() {
        let targets =
            json!({"slos": {"names": ["checkout"]}, "targets": {"deployments": {"matchLabels": {"app": "web"}}}});
        let f = followed(
            vec![policy("p", targets)],
            Some(vec![revision("web", 2, "2027-01-15T08:02:00Z")]),
        );
        let ledgers = Ledgers::default();
        let metrics = Metrics::default();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let quiet = slo(json!({}));
        // The window's requests not read yet: errors counted, no share, nothing told.
        let one = ledgers
            .update(
                &quiet,
                Some(&samples(vec![tile("2027-01-15T08:05:00Z", 5.0)])),
                &f,
                None,
                0.1,
                at("2027-01-15T08:05:30Z"),
                &metrics,
            )
            .unwrap();
        assert!(one.events.is_empty());
        // Known now: 900 errors of the 1,000 allowed, told once.
        let two = ledgers
            .update(
                &quiet,
                Some(&samples(vec![])),
                &f,
                Some(1e6),
                0.1,
                at("2027-01-15T08:06:00Z"),
                &metrics,
            )
            .unwrap();
        assert_eq!(two.events.len(), 1, "{:?}", two.events);
        assert!(two.status.is_some(), "written with the status that says it");
        let three = ledgers
            .update(
                &quiet,
                Some(&samples(vec![])),
                &f,
                Some(1e6),
                0.1,
                at("2027-01-15T08:06:30Z"),
                &metrics,
            )
            .unwrap();
        assert!(three.events.is_empty());
        // The write failed: told again with the next one.
        ledgers.unwritten("u1");
        let four = ledgers
            .update(
                &quiet,
                Some(&samples(vec![])),
                &f,
                Some(1e6),
                0.1,
                at("2027-01-15T08:07:00Z"),
                &metrics,
            )
            .unwrap();
        assert_eq!(four.events.len(), 1);
    }

    #[test]
    fn an_slo_no_policy_follows_has_no_ledger() {
        let f = followed(vec![], Some(vec![revision("web", 2, "2027-01-15T08:02:00Z")]));
        let ledgers = Ledgers::default();
        let metrics = Metrics::default();
        assert!(
            ledgers
                .update(
                    &slo(json!({})),
                    None,
                    &f,
                    None,
                    0.1,
                    "2027-01-15T08:05:00Z".parse().unwrap(),
                    &metrics,
                )
                .is_none()
        );
    }

    #[test]
    fn counting_is_written_about_every_hour_spread_over_half_an_hour() {
        let at = |s: &str| Some(s.parse::<Timestamp>().unwrap());
        let written = at("2027-01-15T08:00:00Z");
        // Every SLO within an hour and a half, none before an hour.
        let uids: Vec<String> = (0..1000).map(|i| format!("uid-{i}")).collect();
        for uid in &uids {
            assert!(!stale(written, at("2027-01-15T08:59:59Z"), uid));
            assert!(stale(written, at("2027-01-15T09:30:00Z"), uid));
        }
        // Spread: about a sixth of them due in the first five minutes of the half hour.
        let early = uids
            .iter()
            .filter(|u| stale(written, at("2027-01-15T09:05:00Z"), u))
            .count();
        assert!((100..=240).contains(&early), "{early} of 1000");
        assert!(stale(None, at("2027-01-15T08:30:00Z"), "u1"));
        assert!(!stale(None, None, "u1"));
    }

    #[test]
    fn the_series_of_a_gone_slo_are_removed_when_the_poll_ends() {
        let targets =
            json!({"slos": {"names": ["checkout"]}, "targets": {"deployments": {"matchLabels": {"app": "web"}}}});
        let f = followed(
            vec![policy("p", targets)],
            Some(vec![revision("web", 2, "2027-01-15T08:02:00Z")]),
        );
        let (ledgers, metrics) = (Ledgers::default(), Metrics::default());
        let at: Timestamp = "2027-01-15T08:05:30Z".parse().unwrap();
        let tiles = samples(vec![tile("2027-01-15T08:05:00Z", 0.0)]);
        ledgers.update(&slo(json!({})), Some(&tiles), &f, Some(1e6), 0.1, at, &metrics);
        ledgers.finish_poll(&metrics);
        let started = "slo_warden_release_started_timestamp_seconds{";
        assert_eq!(metric_lines(&metrics, started).len(), 1);
        // A new revision replaces the series of the old one.
        let f2 = followed(
            vec![policy(
                "p",
                json!({"slos": {"names": ["checkout"]}, "targets": {"deployments": {"matchLabels": {"app": "web"}}}}),
            )],
            Some(vec![
                revision("web", 2, "2027-01-15T08:02:00Z"),
                revision("web", 3, "2027-01-15T08:06:00Z"),
            ]),
        );
        ledgers.update(&slo(json!({})), Some(&tiles), &f2, Some(1e6), 0.1, at, &metrics);
        ledgers.finish_poll(&metrics);
        let series = metric_lines(&metrics, started);
        assert_eq!(series.len(), 1, "{series:?}");
        assert!(series[0].contains(r#"revision="3""#), "{series:?}");
        // The SLO is gone: the next poll does not see it, and its series go with its ledger.
        ledgers.finish_poll(&metrics);
        assert!(metric_lines(&metrics, started).is_empty());
        assert!(ledgers.inner.lock().unwrap().kept.is_empty());
    }
}
