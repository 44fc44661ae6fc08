//! The queries of one poll cycle, and how their answers become per-SLO samples.
//!
//! Every query selects by record name across all SLOs and the answers are split by the
//! `namespace`/`slo` labels, so a cycle costs the same few queries for 1 SLO or 10,000.
//!
//! Any tenant who can load a rule can record a series with any name and labels, so a series
//! counts for an SLO only when it is what that SLO's own rules write:
//! - its labels are exactly those our rules set (the name, `namespace`, `slo` and the
//!   [`MARKER_LABEL`] naming the same SLO), plus the external labels a querier adds;
//! - its samples lie on the evaluation schedule of the rule group that records it. A group is
//!   evaluated at a fixed offset (a hash of its name and file) on its interval, so a second
//!   writer of the same series shows up as samples off that grid, and a series recorded by
//!   another group as a different offset from the SLO's other records. Every query reads a
//!   range of two evaluations (and a margin, [`reach`]) for this, which also keeps the read
//!   sample's own timestamp;
//! - a firing burn alert counts only when it was written by the same evaluations as the SLO's
//!   own short-window records.
//!
//! A series that fails the label check is ignored and counted ([`Rejected`]); two writers of
//! one SLO's record make its data *disputed*: nothing it says is used, and the policy holds
//! its stage until the other writer is gone, rather than picking the worse of the two.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{SloKey, SloSamples, Windows};
use crate::duration::Duration;
use crate::rules::{
    BUDGET, BUDGET_REMAINING, CALIBRATION_INTERVAL, LONG_RUN_BURN, LONG_RUN_COVERED, MARKER_LABEL, REQUESTS_PREFIX,
    SCRAPE_INTERVAL, TILE, WINDOW_COVERED, errors_short_tile, marker, total_short_tile,
};

/// Record names of the error ratios are this prefix and the window (`error_ratio_record`).
pub const RATIO_PREFIX: &str = "slo:sli_error:ratio_rate";

/// The namespaces a cycle reads: those the operator watches. An operator limited to some
/// namespaces reads only their SLOs' series, however many other SLOs share the Prometheus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The matcher added to every selector (`,namespace="shop"`), empty for all namespaces.
    matcher: String,
}

impl Scope {
    /// The watched namespaces (the operator gives them checked, sorted and unique); all
    /// namespaces when empty. Namespace names are DNS labels, which hold no character a
    /// regular expression or a PromQL string would read specially.
    pub fn new(namespaces: &[String]) -> Self {
        let matcher = match namespaces {
            [] => String::new(),
            [one] => format!(r#",namespace="{one}""#),
            many => format!(r#",namespace=~"{}""#, many.join("|")),
        };
        Self { matcher }
    }
}

/// One query of the cycle: what it reads (for error messages) and its PromQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub what: &'static str,
    pub promql: String,
}

/// How far back a query reads the series of a group that runs every `interval`: two
/// evaluations, and up to a minute more. The newest evaluation stamps its samples with its
/// start and writes them when it ends, so a read of exactly two intervals that lands between the
/// two sees one sample only, and would take every SLO's value for unproven (a value counts once
/// its writer has written it twice on schedule) for that cycle.
fn reach(interval: Duration) -> Duration {
    let margin = interval.as_millis().min(Duration::minutes(1).as_millis());
    Duration::from_millis(2 * interval.as_millis() + margin)
}

/// Error ratios over the windows shorter than a day, recorded by the `sli` group every
/// `alert_interval`. `Duration`'s spelling of those never contains `d`, and of the longer ones
/// always starts with `<n>d`, which is what tells the two record groups apart. `slo!=""`
/// leaves out same-named series of other tools (Sloth records `slo:sli_error:ratio_rate5m`
/// too, with `sloth_*` labels). A range selector keeps `__name__` (without which the series of
/// one SLO would collide in Prometheus 2) and each sample's own timestamp.
///
/// With them, the request counts over the `requests` windows shorter than a day: those the
/// policies' `minRequests` read (every SLO records them for every window; reading them all
/// would double what a cycle holds).
///
/// And the group's last tiles of errors and requests (every sample of the range, not only the
/// newest): what the release ledger counts.
pub fn short_ratios(scope: &Scope, alert_interval: Duration, requests: &BTreeSet<Duration>) -> Query {
    Query {
        what: "reading the short-window error ratios",
        promql: format!(
            r#"{{__name__=~"{RATIO_PREFIX}[0-9]+[hms].*|{}|{}{}",slo!=""{}}}[{}]"#,
            errors_short_tile(alert_interval),
            total_short_tile(alert_interval),
            request_counts(requests.iter().filter(|w| !tiled(**w))),
            scope.matcher,
            reach(alert_interval)
        ),
    }
}

/// Whether a window is recorded by the `window` group (a day or more), whose spelling starts
/// with `<n>d`.
fn tiled(window: Duration) -> bool {
    window >= Duration::days(1)
}

/// `|slo:sli_requests:count(1h|6h)`: an alternative of a name regex matching the request counts
/// of `windows`; empty for none.
fn request_counts<'a>(windows: impl Iterator<Item = &'a Duration>) -> String {
    let spelled: Vec<String> = windows.map(ToString::to_string).collect();
    if spelled.is_empty() {
        String::new()
    } else {
        format!("|{REQUESTS_PREFIX}({})", spelled.join("|"))
    }
}

/// Error ratios over a day or more, the budget and what is left of it, and the measured
/// sampling interval of the request series. Their group is
/// evaluated every 5 minutes, exactly Prometheus' instant look-back, so an instant read may
/// land between two samples and see nothing: this reads a range of two evaluations and keeps
/// each series' last sample.
/// With them, the request counts over the `requests` windows of a day or more.
pub fn window_ratios_and_budgets(scope: &Scope, requests: &BTreeSet<Duration>) -> Query {
    Query {
        what: "reading the error budgets and long-window error ratios",
        promql: format!(
            r#"{{__name__=~"{RATIO_PREFIX}[0-9]+d.*|{BUDGET_REMAINING}|{BUDGET}|{SCRAPE_INTERVAL}{}",slo!=""{}}}[{}]"#,
            request_counts(requests.iter().filter(|w| tiled(**w))),
            scope.matcher,
            reach(TILE)
        ),
    }
}

/// The long-run burn rates and their coverage, and how much of the SLO window the data covers,
/// recorded hourly: read over two evaluations, as the window ratios are.
pub fn long_run(scope: &Scope) -> Query {
    Query {
        what: "reading the long-run burn rates",
        promql: format!(
            r#"{{__name__=~"{LONG_RUN_BURN}|{LONG_RUN_COVERED}|{WINDOW_COVERED}",slo!=""{}}}[{}]"#,
            scope.matcher,
            reach(CALIBRATION_INTERVAL)
        ),
    }
}

/// Firing and pending burn-rate alerts, whatever their configured name (only they carry
/// `long`), over the same range as the short ratios, whose evaluations write them. A pending
/// alert is not known to be quiet: after a Prometheus restart a firing alert is pending again
/// until its `for` (restored) and the grace period pass.
pub fn firing_burn_alerts(scope: &Scope, alert_interval: Duration) -> Query {
    Query {
        what: "reading the firing burn-rate alerts",
        promql: format!(
            r#"ALERTS{{alertstate=~"firing|pending",slo!="",long!=""{}}}[{}]"#,
            scope.matcher,
            reach(alert_interval)
        ),
    }
}

/// One series of an answer, as much of it as the split reads, borrowed from the body: an
/// answer for ten thousand SLOs holds about a hundred thousand series, and materialising each
/// one's label map cost more memory than everything else the operator keeps.
#[derive(Debug, Deserialize)]
pub struct Series<'a> {
    #[serde(borrow)]
    metric: Labels<'a>,
    /// An instant vector's sample.
    #[serde(default)]
    value: Option<Sample>,
    /// A range vector's newest sample.
    #[serde(default)]
    values: Option<Newest>,
}

