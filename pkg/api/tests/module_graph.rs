//! The crate's layering, checked from its source: which top-level module refers to which
//! (`crate::<module>` in code, not in comments, strings or tests), so that a cycle between
//! modules, a leaf that starts using the crate, or the client-side part reaching into the
//! `server` part fails here instead of growing back unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that must use nothing else of the crate, so anything may use them.
const LEAVES: &[&str] = &["field", "names", "quantity"];

/// A top-level module of the crate.
#[derive(Debug)]
struct Module {
    name: String,
    /// Gated by `#[cfg(feature = "server")]` in lib.rs.
    server: bool,
}

/// One reference from a module to another, with where it was found.
#[derive(Debug, Clone)]
struct Edge {
    to: String,
    at: String,
}

type Graph = BTreeMap<String, Vec<Edge>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules lib.rs declares, and whether each is part of the `server` feature.
fn modules(lib_rs: &str) -> Vec<Module> {
    let mut out = Vec::new();
    let mut server_next = false;
    for line in lib_rs.lines().map(str::trim) {
        if line.starts_with("#[cfg(feature = \"server\")]") {
            server_next = true;
            continue;
        }
        let decl = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("pub(crate) mod "))
            .or_else(|| line.strip_prefix("mod "));
        if let Some(name) = decl.and_then(|d| d.strip_suffix(';')) {
            out.push(Module {
                name: name.to_string(),
                server: server_next,
            });
        }
        if !line.is_empty() {
            server_next = false;
        }
    }
    out
}

