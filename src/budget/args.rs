//! Where and how to reach Prometheus (or Thanos Querier, or Mimir's Prometheus API).

use std::path::PathBuf;

use crate::duration::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct PrometheusArgs {
    /// Prometheus HTTP API to read burn rates and budgets from, with its path prefix if any
    /// (e.g. `http://prometheus-operated.monitoring:9090`, `https://mimir.example.com/prometheus`).
    /// Budgets are not read when unset.
    #[arg(long, env = "PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// File holding a bearer token sent as `Authorization: Bearer ...`; read again every poll
    /// cycle, so rotated service-account tokens are picked up.
    #[arg(long, env = "PROMETHEUS_BEARER_TOKEN_FILE")]
    pub prometheus_bearer_token_file: Option<PathBuf>,
    /// PEM file with CA certificates to trust in addition to the system roots.
    #[arg(long, env = "PROMETHEUS_CA_FILE")]
    pub prometheus_ca_file: Option<PathBuf>,
    /// Header sent with every query (repeatable or comma-separated), e.g. X-Scope-OrgID=team-a.
    #[arg(long = "prometheus-header", env = "PROMETHEUS_HEADERS", value_delimiter = ',', value_parser = parse_header)]
    pub prometheus_headers: Vec<(String, String)>,
    /// Label a querier adds to every series it answers with (repeatable or comma-separated),
    /// e.g. the external labels of Prometheus or Thanos (`cluster`, `prometheus`). Only series
    /// carrying exactly the labels slo-warden's rules set are read; these may come on top.
    #[arg(
        long = "prometheus-external-label",
        env = "PROMETHEUS_EXTERNAL_LABELS",
        value_delimiter = ','
    )]
    pub prometheus_external_labels: Vec<String>,
    /// Time allowed for one query, including the connection.
    #[arg(long, env = "PROMETHEUS_TIMEOUT", default_value = "10s", value_parser = Duration::parse)]
    pub prometheus_timeout: Duration,
}

/// `NAME=VALUE`; the name and value themselves are checked when the HTTP client is built.
fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE (e.g. X-Scope-OrgID=team-a)")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        prometheus: PrometheusArgs,
    }

    fn parse(args: &[&str]) -> Result<PrometheusArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("slo-warden").chain(args.iter().copied())).map(|c| c.prometheus)
    }

    #[test]
    fn defaults_and_flags() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.prometheus_url, None);
        assert_eq!(args.prometheus_timeout, Duration::parse("10s").unwrap());
        assert!(args.prometheus_headers.is_empty());

        let args = parse(&[
            "--prometheus-url=https://mimir.example.com/prometheus",
            "--prometheus-bearer-token-file=/var/run/secrets/token",
            "--prometheus-ca-file=/etc/ca.pem",
            "--prometheus-header=X-Scope-OrgID=team-a",
            "--prometheus-header",
            "X-Extra=a=b,X-Other=c",
            "--prometheus-timeout=2s",
        ])
        .unwrap();
        assert_eq!(
            args.prometheus_url.as_deref(),
            Some("https://mimir.example.com/prometheus")
        );
        assert_eq!(
            args.prometheus_bearer_token_file,
            Some(PathBuf::from("/var/run/secrets/token"))
        );
        assert_eq!(args.prometheus_ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            args.prometheus_headers,
            [
                ("X-Scope-OrgID".to_string(), "team-a".to_string()),
                ("X-Extra".to_string(), "a=b".to_string()),
                ("X-Other".to_string(), "c".to_string()),
            ]
        );
        assert_eq!(args.prometheus_timeout.as_millis(), 2_000);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            ["--prometheus-header", "X-Scope-OrgID"],
            ["--prometheus-header", "=team-a"],
            ["--prometheus-timeout", "10"],
            ["--prometheus-timeout", "0s"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
