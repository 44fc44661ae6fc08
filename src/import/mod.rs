//! `slo-warden import`: SLOs written for Sloth, Pyrra or OpenSLO in, ServiceLevelObjectives out.
//!
//! Each converter is a pure function from one parsed document to the SLOs it holds, each with
//! what could not be carried over and why. Nothing is dropped silently: a part that has no
//! equivalent is listed as lost, and every SLO written is checked by [`crate::validate`] first.

pub mod openslo;
pub mod pyrra;
pub mod sloth;

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::api::{ServiceLevelObjective, ServiceLevelObjectiveSpec};
use crate::duration::Duration;

/// The tools whose specs can be imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Sloth,
    Pyrra,
    Openslo,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sloth => "Sloth",
            Self::Pyrra => "Pyrra",
            Self::Openslo => "OpenSLO",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Window of SLOs whose source has none (Sloth specs; OpenSLO SLOs without `timeWindow`).
    pub window: Duration,
}

/// One input document: where it is, and its YAML.
#[derive(Clone, Debug)]
pub struct Document {
    /// `file: document N` (and `item M` for an element of a top-level list).
    pub at: String,
    pub value: Value,
}

/// One SLO of the input, as carried over.
#[derive(Clone, Debug, Default)]
pub struct Imported {
    /// `file: document N (name)`.
    pub from: String,
    /// `None` when the SLO could not be carried over at all.
    pub slo: Option<ServiceLevelObjective>,
    /// What was not carried over, each with the reason.
    pub lost: Vec<String>,
    /// What was carried over differently, or assumed.
    pub notes: Vec<String>,
}

impl Imported {
    fn new(doc: &Document, name: &str) -> Self {
        Self {
            from: format!("{} ({name})", doc.at),
            ..Self::default()
        }
    }

    /// Gives up on the whole SLO.
    fn refuse(mut self, why: impl Into<String>) -> Self {
        self.slo = None;
        self.lost.push(why.into());
        self
    }
}

/// Splits every file into documents; a top-level list (as OpenSLO tooling writes) is one
/// document per element. Fails on YAML that does not parse, naming the file and document.
pub fn documents(files: &[(String, String)]) -> Result<Vec<Document>, String> {
    let mut out = Vec::new();
    for (file, text) in files {
        for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let at = format!("{file}: document {}", i + 1);
            let value = <Value as serde::Deserialize>::deserialize(doc).map_err(|e| format!("{at}: {e}"))?;
            match value {
                Value::Null => {}
                Value::Sequence(items) => {
                    for (j, item) in items.into_iter().enumerate() {
                        out.push(Document {
                            at: format!("{at} item {}", j + 1),
                            value: item,
                        });
                    }
                }
                value => out.push(Document { at, value }),
            }
        }
    }
    Ok(out)
}

/// Every SLO in `docs`, in input order; documents of other kinds are passed over.
pub fn import(tool: Tool, docs: &[Document], options: &Options) -> Vec<Imported> {
    let converted: Vec<Imported> = match tool {
        Tool::Sloth => docs.iter().flat_map(|d| sloth::convert(d, options)).collect(),
        Tool::Pyrra => docs.iter().flat_map(pyrra::convert).collect(),
        Tool::Openslo => docs.iter().flat_map(|d| openslo::convert(d, docs, options)).collect(),
    };
    converted.into_iter().map(checked).collect()
}

/// What slo-warden itself would say of the SLO; one that it would refuse is not written.
fn checked(mut imported: Imported) -> Imported {
    if let Some(slo) = &imported.slo
        && let Err(problems) = crate::validate::validate(slo)
    {
        let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return imported.refuse(format!("not valid as a slo-warden SLO: {}", all.join("; ")));
    }
    if let Some(slo) = &mut imported.slo {
        // The same spec as `kubectl get -o yaml` would show, without empty objects.
        slo.status = None;
    }
    imported
}