/// The non-test source files of a module: `<m>.rs` and everything under `<m>/`, except
/// `tests.rs` files and `tests/` folders.
fn files_of(module: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let file = src().join(format!("{module}.rs"));
    if file.exists() {
        out.push(file);
    }
    let mut dirs = vec![src().join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if name != "tests" {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `src` with comments and the contents of string and char literals blanked out (line
/// breaks kept, so positions still name lines), and an inline `#[cfg(test)] mod tests {`
/// dropped with everything after it.
fn code_only(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && raw_string_at(&chars, i) {
            let mut hashes = 0;
            i += 1;
            while chars[i] == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push_str("\"\"");
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\n', '\'', '\u{7f}'.
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    match out.find("#[cfg(test)]\nmod tests {") {
        Some(at) => out[..at].to_string(),
        None => out,
    }
}

/// Whether a raw string literal (`r"..."`, `r#"..."#`) starts at `i`, not an identifier
/// ending in `r`.
fn raw_string_at(chars: &[char], i: usize) -> bool {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// The top-level modules a piece of code names through `crate::`: `crate::status::Status`,
/// `crate::{field, names::is_qualified_name}`.
fn crate_references(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate") {
            let before = &rest[..at];
            let after = &rest[at + "crate".len()..];
            rest = after;
            let boundary = !before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$');
            let Some(path) = after.trim_start().strip_prefix("::") else {
                continue;
            };
            if !boundary {
                continue;
            }
            let path = path.trim_start();
            if let Some(group) = path.strip_prefix('{') {
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.push((n + 1, first_ident(&item)));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                out.push((n + 1, first_ident(&item)));
            } else {
                out.push((n + 1, first_ident(path)));
            }
        }
    }
    out.retain(|(_, m)| !m.is_empty() && m != "self");
    out
}

fn first_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn graph(modules: &[Module]) -> Graph {
    let names: BTreeSet<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    let mut g = Graph::new();
    for m in modules {
        let edges = g.entry(m.name.clone()).or_default();
        for file in files_of(&m.name) {
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            let shown = file
                .strip_prefix(src())
                .unwrap_or(&file)
                .display()
                .to_string();
            for (line, to) in crate_references(&code_only(&text)) {
                if to != m.name && names.contains(to.as_str()) {
                    edges.push(Edge {
                        to,
                        at: format!("src/{shown}:{line}"),
                    });
                }
            }
        }
    }
    g
}

/// A cycle of `g` as the modules along it (first repeated last), if there is one.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        g: &Graph,
        at: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(at.to_string(), Mark::OnPath);
        path.push(at.to_string());
        for e in g.get(at).into_iter().flatten() {
            match marks.get(&e.to).copied().unwrap_or(Mark::New) {
                Mark::OnPath => {
                    let start = path.iter().position(|m| *m == e.to).expect("on the path");
                    let mut cycle = path[start..].to_vec();
                    cycle.push(e.to.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(g, &e.to, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(at.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for start in g.keys() {
        if marks.get(start).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(c) = visit(g, start, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// Where `from` refers to `to`, for messages.
fn sites(g: &Graph, from: &str, to: &str) -> Vec<String> {
    g[from]
        .iter()
        .filter(|e| e.to == to)
        .map(|e| e.at.clone())
        .collect()
}

fn crate_graph() -> (Vec<Module>, Graph) {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs is readable");
    let modules = modules(&lib);
    let g = graph(&modules);
    (modules, g)
}

#[test]
fn top_level_modules_form_no_cycle() {
    let (_, g) = crate_graph();
    if let Some(cycle) = find_cycle(&g) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                format!(
                    "{} -> {} ({})",
                    w[0],
                    w[1],
                    sites(&g, &w[0], &w[1]).join(", ")
                )
            })
            .collect();
        panic!(
            "modules refer to each other in a cycle:\n  {}",
            steps.join("\n  ")
        );
    }
}

#[test]
fn leaf_modules_use_nothing_else_of_the_crate() {
    let (_, g) = crate_graph();
    for leaf in LEAVES {
        let edges = g
            .get(*leaf)
            .unwrap_or_else(|| panic!("lib.rs declares {leaf}"));
        assert!(
            edges.is_empty(),
            "{leaf} must stay a leaf, but refers to {:?}",
            edges.iter().map(|e| (&e.to, &e.at)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_client_side_part_never_uses_the_server_part() {
    let (modules, g) = crate_graph();
    let server: BTreeSet<&str> = modules
        .iter()
        .filter(|m| m.server)
        .map(|m| m.name.as_str())
        .collect();
    assert!(server.contains("registry") && server.contains("openapi"));
    for m in modules.iter().filter(|m| !m.server) {
        for e in &g[&m.name] {
            assert!(
                !server.contains(e.to.as_str()),
                "{} is compiled without the server feature but uses {} at {}",
                m.name,
                e.to,
                e.at
            );
        }
    }
}

#[test]
fn the_graph_sees_the_references_it_should() {
    // Guards the three tests above against passing because nothing was found.
    let (modules, g) = crate_graph();
    assert!(modules.len() >= 15, "{modules:?}");
    for (from, to) in [
        ("status", "field"),
        ("selectors", "names"),
        ("registry", "kinds"),
        ("kinds", "validation"),
        ("openapi", "registry"),
    ] {
        assert!(!sites(&g, from, to).is_empty(), "no edge {from} -> {to}");
    }
}

#[test]
fn a_cycle_in_a_made_up_graph_is_found() {
    let edge = |to: &str| Edge {
        to: to.to_string(),
        at: String::new(),
    };
    let mut g = Graph::new();
    g.insert("a".into(), vec![edge("b")]);
    g.insert("b".into(), vec![edge("c")]);
    g.insert("c".into(), vec![]);
    assert_eq!(find_cycle(&g), None);
    g.get_mut("c").unwrap().push(edge("a"));
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn references_are_read_from_code_only() {
    let src = r##"
//! Talks about crate::doc_only.
use crate::{field::FieldPath, names};
use crate::status::Status; // and crate::in_a_comment
let s = "crate::in_a_string";
let r = r#"crate::in_a_raw_string"#;
let q = '"'; let t = crate::after_a_quote_char::x();
/* crate::in_a_block */ fn f() -> crate::kinds::Kind {}
#[cfg(test)]
mod tests {
    use crate::only_in_tests;
}
"##;
    let found: Vec<String> = crate_references(&code_only(src))
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(
        found,
        ["field", "names", "status", "after_a_quote_char", "kinds"]
    );
}
