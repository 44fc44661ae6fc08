//! The PromQL for an SLI: error and request rates over any window, built from what the user
//! wrote (a series selector, or an expression with `$window`).

use promql_parser::label::{METRIC_NAME, MatchOp, Matcher};
use promql_parser::parser::{self, Expr, VectorSelector};

use crate::duration::Duration;

/// Placeholder users write for the range of a rate.
pub const WINDOW_PLACEHOLDER: &str = "$window";

/// The longest PromQL a field may hold, in characters (what the CRD's `maxLength` counts).
/// Parsing is the first thing done with a field, so this bounds its CPU before anything else.
pub const MAX_PROMQL_CHARS: usize = 4096;
/// The most series selectors in one field. Every selector is read again for each window the
/// rules record, so this bounds the raw reads an SLO adds to Prometheus (see `rule_cost`).
pub const MAX_SELECTORS: usize = 8;
/// The most terms (functions, operators, selectors, numbers, parentheses) in one field: a few
/// selectors with their sums, rates and a division fit in 30.
pub const MAX_TERMS: usize = 64;

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
        check_size(text)?;
        let text = text.trim();
        if text.is_empty() {
            return Err("must not be empty; write a series selector such as http_requests_total{job=\"api\"}".into());
        }
        if text.contains(WINDOW_PLACEHOLDER) {
            let expr = parse_sli_template(text)?;
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

fn check_plain_selector(vs: &VectorSelector) -> Result<(), String> {
    check_metric(vs)?;
    if vs.offset.is_some() || vs.at.is_some() {
        return Err("must not use offset or @; slo-warden evaluates the SLI at the current time".into());
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
/// the probe are positions in what the user wrote, and one nobody writes, so a range of this
/// length in the parsed expression is a `$window` (were it written out, it reads under a minute).
const WINDOW_PROBE: &str = "54321ms";
/// [`WINDOW_PROBE`] as the parser prints it.
const WINDOW_PROBE_SHOWN: &str = "54s321ms";
const WINDOW_PROBE_MILLIS: u128 = 54_321;

/// Parses an expression that may use `$window`.
pub fn parse_template(text: &str) -> Result<Expr, String> {
    parse_promql_as(&text.replace(WINDOW_PLACEHOLDER, WINDOW_PROBE), text)
}

/// Parses an SLI expression using `$window` and checks that its cost is bounded: at most
/// [`MAX_PROMQL_CHARS`], [`MAX_TERMS`] and [`MAX_SELECTORS`], every selector naming its metric,
/// and no range but `$window` (no explicit range, no subquery), so each window the rules
/// record reads exactly that window once per selector.
pub fn parse_sli_template(text: &str) -> Result<Expr, String> {
    check_size(text)?;
    let expr = parse_template(text)?;
    check_template(&expr)?;
    Ok(expr)
}

/// What is checked before parsing: the length, and a rough count of tokens, since the
/// parser's time grows with the tokens (4096 characters of `a+a+...` took half a second).
fn check_size(text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if chars > MAX_PROMQL_CHARS {
        return Err(format!(
            "must be at most {MAX_PROMQL_CHARS} characters (got {chars}); it starts {}",
            quote(text)
        ));
    }
    let tokens = rough_tokens(text);
    if tokens > MAX_TOKENS {
        return Err(format!(
            "is too complex: {tokens} tokens (names, numbers, operators, brackets) where at most {MAX_TOKENS} \
             are allowed; record the parts you need with your own recording rules and select those"
        ));
    }
    Ok(())
}

/// The most tokens [`rough_tokens`] may count: [`MAX_TERMS`] terms with their label matchers
/// take about 300.
const MAX_TOKENS: usize = 8 * MAX_TERMS;

/// Tokens outside string literals: a run of name characters is one, and so is each other
/// character but whitespace (operators, brackets, commas, a whole quoted string).
fn rough_tokens(text: &str) -> usize {
    let (mut tokens, mut literals, mut in_name) = (0, Literals::default(), false);
    for c in text.chars() {
        if literals.inside(c) {
            continue;
        }
        let name = c.is_alphanumeric() || matches!(c, '_' | ':' | '.' | '$');
        if (name && !in_name) || (!name && !c.is_whitespace()) {
            tokens += 1;
        }
        in_name = name;
    }
    tokens
}

/// Where PromQL text stands with respect to its string literals, fed one character at a time.
#[derive(Default)]
struct Literals {
    quote: Option<char>,
    escaped: bool,
}

impl Literals {
    /// Whether `c` belongs to a string literal after its opening quote (its body or its closing
    /// quote). An opening quote is not inside: it is the code that starts the literal.
    fn inside(&mut self, c: char) -> bool {
        match self.quote {
            Some(q) => {
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' {
                    self.escaped = true;
                } else if c == q {
                    self.quote = None;
                }
                true
            }
            None => {
                if matches!(c, '"' | '\'' | '`') {
                    self.quote = Some(c);
                }
                false
            }
        }
    }
}

/// `text` in quotes, cut to about 100 characters: messages name a value, they do not echo it.
pub fn quote(text: &str) -> String {
    const MAX: usize = 100;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// A parsed expression as the user wrote it: `$window` where the probe stands.
fn shown(expr: &impl std::fmt::Display) -> String {
    quote(&expr.to_string().replace(WINDOW_PROBE_SHOWN, WINDOW_PLACEHOLDER))
}

/// The bounds of [`parse_sli_template`] on a parsed template. Walks the tree with its own stack
/// (no recursion) and stops at the first term over the limit.
fn check_template(expr: &Expr) -> Result<(), String> {
    let mut stack = vec![expr];
    let (mut terms, mut selectors) = (0, 0);
    while let Some(e) = stack.pop() {
        terms += 1;
        if terms > MAX_TERMS {
            return Err(format!(
                "is too complex: more than {MAX_TERMS} terms (functions, operators, selectors, numbers); \
                 record the parts you need with your own recording rules and select those"
            ));
        }
        match e {
            Expr::VectorSelector(vs) => {
                selectors += 1;
                check_metric(vs)?;
            }
            Expr::MatrixSelector(ms) => {
                selectors += 1;
                check_metric(&ms.vs)?;
                if ms.range.as_millis() != WINDOW_PROBE_MILLIS {
                    let range = promql_parser::util::display_duration(&ms.range);
                    let name = ms.vs.name.as_deref().unwrap_or("x");
                    return Err(format!(
                        "sets its own range [{range}] in {}; only {WINDOW_PLACEHOLDER} may set a range, \
                         so that each window reads exactly itself: write {name}[{WINDOW_PLACEHOLDER}]",
                        shown(ms)
                    ));
                }
            }
            Expr::Subquery(sq) => {
                let range =
                    promql_parser::util::display_duration(&sq.range).replace(WINDOW_PROBE_SHOWN, WINDOW_PLACEHOLDER);
                let step = sq
                    .step
                    .as_ref()
                    .map(promql_parser::util::display_duration)
                    .unwrap_or_default();
                return Err(format!(
                    "has the subquery [{range}:{step}] in {}; subqueries are not allowed, since one \
                     evaluates its inner query at every step of its range: use a range of {WINDOW_PLACEHOLDER} \
                     on the series instead, e.g. sum(rate(x[{WINDOW_PLACEHOLDER}]))",
                    shown(sq)
                ));
            }
            Expr::Aggregate(a) => {
                stack.push(&a.expr);
                stack.extend(a.param.as_deref());
            }
            Expr::Unary(u) => stack.push(&u.expr),
            Expr::Binary(b) => stack.extend([&*b.lhs, &*b.rhs]),
            Expr::Paren(p) => stack.push(&p.expr),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| &**a)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    if selectors > MAX_SELECTORS {
        return Err(format!(
            "has {selectors} series selectors; at most {MAX_SELECTORS} are allowed, since each is read again \
             for every window the rules record"
        ));
    }
    Ok(())
}

/// A selector must name one metric: `{__name__=~".+"}`, `{__name__!="x"}` or `{job="api"}`
/// alone would read every metric they match, however many appear later.
fn check_metric(vs: &VectorSelector) -> Result<(), String> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(
            "uses `or` inside the braces, which Prometheus 2 does not understand; use a regex matcher instead".into(),
        );
    }
    let all = || vs.matchers.matchers.iter();
    let on_name = |m: &&Matcher| m.name == METRIC_NAME;
    if let Some(m) = all().filter(on_name).find(|m| !matches!(m.op, MatchOp::Equal)) {
        return Err(format!(
            "matches the metric name with {}; a selector must name its metric, e.g. \
             http_requests_total{{code=~\"5..\"}}, so it reads one metric whatever else appears",
            quote(&m.to_string())
        ));
    }
    if vs.name.is_none() && !all().any(|m| on_name(&m)) {
        return Err(format!(
            "has a selector without a metric name, {}; name the metric, e.g. http_requests_total{{job=\"api\"}}, \
             so it reads one metric whatever else appears",
            shown(vs)
        ));
    }
    Ok(())
}

fn parse_promql_as(probe: &str, text: &str) -> Result<Expr, String> {
    parser::parse(probe).map_err(|e| {
        let at = locate(probe, e.trim());
        // The parser's message may quote a token of any length.
        let e = match e.trim().char_indices().nth(120) {
            Some((cut, _)) => format!("{}...", &e.trim()[..cut]),
            None => e.trim().to_string(),
        };
        match at {
            Some(at) => format!("is not valid PromQL: {e} (at character {} of {})", at + 1, quote(text)),
            None => format!("is not valid PromQL: {e} (in {})", quote(text)),
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
    let mut literals = Literals::default();
    for (i, &c) in chars.iter().enumerate() {
        if literals.inside(c) {
            continue;
        }
        if c == open {
            stack.push(i);
        } else if c == close {
            stack.pop();
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
        check_size(histogram)?;
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

    #[test]
    fn a_selector_names_one_metric() {
        let err = Source::parse(r#"{__name__=~".+"}"#).unwrap_err();
        assert!(
            err.starts_with(r#"matches the metric name with "__name__=~\".+\""; a selector must name its metric"#),
            "{err}"
        );
        let err = Source::parse(r#"sum(rate({__name__!="up",job="a"}[$window]))"#).unwrap_err();
        assert!(err.contains(r#"with "__name__!=\"up\"""#), "{err}");
        let err = Source::parse(r#"sum(rate(x{a="b" or job="c"}[$window]))"#).unwrap_err();
        assert!(err.starts_with("uses `or` inside the braces"), "{err}");
        let err = Source::parse(r#"sum(rate({job="a"}[$window]))"#).unwrap_err();
        assert!(
            err.starts_with(r#"has a selector without a metric name, "{job=\"a\"}"; name the metric"#),
            "{err}"
        );
        let err = Sli::latency(r#"{__name__=~"h_.*"}"#, Duration::from_millis(300)).unwrap_err();
        assert!(err.starts_with("matches the metric name with"), "{err}");
        // An equality on __name__ names the metric.
        assert!(Source::parse(r#"{__name__="http_requests_total",job="a"}"#).is_ok());
        assert!(Source::parse(r#"sum(rate({__name__="x"}[$window]))"#).is_ok());
    }

    #[test]
    fn only_window_sets_a_range() {
        let err = Source::parse("sum(rate(e[5m])) / sum(rate(t[$window]))").unwrap_err();
        assert_eq!(
            err,
            r#"sets its own range [5m] in "e[5m]"; only $window may set a range, so that each window reads exactly itself: write e[$window]"#
        );
        let err = Source::parse("sum(max_over_time(rate(x[$window])[30d:1s]))").unwrap_err();
        assert!(
            err.starts_with(r#"has the subquery [30d:1s] in "rate(x[$window])[30d:1s]"; subqueries are not allowed"#),
            "{err}"
        );
        let err = Source::parse("sum(max_over_time(rate(x[1m])[$window:]))").unwrap_err();
        assert!(err.starts_with("has the subquery [$window:] in"), "{err}");
        let err = parse_sli_template("avg_over_time(up{job=\"a\"}[$window]) * 0 + sum(rate(e[1d]))").unwrap_err();
        assert!(err.starts_with("sets its own range [1d]"), "{err}");
    }

    #[test]
    fn size_is_bounded_before_and_after_parsing() {
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("sum(rate(e{i}[$window]))"))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        assert!(parse_sli_template(&many(MAX_SELECTORS)).is_ok());
        let err = parse_sli_template(&many(MAX_SELECTORS + 1)).unwrap_err();
        assert_eq!(
            err,
            "has 9 series selectors; at most 8 are allowed, since each is read again for every window the rules record"
        );
        let terms = format!("sum(rate(e[$window])){}", " + 1".repeat(MAX_TERMS));
        let err = parse_sli_template(&terms).unwrap_err();
        assert!(err.starts_with("is too complex: more than 64 terms"), "{err}");

        let long = format!("sum(rate(e{{job=\"{}\"}}[$window]))", "a".repeat(MAX_PROMQL_CHARS));
        for err in [
            parse_sli_template(&long).unwrap_err(),
            Source::parse(&long).unwrap_err(),
            Sli::latency(&long, Duration::from_millis(300)).unwrap_err(),
        ] {
            assert!(
                err.starts_with("must be at most 4096 characters (got 4125); it starts \"sum(rate(e{job="),
                "{err}"
            );
            assert!(err.len() < 250, "quotes about 100 characters: {err}");
        }
        // Characters are counted, as the CRD's maxLength counts them.
        let wide = format!("e{{job=\"{}\"}}", "é".repeat(MAX_PROMQL_CHARS - 9));
        assert_eq!(wide.chars().count(), MAX_PROMQL_CHARS);
        assert!(Source::parse(&wide).is_ok());
    }

    #[test]
    fn tokens_are_counted_before_parsing() {
        assert_eq!(rough_tokens(r#"sum(rate(x_total{job="a b\" c"}[$window]))"#), 15);
        assert_eq!(rough_tokens("a+-1.5e-3"), 6);
        let chain = |n: usize| format!("sum(rate(e[$window])){}", " + a".repeat(n));
        // What the term bound refuses after parsing, the token bound refuses before.
        let err = parse_sli_template(&chain(MAX_TOKENS / 2)).unwrap_err();
        assert!(err.starts_with("is too complex: 522 tokens"), "{err}");
        let err = Source::parse(&format!("{}a", "a+".repeat(1000))).unwrap_err();
        assert!(err.starts_with("is too complex: 2001 tokens"), "{err}");
        // The costliest expression validate accepts is well within it.
        for slo in crate::rule_cost::worst_case_slos().unwrap() {
            let text = serde_json::to_value(&slo.spec.indicator).unwrap().to_string();
            assert!(rough_tokens(&text) < MAX_TOKENS / 2, "{}", rough_tokens(&text));
        }
    }

    #[test]
    fn messages_quote_at_most_about_a_hundred_characters() {
        assert_eq!(quote("abc"), "\"abc\"");
        let q = quote(&"x".repeat(4000));
        assert_eq!(q, format!("{:?}...", "x".repeat(100)));
        let err = Source::parse(&format!("sum(rate(x[$window])) + {}(", "y".repeat(3000))).unwrap_err();
        assert!(err.len() < 400, "{err}");
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