/// The SLOs as YAML documents, each after `---`.
pub fn render(imported: &[Imported]) -> Result<String, String> {
    let mut out = String::new();
    for slo in imported.iter().filter_map(|i| i.slo.as_ref()) {
        let yaml = serde_yaml::to_string(slo).map_err(|e| format!("cannot render YAML: {e}"))?;
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

/// A ServiceLevelObjective named after `name` (made a valid Kubernetes name, with a note when
/// that changed it).
fn slo(
    name: &str,
    namespace: Option<String>,
    spec: ServiceLevelObjectiveSpec,
    imported: &mut Imported,
) -> ServiceLevelObjective {
    let object_name = kubernetes_name(name);
    if object_name != name {
        imported.notes.push(format!(
            "named {object_name:?}: {name:?} is not a Kubernetes object name"
        ));
    }
    let mut slo = ServiceLevelObjective::new(&object_name, spec);
    slo.metadata.namespace = namespace;
    slo
}

/// Lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit, at most
/// 253 characters (a DNS subdomain, what object names must be).
pub fn kubernetes_name(name: &str) -> String {
    let lowered: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = lowered.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut out: String = trimmed.chars().take(253).collect();
    while out.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        out.pop();
    }
    if out.is_empty() { "imported".into() } else { out }
}

/// The string at `path` (a chain of keys), if it is one; numbers and booleans are spelled out.
fn text(value: &Value, path: &[&str]) -> Option<String> {
    match at(value, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

/// The first of `keys` present in `value` (Sloth spells keys in snake_case in its own format
/// and in camelCase in its CRD).
fn either<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| value.get(*k))
}

/// A string-to-string map (values that are numbers or booleans spelled out); the keys whose
/// values are anything else are returned apart.
fn string_map(value: Option<&Value>) -> (BTreeMap<String, String>, Vec<String>) {
    let mut map = BTreeMap::new();
    let mut other = Vec::new();
    if let Some(Value::Mapping(m)) = value {
        for (k, v) in m {
            let Some(k) = k.as_str() else { continue };
            match v {
                Value::String(s) => {
                    map.insert(k.to_string(), s.clone());
                }
                Value::Number(n) => {
                    map.insert(k.to_string(), n.to_string());
                }
                Value::Bool(b) => {
                    map.insert(k.to_string(), b.to_string());
                }
                _ => other.push(k.to_string()),
            }
        }
    }
    (map, other)
}

/// Go template `{{.window}}` (any spacing), as Sloth and OpenSLO examples write it, to `$window`.
pub fn window_placeholder(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else { break };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        if inner == ".window" {
            out.push_str(crate::sli::WINDOW_PLACEHOLDER);
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// Labels slo-warden sets itself on every alert.
fn reserved_label(key: &str) -> bool {
    crate::validate::RESERVED_LABELS.contains(&key)
}

/// Moves the reserved keys out of `labels`, recording each as lost.
fn drop_reserved(labels: &mut BTreeMap<String, String>, what: &str, imported: &mut Imported) {
    let reserved: Vec<String> = labels.keys().filter(|k| reserved_label(k)).cloned().collect();
    for key in reserved {
        let value = labels.remove(&key).unwrap_or_default();
        imported.lost.push(format!(
            "{what} {key}={value:?}: slo-warden sets {key} on every alert itself"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_placeholders_of_any_spacing() {
        assert_eq!(
            window_placeholder("sum(rate(x[{{.window}}])) / sum(rate(y[{{ .window }}]))\n"),
            "sum(rate(x[$window])) / sum(rate(y[$window]))"
        );
        assert_eq!(
            window_placeholder("x{a=\"{{.other}}\"}[{{.window}}:]"),
            "x{a=\"{{.other}}\"}[$window:]"
        );
        assert_eq!(window_placeholder("unclosed {{.window"), "unclosed {{.window");
    }

    #[test]
    fn kubernetes_names() {
        assert_eq!(
            kubernetes_name("myservice-requests-availability"),
            "myservice-requests-availability"
        );
        assert_eq!(kubernetes_name("My_Service/Latency "), "my-service-latency");
        assert_eq!(kubernetes_name("--"), "imported");
    }

    #[test]
    fn top_level_lists_are_one_document_per_item() {
        let docs = documents(&[("f.yaml".into(), "- {kind: SLI}\n- {kind: SLO}\n---\nkind: SLO\n".into())]).unwrap();
        let at: Vec<&str> = docs.iter().map(|d| d.at.as_str()).collect();
        assert_eq!(
            at,
            [
                "f.yaml: document 1 item 1",
                "f.yaml: document 1 item 2",
                "f.yaml: document 2"
            ]
        );
        let err = documents(&[("bad.yaml".into(), "a: [".into())]).unwrap_err();
        assert!(err.starts_with("bad.yaml: document 1: "), "{err}");
    }
}
