//! Reading our kinds from YAML files (several documents per file, `-` for stdin), with
//! problems located by file, document and field path: a value of the wrong type is reported
//! at its path (`metadata.labels`, `spec.stages[0].when[1]`), every one of them, each quoting
//! at most a short piece of the value.

use std::io::Read;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::bounds::{QUOTE_LEN, quote, shorten};
use crate::api::{ErrorBudgetOverride, ErrorBudgetPolicy};
use crate::validate::{self, Problem, ValidSlo};

/// One problem in one input, printed as `file: document N (ns/name): field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: String,
    pub document: usize,
    pub object: Option<String>,
    pub problem: Problem,
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)?;
        if let Some(o) = &self.object {
            write!(f, " ({o})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

pub struct Loaded {
    pub valid: Vec<ValidSlo>,
    /// ErrorBudgetPolicies that passed every check.
    pub policies: usize,
    /// ErrorBudgetOverrides that passed every check.
    pub overrides: usize,
    pub problems: Vec<Located>,
}

pub fn read_input(path: &str) -> std::io::Result<String> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(path)
    }
}

/// The kinds `load` checks.
const KINDS: [&str; 3] = ["ServiceLevelObjective", "ErrorBudgetPolicy", "ErrorBudgetOverride"];

/// Parses and validates every ServiceLevelObjective, ErrorBudgetPolicy and ErrorBudgetOverride
/// document of `text`; documents of other kinds (a Deployment) are skipped, so whole manifests
/// can be passed in.
pub fn load(file: &str, text: &str, out: &mut Loaded) -> usize {
    let mut found = 0;
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let at = |object: Option<String>, p: Problem| Located {
            file: file.to_string(),
            document,
            object,
            problem: p,
        };
        let value = match serde_yaml::Value::deserialize(doc) {
            Ok(serde_yaml::Value::Null) => continue,
            Ok(v) => v,
            Err(e) => {
                out.problems.push(at(None, problem("yaml", shorten(&e.to_string()))));
                // A syntax error ends the stream: the parser cannot find the next document.
                break;
            }
        };
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        if !KINDS.contains(&kind.as_str()) {
            continue;
        }
        found += 1;
        let object = object_name(&value);
        let value = match serde_json::to_value(value) {
            Ok(v) => v,
            Err(e) => {
                out.problems.push(at(object, problem("yaml", shorten(&e.to_string()))));
                continue;
            }
        };
        let (problems, valid) = check(&kind, value, Check::File);
        if problems.is_empty() {
            match kind.as_str() {
                "ServiceLevelObjective" => out.valid.extend(valid),
                "ErrorBudgetPolicy" => out.policies += 1,
                _ => out.overrides += 1,
            }
        }
        out.problems.extend(problems.into_iter().map(|p| at(object.clone(), p)));
    }
    found
}

/// Where a document is checked: from a file (`slo-warden validate`, where a hand-set
/// `requestedBy` is refused as the webhook would), or at admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    File,
    Admission,
}

/// Everything wrong with one object of our kinds (`kind`), as JSON: its fields' types, names
/// and values; what its spec must satisfy; fields nobody reads.
pub fn problems_of(kind: &str, value: Value, check_at: Check) -> Vec<Problem> {
    check(kind, value, check_at).0
}

