//! The module graph of a crate at top-level-module granularity: an edge `a → b` when a file of
//! module `a` (`src/a.rs`, `src/a/**`) names `crate::b…` or reaches `b` through `super::`.
//! Paths inside inline `mod x { … }` blocks are resolved from the block, so a test module's
//! `use super::*` stays inside its file's module.

use crate::tokens::{Tok, tokens};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it uses.
pub(crate) type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir`, sorted.
pub(crate) fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a file relative to `src` (`net/admin.rs` → `[net, admin]`, `a/mod.rs` →
/// `[a]`); empty for the crate roots `lib.rs` and `main.rs`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    parts
}

fn ident(toks: &[Tok], i: usize) -> Option<&str> {
    match toks.get(i) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

/// The first names of a path group `{a, b::c, self}` starting after its `{` at `i`.
fn group_heads(toks: &[Tok], mut i: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 1;
    let mut at_item_start = true;
    while i < toks.len() && depth > 0 {
        match &toks[i] {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => depth -= 1,
            Tok::Punct(',') if depth == 1 => {
                at_item_start = true;
                i += 1;
                continue;
            }
            Tok::Ident(s) if depth == 1 && at_item_start => heads.push(s.clone()),
            _ => {}
        }
        at_item_start = false;
        i += 1;
    }
    heads
}

/// The first names after `::` at `i`: one name, or the heads of a group.
fn heads_after(toks: &[Tok], i: usize) -> Vec<String> {
    if toks.get(i) != Some(&Tok::PathSep) {
        return Vec::new();
    }
    match toks.get(i + 1) {
        Some(Tok::Ident(s)) => vec![s.clone()],
        Some(Tok::Punct('{')) => group_heads(toks, i + 2),
        _ => Vec::new(),
    }
}

/// The top-level modules one file (at `path` inside the crate) refers to.
fn references(src: &str, path: &[String]) -> BTreeSet<String> {
    let toks = tokens(src);
    let mut found = BTreeSet::new();
    // Inline `mod name {` blocks: (name, brace depth inside the block).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut pending_mod: Option<String> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Punct('{') => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    inline.push((name, depth));
                }
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Punct(';') => pending_mod = None,
            Tok::Ident(k) if k == "mod" => pending_mod = ident(&toks, i + 1).map(str::to_owned),
            Tok::Ident(k) if k == "crate" => {
                // `$crate` is a macro's crate; `pub(in crate::x)` is a visibility.
                let before = i.checked_sub(1).map(|j| &toks[j]);
                let is_path = !matches!(before, Some(Tok::Punct('$')))
                    && !matches!(before, Some(Tok::Ident(w)) if w == "in");
                if is_path {
                    found.extend(heads_after(&toks, i + 1));
                }
            }
            Tok::Ident(k) if k == "super" => {
                let mut supers = 0;
                let mut j = i;
                while ident(&toks, j) == Some("super") && toks.get(j + 1) == Some(&Tok::PathSep) {
                    supers += 1;
                    j += 2;
                }
                let here = path.len() + inline.len();
                if supers >= here && supers > 0 {
                    found.extend(heads_after(&toks, j - 1));
                }
                i = j.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The module graph of the crate whose sources are in `src`.
pub(crate) fn graph(src: &Path) -> Graph {
    let top: BTreeSet<String> = rust_files(src)
        .iter()
        .filter_map(|f| module_path(f.strip_prefix(src).ok()?).first().cloned())
        .collect();
    let mut graph = Graph::new();
    for file in rust_files(src) {
        let Ok(rel) = file.strip_prefix(src) else {
            continue;
        };
        let path = module_path(rel);
        let Some(own) = path.first().cloned() else {
            continue; // the crate root declares modules; it is not one
        };
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let uses = graph.entry(own.clone()).or_default();
        for target in references(&text, &path) {
            if target != own && top.contains(&target) {
                uses.insert(target);
            }
        }
    }
    graph
}

/// Every cycle's modules, one per strongly connected component of more than one module.
pub(crate) fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    // Tarjan's algorithm, recursive (module graphs are small).
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// One path around `component` (`a → b → a`), for the failure message.
pub(crate) fn describe(graph: &Graph, component: &[String]) -> String {
    let inside: BTreeSet<&str> = component.iter().map(String::as_str).collect();
    let start = component[0].as_str();
    // Breadth-first from `start` back to `start` within the component.
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![start, v];
                let mut at = v;
                while at != start {
                    at = prev[at];
                    path.push(at);
                }
                path.reverse();
                return path.join(" → ");
            }
            if !prev.contains_key(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    component.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_paths_groups_and_super_at_the_top_are_edges() {
        let src = "use crate::{a::x, b, self};\nuse super::c::y;\nfn f() { crate::d::g(); }";
        let found = references(src, &["m".into()]);
        assert_eq!(
            found,
            BTreeSet::from(["a", "b", "c", "d", "self"].map(String::from))
        );
    }

    #[test]
    fn super_inside_an_inline_module_or_a_nested_file_stays_in_its_module() {
        let src = "mod tests { use super::*; use super::helper; }\nuse super::sibling;";
        assert_eq!(references(src, &["m".into(), "n".into()]), BTreeSet::new());
        assert_eq!(
            references("mod tests { use super::super::other; }", &["m".into()]),
            BTreeSet::from(["other".to_owned()])
        );
    }

    #[test]
    fn a_cycle_is_found_and_described() {
        let mut g = Graph::new();
        g.entry("a".into()).or_default().insert("b".into());
        g.entry("b".into()).or_default().insert("c".into());
        g.entry("c".into()).or_default().insert("a".into());
        g.entry("d".into()).or_default().insert("a".into());
        let found = cycles(&g);
        assert_eq!(found, vec![vec!["a", "b", "c"]]);
        assert_eq!(describe(&g, &found[0]), "a → b → c → a");
    }
}
