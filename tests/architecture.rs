//! The module structure as a reviewer checks it: the imports between the files of `src/` form
//! no circle, and nothing below the shell (`controller/`, `admission/`, `ui/`, `main.rs`) imports
//! the shell. Read from the `use` lines and paths of the code itself, tests left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The module path of a source file: `src/controller/policy.rs` → `controller::policy`,
/// `src/cache/mod.rs` → `cache`, `src/lib.rs` → ``.
fn module_of(file: &Path, src: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|p| p != "mod" && p != "lib" && p != "main")
        .collect();
    parts.join("::")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its tests (from the first `#[cfg(test)]` on) and comments.
fn code(text: &str) -> String {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end]
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path a file names: `crate::a::b::c` and `super::x`, resolved against the
/// modules that exist (the longest existing prefix).
fn imports(module: &str, is_mod_file: bool, code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    // A `use a::{b, c::d}` group names several paths: expand the braces one level deep.
    let mut paths = Vec::new();
    for (i, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        if i > 0 && code[..i].chars().last().is_some_and(ident) {
            continue;
        }
        let rest = &code[i..];
        let end = rest.find(|c: char| !(ident(c) || c == ':')).unwrap_or(rest.len());
        let head = rest[..end].trim_end_matches(':').to_string();
        if rest[end..].starts_with('{') {
            let close = rest[end..].find('}').map_or(rest.len(), |j| end + j);
            for item in rest[end + 1..close].split(',') {
                let item: String = item.trim().chars().take_while(|c| ident(*c) || *c == ':').collect();
                if !item.is_empty() && item != "self" {
                    paths.push(format!("{head}::{item}"));
                }
            }
        }
        paths.push(head);
    }
    for path in paths {
        let mut parts: Vec<&str> = path.split("::").collect();
        let base: Vec<String> = if parts[0] == "crate" {
            parts.remove(0);
            vec![]
        } else {
            // `super` of `a::b` (file a/b.rs) is `a`; of a mod.rs `a::b` it is `a` too.
            let mut base: Vec<String> = module.split("::").filter(|s| !s.is_empty()).map(String::from).collect();
            while parts.first() == Some(&"super") {
                parts.remove(0);
                base.pop();
            }
            let _ = is_mod_file;
            base
        };
        let mut full = base;
        full.extend(parts.iter().map(|s| s.to_string()));
        while !full.is_empty() {
            let candidate = full.join("::");
            if modules.contains(&candidate) {
                if candidate != module {
                    out.insert(candidate);
                }
                break;
            }
            full.pop();
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let modules: BTreeSet<String> = all
        .iter()
        .map(|f| module_of(f, &src))
        .filter(|m| !m.is_empty())
        .collect();
    let mut graph = BTreeMap::new();
    for file in &all {
        let module = module_of(file, &src);
        if module.is_empty() {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let is_mod_file = file.file_name().is_some_and(|n| n == "mod.rs");
        let mut edges = imports(&module, is_mod_file, &code(&text), &modules);
        // A parent module's file names its children to declare them; only `use` of a child
        // from the parent is an import, and that runs down.
        edges.retain(|e| e != &module);
        graph.insert(module, edges);
    }
    graph
}

#[test]
fn no_module_imports_itself_through_others() {
    let graph = graph();
    // Depth-first search for a back edge; report the circle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        circles: &mut Vec<Vec<String>>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(i) = stack.iter().position(|s| s == m) {
            circles.push(stack[i..].to_vec());
            return;
        }
        stack.push(m.to_string());
        for next in graph.get(m).into_iter().flatten() {
            visit(next, graph, stack, done, circles);
        }
        stack.pop();
        done.insert(m.to_string());
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "import circles: {circles:?}");
}

#[test]
fn nothing_below_the_shell_imports_it() {
    let graph = graph();
    let shell = |m: &str| {
        ["controller", "admission", "ui"]
            .iter()
            .any(|s| m == *s || m.strip_prefix(s).is_some_and(|rest| rest.starts_with("::")))
    };
    let upward: Vec<(String, String)> = graph
        .iter()
        .filter(|(m, _)| !shell(m))
        .flat_map(|(m, edges)| edges.iter().filter(|e| shell(e)).map(move |e| (m.clone(), e.clone())))
        .collect();
    assert!(upward.is_empty(), "imports of the shell from below it: {upward:?}");
    // The check sees what it should: the shell does import what lies below it.
    assert!(
        graph["controller::policy"].contains("policy::status"),
        "{:?}",
        graph["controller::policy"]
    );
}
