//! Line charts of one series as SVG images, drawn on the server (pure): the budget burning down
//! over the window, the error ratio and the requests. An image the browser caches briefly and
//! that needs no script; its title says what it shows in words for screen readers.

use maud::{Markup, html};

/// How the y axis writes its numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    /// A share: 0.42 as `42 %`.
    Percent,
    /// Per second.
    PerSecond,
}

impl Unit {
    fn label(self, v: f64) -> String {
        match self {
            Unit::Percent => {
                let p = v * 100.0;
                if p.abs() >= 10.0 || p == 0.0 {
                    format!("{p:.0} %")
                } else {
                    format!("{p:.2} %")
                }
            }
            Unit::PerSecond if v.abs() >= 1000.0 => format!("{:.1}k/s", v / 1000.0),
            Unit::PerSecond if v.abs() >= 10.0 => format!("{v:.0}/s"),
            Unit::PerSecond => format!("{v:.2}/s"),
        }
    }

    /// One point's value, as its hover says it: finer than the axis.
    fn precise(self, v: f64) -> String {
        match self {
            Unit::Percent => {
                let p = v * 100.0;
                if p.abs() >= 10.0 || p == 0.0 {
                    format!("{p:.2} %")
                } else {
                    format!("{p:.3} %")
                }
            }
            Unit::PerSecond if v.abs() >= 10.0 => format!("{v:.1}/s"),
            Unit::PerSecond => format!("{v:.3}/s"),
        }
    }
}

/// The stylesheet an SVG document of a chart links (the hover column); an image shown as `<img>`
/// loads none and loses only that.
pub const STYLESHEET: &str = "/assets/chart.css";

pub struct Chart<'a> {
    /// What it shows, with the SLO (`Budget left of shop/checkout over 30d`).
    pub title: &'a str,
    pub points: &'a [(i64, f64)],
    /// Unix seconds.
    pub start: i64,
    pub end: i64,
    /// Points further apart than this are not joined (Prometheus had no data between).
    pub step: i64,
    pub unit: Unit,
    /// Values the axis always includes (0, and 1 for a budget).
    pub include: &'a [f64],
}

const W: f64 = 720.0;
const H: f64 = 200.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 24.0;

/// The chart as an SVG document. Each point has a column that names its time and value on hover
/// (an SVG `<title>`: the browser's tooltip, read by screen readers too).
pub fn svg(c: &Chart) -> String {
    let values = c.points.iter().map(|p| p.1).chain(c.include.iter().copied());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let span = (c.end - c.start).max(1) as f64;
    let x = |t: i64| LEFT + (t - c.start) as f64 / span * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);
    let mut path = String::new();
    let mut last: Option<i64> = None;
    for &(t, v) in c.points {
        let joined = last.is_some_and(|l| t - l <= 2 * c.step.max(1));
        path.push_str(&format!("{}{:.1},{:.1} ", if joined { "L" } else { "M" }, x(t), y(v)));
        last = Some(t);
    }
    let described = describe(c);
    let ticks: Vec<f64> = (0..=4).map(|i| lo + (hi - lo) * f64::from(i) / 4.0).collect();
    let markup: Markup = html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(W) height=(H) viewBox=(format!("0 0 {W} {H}")) role="img" {
            title { (described) }
            rect x="0" y="0" width=(W) height=(H) fill="#ffffff" {}
            @for v in &ticks {
                line x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", y(*v))) y2=(format!("{:.1}", y(*v))) stroke="#d0d7de" stroke-width="1" {}
                text x=(LEFT - 6.0) y=(format!("{:.1}", y(*v) + 4.0)) text-anchor="end" font-size="11" font-family="sans-serif" fill="#4d5560" { (c.unit.label(*v)) }
            }
            @if lo < 0.0 && hi > 0.0 {
                line x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", y(0.0))) y2=(format!("{:.1}", y(0.0))) stroke="#86181d" stroke-width="1" stroke-dasharray="4 3" {}
            }
            text x=(LEFT) y=(H - 6.0) font-size="11" font-family="sans-serif" fill="#4d5560" { (stamp(c.start)) }
            text x=(W - RIGHT) y=(H - 6.0) text-anchor="end" font-size="11" font-family="sans-serif" fill="#4d5560" { (stamp(c.end)) " UTC" }
            @if c.points.is_empty() {
                text x=(W / 2.0) y=(H / 2.0) text-anchor="middle" font-size="14" font-family="sans-serif" fill="#4d5560" { "No data from Prometheus for this time" }
            } @else {
                path d=(path.trim_end()) fill="none" stroke="#0550ae" stroke-width="1.5" {}
                // A column per point, a step wide, centred on it (within the plot): the hover's target.
                @let half = (c.step.max(1) as f64 / span * (W - LEFT - RIGHT)).max(1.0) / 2.0;
                @for &(t, v) in c.points {
                    @let (from, to) = ((x(t) - half).max(LEFT), (x(t) + half).min(W - RIGHT));
                    rect.at x=(format!("{from:.1}")) y=(TOP) width=(format!("{:.1}", (to - from).max(0.0))) height=(H - TOP - BOTTOM) fill="#0550ae" fill-opacity="0" {
                        title { (stamp(t)) " UTC: " (c.unit.precise(v)) }
                    }
                }
            }
        }
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<?xml-stylesheet type=\"text/css\" href=\"{STYLESHEET}\"?>\n{}",
        markup.into_string()
    )
}