impl Series<'_> {
    /// The sample that counts, NaN and infinities included; `None` for a series without one
    /// (a native histogram's).
    #[cfg(test)]
    fn sample(&self) -> Option<f64> {
        self.newest().map(|s| s.value)
    }

    fn newest(&self) -> Option<Sample> {
        self.value.or(self.values.and_then(|n| n.newest))
    }

    /// The greatest common divisor of the distances (ms) between the samples read: a multiple
    /// of the group's interval when one rule wrote them all, 0 for a single sample.
    fn spacing(&self) -> i64 {
        self.values.map_or(0, |n| n.spacing)
    }

    /// The newest samples read (at most [`RECENT`]), newest first.
    fn recent(&self) -> impl Iterator<Item = Sample> + '_ {
        self.value
            .into_iter()
            .chain(self.values.iter().flat_map(|n| n.recent.iter().flatten().copied()))
    }

    /// How many samples were read.
    fn samples(&self) -> usize {
        match (self.value, self.values) {
            (Some(_), _) => 1,
            (None, Some(n)) => n.count,
            (None, None) => 0,
        }
    }
}

/// A label value, borrowed from the body unless it holds escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(Visit(std::marker::PhantomData))
    }
}

/// The labels the split reads by name, and every other one for the checks.
#[derive(Debug, Default)]
struct Labels<'a> {
    name: Option<Cow<'a, str>>,
    namespace: Option<Cow<'a, str>>,
    slo: Option<Cow<'a, str>>,
    marker: Option<Cow<'a, str>>,
    severity: Option<Cow<'a, str>>,
    long: Option<Cow<'a, str>>,
    alertstate: Option<Cow<'a, str>>,
    others: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Labels<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a label set")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Labels<'a>, A::Error> {
                let mut labels = Labels::default();
                while let Some(Text(name)) = map.next_key::<Text>()? {
                    let Text(value) = map.next_value::<Text>()?;
                    let slot = match name.as_ref() {
                        "__name__" => &mut labels.name,
                        "namespace" => &mut labels.namespace,
                        "slo" => &mut labels.slo,
                        MARKER_LABEL => &mut labels.marker,
                        "severity" => &mut labels.severity,
                        "long" => &mut labels.long,
                        "alertstate" => &mut labels.alertstate,
                        _ => {
                            labels.others.push((name, value));
                            continue;
                        }
                    };
                    *slot = Some(value);
                }
                Ok(labels)
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// At most this many characters of a label set in a message: label values come from whoever
/// wrote the series.
const DESCRIBED: usize = 200;
/// At most this many characters of one label value in a message.
const VALUE_SHOWN: usize = 100;

impl Labels<'_> {
    /// `name{label="value",...}`, in the order Prometheus gave them (sorted), cut short.
    fn describe(&self) -> String {
        let known = [
            ("namespace", &self.namespace),
            ("slo", &self.slo),
            (MARKER_LABEL, &self.marker),
            ("severity", &self.severity),
            ("long", &self.long),
            ("alertstate", &self.alertstate),
        ];
        let mut all: Vec<(&str, &str)> = known
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
            .chain(self.others.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .collect();
        all.sort_unstable();
        let inner: Vec<String> = all
            .iter()
            .map(|(k, v)| {
                let short: String = v.chars().take(VALUE_SHOWN).collect();
                let more = if short.len() < v.len() { "..." } else { "" };
                format!(
                    "{}={:?}",
                    k.chars().take(VALUE_SHOWN).collect::<String>(),
                    format!("{short}{more}")
                )
            })
            .collect();
        cut(format!(
            "{}{{{}}}",
            self.name.as_deref().unwrap_or_default(),
            inner.join(",")
        ))
    }

    /// The labels other than those the split reads by name (`k="v"`, comma-separated, values
    /// cut short): for a series that passed the label check, its external labels; empty (and
    /// not allocated) when there are none.
    fn externals(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.others {
            if !out.is_empty() {
                out.push(',');
            }
            let short: String = v.chars().take(VALUE_SHOWN).collect();
            out.push_str(&format!(
                "{}={short:?}",
                k.chars().take(VALUE_SHOWN).collect::<String>()
            ));
        }
        out
    }
}

/// `name{namespace="..",slo="..",slo_warden="..",<externals>}`: a series that passed the label
/// check, described from its name, its SLO and its external labels; cut short.
fn described_as(name: &str, namespace: &str, slo: &str, externals: &str) -> String {
    let mut labels = Vec::with_capacity(4);
    if !namespace.is_empty() {
        labels.push(format!("namespace={namespace:?}"));
    }
    labels.push(format!("slo={slo:?}"));
    labels.push(format!("{MARKER_LABEL}={:?}", marker(Some(namespace), slo)));
    if !externals.is_empty() {
        labels.push(externals.to_string());
    }
    cut(format!("{name}{{{}}}", labels.join(",")))
}

/// At most [`DESCRIBED`] characters.
fn cut(text: String) -> String {
    if text.chars().count() > DESCRIBED {
        format!("{}...", text.chars().take(DESCRIBED).collect::<String>())
    } else {
        text
    }
}

/// `[<unix seconds>, "<value>"]`, the value spelled as Go's `strconv` spells it (`NaN`,
/// `+Inf`, `-Inf` included).
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: f64,
    value: f64,
}

impl Sample {
    /// The timestamp in milliseconds, Prometheus' own resolution.
    fn millis(&self) -> i64 {
        (self.at * 1000.0).round() as i64
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (at, Value(value)) = <(f64, Value)>::deserialize(deserializer)?;
        Ok(Sample { at, value })
    }
}

/// A sample's value, parsed from its string without copying it.
struct Value(f64);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sample value as a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                v.parse()
                    .map(Value)
                    .map_err(|_| E::custom(format!("{v:?} is not a sample value")))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

/// How many of a range's newest samples are kept: a read of [`reach`] of a group's interval
/// holds three, four when an evaluation lands on its far end.
const RECENT: usize = 4;

/// The newest of a range vector's samples and how they are spaced, without keeping them all.
#[derive(Clone, Copy, Debug, Default)]
struct Newest {
    newest: Option<Sample>,
    /// The [`RECENT`] newest samples, newest first.
    recent: [Option<Sample>; RECENT],
    /// GCD of every sample's distance (ms) from the first.
    spacing: i64,
    count: usize,
}

impl Newest {
    fn keep(&mut self, s: Sample) {
        let Some(i) = self.recent.iter().position(|r| r.is_none_or(|r| s.at > r.at)) else {
            return;
        };
        self.recent[i..].rotate_right(1);
        self.recent[i] = Some(s);
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    i64::try_from(a).unwrap_or(i64::MAX)
}

impl<'de> Deserialize<'de> for Newest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Newest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of samples")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Newest, A::Error> {
                let mut n = Newest::default();
                let mut first = None;
                while let Some(s) = seq.next_element::<Sample>()? {
                    let first = *first.get_or_insert(s.millis());
                    n.spacing = gcd(n.spacing, s.millis().saturating_sub(first));
                    n.count += 1;
                    n.keep(s);
                    // Samples come oldest first; the order is not relied on.
                    if n.newest.is_none_or(|m| s.at >= m.at) {
                        n.newest = Some(s);
                    }
                }
                Ok(n)
            }
        }
        deserializer.deserialize_seq(Visit)
    }
}

/// What a windowed record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Windowed {
    Ratio(Duration),
    Requests(Duration),
}

/// The rule group that writes what a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// Short-window ratios and the burn alerts, every `--alert-interval`.
    Sli,
    /// Long-window ratios and the budget, every [`TILE`].
    Window,
    /// The long-run burn rate, every [`CALIBRATION_INTERVAL`].
    Calibration,
}

/// What the split must know of the rules and of the querier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// The `sli` group's interval (`--alert-interval`).
    pub alert_interval: Duration,
    /// Labels the querier adds to every series (Thanos or Prometheus external labels), which
    /// our rules do not set.
    pub external_labels: BTreeSet<String>,
}

