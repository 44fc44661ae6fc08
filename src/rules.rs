//! Rule generation: a [`ValidSlo`] in, the Prometheus rule groups that measure and alert on it out.
//!
//! No rule reads the source series over more than a few minutes: they are read once into
//! "tiles", the error and request rates of one short interval, and every window is a ratio of
//! tile sums. A tile sum is traffic-weighted (not an average of ratios), reads one sample per tile
//! instead of every raw scrape, and a stretch without traffic adds zeros instead of NaN.
//!
//! Three groups per SLO:
//! - `sli`, every minute: the last minute's tiles, the short alert windows (< 1d) as sums of
//!   them, then the multiwindow burn-rate alerts and the no-traffic alert. The alerts read the
//!   ratios recorded a moment before in the same evaluation. (A raw SLI has no request count to
//!   tile: its short windows run its own expression.)
//! - `window`, every 5 minutes: the last 5 minutes' tiles, and the long windows (1d, 3d, the SLO
//!   window) as sums of those.
//!
//! And, unless disabled, a third:
//! - `calibration`: every hour, the burn rate over the long run (90 days, or the window if
//!   longer) from the tiles, how much of it the data covers, and the tickets saying the
//!   objective is too tight or too loose for the service.
//!
//! Both tile sizes read their own source range. Five-minute tiles summed from the one-minute
//! ones would be cheaper still, but the two groups run at independent offsets: a 5-minute tile
//! read just before the `sli` group records the minute it ends on would lose that minute from
//! every long window for good.

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::parser::value::ValueType;

use crate::api::{PrometheusRule, PrometheusRuleSpec, Rule, RuleGroup, Severity};
use crate::burn_rate;
use crate::duration::Duration;
use crate::sli::{Sli, parse_promql};
use crate::validate::{Calibration, ValidSlo};

/// Tile size of the `window` group, and its evaluation interval.
pub const TILE: Duration = Duration::minutes(5);
/// Default tile size of the `sli` group, and its evaluation interval ([`Settings::alert_interval`]).
pub const DEFAULT_ALERT_INTERVAL: Duration = Duration::minutes(1);
/// Windows at least this long are computed from tiles.
const TILED_FROM: Duration = Duration::days(1);
/// Short windows recorded even when no tier uses them, for dashboards and `status.budget`.
const STANDARD_WINDOWS: [Duration; 7] = [
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(1),
    Duration::hours(2),
    Duration::hours(6),
    Duration::days(1),
    Duration::days(3),
];

/// How rules are generated beyond what each SLO says.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Scrape interval of the SLI's source series. A tile's rate reads (almost) one scrape
    /// interval more than the tile, so the increase between the last scrape of one tile and the
    /// first of the next is counted exactly once; with a plain 5m range it is left out and
    /// estimated by extrapolation, which skews the window ratio by up to ~0.2% when errors come
    /// in bursts. Must be positive. Above a minute, one-minute tiles still count each scrape
    /// interval once (ratios stay exact), but the short windows then move a scrape at a time.
    pub scrape_interval: Duration,
    /// How often the `sli` group runs, and so how often the burn-rate alerts are evaluated; its
    /// tiles are this long. One minute by default; 30s halves the delay of an alert for twice
    /// the cost. Whole seconds dividing a minute (see [`check_alert_interval`]).
    pub alert_interval: Duration,
    /// Labels on every generated PrometheusRule (what Prometheus' ruleSelector matches).
    pub rule_labels: BTreeMap<String, String>,
}

/// A usable [`Settings::alert_interval`]: whole seconds that divide a minute (1s to 30s, or
/// 1m), so every window of whole minutes is a whole number of its tiles.
pub fn check_alert_interval(d: Duration) -> Result<Duration, String> {
    let minute = Duration::minutes(1).as_millis();
    if !d.as_millis().is_multiple_of(1000) || d.as_millis() == 0 || !minute.is_multiple_of(d.as_millis()) {
        return Err(format!(
            "{d}: must be whole seconds that divide a minute (e.g. 1m, 30s, 15s or 10s)"
        ));
    }
    Ok(d)
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            alert_interval: DEFAULT_ALERT_INTERVAL,
            rule_labels: BTreeMap::new(),
        }
    }
}

/// The Prometheus Operator's (and kube-prometheus-stack's) default scrape interval.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_millis(30_000);

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub use crate::api::MANAGER;
pub const NO_TRAFFIC_ALERT: &str = "SLONoTraffic";

pub fn error_ratio_record(window: Duration) -> String {
    format!("slo:sli_error:ratio_rate{window}")
}
/// Record names of the request counts are this prefix and the window (`requests_record`).
pub const REQUESTS_PREFIX: &str = "slo:sli_requests:count";
/// `slo:sli_requests:count1h`: the requests (observations, for latency) over a window, summed
/// from the same tiles as its error ratio.
pub fn requests_record(window: Duration) -> String {
    format!("{REQUESTS_PREFIX}{window}")
}
/// How much of the SLO window (seconds) the 5-minute tiles cover: their count times their length.
pub const WINDOW_COVERED: &str = "slo:window_covered:seconds";
pub const ERRORS_TILE: &str = "slo:sli_errors:tile_rate5m";
pub const TOTAL_TILE: &str = "slo:sli_total:tile_rate5m";
/// `slo:sli_errors:tile_rate1m`: the `sli` group's tiles are named after their length.
pub fn errors_short_tile(tile: Duration) -> String {
    format!("slo:sli_errors:tile_rate{tile}")
}
pub fn total_short_tile(tile: Duration) -> String {
    format!("slo:sli_total:tile_rate{tile}")
}
pub const BUDGET_REMAINING: &str = "slo:error_budget_remaining:ratio";
pub const OBJECTIVE: &str = "slo:objective:ratio";
pub const BUDGET: &str = "slo:error_budget:ratio";
pub const WINDOW_SECONDS: &str = "slo:window:seconds";
pub const INFO: &str = "slo:info";
/// The interval (seconds) at which the SLI's source series are sampled, as measured: the median
/// over its request series of 10 minutes over their samples in the last 10 minutes.
pub const SCRAPE_INTERVAL: &str = "slo:sli_scrape_interval:seconds";
/// The range [`SCRAPE_INTERVAL`] counts samples over: it holds five samples at 2m, one at 10m.
const SCRAPE_INTERVAL_RANGE: Duration = Duration::minutes(10);
/// How long the measured interval must stay too long before a ticket.
const SIGNAL_UNHEALTHY_FOR: Duration = Duration::minutes(15);
pub const SIGNAL_UNHEALTHY_ALERT: &str = "SLOSignalUnhealthy";
pub const LONG_RUN_BURN: &str = "slo:long_run_burn:ratio";
pub const LONG_RUN_COVERED: &str = "slo:long_run_covered:seconds";

