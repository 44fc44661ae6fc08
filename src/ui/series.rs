//! The time series the SLO page draws, read from Prometheus (or Thanos, or Mimir) through a
//! fixed set of queries on the SLO's own recorded series: the browser names a chart and a time
//! range from a short list, never PromQL. At most [`AT_ONCE`] queries run at a time (a chart
//! asked for beyond that says it is busy), and a chart drawn is kept for [`KEPT_FOR`], so a
//! room of people reloading one page costs Prometheus one query per chart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use crate::budget::Poller;
use crate::duration::Duration;
use crate::rules;

use super::chart::{self, Chart, Unit};

/// Queries to Prometheus running at once, across every viewer.
pub const AT_ONCE: usize = 8;
/// How long a drawn chart is served again without a query.
pub const KEPT_FOR: StdDuration = StdDuration::from_secs(30);
/// Charts kept at most.
const KEPT_AT_MOST: usize = 1024;
/// Points a chart asks for (about one per two pixels).
const POINTS: i64 = 360;
/// The longest budget chart: the longest window the operator takes.
const LONGEST: Duration = Duration::days(90);

/// A chart of the SLO page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Which {
    /// The budget left over the SLO's window, as recorded.
    Budget,
    /// The error ratio of each 5-minute tile.
    Errors,
    /// Requests per second, per 5-minute tile.
    Requests,
}

impl Which {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "budget.svg" => Some(Which::Budget),
            "errors.svg" => Some(Which::Errors),
            "requests.svg" => Some(Which::Requests),
            _ => None,
        }
    }
}

/// The time ranges the error and request charts offer.
pub const RANGES: [(&str, Duration); 4] = [
    ("6h", Duration::hours(6)),
    ("1d", Duration::days(1)),
    ("7d", Duration::days(7)),
    ("30d", Duration::days(30)),
];

pub fn range(s: Option<&str>) -> Result<(&'static str, Duration), String> {
    match s {
        None | Some("") => Ok(RANGES[1]),
        Some(s) => RANGES
            .iter()
            .find(|(k, _)| *k == s)
            .copied()
            .ok_or_else(|| format!("range: one of {}", RANGES.map(|(k, _)| k).join(", "))),
    }
}

/// The selector of an SLO's own recorded series, as its rules label them (and the cluster's
/// external label, when one Prometheus serves several clusters).
pub fn own_series(namespace: &str, name: &str, cluster_label: Option<(&str, &str)>) -> String {
    let mut labels = std::collections::BTreeMap::from([
        ("slo".to_string(), name.to_string()),
        ("namespace".to_string(), namespace.to_string()),
        (rules::MARKER_LABEL.to_string(), rules::marker(Some(namespace), name)),
    ]);
    if let Some((label, value)) = cluster_label {
        labels.insert(label.to_string(), value.to_string());
    }
    rules::selector(&labels)
}

/// The query of a chart, from the fixed templates.
pub fn promql(which: Which, selector: &str) -> String {
    match which {
        Which::Budget => format!("{}{selector}", rules::BUDGET_REMAINING),
        Which::Errors => format!("{}{selector} / {}{selector}", rules::ERRORS_TILE, rules::TOTAL_TILE),
        Which::Requests => format!("{}{selector}", rules::TOTAL_TILE),
    }
}

/// The range and step of a chart ending at `end`: the window for the budget, else `range`;
/// steps of whole minutes, about [`POINTS`] of them.
pub fn span(which: Which, window: Duration, range: Duration, end: i64) -> (i64, i64, i64) {
    let length = match which {
        Which::Budget => window.min(LONGEST),
        _ => range,
    };
    let seconds = length.as_millis() / 1000;
    let step = (seconds / POINTS as u64).max(60).div_ceil(60) * 60;
    let (seconds, step) = (
        i64::try_from(seconds).unwrap_or(i64::MAX),
        i64::try_from(step).unwrap_or(i64::MAX),
    );
    (end.saturating_sub(seconds), end, step)
}

/// Where a cluster's series are read.
pub struct Source {
    pub prometheus: Poller,
    /// The external label naming the cluster on its series, when one Prometheus (Thanos, Mimir)
    /// holds several clusters': its charts read `{LABEL="<cluster name>"}`. None for a cluster's
    /// own Prometheus, whose queries see no external labels.
    pub cluster_label: Option<String>,
}

/// The Prometheus of each cluster, the queries running and the charts drawn.
pub struct Series {
    /// By cluster name; a cluster without one has no charts.
    pub sources: HashMap<String, Source>,
    running: tokio::sync::Semaphore,
    kept: Mutex<HashMap<String, (Instant, Arc<str>)>>,
}

impl Series {
    pub fn new(sources: HashMap<String, Source>) -> Self {
        Self {
            sources,
            running: tokio::sync::Semaphore::new(AT_ONCE),
            kept: Mutex::default(),
        }
    }

