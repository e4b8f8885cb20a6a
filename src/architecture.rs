//! The architecture's invariants as a test: it reads `src/` and `ARCHITECTURE.md` and fails
//! when a file lacks its `//!` line, an AWS SDK type leaves its adapter, axum leaves the
//! transport, the environment is read outside the settings, modules import each other in a
//! cycle (top-level modules, or sibling files inside one), or the code map's "depends on"
//! column differs from what the code imports. Each check is a function over (path, text)
//! pairs, and each is also run on a planted violation, so none of them can pass vacuously.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Files that may name AWS SDK crates: the shared SDK configuration and the two adapters.
const SDK_FILES: [&str; 4] = [
    "src/aws.rs",
    "src/store/dynamo.rs",
    "src/feedback/kinesis.rs",
    "src/objects/s3.rs",
];

/// Where axum may appear: the transport and the composition root that binds it.
fn may_use_axum(path: &str) -> bool {
    path.starts_with("src/http/") || path == "src/app.rs"
}

/// The one file that reads the environment (through clap's `env` attributes and nothing
/// else).
const SETTINGS_FILE: &str = "src/settings.rs";

/// This file, which spells out the patterns it looks for.
const SELF: &str = "src/architecture.rs";

type Sources = Vec<(String, String)>;
type Graph = BTreeMap<String, BTreeSet<String>>;

fn read_sources(root: &Path) -> Sources {
    fn walk(dir: &Path, root: &Path, out: &mut Sources) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("a readable source file");
                out.push((rel, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("src"), root, &mut out);
    out
}

/// The code of a file without its comments (line comments and doc comments), so that prose
/// naming a module or a crate is not taken for a use of it.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file belongs to: `src/http/v1.rs` -> `http`, `src/app.rs` -> `app`.
fn top_module(path: &str) -> &str {
    let rest = path.strip_prefix("src/").unwrap_or(path);
    let first = rest.split('/').next().unwrap_or(rest);
    first.strip_suffix(".rs").unwrap_or(first)
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first path segments after every `prefix` (`crate::`, `super::`, `encore::`),
/// `crate::{a, b::c}` groups included.
fn segments_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the group's first level: `{a, b::{c, d}}` names a and b.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                        out.insert(ident_at(&group[i..]).to_owned());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(rest);
            if !name.is_empty() {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

/// Top-level module -> the top-level modules its files import (`main` imports through the
/// library's name).
fn module_graph(sources: &Sources) -> Graph {
    let modules: BTreeSet<&str> = sources.iter().map(|(p, _)| top_module(p)).collect();
    let mut graph = Graph::new();
    for (path, text) in sources {
        let from = top_module(path);
        if from == "lib" || path == SELF {
            continue;
        }
        let code = code_of(text);
        let prefix = if from == "main" {
            "encore::"
        } else {
            "crate::"
        };
        let deps = graph.entry(from.to_owned()).or_default();
        for to in segments_after(&code, prefix) {
            if to != from && modules.contains(to.as_str()) {
                deps.insert(to);
            }
        }
    }
    graph
}

/// Inside each directory module: sibling file -> the siblings it imports (`super::x` or
/// `crate::m::x`). `mod.rs` is left out: it declares and re-exports its children.
fn sibling_graphs(sources: &Sources) -> BTreeMap<String, Graph> {
    let mut by_dir: BTreeMap<String, Vec<(&str, &str)>> = BTreeMap::new();
    for (path, text) in sources {
        let Some((dir, file)) = path.rsplit_once('/') else {
            continue;
        };
        if dir == "src" || file == "mod.rs" {
            continue;
        }
        by_dir.entry(dir.to_owned()).or_default().push((file, text));
    }
    let mut out = BTreeMap::new();
    for (dir, files) in by_dir {
        let names: BTreeSet<&str> = files
            .iter()
            .map(|(f, _)| f.strip_suffix(".rs").unwrap_or(f))
            .collect();
        let crate_path = format!(
            "crate::{}::",
            dir.trim_start_matches("src/").replace('/', "::")
        );
        let mut graph = Graph::new();
        for (file, text) in &files {
            let from = file.strip_suffix(".rs").unwrap_or(file);
            let code = code_of(text);
            let mut deps = segments_after(&code, "super::");
            deps.extend(segments_after(&code, &crate_path));
            let entry = graph.entry(from.to_owned()).or_default();
            for to in deps {
                if to != from && names.contains(to.as_str()) {
                    entry.insert(to);
                }
            }
        }
        out.insert(dir, graph);
    }
    out
}

/// Every cycle's path (`a -> b -> a`), found by depth-first search; empty when acyclic.
fn cycles(graph: &Graph) -> Vec<String> {
    fn visit<'g>(
        node: &'g str,
        graph: &'g Graph,
        path: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
        found: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<&str> = path[at..].to_vec();
            cycle.push(node);
            found.push(cycle.join(" -> "));
            return;
        }
        if !done.insert(node) {
            return;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done, found);
        }
        path.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

fn missing_module_docs(sources: &Sources) -> Vec<String> {
    sources
        .iter()
        .filter(|(_, text)| {
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|(path, _)| format!("{path} does not open with a `//!` line saying what it owns"))
        .collect()
}

fn misplaced(
    sources: &Sources,
    needles: &[&str],
    allowed: impl Fn(&str) -> bool,
    what: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in sources {
        if path == SELF || allowed(path) {
            continue;
        }
        for (n, line) in code_of(text).lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle)) {
                out.push(format!("{path}:{}: {what}: {}", n + 1, line.trim()));
            }
        }
    }
    out
}

