//! Every crate's module graph: dependencies run one way (in a subgraph, config → model →
//! lowering → execution → engine → schema, `lib.rs` composing them), so no module imports one
//! that imports it back. Read from the sources: `crate::<module>` in code, not in comments; a
//! module's own submodules (`plan/walk.rs`) count as part of it.

mod common;

use std::collections::{BTreeMap, BTreeSet};

/// Each module of the crate in `dir` (but `lib`) and the modules of the crate it names.
fn module_graph(dir: &std::path::Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(module) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|_| path.extension().is_some_and(|e| e == "rs"))
        else {
            continue;
        };
        if module == "lib" || module == "main" {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        if let Ok(children) = std::fs::read_dir(dir.join(module)) {
            for child in children {
                text.push_str(&std::fs::read_to_string(child.unwrap().path()).unwrap_or_default());
            }
        }
        let mut uses = BTreeSet::new();
        for line in text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
        {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                    .collect();
                if !name.is_empty() && name != module {
                    uses.insert(name);
                }
            }
        }
        graph.insert(module.to_owned(), uses);
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if next == start {
                let mut found = path.clone();
                found.push(start.to_owned());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn modules_import_one_way() {
    let root = common::repo_root();
    let subgraphs = std::fs::read_dir(root.join("subgraphs"))
        .unwrap()
        .map(|entry| entry.unwrap().path());
    let others = [
        "gateway", "cli", "demo", "testkit", "schema", "registry", "service",
    ]
    .map(|name| root.join(name));
    let mut checked = 0;
    let mut cycles = Vec::new();
    for dir in subgraphs.chain(others) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !dir.join("src/lib.rs").exists() && !dir.join("src/main.rs").exists() {
            continue;
        }
        let graph = module_graph(&dir.join("src"));
        for module in graph.keys() {
            if let Some(found) = cycle(&graph, module) {
                cycles.push(format!("{name}: {}", found.join(" → ")));
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} crates checked");
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn a_cycle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, uses)| (m.to_owned(), uses.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycle(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
    assert!(cycle(&graph, "d").is_none());
}