/// The problems of one object, and the SLO it is when it is a valid one.
fn check(kind: &str, value: Value, check: Check) -> (Vec<Problem>, Option<ValidSlo>) {
    let mut problems = Vec::new();
    let mut valid = None;
    if let Some(api) = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .filter(|a| *a != "slo.warden.dev/v1alpha1")
    {
        problems.push(problem(
            "apiVersion",
            format!("{} is not served; use slo.warden.dev/v1alpha1", quote(api)),
        ));
        return (problems, None);
    }
    // The API server prunes unknown fields before admission: only a file can have them.
    let unknown = |paths: Vec<String>, problems: &mut Vec<Problem>| {
        for path in paths
            .into_iter()
            .filter(|p| p.starts_with("spec") && check == Check::File)
        {
            problems.push(problem(
                &path,
                "is not a known field; check its spelling against the API reference",
            ));
        }
    };
    match kind {
        "ServiceLevelObjective" => {
            let t = typed::<crate::api::ServiceLevelObjective>(value);
            let clean = t.problems.is_empty() && t.ignored.iter().all(|p| !p.starts_with("spec"));
            problems.extend(t.problems);
            unknown(t.ignored, &mut problems);
            if let Some(slo) = t.object {
                match validate::validate(&slo) {
                    // A file is checked as the operator checks it by default: at admission
                    // the webhook does it, unless --allow-cross-namespace-sli.
                    Ok(v) => match check {
                        Check::File => match validate::foreign_namespaces(&slo, None) {
                            foreign if foreign.is_empty() => valid = clean.then_some(v),
                            foreign => problems.extend(foreign),
                        },
                        Check::Admission => valid = clean.then_some(v),
                    },
                    Err(p) => problems.extend(p),
                }
            }
        }
        "ErrorBudgetPolicy" => {
            let t = typed::<ErrorBudgetPolicy>(value);
            problems.extend(t.problems);
            unknown(t.ignored, &mut problems);
            if let Some(policy) = t.object {
                problems.extend(crate::policy::validate(&policy.spec).err().unwrap_or_default());
            }
        }
        "ErrorBudgetOverride" => {
            let t = typed::<ErrorBudgetOverride>(value);
            problems.extend(t.problems);
            unknown(t.ignored, &mut problems);
            if let Some(o) = t.object {
                problems.extend(crate::policy::overrides::problems(&o.spec));
                if let (Some(by), Check::File) = (&o.spec.requested_by, check) {
                    problems.push(problem(
                        "spec.requestedBy",
                        format!(
                            "{} is set by slo-warden from who creates the override; leave it out",
                            quote(by)
                        ),
                    ));
                }
            }
        }
        _ => {}
    }
    problems.truncate(MAX_PROBLEMS);
    (problems, valid)
}

/// Problems reported for one document at most: enough to fix, few enough to read.
pub const MAX_PROBLEMS: usize = 50;

/// A document read as a `T`.
pub struct Typed<T> {
    /// The object, without the values of `problems` when there are some (so the rest can still
    /// be checked); `None` when a required field was among them.
    pub object: Option<T>,
    /// Paths of fields `T` does not know.
    pub ignored: Vec<String>,
    /// Every value of the wrong type, at its path.
    pub problems: Vec<Problem>,
}

/// `value` as a `T`. After each value of the wrong type, that value is taken out and the rest
/// is read again, so one mistake does not hide the next.
pub fn typed<T: DeserializeOwned>(mut value: Value) -> Typed<T> {
    let mut problems = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    let mut ignored = Vec::new();
    let mut object = None;
    for _ in 0..MAX_PROBLEMS {
        ignored.clear();
        let mut record = |p: serde_ignored::Path| {
            let mut steps = Vec::new();
            Step::ignored(&p, &mut steps);
            ignored.push(render(&steps));
        };
        let de = serde_ignored::Deserializer::new(&value, &mut record);
        let e = match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(t) => {
                object = Some(t);
                break;
            }
            Err(e) => e,
        };
        let path: Vec<Step> = e.path().iter().filter_map(Step::of).collect();
        let message = e.inner().to_string();
        // A required field taken out after its own error: already reported.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            let mut full = path.clone();
            full.push(Step::Key(field.to_string()));
            if removed.contains(&render(&full)) {
                break;
            }
        }
        let field = render(&path);
        // A list entry emptied after its own error: already reported.
        if removed.contains(&field) {
            break;
        }
        problems.push(problem(&field, shorten(&message)));
        if !remove(&mut value, &path) {
            break;
        }
        removed.push(field);
    }
    Typed {
        object,
        ignored,
        problems,
    }
}

/// One step of a field path.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Step {
    /// The steps of a path serde_ignored reports (options and newtypes are no steps).
    fn ignored(path: &serde_ignored::Path, out: &mut Vec<Step>) {
        match path {
            serde_ignored::Path::Root => {}
            serde_ignored::Path::Seq { parent, index } => {
                Self::ignored(parent, out);
                out.push(Self::Index(*index));
            }
            serde_ignored::Path::Map { parent, key } => {
                Self::ignored(parent, out);
                out.push(Self::Key(key.clone()));
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => Self::ignored(parent, out),
        }
    }

    fn of(segment: &serde_path_to_error::Segment) -> Option<Self> {
        match segment {
            serde_path_to_error::Segment::Map { key } => Some(Self::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Self::Index(*index)),
            _ => None,
        }
    }
}

/// `spec.stages[0].when[1]`; a key that is not a plain name (or is long) is quoted short,
/// `metadata.labels["a b"]`; the document itself is `.`.
fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Key(k)
                if !k.is_empty()
                    && k.len() <= QUOTE_LEN
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Key(k) => out.push_str(&format!("[{}]", quote(k))),
        }
    }
    if out.is_empty() { ".".into() } else { out }
}