    /// The chart as an SVG image (one that says why, when it cannot be drawn).
    pub async fn chart(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        window: Duration,
        which: Which,
        range: (&str, Duration),
    ) -> Arc<str> {
        let title = match which {
            Which::Budget => format!("Budget left of {namespace}/{name} over {}", window.min(LONGEST)),
            Which::Errors => format!("Error ratio of {namespace}/{name}, 5-minute tiles, last {}", range.0),
            Which::Requests => format!(
                "Requests per second of {namespace}/{name}, 5-minute tiles, last {}",
                range.0
            ),
        };
        let Some(source) = self.sources.get(cluster) else {
            return chart::failed(
                &title,
                "no Prometheus is configured for this cluster (--prometheus-url)",
            )
            .into();
        };
        // The budget's chart spans the window whatever the range asked for.
        let key = match which {
            Which::Budget => format!("{cluster}/{namespace}/{name}/{which:?}"),
            _ => format!("{cluster}/{namespace}/{name}/{which:?}/{}", range.0),
        };
        if let Some(svg) = self.kept(&key) {
            return svg;
        }
        let Ok(_running) = self.running.try_acquire() else {
            return chart::failed(&title, "busy: other charts are being read; reload in a moment").into();
        };
        let selector = own_series(
            namespace,
            name,
            source.cluster_label.as_deref().map(|label| (label, cluster)),
        );
        let end = jiff::Timestamp::now().as_second();
        let (start, end, step) = span(which, window, range.1, end);
        let svg: Arc<str> = match source
            .prometheus
            .range(&promql(which, &selector), start, end, step)
            .await
        {
            Ok(points) => chart::svg(&Chart {
                title: &title,
                points: &points,
                start,
                end,
                step,
                unit: match which {
                    Which::Requests => Unit::PerSecond,
                    _ => Unit::Percent,
                },
                include: match which {
                    Which::Budget => &[0.0, 1.0],
                    _ => &[0.0],
                },
            })
            .into(),
            Err(e) => chart::failed(&title, &format!("Prometheus: {e}")).into(),
        };
        self.keep(key, svg.clone());
        svg
    }

    fn kept(&self, key: &str) -> Option<Arc<str>> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(key)
            .filter(|(at, _)| at.elapsed() < KEPT_FOR)
            .map(|(_, svg)| svg.clone())
    }

    fn keep(&self, key: String, svg: Arc<str>) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= KEPT_AT_MOST {
            kept.retain(|_, (at, _)| at.elapsed() < KEPT_FOR);
            if kept.len() >= KEPT_AT_MOST {
                kept.clear();
            }
        }
        kept.insert(key, (Instant::now(), svg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_read_the_slos_own_series_only() {
        let sel = own_series("shop", "checkout", None);
        assert_eq!(
            sel,
            r#"{namespace="shop",slo="checkout",slo_warden_slo="shop/checkout"}"#
                .replace("slo_warden_slo", rules::MARKER_LABEL)
        );
        assert_eq!(
            promql(Which::Budget, &sel),
            format!("slo:error_budget_remaining:ratio{sel}")
        );
        assert_eq!(
            promql(Which::Errors, &sel),
            format!("slo:sli_errors:tile_rate5m{sel} / slo:sli_total:tile_rate5m{sel}")
        );
        let thanos = own_series("shop", "checkout", Some(("cluster", "prod-eu")));
        assert!(thanos.contains(r#"cluster="prod-eu""#));
        assert!(own_series("a\"b", "c", None).contains(r#"namespace="a\"b""#), "escaped");
    }

    #[test]
    fn spans_end_now_in_whole_minutes() {
        let (start, end, step) = span(Which::Budget, Duration::days(30), Duration::days(1), 1_000_000_000);
        assert_eq!((end - start, step), (30 * 86_400, 7200));
        let (start, _, step) = span(Which::Errors, Duration::days(30), Duration::hours(6), 1_000_000_000);
        assert_eq!((1_000_000_000 - start, step), (6 * 3600, 60));
        let (start, _, _) = span(Which::Budget, Duration::days(365), Duration::days(1), 1_000_000_000);
        assert_eq!(1_000_000_000 - start, 90 * 86_400, "at most 90 days");
    }

    #[test]
    fn ranges_are_a_short_list() {
        assert_eq!(range(None).unwrap().0, "1d");
        assert_eq!(range(Some("7d")).unwrap().0, "7d");
        assert_eq!(range(Some("1y")).unwrap_err(), "range: one of 6h, 1d, 7d, 30d");
        assert_eq!(Which::parse("budget.svg"), Some(Which::Budget));
        assert_eq!(Which::parse("x.svg"), None);
    }

    #[tokio::test]
    async fn without_a_prometheus_the_chart_says_so() {
        let series = Series::new(HashMap::new());
        let svg = series
            .chart("prod", "shop", "checkout", Duration::days(30), Which::Budget, RANGES[1])
            .await;
        assert!(svg.contains("no Prometheus is configured for this cluster"));
    }
}
