//! Parsing git's machine-readable outputs (sans-IO): `status --porcelain=v2 -z --branch`,
//! `log` with NUL-separated fields, `for-each-ref` with NUL-separated fields.

use proto::git::{
    GitBranch, GitBranches, GitCommitInfo, GitStatus, GitStatusEntry, MAX_STATUS_ENTRIES,
};

/// Parses `git status --porcelain=v2 --branch -z`.
pub fn status(out: &[u8]) -> GitStatus {
    let text = String::from_utf8_lossy(out);
    let mut st = GitStatus::default();
    let mut records = text.split('\0').filter(|r| !r.is_empty());
    while let Some(rec) = records.next() {
        if let Some(h) = rec.strip_prefix("# ") {
            let (key, val) = h.split_once(' ').unwrap_or((h, ""));
            match key {
                "branch.oid" if val != "(initial)" => st.head = Some(val.to_owned()),
                "branch.head" if val != "(detached)" => st.branch = Some(val.to_owned()),
                "branch.upstream" => st.upstream = Some(val.to_owned()),
                "branch.ab" => {
                    for n in val.split(' ') {
                        if let Some(a) = n.strip_prefix('+') {
                            st.ahead = a.parse().unwrap_or(0);
                        } else if let Some(b) = n.strip_prefix('-') {
                            st.behind = b.parse().unwrap_or(0);
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        let entry = match rec.as_bytes().first() {
            // 1 XY sub mH mI mW hH hI path
            Some(b'1') => changed(rec, 8, None),
            // 2 XY sub mH mI mW hH hI Xscore path, then the old path as the next record
            Some(b'2') => {
                let from = records.next().map(str::to_owned);
                changed(rec, 9, from)
            }
            // u XY sub m1 m2 m3 mW h1 h2 h3 path
            Some(b'u') => changed(rec, 10, None),
            Some(b'?') => Some(GitStatusEntry {
                path: rec.get(2..).unwrap_or_default().to_owned(),
                index: "?".into(),
                worktree: "?".into(),
                from: None,
            }),
            _ => None,
        };
        if let Some(e) = entry {
            if st.entries.len() == MAX_STATUS_ENTRIES {
                st.truncated = true;
                break;
            }
            st.entries.push(e);
        }
    }
    st
}

/// A `1`/`2`/`u` record: the XY field and the path after `fields` space-separated fields.
fn changed(rec: &str, fields: usize, from: Option<String>) -> Option<GitStatusEntry> {
    let mut parts = rec.splitn(fields + 1, ' ');
    let _kind = parts.next()?;
    let xy = parts.next()?;
    let path = parts.nth(fields - 2)?;
    let mut chars = xy.chars();
    Some(GitStatusEntry {
        path: path.to_owned(),
        index: chars.next()?.to_string(),
        worktree: chars.next()?.to_string(),
        from,
    })
}

/// The `--format` for [`log`]: id, author, time, subject, NUL-separated; records end with RS.
pub const LOG_FORMAT: &str = "--format=%H%x00%an%x00%at%x00%s%x1e";

/// Parses `git log` output in [`LOG_FORMAT`].
pub fn log(out: &[u8]) -> Vec<GitCommitInfo> {
    String::from_utf8_lossy(out)
        .split('\x1e')
        .filter_map(|rec| {
            let rec = rec.trim_start_matches('\n');
            let mut f = rec.split('\0');
            let id = f.next().filter(|s| !s.is_empty())?.to_owned();
            let author = f.next()?.to_owned();
            let time = f.next()?.parse().ok()?;
            let subject = f.next()?.to_owned();
            Some(GitCommitInfo {
                id,
                author,
                time,
                subject,
            })
        })
        .collect()
}

/// The `--format` for [`branches`].
pub const BRANCH_FORMAT: &str = "--format=%(HEAD)%00%(refname)%00%(upstream:short)";

/// Parses `git for-each-ref refs/heads refs/remotes` in [`BRANCH_FORMAT`]: local branches
/// first, then remote-tracking ones (without their symbolic `HEAD`), each sorted by name.
pub fn branches(out: &[u8]) -> GitBranches {
    let mut list = GitBranches::default();
    for line in String::from_utf8_lossy(out).lines() {
        let mut f = line.split('\0');
        let (Some(head), Some(refname)) = (f.next(), f.next()) else {
            continue;
        };
        let upstream = f.next().filter(|u| !u.is_empty()).map(str::to_owned);
        let current = head == "*";
        let (name, remote) = if let Some(n) = refname.strip_prefix("refs/heads/") {
            (n, false)
        } else if let Some(n) = refname.strip_prefix("refs/remotes/") {
            if n.ends_with("/HEAD") {
                continue;
            }
            (n, true)
        } else {
            continue;
        };
        if current {
            list.current = Some(name.to_owned());
        }
        list.branches.push(GitBranch {
            name: name.to_owned(),
            current,
            remote,
            upstream,
        });
    }
    list.branches
        .sort_by(|a, b| (a.remote, &a.name).cmp(&(b.remote, &b.name)));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_v2() {
        let out = b"# branch.oid 1234\0# branch.head main\0# branch.upstream origin/main\0# branch.ab +2 -1\0\
1 .M N... 100644 100644 100644 aaaa bbbb src/a b.rs\0\
2 R. N... 100644 100644 100644 aaaa bbbb R100 new.rs\0old.rs\0\
u UU N... 100644 100644 100644 100644 a b c conflict.rs\0\
? untracked.txt\0";
        let s = status(out);
        assert_eq!(s.head.as_deref(), Some("1234"));
        assert_eq!(s.branch.as_deref(), Some("main"));
        assert_eq!(s.upstream.as_deref(), Some("origin/main"));
        assert_eq!((s.ahead, s.behind), (2, 1));
        let e: Vec<_> = s
            .entries
            .iter()
            .map(|e| {
                (
                    e.path.as_str(),
                    e.index.as_str(),
                    e.worktree.as_str(),
                    e.from.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            e,
            [
                ("src/a b.rs", ".", "M", None),
                ("new.rs", "R", ".", Some("old.rs")),
                ("conflict.rs", "U", "U", None),
                ("untracked.txt", "?", "?", None),
            ]
        );
        let s = status(b"# branch.oid (initial)\0# branch.head (detached)\0");
        assert_eq!((s.head, s.branch), (None, None));
    }

    #[test]
    fn log_and_branches() {
        let out = b"abc\0Ann\x001700000000\0first line\x1e\ndef\0Bob\x001700000001\0second\x1e\n";
        let l = log(out);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].id, "abc");
        assert_eq!(l[1].time, 1_700_000_001);
        assert_eq!(l[1].subject, "second");
        let out = b" \0refs/heads/zeta\0\n*\0refs/heads/main\0origin/main\n \0refs/remotes/origin/HEAD\0\n \0refs/remotes/origin/main\0\n";
        let b = branches(out);
        assert_eq!(b.current.as_deref(), Some("main"));
        let names: Vec<_> = b
            .branches
            .iter()
            .map(|b| (b.name.as_str(), b.remote))
            .collect();
        assert_eq!(
            names,
            [("main", false), ("zeta", false), ("origin/main", true)]
        );
        assert_eq!(b.branches[0].upstream.as_deref(), Some("origin/main"));
    }
}
