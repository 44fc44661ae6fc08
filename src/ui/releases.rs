//! The release ledger across SLOs (`/releases`): every release the SLOs' statuses record (the
//! workloads their policies follow), with the budget each burned, newest or costliest first,
//! searched, filtered and paged from the watch caches (pure).

use std::sync::Arc;

use kube::ResourceExt;

use super::clusters::Cluster;
use super::list::{Scope, contains_folded, named, pick};
use super::paging::Paged;
use crate::api::{ReleaseStatus, ServiceLevelObjective};
use crate::cache::Guarded;

/// What a request asks of the ledger; every field bounded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// The words must all appear in the cluster, namespace, SLO, workload, an image or who.
    pub scope: Scope,
    pub sort: Sort,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// Latest start first.
    #[default]
    Newest,
    /// Most budget burned first (unknown last).
    Burned,
}

impl Sort {
    pub const ALL: [(Sort, &'static str, &'static str); 2] = [
        (Sort::Newest, "newest", "Started (latest first)"),
        (Sort::Burned, "burned", "Budget burned (most first)"),
    ];

    pub fn key(self) -> &'static str {
        named(&Self::ALL, self).0
    }
}

impl Query {
    /// From the query string's parameters (`q`, `cluster`, `namespace`, `sort`, `page`, `per`).
    pub fn parse<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut q = Query::default();
        for (key, value) in params {
            let value = value.trim();
            // Anything else is ignored, as a browser's form may add.
            if !q.scope.read(key, value)? && key == "sort" {
                q.sort = pick("sort", value, &Sort::ALL)?;
            }
        }
        Ok(q)
    }
}

/// One release as one SLO's status records it: the cached SLO, shared, and which of its releases.
#[derive(Clone, Debug)]
pub struct Row {
    pub cluster: Arc<str>,
    slo: Arc<Guarded>,
    index: usize,
}

impl Row {
    pub fn slo(&self) -> Option<&ServiceLevelObjective> {
        self.slo.0.as_ref().ok()
    }

    pub fn release(&self) -> Option<&ReleaseStatus> {
        self.slo()?.status.as_ref()?.releases.get(self.index)
    }
}

/// The ledger's page, and what the filters need.
pub struct Ledger {
    pub paged: Paged<Row>,
    /// Releases of every SLO of the connected clusters.
    pub total: usize,
    /// Namespaces with a recorded release, for the choices.
    pub namespaces: std::collections::BTreeSet<String>,
}

