//! What a permission request would do, as rows for the permission box and the CLI: an edit's
//! diff, a command with the folder it runs in, else the request's patterns. Everything from the
//! host is sanitised here.

use crate::view::diff::patch_rows;
use crate::view::text::{Look, Row, Span, Tone, sanitize};
use proto::ops::PermissionRequest;
use serde_json::Value;

/// Where a command runs when the request does not say: OpenCode runs tools in the workspace.
pub const WORKSPACE_DIR: &str = "the workspace folder";

/// The rows describing `request`, top to bottom.
pub fn detail(request: &PermissionRequest) -> Vec<Row> {
    let meta = |key: &str| request.metadata.get(key).and_then(Value::as_str);
    if let Some(command) = meta("command") {
        let mut rows: Vec<Row> = command
            .lines()
            .enumerate()
            .map(|(i, line)| {
                let lead = if i == 0 { "$ " } else { "  " };
                Row::new(vec![
                    Span::tone(lead, Tone::Muted),
                    Span::tone(sanitize(line), Tone::Code),
                ])
            })
            .collect();
        let dir = meta("workdir")
            .or_else(|| meta("cwd"))
            .map_or_else(|| WORKSPACE_DIR.to_owned(), sanitize);
        rows.push(Row::new(vec![Span::tone(format!("in {dir}"), Tone::Muted)]));
        return rows;
    }
    let patterns = sanitize(&request.patterns.join(" "));
    if let Some(diff) = meta("diff").filter(|d| !d.trim().is_empty()) {
        let mut rows = vec![Row::new(vec![Span::new(
            patterns,
            Look::tone(Tone::FileHeader).bold(),
        )])];
        // The `Index:` and `====` lines repeat the path; the hunks are what matters.
        let body: String = diff
            .lines()
            .filter(|l| !l.starts_with("Index: ") && !l.starts_with("===="))
            .map(|l| format!("{l}\n"))
            .collect();
        rows.extend(patch_rows(&body));
        return rows;
    }
    let what = if patterns.is_empty() {
        "(no details given)".to_owned()
    } else {
        patterns
    };
    vec![Row::new(vec![Span::tone(what, Tone::Code)])]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(permission: &str, patterns: &[&str], metadata: Value) -> PermissionRequest {
        PermissionRequest {
            id: "per_1".into(),
            session: "ses_1".into(),
            permission: permission.into(),
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
            metadata,
            always: vec!["*".into()],
        }
    }

    fn texts(rows: &[Row]) -> Vec<String> {
        rows.iter().map(Row::text).collect()
    }

    #[test]
    fn an_edit_shows_its_file_and_diff_coloured() {
        let r = request(
            "edit",
            &["notes/a.txt"],
            serde_json::json!({"diff": "Index: /w/notes/a.txt\n====\n--- /w/notes/a.txt\n+++ /w/notes/a.txt\n@@ -1 +1 @@\n-old\n+new\n"}),
        );
        let rows = detail(&r);
        assert_eq!(
            texts(&rows),
            [
                "notes/a.txt",
                "--- /w/notes/a.txt",
                "+++ /w/notes/a.txt",
                "@@ -1 +1 @@",
                "-old",
                "+new"
            ]
        );
        assert_eq!(rows[4].spans[0].look.tone, Tone::Removed);
        assert_eq!(rows[5].spans[0].look.tone, Tone::Added);
    }

    #[test]
    fn a_command_shows_every_line_and_where_it_runs() {
        let r = request(
            "bash",
            &["rm -rf build"],
            serde_json::json!({"command": "cd x &&\nrm -rf build \u{1b}[2J"}),
        );
        assert_eq!(
            texts(&detail(&r)),
            ["$ cd x &&", "  rm -rf build ", "in the workspace folder"]
        );
        let r = request(
            "bash",
            &["ls"],
            serde_json::json!({"command": "ls", "workdir": "/srv/w/sub"}),
        );
        assert_eq!(texts(&detail(&r)), ["$ ls", "in /srv/w/sub"]);
    }

    #[test]
    fn other_requests_show_their_patterns() {
        let r = request("webfetch", &["https://example.com"], Value::Null);
        assert_eq!(texts(&detail(&r)), ["https://example.com"]);
    }
}