fn sdk_outside_adapters(sources: &Sources) -> Vec<String> {
    misplaced(
        sources,
        &["aws_sdk_", "aws_config", "aws_smithy", "aws_types"],
        |p| SDK_FILES.contains(&p),
        "an AWS SDK name outside its adapter",
    )
}

fn axum_outside_http(sources: &Sources) -> Vec<String> {
    misplaced(
        sources,
        &["axum"],
        may_use_axum,
        "axum outside src/http and the composition root",
    )
}

fn environment_outside_settings(sources: &Sources) -> Vec<String> {
    misplaced(
        sources,
        &["env::var", "env::vars", "var_os(", "dotenv"],
        |p| p == SETTINGS_FILE,
        "the environment read outside the settings",
    )
}

/// ARCHITECTURE.md's code map: `src/<module>` row -> the modules its "depends on" column
/// names in backticks.
fn code_map(doc: &str, modules: &BTreeSet<String>) -> Graph {
    let mut map = Graph::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `src/x` | owns | depends on |" splits into ["", path, owns, depends, ""].
        if cells.len() < 5 {
            continue;
        }
        let Some(path) = cells[1]
            .strip_prefix("`src/")
            .and_then(|p| p.strip_suffix('`'))
        else {
            continue;
        };
        let module = path.trim_end_matches('/').trim_end_matches(".rs");
        if module.contains('/') {
            continue;
        }
        let deps = cells[3]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|name| modules.contains(*name))
            .map(str::to_owned)
            .collect();
        map.insert(module.to_owned(), deps);
    }
    map
}

fn code_map_differences(graph: &Graph, doc: &str) -> Vec<String> {
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    let documented = code_map(doc, &modules);
    let mut out = Vec::new();
    for (module, deps) in graph {
        match documented.get(module) {
            None => out.push(format!("ARCHITECTURE.md has no code-map row for src/{module}")),
            Some(doc_deps) if doc_deps != deps => out.push(format!(
                "ARCHITECTURE.md says src/{module} depends on {doc_deps:?}; the code imports {deps:?}"
            )),
            Some(_) => {}
        }
    }
    out
}