pub fn ledger(clusters: &[Cluster], query: &Query) -> Ledger {
    let mut rows = Vec::new();
    let mut total = 0;
    let mut namespaces = std::collections::BTreeSet::new();
    for cluster in clusters {
        for cached in cluster.slos.state() {
            let Ok(slo) = &cached.0 else { continue };
            let Some(status) = slo.status.as_ref().filter(|s| !s.releases.is_empty()) else {
                continue;
            };
            total += status.releases.len();
            let ns = slo.namespace().unwrap_or_default();
            if !query.scope.keeps(&cluster.name, &ns) {
                namespaces.insert(ns);
                continue;
            }
            let name = slo.name_any();
            for (index, r) in status.releases.iter().enumerate() {
                let matches = query.scope.words.iter().all(|word| {
                    [
                        &*cluster.name,
                        ns.as_str(),
                        name.as_str(),
                        r.kind.as_str(),
                        r.workload.as_str(),
                    ]
                    .into_iter()
                    .chain(r.images.iter().map(String::as_str))
                    .chain(r.changed_by.as_deref())
                    .any(|text| contains_folded(text, word))
                });
                if matches {
                    rows.push(Row {
                        cluster: cluster.name.clone(),
                        slo: cached.clone(),
                        index,
                    });
                }
            }
            namespaces.insert(ns);
        }
    }
    // Each row's sort key once (a comparison then copies nothing).
    let mut keyed: Vec<_> = rows
        .into_iter()
        .map(|row| {
            let (r, slo) = (row.release(), row.slo());
            let started = r.map(|r| r.started_at.0);
            let burned = r.and_then(|r| r.budget_burned).filter(|b| b.is_finite());
            let name = (
                row.cluster.clone(),
                slo.and_then(|s| s.namespace()),
                slo.map(|s| s.name_any()),
                r.map(|r| (r.workload.clone(), std::cmp::Reverse(r.revision))),
            );
            ((started, burned, name), row)
        })
        .collect();
    match query.sort {
        Sort::Newest => keyed.sort_by(|((sa, _, na), _), ((sb, _, nb), _)| sb.cmp(sa).then_with(|| na.cmp(nb))),
        // Unknown last; then the most burned; then the latest.
        Sort::Burned => keyed.sort_by(|((sa, ba, na), _), ((sb, bb, nb), _)| {
            ba.is_none()
                .cmp(&bb.is_none())
                .then_with(|| bb.unwrap_or(0.0).total_cmp(&ba.unwrap_or(0.0)))
                .then_with(|| sb.cmp(sa))
                .then_with(|| na.cmp(nb))
        }),
    }
    let rows: Vec<Row> = keyed.into_iter().map(|(_, row)| row).collect();
    Ledger {
        paged: query.scope.paging.slice(rows),
        total,
        namespaces,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slo(ns: &str, name: &str, releases: serde_json::Value) -> ServiceLevelObjective {
        serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"objective": 99.9, "window": "30d", "indicator": {"raw": {"errorRatio": "x"}}},
            "status": {"releases": releases},
        }))
        .unwrap()
    }

    fn release(workload: &str, revision: u64, started: &str, burned: Option<f64>, image: &str) -> serde_json::Value {
        json!({"kind": "Deployment", "workload": workload, "revision": revision, "images": [image],
               "changedBy": "argocd-controller", "startedAt": started, "budgetBurned": burned})
    }

    fn clusters() -> Vec<Cluster> {
        vec![
            Cluster::holding(
                "prod",
                vec![
                    slo(
                        "shop",
                        "checkout",
                        json!([
                            release("web", 7, "2027-01-15T09:00:00Z", Some(0.4), "web:1.7"),
                            release("web", 6, "2027-01-14T09:00:00Z", Some(0.01), "web:1.6"),
                        ]),
                    ),
                    slo(
                        "shop",
                        "cart",
                        json!([release("cart", 3, "2027-01-15T10:00:00Z", None, "cart:3")]),
                    ),
                    slo("shop", "quiet", json!([])),
                ],
                vec![],
                vec![],
            ),
            Cluster::holding(
                "staging",
                vec![slo(
                    "search",
                    "query",
                    json!([release("api", 2, "2027-01-13T09:00:00Z", Some(0.9), "api:2")]),
                )],
                vec![],
                vec![],
            ),
        ]
    }

    fn query(s: &str) -> Query {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(s.as_bytes()).into_owned().collect();
        Query::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap()
    }

    fn shown(l: &Ledger) -> Vec<String> {
        l.paged
            .rows
            .iter()
            .map(|r| {
                let rel = r.release().unwrap();
                format!(
                    "{}/{}/{}#{}",
                    r.cluster,
                    r.slo().unwrap().name_any(),
                    rel.workload,
                    rel.revision
                )
            })
            .collect()
    }

    #[test]
    fn newest_first_across_clusters_and_slos() {
        let l = ledger(&clusters(), &Query::default());
        assert_eq!(
            shown(&l),
            [
                "prod/cart/cart#3",
                "prod/checkout/web#7",
                "prod/checkout/web#6",
                "staging/query/api#2"
            ]
        );
        assert_eq!((l.total, l.paged.matching), (4, 4));
        assert_eq!(l.namespaces.iter().collect::<Vec<_>>(), ["search", "shop"]);
    }

    #[test]
    fn the_costliest_first_unknown_last() {
        let l = ledger(&clusters(), &query("sort=burned"));
        assert_eq!(
            shown(&l),
            [
                "staging/query/api#2",
                "prod/checkout/web#7",
                "prod/checkout/web#6",
                "prod/cart/cart#3"
            ]
        );
    }

    #[test]
    fn filters_and_search_keep_what_they_name() {
        assert_eq!(
            shown(&ledger(&clusters(), &query("cluster=staging"))),
            ["staging/query/api#2"]
        );
        assert_eq!(
            shown(&ledger(&clusters(), &query("namespace=shop&q=WEB:1.6"))),
            ["prod/checkout/web#6"]
        );
        let none = ledger(&clusters(), &query("q=nothing-like-it"));
        assert_eq!((none.paged.rows.len(), none.total), (0, 4));
        // The choices list every namespace with releases, whatever the filters keep.
        assert_eq!(ledger(&clusters(), &query("cluster=staging")).namespaces.len(), 2);
    }

    #[test]
    fn each_sort_has_its_key() {
        assert_eq!((Sort::Newest.key(), Sort::Burned.key()), ("newest", "burned"));
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let parse = |s: &str| {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(s.as_bytes()).into_owned().collect();
            Query::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap_err()
        };
        assert_eq!(parse("sort=oldest"), "sort: one of newest, burned");
        assert_eq!(parse(&format!("q={}", "x".repeat(201))), "q: at most 200 characters");
        assert_eq!(parse("per=5"), "per: a whole number from 10 to 500");
    }
}
