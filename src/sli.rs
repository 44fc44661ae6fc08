//! The PromQL for an SLI: error and request rates over any window, built from what the user
//! wrote (a series selector, or an expression with `$window`).

use promql_parser::parser::{self, Expr};

use crate::duration::Duration;

/// Placeholder users write for the range of a rate.
pub const WINDOW_PLACEHOLDER: &str = "$window";

/// One user-supplied input: a plain selector is wrapped as `sum(rate(<sel>[w]))`, an
/// expression has `$window` replaced.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Selector(String),
    Template(String),
}

impl Source {
    /// Accepts a series selector or an expression using `$window`; the error says which fix applies.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must not be empty; write a series selector such as http_requests_total{job=\"api\"}".into());
        }
        if text.contains(WINDOW_PLACEHOLDER) {
            let expr = parse_template(text)?;
            if !matches!(
                expr.value_type(),
                parser::value::ValueType::Vector | parser::value::ValueType::Scalar
            ) {
                return Err(format!(
                    "must evaluate to an instant vector, not a {}",
                    expr.value_type()
                ));
            }
            return Ok(Self::Template(text.to_string()));
        }
        match parse_promql(text)? {
            Expr::VectorSelector(vs) => {
                check_plain_selector(&vs)?;
                Ok(Self::Selector(text.to_string()))
            }
            Expr::MatrixSelector(_) => Err(format!(
                "has a range; write the selector without [..] (slo-warden adds the windows) or use {WINDOW_PLACEHOLDER} as the range"
            )),
            _ => Err(format!(
                "is an expression without {WINDOW_PLACEHOLDER}; write a series selector such as \
                 http_requests_total{{job=\"api\"}}, or an expression using {WINDOW_PLACEHOLDER} such as \
                 sum(rate(http_requests_total{{job=\"api\"}}[{WINDOW_PLACEHOLDER}]))"
            )),
        }
    }

    /// Per-second rate over `window`, summed to one series.
    pub fn rate(&self, window: Duration) -> String {
        match self {
            Self::Selector(sel) => format!("sum(rate({sel}[{window}]))"),
            Self::Template(t) => format!("({})", t.replace(WINDOW_PLACEHOLDER, &window.to_string())),
        }
    }
}

fn check_plain_selector(vs: &parser::VectorSelector) -> Result<(), String> {
    if vs.offset.is_some() || vs.at.is_some() {
        return Err("must not use offset or @; slo-warden evaluates the SLI at the current time".into());
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(
            "uses `or` inside the braces, which Prometheus 2 does not understand; use a regex matcher instead".into(),
        );
    }
    Ok(())
}

/// The `namespace` matchers of an SLI input (a selector, or an expression using `$window`)
/// that can select series of a namespace other than `own`, as written (`namespace!="shop"`,
/// cut to 100 characters): any matcher but `namespace="<own>"` (or the same as a regex).
/// Input that does not parse has none; its parse error is reported where it is parsed.
pub fn foreign_namespace_matchers(text: &str, own: &str) -> Vec<String> {
    use promql_parser::label::MatchOp;
    use promql_parser::util::{ExprVisitor, walk_expr};

    struct Find<'a> {
        own: &'a str,
        found: Vec<String>,
    }
    impl ExprVisitor for Find<'_> {
        type Error = std::convert::Infallible;
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
            let vs = match expr {
                Expr::VectorSelector(vs) => vs,
                Expr::MatrixSelector(ms) => &ms.vs,
                _ => return Ok(true),
            };
            let all = vs
                .matchers
                .matchers
                .iter()
                .chain(vs.matchers.or_matchers.iter().flatten());
            for m in all.filter(|m| m.name == "namespace") {
                let own = matches!(m.op, MatchOp::Equal | MatchOp::Re(_)) && m.value == self.own;
                if !own {
                    self.found.push(m.to_string().chars().take(100).collect());
                }
            }
            Ok(true)
        }
    }
    let parsed = if text.contains(WINDOW_PLACEHOLDER) {
        parse_template(text)
    } else {
        parse_promql(text)
    };
    let mut find = Find { own, found: Vec::new() };
    if let Ok(expr) = parsed {
        let _ = walk_expr(&mut find, &expr);
    }
    find.found
}

/// Parses PromQL, returning the parser's own message and, where it can be found, the position
/// (1-based character) it refers to.
pub fn parse_promql(text: &str) -> Result<Expr, String> {
    parse_promql_as(text, text)
}

/// Stands in for `$window` while parsing: a valid range of the same length, so positions in
/// the probe are positions in what the user wrote.
const WINDOW_PROBE: &str = "000005m";

/// Parses an expression that may use `$window`.
pub fn parse_template(text: &str) -> Result<Expr, String> {
    parse_promql_as(&text.replace(WINDOW_PLACEHOLDER, WINDOW_PROBE), text)
}

