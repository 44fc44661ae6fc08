//! `slo-warden import` on the real example files of Sloth, Pyrra and OpenSLO
//! (`tests/fixtures/import/`, copied by hand from those projects' repositories; see its README).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_yaml::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/import");

struct Run {
    code: i32,
    slos: Vec<Value>,
    stderr: String,
}

impl Run {
    fn slo(&self, name: &str) -> &Value {
        self.slos
            .iter()
            .find(|s| s["metadata"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no SLO {name} in the output; stderr:\n{}", self.stderr))
    }

    fn says(&self, line: &str) {
        assert!(self.stderr.contains(line), "stderr lacks {line:?}:\n{}", self.stderr);
    }
}

fn import(tool: &str, files: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slo-warden"));
    cmd.arg("import").arg(tool);
    for f in files {
        cmd.arg(if *f == "-" {
            f.to_string()
        } else {
            format!("{FIXTURES}/{tool}/{f}")
        });
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let slos = serde_yaml::Deserializer::from_str(&stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    Run {
        code: out.status.code().unwrap(),
        slos,
        stderr: String::from_utf8(out.stderr).unwrap().replace(FIXTURES, "F"),
    }
}

/// What `slo-warden validate` says of the output: every imported SLO is valid.
fn valid(run: &Run) {
    let dir = std::env::temp_dir().join(format!("slo-warden-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.yaml", run.slos.len()));
    let yaml: String = run
        .slos
        .iter()
        .map(|s| format!("---\n{}", serde_yaml::to_string(s).unwrap()))
        .collect();
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slo-warden"))
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn sloth_specs_and_crds() {
    let run = import(
        "sloth",
        &[
            "getting-started.yml",
            "k8s-getting-started.yml",
            "home-wifi.yml",
            "raw-home-wifi.yml",
            "k8s-in-base-raw-multi.yaml",
            "plugin-getting-started.yml",
        ],
        None,
    );
    assert_eq!(
        run.code, 1,
        "per-tier labels and a plugin are not carried: {}",
        run.stderr
    );
    valid(&run);
    // Both formats give the same SLO; the CRD's namespace is kept.
    let names: Vec<(&str, Option<&str>)> = run
        .slos
        .iter()
        .map(|s| {
            (
                s["metadata"]["name"].as_str().unwrap(),
                s["metadata"]["namespace"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("myservice-requests-availability", None),
            ("myservice-requests-availability", Some("monitoring")),
            ("home-wifi-wifi-client-satisfaction", None),
            ("svc01-slo1", Some("test-ns")),
            ("svc01-slo02", Some("test-ns")),
        ]
    );
    assert_eq!(run.slos[0]["spec"], run.slos[1]["spec"]);
    let spec: Value = serde_yaml::from_str(
        r#"
service: myservice
description: Common SLO based on availability for HTTP request responses.
objective: 99.9
window: 30d
indicator:
  ratio:
    errors: sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[$window]))
    total: sum(rate(http_request_duration_seconds_count{job="myservice"}[$window]))
alerting:
  name: MyServiceHighErrorRate
  labels: {category: availability, owner: myteam, repo: myorg/myservice, tier: "2"}
  annotations: {summary: High error rate on 'myservice' requests responses}
  pageSeverity: pageteam
  ticketSeverity: slack
"#,
    )
    .unwrap();
    assert_eq!(run.slos[0]["spec"], spec);
    assert_eq!(
        run.slo("svc01-slo02")["spec"]["indicator"]["raw"]["errorRatio"].as_str(),
        Some(
            "sum(rate(http_request_duration_seconds_count{job=\"myservice\",code=~\"(5..|429)\"}[$window]))\n/\n\
             sum(rate(http_request_duration_seconds_count{job=\"myservice\"}[$window]))"
        )
    );
    run.says(
        "F/sloth/getting-started.yml: document 1 (myservice-requests-availability): not carried over: page alert label \
         routing_key=\"myteam\": slo-warden's page and ticket alerts carry the same labels (they differ in severity only)",
    );
    run.says("ticket alert label slack_channel=\"#alerts-myteam\"");
    run.says(
        "F/sloth/plugin-getting-started.yml: document 1 (myservice-requests-availability): not carried over: sli.plugin \
         \"getting_started_availability\": a plugin SLI is Go code Sloth runs",
    );
    run.says("(svc01-slo02): not carried over: alerting: page and ticket alerts disabled");
    run.says("note: window 30d: Sloth specs have none");
    // Sloth's wifi example counts gauge samples with a subquery per window: refused, since a
    // subquery's cost grows with its range over its step, which no bound of slo-warden's sets.
    run.says(
        "F/sloth/home-wifi.yml: document 1 (home-wifi-good-wifi-client-satisfaction): not carried over: not valid as a \
         slo-warden SLO: spec.indicator.ratio.total: has the subquery [$window:] in",
    );
    run.says("5 of 8 SLO(s) imported; see above for what was not carried over");

    // A spec that carries over whole exits 0, and --window sets the window.
    let whole = "version: prometheus/v1\nservice: api\nslos:\n- name: ok\n  objective: 99.5\n  sli:\n    events:\n      \
                 error_query: sum(rate(e[{{.window}}]))\n      total_query: sum(rate(t[{{.window}}]))\n  alerting:\n    \
                 name: ApiBurn\n    page_alert: {disable: true}\n";
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slo-warden"));
    let out = cmd
        .args(["import", "sloth", "--window", "28d", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(whole.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let slo: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(slo["spec"]["window"], "28d");
    // Page alerts disabled: the ticket tiers only.
    let tiers: Vec<&str> = slo["spec"]["alerting"]["burnRates"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t["severity"].as_str().unwrap())
        .collect();
    assert_eq!(tiers, ["ticket", "ticket"]);
}

#[test]
fn pyrra_objects() {
    let run = import(
        "pyrra",
        &[
            "ratio-apiserver-read-response-errors.yaml",
            "latency-apiserver-read-cluster-latency.yaml",
            "latency-native-pyrra-connect-latency.yaml",
            "ratio-grouping-prometheus-http.yaml",
            "bool-gauge-prometheus-probe-success.yaml",
        ],
        None,
    );
    assert_eq!(run.code, 1);
    valid(&run);
    let ratio = run.slo("apiserver-read-response-errors");
    assert_eq!(ratio["metadata"]["namespace"], "monitoring");
    assert_eq!(ratio["metadata"]["labels"]["prometheus"], "k8s");
    assert_eq!(ratio["spec"]["objective"].as_f64(), Some(99.0));
    assert_eq!(ratio["spec"]["window"], "2w");
    assert_eq!(
        ratio["spec"]["indicator"]["ratio"]["errors"],
        r#"apiserver_request_total{component="apiserver",verb=~"LIST|GET",code=~"5.."}"#
    );
    assert!(
        ratio["spec"].get("description").is_none(),
        "an empty description is left out"
    );
    let latency = &run.slo("apiserver-read-cluster-latency")["spec"]["indicator"]["latency"];
    assert_eq!(
        latency["histogram"],
        r#"apiserver_request_sli_duration_seconds{component="apiserver",scope=~"cluster|",verb=~"LIST|GET"}"#
    );
    assert_eq!(latency["threshold"], "5s");
    let native = &run.slo("pyrra-connect-latency")["spec"]["indicator"]["ratio"];
    assert!(
        native["good"]
            .as_str()
            .unwrap()
            .starts_with("histogram_fraction(0, 0.2, ")
    );
    run.says("(prometheus-api-query): not carried over: indicator grouping [handler]");
    run.says("(pyrra-connect-latency): not carried over: indicator grouping [service, method]");
    run.says(
        "F/pyrra/bool-gauge-prometheus-probe-success.yaml: document 1 (prometheus-blackbox-probe-success): not carried over: \
         indicator.bool_gauge",
    );
    run.says("4 of 5 SLO(s) imported");

    // Alerting settings that have a place carry over; those that have none are named.
    let object = "apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata:\n  name: api\n  namespace: shop\n  \
                  labels: {pyrra.dev/team: payments}\n  annotations: {pyrra.dev/runbook_url: https://r.example.com}\n\
                  spec:\n  target: '99.9'\n  window: 4w\n  indicator:\n    ratio:\n      errors: {metric: 'r_total{code=\"500\"}'}\n      \
                  total: {metric: r_total}\n  alerting:\n    name: ApiBurn\n    absent: false\n    \
                  severities: {fastBurn: page, mediumBurn: page, slowBurn: ticket, longTermBurn: low}\n";
    let run = import("pyrra", &["-"], Some(object));
    assert_eq!(run.code, 1);
    let alerting = &run.slo("api")["spec"]["alerting"];
    assert_eq!(alerting["name"], "ApiBurn");
    assert_eq!(alerting["labels"]["team"], "payments");
    assert_eq!(alerting["annotations"]["runbook_url"], "https://r.example.com");
    assert_eq!(
        (alerting["pageSeverity"].as_str(), alerting["ticketSeverity"].as_str()),
        (Some("page"), Some("ticket"))
    );
    assert_eq!(alerting["noTraffic"]["enabled"], false);
    run.says("not carried over: alerting.severities slowBurn=\"ticket\", longTermBurn=\"low\"");
}

#[test]
fn openslo_documents_with_their_slis() {
    let run = import(
        "openslo",
        &[
            "v1-slo-inline-ratio-prometheus.yaml",
            "v1-slo-occurrences-prometheus-no-timewindow.yaml",
            "v1-slo-indicatorref-with-sli.yaml",
            "v1-slo-threshold-occurrences-any.yaml",
            "v1-slo-ratio-timeslices-any.yaml",
        ],
        None,
    );
    assert_eq!(run.code, 1);
    valid(&run);
    let web = &run.slo("web-availability")["spec"];
    assert_eq!(web["objective"].as_f64(), Some(99.5));
    assert_eq!(web["window"], "7d");
    assert_eq!(
        web["indicator"]["ratio"]["good"],
        r#"http_requests{code=~"2xx|4xx",component="web",k8s_cluster="prod"}"#
    );
    assert_eq!(run.slo("foo-slo")["spec"]["window"], "30d");
    run.says("(web-availability): not carried over: budgetingMethod Timeslices");
    run.says("(web-availability): not carried over: timeWindow: a calendar window (1w from its startTime)");
    run.says("(my-slo-2): not carried over: thresholdMetric");
    run.says(
        "(main-page): not carried over: ratioMetric.total.metricSource type Any: slo-warden reads Prometheus only",
    );

    // An indicatorRef to an SLI in another input, its source typed by a DataSource; a Datadog SLI.
    let docs = r#"
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout}
spec:
  service: shop
  indicatorRef: checkout-ok
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{targetPercent: 99.95}]
---
apiVersion: openslo/v1
kind: SLI
metadata: {name: checkout-ok}
spec:
  ratioMetric:
    counter: true
    bad: {metricSource: {metricSourceRef: prom, spec: {query: 'sum(http_requests_total{job="checkout",code=~"5.."})'}}}
    total: {metricSource: {metricSourceRef: prom, spec: {query: 'http_requests_total{job="checkout"}'}}}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec: {type: Prometheus, connectionDetails: {url: http://prometheus:9090}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: search}
spec:
  service: search
  indicatorRef: search-availability
  timeWindow: [{duration: 1M, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
"#;
    let run = import(
        "openslo",
        &["-", "v1-slis-datadog-appdynamics-raw-threshold.yaml"],
        Some(docs),
    );
    assert_eq!(run.code, 1);
    let checkout = &run.slo("checkout")["spec"];
    assert_eq!(checkout["objective"].as_f64(), Some(99.95));
    assert_eq!(checkout["window"], "28d");
    assert_eq!(
        checkout["indicator"]["ratio"]["errors"],
        r#"http_requests_total{code=~"5..",job="checkout"}"#
    );
    assert_eq!(
        checkout["indicator"]["ratio"]["total"],
        r#"http_requests_total{job="checkout"}"#
    );
    run.says(
        "(search): not carried over: ratioMetric.total.metricSource type Datadog: slo-warden reads Prometheus only",
    );
    run.says("1 of 2 SLO(s) imported");
}

#[test]
fn unreadable_input_exits_2() {
    let run = import("sloth", &["-"], Some("slos: [\n"));
    assert_eq!(run.code, 2);
    assert!(run.stderr.starts_with("-: document 1: "), "{}", run.stderr);
    let run = import("pyrra", &["-"], Some("kind: Deployment\n"));
    assert_eq!(run.code, 2);
    run.says("no Pyrra SLOs in -");
    assert!(Path::new(FIXTURES).join("README.md").is_file());
}

// ---- The imported SLO measures what the original tool measures -----------------------------
//
// The real Sloth and Pyrra (built from their Go modules by e2e/scripts/build-slo-tools.sh, as
// `make tools` does) generate their rules from the same example file; promtool evaluates their
// rules and ours over the same series, and the window error ratios must agree.
//
// One day of requests at 100 a minute, with errors in two bursts (2 a minute for 5 hours, 5 a
// minute for 4 hours): 1,800 errors in 144,000 requests, a ratio of 0.0125, within every window.
// Traffic is steady on purpose: Sloth's window ratio is the average of its 5-minute ratios,
// which equals the traffic-weighted ratio only when traffic is steady. Evaluated every 5
// minutes, the production cadence of slo-warden's tiles; the tiles read exactly 5 minutes
// (`--scrape-interval 1ms`, as in tests/promtool.rs), since promtool's samples fall on the
// evaluation timestamps.

/// Per-minute counters: (good, bad).
const OK: &str = "0+100x300 30098+98x299 59500+100x299 89495+95x239 112300+100x299";
const ERRORS: &str = "0+0x300 2+2x299 600+0x299 605+5x239 1800+0x299";
const ALL: &str = "0+100x1440";
const EXPECTED: f64 = 1800.0 / 144_000.0;

fn slo_tool(name: &str) -> std::path::PathBuf {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/scripts/build-slo-tools.sh"))
        .arg("env")
        .output()
        .unwrap();
    let env = String::from_utf8(out.stdout).unwrap();
    let path = env
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{}_BIN=", name.to_uppercase())))
        .unwrap_or_else(|| panic!("build-slo-tools.sh env: no {name}: {env}"));
    let path = std::path::PathBuf::from(path);
    assert!(
        path.is_file(),
        "{} is missing: run `make tools` (e2e/scripts/build-slo-tools.sh builds {name} from its Go module)",
        path.display()
    );
    path
}

fn run_ok(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A rule file (`groups:`) from a tool's output, which may be a PrometheusRule object.
fn rule_file(yaml: &[u8]) -> String {
    let v: Value = serde_yaml::from_slice(yaml).unwrap();
    let groups = if v["kind"] == "PrometheusRule" {
        &v["spec"]["groups"]
    } else {
        &v["groups"]
    };
    assert!(
        groups.as_sequence().is_some_and(|g| !g.is_empty()),
        "no rule groups in {v:?}"
    );
    serde_yaml::to_string(&serde_yaml::Mapping::from_iter([("groups".into(), groups.clone())])).unwrap()
}

struct Equivalence<'a> {
    tool: &'a str,
    fixture: &'a str,
    /// Input series (name and labels) of the good events, bad events, or all of them.
    ok: &'a str,
    errors: Option<&'a str>,
    all: Option<&'a str>,
    ours: &'a str,
    theirs: &'a str,
}

fn equivalent(case: Equivalence) {
    let dir = std::env::temp_dir().join(format!(
        "slo-warden-import-{}-{}",
        case.fixture.replace('.', "-"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = format!("{FIXTURES}/{}/{}", case.tool, case.fixture);

    // Theirs, by the tool itself.
    let theirs = match case.tool {
        "sloth" => {
            let out = dir.join("sloth-out.yaml");
            run_ok(
                Command::new(slo_tool("sloth"))
                    .args(["generate", "--default-slo-period=30d", "-i", &fixture, "-o"])
                    .arg(&out),
                "sloth generate",
            );
            rule_file(&std::fs::read(out).unwrap())
        }
        _ => {
            let folder = dir.join("pyrra");
            std::fs::create_dir_all(&folder).unwrap();
            run_ok(
                Command::new(slo_tool("pyrra"))
                    .arg("generate")
                    .arg(format!("--config-files={fixture}"))
                    .arg(format!("--prometheus-folder={}/", folder.display())),
                "pyrra generate",
            );
            let file = std::fs::read_dir(&folder).unwrap().next().unwrap().unwrap().path();
            rule_file(&std::fs::read(file).unwrap())
        }
    };
    std::fs::write(dir.join("theirs.yaml"), theirs).unwrap();

    // Ours, imported from the same file.
    let imported = Command::new(env!("CARGO_BIN_EXE_slo-warden"))
        .args(["import", case.tool, &fixture])
        .output()
        .unwrap();
    std::fs::write(dir.join("slo.yaml"), &imported.stdout).unwrap();
    let rules = run_ok(
        Command::new(env!("CARGO_BIN_EXE_slo-warden"))
            .args(["generate", "--format", "rulefile", "--scrape-interval", "1ms"])
            .arg(dir.join("slo.yaml")),
        "slo-warden generate",
    );
    std::fs::write(dir.join("ours.yaml"), rules).unwrap();

    let mut series = format!("  - series: '{}'\n    values: {OK}\n", case.ok);
    if let Some(errors) = case.errors {
        series.push_str(&format!("  - series: '{errors}'\n    values: {ERRORS}\n"));
    }
    if let Some(all) = case.all {
        series.push_str(&format!("  - series: '{all}'\n    values: {ALL}\n"));
    }
    let test = format!(
        "rule_files: [theirs.yaml, ours.yaml]\nevaluation_interval: 5m\ntests:\n- interval: 1m\n  input_series:\n{series}  \
         promql_expr_test:\n  - expr: round(sum({ours}), 0.000001)\n    eval_time: 1d\n    exp_samples: [{{labels: '{{}}', value: {EXPECTED}}}]\n  \
         - expr: round(sum({theirs}), 0.000001)\n    eval_time: 1d\n    exp_samples: [{{labels: '{{}}', value: {EXPECTED}}}]\n  \
         - expr: abs(sum({ours}) - sum({theirs})) < bool 1e-12\n    eval_time: 1d\n    exp_samples: [{{labels: '{{}}', value: 1}}]\n",
        ours = case.ours,
        theirs = case.theirs,
    );
    std::fs::write(dir.join("test.yaml"), test).unwrap();
    let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    run_ok(
        Command::new(&promtool)
            .args(["check", "rules", "theirs.yaml", "ours.yaml"])
            .current_dir(&dir),
        &format!("promtool check rules (in {})", dir.display()),
    );
    run_ok(
        Command::new(&promtool)
            .args(["test", "rules", "test.yaml"])
            .current_dir(&dir),
        &format!("promtool test rules (in {})", dir.display()),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sloth_events_window_ratio_equals_sloths() {
    equivalent(Equivalence {
        tool: "sloth",
        fixture: "getting-started.yml",
        ok: r#"http_request_duration_seconds_count{job="myservice",code="200"}"#,
        errors: Some(r#"http_request_duration_seconds_count{job="myservice",code="503"}"#),
        all: None,
        ours: r#"slo:sli_error:ratio_rate30d{slo="myservice-requests-availability"}"#,
        theirs: r#"slo:sli_error:ratio_rate30d{sloth_slo="requests-availability"}"#,
    });
}

#[test]
fn sloth_raw_window_ratio_equals_sloths() {
    equivalent(Equivalence {
        tool: "sloth",
        fixture: "k8s-in-base-raw-multi.yaml",
        ok: r#"http_request_duration_seconds_count{job="myservice",code="200"}"#,
        errors: Some(r#"http_request_duration_seconds_count{job="myservice",code="429"}"#),
        all: None,
        ours: r#"slo:sli_error:ratio_rate30d{slo="svc01-slo02"}"#,
        theirs: r#"slo:sli_error:ratio_rate30d{sloth_slo="slo02"}"#,
    });
}

#[test]
fn pyrra_ratio_window_ratio_equals_pyrras() {
    let slo = r#"slo="apiserver-read-response-errors""#;
    equivalent(Equivalence {
        tool: "pyrra",
        fixture: "ratio-apiserver-read-response-errors.yaml",
        ok: r#"apiserver_request_total{component="apiserver",verb="GET",code="200"}"#,
        errors: Some(r#"apiserver_request_total{component="apiserver",verb="LIST",code="500"}"#),
        all: None,
        ours: &format!("slo:sli_error:ratio_rate14d{{{slo}}}"),
        theirs: &format!(
            r#"sum(apiserver_request:increase2w{{{slo},code=~"5.."}}) / sum(apiserver_request:increase2w{{{slo}}})"#
        ),
    });
}

#[test]
fn pyrra_latency_window_ratio_equals_pyrras() {
    let slo = r#"slo="apiserver-read-cluster-latency""#;
    let h = r#"component="apiserver",scope="cluster",verb="GET""#;
    equivalent(Equivalence {
        tool: "pyrra",
        fixture: "latency-apiserver-read-cluster-latency.yaml",
        // Requests within 5s, and all of them: the slow ones are the difference.
        ok: &format!(r#"apiserver_request_sli_duration_seconds_bucket{{{h},le="5.0"}}"#),
        errors: None,
        all: Some(&format!(r#"apiserver_request_sli_duration_seconds_count{{{h}}}"#)),
        ours: &format!("slo:sli_error:ratio_rate14d{{{slo}}}"),
        theirs: &format!(
            r#"1 - sum(apiserver_request_sli_duration_seconds:increase2w{{{slo},le="5.0"}}) / sum(apiserver_request_sli_duration_seconds:increase2w{{{slo},le=""}})"#
        ),
    });
}
