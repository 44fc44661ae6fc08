//! End-to-end checks of the generated rules with Prometheus' own rule unit tester.
//!
//! Every directory under `tests/promtool/` is a scenario holding
//! - `slo.yaml`: one or more ServiceLevelObjectives, and
//! - `test.yaml`: a `promtool test rules` file whose `rule_files` is `[rules.yaml]`.
//!
//! For each scenario the built binary runs `generate --format rulefile slo.yaml` into a fresh
//! directory as `rules.yaml`, `test.yaml` is copied next to it, and `promtool check rules` and
//! `promtool test rules` must both succeed. A failure prints promtool's output and keeps the
//! directory for inspection.
//!
//! Things to know when writing a `test.yaml` (checked against promtool 2.42):
//! - promtool evaluates every group at every `evaluation_interval` step and ignores a group's
//!   own `interval`, so the 5-minute `window` group records a tile every step. The long-window
//!   ratios are ratios of tile sums, which do not depend on how often tiles are recorded as long
//!   as the cadence is uniform; setting `evaluation_interval: 5m` reproduces the production
//!   cadence exactly (and makes multi-day scenarios fast). The `sli` group's one-minute tiles are
//!   then one minute in five, which uniform test traffic does not mind; scenarios about the short
//!   windows or the burn alerts use `evaluation_interval: 1m`, their production cadence.
//! - Without `group_eval_order` promtool evaluates groups in random order, so an alert could read
//!   recording rules of the previous step; every scenario lists its groups window, then sli (whose
//!   alerts run last and so read both groups' records of the same step), except
//!   `new-slo-with-traffic`, which runs the sli groups first on purpose.
//! - `exp_alerts` compares annotations too: an alert listed without `exp_annotations` only
//!   matches an alert that has none. Every generated alert has a summary and a description, so
//!   firing alerts are listed with their full rendered annotations.
//! - `promql_expr_test` compares values exactly; computed ratios are wrapped in
//!   `round(x, 0.000001)` (whose result is the double nearest to the decimal).
//! - promtool's time starts at 0 and counters start at 0, so a window that reaches back before
//!   the first sample covers all data; `rate` does not extrapolate a counter below zero, so error
//!   and total series starting together keep exact ratios.
//! - `a+bxn` expands to n + 1 values. Keep per-minute increments exact in binary (600, 999.5,
//!   0.5, not 0.3) wherever a counter goes flat afterwards: a flat continuation typed as a
//!   decimal can land a hair below the accumulated value, which `rate` reads as a counter reset.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/promtool");

/// `$PROMTOOL`, else `promtool` from `PATH`.
fn promtool() -> PathBuf {
    let path = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("promtool"));
    match Command::new(&path).arg("--version").output() {
        Ok(out) if out.status.success() => path,
        Ok(out) => panic!(
            "{} --version failed ({}): {}{}\nRun `make tools` to install promtool.",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "promtool not found (looked for `{}`; set PROMTOOL to use another path). \
             Run `make tools` to install it: these tests fail rather than skip without it.",
            path.display()
        ),
        Err(e) => panic!(
            "cannot run {}: {e}. Run `make tools` to install promtool.",
            path.display()
        ),
    }
}

