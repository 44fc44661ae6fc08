//! The `slo-warden run` command line: every flag, its environment variable, and the parsers
//! that bound its values at startup.

use std::net::SocketAddr;

use crate::controller::leader;

/// A namespace name as Kubernetes allows it (an RFC 1123 label), checked at startup: it goes
/// into API paths and into the PromQL matchers that limit the budget queries to it. An empty
/// value (`WATCH_NAMESPACES=""`, a trailing comma) adds no namespace.
fn namespace_name(s: &str) -> Result<String, String> {
    let ok = s.is_empty()
        || (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a namespace name: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

/// The namespaces to watch from the flag's values: empty values dropped, each namespace once,
/// sorted.
pub fn watched(mut namespaces: Vec<String>) -> Vec<String> {
    namespaces.retain(|n| !n.is_empty());
    namespaces.sort_unstable();
    namespaces.dedup();
    namespaces
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Namespaces to watch (repeatable or comma-separated); all namespaces when none is given.
    #[arg(long = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',', value_parser = namespace_name)]
    pub namespaces: Vec<String>,
    /// How often every SLO's budget is read.
    #[arg(long, env = "POLL_INTERVAL", default_value = "30s", value_parser = crate::duration::Duration::parse)]
    pub poll_interval: crate::duration::Duration,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Label added to every generated PrometheusRule (repeatable), e.g. release=kube-prometheus-stack.
    #[arg(long = "rule-label", env = "RULE_LABELS", value_delimiter = ',', value_parser = parse_label)]
    pub rule_labels: Vec<(String, String)>,
    /// Scrape interval of the SLIs' source series, at most 5m (an SLO's spec.scrapeInterval
    /// overrides it): each tile reads one interval more than its length.
    #[arg(long, env = "SCRAPE_INTERVAL", default_value = "30s", value_parser = parse_scrape_interval)]
    pub scrape_interval: crate::duration::Duration,
    /// How often the burn-rate alerts (and the short-window tiles they read) are evaluated:
    /// the `sli` rule group's interval, and the length of its tiles.
    #[arg(long, env = "ALERT_INTERVAL", default_value = "1m", value_parser = parse_alert_interval)]
    pub alert_interval: crate::duration::Duration,
    /// Let SLIs read series of other namespaces (a `namespace` matcher other than the SLO's
    /// own). Off: such an SLO is refused (at apply by the webhook, and in its status), as a
    /// tenant could otherwise measure, or make its alerts read, another team's traffic.
    #[arg(long, env = "ALLOW_CROSS_NAMESPACE_SLI")]
    pub allow_cross_namespace_sli: bool,
    /// The share of an SLO's window error budget a single release must burn before a Warning
    /// Event on the SLO names it (`ReleaseBurnedBudget`): 0.1 is a tenth.
    #[arg(long, env = "RELEASE_EVENT_SHARE", default_value_t = crate::release::EVENT_SHARE, value_parser = parse_share)]
    pub release_event_share: f64,
    #[command(flatten)]
    pub prometheus: crate::budget::PrometheusArgs,
    #[command(flatten)]
    pub leader: leader::LeaderArgs,
    #[command(flatten)]
    pub webhook: crate::admission::WebhookArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    Json,
}

/// A `--scrape-interval`: positive and at most an SLO's `spec.scrapeInterval` (5m). Below a
/// second only for series stamped exactly on the evaluations, as in rule unit tests.
/// A share of a budget: above 0, at most 1.
pub fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a share of the budget: a number above 0 and at most 1 (0.1 is a tenth)"
        )),
    }
}

pub fn parse_scrape_interval(s: &str) -> Result<crate::duration::Duration, String> {
    use crate::api::bounds;
    bounds::duration(s, bounds::POSITIVE, bounds::MAX_SCRAPE_INTERVAL, "1m")
}

/// A `--alert-interval`, within the bounds of [`crate::rules::check_alert_interval`].
pub fn parse_alert_interval(s: &str) -> Result<crate::duration::Duration, String> {
    crate::rules::check_alert_interval(crate::duration::Duration::parse(s)?)
}

/// `key=value` of a `--rule-label`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: Args,
    }

    fn namespaces(args: &[&str]) -> Result<Vec<String>, String> {
        Cli::try_parse_from(std::iter::once("slo-warden").chain(args.iter().copied()))
            .map(|c| c.run.namespaces)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn watched_namespaces_are_namespace_names() {
        assert_eq!(namespaces(&[]).unwrap(), Vec::<String>::new());
        assert_eq!(
            namespaces(&["--namespace", "shop,web-2", "--namespace=a"]).unwrap(),
            ["shop", "web-2", "a"]
        );
        // They become PromQL matchers and API paths: anything else is refused at startup.
        // Empty values add nothing (WATCH_NAMESPACES="" is all namespaces); a namespace given
        // twice is watched once, whatever order the flags gave.
        assert_eq!(watched(namespaces(&["--namespace="]).unwrap()), Vec::<String>::new());
        assert_eq!(
            watched(namespaces(&["--namespace=web,,shop", "--namespace=web,"]).unwrap()),
            ["shop", "web"]
        );
        for bad in [
            r#"shop"} or vector(1) #"#,
            "Shop",
            "-web",
            "web-",
            "a.b",
            &"x".repeat(64),
        ] {
            let e = namespaces(&[&format!("--namespace={bad}")]).unwrap_err();
            assert!(e.contains("is not a namespace name"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_release_event_share_is_a_share_of_the_budget() {
        let share = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("slo-warden").chain(args.iter().copied()))
                .map(|c| c.run.release_event_share)
                .map_err(|e| e.to_string())
        };
        assert_eq!(share(&[]).unwrap(), 0.1);
        assert_eq!(share(&["--release-event-share=0.25"]).unwrap(), 0.25);
        assert_eq!(share(&["--release-event-share=1"]).unwrap(), 1.0);
        for bad in ["0", "-0.1", "1.5", "NaN", "ten"] {
            let e = share(&[&format!("--release-event-share={bad}")]).unwrap_err();
            assert!(e.contains("is not a share of the budget"), "{bad}: {e}");
        }
    }
}