impl Default for Expect {
    fn default() -> Self {
        Self {
            alert_interval: crate::rules::DEFAULT_ALERT_INTERVAL,
            external_labels: BTreeSet::new(),
        }
    }
}

impl Expect {
    fn interval_ms(&self, group: Group) -> i64 {
        let d = match group {
            Group::Sli => self.alert_interval,
            Group::Window => TILE,
            Group::Calibration => CALIBRATION_INTERVAL,
        };
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
    }
}

/// Series ignored because their labels are not what our rules write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejected {
    pub count: u64,
    /// The first one, described, and why.
    pub example: Option<String>,
}

/// At most this many disputes are described per SLO.
const DISPUTES_KEPT: usize = 3;

/// Everything the queries found about one SLO, before burn rates are computed.
#[derive(Default)]
struct Found {
    /// By window, in the order read (a handful each).
    ratios: Vec<(Duration, f64)>,
    requests: Vec<(Duration, f64)>,
    covered: Option<f64>,
    budget: Option<f64>,
    remaining: Option<f64>,
    long_run_burn: Option<f64>,
    long_run_covered: Option<f64>,
    scrape_interval: Option<f64>,
    /// The record names read (as [`Split::names`] numbers them): a bit each for the first 128,
    /// then a list; a cycle of ten thousand SLOs allocates nothing for them.
    seen: u128,
    seen_more: Vec<usize>,
    /// The external labels of a record read with some (usually none).
    externals: Vec<(usize, String)>,
    /// The recent 5-minute tiles of errors and of requests: (time in ms, rate).
    error_tiles: Vec<(i64, f64)>,
    total_tiles: Vec<(i64, f64)>,
    /// The newest sample time (ms) of each group's records (by [`Group::index`]), and the name
    /// (numbered) and external labels of a series that has it.
    newest: [Option<(i64, usize, String)>; 3],
    /// Firing and pending alerts: severity, whether firing, newest sample time (ms), described.
    alerts: Vec<(String, bool, i64, String)>,
    disputes: BTreeSet<String>,
}

impl Found {
    /// Whether record `number` was read before; marks it read.
    fn read_before(&mut self, number: usize) -> bool {
        match u32::try_from(number).ok().filter(|n| *n < u128::BITS) {
            Some(bit) => {
                let before = self.seen & (1 << bit) != 0;
                self.seen |= 1 << bit;
                before
            }
            None if self.seen_more.contains(&number) => true,
            None => {
                self.seen_more.push(number);
                false
            }
        }
    }

    /// The external labels record `number` was first read with.
    fn externals_of(&self, number: usize) -> &str {
        self.externals
            .iter()
            .find(|(n, _)| *n == number)
            .map_or("", |(_, e)| e.as_str())
    }

    fn dispute(&mut self, why: String) {
        if self.disputes.len() < DISPUTES_KEPT {
            self.disputes.insert(why);
        }
    }
}

/// Gathers the answers of the queries by SLO, one series at a time, in any order. NaN and
/// infinite values are left out (a window without traffic has a NaN ratio). A burn rate needs
/// the SLO's budget; without it the SLO has no burn rates.
#[derive(Default)]
pub struct Split {
    expect: Expect,
    /// By namespace, then SLO, where in `slos` what was found of it is: a series of an SLO
    /// already found is looked up without allocating its key (a cycle reads about ten series of
    /// each SLO), and the maps hold only small numbers (an answer lists SLOs in order, which
    /// leaves a map built one key at a time half empty).
    found: BTreeMap<String, BTreeMap<String, usize>>,
    slos: Vec<Found>,
    /// The record names read so far, numbered in the order first read, and the window of each
    /// error ratio's and request count's: an SLO's records refer to them by number.
    names: Vec<(String, Option<Windowed>)>,
    numbers: std::collections::HashMap<String, usize>,
    rejected: Rejected,
    /// The record names of the `sli` group's tiles (errors, requests).
    tile_names: (String, String),
}

/// One cycle's samples, and what was ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Finished {
    pub slos: BTreeMap<SloKey, SloSamples>,
    pub rejected: Rejected,
}

impl Split {
    /// A split for about `slos` SLOs (as many as the last cycle read): what is found of each is
    /// kept in one list, allocated once.
    pub fn with_capacity(expect: Expect, slos: usize) -> Self {
        Self {
            slos: Vec::with_capacity(slos),
            ..Self::new(expect)
        }
    }

    pub fn new(expect: Expect) -> Self {
        Self {
            tile_names: (
                errors_short_tile(expect.alert_interval),
                total_short_tile(expect.alert_interval),
            ),
            expect,
            ..Self::default()
        }
    }

    fn reject(&mut self, labels: &Labels, why: &str) {
        self.rejected.count += 1;
        if self.rejected.example.is_none() {
            self.rejected.example = Some(format!("{}: {why}", labels.describe()));
        }
    }

