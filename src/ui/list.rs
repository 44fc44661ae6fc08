//! The SLO list: every SLO of every connected cluster, searched, filtered, sorted and paged from
//! the watch caches on each request (ten thousand SLOs are summarised in a few milliseconds; only
//! the page shown is rendered).

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::{Resource, ResourceExt};

use super::clusters::Cluster;
use super::paging::{Paged, Paging};
use super::summary::{self, State, Summary};
use crate::cache::Guarded;

/// What every list's query string may ask (the SLOs, the ledger): search words, a cluster, a
/// namespace, a page; every field bounded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    /// Words that must all appear in what the list searches.
    pub words: Vec<String>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub paging: Paging,
}

impl Scope {
    /// Reads `q`, `cluster`, `namespace`, `page` or `per`: `Ok(false)` for another key, an error
    /// that names the parameter.
    pub fn read(&mut self, key: &str, value: &str) -> Result<bool, String> {
        if self.paging.read(key, value)? {
            return Ok(true);
        }
        match key {
            "q" => self.words = words(value)?,
            "namespace" => self.namespace = bounded("namespace", value, 253)?,
            "cluster" => self.cluster = bounded("cluster", value, 63)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The link to page `page` of a list at `path` asked for with this scope and the list's own
    /// parameters (`extra`): `path?q=..&cluster=..&namespace=..&<extra>&page=..&per=..`, what is
    /// empty or the default left out.
    pub fn link(&self, path: &str, extra: &[(&str, Option<&str>)], page: usize) -> String {
        let words = self.words.join(" ");
        let [page, per] = Paging { page, ..self.paging }.pairs();
        let own = [
            ("q", Some(words.as_str())),
            ("cluster", self.cluster.as_deref()),
            ("namespace", self.namespace.as_deref()),
        ];
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (key, value) in own
            .into_iter()
            .chain(extra.iter().copied())
            .chain([(page.0, page.1.as_deref()), (per.0, per.1.as_deref())])
        {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                s.append_pair(key, v);
            }
        }
        format!("{path}?{}", s.finish())
    }

    /// Whether the cluster and namespace filters keep an object of `cluster` and `namespace`.
    pub fn keeps(&self, cluster: &str, namespace: &str) -> bool {
        self.cluster.as_deref().is_none_or(|c| c == cluster) && self.namespace.as_deref().is_none_or(|n| n == namespace)
    }
}

/// What a request asks of the list, as its query string says it; every field bounded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// The words must all appear in the cluster, namespace, name, service or a `label=value`.
    pub scope: Scope,
    pub state: Option<State>,
    pub sort: Sort,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// Least budget left first (none read: last).
    #[default]
    Budget,
    /// Fastest burn over the last hour first.
    Burn,
    /// Highest long-run burn first: the objectives the service keeps missing.
    LongRun,
    /// Worst state first, then least budget.
    State,
    /// Objectives that do not fit first (too tight, then too loose), then highest long-run burn.
    Calibration,
    /// By cluster, namespace and name.
    Name,
}

impl Sort {
    pub const ALL: [(Sort, &'static str, &'static str); 6] = [
        (Sort::Budget, "budget", "Budget left (least first)"),
        (Sort::Burn, "burn", "Burn rate 1h (fastest first)"),
        (Sort::LongRun, "longrun", "Long-run burn (highest first)"),
        (Sort::State, "state", "State (worst first)"),
        (Sort::Calibration, "calibration", "Calibration (misfits first)"),
        (Sort::Name, "name", "Name"),
    ];

    pub fn key(self) -> &'static str {
        named(&Self::ALL, self).0
    }
}

/// The longest search accepted (characters).
pub const MAX_SEARCH: usize = 200;
const MAX_WORDS: usize = 16;

