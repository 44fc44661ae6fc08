//! Reading ServiceLevelObjectives from YAML files (several documents per file, `-` for stdin),
//! with problems located by file, document and field.

use std::io::Read;

use serde::Deserialize;

use crate::api::ErrorBudgetPolicy;
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

/// Parses and validates every ServiceLevelObjective and ErrorBudgetPolicy document of `text`;
/// documents of other kinds (a Deployment) are skipped, so whole manifests can be passed in.
pub fn load(file: &str, text: &str, out: &mut Loaded) -> usize {
    let mut found = 0;
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let at = |object: Option<String>, field: &str, message: String| Located {
            file: file.to_string(),
            document,
            object,
            problem: Problem {
                field: field.to_string(),
                message,
            },
        };
        let value = match serde_yaml::Value::deserialize(doc) {
            Ok(serde_yaml::Value::Null) => continue,
            Ok(v) => v,
            Err(e) => {
                out.problems.push(at(None, "yaml", e.to_string()));
                // A syntax error ends the stream: the parser cannot find the next document.
                break;
            }
        };
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        if kind != "ServiceLevelObjective" && kind != "ErrorBudgetPolicy" {
            continue;
        }
        found += 1;
        let object = object_name(&value);
        if let Some(api) = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .filter(|a| *a != "slo.warden.dev/v1alpha1")
        {
            out.problems.push(at(
                object.clone(),
                "apiVersion",
                format!("{api:?} is not served; use slo.warden.dev/v1alpha1"),
            ));
            continue;
        }
        let mut unknown = Vec::new();
        let problems = if kind == "ServiceLevelObjective" {
            match serde_ignored::deserialize(value, |path| unknown.push(path.to_string())) {
                // As the operator refuses it by default (--allow-cross-namespace-sli).
                Ok(slo) => match validate::validate(&slo).and_then(|v| {
                    let foreign = validate::foreign_namespaces(&slo, None);
                    if foreign.is_empty() { Ok(v) } else { Err(foreign) }
                }) {
                    Ok(v) => {
                        if unknown.iter().all(|p| !p.starts_with("spec")) {
                            out.valid.push(v);
                        }
                        vec![]
                    }
                    Err(problems) => problems,
                },
                Err(e) => vec![parse_problem(e)],
            }
        } else {
            match serde_ignored::deserialize::<_, _, ErrorBudgetPolicy>(value, |path| unknown.push(path.to_string())) {
                Ok(policy) => match crate::policy::validate(&policy.spec) {
                    Ok(_) => {
                        if unknown.iter().all(|p| !p.starts_with("spec")) {
                            out.policies += 1;
                        }
                        vec![]
                    }
                    Err(problems) => problems,
                },
                Err(e) => vec![parse_problem(e)],
            }
        };
        for path in unknown.iter().filter(|p| p.starts_with("spec")) {
            out.problems.push(at(
                object.clone(),
                path,
                "is not a known field; check its spelling against the API reference".into(),
            ));
        }
        out.problems
            .extend(problems.into_iter().map(|p| at(object.clone(), &p.field, p.message)));
    }
    found
}

fn parse_problem(e: serde_yaml::Error) -> Problem {
    Problem {
        field: "spec".into(),
        message: e.to_string(),
    }
}

fn object_name(value: &serde_yaml::Value) -> Option<String> {
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    Some(match meta.get("namespace").and_then(|n| n.as_str()) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Loaded {
        let mut out = Loaded {
            valid: vec![],
            policies: 0,
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
                "f.yaml: document 1 (n/p): spec.releaseAfter: \"soon\" is not a Prometheus duration (use e.g. 5m, 1h30m, 30d)"
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
}
