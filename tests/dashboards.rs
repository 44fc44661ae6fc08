//! The Grafana dashboards of `dashboards/`, without a cluster:
//!
//! * each JSON file is what `dashboards/generate.py` writes;
//! * `grafana-validate` (tools/grafana-validate, built by `make tools`) accepts each against
//!   Grafana's own schema, strictly, and refuses a copy with a misspelt key;
//! * every target and variable reads the `${datasource}` variable, every query parses as PromQL
//!   once the template variables are substituted, every `$variable` used is defined, the uids
//!   are unique and every link to another dashboard names one of them.
//!
//! The chart's copy of the files is checked by tests/manifests.rs; that every query returns
//! data from a real Prometheus, by tests/e2e/dashboards.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const REGENERATE: &str = "run `make generate` (dashboards/generate.py, charts/render-manifests.sh)";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `dashboards/*.json` by file name.
fn dashboards() -> BTreeMap<String, Value> {
    let dir = root().join("dashboards");
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|x| x == "json") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("dashboards/{name} is not JSON: {e}"));
            out.insert(name, json);
        }
    }
    assert_eq!(
        out.keys().map(String::as_str).collect::<Vec<_>>(),
        ["slo-detail.json", "slo-overview.json", "slo-policies.json"],
        "dashboards/ holds other files than the generator writes; {REGENERATE}"
    );
    out
}

/// `SLO_WARDEN_CACHE` as e2e/scripts/versions.sh defines it.
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLO_WARDEN_CACHE") {
        return PathBuf::from(dir);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME must be set to find grafana-validate")
        .join("slo-warden")
}

const VALIDATOR_SOURCES: [&str; 3] = ["main.go", "go.mod", "go.sum"];

/// `GRAFANA_VALIDATE`, else the build of the current tools/grafana-validate in the cache:
/// build-tools.sh keeps a copy of the sources it built next to the binary.
fn validator() -> PathBuf {
    if let Some(path) = std::env::var_os("GRAFANA_VALIDATE").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let sources = root().join("tools/grafana-validate");
    let current: Vec<Vec<u8>> = VALIDATOR_SOURCES
        .iter()
        .map(|f| fs::read(sources.join(f)).unwrap_or_else(|e| panic!("cannot read tools/grafana-validate/{f}: {e}")))
        .collect();
    let cache = cache_dir();
    let found = fs::read_dir(&cache).into_iter().flatten().flatten().find(|entry| {
        entry.file_name().to_string_lossy().starts_with("grafana-validate-")
            && VALIDATOR_SOURCES
                .iter()
                .zip(&current)
                .all(|(f, bytes)| fs::read(entry.path().join("src").join(f)).is_ok_and(|b| b == *bytes))
    });
    match found {
        Some(entry) => entry.path().join("bin/grafana-validate"),
        None => panic!(
            "no build of the current tools/grafana-validate in {}/grafana-validate-*: run `make tools` \
             (or set GRAFANA_VALIDATE); these tests fail rather than skip without it",
            cache.display()
        ),
    }
}

fn validate(files: &[&Path]) -> Output {
    let bin = validator();
    Command::new(&bin)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; run `make tools`", bin.display()))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn dashboards_are_what_the_generator_writes() {
    let script = root().join("dashboards/generate.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--check")
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "dashboards/*.json differ from dashboards/generate.py (edit the script, not the JSON); {REGENERATE}\n{}",
        text(&out)
    );
}

#[test]
fn grafana_accepts_the_dashboards() {
    let dir = root().join("dashboards");
    let paths: Vec<PathBuf> = dashboards().keys().map(|f| dir.join(f)).collect();
    let out = validate(&paths.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "grafana-validate refused a dashboard:\n{}",
        text(&out)
    );
    let report = text(&out);
    for path in &paths {
        assert!(
            report.contains(&format!("ok   {}", path.display())),
            "grafana-validate did not check {}:\n{report}",
            path.display()
        );
    }
}