    /// The SLO a series is for (namespace, name), when its labels are exactly what our rules
    /// write for it: identity and marker, plus the external labels (and an alert's own).
    fn ours<'l>(&mut self, labels: &'l Labels, alert: bool) -> Option<(&'l str, &'l str)> {
        let slo = labels.slo.as_deref().filter(|s| !s.is_empty())?;
        let namespace = labels.namespace.as_deref().unwrap_or_default();
        if !labels.marker.as_deref().is_some_and(|m| names_slo(m, namespace, slo)) {
            self.reject(
                labels,
                &format!("no {MARKER_LABEL} label naming the SLO of its namespace and slo labels"),
            );
            return None;
        }
        // An alert also carries alertname, alertstate, service and the SLO's own labels; its
        // origin is checked against the SLO's records instead (`finish`).
        if !alert
            && let Some((name, _)) = labels
                .others
                .iter()
                .find(|(name, _)| !self.expect.external_labels.contains(name.as_ref()))
        {
            let why = format!(
                "label {:?} is not set by slo-warden's rules (if the querier adds it, list it in --prometheus-external-label)",
                name.chars().take(VALUE_SHOWN).collect::<String>()
            );
            self.reject(labels, &why);
            return None;
        }
        if !alert && (labels.severity.is_some() || labels.long.is_some() || labels.alertstate.is_some()) {
            self.reject(
                labels,
                "severity, long and alertstate are alert labels, not set on records",
            );
            return None;
        }
        Some((namespace, slo))
    }

    /// What was found of an SLO so far.
    fn found(&mut self, (namespace, slo): (&str, &str)) -> &mut Found {
        if !self.found.contains_key(namespace) {
            self.found.insert(namespace.to_string(), BTreeMap::new());
        }
        let slos = self.found.get_mut(namespace).expect("inserted above");
        let index = match slos.get(slo) {
            Some(&index) => index,
            None => {
                slos.insert(slo.to_string(), self.slos.len());
                self.slos.push(Found::default());
                self.slos.len() - 1
            }
        };
        &mut self.slos[index]
    }

    /// The number of a record name, and its window when it is an error ratio's or a request
    /// count's.
    fn number(&mut self, name: &str) -> (usize, Option<Windowed>) {
        if let Some(&n) = self.numbers.get(name) {
            return (n, self.names[n].1);
        }
        let window = name
            .strip_prefix(RATIO_PREFIX)
            .and_then(|w| Duration::parse(w).ok())
            .map(Windowed::Ratio)
            .or_else(|| {
                name.strip_prefix(REQUESTS_PREFIX)
                    .and_then(|w| Duration::parse(w).ok())
                    .map(Windowed::Requests)
            });
        let n = self.names.len();
        self.names.push((name.to_string(), window));
        self.numbers.insert(name.to_string(), n);
        (n, window)
    }

    /// A series of the ratio and budget queries, recorded by `group`.
    pub fn record(&mut self, series: &Series, group: Group) {
        let Some(name) = series.metric.name.as_deref() else {
            return;
        };
        let Some(sample) = series.newest() else {
            return;
        };
        let Some(key) = self.ours(&series.metric, false) else {
            return;
        };
        let interval = self.expect.interval_ms(group);
        let (number, window) = self.number(name);
        // The labels beyond the SLO's identity are external ones (`ours`): descriptions are
        // made from them, and only for a dispute, not for each of a cycle's many series.
        let externals = series.metric.externals();
        let (namespace, slo) = key;
        let describe = |name: &str, externals: &str| described_as(name, namespace, slo, externals);
        let names = std::mem::take(&mut self.names);
        let f = self.found(key);
        if f.read_before(number) {
            // In the same words whatever the order of the answer.
            let (a, b) = (describe(name, f.externals_of(number)), describe(name, &externals));
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            f.dispute(format!("{name} is recorded twice: {a} and {b}"));
        } else if !externals.is_empty() {
            f.externals.push((number, externals.clone()));
        }
        if series.spacing() % interval != 0 {
            f.dispute(format!(
                "{} has samples off the schedule of the rule that records it: a second rule writes it",
                describe(name, &externals)
            ));
        }
        let at = sample.millis();
        let newest = &mut f.newest[group.index()];
        match newest {
            Some((newest, other, other_externals)) if (*newest - at).rem_euclid(interval) != 0 => {
                let (a, b) = (describe(&names[*other].0, other_externals), describe(name, &externals));
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                f.dispute(format!(
                    "{a} and {b} are written on two schedules though one rule group ({}) records both: another rule writes one of them",
                    group.name()
                ));
            }
            Some((newest, _, _)) if *newest >= at => {}
            _ => *newest = Some((at, number, externals)),
        }
        self.names = names;
        // A lone sample says nothing of its writer's schedule: a value counts once it has been
        // written on the group's schedule for an interval (our own rules, from their second
        // evaluation), so a forged series is disputed before it is ever read.
        let value = sample.value;
        if series.samples() < 2 {
            return;
        }
        // Every tile of the range, whatever its value (the ledger counts only numbers).
        let tile = if group != Group::Sli {
            None
        } else if name == self.tile_names.0 {
            Some(true)
        } else if name == self.tile_names.1 {
            Some(false)
        } else {
            None
        };
        let f = self.found(key);
        if let Some(errors) = tile {
            let tiles = if errors { &mut f.error_tiles } else { &mut f.total_tiles };
            tiles.extend(series.recent().map(|s| (s.millis(), s.value)));
            return;
        }
        if !value.is_finite() {
            return;
        }
        match name {
            BUDGET => f.budget = Some(f.budget.map_or(value, |b| b.min(value))),
            BUDGET_REMAINING => f.remaining = Some(f.remaining.map_or(value, |r| r.min(value))),
            LONG_RUN_BURN => f.long_run_burn = Some(f.long_run_burn.map_or(value, |b| b.max(value))),
            LONG_RUN_COVERED => f.long_run_covered = Some(f.long_run_covered.map_or(value, |c| c.min(value))),
            SCRAPE_INTERVAL => f.scrape_interval = Some(f.scrape_interval.map_or(value, |i| i.max(value))),
            WINDOW_COVERED => f.covered = Some(f.covered.map_or(value, |c| c.min(value))),
            _ => match window {
                Some(Windowed::Ratio(window)) => merge(&mut f.ratios, window, value, f64::max),
                Some(Windowed::Requests(window)) => merge(&mut f.requests, window, value, f64::min),
                None => {}
            },
        }
    }

    /// A series of the burn-alerts query.
    pub fn alert(&mut self, series: &Series) {
        let (Some(severity), Some(sample)) = (series.metric.severity.as_deref(), series.newest()) else {
            return;
        };
        let Some(key) = self.ours(&series.metric, true) else {
            return;
        };
        let interval = self.expect.interval_ms(Group::Sli);
        let described = series.metric.describe();
        let f = self.found(key);
        if series.spacing() % interval != 0 {
            f.dispute(format!(
                "{described} has samples off the schedule of the rule that fires it: a second rule writes it"
            ));
        }
        let firing = series.metric.alertstate.as_deref() == Some("firing");
        f.alerts
            .push((severity.to_string(), firing, sample.millis(), described));
    }

    /// Every SLO's samples, and what was ignored.
    pub fn finish(mut self) -> Finished {
        let mut found = std::mem::take(&mut self.slos);
        let mut samples = Vec::with_capacity(found.len());
        for (namespace, slos) in std::mem::take(&mut self.found) {
            for (slo, i) in slos {
                let f = std::mem::take(&mut found[i]);
                samples.push(((namespace.clone(), slo), self.samples(f)));
            }
        }
        drop(found);
        // In key order, from a list of exactly their number (which the map's collect reuses):
        // the map's nodes are built full, where inserted one by one, in order, they would be
        // half empty.
        let slos = samples.into_iter().collect();
        Finished {
            slos,
            rejected: self.rejected,
        }
    }

    /// What the cycle read of one SLO.
    fn samples(&mut self, f: Found) -> SloSamples {
        let interval = self.expect.interval_ms(Group::Sli);
        let (mut firing, mut pending) = (BTreeSet::new(), BTreeSet::new());
        for (severity, is_firing, at, described) in &f.alerts {
            match f.newest[Group::Sli.index()].as_ref().map(|(newest, _, _)| newest) {
                // Written by the evaluation that wrote the newest records, or by the one
                // before when the poll fell between the two.
                Some(newest) if (newest - at).rem_euclid(interval) == 0 => {
                    if *at >= newest - interval {
                        if *is_firing { &mut firing } else { &mut pending }.insert(severity.clone());
                    }
                }
                _ => {
                    self.rejected.count += 1;
                    if self.rejected.example.is_none() {
                        self.rejected.example = Some(format!(
                            "{described}: not written by the evaluations of the SLO's own sli rules"
                        ));
                    }
                }
            }
        }
        if f.disputes.is_empty() {
            // With the budget read, every ratio is a burn rate; the ratios themselves are
            // kept only to be divided by the spec's budget when it is not (a new SLO), which
            // spares ten thousand SLOs a second map each.
            let (burn_rates, error_ratios) = match f.budget.filter(|b| *b > 0.0) {
                Some(budget) => (
                    f.ratios
                        .into_iter()
                        .filter_map(|(w, ratio)| Some((w, crate::burn_rate::burn(ratio, budget)?)))
                        .collect(),
                    Windows::default(),
                ),
                None => (
                    Windows::default(),
                    f.ratios.into_iter().filter(|(_, r)| r.is_finite()).collect(),
                ),
            };
            SloSamples {
                remaining: f.remaining,
                burn_rates,
                error_ratios,
                pending_severities: pending.difference(&firing).cloned().collect(),
                alerts_unevaluated: f.newest[Group::Sli.index()].is_none(),
                firing_severities: firing,
                requests: f.requests.into_iter().collect(),
                covered: f.covered,
                long_run_burn: f.long_run_burn,
                long_run_covered: f.long_run_covered,
                disputed: Vec::new(),
                scrape_interval: f.scrape_interval,
                blind: None,
                history: None,
                tiles: tiles(&f.error_tiles, &f.total_tiles, self.expect.alert_interval),
            }
        } else {
            // Nothing of a disputed SLO is used: either writer may be the forger.
            SloSamples {
                disputed: f.disputes.into_iter().collect(),
                ..SloSamples::default()
            }
        }
    }
}

/// Sets `window`'s number to `value`, or to `keep` of it and the one already read.
fn merge(windows: &mut Vec<(Duration, f64)>, window: Duration, value: f64, keep: fn(f64, f64) -> f64) {
    match windows.iter_mut().find(|(w, _)| *w == window) {
        Some((_, v)) => *v = keep(*v, value),
        None => windows.push((window, value)),
    }
}