impl Query {
    /// From the query string's parameters (`q`, `namespace`, `cluster`, `state`, `sort`, `page`,
    /// `per`); an error names the parameter and what it takes.
    pub fn parse<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut q = Query::default();
        for (key, value) in params {
            let value = value.trim();
            if q.scope.read(key, value)? {
                continue;
            }
            match key {
                "state" if value.is_empty() => q.state = None,
                "state" => {
                    q.state = Some(
                        State::parse(value)
                            .ok_or_else(|| format!("state: one of {}", State::ALL.map(State::as_str).join(", ")))?,
                    )
                }
                "sort" => q.sort = pick("sort", value, &Sort::ALL)?,
                // Anything else is ignored, as a browser's form may add.
                _ => {}
            }
        }
        Ok(q)
    }

    fn matches(&self, cluster: &str, slo: &Guarded) -> bool {
        let ns = slo.namespace().unwrap_or_default();
        if !self.scope.keeps(cluster, &ns) {
            return false;
        }
        if self.scope.words.is_empty() {
            return true;
        }
        let name = slo.name_any();
        let service = slo
            .0
            .as_ref()
            .ok()
            .and_then(|s| s.spec.service.as_deref())
            .unwrap_or_default();
        self.scope.words.iter().all(|word| {
            [cluster, ns.as_str(), name.as_str(), service]
                .iter()
                .any(|text| contains_folded(text, word))
                || slo.labels().iter().any(|(k, v)| {
                    contains_folded(k, word)
                        || contains_folded(v, word)
                        || word
                            .split_once('=')
                            .is_some_and(|(wk, wv)| k.eq_ignore_ascii_case(wk) && v.eq_ignore_ascii_case(wv))
                })
        })
    }
}

/// The words of a search box (lower case, at most [`MAX_WORDS`] of them); at most
/// [`MAX_SEARCH`] characters in all.
pub(crate) fn words(value: &str) -> Result<Vec<String>, String> {
    if value.chars().count() > MAX_SEARCH {
        return Err(format!("q: at most {MAX_SEARCH} characters"));
    }
    Ok(value
        .split_whitespace()
        .take(MAX_WORDS)
        .map(str::to_lowercase)
        .collect())
}

/// One of a short list of `(value, key, words)` by its key (`sort=burn`); an empty value is the
/// default; an error names the parameter and the keys it takes.
pub(crate) fn pick<T: Copy + Default>(
    what: &str,
    value: &str,
    all: &[(T, &'static str, &'static str)],
) -> Result<T, String> {
    if value.is_empty() {
        return Ok(T::default());
    }
    all.iter()
        .find(|(_, k, _)| *k == value)
        .map(|(t, _, _)| *t)
        .ok_or_else(|| {
            format!(
                "{what}: one of {}",
                all.iter().map(|(_, k, _)| *k).collect::<Vec<_>>().join(", ")
            )
        })
}

/// The key and the words of `value` in its short list ([`pick`]'s other way round).
pub(crate) fn named<T: PartialEq>(all: &[(T, &'static str, &'static str)], value: T) -> (&'static str, &'static str) {
    all.iter()
        .find(|(t, _, _)| *t == value)
        .map_or(("", ""), |(_, k, w)| (*k, *w))
}

pub(crate) fn bounded(what: &str, value: &str, max: usize) -> Result<Option<String>, String> {
    if value.len() > max {
        return Err(format!("{what}: at most {max} characters"));
    }
    Ok((!value.is_empty()).then(|| value.to_string()))
}

/// Whether `text` contains `word` (already lower case), ignoring ASCII case.
pub(crate) fn contains_folded(text: &str, word: &str) -> bool {
    if text.is_ascii() && word.is_ascii() {
        text.as_bytes()
            .windows(word.len().max(1))
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
            || word.is_empty()
    } else {
        text.to_lowercase().contains(word)
    }
}

/// One SLO of the list.
#[derive(Clone, Debug)]
pub struct Row {
    pub cluster: Arc<str>,
    pub slo: Arc<Guarded>,
    pub summary: Summary,
}

/// A page of the list, and what the filters and the page picker need.
#[derive(Debug)]
pub struct Listed {
    /// The page asked for of the SLOs that pass the filters.
    pub paged: Paged<Row>,
    /// Every SLO of the connected clusters.
    pub total: usize,
    /// Of the matching SLOs, how many are in each state (in [`State::ALL`]'s order).
    pub by_state: [usize; 5],
    pub namespaces: BTreeSet<String>,
}

