//! A file's unified diff as rows, one per patch line (not wrapped: long lines are cut at the
//! panel's edge), coloured by kind, and where its hunks start.

use crate::view::text::{Look, Row, Span, Tone, sanitize};
use proto::ops::FileDiff;

/// The tone of one patch line.
fn tone(line: &str) -> Look {
    if line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff ") {
        Look::tone(Tone::FileHeader).bold()
    } else if line.starts_with("@@") {
        Look::tone(Tone::Hunk)
    } else if line.starts_with('+') {
        Look::tone(Tone::Added)
    } else if line.starts_with('-') {
        Look::tone(Tone::Removed)
    } else if line.starts_with('\\')
        || line.starts_with("index ")
        || line.starts_with("Index: ")
        || line.starts_with("====")
        || line.starts_with("new file mode")
        || line.starts_with("deleted file mode")
    {
        Look::tone(Tone::Muted)
    } else {
        Look::default()
    }
}

/// The patch of `file` as rows; an empty patch (binary file, rename) says so.
pub fn rows(file: &FileDiff) -> Vec<Row> {
    if file.patch.trim().is_empty() {
        return vec![Row::new(vec![Span::tone(
            format!("no text changes ({})", file.status),
            Tone::Muted,
        )])];
    }
    patch_rows(&file.patch)
}

/// A unified diff's lines as coloured rows.
pub fn patch_rows(patch: &str) -> Vec<Row> {
    patch
        .lines()
        .map(|line| Row::new(vec![Span::new(sanitize(line), tone(line))]))
        .collect()
}

/// Row indices where hunks (`@@`) start.
pub fn hunk_starts(file: &FileDiff) -> Vec<usize> {
    file.patch
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("@@"))
        .map(|(i, _)| i)
        .collect()
}

/// How many rows the patch of `file` takes.
pub fn row_count(file: &FileDiff) -> usize {
    if file.patch.trim().is_empty() {
        1
    } else {
        file.patch.lines().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_coloured_by_kind_and_hunks_found() {
        let f = FileDiff {
            file: "a.rs".into(),
            patch: "--- a/a.rs\n+++ b/a.rs\n@@ -1,2 +1,2 @@\n ctx\n-old\n+new\n@@ -9 +9 @@\n+x\n"
                .into(),
            additions: 2,
            deletions: 1,
            status: "modified".into(),
        };
        let rows = rows(&f);
        let tones: Vec<Tone> = rows.iter().map(|r| r.spans[0].look.tone).collect();
        assert_eq!(
            tones,
            [
                Tone::FileHeader,
                Tone::FileHeader,
                Tone::Hunk,
                Tone::Plain,
                Tone::Removed,
                Tone::Added,
                Tone::Hunk,
                Tone::Added
            ]
        );
        assert_eq!(hunk_starts(&f), [2, 6]);
        assert_eq!(row_count(&f), 8);
    }
}