/// Takes the value at `path` out of `value`; false when there is nothing to take (the error
/// is about the document itself).
fn remove(value: &mut Value, path: &[Step]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at = value;
    for step in parents {
        let next = match (step, at) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k),
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return false,
        }
    }
    match (last, at) {
        (Step::Key(k), Value::Object(m)) => m.remove(k).is_some(),
        // Emptied, not removed: later indices keep naming the same entries.
        (Step::Index(i), Value::Array(a)) => match a.get_mut(*i) {
            Some(v) if !v.is_null() => {
                *v = Value::Null;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn problem(field: &str, message: impl Into<String>) -> Problem {
    Problem {
        field: field.to_string(),
        message: message.into(),
    }
}

fn object_name(value: &serde_yaml::Value) -> Option<String> {
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let shown = |s: &str| crate::api::bounds::cut(s, QUOTE_LEN);
    Some(match meta.get("namespace").and_then(|n| n.as_str()) {
        Some(ns) => format!("{}/{}", shown(ns), shown(name)),
        None => shown(name),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn run(text: &str) -> Loaded {
        let mut out = Loaded {
            valid: vec![],
            policies: 0,
            overrides: 0,
            problems: vec![],
        };
        load("f.yaml", text, &mut out);
        out
    }

    #[test]
    fn locates_problems_by_document_and_object() {
        let out = run(
            "kind: ConfigMap\n---\napiVersion: slo.warden.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {name: a, namespace: n}\nspec:\n  objective: 100\n  window: 30d\n  indicator: {ratio: {errors: e, total: t}}\n",
        );
        assert_eq!(out.problems.len(), 1);
        assert_eq!(
            out.problems[0].to_string(),
            "f.yaml: document 2 (n/a): spec.objective: must be below 100 (100% leaves no error budget); use e.g. 99.9"
        );
    }

    #[test]
    fn policies_are_checked_too() {
        let out = run(
            "apiVersion: slo.warden.dev/v1alpha1\nkind: ErrorBudgetPolicy\nmetadata: {name: p, namespace: n}\nspec:\n  slos: {names: [a]}\n  releaseAfter: soon\n  stages: [{name: s, when: [{burnRate: {window: 1h, above: 14.4}}], actions: [pauseRollouts]}]\n---\napiVersion: slo.warden.dev/v1alpha1\nkind: ErrorBudgetPolicy\nmetadata: {name: q}\nspec:\n  slos: {names: [a]}\n  stages: [{name: s, when: [{budgetRemaining: {below: 0}}]}]\n",
        );
        assert_eq!(
            out.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "f.yaml: document 1 (n/p): spec.releaseAfter: must be a Prometheus duration of at most 7d, e.g. 15m (got \"soon\")"
            ]
        );
        assert_eq!(out.policies, 1);
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_reported() {
        let out = run(
            "apiVersion: slo.warden.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {name: a}\nspec:\n  objective: 99.9\n  window: 30d\n  indicator: {ratio: {errors: e, total: t}}\n  alertng: {}\n",
        );
        assert_eq!(
            out.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "f.yaml: document 1 (a): spec.alertng: is not a known field; check its spelling against the API reference"
            ]
        );
        let out = run(
            "apiVersion: slo.warden.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {name: a}\nspec:\n  objective: \"99.9\"\n  window: 30d\n  indicator: {ratio: {errors: e, total: t}}\n",
        );
        assert!(
            out.problems[0].to_string().contains("invalid type: string \"99.9\""),
            "{}",
            out.problems[0]
        );
    }

    fn lines(out: &Loaded) -> Vec<String> {
        out.problems.iter().map(ToString::to_string).collect()
    }

    const SLO: &str = "apiVersion: slo.warden.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {name: a, namespace: n}\nspec:\n  objective: 99.9\n  window: 30d\n  indicator: {ratio: {errors: e, total: t}}\n";
    const POLICY: &str = "apiVersion: slo.warden.dev/v1alpha1\nkind: ErrorBudgetPolicy\nmetadata: {name: p, namespace: n}\nspec:\n  slos: {names: [a]}\n  targets: {deployments: {matchLabels: {app: web}}}\n  stages: [{name: s, when: [{budgetRemaining: {below: 0}}, {alertFiring: {severity: critical}}], actions: [freezeDeployments]}]\n";
    const OVERRIDE: &str = "apiVersion: slo.warden.dev/v1alpha1\nkind: ErrorBudgetOverride\nmetadata: {name: o, namespace: n}\nspec:\n  policy: p\n  duration: 2h\n  reason: hotfix for INC-123\n";

    #[test]
    fn wrong_types_are_reported_at_their_path_every_one() {
        let out = run(&SLO
            .replace("{name: a, namespace: n}", "{name: a, namespace: n, labels: [x]}")
            .replace("99.9", "\"99.9\"")
            .replace("window: 30d", "window: [30d]"));
        assert_eq!(
            lines(&out),
            [
                "f.yaml: document 1 (n/a): metadata.labels: invalid type: sequence, expected a map",
                "f.yaml: document 1 (n/a): spec.objective: invalid type: string \"99.9\", expected f64",
                "f.yaml: document 1 (n/a): spec.window: invalid type: sequence, expected a string",
            ]
        );
        let out = run(&POLICY.replace(
            "{alertFiring: {severity: critical}}",
            "{alertFiring: {severity: [critical]}}",
        ));
        assert_eq!(
            lines(&out),
            [
                "f.yaml: document 1 (n/p): spec.stages[0].when[1].alertFiring.severity: invalid type: sequence, expected a string"
            ]
        );
        // A wrong type does not hide what the rest of the document gets wrong.
        let out = run(&POLICY
            .replace("{name: p, namespace: n}", "{name: p, namespace: n, labels: [x]}")
            .replace(
                "slos: {names: [a]}",
                "slos: {names: [a]}\n  releaseAfter: 10000y\n  dryRun: maybe",
            ));
        assert_eq!(
            lines(&out),
            [
                "f.yaml: document 1 (n/p): metadata.labels: invalid type: sequence, expected a map",
                "f.yaml: document 1 (n/p): spec.dryRun: invalid type: string \"maybe\", expected a boolean",
                "f.yaml: document 1 (n/p): spec.releaseAfter: must be a Prometheus duration of at most 7d, e.g. 15m (got \"10000y\")",
            ]
        );
        let out = run(&POLICY.replace("[freezeDeployments]", "[unpauseEverything]"));
        assert!(
            lines(&out)[0].starts_with(
                "f.yaml: document 1 (n/p): spec.stages[0].actions[0]: unknown variant `unpauseEverything`"
            ),
            "{:?}",
            lines(&out)
        );
    }

    #[test]
    fn a_huge_value_is_not_echoed_back() {
        let huge = "x".repeat(10 * 1024 * 1024);
        let out = run(&SLO.replace("99.9", &format!("\"{huge}\"")));
        assert_eq!(out.problems.len(), 1);
        let line = out.problems[0].to_string();
        assert!(
            line.starts_with("f.yaml: document 1 (n/a): spec.objective: invalid type: string \"xxx"),
            "{line:.200}"
        );
        assert!(line.len() < 500, "{} characters", line.len());
        let yaml: serde_yaml::Value = serde_yaml::from_str(POLICY).unwrap();
        let mut doc = serde_json::to_value(yaml).unwrap();
        doc["spec"]["targets"]["deployments"]["matchLabels"] = serde_json::json!({ huge.clone(): "web" });
        doc["spec"]["targets"]["deployments"][huge.as_str()] = serde_json::json!(1);
        let problems: Vec<String> = problems_of("ErrorBudgetPolicy", doc, Check::File)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 2, "{problems:.300?}");
        assert!(problems.iter().all(|p| p.len() < 500), "{problems:.300?}");
        assert!(
            problems[0].starts_with("spec.targets.deployments[\"xxx"),
            "{problems:.300?}"
        );
        assert!(
            problems[1].starts_with("spec.targets.deployments.matchLabels: key \"xxx"),
            "{problems:.300?}"
        );
    }

    #[test]
    fn overrides_are_checked_too() {
        let out = run(OVERRIDE);
        assert!(out.problems.is_empty(), "{:?}", lines(&out));
        assert_eq!(out.overrides, 1);
        let out = run(&OVERRIDE
            .replace("duration: 2h", "duration: 10000y")
            .replace("hotfix for INC-123", "' '")
            .replace("policy: p", "policy: p\n  requestedBy: mallory"));
        assert_eq!(
            lines(&out),
            [
                "f.yaml: document 1 (n/o): spec.duration: must be a Prometheus duration of at most 30d, e.g. 2h (got \"10000y\")",
                "f.yaml: document 1 (n/o): spec.reason: must say why the override is needed, e.g. hotfix for INC-123",
                "f.yaml: document 1 (n/o): spec.requestedBy: \"mallory\" is set by slo-warden from who creates the override; leave it out",
            ]
        );
        assert_eq!(out.overrides, 0);

        // At admission requestedBy is the webhook's own stamp, and unknown fields were pruned.
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&OVERRIDE.replace("policy: p", "policy: p\n  requestedBy: alice\n  extra: 1"))
                .unwrap();
        let doc = serde_json::to_value(yaml).unwrap();
        assert_eq!(problems_of("ErrorBudgetOverride", doc.clone(), Check::Admission), []);
        assert_eq!(problems_of("ErrorBudgetOverride", doc, Check::File).len(), 2);
    }

    /// One step of a reported field path, parsed back.
    fn steps(field: &str) -> Vec<Step> {
        let mut out = Vec::new();
        let mut rest = field;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').unwrap();
                let inside = &r[..end];
                out.push(match inside.parse::<usize>() {
                    Ok(i) => Step::Index(i),
                    Err(_) => Step::Key(serde_json::from_str(inside.trim_end_matches('…')).unwrap_or_default()),
                });
                rest = &r[end + 1..];
            } else {
                let r = rest.strip_prefix('.').unwrap_or(rest);
                let end = r.find(['.', '[']).unwrap_or(r.len());
                out.push(Step::Key(r[..end].to_string()));
                rest = &r[end..];
            }
        }
        out
    }

    /// The path leads to a value of the document, or to a field of an object in it (a missing
    /// field, or one that parses into another key).
    fn is_real(doc: &Value, field: &str) -> bool {
        if field == "." {
            return true;
        }
        let mut at = doc;
        let path = steps(field);
        for (i, step) in path.iter().enumerate() {
            let next = match (step, at) {
                (Step::Key(k), Value::Object(m)) => m.get(k).or_else(|| {
                    m.keys()
                        .find(|key| key.starts_with(k.as_str()))
                        .and_then(|key| m.get(key))
                }),
                (Step::Index(i), Value::Array(a)) => a.get(*i),
                _ => None,
            };
            match next {
                Some(v) => at = v,
                None => return i == path.len() - 1 && at.is_object(),
            }
        }
        true
    }

    /// A value of any type, some of them huge.
    fn junk() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::String),
            (1usize..3_000_000).prop_map(|n| Value::String("y".repeat(n))),
            Just(serde_json::json!(["a", 1])),
            Just(serde_json::json!({"x y": {"z": []}})),
            (1usize..200).prop_map(|n| Value::Array(vec![Value::String("s".into()); n])),
        ]
    }

    /// Every path to a value in `doc`.
    fn paths(doc: &Value, at: Vec<Step>, out: &mut Vec<Vec<Step>>) {
        match doc {
            Value::Object(m) => {
                for (k, v) in m {
                    let mut p = at.clone();
                    p.push(Step::Key(k.clone()));
                    out.push(p.clone());
                    paths(v, p, out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let mut p = at.clone();
                    p.push(Step::Index(i));
                    out.push(p.clone());
                    paths(v, p, out);
                }
            }
            _ => {}
        }
    }

    fn set(doc: &mut Value, path: &[Step], value: Value) {
        let mut at = doc;
        for step in path {
            at = match (step, at) {
                (Step::Key(k), Value::Object(m)) => m.get_mut(k).unwrap(),
                (Step::Index(i), Value::Array(a)) => &mut a[*i],
                _ => unreachable!(),
            };
        }
        *at = value;
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Any field of a valid document replaced by a value of any type (up to megabytes):
        /// each problem names a real field path of the document, under `metadata` when the
        /// change was there, and is short.
        #[test]
        fn malformed_documents_get_short_messages_at_real_paths(
            which in 0usize..3,
            pick in any::<prop::sample::Index>(),
            value in junk(),
        ) {
            let text = [SLO, POLICY, OVERRIDE][which];
            let yaml: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
            let mut doc = serde_json::to_value(yaml).unwrap();
            let mut all = Vec::new();
            paths(&doc, vec![], &mut all);
            all.retain(|p| !matches!(p.first(), Some(Step::Key(k)) if k == "kind" || k == "apiVersion"));
            let path = pick.get(&all).clone();
            set(&mut doc, &path, value);
            let kind = ["ServiceLevelObjective", "ErrorBudgetPolicy", "ErrorBudgetOverride"][which];
            let problems = problems_of(kind, doc.clone(), Check::File);
            for p in &problems {
                let line = p.to_string();
                prop_assert!(line.chars().count() <= 700, "{} characters: {line:.300}", line.len());
                prop_assert!(is_real(&doc, &p.field), "{:?} is not a path of the document: {}", p.field, line);
                prop_assert!(p.field != "spec" || path.len() == 1, "{}", line);
            }
            let in_metadata = matches!(path.first(), Some(Step::Key(k)) if k == "metadata");
            if in_metadata && !problems.is_empty() {
                prop_assert!(problems.iter().any(|p| p.field.starts_with("metadata")), "{:?}", problems);
            }
        }
    }
}