#[test]
fn the_source_tree_keeps_the_architecture() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = read_sources(root);
    assert!(
        sources.len() > 50,
        "read {} files: not the source tree",
        sources.len()
    );
    let graph = module_graph(&sources);
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut problems = missing_module_docs(&sources);
    problems.extend(sdk_outside_adapters(&sources));
    problems.extend(axum_outside_http(&sources));
    problems.extend(environment_outside_settings(&sources));
    problems.extend(
        cycles(&graph)
            .into_iter()
            .map(|c| format!("import cycle: {c}")),
    );
    for (dir, siblings) in sibling_graphs(&sources) {
        problems.extend(
            cycles(&siblings)
                .into_iter()
                .map(|c| format!("import cycle inside {dir}: {c}")),
        );
    }
    problems.extend(code_map_differences(&graph, &doc));
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[cfg(test)]
mod planted {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Sources {
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn a_top_level_cycle_is_found_through_a_use_group() {
        let t = tree(&[
            ("src/app.rs", "//! a\nuse crate::http::Router;\n"),
            ("src/http/mod.rs", "//! h\nuse crate::{domain::X, say};\n"),
            (
                "src/say.rs",
                "//! s\nuse crate::app::Parts; // crate::store in a comment\n",
            ),
            ("src/domain/mod.rs", "//! d\n"),
            ("src/store/mod.rs", "//! s\n"),
        ]);
        let graph = module_graph(&t);
        assert_eq!(graph["say"], BTreeSet::from(["app".to_owned()]));
        assert_eq!(cycles(&graph), ["app -> http -> say -> app"]);
    }

    #[test]
    fn a_cycle_between_sibling_files_is_found() {
        let t = tree(&[
            (
                "src/interaction/model.rs",
                "//! m\nuse super::parser::Parser;\n",
            ),
            (
                "src/interaction/parser.rs",
                "//! p\nuse crate::interaction::model::tokenize;\n",
            ),
            ("src/interaction/mod.rs", "//! i\nuse model::X;\n"),
        ]);
        let found = cycles(&sibling_graphs(&t)["src/interaction"]);
        assert_eq!(found, ["model -> parser -> model"]);
    }

    #[test]
    fn an_acyclic_graph_has_no_cycle() {
        let t = tree(&[
            ("src/a.rs", "//! a\nuse crate::b::X;\nuse crate::c::Y;\n"),
            ("src/b.rs", "//! b\nuse crate::c::Y;\n"),
            ("src/c.rs", "//! c\n"),
        ]);
        assert!(cycles(&module_graph(&t)).is_empty());
    }

    #[test]
    fn each_leak_is_reported_where_it_is() {
        let t = tree(&[
            (
                "src/service/play.rs",
                "//! p\nuse aws_sdk_dynamodb::Client;\n",
            ),
            (
                "src/store/dynamo.rs",
                "//! d\nuse aws_sdk_dynamodb::Client;\n",
            ),
            ("src/skill/mod.rs", "//! s\nuse axum::Json;\n"),
            ("src/http/mod.rs", "//! h\nuse axum::Json;\n"),
            ("src/store/mod.rs", "//! s\nlet v = std::env::var(\"X\");\n"),
            ("src/settings.rs", "//! s\nlet v = std::env::var(\"X\");\n"),
            ("src/domain/mod.rs", "// no module doc\npub struct X;\n"),
        ]);
        assert_eq!(sdk_outside_adapters(&t).len(), 1);
        assert!(sdk_outside_adapters(&t)[0].starts_with("src/service/play.rs:2"));
        assert_eq!(axum_outside_http(&t).len(), 1);
        assert!(axum_outside_http(&t)[0].starts_with("src/skill/mod.rs:2"));
        assert_eq!(environment_outside_settings(&t).len(), 1);
        assert!(environment_outside_settings(&t)[0].starts_with("src/store/mod.rs:2"));
        assert_eq!(missing_module_docs(&t).len(), 1);
        assert!(missing_module_docs(&t)[0].starts_with("src/domain/mod.rs"));
    }

    #[test]
    fn a_code_map_that_differs_from_the_imports_is_reported() {
        let graph = Graph::from([
            ("app".to_owned(), BTreeSet::from(["http".to_owned()])),
            ("http".to_owned(), BTreeSet::new()),
            ("store".to_owned(), BTreeSet::new()),
        ]);
        let doc = "| path | owns | depends on |\n|---|---|---|\n\
                   | `src/app.rs` | the root | `http`, `store` |\n\
                   | `src/http/` | the transport | nothing |\n";
        let found = code_map_differences(&graph, doc);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("src/app depends on"));
        assert!(found[1].contains("no code-map row for src/store"));
    }
}
