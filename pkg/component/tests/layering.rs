//! The layering rule of docs/architecture.md: components reach cluster state only through
//! the API. No crate outside the apiserver's own (and the tools that start apiservers)
//! may depend on the store or the apiserver, directly or through another crate.

use std::collections::{BTreeMap, BTreeSet};

/// Crates allowed to link the store or the apiserver.
const ALLOWED: &[&str] = &[
    "rkube-store",
    "rkube-apiserver",
    "rkube-apiserver-cmd",
    "rkube-e2e",
];
const FORBIDDEN: &[&str] = &["rkube-store", "rkube-apiserver"];

#[test]
fn no_component_crate_depends_on_the_store_or_the_apiserver() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Workspace crate → the workspace crates it depends on for building (not for tests).
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let members: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        let normal = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null() || d["kind"] == "build")
            .map(|d| d["name"].as_str().unwrap().to_string())
            .filter(|d| members.contains(d))
            .collect();
        deps.insert(name, normal);
    }
    assert!(deps.contains_key("rkube-runtime") && deps.contains_key("rkube-component"));
    let mut offenders = Vec::new();
    for krate in deps.keys().filter(|k| !ALLOWED.contains(&k.as_str())) {
        // Everything `krate` links, transitively.
        let mut seen = BTreeSet::new();
        let mut stack = vec![krate.clone()];
        while let Some(k) = stack.pop() {
            for d in deps.get(&k).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        for f in FORBIDDEN {
            if seen.contains(*f) {
                offenders.push(format!("{krate} links {f}"));
            }
        }
    }
    assert!(offenders.is_empty(), "layering broken: {offenders:?}");
}