pub fn list(clusters: &[Cluster], query: &Query) -> Listed {
    let mut namespaces = BTreeSet::new();
    let mut total = 0;
    let mut by_state = [0usize; 5];
    let mut rows: Vec<Row> = Vec::new();
    for cluster in clusters {
        for slo in cluster.slos.state() {
            total += 1;
            if let Some(ns) = slo.meta().namespace.as_deref()
                && !namespaces.contains(ns)
            {
                namespaces.insert(ns.to_string());
            }
            if !query.matches(&cluster.name, &slo) {
                continue;
            }
            let summary = summary::summarise(&slo);
            by_state[State::ALL.iter().position(|s| *s == summary.state).unwrap_or(0)] += 1;
            if query.state.is_some_and(|s| s != summary.state) {
                continue;
            }
            rows.push(Row {
                cluster: cluster.name.clone(),
                slo,
                summary,
            });
        }
    }
    sort(&mut rows, query.sort);
    Listed {
        paged: query.scope.paging.slice(rows),
        total,
        by_state,
        namespaces,
    }
}

fn sort(rows: &mut [Row], by: Sort) {
    // `None` last whichever way a number sorts; NaN never reaches a status.
    let low_first = |v: Option<f64>| (v.is_none(), v.unwrap_or(0.0));
    let high_first = |v: Option<f64>| (v.is_none(), -v.unwrap_or(0.0));
    fn name(r: &Row) -> (&str, Option<&str>, Option<&str>) {
        let meta = r.slo.meta();
        (&r.cluster, meta.namespace.as_deref(), meta.name.as_deref())
    }
    let cmp = |a: (bool, f64), b: (bool, f64)| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1));
    rows.sort_by(|a, b| {
        let (x, y) = (&a.summary, &b.summary);
        match by {
            Sort::Budget => cmp(low_first(x.remaining), low_first(y.remaining)),
            Sort::Burn => cmp(high_first(x.burn_1h), high_first(y.burn_1h)),
            Sort::LongRun => cmp(high_first(x.long_run), high_first(y.long_run)),
            Sort::State => x
                .state
                .cmp(&y.state)
                .then(cmp(low_first(x.remaining), low_first(y.remaining))),
            Sort::Calibration => x
                .fit
                .cmp(&y.fit)
                .then(cmp(high_first(x.long_run), high_first(y.long_run))),
            Sort::Name => std::cmp::Ordering::Equal,
        }
        .then_with(|| name(a).cmp(&name(b)))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn slo(
        ns: &str,
        name: &str,
        remaining: Option<f64>,
        state: &str,
        burn: f64,
    ) -> crate::api::ServiceLevelObjective {
        let mut budget = json!({"state": state, "burnRates": {"1h": burn}, "longRunBurnRate": burn / 2.0});
        if let Some(r) = remaining {
            budget["remaining"] = json!(r);
        }
        serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": name, "namespace": ns, "labels": {"team": format!("team-{ns}")}},
            "spec": {"service": format!("{name}-svc"), "objective": 99.9, "window": "30d", "indicator": {"raw": {"errorRatio": "x"}}},
            "status": {"budget": budget},
        }))
        .unwrap()
    }

    fn clusters() -> Vec<Cluster> {
        vec![
            Cluster::holding(
                "east",
                vec![
                    slo("shop", "checkout", Some(0.2), "Burning", 14.0),
                    slo("shop", "cart", Some(0.9), "Healthy", 0.5),
                    slo("search", "query", None, "NoData", 0.0),
                ],
                vec![],
                vec![],
            ),
            Cluster::holding(
                "west",
                vec![
                    slo("shop", "checkout", Some(-0.1), "Exhausted", 2.0),
                    slo("pay", "charge", Some(0.5), "Healthy", 1.0),
                ],
                vec![],
                vec![],
            ),
        ]
    }

    fn names(listed: &Listed) -> Vec<String> {
        listed
            .paged
            .rows
            .iter()
            .map(|r| format!("{}/{}/{}", r.cluster, r.slo.namespace().unwrap(), r.slo.name_any()))
            .collect()
    }

    fn query(s: &str) -> Query {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(s.as_bytes()).into_owned().collect();
        Query::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap()
    }

    #[test]
    fn sorted_by_budget_left_by_default_none_last() {
        let listed = list(&clusters(), &query(""));
        assert_eq!(
            names(&listed),
            [
                "west/shop/checkout",
                "east/shop/checkout",
                "west/pay/charge",
                "east/shop/cart",
                "east/search/query"
            ]
        );
        assert_eq!((listed.total, listed.paged.matching, listed.paged.pages), (5, 5, 1));
        assert_eq!(listed.by_state, [0, 1, 1, 1, 2]);
        assert_eq!(listed.namespaces.iter().collect::<Vec<_>>(), ["pay", "search", "shop"]);
    }

    #[test]
    fn each_sort() {
        let first = |s: &str| names(&list(&clusters(), &query(s)))[0].clone();
        assert_eq!(first("sort=burn"), "east/shop/checkout");
        assert_eq!(first("sort=longrun"), "east/shop/checkout");
        assert_eq!(first("sort=state"), "west/shop/checkout");
        assert_eq!(first("sort=name"), "east/search/query");
        assert_eq!(
            first("sort=calibration"),
            "east/shop/checkout",
            "no history: by long-run burn"
        );
    }

    #[test]
    fn filters_and_search_narrow_it_and_the_counts_follow() {
        assert_eq!(
            names(&list(&clusters(), &query("cluster=west"))),
            ["west/shop/checkout", "west/pay/charge"]
        );
        assert_eq!(
            names(&list(&clusters(), &query("namespace=shop&state=healthy"))),
            ["east/shop/cart"]
        );
        let searched = list(&clusters(), &query("q=CHECK+east"));
        assert_eq!(names(&searched), ["east/shop/checkout"]);
        assert_eq!(searched.paged.matching, 1);
        assert_eq!(
            names(&list(&clusters(), &query("q=team=team-pay"))),
            ["west/pay/charge"]
        );
        assert_eq!(names(&list(&clusters(), &query("q=cart-svc"))), ["east/shop/cart"]);
        // The state counts are of what the other filters let through, whatever the state filter.
        let burning = list(&clusters(), &query("namespace=shop&state=Burning"));
        assert_eq!((burning.paged.matching, burning.by_state), (1, [0, 1, 1, 0, 1]));
    }

    #[test]
    fn each_sort_has_its_key_and_words_both_ways() {
        for (sort, key, words) in Sort::ALL {
            assert_eq!((sort.key(), named(&Sort::ALL, sort).1), (key, words));
            assert_eq!(pick("sort", key, &Sort::ALL), Ok(sort));
        }
    }

    #[test]
    fn a_page_link_keeps_what_was_asked_and_leaves_out_the_defaults() {
        let q = query("q=Check+east&namespace=shop&per=50&page=3&state=Burning");
        assert_eq!(
            q.scope.link("/", &[("state", Some("Burning")), ("sort", None)], 4),
            "/?q=check+east&namespace=shop&state=Burning&page=4&per=50"
        );
        assert_eq!(
            query("cluster=a+b").scope.link("/releases", &[], 1),
            "/releases?cluster=a+b",
            "page 1 and 100 a page are the defaults"
        );
    }

    #[test]
    fn pages_hold_what_was_asked_and_a_page_past_the_end_shows_the_last() {
        let second = list(&clusters(), &query("per=10&page=1"));
        assert_eq!((second.paged.rows.len(), second.paged.pages), (5, 1));
        let past = list(&clusters(), &query("page=9"));
        assert_eq!((past.paged.page, past.paged.rows.len()), (1, 5));
    }

    #[test]
    fn bad_parameters_are_named() {
        let parse = |s: &str| {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(s.as_bytes()).into_owned().collect();
            Query::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap_err()
        };
        assert_eq!(
            parse("sort=fast"),
            "sort: one of budget, burn, longrun, state, calibration, name"
        );
        assert_eq!(parse("page=0"), "page: a whole number from 1 to 1000000");
        assert_eq!(parse("per=100000"), "per: a whole number from 10 to 500");
        assert_eq!(
            parse("state=red"),
            "state: one of Invalid, Exhausted, Burning, NoData, Healthy"
        );
        assert_eq!(parse(&format!("q={}", "x".repeat(201))), "q: at most 200 characters");
        assert_eq!(
            parse(&format!("namespace={}", "x".repeat(254))),
            "namespace: at most 253 characters"
        );
    }

    #[test]
    fn folded_search_ignores_case_in_any_script() {
        assert!(contains_folded("Checkout-API", "api"));
        assert!(!contains_folded("cart", "api"));
        assert!(contains_folded("Ünïcode", "ünï"));
    }
}