/// The long run the calibration judges an objective over: a quarter, or the window if longer.
const LONG_RUN: Duration = Duration::days(90);
/// Evaluation interval of the `calibration` group: the long-run numbers move slowly.
pub const CALIBRATION_INTERVAL: Duration = Duration::hours(1);
/// The calibration tickets wait for data covering at least the window and this.
const CALIBRATION_MIN_DATA: Duration = Duration::days(28);
/// Resolution of the long-run coverage.
const COVERAGE_STEP: Duration = Duration::days(1);
/// How long the long-run burn must stay past its threshold before a calibration ticket.
const CALIBRATION_FOR: Duration = Duration::days(1);

/// The long run of an SLO: 90 days, or its window if longer.
pub fn long_run(slo: &ValidSlo) -> Duration {
    LONG_RUN.max(slo.window)
}

/// The data a calibration ticket needs: the SLO window, and at least 28 days.
pub fn calibration_min_data(slo: &ValidSlo) -> Duration {
    CALIBRATION_MIN_DATA.max(slo.window)
}

/// The windows whose error ratio is recorded: the standard ones that fit in the SLO window,
/// every tier's windows, and the SLO window itself.
pub fn recorded_windows(slo: &ValidSlo) -> BTreeSet<Duration> {
    STANDARD_WINDOWS
        .iter()
        .copied()
        .filter(|w| *w <= slo.window)
        .chain(slo.tiers.iter().flat_map(|t| [t.long, t.short]))
        .chain([slo.window])
        .collect()
}

/// The windows an SLO records; `None` when its spec is invalid (it then reports itself).
pub fn windows_recorded_by(slo: &crate::api::ServiceLevelObjective) -> Option<BTreeSet<Duration>> {
    crate::validate::validate(slo).ok().map(|v| recorded_windows(&v))
}

pub use crate::validate::MARKER_LABEL;

/// The value of [`MARKER_LABEL`]: `<namespace>/<slo>`, or `<slo>` in a plain rule file.
pub fn marker(namespace: Option<&str>, slo: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{slo}"),
        _ => slo.to_string(),
    }
}

/// Labels identifying the SLO on every series and alert.
pub fn identity(slo: &ValidSlo) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("slo".to_string(), slo.name.clone()),
        (MARKER_LABEL.to_string(), marker(slo.namespace.as_deref(), &slo.name)),
    ]);
    if let Some(ns) = &slo.namespace {
        labels.insert("namespace".into(), ns.clone());
    }
    labels
}

