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
            ("home-wifi-good-wifi-client-satisfaction", None),
            ("home-wifi-risk-wifi-client-satisfaction", None),
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
    run.says("7 of 8 SLO(s) imported; see above for what was not carried over");

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