fn parse_promql_as(probe: &str, text: &str) -> Result<Expr, String> {
    parser::parse(probe).map_err(|e| {
        let e = e.trim();
        match locate(probe, e) {
            Some(at) => format!("is not valid PromQL: {e} (at character {} of {text:?})", at + 1),
            None => format!("is not valid PromQL: {e} (in {text:?})"),
        }
    })
}

/// The parser reports what went wrong but not where; recover the position for the common
/// messages from the text itself.
fn locate(text: &str, message: &str) -> Option<usize> {
    let chars: Vec<char> = text.chars().collect();
    if message.contains("unclosed left parenthesis") {
        return unmatched(&chars, '(', ')');
    }
    if message.contains("unclosed left bracket") {
        return unmatched(&chars, '[', ']');
    }
    if message.contains("end of input") {
        return Some(chars.len());
    }
    // "...: '['", "... name 'rat'", "illegal regex for (", "...: 5q"
    let token = if let Some(inner) = message.strip_suffix('\'') {
        inner.rsplit_once('\'')?.1
    } else if let Some(re) = message.strip_prefix("illegal regex for ") {
        re
    } else {
        message.rsplit_once(':')?.1.trim()
    };
    if token.is_empty() {
        return None;
    }
    let byte = text.find(token)?;
    Some(text[..byte].chars().count())
}

/// Index of the first opening delimiter that is never closed, outside string literals.
fn unmatched(chars: &[char], open: char, close: char) -> Option<usize> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None if c == open => stack.push(i),
            None if c == close => {
                stack.pop();
            }
            None => {}
        }
    }
    stack.first().copied()
}

/// Bad events: counted directly, or as total minus good.
#[derive(Clone, Debug, PartialEq)]
pub enum Bad {
    Errors(Source),
    Good(Source),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Sli {
    /// Bad and total event counters (ratio and latency indicators).
    Events(Events),
    /// A user expression that is already an error ratio.
    Raw(String),
}

/// Bad and total events, each as a per-second rate over any window.
#[derive(Clone, Debug, PartialEq)]
pub struct Events {
    pub bad: Bad,
    pub total: Source,
}

impl Events {
    /// Bad events per second over `window` (absent error series count as zero errors).
    pub fn errors_rate(&self, window: Duration) -> String {
        match &self.bad {
            Bad::Errors(e) => format!("({} or vector(0))", e.rate(window)),
            Bad::Good(g) => format!("({} - ({} or vector(0)))", self.total.rate(window), g.rate(window)),
        }
    }

    pub fn total_rate(&self, window: Duration) -> String {
        self.total.rate(window)
    }
}

impl Sli {
    /// A latency SLI from a classic histogram: good requests are those in the `le` bucket of the
    /// threshold, total requests are `_count`.
    pub fn latency(histogram: &str, threshold: Duration) -> Result<Self, String> {
        let vs = match parse_promql(histogram.trim())? {
            Expr::VectorSelector(vs) => vs,
            _ => return Err("must be a series selector such as http_request_duration_seconds{job=\"api\"}".into()),
        };
        check_plain_selector(&vs)?;
        let name = vs.name.clone().ok_or("must start with the histogram's metric name")?;
        if let Some(base) = name.strip_suffix("_bucket").or_else(|| name.strip_suffix("_count")) {
            return Err(format!("must name the histogram without its suffix: use {base}"));
        }
        if vs.matchers.matchers.iter().any(|m| m.name == "le") {
            return Err("must not match on le; slo-warden selects the bucket from threshold".into());
        }
        let matchers: Vec<String> = vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name != "__name__")
            .map(|m| m.to_string())
            .collect();
        let bound = bucket_bound(&name, threshold);
        let with = |extra: Option<String>| {
            let all: Vec<String> = matchers.iter().cloned().chain(extra).collect();
            format!("{{{}}}", all.join(","))
        };
        Ok(Self::Events(Events {
            bad: Bad::Good(Source::Selector(format!(
                "{name}_bucket{}",
                with(Some(format!("le=~\"{}\"", le_regex(&bound))))
            ))),
            total: Source::Selector(format!("{name}_count{}", with(None))),
        }))
    }

    /// The error ratio over `window`.
    pub fn error_ratio(&self, window: Duration) -> String {
        match self {
            Self::Events(e) => format!("{}\n/\n{}", e.errors_rate(window), e.total_rate(window)),
            Self::Raw(t) => format!("({})", t.replace(WINDOW_PLACEHOLDER, &window.to_string())),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Events(_) => "events",
            Self::Raw(_) => "raw",
        }
    }
}

/// The bucket bound a threshold corresponds to, in the histogram's unit (seconds unless the
/// metric name says milliseconds).
fn bucket_bound(metric: &str, threshold: Duration) -> String {
    let millis = threshold.as_millis();
    if metric.ends_with("_milliseconds") || metric.ends_with("_ms") {
        return millis.to_string();
    }
    crate::decimal::Decimal::new(i128::from(millis), 3).to_string()
}