/// The tiles whose errors and requests were both read, oldest first. Their ends are cut to
/// whole seconds, as the status that records how far a ledger counted keeps them.
fn tiles(errors: &[(i64, f64)], totals: &[(i64, f64)], length: Duration) -> Vec<crate::release::Tile> {
    let length = jiff::SignedDuration::from_millis(i64::try_from(length.as_millis()).unwrap_or(i64::MAX));
    let mut out: Vec<crate::release::Tile> = errors
        .iter()
        .filter_map(|(at, e)| {
            let (_, total) = totals.iter().find(|(t, _)| t == at)?;
            Some(crate::release::Tile {
                end: jiff::Timestamp::from_second(at.div_euclid(1000)).ok()?,
                length,
                errors_per_second: *e,
                total_per_second: *total,
            })
        })
        .collect();
    out.sort_by_key(|t| t.end);
    out.dedup_by_key(|t| t.end);
    out
}

/// Whether `marker` is the marker label our rules set on the series of SLO `slo` in
/// `namespace` ([`marker`]), compared without building it.
fn names_slo(marker_value: &str, namespace: &str, slo: &str) -> bool {
    if namespace.is_empty() {
        return marker_value == slo;
    }
    marker_value
        .strip_prefix(namespace)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| rest == slo)
}

impl Group {
    fn index(self) -> usize {
        match self {
            Group::Sli => 0,
            Group::Window => 1,
            Group::Calibration => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Group::Sli => "sli",
            Group::Window => "window",
            Group::Calibration => "calibration",
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::api::BudgetState;
    use crate::budget::budget_status;
    use crate::rules::error_ratio_record;

    /// The series of an answer's `data`.
    fn series(json: &str) -> Vec<Series<'_>> {
        #[derive(Deserialize)]
        struct Data<'a> {
            #[serde(borrow)]
            result: Vec<Series<'a>>,
        }
        serde_json::from_str::<Data>(json).unwrap().result
    }

    fn split_with(expect: Expect, short: &[Series], long: &[Series], alerts: &[Series]) -> Finished {
        let mut split = Split::new(expect);
        short.iter().for_each(|s| split.record(s, Group::Sli));
        long.iter().for_each(|s| split.record(s, Group::Window));
        alerts.iter().for_each(|s| split.alert(s));
        split.finish()
    }

    fn split(short: &[Series], long: &[Series], alerts: &[Series]) -> BTreeMap<SloKey, SloSamples> {
        split_with(Expect::default(), short, long, alerts).slos
    }

    fn w(s: &str) -> Duration {
        Duration::parse(s).unwrap()
    }

    fn key(ns: &str, slo: &str) -> SloKey {
        (ns.to_string(), slo.to_string())
    }

    #[test]
    fn every_record_number_is_told_read_once() {
        let mut f = Found::default();
        for n in [0, 5, 127, 128, 4_000] {
            assert!(!f.read_before(n), "{n}");
            assert!(f.read_before(n), "{n}");
        }
        assert!(!f.read_before(1) && !f.read_before(129));
    }

    #[test]
    fn the_measured_sampling_interval_is_read_with_the_budget() {
        let body = r#"[
            {"metric":{"__name__":"slo:sli_scrape_interval:seconds","namespace":"shop","slo":"api","slo_warden":"shop/api"},
             "values":[[1796000100,"120"],[1796000400,"120"]]},
            {"metric":{"__name__":"slo:error_budget_remaining:ratio","namespace":"shop","slo":"api","slo_warden":"shop/api"},
             "values":[[1796000100,"0.5"],[1796000400,"0.5"]]}
        ]"#;
        let json = format!(r#"{{"result":{body}}}"#);
        let long = series(&json);
        let slos = split(&[], &long, &[]);
        let s = &slos[&key("shop", "api")];
        assert_eq!(s.scrape_interval, Some(120.0));
        assert_eq!(s.remaining, Some(0.5));
        assert!(s.alerts_unevaluated, "no record of the sli group read");
        assert!(s.disputed.is_empty(), "{:?}", s.disputed);
    }