/// An image that says why there is no chart.
pub fn failed(title: &str, why: &str) -> String {
    let markup: Markup = html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(W) height="60" viewBox=(format!("0 0 {W} 60")) role="img" {
            title { (title) ": " (why) }
            rect x="0" y="0" width=(W) height="60" fill="#fff8c5" {}
            text x="12" y="34" font-size="13" font-family="sans-serif" fill="#5c4300" { (title) ": " (why) }
        }
    };
    markup.into_string()
}

/// In words: the title, the range, and the first, last, lowest and highest values.
pub fn describe(c: &Chart) -> String {
    let Some(first) = c.points.first() else {
        return format!("{}: no data from Prometheus", c.title);
    };
    let last = c.points.last().unwrap_or(first);
    let (lo, hi) = c.points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    format!(
        "{}: from {} to {} (lowest {}, highest {}), {} to {} UTC",
        c.title,
        c.unit.label(first.1),
        c.unit.label(last.1),
        c.unit.label(lo),
        c.unit.label(hi),
        stamp(c.start),
        stamp(c.end)
    )
}

fn stamp(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(points: &[(i64, f64)]) -> String {
        svg(&Chart {
            title: "Budget left of shop/checkout over 30d",
            points,
            start: 0,
            end: 600,
            step: 60,
            unit: Unit::Percent,
            include: &[0.0, 1.0],
        })
    }

    #[test]
    fn a_gap_breaks_the_line_and_the_title_says_it_in_words() {
        let svg = chart(&[(0, 1.0), (60, 0.9), (120, 0.8), (480, 0.5), (540, 0.4)]);
        let d = svg.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "two runs: {d}");
        assert_eq!(d.matches('L').count(), 3, "{d}");
        assert!(svg.contains(
            "<title>Budget left of shop/checkout over 30d: from 100 % to 40 % (lowest 40 %, highest 100 %), 1970-01-01 00:00 to 1970-01-01 00:10 UTC</title>"
        ));
    }

    #[test]
    fn no_points_say_so_and_negative_budgets_draw_the_zero_line() {
        assert!(chart(&[]).contains("No data from Prometheus for this time"));
        let spent = chart(&[(0, 0.2), (60, -0.3)]);
        assert!(
            spent.contains("stroke-dasharray"),
            "a zero line once the budget is overspent"
        );
        assert!(spent.contains(">-30 %<"));
    }

    #[test]
    fn each_point_names_its_time_and_value_on_hover() {
        let svg = chart(&[(0, 1.0), (60, 0.99876), (120, 0.05)]);
        assert!(svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<?xml-stylesheet type=\"text/css\" href=\"/assets/chart.css\"?>\n<svg"));
        let titles: Vec<&str> = svg
            .split("<rect class=\"at\"")
            .skip(1)
            .map(|r| r.split("<title>").nth(1).unwrap().split("</title>").next().unwrap())
            .collect();
        assert_eq!(
            titles,
            [
                "1970-01-01 00:00 UTC: 100.00 %",
                "1970-01-01 00:01 UTC: 99.88 %",
                "1970-01-01 00:02 UTC: 5.000 %"
            ]
        );
        // A step of 60 s over 600 s: a tenth of the plot's width, centred on its point, the
        // first one's left half cut at the axis.
        let columns: Vec<&str> = svg.split("<rect class=\"at\" x=\"").skip(1).collect();
        assert!(
            columns[0].starts_with("64.0\" y=\"12\" width=\"32.2\""),
            "{}",
            columns[0]
        );
        assert!(
            columns[1].starts_with("96.2\" y=\"12\" width=\"64.4\""),
            "{}",
            columns[1]
        );
        assert!(!chart(&[]).contains("class=\"at\""), "no columns without points");
    }

    #[test]
    fn what_tenants_write_is_escaped_in_a_failure_too() {
        let s = failed("Requests of shop/<b>", "HTTP 502");
        assert!(s.contains("&lt;b&gt;") && !s.contains("<b>"));
    }

    #[test]
    fn units() {
        assert_eq!(Unit::Percent.label(0.001), "0.10 %");
        assert_eq!(Unit::Percent.label(0.5), "50 %");
        assert_eq!(Unit::PerSecond.label(12345.0), "12.3k/s");
        assert_eq!(Unit::PerSecond.label(2.5), "2.50/s");
        assert_eq!(Unit::PerSecond.precise(2.5), "2.500/s");
        assert_eq!(Unit::PerSecond.precise(123.45), "123.5/s");
        assert_eq!(Unit::Percent.precise(0.00012), "0.012 %");
    }
}