/// `{slo="checkout",namespace="shop"}`
pub fn selector(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{{{}}}", inner.join(","))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Selector of this SLO's recorded series. Without a namespace (rule files for a plain
/// Prometheus) it also requires the label to be absent, so an SLO of the same name in some
/// namespace is not matched.
pub fn own_series(slo: &ValidSlo) -> String {
    let mut labels = identity(slo);
    labels.entry("namespace".into()).or_default();
    selector(&labels)
}

/// An instant read of a series the `window` group records every [`TILE`]: Prometheus looks back
/// only 5 minutes, exactly one tile, so a read just before the next evaluation lands would see
/// nothing. Looking back two tiles closes that gap.
fn latest_tiled(record: &str, sel: &str) -> String {
    format!(
        "last_over_time({record}{sel}[{}])",
        Duration::from_millis(2 * TILE.as_millis())
    )
}

/// A window's error ratio as the ratio of two tile sums.
fn tile_sums(errors: &str, total: &str, sel: &str, range: Duration) -> String {
    format!("sum_over_time({errors}{sel}[{range}])\n/\nsum_over_time({total}{sel}[{range}])")
}

/// A window's error ratio from the error tiles and the request count recorded just before it
/// in the same evaluation: `(sum of error rates × tile) / requests`.
fn errors_over_requests(errors: &str, sel: &str, range: Duration, tile: Duration, window: Duration) -> String {
    format!(
        "sum_over_time({errors}{sel}[{range}]) * {}\n/\n{}{sel}",
        tile.as_millis() / 1000,
        requests_record(window)
    )
}

/// The requests over `range`: the sum of the request-rate tiles times their length.
fn tile_count(total: &str, sel: &str, range: Duration, tile: Duration) -> String {
    format!("sum_over_time({total}{sel}[{range}]) * {}", tile.as_millis() / 1000)
}

/// A range one millisecond short of `window`: it holds exactly window / tile tiles recorded at
/// the group's interval, in Prometheus 2 (ranges include both ends) as in 3 (they do not).
fn just_under(window: Duration) -> Duration {
    Duration::from_millis(window.as_millis() - 1)
}

pub fn rule_groups(slo: &ValidSlo, settings: &Settings) -> Vec<RuleGroup> {
    let id = identity(slo);
    let sel = own_series(slo);
    let prefix = match &slo.namespace {
        Some(ns) => format!("{ns}/{}", slo.name),
        None => slo.name.clone(),
    };
    let record = |name: String, expr: String, labels: &BTreeMap<String, String>| Rule {
        record: Some(name),
        expr,
        labels: labels.clone(),
        ..Rule::default()
    };
    let windows = recorded_windows(slo);

    // One millisecond short of tile + scrape interval: when scrapes line up exactly with the
    // evaluations, the sample on the far boundary belongs to the previous tile (ranges include
    // both ends in Prometheus 2). The SLO's own scrape interval, else the operator's.
    let scrape_interval = slo.scrape_interval.unwrap_or(settings.scrape_interval);
    let tile_range =
        |tile: Duration| Duration::from_millis((tile.as_millis() + scrape_interval.as_millis()).saturating_sub(1));
    let tiles = |tile: Duration| match &slo.sli {
        Sli::Raw(_) => {
            // A raw ratio has no request count: every tile with data weighs the same, and
            // `>= 0` drops NaN (no traffic) so it cannot poison the window sums.
            let ratio = format!("({}) >= 0", slo.sli.error_ratio(tile_range(tile)));
            (ratio.clone(), format!("({ratio}) * 0 + 1"))
        }
        Sli::Events(events) => (
            events.errors_rate(tile_range(tile)),
            events.total_rate(tile_range(tile)),
        ),
    };

    let mut sli_rules = Vec::new();
    let short_windows = windows.iter().filter(|w| **w < TILED_FROM);
    match &slo.sli {
        // A raw SLI's own expression over each window: averaging its one-minute ratios would
        // weigh a quiet minute like a busy one.
        Sli::Raw(_) => {
            sli_rules.extend(short_windows.map(|w| record(error_ratio_record(*w), slo.sli.error_ratio(*w), &id)))
        }
        Sli::Events(_) => {
            let short = settings.alert_interval;
            let (errors_tile, total_tile) = (errors_short_tile(short), total_short_tile(short));
            let (errors, total) = tiles(short);
            sli_rules.push(record(errors_tile.clone(), errors, &id));
            sli_rules.push(record(total_tile.clone(), total, &id));
            // Every window is whole minutes (validate) and the tile divides a minute
            // (check_alert_interval): a fixed number of tiles, whenever it is evaluated.
            // The requests first: the ratio divides the errors by them, so the request tiles
            // are summed once.
            for w in short_windows {
                sli_rules.push(record(
                    requests_record(*w),
                    tile_count(&total_tile, &sel, just_under(*w), short),
                    &id,
                ));
                sli_rules.push(record(
                    error_ratio_record(*w),
                    errors_over_requests(&errors_tile, &sel, just_under(*w), short, *w),
                    &id,
                ));
            }
        }
    }
    sli_rules.extend(alert_rules(slo, &id, &sel, settings.alert_interval, scrape_interval));

    let (errors_tile, total_tile) = tiles(TILE);
    let mut window_rules = vec![
        record(ERRORS_TILE.into(), errors_tile, &id),
        record(TOTAL_TILE.into(), total_tile, &id),
    ];
    if let Some(measured) = scrape_interval_measured(&slo.sli) {
        window_rules.push(record(SCRAPE_INTERVAL.into(), measured, &id));
        window_rules.push(signal_unhealthy_alert(
            slo,
            &id,
            &sel,
            scrape_interval,
            settings.alert_interval,
        ));
    }
    for w in windows.iter().filter(|w| **w >= TILED_FROM) {
        match &slo.sli {
            // A raw SLI's tiles weigh the same and count no requests.
            Sli::Raw(_) => window_rules.push(record(
                error_ratio_record(*w),
                tile_sums(ERRORS_TILE, TOTAL_TILE, &sel, *w),
                &id,
            )),
            Sli::Events(_) => {
                window_rules.push(record(requests_record(*w), tile_count(TOTAL_TILE, &sel, *w, TILE), &id));
                window_rules.push(record(
                    error_ratio_record(*w),
                    errors_over_requests(ERRORS_TILE, &sel, *w, TILE, *w),
                    &id,
                ));
            }
        }
    }
    let budget = slo.budget.to_string();
    window_rules.push(record(
        BUDGET_REMAINING.into(),
        format!("1 - {}{sel} / {budget}", error_ratio_record(slo.window)),
        &id,
    ));
    let objective_ratio = slo.objective.shift_left(2).to_string();
    window_rules.push(record(OBJECTIVE.into(), format!("vector({objective_ratio})"), &id));
    window_rules.push(record(BUDGET.into(), format!("vector({budget})"), &id));
    window_rules.push(record(
        WINDOW_SECONDS.into(),
        format!("vector({})", slo.window.as_millis() / 1000),
        &id,
    ));
    let mut info = id.clone();
    info.insert("service".into(), slo.service.clone());
    info.insert("objective".into(), slo.objective.to_string());
    info.insert("window".into(), slo.window.to_string());
    info.insert("indicator".into(), slo.sli.kind().into());
    window_rules.push(record(INFO.into(), "vector(1)".into(), &info));

    let mut groups = vec![
        RuleGroup {
            name: format!("{prefix}:sli"),
            interval: Some(settings.alert_interval.to_string()),
            rules: sli_rules,
            ..RuleGroup::default()
        },
        RuleGroup {
            name: format!("{prefix}:window"),
            interval: Some(TILE.to_string()),
            rules: window_rules,
            ..RuleGroup::default()
        },
    ];
    // How much of the window the tiles cover moves by a tile in 5 minutes: counted hourly, it
    // costs a twelfth of a count every 5 minutes (a full read of the window's tiles).
    let mut hourly = vec![record(
        WINDOW_COVERED.into(),
        format!(
            "count_over_time({TOTAL_TILE}{sel}[{}]) * {}",
            slo.window,
            TILE.as_millis() / 1000
        ),
        &id,
    )];
    if let Some(calibration) = &slo.calibration {
        hourly.extend(calibration_rules(slo, calibration, &id, &sel));
    }
    groups.push(RuleGroup {
        name: format!("{prefix}:calibration"),
        interval: Some(CALIBRATION_INTERVAL.to_string()),
        rules: hourly,
        ..RuleGroup::default()
    });
    groups
}

/// The long-run burn rate from the tiles (two sums over about 26,000 samples an hour), how far
/// back the tiles reach, and the two tickets. The reach is the oldest of one tile a day (90
/// lookups an hour), so it is short by less than a day: the tickets wait that much longer, and
/// it does not depend on how often the tiles were recorded.
fn calibration_rules(slo: &ValidSlo, calibration: &Calibration, id: &BTreeMap<String, String>, sel: &str) -> Vec<Rule> {
    let long_run = long_run(slo);
    let min_data = calibration_min_data(slo);
    let budget = slo.budget.to_string();
    let record = |name: &str, expr: String| Rule {
        record: Some(name.into()),
        expr,
        labels: id.clone(),
        ..Rule::default()
    };
    let mut rules = vec![
        record(
            LONG_RUN_BURN,
            format!("{}\n/ {budget}", tile_sums(ERRORS_TILE, TOTAL_TILE, sel, long_run)),
        ),
        record(
            LONG_RUN_COVERED,
            format!("time() - min_over_time(timestamp({TOTAL_TILE}{sel})[{long_run}:{COVERAGE_STEP}])"),
        ),
    ];
    let what = described(slo);
    let mut labels = alert_labels(slo, id);
    labels.insert("severity".into(), slo.ticket_severity.clone());
    let enough_data = format!("{LONG_RUN_COVERED}{sel} >= {}", min_data.as_millis() / 1000);
    let burn = "{{ $value | printf \"%.2f\" }}";
    let covered = format!(
        "{{{{ with query `{LONG_RUN_COVERED}{sel}` }}}}{{{{ . | first | value | humanizeDuration }}}}{{{{ else }}}}unknown{{{{ end }}}}"
    );
    let tickets = [
        (
            &calibration.too_tight_alert,
            format!("> {}", calibration.above),
            format!("{}: objective too tight for the service", slo.name),
            format!(
                "Over the last {long_run} ({covered} of data) the {what} burned its error budget at {burn}x the sustainable rate (ticket above {above}x): \
                 the service lives in constant risk of a freeze. Fix the causes, or lower the objective to what users actually need.",
                above = calibration.above
            ),
        ),
        (
            &calibration.too_loose_alert,
            format!("< {}", calibration.below),
            format!("{}: objective too loose for the service", slo.name),
            format!(
                "Over the last {long_run} ({covered} of data) the {what} burned its error budget at only {burn}x the sustainable rate (ticket below {below}x): \
                 the objective does not say when users are hurt, or the service is engineered beyond what they need. \
                 Raise the objective, or spend the budget on faster releases.",
                below = calibration.below
            ),
        ),
    ];
    for (alert, comparison, summary, description) in tickets {
        let mut annotations = slo.annotations.clone();
        annotations.insert("summary".into(), summary);
        annotations.insert("description".into(), description);
        rules.push(Rule {
            alert: Some(alert.clone()),
            expr: format!("{LONG_RUN_BURN}{sel} {comparison}\nand\n{enough_data}"),
            for_: Some(CALIBRATION_FOR.to_string()),
            labels: labels.clone(),
            annotations,
            ..Rule::default()
        });
    }
    rules
}

/// Labels of every alert of an SLO, before `severity`: the user's, the identity, `service`.
fn alert_labels(slo: &ValidSlo, id: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels = slo.labels.clone();
    labels.extend(id.clone());
    labels.insert("service".into(), slo.service.clone());
    labels
}

/// `checkout SLO checkout-availability (99.9% over 30d)`, as alert descriptions name it.
fn described(slo: &ValidSlo) -> String {
    format!(
        "{} SLO {} ({}% over {})",
        slo.service, slo.name, slo.objective, slo.window
    )
}

/// How the sampling interval of an events SLI's request series is measured: 10 minutes over the
/// median count of their samples in the last 10 minutes, over the series that span the range
/// (the median, so that a few odd series do not move it). `None` for a raw SLI, which has no request series, and
/// for requests counted by an expression, whose series are not known by selector.
fn scrape_interval_measured(sli: &Sli) -> Option<String> {
    match sli {
        Sli::Events(events) => match &events.total {
            // Only series there now and already 10 minutes ago: one that is gone, or younger
            // than the range (every pod after a rollout), holds fewer samples than its interval
            // gives, which would read as a longer interval.
            crate::sli::Source::Selector(selector) => Some(format!(
                "{} / quantile(0.5, count_over_time({selector}[{range}]) and {selector} and {selector} offset {range})",
                SCRAPE_INTERVAL_RANGE.as_millis() / 1000,
                range = SCRAPE_INTERVAL_RANGE
            )),
            crate::sli::Source::Template(_) => None,
        },
        Sli::Raw(_) => None,
    }
}

/// The sampling interval (seconds) from which a `tile` that reads `assumed` more than its length
/// holds two samples almost never: from then on every such tile is empty. Below it, up to half
/// the tiles may be empty, and a window's ratio (errors over requests of the same tiles) stays
/// exact.
pub fn scrape_interval_limit(assumed: Duration, tile: Duration) -> f64 {
    assumed.as_millis().saturating_add(tile.as_millis()) as f64 / 1000.0
}

/// A ticket when the request series are sampled so much less often than the rules assume that
/// the `tile`s of the `sli` group hold fewer than two samples and stay empty: the short windows
/// and the burn alerts are blind (and [`NO_TRAFFIC_ALERT`] would say there is no traffic).
fn signal_unhealthy_alert(
    slo: &ValidSlo,
    id: &BTreeMap<String, String>,
    sel: &str,
    assumed: Duration,
    tile: Duration,
) -> Rule {
    let mut labels = alert_labels(slo, id);
    labels.insert("severity".into(), slo.ticket_severity.clone());
    labels.insert("reason".into(), "ScrapeIntervalLonger".into());
    let mut annotations = slo.annotations.clone();
    let measured = "{{ $value | printf \"%.0f\" }}s";
    annotations.insert(
        "summary".into(),
        format!(
            "{}: the SLI's series are scraped every {measured}, its rules assume {assumed}",
            slo.name
        ),
    );
    annotations.insert(
        "description".into(),
        format!(
            "The request series of the {what} are sampled about every {measured}, but its rules assume {assumed}: each \
             {tile} tile reads {assumed} more than its length and needs two samples, so tiles stay empty and the short \
             windows and burn-rate alerts cannot see a burn. Set spec.scrapeInterval of the ServiceLevelObjective to \
             the real scrape interval (or the operator's --scrape-interval, chart value scrapeInterval).",
            what = described(slo),
        ),
    );
    Rule {
        alert: Some(SIGNAL_UNHEALTHY_ALERT.into()),
        expr: format!("{SCRAPE_INTERVAL}{sel} > {}", scrape_interval_limit(assumed, tile)),
        for_: Some(SIGNAL_UNHEALTHY_FOR.to_string()),
        labels,
        annotations,
        ..Rule::default()
    }
}

fn alert_rules(
    slo: &ValidSlo,
    id: &BTreeMap<String, String>,
    sel: &str,
    tile: Duration,
    scrape_interval: Duration,
) -> Vec<Rule> {
    let budget = slo.budget.to_string();
    let base = alert_labels(slo, id);
    let remaining = format!(
        "{{{{ with query `{BUDGET_REMAINING}{sel}` }}}}{{{{ . | first | value | humanizePercentage }}}}{{{{ else }}}}unknown{{{{ end }}}}"
    );
    let what = described(slo);
    let mut rules: Vec<Rule> = slo
        .tiers
        .iter()
        .map(|tier| {
            let mut labels = base.clone();
            let severity = match tier.severity {
                Severity::Page => &slo.page_severity,
                Severity::Ticket => &slo.ticket_severity,
            };
            labels.insert("severity".into(), severity.clone());
            labels.insert("long".into(), tier.long.to_string());
            labels.insert("short".into(), tier.short.to_string());
            let burn = |w: Duration| {
                let ratio = if w >= TILED_FROM {
                    latest_tiled(&error_ratio_record(w), sel)
                } else {
                    format!("{}{sel}", error_ratio_record(w))
                };
                format!("({ratio} / {budget}) > {}", tier.factor)
            };
            // The budget would last window / factor at this burn rate.
            let exhaustion = Duration::from_millis((slo.window.as_millis() as f64 / tier.factor.parse::<f64>().unwrap_or(1.0)) as u64);
            let mut annotations = slo.annotations.clone();
            annotations.entry("summary".into()).or_insert_with(||
                format!("{}: error budget burning at {{{{ $value | printf \"%.1f\" }}}}x over {}", slo.name, tier.long),
            );
            annotations.entry("description".into()).or_insert_with(||
                format!(
                    "The {what} is burning its error budget at {{{{ $value | printf \"%.1f\" }}}}x the sustainable rate over the last {long}, \
                     confirmed over {short} (threshold {factor}x: at that rate the whole budget lasts {exhaustion}). \
                     Error budget remaining: {remaining}.{desc}",
                    long = tier.long,
                    short = tier.short,
                    factor = tier.factor,
                    desc = slo.description.as_ref().map(|d| format!(" {d}")).unwrap_or_default(),
                ),
            );
            let mut expr = format!("{}\nand\n{}", burn(tier.long), burn(tier.short));
            if slo.min_requests > 0 {
                // Only a window that saw enough requests to mean something.
                let requests = if tier.long >= TILED_FROM {
                    latest_tiled(&requests_record(tier.long), sel)
                } else {
                    format!("{}{sel}", requests_record(tier.long))
                };
                expr.push_str(&format!("\nand\n{requests} >= {}", slo.min_requests));
            }
            Rule {
                alert: Some(slo.alert_name.clone()),
                expr,
                for_: Some(tier.for_.unwrap_or_else(|| burn_rate::default_for(tier.short, tile)).to_string()),
                labels,
                annotations,
                ..Rule::default()
            }
        })
        .collect();

    if let Some(for_) = slo.no_traffic_for {
        let mut labels = base.clone();
        labels.insert("severity".into(), slo.ticket_severity.clone());
        let mut annotations = slo.annotations.clone();
        annotations.insert("summary".into(), format!("{}: the SLI sees no traffic", slo.name));
        annotations.insert(
            "description".into(),
            format!(
                "The {what} has had no requests (or no series at all) for {for_}: its error budget cannot be measured. \
                 Check that the service is scraped and that the SLI's selectors still match."
            ),
        );
        rules.push(Rule {
            alert: Some(NO_TRAFFIC_ALERT.into()),
            expr: no_traffic(&slo.sli, sel, tile, scrape_interval),
            for_: Some(for_.to_string()),
            labels,
            annotations,
            ..Rule::default()
        });
    }
    rules
}

/// The no-traffic alert looks for requests over this range, the shortest recorded window.
const NO_TRAFFIC_RANGE: Duration = Duration::minutes(5);

/// 1 when the SLI has had no requests over [`NO_TRAFFIC_RANGE`] or has no series at all, else
/// nothing. An events SLI's one-minute tiles are recorded earlier in the same group, so even a
/// new SLO's first evaluation sees them. A raw ratio has no request count: as for its tiles, a
/// ratio that is a number (not NaN from 0/0) counts as traffic. Tiles left empty because the
/// request series are sampled too seldom are not a lack of traffic: [`SIGNAL_UNHEALTHY_ALERT`]
/// says what is wrong instead.
fn no_traffic(sli: &Sli, sel: &str, tile: Duration, scrape_interval: Duration) -> String {
    let traffic = match sli {
        Sli::Raw(_) => format!("{} >= 0", as_vector(sli.error_ratio(NO_TRAFFIC_RANGE))),
        Sli::Events(_) => format!(
            "sum_over_time({}{sel}[{}]) > 0",
            total_short_tile(tile),
            just_under(NO_TRAFFIC_RANGE)
        ),
    };
    match scrape_interval_measured(sli) {
        Some(_) => format!(
            "absent({traffic})\nunless on ()\n{SCRAPE_INTERVAL}{sel} > {}",
            scrape_interval_limit(scrape_interval, tile)
        ),
        None => format!("absent({traffic})"),
    }
}

/// A user expression may be a scalar, which neither a filtering comparison nor `absent` takes.
fn as_vector(expr: String) -> String {
    match parse_promql(&expr) {
        Ok(e) if matches!(e.value_type(), ValueType::Scalar) => format!("vector({expr})"),
        _ => expr,
    }
}

/// The PrometheusRule for an SLO: same name and namespace, our managed-by label plus the labels
/// a platform team selects rules by.
pub fn prometheus_rule(slo: &ValidSlo, settings: &Settings) -> PrometheusRule {
    let mut labels = settings.rule_labels.clone();
    labels.insert(MANAGED_BY_LABEL.into(), MANAGER.into());
    labels.insert("slo.warden.dev/slo".into(), slo.name.clone());
    let mut pr = PrometheusRule::new(
        &slo.name,
        PrometheusRuleSpec {
            groups: rule_groups(slo, settings),
            ..PrometheusRuleSpec::default()
        },
    );
    pr.metadata.namespace = slo.namespace.clone();
    pr.metadata.labels = Some(labels);
    pr
}

/// Writes what `slo-warden generate` prints as PrometheusRules: one YAML document per SLO,
/// each rendered and written before the next, so that the output of ten thousand SLOs is never
/// held whole.
pub fn write_prometheus_rules(
    out: &mut impl std::io::Write,
    slos: &[ValidSlo],
    settings: &Settings,
) -> Result<(), String> {
    for slo in slos {
        write_yaml(out, "---\n", &prometheus_rule(slo, settings))?;
    }
    out.flush().map_err(|e| format!("cannot write: {e}"))
}

/// Writes one Prometheus rule file holding every SLO's groups (`groups:` and a block sequence,
/// as serde_yaml renders the whole file), one group at a time.
pub fn write_rule_file(out: &mut impl std::io::Write, slos: &[ValidSlo], settings: &Settings) -> Result<(), String> {
    let mut head = "groups:\n";
    for group in slos.iter().flat_map(|slo| rule_groups(slo, settings)) {
        write_yaml(out, head, &[group])?;
        head = "";
    }
    if !head.is_empty() {
        write_yaml(out, "groups: ", &[] as &[RuleGroup])?;
    }
    out.flush().map_err(|e| format!("cannot write: {e}"))
}

/// `prefix` and `value` as YAML.
fn write_yaml(
    out: &mut impl std::io::Write,
    prefix: &str,
    value: &(impl serde::Serialize + ?Sized),
) -> Result<(), String> {
    let yaml = serde_yaml::to_string(value).map_err(|e| format!("cannot render YAML: {e}"))?;
    write!(out, "{prefix}{yaml}").map_err(|e| format!("cannot write: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceLevelObjective;

    fn valid(yaml_spec: &str) -> ValidSlo {
        let slo: ServiceLevelObjective = serde_yaml::from_str(&format!(
            "apiVersion: slo.warden.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {{name: api, namespace: shop}}\nspec: {yaml_spec}"
        ))
        .unwrap();
        crate::validate::validate(&slo).unwrap()
    }

    fn record<'a>(groups: &'a [RuleGroup], name: &str) -> &'a Rule {
        groups
            .iter()
            .flat_map(|g| &g.rules)
            .find(|r| r.record.as_deref() == Some(name))
            .unwrap()
    }

    #[test]
    fn written_one_at_a_time_as_whole_documents_render() {
        let slos = [
            valid("{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: t_total}}}"),
            valid("{objective: 99, window: 7d, indicator: {raw: {errorRatio: 'sum(rate(e[$window]))'}}}"),
        ];
        let settings = Settings::default();
        type Writer = fn(&mut Vec<u8>, &[ValidSlo], &Settings) -> Result<(), String>;
        let write = |f: Writer, slos: &[ValidSlo]| {
            let mut out = Vec::new();
            f(&mut out, slos, &settings).unwrap();
            String::from_utf8(out).unwrap()
        };
        let groups: Vec<RuleGroup> = slos.iter().flat_map(|s| rule_groups(s, &settings)).collect();
        let whole = serde_yaml::to_string(&BTreeMap::from([("groups", &groups)])).unwrap();
        assert_eq!(write(write_rule_file, &slos), whole);
        let empty: Vec<RuleGroup> = Vec::new();
        assert_eq!(
            write(write_rule_file, &[]),
            serde_yaml::to_string(&BTreeMap::from([("groups", &empty)])).unwrap()
        );
        let documents: String = slos
            .iter()
            .map(|s| {
                format!(
                    "---\n{}",
                    serde_yaml::to_string(&prometheus_rule(s, &settings)).unwrap()
                )
            })
            .collect();
        assert_eq!(write(write_prometheus_rules, &slos), documents);
        assert_eq!(write(write_prometheus_rules, &[]), "");
    }

    #[test]
    fn tiles_read_one_scrape_interval_more_than_the_tile() {
        let slo = valid("{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: t_total}}}");
        let groups = rule_groups(&slo, &Settings::default());
        assert_eq!(record(&groups, TOTAL_TILE).expr, "sum(rate(t_total[5m29s999ms]))");
        assert_eq!(
            record(&groups, ERRORS_TILE).expr,
            "(sum(rate(e_total[5m29s999ms])) or vector(0))"
        );
        let fast = Settings {
            scrape_interval: Duration::parse("15s").unwrap(),
            ..Settings::default()
        };
        assert_eq!(
            record(&rule_groups(&slo, &fast), TOTAL_TILE).expr,
            "sum(rate(t_total[5m14s999ms]))"
        );
        assert_eq!(groups[1].interval.as_deref(), Some("5m"));
        // The SLO's own scrape interval wins over the operator's, for both kinds of tiles.
        let slow = valid(
            "{objective: 99.9, window: 30d, scrapeInterval: 2m, indicator: {ratio: {errors: e_total, total: t_total}}}",
        );
        for settings in [Settings::default(), fast] {
            let groups = rule_groups(&slow, &settings);
            assert_eq!(record(&groups, TOTAL_TILE).expr, "sum(rate(t_total[6m59s999ms]))");
            assert_eq!(
                record(&groups, &total_short_tile(settings.alert_interval)).expr,
                "sum(rate(t_total[2m59s999ms]))"
            );
        }
    }

    #[test]
    fn short_windows_are_sums_of_minute_tiles_recorded_with_the_alerts() {
        let slo = valid("{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: t_total}}}");
        let groups = rule_groups(&slo, &Settings::default());
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["shop/api:sli", "shop/api:window", "shop/api:calibration"]);
        let sli = &groups[0];
        assert_eq!(sli.interval.as_deref(), Some("1m"));
        let order: Vec<&str> = sli
            .rules
            .iter()
            .map(|r| r.record.as_deref().or(r.alert.as_deref()).unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "slo:sli_errors:tile_rate1m",
                "slo:sli_total:tile_rate1m",
                "slo:sli_requests:count5m",
                "slo:sli_error:ratio_rate5m",
                "slo:sli_requests:count30m",
                "slo:sli_error:ratio_rate30m",
                "slo:sli_requests:count1h",
                "slo:sli_error:ratio_rate1h",
                "slo:sli_requests:count2h",
                "slo:sli_error:ratio_rate2h",
                "slo:sli_requests:count6h",
                "slo:sli_error:ratio_rate6h",
                "ErrorBudgetBurn",
                "ErrorBudgetBurn",
                "ErrorBudgetBurn",
                "ErrorBudgetBurn",
                NO_TRAFFIC_ALERT,
            ],
            "tiles, then the counts and the ratios summing them, then the alerts reading the ratios"
        );
        assert_eq!(
            record(&groups, "slo:sli_total:tile_rate1m").expr,
            "sum(rate(t_total[1m29s999ms]))"
        );
        assert_eq!(
            record(&groups, "slo:sli_errors:tile_rate1m").expr,
            "(sum(rate(e_total[1m29s999ms])) or vector(0))"
        );
        let sel = r#"{namespace="shop",slo="api",slo_warden="shop/api"}"#;
        assert_eq!(
            record(&groups, "slo:sli_error:ratio_rate6h").expr,
            format!(
                "sum_over_time(slo:sli_errors:tile_rate1m{sel}[5h59m59s999ms]) * 60\n/\nslo:sli_requests:count6h{sel}"
            )
        );
        // Request counts sum the same tiles, times their length.
        assert_eq!(
            record(&groups, "slo:sli_requests:count6h").expr,
            format!("sum_over_time(slo:sli_total:tile_rate1m{sel}[5h59m59s999ms]) * 60")
        );
        assert_eq!(
            record(&groups, "slo:sli_requests:count3d").expr,
            format!("sum_over_time(slo:sli_total:tile_rate5m{sel}[3d]) * 300")
        );
        assert_eq!(
            record(&groups, WINDOW_COVERED).expr,
            format!("count_over_time(slo:sli_total:tile_rate5m{sel}[30d]) * 300")
        );
        // No minimum: the burn alerts read no count.
        assert!(
            groups
                .iter()
                .flat_map(|g| &g.rules)
                .all(|r| r.alert.is_none() || !r.expr.contains(REQUESTS_PREFIX))
        );
        // The long windows still sum the 5-minute tiles, and no rule reads a source series over
        // more than a tile and a scrape interval, but for the count of samples over 10 minutes.
        assert!(
            record(&groups, "slo:sli_error:ratio_rate1d")
                .expr
                .contains("tile_rate5m")
        );
        for rule in groups.iter().flat_map(|g| &g.rules) {
            assert!(
                !rule.expr.contains("t_total[")
                    || rule.expr.contains("[1m29s999ms]")
                    || rule.expr.contains("[5m29s999ms]")
                    || rule.expr
                        == "600 / quantile(0.5, count_over_time(t_total[10m]) and t_total and t_total offset 10m)",
                "{}",
                rule.expr
            );
        }
    }

    #[test]
    fn a_minimum_of_requests_guards_every_burn_alert_on_its_long_window() {
        let slo = valid(
            "{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: t_total}}, alerting: {minRequests: 100}}",
        );
        let sel = r#"{namespace="shop",slo="api",slo_warden="shop/api"}"#;
        let groups = rule_groups(&slo, &Settings::default());
        let alerts: Vec<(&str, &str)> = groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| r.alert.as_deref() == Some("ErrorBudgetBurn"))
            .map(|r| (r.labels["long"].as_str(), r.expr.as_str()))
            .collect();
        assert_eq!(alerts.len(), 4);
        for (long, expr) in alerts {
            let count = if long.ends_with('d') {
                format!("last_over_time(slo:sli_requests:count{long}{sel}[10m]) >= 100")
            } else {
                format!("slo:sli_requests:count{long}{sel} >= 100")
            };
            assert!(expr.ends_with(&format!("\nand\n{count}")), "{expr}");
        }
        // Every count a guard reads is recorded.
        let recorded: BTreeSet<&str> = groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter_map(|r| r.record.as_deref())
            .collect();
        for long in ["1h", "6h", "1d", "3d"] {
            assert!(
                recorded.contains(format!("slo:sli_requests:count{long}").as_str()),
                "{long}"
            );
        }
        // A raw indicator counts no requests: refused, with the fix.
        let raw = serde_yaml::from_str::<crate::api::ServiceLevelObjective>(
            "{metadata: {name: api, namespace: shop}, spec: {objective: 99.9, window: 30d, indicator: {raw: {errorRatio: 'x[$window]'}}, alerting: {minRequests: 10}}}",
        )
        .unwrap();
        let problems = crate::validate::validate(&raw).unwrap_err();
        assert_eq!(problems[0].field, "spec.alerting.minRequests");
        assert!(problems[0].message.contains("raw indicator"), "{}", problems[0].message);
        // ... and records no counts.
        let raw = valid("{objective: 99.9, window: 30d, indicator: {raw: {errorRatio: 'x[$window]'}}}");
        assert!(
            rule_groups(&raw, &Settings::default())
                .iter()
                .flat_map(|g| &g.rules)
                .all(|r| !r.record.as_deref().unwrap_or_default().starts_with(REQUESTS_PREFIX))
        );
    }

    #[test]
    fn default_for_is_whole_alert_evaluations_and_a_given_for_is_kept() {
        let fors = |spec: &str, interval: &str| -> Vec<(String, String)> {
            let settings = Settings {
                alert_interval: Duration::parse(interval).unwrap(),
                ..Settings::default()
            };
            rule_groups(&valid(spec), &settings)
                .iter()
                .flat_map(|g| &g.rules)
                .filter(|r| r.alert.as_deref() == Some("ErrorBudgetBurn"))
                .map(|r| (r.labels["short"].clone(), r.for_.clone().unwrap()))
                .collect()
        };
        let defaults = "{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: t_total}}}";
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            fors(defaults, "1m"),
            [s("5m", "2m"), s("30m", "15m"), s("2h", "1h"), s("6h", "3h")]
        );
        assert_eq!(
            fors(defaults, "30s"),
            [s("5m", "2m30s"), s("30m", "15m"), s("2h", "1h"), s("6h", "3h")]
        );
        let custom = "{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: t_total}}, \
            alerting: {burnRates: [{long: 1h, short: 5m, factor: 14.4, severity: page, for: 2m30s}, \
            {long: 6h, short: 30m, factor: 6, severity: page}]}}";
        assert_eq!(fors(custom, "1m"), [s("5m", "2m30s"), s("30m", "15m")]);
    }

    #[test]
    fn the_alert_interval_sets_the_short_tiles_and_the_sli_group_cadence() {
        let slo = valid("{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: t_total}}}");
        let settings = Settings {
            alert_interval: Duration::parse("30s").unwrap(),
            ..Settings::default()
        };
        let groups = rule_groups(&slo, &settings);
        assert_eq!(groups[0].interval.as_deref(), Some("30s"));
        assert_eq!(groups[1].interval.as_deref(), Some("5m"));
        assert_eq!(
            record(&groups, "slo:sli_total:tile_rate30s").expr,
            "sum(rate(t_total[59s999ms]))"
        );
        let sel = r#"{namespace="shop",slo="api",slo_warden="shop/api"}"#;
        assert_eq!(
            record(&groups, "slo:sli_error:ratio_rate5m").expr,
            format!(
                "sum_over_time(slo:sli_errors:tile_rate30s{sel}[4m59s999ms]) * 30\n/\nslo:sli_requests:count5m{sel}"
            )
        );
        let no_traffic = groups[0]
            .rules
            .iter()
            .find(|r| r.alert.as_deref() == Some(NO_TRAFFIC_ALERT))
            .unwrap();
        assert!(
            no_traffic.expr.contains("slo:sli_total:tile_rate30s"),
            "{}",
            no_traffic.expr
        );

        for (given, ok) in [
            ("1m", true),
            ("30s", true),
            ("5s", true),
            ("1s", true),
            ("45s", false),
            ("2m", false),
            ("4m59s", false),
            ("5m", false),
            ("1500ms", false),
        ] {
            assert_eq!(
                check_alert_interval(Duration::parse(given).unwrap()).is_ok(),
                ok,
                "{given}"
            );
        }
    }

    #[test]
    fn the_sampling_interval_is_measured_and_a_longer_one_tickets() {
        let slo = valid(
            "{objective: 99.9, window: 30d, indicator: {latency: {histogram: 'h_seconds{job=\"a\"}', threshold: 250ms}}}",
        );
        let sel = r#"{namespace="shop",slo="api",slo_warden="shop/api"}"#;
        let alert = |groups: &[RuleGroup]| {
            groups[1]
                .rules
                .iter()
                .find(|r| r.alert.as_deref() == Some(SIGNAL_UNHEALTHY_ALERT))
                .cloned()
                .unwrap()
        };
        let groups = rule_groups(&slo, &Settings::default());
        assert_eq!(
            record(&groups, SCRAPE_INTERVAL).expr,
            r#"600 / quantile(0.5, count_over_time(h_seconds_count{job="a"}[10m]) and h_seconds_count{job="a"} and h_seconds_count{job="a"} offset 10m)"#
        );
        let unhealthy = alert(&groups);
        // Blind from a tile and the assumed interval on: 1m + 30s.
        assert_eq!(unhealthy.expr, format!("{SCRAPE_INTERVAL}{sel} > 90"));
        assert_eq!(unhealthy.for_.as_deref(), Some("15m"));
        assert_eq!(unhealthy.labels["severity"], "warning");
        assert_eq!(unhealthy.labels["reason"], "ScrapeIntervalLonger");
        assert!(unhealthy.annotations["description"].contains("Set spec.scrapeInterval"));
        // The limit follows the interval the rules assume: the SLO's own (1m + 2m), else the
        // operator's (1m + 15s).
        let slow = valid(
            "{objective: 99.9, window: 30d, scrapeInterval: 2m, indicator: {ratio: {errors: e_total, total: t_total}}}",
        );
        assert_eq!(
            alert(&rule_groups(&slow, &Settings::default())).expr,
            format!("{SCRAPE_INTERVAL}{sel} > 180")
        );
        let fast = Settings {
            scrape_interval: Duration::parse("15s").unwrap(),
            ..Settings::default()
        };
        assert_eq!(
            alert(&rule_groups(&slo, &fast)).expr,
            format!("{SCRAPE_INTERVAL}{sel} > 75")
        );
        // A raw SLI has no request series, nor does a request count written as an expression.
        for spec in [
            "{objective: 99, window: 7d, indicator: {raw: {errorRatio: 'sum(rate(e[$window])) / sum(rate(t[$window]))'}}}",
            "{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: 'sum(rate(t_total[$window]))'}}}",
        ] {
            let groups = rule_groups(&valid(spec), &Settings::default());
            let rules = || groups.iter().flat_map(|g| &g.rules);
            assert!(rules().all(|r| r.record.as_deref() != Some(SCRAPE_INTERVAL)), "{spec}");
            assert!(
                rules().all(|r| r.alert.as_deref() != Some(SIGNAL_UNHEALTHY_ALERT)),
                "{spec}"
            );
        }
    }

    #[test]
    fn no_traffic_reads_the_minute_tiles_or_a_raw_ratio() {
        let expr = |spec: &str| {
            let groups = rule_groups(&valid(spec), &Settings::default());
            let alert = groups[0]
                .rules
                .iter()
                .find(|r| r.alert.as_deref() == Some(NO_TRAFFIC_ALERT))
                .unwrap();
            alert.expr.clone()
        };
        // Tiles left empty by series sampled too seldom are not a lack of traffic.
        assert_eq!(
            expr("{objective: 99.9, window: 30d, indicator: {ratio: {good: g_total, total: t_total}}}"),
            r#"absent(sum_over_time(slo:sli_total:tile_rate1m{namespace="shop",slo="api",slo_warden="shop/api"}[4m59s999ms]) > 0)
unless on ()
slo:sli_scrape_interval:seconds{namespace="shop",slo="api",slo_warden="shop/api"} > 90"#
        );
        let template = "{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: 'sum(rate(t_total[$window]))'}}}";
        assert_eq!(
            expr(template),
            r#"absent(sum_over_time(slo:sli_total:tile_rate1m{namespace="shop",slo="api",slo_warden="shop/api"}[4m59s999ms]) > 0)"#
        );
        let raw = "{objective: 99, window: 7d, indicator: {raw: {errorRatio: 'sum(rate(e[$window])) / sum(rate(t[$window]))'}}}";
        assert_eq!(expr(raw), "absent((sum(rate(e[5m])) / sum(rate(t[5m]))) >= 0)");
        // A raw SLI has no request count to tile: its short windows run its own expression.
        let groups = rule_groups(&valid(raw), &Settings::default());
        assert!(
            groups[0]
                .rules
                .iter()
                .all(|r| r.record.as_deref() != Some("slo:sli_errors:tile_rate1m"))
        );
        assert_eq!(
            record(&groups, "slo:sli_error:ratio_rate1h").expr,
            "(sum(rate(e[1h])) / sum(rate(t[1h])))"
        );
        let scalar = expr(
            "{objective: 99, window: 7d, indicator: {raw: {errorRatio: 'scalar(sum(rate(e[$window]))) / scalar(sum(rate(t[$window])))'}}}",
        );
        assert_eq!(
            scalar,
            "absent(vector((scalar(sum(rate(e[5m]))) / scalar(sum(rate(t[5m]))))) >= 0)"
        );
        parse_promql(&scalar).unwrap();
    }

    #[test]
    fn every_generated_expression_parses_and_alert_label_sets_are_unique() {
        let slo = valid(
            "{objective: 99.95, window: 28d, indicator: {latency: {histogram: 'h_seconds{job=\"a\"}', threshold: 250ms}}}",
        );
        let groups = rule_groups(&slo, &Settings::default());
        let mut seen = BTreeSet::new();
        for rule in groups.iter().flat_map(|g| &g.rules) {
            crate::sli::parse_promql(&rule.expr).unwrap();
            if let Some(alert) = &rule.alert {
                assert!(
                    seen.insert((alert.clone(), rule.labels.clone())),
                    "duplicate label set {:?}",
                    rule.labels
                );
            }
        }
        assert_eq!(
            seen.len(),
            8,
            "4 burn tiers, no traffic, signal unhealthy, too tight, too loose"
        );
        assert_eq!(record(&groups, BUDGET).expr, "vector(0.0005)");
        assert_eq!(record(&groups, OBJECTIVE).expr, "vector(0.9995)");
    }

    #[test]
    fn calibration_reads_the_tiles_hourly_and_waits_for_data() {
        let slo = valid("{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: t_total}}}");
        let groups = rule_groups(&slo, &Settings::default());
        let calibration = &groups[2];
        assert_eq!(calibration.name, "shop/api:calibration");
        assert_eq!(calibration.interval.as_deref(), Some("1h"));
        let sel = r#"{namespace="shop",slo="api",slo_warden="shop/api"}"#;
        assert_eq!(
            record(&groups, LONG_RUN_BURN).expr,
            format!(
                "sum_over_time(slo:sli_errors:tile_rate5m{sel}[90d])\n/\nsum_over_time(slo:sli_total:tile_rate5m{sel}[90d])\n/ 0.001"
            )
        );
        assert_eq!(
            record(&groups, LONG_RUN_COVERED).expr,
            format!("time() - min_over_time(timestamp(slo:sli_total:tile_rate5m{sel})[90d:1d])")
        );
        let alerts: Vec<(&str, &str, &str)> = calibration
            .rules
            .iter()
            .filter_map(|r| Some((r.alert.as_deref()?, r.expr.as_str(), r.for_.as_deref()?)))
            .collect();
        let enough = format!("slo:long_run_covered:seconds{sel} >= 2592000");
        assert_eq!(
            alerts,
            [
                (
                    "SLOTargetTooTight",
                    format!("slo:long_run_burn:ratio{sel} > 1.5\nand\n{enough}").as_str(),
                    "1d"
                ),
                (
                    "SLOTargetTooLoose",
                    format!("slo:long_run_burn:ratio{sel} < 0.3\nand\n{enough}").as_str(),
                    "1d"
                ),
            ]
        );
        assert!(
            calibration
                .rules
                .iter()
                .filter(|r| r.alert.is_some())
                .all(|r| r.labels["severity"] == "warning" && !r.labels.contains_key("long"))
        );

        // A window longer than the long run is the long run; a short one still waits 28 days.
        let year = valid("{objective: 99, window: 365d, indicator: {ratio: {errors: e_total, total: t_total}}}");
        assert!(
            record(&rule_groups(&year, &Settings::default()), LONG_RUN_BURN)
                .expr
                .contains("[365d]")
        );
        assert_eq!(calibration_min_data(&year), Duration::days(365));
        let week = valid("{objective: 99, window: 7d, indicator: {ratio: {errors: e_total, total: t_total}}}");
        assert_eq!(
            (long_run(&week), calibration_min_data(&week)),
            (Duration::days(90), Duration::days(28))
        );

        let custom = valid(
            "{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: t_total}},
              alerting: {calibration: {tooTight: {name: ObjectiveTooTight, above: 2}, tooLoose: {below: 0.1}}}}",
        );
        let groups = rule_groups(&custom, &Settings::default());
        let names: Vec<(&str, bool)> = groups[2]
            .rules
            .iter()
            .filter_map(|r| {
                Some((
                    r.alert.as_deref()?,
                    r.expr.contains("> 2\n") || r.expr.contains("< 0.1\n"),
                ))
            })
            .collect();
        assert_eq!(names, [("ObjectiveTooTight", true), ("SLOTargetTooLoose", true)]);

        let off = valid(
            "{objective: 99.9, window: 30d, indicator: {ratio: {errors: e_total, total: t_total}},
              alerting: {calibration: {enabled: false}}}",
        );
        // Without the tickets, the hourly group counts how much of the window the data covers.
        let groups = rule_groups(&off, &Settings::default());
        assert_eq!(groups.len(), 3);
        let hourly: Vec<&str> = groups[2]
            .rules
            .iter()
            .map(|r| r.record.as_deref().or(r.alert.as_deref()).unwrap())
            .collect();
        assert_eq!(hourly, [WINDOW_COVERED]);
    }
}