/// Client libraries spell bucket bounds differently (`1` in Go, `1.0` in Python and in
/// Prometheus 3's normalised labels, `0.30` rarely): match them all.
fn le_regex(bound: &str) -> String {
    let escaped = bound.replace('.', "\\\\.");
    if bound.contains('.') {
        format!("{escaped}0*")
    } else {
        format!("{escaped}(\\\\.0+)?")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_wrapped_and_templates_substituted() {
        let sel = Source::parse(r#"http_requests_total{job="a",code=~"5.."}"#).unwrap();
        assert_eq!(
            sel.rate(Duration::hours(1)),
            r#"sum(rate(http_requests_total{job="a",code=~"5.."}[1h]))"#
        );
        let t = Source::parse("sum(rate(x[$window])) + sum(rate(y[$window]))").unwrap();
        assert_eq!(t.rate(Duration::minutes(30)), "(sum(rate(x[30m])) + sum(rate(y[30m])))");
    }

    #[test]
    fn finds_namespace_matchers_that_reach_past_the_own_namespace() {
        let foreign = |text: &str| foreign_namespace_matchers(text, "shop");
        for own in [
            r#"http_requests_total{job="api"}"#,
            r#"http_requests_total{namespace="shop",job="api"}"#,
            r#"http_requests_total{namespace=~"shop"}"#,
            r#"sum(rate(e{namespace="shop"}[$window])) / sum(rate(t{namespace="shop"}[$window]))"#,
            "not ( valid",
        ] {
            assert_eq!(foreign(own), Vec::<String>::new(), "{own}");
        }
        assert_eq!(
            foreign(r#"http_requests_total{namespace="checkout"}"#),
            [r#"namespace="checkout""#]
        );
        assert_eq!(
            foreign(r#"sum(rate(e{namespace=~"shop|pay"}[$window])) / sum(rate(t{namespace!="shop"}[$window]))"#),
            [r#"namespace=~"shop|pay""#, r#"namespace!="shop""#]
        );
        assert_eq!(
            foreign(r#"sum(rate(e{namespace=~".+"}[$window])) or on() vector(0) * count(x{namespace!~"a"})"#),
            [r#"namespace=~".+""#, r#"namespace!~"a""#]
        );
        let long = format!(r#"x{{namespace="{}"}}"#, "n".repeat(500));
        assert_eq!(foreign(&long)[0].chars().count(), 100);
    }

    #[test]
    fn explains_what_to_fix() {
        let err = Source::parse("rate(x[5m])").unwrap_err();
        assert!(err.contains("without $window"), "{err}");
        let err = Source::parse("x[5m]").unwrap_err();
        assert!(err.contains("has a range"), "{err}");
        let err = Source::parse("sum(rate(x{job=\"a\"[$window]))").unwrap_err();
        assert!(
            err.starts_with("is not valid PromQL: unexpected character inside braces: '['"),
            "{err}"
        );
        assert!(err.contains("at character 19"), "{err}");
        let err = Source::parse("sum(rate(x[$window])").unwrap_err();
        assert!(err.contains("unclosed left parenthesis (at character 4 of"), "{err}");
        let err = Source::parse("rat(x[$window])").unwrap_err();
        assert!(
            err.contains("unknown function with name 'rat' (at character 1"),
            "{err}"
        );
        assert!(Source::parse("x offset 5m").unwrap_err().contains("offset"));
    }

    /// Bad events per second over 5m of a latency SLI.
    fn latency_errors(sli: &Sli) -> String {
        match sli {
            Sli::Events(e) => e.errors_rate(Duration::minutes(5)),
            Sli::Raw(_) => panic!("a latency SLI counts events"),
        }
    }

    #[test]
    fn latency_uses_bucket_and_count() {
        let sli = Sli::latency(r#"http_request_duration_seconds{job="a"}"#, Duration::from_millis(300)).unwrap();
        assert_eq!(
            latency_errors(&sli),
            r#"(sum(rate(http_request_duration_seconds_count{job="a"}[5m])) - (sum(rate(http_request_duration_seconds_bucket{job="a",le=~"0\\.30*"}[5m])) or vector(0)))"#
        );
        let whole = Sli::latency("rpc_latency_seconds", Duration::from_millis(1000)).unwrap();
        assert!(latency_errors(&whole).contains(r#"rpc_latency_seconds_bucket{le=~"1(\\.0+)?"}"#));
        let ms = Sli::latency("rpc_latency_milliseconds", Duration::from_millis(250)).unwrap();
        assert!(latency_errors(&ms).contains(r#"le=~"250(\\.0+)?""#));
        assert!(
            Sli::latency("x_bucket", Duration::from_millis(1))
                .unwrap_err()
                .contains("use x")
        );
        // Every generated expression is valid PromQL.
        parse_promql(&sli.error_ratio(Duration::hours(1))).unwrap();
    }
}
