//! Rules about the source tree itself (issue 16, "Done when"): no import cycles between the
//! top-level modules of a crate, and no source file over 600 lines without a reason written at
//! its top. They read the workspace's files; nothing is built or run.

mod modules;
mod tokens;

use std::path::{Path, PathBuf};

/// The workspace root (this file is in `relay/tests/source_rules/`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("relay/ has a parent")
        .to_path_buf()
}

/// The crates whose modules must not form import cycles: all of them.
const CRATES: [&str; 5] = [
    "proto/src",
    "relay/src",
    "relay/client/src",
    "agent/src",
    "tui/src",
];

fn cycles_of(krate: &str) -> Vec<String> {
    let graph = modules::graph(&workspace().join(krate));
    assert!(!graph.is_empty(), "{krate}: no modules found");
    modules::cycles(&graph)
        .iter()
        .map(|cycle| {
            format!(
                "{krate}: {} (modules {cycle:?})",
                modules::describe(&graph, cycle)
            )
        })
        .collect()
}

#[test]
fn no_import_cycles_between_the_modules_of_a_crate() {
    let found: Vec<String> = CRATES.iter().flat_map(|k| cycles_of(k)).collect();
    assert!(
        found.is_empty(),
        "import cycles between modules (move the shared part into its own module, or pass it \
         in):\n{}",
        found.join("\n")
    );
}

/// The longest a source file may be without a reason.
const MAX_LINES: usize = 600;

/// What the reason at a long file's top contains, in its leading comment block.
const REASON_MARKER: &str = "600 lines";

/// The folders whose `.rs` files the length rule covers.
const LENGTH_ROOTS: [&str; 4] = ["proto", "relay", "agent", "tui"];

/// Whether the leading comment block of `text` gives a reason for its length.
fn has_reason(text: &str) -> bool {
    text.lines()
        .take_while(|l| l.trim_start().starts_with("//") || l.trim().is_empty())
        .any(|l| l.contains(REASON_MARKER))
}

#[test]
fn no_source_file_over_600_lines_without_a_reason_at_its_top() {
    let root = workspace();
    let mut long = Vec::new();
    for dir in LENGTH_ROOTS {
        for file in modules::rust_files(&root.join(dir)) {
            let text = std::fs::read_to_string(&file).expect("readable source");
            let lines = text.lines().count();
            let rel = file
                .strip_prefix(&root)
                .expect("under the workspace")
                .to_string_lossy()
                .replace('\\', "/");
            if lines > MAX_LINES && !has_reason(&text) {
                long.push(format!("{rel}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines: split them by job, or say at their top why not (a `//!` \
         line containing \"{REASON_MARKER}\", e.g. \"Over 600 lines because …\"):\n{}",
        long.join("\n")
    );
}

#[test]
fn a_reason_counts_only_in_the_leading_comment_block() {
    assert!(has_reason(
        "//! Parser.\n//!\n//! Over 600 lines because it is one table.\nuse x;"
    ));
    assert!(!has_reason(
        "//! Parser.\nuse x;\n// Over 600 lines because it is one table.\n"
    ));
}