/// The validator is not a rubber stamp: a misspelt option, an unknown panel type and a wrong
/// JSON type are each refused, with the file and the field named.
#[test]
fn grafana_validate_refuses_a_broken_dashboard() {
    let good = fs::read_to_string(root().join("dashboards/slo-overview.json")).unwrap();
    let dir = std::env::temp_dir().join(format!("slo-warden-dashboards-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    for (name, from, to, want) in [
        (
            "typo.json",
            "\"showPercentChange\"",
            "\"showPercentChanges\"",
            "unexpected field 'showPercentChanges'",
        ),
        (
            "type.json",
            "\"type\": \"bargauge\"",
            "\"type\": \"bargage\"",
            "no schema for panel type \"bargage\"",
        ),
        (
            "value.json",
            "\"schemaVersion\": 39",
            "\"schemaVersion\": \"39\"",
            "schemaVersion",
        ),
    ] {
        assert!(good.contains(from), "slo-overview.json has no {from} to break");
        let path = dir.join(name);
        fs::write(&path, good.replacen(from, to, 1)).unwrap();
        let out = validate(&[&path]);
        let report = text(&out);
        assert!(
            out.status.code() == Some(1)
                && report.contains(&format!("FAIL {}", path.display()))
                && report.contains(want),
            "grafana-validate let {from} -> {to} through (exit {:?}), or did not say `{want}`:\n{report}",
            out.status.code()
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Test values for the template variables and Grafana's built-in ones.
const SUBSTITUTIONS: [(&str, &str); 7] = [
    ("$__rate_interval", "1m"),
    ("$__interval", "15s"),
    ("$__range", "1h"),
    ("$namespace", "shop"),
    ("$slo", "checkout"),
    ("$policy", "checkout"),
    ("$window", "30d"),
];

fn substitute(expr: &str) -> String {
    SUBSTITUTIONS
        .iter()
        .fold(expr.to_string(), |e, (var, value)| e.replace(var, value))
}

/// Every panel of a dashboard, rows' children included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Names of the variables a text uses: `$name` and `${name}` / `${name:format}`.
fn variables_used(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let braced = rest.starts_with('{');
        let name: String = rest
            .chars()
            .skip(usize::from(braced))
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || (braced && *c == '.'))
            .collect();
        if !name.is_empty() {
            used.insert(name);
        }
    }
    used
}

#[test]
fn queries_parse_and_read_the_datasource_variable() {
    let datasource = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let all = dashboards();
    let mut uids = BTreeSet::new();
    for (file, d) in &all {
        let uid = d["uid"].as_str().unwrap_or_else(|| panic!("{file}: no uid"));
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} is used twice");

        let variables: BTreeMap<&str, &Value> = d["templating"]["list"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no templating.list"))
            .iter()
            .map(|v| (v["name"].as_str().unwrap_or_default(), v))
            .collect();
        let ds = variables
            .get("datasource")
            .unwrap_or_else(|| panic!("{file}: no datasource variable"));
        assert_eq!(
            (ds["type"].as_str(), ds["query"].as_str()),
            (Some("datasource"), Some("prometheus")),
            "{file}: the datasource variable picks a Prometheus data source"
        );
        let second = if file == "slo-policies.json" { "policy" } else { "slo" };
        for name in ["namespace", second] {
            assert!(variables.contains_key(name), "{file}: no `{name}` variable");
        }
        for (name, v) in &variables {
            if v["type"] == "query" {
                assert_eq!(
                    v["datasource"], datasource,
                    "{file}: variable {name} must read ${{datasource}}"
                );
                // label_values(SELECTOR, label): the selector is PromQL.
                let q = v["query"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}: variable {name} has no query"));
                let selector = q
                    .strip_prefix("label_values(")
                    .and_then(|s| s.rsplit_once(','))
                    .map(|(s, _)| s)
                    .unwrap_or_else(|| panic!("{file}: variable {name}: {q} is not label_values(selector, label)"));
                if let Err(e) = promql_parser::parser::parse(&substitute(selector)) {
                    panic!("{file}: variable {name}: {selector} does not parse: {e}");
                }
            }
        }

        let mut queries = Vec::new();
        let mut ids = BTreeSet::new();
        let mut titles = BTreeSet::new();
        let mut cells = BTreeSet::new();
        for p in panels(d) {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{file}: a panel without a title: {p}");
            assert!(titles.insert(title), "{file}: two panels titled {title:?}");
            assert!(ids.insert(p["id"].as_u64()), "{file}: panel id {} twice", p["id"]);
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(
                        cells.insert((cx, cy)),
                        "{file}: panel {title:?} overlaps another at x={cx}, y={cy}"
                    );
                }
            }
            let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
            if p["type"] != "row" {
                assert!(!targets.is_empty(), "{file}: panel {title:?} has no query");
            }
            assert_eq!(
                p["datasource"], datasource,
                "{file}: panel {title:?} must read ${{datasource}}"
            );
            for t in targets {
                assert_eq!(
                    t["datasource"], datasource,
                    "{file}: panel {title:?} target {} must read ${{datasource}}",
                    t["refId"]
                );
                let expr = t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}: panel {title:?}: a target without expr"));
                queries.push((format!("panel {title:?} target {}", t["refId"]), expr));
            }
        }
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            if a["builtIn"] == 1 {
                continue;
            }
            assert_eq!(
                a["datasource"], datasource,
                "{file}: annotation {} must read ${{datasource}}",
                a["name"]
            );
            queries.push((
                format!("annotation {}", a["name"]),
                a["expr"].as_str().unwrap_or_default(),
            ));
        }
        for (what, expr) in queries {
            if let Err(e) = promql_parser::parser::parse(&substitute(expr)) {
                panic!("{file}: {what}: PromQL does not parse: {e}\n{expr}");
            }
        }

        let json = serde_json::to_string(d).unwrap();
        let undefined: Vec<String> = variables_used(&json)
            .into_iter()
            .filter(|v| !v.starts_with("__") && !variables.contains_key(v.as_str()))
            .collect();
        assert!(undefined.is_empty(), "{file}: uses undefined variables {undefined:?}");
    }

    // Links between the dashboards go to /d/<uid>.
    for (file, d) in &all {
        let json = serde_json::to_string(d).unwrap();
        for link in json.split("/d/").skip(1) {
            let uid: String = link
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            assert!(
                uids.contains(&uid),
                "{file}: links to /d/{uid}, which is none of {uids:?}"
            );
        }
    }
}
