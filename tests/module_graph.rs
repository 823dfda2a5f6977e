//! The module tree has no import cycles: no two top-level modules of `src/` use
//! each other, even through others, and no two files of one module use each
//! other. Checked on the source itself: every `crate::…`, `super::…` and
//! `self::…` path outside a file's `#[cfg(test)] mod tests` (documentation
//! links count: a link is a dependency a reader follows).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module (`engine::runner`) with its source, tests left out.
fn modules() -> BTreeMap<String, String> {
    let mut modules = BTreeMap::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut folders = vec![root.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read src") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|extension| extension != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).expect("under src").with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|last| last == "mod") {
                parts.pop();
            }
            let source = std::fs::read_to_string(&path).expect("read a source file");
            let without_tests = match source.find("#[cfg(test)]\nmod tests") {
                Some(start) => source[..start].to_owned(),
                None => source,
            };
            modules.insert(parts.join("::"), without_tests);
        }
    }
    modules
}

/// Which modules each module's paths reach (the longest known module prefix of
/// each path), its own ancestors and descendants left out.
fn uses(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let path = regex::Regex::new(r"\b(crate(?:::[a-z_]+)+|super(?:::super)*(?:::[a-z_]+)*|self(?:::[a-z_]+)+)")
        .expect("a regex");
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in modules {
        let here: Vec<&str> = module.split("::").collect();
        for found in path.find_iter(source) {
            let segments: Vec<&str> = found.as_str().split("::").collect();
            let target: Vec<&str> = match segments[0] {
                "crate" => segments[1..].to_vec(),
                "self" => here.iter().copied().chain(segments[1..].iter().copied()).collect(),
                _ => {
                    let ups = segments.iter().take_while(|segment| **segment == "super").count();
                    let kept = here.len().saturating_sub(ups);
                    here[..kept]
                        .iter()
                        .copied()
                        .chain(segments[ups..].iter().copied())
                        .collect()
                }
            };
            let reached = (1..=target.len())
                .rev()
                .map(|length| target[..length].join("::"))
                .find(|candidate| modules.contains_key(candidate));
            if let Some(reached) = reached {
                let related = reached == *module
                    || module.starts_with(&format!("{reached}::"))
                    || reached.starts_with(&format!("{module}::"));
                if !related {
                    uses.entry(module.clone()).or_default().insert(reached);
                }
            }
        }
    }
    uses
}

/// The top-level module a module belongs to.
fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

#[test]
fn top_level_modules_form_no_cycle() {
    let modules = modules();
    let uses = uses(&modules);
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (module, reached) in &uses {
        for other in reached {
            if top(module) != top(other) {
                graph.entry(top(module)).or_default().insert(top(other));
            }
        }
    }
    assert!(graph.contains_key("engine"), "the graph was read: {graph:?}");
    // Depth-first search for a path back to where it started.
    for start in graph.keys() {
        let mut stack: Vec<Vec<&str>> = vec![vec![start]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = *path.last().expect("a path is never empty");
            for next in graph.get(last).into_iter().flatten() {
                assert!(
                    next != start,
                    "an import cycle between top-level modules: {} -> {start}",
                    path.join(" -> ")
                );
                if seen.insert(*next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
}

#[test]
fn no_two_files_of_a_module_use_each_other() {
    let modules = modules();
    let uses = uses(&modules);
    let mut pairs = Vec::new();
    for (module, reached) in &uses {
        for other in reached {
            if module < other && uses.get(other).is_some_and(|back| back.contains(module)) {
                pairs.push(format!("{module} <-> {other}"));
            }
        }
    }
    assert!(pairs.is_empty(), "modules that use each other: {pairs:#?}");
}
