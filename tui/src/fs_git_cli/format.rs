//! The text `cm-tui fs` and `cm-tui git` print: listings, statuses, branches and clone progress.
//! Everything from the host is sanitized: no escape sequences or control characters reach the
//! terminal.

use crate::view::text::sanitize;
use proto::fs::{FsKind, FsListing};
use proto::git::{GitBranches, GitCloned, GitProgress, GitStatus};

/// One progress line: `Receiving objects  45%  1.2 MiB`.
pub(super) fn format_progress(p: &GitProgress) -> String {
    let mut line = sanitize(&p.phase);
    if let Some(pc) = p.percent {
        line.push_str(&format!(" {pc:>3}%"));
    }
    if let Some(b) = p.bytes {
        #[allow(clippy::cast_precision_loss, reason = "a display value")]
        let mib = b as f64 / (1024.0 * 1024.0);
        line.push_str(&format!("  {mib:.1} MiB"));
    }
    line
}

/// What a finished clone prints.
pub(super) fn format_cloned(url: &str, c: &GitCloned) -> String {
    let at = match (&c.branch, &c.head) {
        (Some(b), Some(h)) => format!(
            " (branch {} at {})",
            sanitize(b),
            sanitize(&h.chars().take(10).collect::<String>())
        ),
        (None, Some(h)) => format!(
            " (at {})",
            sanitize(&h.chars().take(10).collect::<String>())
        ),
        _ => " (an empty repository)".into(),
    };
    format!("cloned {} into {}{at}", sanitize(url), sanitize(&c.dir))
}

/// A listing as text: one line per entry, a kind letter, the name, the size of files. Names
/// come from the host: escape sequences and control characters are dropped.
pub fn format_listing(l: &FsListing) -> String {
    let mut out = String::new();
    for e in &l.entries {
        let name = sanitize(&e.name);
        let line = match e.kind {
            FsKind::Dir => format!("d  {name}/\n"),
            FsKind::File => format!("f  {name:<40} {}\n", e.size.unwrap_or(0)),
            FsKind::Symlink => format!("l  {name} (link, not followed)\n"),
            FsKind::Special => format!("s  {name} (device, socket or FIFO)\n"),
        };
        out.push_str(&line);
    }
    if l.entries.is_empty() {
        out.push_str("(empty)\n");
    }
    if l.truncated {
        out.push_str(&format!(
            "… more entries not shown (first {})\n",
            l.entries.len()
        ));
    }
    out
}

/// A status as text, like `git status --short --branch` (names sanitized).
pub fn format_status(s: &GitStatus) -> String {
    let mut out = format!(
        "## {}",
        sanitize(s.branch.as_deref().unwrap_or("HEAD (detached)"))
    );
    if let Some(u) = &s.upstream {
        out.push_str(&format!("...{}", sanitize(u)));
        if s.ahead > 0 || s.behind > 0 {
            out.push_str(&format!(" [ahead {}, behind {}]", s.ahead, s.behind));
        }
    }
    out.push('\n');
    for e in &s.entries {
        let from = e
            .from
            .as_deref()
            .map(|f| format!("{} -> ", sanitize(f)))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}{} {from}{}\n",
            sanitize(&e.index),
            sanitize(&e.worktree),
            sanitize(&e.path)
        ));
    }
    if s.truncated {
        out.push_str("… more changes not shown\n");
    }
    out
}

pub(super) fn format_branches(b: &GitBranches) -> String {
    b.branches
        .iter()
        .map(|br| {
            let mark = if br.current { '*' } else { ' ' };
            let prefix = if br.remote { "remotes/" } else { "" };
            let up = br
                .upstream
                .as_deref()
                .map(|u| format!(" [{}]", sanitize(u)))
                .unwrap_or_default();
            format!("{mark} {prefix}{}{up}\n", sanitize(&br.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::text::sanitize_text;
    use proto::fs::FsEntry;
    use proto::git::GitStatusEntry;

    const EVIL: &str = "a\u{1b}]0;pwned\u{7}b\u{1b}[31m\r\n";

    #[test]
    fn listings_and_statuses_carry_no_escape_sequences() {
        let l = FsListing {
            path: String::new(),
            entries: vec![FsEntry {
                name: EVIL.into(),
                kind: FsKind::File,
                size: Some(1),
            }],
            truncated: false,
        };
        let text = format_listing(&l);
        assert!(text.starts_with("f  ab "), "{text:?}");
        assert_eq!(text.lines().count(), 1, "{text:?}");
        let s = GitStatus {
            branch: Some(EVIL.into()),
            head: None,
            upstream: Some(EVIL.into()),
            ahead: 0,
            behind: 0,
            entries: vec![GitStatusEntry {
                path: EVIL.into(),
                index: "?".into(),
                worktree: "?".into(),
                from: Some(EVIL.into()),
            }],
            truncated: false,
        };
        let text = format_status(&s);
        assert_eq!(text, "## ab...ab\n?? ab -> ab\n");
    }

    #[test]
    fn clone_results_carry_no_escape_sequences() {
        let c = GitCloned {
            dir: EVIL.into(),
            branch: Some("main".into()),
            head: Some("0123456789abcdef".into()),
            progress: None,
        };
        assert_eq!(
            format_cloned(EVIL, &c),
            "cloned ab into ab (branch main at 0123456789)"
        );
    }

    #[test]
    fn progress_lines_are_typed_and_clean() {
        let p = GitProgress {
            phase: format!("Receiving{EVIL}"),
            percent: Some(45),
            bytes: Some(3 * 1024 * 1024 / 2),
        };
        assert_eq!(format_progress(&p), "Receivingab  45%  1.5 MiB");
    }

    #[test]
    fn multi_line_output_keeps_its_lines() {
        let patch = "+ok\u{1b}[2J\n-\u{1b}]0;t\u{7}gone\n";
        assert_eq!(sanitize_text(patch), "+ok\n-gone\n");
    }
}