/// A new, empty directory under the system temp dir.
fn scratch_dir(scenario: &str) -> PathBuf {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "slo-warden-promtool-{scenario}-{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

fn describe(cmd: &str, out: &Output) -> String {
    format!(
        "`{cmd}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

fn run(cmd: &mut Command, shown: &str, dir: &Path) -> Output {
    let out = cmd
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{shown}`: {e}"));
    if !out.status.success() {
        panic!("{}\n(files kept in {})", describe(shown, &out), dir.display());
    }
    out
}

fn scenario(name: &str) {
    run_scenario(name, None);
}

/// `$ENFORCE_NAMESPACE`, else the build of the current tools/enforce-namespace in the cache
/// (build-tools.sh keeps a copy of the sources it built next to the binary).
fn enforcer() -> PathBuf {
    if let Some(path) = std::env::var_os("ENFORCE_NAMESPACE").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    const SOURCES: [&str; 3] = ["main.go", "go.mod", "go.sum"];
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/enforce-namespace");
    let current: Vec<Vec<u8>> = SOURCES
        .iter()
        .map(|f| fs::read(sources.join(f)).unwrap_or_else(|e| panic!("cannot read tools/enforce-namespace/{f}: {e}")))
        .collect();
    let cache = std::env::var_os("SLO_WARDEN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .expect("HOME or XDG_CACHE_HOME must be set to find enforce-namespace")
                .join("slo-warden")
        });
    let found = fs::read_dir(&cache).into_iter().flatten().flatten().find(|entry| {
        entry.file_name().to_string_lossy().starts_with("enforce-namespace-")
            && SOURCES
                .iter()
                .zip(&current)
                .all(|(f, bytes)| fs::read(entry.path().join("src").join(f)).is_ok_and(|b| b == *bytes))
    });
    match found {
        Some(entry) => entry.path().join("bin/enforce-namespace"),
        None => panic!(
            "no build of the current tools/enforce-namespace in {}/enforce-namespace-*: run `make tools` \
             (or set ENFORCE_NAMESPACE); this test fails rather than skips without it",
            cache.display()
        ),
    }
}

/// The input series of a test file, each also labelled `namespace="<namespace>"`, as a
/// ServiceMonitor in that namespace would scrape them.
fn in_namespace(test: &str, namespace: &str) -> String {
    test.lines()
        .map(|line| {
            let Some((indent, series)) = line.split_once("- series: ") else {
                return line.to_string();
            };
            let quote = series.chars().next().filter(|c| *c == '\'' || *c == '"');
            let bare = quote.map_or(series, |q| series.trim_matches(q));
            let labelled = match bare.split_once('{') {
                Some((name, rest)) if rest.trim_start().starts_with('}') => {
                    format!("{name}{{namespace=\"{namespace}\"}}")
                }
                Some((name, rest)) => format!("{name}{{namespace=\"{namespace}\",{rest}"),
                None => format!("{bare}{{namespace=\"{namespace}\"}}"),
            };
            format!("{indent}- series: '{labelled}'")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The scenario's rules as Prometheus Operator loads them for a Prometheus with
/// `enforcedNamespaceLabel: namespace` (rewritten with the operator's own code), over input
/// series labelled with the SLOs' namespace: every expectation must hold unchanged.
fn enforced_scenario(name: &str) {
    run_scenario(name, Some(&enforcer()));
}

fn run_scenario(name: &str, enforce: Option<&Path>) {
    let promtool = promtool();
    let src = Path::new(SCENARIOS).join(name);
    let slo = src.join("slo.yaml");
    let test = src.join("test.yaml");
    for f in [&slo, &test] {
        assert!(f.is_file(), "scenario {name}: {} is missing", f.display());
    }
    let mut test_text = fs::read_to_string(&test).unwrap();
    assert!(
        test_text.contains("rules.yaml"),
        "scenario {name}: test.yaml must name rules.yaml in rule_files"
    );

    let dir = scratch_dir(name);
    // promtool samples the input series exactly on the evaluation timestamps, where a plain 5m
    // range already holds each scrape interval of a tile exactly once. A 1ms scrape interval
    // gives that range (tile + scrape interval - 1ms); the longer range for real, unaligned
    // scrapes is measured by `make bench` (bench/window_cost.py). A scenario about scrape
    // intervals names the operator's in a `scrape-interval` file instead.
    let scrape_interval = fs::read_to_string(src.join("scrape-interval"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "1ms".into());
    let generate = format!(
        "slo-warden generate --format rulefile --scrape-interval {scrape_interval} {}",
        slo.display()
    );
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_slo-warden"))
            .args([
                "generate",
                "--format",
                "rulefile",
                "--scrape-interval",
                &scrape_interval,
            ])
            .arg(&slo),
        &generate,
        &dir,
    );
    fs::write(dir.join("rules.yaml"), &out.stdout).unwrap();
    if let Some(enforcer) = enforce {
        let out = run(
            Command::new(env!("CARGO_BIN_EXE_slo-warden"))
                .args(["generate", "--format", "prometheusrule", "--scrape-interval", "1ms"])
                .arg(&slo),
            "slo-warden generate --format prometheusrule",
            &dir,
        );
        let documents = String::from_utf8(out.stdout).unwrap();
        let namespaces: std::collections::BTreeSet<&str> = documents
            .lines()
            .filter_map(|l| l.strip_prefix("  namespace: "))
            .collect();
        let [namespace] = namespaces.into_iter().collect::<Vec<_>>()[..] else {
            panic!("scenario {name}: enforcement is tested on the SLOs of one namespace");
        };
        let mut child = Command::new(enforcer)
            .arg("namespace")
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", enforcer.display()));
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), documents.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            panic!("{}", describe("enforce-namespace namespace", &out));
        }
        let enforced = String::from_utf8(out.stdout).unwrap();
        let plain = fs::read_to_string(dir.join("rules.yaml")).unwrap();
        let matcher = format!("namespace=\"{namespace}\"");
        assert!(
            enforced.matches(&matcher).count() > plain.matches(&matcher).count(),
            "scenario {name}: enforcement added no namespace matcher to the SLI's selectors:\n{enforced}"
        );
        fs::write(dir.join("rules.yaml"), enforced).unwrap();
        test_text = in_namespace(&test_text, namespace);
    }
    fs::write(dir.join("test.yaml"), &test_text).unwrap();

    run(
        Command::new(&promtool).args(["check", "rules", "rules.yaml"]),
        "promtool check rules rules.yaml",
        &dir,
    );
    let out = run(
        Command::new(&promtool).args(["test", "rules", "test.yaml"]),
        "promtool test rules test.yaml",
        &dir,
    );
    // A rule_files entry that matches nothing is only a warning; the tests would then see no rules.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("WARNING"),
        "scenario {name}: promtool warned:\n{}\n(files kept in {})",
        describe("promtool test rules test.yaml", &out),
        dir.display()
    );
    let _ = fs::remove_dir_all(&dir);
}

/// The costliest SLOs validate accepts (see README "Rule cost") generate rules Prometheus loads.
#[test]
fn promtool_accepts_the_worst_case_rules() {
    let promtool = promtool();
    let dir = scratch_dir("worst-case");
    let docs: String = slo_warden::rule_cost::worst_case_slos()
        .unwrap()
        .iter()
        .map(|slo| format!("---\n{}", serde_yaml::to_string(slo).unwrap()))
        .collect();
    fs::write(dir.join("slo.yaml"), docs).unwrap();
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_slo-warden")).args(["generate", "--format", "rulefile", "slo.yaml"]),
        "slo-warden generate --format rulefile slo.yaml",
        &dir,
    );
    fs::write(dir.join("rules.yaml"), &out.stdout).unwrap();
    let out = run(
        Command::new(&promtool).args(["check", "rules", "rules.yaml"]),
        "promtool check rules rules.yaml",
        &dir,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("SUCCESS: 189 rules found"),
        "{}",
        describe("promtool check rules", &out)
    );
    let _ = fs::remove_dir_all(&dir);
}

macro_rules! scenarios {
    ($($test:ident => $dir:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                scenario($dir);
            }
        )*

        /// Every scenario directory has a test above, so none is silently left out.
        #[test]
        fn every_scenario_directory_is_tested() {
            let listed = [$($dir),*];
            let mut missing = Vec::new();
            for entry in fs::read_dir(SCENARIOS).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_dir() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !listed.contains(&name.as_str()) {
                        missing.push(name);
                    }
                }
            }
            assert!(missing.is_empty(), "scenario directories without a test in tests/promtool.rs: {missing:?}");
        }
    };
}

/// The scenarios whose SLOs all live in one namespace, under Prometheus Operator's
/// `enforcedNamespaceLabel` (README "Security model").
#[test]
fn rules_work_unchanged_under_enforced_namespace_label() {
    for name in [
        "fast-burn",
        "zero-traffic",
        "healthy-next-to-burning",
        "odd-objective",
        "latency",
        "equivalent-indicators",
        "budget-remaining",
    ] {
        enforced_scenario(name);
    }
}

#[test]
fn input_series_are_labelled_with_the_namespace() {
    let test = "  - series: a{job=\"x\"}\n  - series: 'b{}'\n    values: 1\n  - series: c";
    assert_eq!(
        in_namespace(test, "shop"),
        "  - series: 'a{namespace=\"shop\",job=\"x\"}'\n  - series: 'b{namespace=\"shop\"}'\n    values: 1\n  - series: 'c{namespace=\"shop\"}'"
    );
}

scenarios! {
    fast_burn => "fast-burn",
    calibration => "calibration",
    slow_burn => "slow-burn",
    zero_traffic => "zero-traffic",
    healthy_next_to_burning => "healthy-next-to-burning",
    odd_objective => "odd-objective",
    latency => "latency",
    equivalent_indicators => "equivalent-indicators",
    budget_remaining => "budget-remaining",
    same_name => "same-name",
    new_slo_with_traffic => "new-slo-with-traffic",
    scrape_intervals => "scrape-intervals",
    low_traffic => "low-traffic",
    short_history => "short-history",
}