    #[test]
    fn the_last_tiles_are_read_with_the_short_ratios_and_forged_ones_dispute() {
        // Three evaluations of the sli group, at .417 past the second (its offset).
        let body = r#"[
            {"metric":{"__name__":"slo:sli_errors:tile_rate1m","namespace":"shop","slo":"api","slo_warden":"shop/api"},
             "values":[[1796000100.417,"0.5"],[1796000160.417,"1"],[1796000220.417,"2"]]},
            {"metric":{"__name__":"slo:sli_total:tile_rate1m","namespace":"shop","slo":"api","slo_warden":"shop/api"},
             "values":[[1796000100.417,"100"],[1796000160.417,"100"],[1796000220.417,"NaN"]]},
            {"metric":{"__name__":"slo:sli_errors:tile_rate1m","namespace":"shop","slo":"web","slo_warden":"shop/web"},
             "values":[[1796000160,"1"],[1796000220,"1"]]},
            {"metric":{"__name__":"slo:sli_total:tile_rate1m","namespace":"shop","slo":"web","slo_warden":"shop/web"},
             "values":[[1796000160,"1"],[1796000220,"1"]]},
            {"metric":{"__name__":"slo:sli_errors:tile_rate1m","namespace":"shop","slo":"web","slo_warden":"shop/web"},
             "values":[[1796000123,"9"],[1796000183,"9"]]}
        ]"#;
        let json = format!(r#"{{"result":{body}}}"#);
        let short = series(&json);
        let slos = split(&short, &[], &[]);
        let tiles = &slos[&key("shop", "api")].tiles;
        let ends: Vec<i64> = tiles.iter().map(|t| t.end.as_second()).collect();
        assert_eq!(
            ends,
            [1796000100, 1796000160, 1796000220],
            "oldest first, cut to the second"
        );
        assert_eq!(tiles[1].length, jiff::SignedDuration::from_mins(1));
        assert_eq!(tiles[1].errors_per_second, 1.0);
        assert_eq!(tiles[1].total_per_second, 100.0);
        assert!(
            tiles[2].total_per_second.is_nan(),
            "kept: the ledger counts nothing of it"
        );
        // A second writer of web's error tiles: nothing of web is used.
        let web = &slos[&key("shop", "web")];
        assert!(!web.disputed.is_empty());
        assert!(web.tiles.is_empty());
        // The 5-minute tiles of the window group are not what the ledger counts.
        let five = r#"{"result":[
            {"metric":{"__name__":"slo:sli_errors:tile_rate5m","namespace":"shop","slo":"api","slo_warden":"shop/api"},
             "values":[[1796000100,"1"],[1796000400,"1"]]},
            {"metric":{"__name__":"slo:sli_total:tile_rate5m","namespace":"shop","slo":"api","slo_warden":"shop/api"},
             "values":[[1796000100,"1"],[1796000400,"1"]]}]}"#;
        let long = series(five);
        assert!(split(&[], &long, &[])[&key("shop", "api")].tiles.is_empty());
    }

    #[test]
    fn a_range_keeps_its_newest_samples_whatever_their_order() {
        let mut n = Newest::default();
        for at in [3.0, 1.0, 5.0, 0.5, 2.0, 4.0] {
            n.keep(Sample { at, value: at });
        }
        let kept: Vec<f64> = n.recent.iter().flatten().map(|s| s.at).collect();
        assert_eq!(kept, [5.0, 4.0, 3.0, 2.0]);
    }

    #[test]
    fn request_counts_coverage_and_pending_alerts_are_read() {
        let id = r#""namespace":"shop","slo":"api","slo_warden":"shop/api""#;
        let short = format!(
            r#"{{"result":[
            {{"metric":{{"__name__":"slo:sli_error:ratio_rate5m",{id}}},"values":[[1796000340,"0.01"],[1796000400,"0.01"]]}},
            {{"metric":{{"__name__":"slo:sli_requests:count1h",{id}}},"values":[[1796000340,"12"],[1796000400,"12"]]}}
        ]}}"#
        );
        let long = format!(
            r#"{{"result":[
            {{"metric":{{"__name__":"slo:window_covered:seconds",{id}}},"values":[[1796000100,"777300"],[1796000400,"777600"]]}},
            {{"metric":{{"__name__":"slo:sli_requests:count3d",{id}}},"values":[[1796000100,"5000"],[1796000400,"5001"]]}}
        ]}}"#
        );
        let alerts = format!(
            r#"{{"result":[
            {{"metric":{{"__name__":"ALERTS","alertname":"ErrorBudgetBurn","alertstate":"pending","severity":"critical","long":"1h","short":"5m","service":"api",{id}}},"values":[[1796000340,"1"],[1796000400,"1"]]}},
            {{"metric":{{"__name__":"ALERTS","alertname":"ErrorBudgetBurn","alertstate":"firing","severity":"warning","long":"6h","short":"30m","service":"api",{id}}},"values":[[1796000340,"1"],[1796000400,"1"]]}}
        ]}}"#
        );
        let (short, long, alerts) = (series(&short), series(&long), series(&alerts));
        let slos = split(&short, &long, &alerts);
        let s = &slos[&key("shop", "api")];
        assert!(s.disputed.is_empty(), "{:?}", s.disputed);
        assert_eq!(s.requests, Windows::from([(w("1h"), 12.0), (w("3d"), 5001.0)]));
        assert_eq!(s.covered, Some(777_600.0));
        assert_eq!(s.firing_severities, BTreeSet::from(["warning".to_string()]));
        assert_eq!(s.pending_severities, BTreeSet::from(["critical".to_string()]));
        assert!(!s.alerts_unevaluated);
        // A record carrying an alert's state is not ours.
        let forged = format!(
            r#"{{"result":[{{"metric":{{"__name__":"slo:sli_requests:count1h","alertstate":"firing",{id}}},"values":[[1796000340,"1e9"],[1796000400,"1e9"]]}}]}}"#
        );
        let finished = split_with(Expect::default(), &series(&forged), &[], &[]);
        assert_eq!(finished.rejected.count, 1);
    }

    #[test]
    fn queries_select_what_the_rules_record() {
        // What follows the digits: h, m or s below a day (`[0-9]+[hms].*`), d from a day on.
        let unit_after_digits = |window: &str| {
            let name = error_ratio_record(w(window));
            let spelled = name.strip_prefix(RATIO_PREFIX).unwrap();
            let digits = spelled.bytes().take_while(u8::is_ascii_digit).count();
            assert!(digits > 0, "{name}");
            spelled[digits..].chars().next().unwrap()
        };
        for window in ["1m", "5m", "30m", "1h", "2h", "6h", "90m", "90s", "500ms", "23h59m"] {
            assert!("hms".contains(unit_after_digits(window)), "{window}");
        }
        for window in ["1d", "3d", "4w", "28d", "30d", "1y", "36h"] {
            assert_eq!(unit_after_digits(window), 'd', "{window}");
        }
        let all = Scope::default();
        let none = BTreeSet::new();
        // The request counts policies read: each window by its group.
        let some = BTreeSet::from([w("1h"), w("6h"), w("3d")]);
        assert_eq!(
            short_ratios(&all, w("1m"), &some).promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+[hms].*|slo:sli_errors:tile_rate1m|slo:sli_total:tile_rate1m|slo:sli_requests:count(1h|6h)",slo!=""}[3m]"#
        );
        assert_eq!(
            window_ratios_and_budgets(&all, &some).promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+d.*|slo:error_budget_remaining:ratio|slo:error_budget:ratio|slo:sli_scrape_interval:seconds|slo:sli_requests:count(3d)",slo!=""}[11m]"#
        );
        assert_eq!(
            short_ratios(&all, w("1m"), &none).promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+[hms].*|slo:sli_errors:tile_rate1m|slo:sli_total:tile_rate1m",slo!=""}[3m]"#
        );
        assert_eq!(
            window_ratios_and_budgets(&all, &none).promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+d.*|slo:error_budget_remaining:ratio|slo:error_budget:ratio|slo:sli_scrape_interval:seconds",slo!=""}[11m]"#
        );
        assert_eq!(
            firing_burn_alerts(&all, w("30s")).promql,
            r#"ALERTS{alertstate=~"firing|pending",slo!="",long!=""}[1m30s]"#
        );
        for q in [
            short_ratios(&all, w("1m"), &some),
            window_ratios_and_budgets(&all, &some),
            firing_burn_alerts(&all, w("1m")),
        ] {
            crate::sli::parse_promql(&q.promql).unwrap();
        }
    }

    #[test]
    fn a_namespaced_operator_reads_only_its_namespaces() {
        let names = |v: &[&str]| Scope::new(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(names(&[]), Scope::default());
        let one = names(&["shop"]);
        assert_eq!(
            short_ratios(&one, w("1m"), &BTreeSet::new()).promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+[hms].*|slo:sli_errors:tile_rate1m|slo:sli_total:tile_rate1m",slo!="",namespace="shop"}[3m]"#
        );
        assert_eq!(
            firing_burn_alerts(&one, w("1m")).promql,
            r#"ALERTS{alertstate=~"firing|pending",slo!="",long!="",namespace="shop"}[3m]"#
        );
        let two = names(&["shop", "web"]);
        assert_eq!(
            window_ratios_and_budgets(&two, &BTreeSet::new()).promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+d.*|slo:error_budget_remaining:ratio|slo:error_budget:ratio|slo:sli_scrape_interval:seconds",slo!="",namespace=~"shop|web"}[11m]"#
        );
        assert_eq!(
            long_run(&two).promql,
            r#"{__name__=~"slo:long_run_burn:ratio|slo:long_run_covered:seconds|slo:window_covered:seconds",slo!="",namespace=~"shop|web"}[2h1m]"#
        );
        for scope in [one, two] {
            for q in [
                short_ratios(&scope, w("1m"), &BTreeSet::new()),
                window_ratios_and_budgets(&scope, &BTreeSet::new()),
                long_run(&scope),
                firing_burn_alerts(&scope, w("1m")),
            ] {
                crate::sli::parse_promql(&q.promql).unwrap();
            }
        }
    }

    /// Answers shaped as Prometheus 2.42 gives them for the rules of `examples/` (one SLO in a
    /// namespace, one from a plain rule file without one): the `sli` group evaluated at :40 of
    /// every minute, the `window` group at 2m30s past every fifth.
    const SHORT: &str = r#"{"resultType":"matrix","result":[
        {"metric":{"__name__":"slo:sli_error:ratio_rate5m","namespace":"shop","slo":"checkout-availability","slo_warden":"shop/checkout-availability"},"values":[[1699999900,"0.01"],[1699999960,"0.0288"]]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate1h","namespace":"shop","slo":"checkout-availability","slo_warden":"shop/checkout-availability"},"values":[[1699999900,"0.01"],[1699999960,"0.0144"]]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate6h","namespace":"shop","slo":"checkout-availability","slo_warden":"shop/checkout-availability"},"values":[[1699999960,"NaN"]]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate1m","namespace":"shop","slo":"checkout-availability","slo_warden":"shop/checkout-availability"},"values":[[1699999960,"+Inf"]]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate5m","slo":"search","slo_warden":"search"},"values":[[1699999890.5,"0.004"],[1699999950.5,"0.005"]]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate5m","sloth_slo":"other"},"values":[[1699999960,"0.5"]]}
    ]}"#;
    const LONG: &str = r#"{"resultType":"matrix","result":[
        {"metric":{"__name__":"slo:error_budget:ratio","namespace":"shop","slo":"checkout-availability","slo_warden":"shop/checkout-availability"},"values":[[1699999650,"0.001"],[1699999950,"0.001"]]},
        {"metric":{"__name__":"slo:error_budget_remaining:ratio","namespace":"shop","slo":"checkout-availability","slo_warden":"shop/checkout-availability"},"values":[[1699999650,"0.8801"],[1699999950,"0.87314159"]]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate30d","namespace":"shop","slo":"checkout-availability","slo_warden":"shop/checkout-availability"},"values":[[1699999650,"0.000126"],[1699999950,"0.00012685841"]]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate1d","namespace":"shop","slo":"checkout-availability","slo_warden":"shop/checkout-availability"},"values":[[1699999650,"0.002"],[1699999950,"0.0025"]]},
        {"metric":{"__name__":"slo:error_budget_remaining:ratio","slo":"search","slo_warden":"search"},"values":[[1699999500,"0.5"],[1699999800,"NaN"]]}
    ]}"#;
    const ALERTS: &str = r#"{"resultType":"matrix","result":[
        {"metric":{"__name__":"ALERTS","alertname":"ErrorBudgetBurn","alertstate":"firing","long":"1h","short":"5m","namespace":"shop","service":"checkout","severity":"critical","slo":"checkout-availability","slo_warden":"shop/checkout-availability"},"values":[[1699999900,"1"],[1699999960,"1"]]},
        {"metric":{"__name__":"ALERTS","alertname":"CheckoutBurn","alertstate":"firing","long":"6h","short":"30m","namespace":"shop","service":"checkout","severity":"critical","slo":"checkout-availability","slo_warden":"shop/checkout-availability","team":"payments"},"values":[[1699999960,"1"]]},
        {"metric":{"__name__":"ALERTS","alertname":"ErrorBudgetBurn","alertstate":"firing","long":"3d","short":"6h","namespace":"shop","service":"checkout","severity":"warning","slo":"checkout-availability","slo_warden":"shop/checkout-availability"},"values":[[1699999900,"1"]]}
    ]}"#;

    fn split_json(short: &str, long: &str, alerts: &str) -> BTreeMap<SloKey, SloSamples> {
        split(&series(short), &series(long), &series(alerts))
    }

    #[test]
    fn splits_by_namespace_and_slo() {
        let slos = split_json(SHORT, LONG, ALERTS);
        let checkout = &slos[&key("shop", "checkout-availability")];
        assert_eq!(checkout.remaining, Some(0.87314159));
        // 6h is NaN and 1m infinite: left out.
        assert_eq!(
            checkout
                .burn_rates
                .iter()
                .map(|(w, b)| (w.to_string(), crate::budget::round4(*b)))
                .collect::<Vec<_>>(),
            [("5m", 28.8), ("1h", 14.4), ("1d", 2.5), ("30d", 0.1269)].map(|(w, b)| (w.to_string(), b))
        );
        // The warning tier's alert was last written an evaluation before the newest records:
        // the read fell between the ratios and the alerts of one evaluation.
        assert_eq!(
            checkout.firing_severities,
            BTreeSet::from(["critical".into(), "warning".into()])
        );
        assert_eq!(checkout.state(), BudgetState::Burning);
        assert!(checkout.disputed.is_empty());

        // No namespace label; budget absent, so no burn rate; remaining NaN now.
        let search = &slos[&key("", "search")];
        assert_eq!((search.remaining, search.burn_rates.len()), (None, 0));
        assert!(search.firing_severities.is_empty());
        assert_eq!(
            search.error_ratios.len(),
            1,
            "the raw ratio is kept for the spec's budget: {search:?}"
        );
        assert_eq!(search.state(), BudgetState::NoData);
        assert_eq!(slos.len(), 2, "series without an `slo` label are not an SLO: {slos:?}");
    }

    #[test]
    fn status_rounds_and_reports_no_data() {
        let slos = split_json(SHORT, LONG, ALERTS);
        let at = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let status = budget_status(slos.get(&key("shop", "checkout-availability")), at);
        assert_eq!(status.remaining, Some(0.8731));
        assert_eq!(status.burn_rates["5m"], 28.8);
        assert_eq!(status.burn_rates["30d"], 0.1269);
        assert_eq!(status.state, BudgetState::Burning);

        let status = budget_status(slos.get(&key("", "search")), at);
        assert_eq!((status.remaining, status.burn_rates.len()), (None, 0));
        assert_eq!(status.state, BudgetState::NoData);
        assert_eq!(budget_status(None, at).state, BudgetState::NoData);
    }

    #[test]
    fn series_keep_the_newest_sample_and_go_spelled_values() {
        let answer = r#"{"resultType":"matrix","result":[
            {"metric":{"__name__":"slo:sli_error:ratio_rate1d","namespace":"a\"b","slo":"x","slo_warden":"a\"b/x"},"values":[[600,"-Inf"],[300,"0.5"]]},
            {"metric":{"slo":"x","__name__":"slo:error_budget:ratio","slo_warden":"x"},"values":[[300,"NaN"],[900,"+Inf"],[600,"0.1"]]},
            {"metric":{"slo":"y","__name__":"slo:error_budget:ratio","slo_warden":"y"},"values":[]},
            {"metric":{"slo":"z","slo_warden":"z"},"histograms":[[1,{"count":"1","sum":"1"}]]}
        ]}"#;
        let read = series(answer);
        let samples: Vec<Option<f64>> = read.iter().map(Series::sample).collect();
        assert_eq!(samples[0], Some(f64::NEG_INFINITY), "the newest, whatever the order");
        assert_eq!(samples[1], Some(f64::INFINITY));
        assert_eq!(samples[2..], [None, None]);
        assert_eq!(read[0].metric.namespace.as_deref(), Some("a\"b"), "escapes are read");
        assert_eq!(read[1].spacing(), 300_000);
        assert!(
            series(r#"{"result":[{"metric":{},"value":[1,"NaN"]}]}"#)[0]
                .sample()
                .unwrap()
                .is_nan()
        );
        // Infinite values are no value; a series without a sample is no SLO.
        let slos = split(&[], &read, &[]);
        assert_eq!(
            slos.keys().map(|(ns, n)| format!("{ns}/{n}")).collect::<Vec<_>>(),
            ["/x", "a\"b/x"]
        );
        assert!(
            slos.values()
                .all(|s| s.burn_rates.is_empty() && s.error_ratios.is_empty() && s.disputed.is_empty())
        );
    }

    #[test]
    fn exhausted_and_healthy() {
        let long = r#"{"resultType":"matrix","result":[
            {"metric":{"__name__":"slo:error_budget:ratio","namespace":"a","slo":"x","slo_warden":"a/x"},"values":[[1,"0.01"],[301,"0.01"]]},
            {"metric":{"__name__":"slo:error_budget_remaining:ratio","namespace":"a","slo":"x","slo_warden":"a/x"},"values":[[1,"0.1"],[301,"-0.25"]]},
            {"metric":{"__name__":"slo:error_budget_remaining:ratio","namespace":"b","slo":"x","slo_warden":"b/x"},"values":[[1,"1"],[301,"1"]]}
        ]}"#;
        let empty = r#"{"resultType":"matrix","result":[]}"#;
        let slos = split_json(empty, long, empty);
        assert_eq!(slos[&key("a", "x")].state(), BudgetState::Exhausted);
        assert_eq!(slos[&key("b", "x")].state(), BudgetState::Healthy);
        assert!(split_json(empty, empty, empty).is_empty());
    }

    /// B's budget, as another tenant's rule would record it next to ours.
    fn budget_of_b(labels: &str, values: &str) -> String {
        format!(
            r#"{{"metric":{{"__name__":"slo:error_budget_remaining:ratio","namespace":"b","slo":"checkout"{labels}}},"values":{values}}}"#
        )
    }

    fn matrix(series: &[String]) -> String {
        format!(r#"{{"resultType":"matrix","result":[{}]}}"#, series.join(","))
    }

    const OURS: &str = r#","slo_warden":"b/checkout""#;
    /// Our window group's samples: every 5 minutes at 2m30s past.
    const ON_SCHEDULE: &str = r#"[[1699999650,"0.9"],[1699999950,"0.9"]]"#;

    #[test]
    fn series_our_rules_did_not_write_are_ignored_and_counted() {
        let empty = matrix(&[]);
        for (labels, why) in [
            // The forgery of the issue: a rule in namespace a records B's budget.
            ("", "no slo_warden label"),
            // Prometheus Operator's enforcedNamespaceLabel rewrote `namespace` of a's rule.
            (r#","slo_warden":"a/checkout""#, "no slo_warden label"),
            (
                r#","slo_warden":"b/checkout","instance":"forger:9090""#,
                r#"label "instance""#,
            ),
            (r#","slo_warden":"b/checkout","severity":"critical""#, "alert labels"),
        ] {
            let ours = budget_of_b(OURS, ON_SCHEDULE);
            let forged = budget_of_b(labels, r#"[[1699999990,"-1"]]"#);
            let long = matrix(&[ours, forged]);
            let finished = split_with(Expect::default(), &[], &series(&long), &series(&empty));
            let b = &finished.slos[&key("b", "checkout")];
            assert_eq!(b.remaining, Some(0.9), "{labels}");
            assert!(b.disputed.is_empty(), "{labels}: {b:?}");
            assert_eq!(finished.rejected.count, 1, "{labels}");
            let example = finished.rejected.example.unwrap();
            assert!(
                example.starts_with("slo:error_budget_remaining:ratio{") && example.contains(why),
                "{example}"
            );
        }

        // A label the querier adds is no forgery when it is named as such.
        let thanos = budget_of_b(r#","slo_warden":"b/checkout","cluster":"eu1""#, ON_SCHEDULE);
        let expect = Expect {
            external_labels: BTreeSet::from(["cluster".to_string()]),
            ..Expect::default()
        };
        let finished = split_with(expect, &[], &series(&matrix(&[thanos])), &[]);
        assert_eq!(finished.rejected, Rejected::default());
        assert_eq!(finished.slos[&key("b", "checkout")].remaining, Some(0.9));

        // Long values are cut short in the description.
        let long_value = "v".repeat(10_000);
        let flood = budget_of_b(&format!(r#"{OURS},"x":"{long_value}""#), ON_SCHEDULE);
        let finished = split_with(Expect::default(), &[], &series(&matrix(&[flood])), &[]);
        assert!(finished.rejected.example.unwrap().len() < 400);
    }

    #[test]
    fn a_second_writer_disputes_the_slo_whatever_its_values() {
        let expect = Expect {
            external_labels: BTreeSet::from(["cluster".to_string()]),
            ..Expect::default()
        };
        let disputed = |long: Vec<String>| {
            let long = matrix(&long);
            let mut forward = series(&long);
            let f = split_with(expect.clone(), &[], &forward, &[]);
            forward.reverse();
            assert_eq!(
                split_with(expect.clone(), &[], &forward, &[]),
                f,
                "order does not matter"
            );
            f.slos[&key("b", "checkout")].clone()
        };
        // An exact copy of our series writes into it: its samples land between ours.
        let b = disputed(vec![budget_of_b(
            OURS,
            r#"[[1699999650,"0.9"],[1699999700,"-1"],[1699999950,"0.9"],[1700000000,"-1"]]"#,
        )]);
        assert_eq!(
            (b.remaining, b.burn_rates.len(), b.state()),
            (None, 0, BudgetState::NoData),
            "nothing of a disputed SLO is used: {b:?}"
        );
        assert_eq!(b.disputed.len(), 1);
        assert!(b.disputed[0].contains("off the schedule"), "{:?}", b.disputed);

        // A copy differing only in a label the querier adds: two series for one record.
        let b = disputed(vec![
            budget_of_b(&format!(r#"{OURS},"cluster":"eu1""#), ON_SCHEDULE),
            budget_of_b(
                &format!(r#"{OURS},"cluster":"forged""#),
                r#"[[1699999650,"-1"],[1699999950,"-1"]]"#,
            ),
        ]);
        assert!(
            b.disputed
                .iter()
                .any(|d| d.starts_with("slo:error_budget_remaining:ratio is recorded twice")),
            "{:?}",
            b.disputed
        );

        // A record only the other writer has, on its own schedule.
        let b = disputed(vec![
            budget_of_b(OURS, ON_SCHEDULE),
            format!(
                r#"{{"metric":{{"__name__":"slo:sli_error:ratio_rate7d","namespace":"b","slo":"checkout"{OURS}}},"values":[[1699999700,"1"]]}}"#
            ),
        ]);
        assert!(b.disputed[0].contains("two schedules"), "{:?}", b.disputed);

        // Samples of a window group at the usual cadence, one missed evaluation included.
        let b = disputed(vec![budget_of_b(OURS, r#"[[1699999350,"0.9"],[1699999950,"0.8"]]"#)]);
        assert_eq!((b.remaining, b.disputed.len()), (Some(0.8), 0));

        // A new writer's first sample, before our group has ever run (a new SLO): not read,
        // and disputed from its second.
        let b = disputed(vec![budget_of_b(OURS, r#"[[1699999995,"-1"]]"#)]);
        assert_eq!((b.remaining, b.disputed.len()), (None, 0));
        let b = disputed(vec![budget_of_b(OURS, r#"[[1699999995,"-1"],[1700000000,"-1"]]"#)]);
        assert_eq!((b.remaining, b.disputed.len()), (None, 1));
    }

    #[test]
    fn an_alert_counts_only_when_the_slos_own_evaluations_wrote_it() {
        let short = |values: &str| {
            matrix(&[format!(
                r#"{{"metric":{{"__name__":"slo:sli_error:ratio_rate5m","namespace":"b","slo":"checkout"{OURS}}},"values":{values}}}"#
            )])
        };
        let alert = |labels: &str, values: &str| {
            format!(
                r#"{{"metric":{{"__name__":"ALERTS","alertname":"ErrorBudgetBurn","alertstate":"firing","long":"1h","short":"5m","severity":"critical","service":"checkout","namespace":"b","slo":"checkout"{labels}}},"values":{values}}}"#
            )
        };
        let ratios = short(r#"[[1699999900,"0.1"],[1699999960,"0.1"]]"#);
        let run = |alerts: Vec<String>| {
            let alerts = matrix(&alerts);
            split_with(Expect::default(), &series(&ratios), &[], &series(&alerts))
        };

        // Ours: written by the same evaluations as the ratios.
        let ours = run(vec![alert(OURS, r#"[[1699999900,"1"],[1699999960,"1"]]"#)]);
        assert_eq!(
            ours.slos[&key("b", "checkout")].firing_severities,
            BTreeSet::from(["critical".to_string()])
        );
        assert_eq!(ours.rejected.count, 0);

        // A tenant's alert rule with exactly our labels, firing while ours is not: another
        // group, evaluated at another offset.
        let forged = run(vec![alert(OURS, r#"[[1699999925,"1"],[1699999985,"1"]]"#)]);
        assert!(forged.slos[&key("b", "checkout")].firing_severities.is_empty());
        assert_eq!(forged.rejected.count, 1);
        assert!(
            forged
                .rejected
                .example
                .unwrap()
                .ends_with("not written by the evaluations of the SLO's own sli rules")
        );
        // ... without our marker, or firing next to ours.
        let unmarked = run(vec![alert("", r#"[[1699999960,"1"]]"#)]);
        assert!(unmarked.slos[&key("b", "checkout")].firing_severities.is_empty());
        assert_eq!(unmarked.rejected.count, 1);
        let both = run(vec![alert(
            OURS,
            r#"[[1699999900,"1"],[1699999925,"1"],[1699999960,"1"]]"#,
        )]);
        let b = &both.slos[&key("b", "checkout")];
        assert!(b.firing_severities.is_empty() && !b.disputed.is_empty(), "{b:?}");

        // Last written two evaluations before the newest ratios: it has resolved since.
        let resolved = run(vec![alert(OURS, r#"[[1699999840,"1"]]"#)]);
        assert!(resolved.slos[&key("b", "checkout")].firing_severities.is_empty());
        assert_eq!(resolved.rejected.count, 0);

        // No records of the SLO to vouch for it: not counted.
        let alerts = matrix(&[alert(OURS, r#"[[1699999960,"1"]]"#)]);
        let alone = split_with(Expect::default(), &[], &[], &series(&alerts));
        assert!(alone.slos[&key("b", "checkout")].firing_severities.is_empty());
        assert_eq!(alone.rejected.count, 1);
    }
}
