//! The immediate subfolders of roots that allow subworkspaces, as `workspace_candidates` lists
//! them: real folders only (links, files and hidden names left out), whether each is a git
//! repository and on which branch (read from `.git/HEAD`, no git run), and the workspace it
//! already is.

use proto::workspace::{MAX_CANDIDATES, WorkspaceCandidate, WorkspaceCandidates};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Most bytes of `.git/HEAD` read.
const MAX_HEAD: u64 = 512;

/// Lists the candidates of each `(root name, root path)`; `taken` maps workspace roots to
/// their names. Unreadable roots are skipped (and logged).
pub fn list(roots: &[(String, PathBuf)], taken: &BTreeMap<PathBuf, String>) -> WorkspaceCandidates {
    let mut out = WorkspaceCandidates::default();
    for (root_name, root) in roots {
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(workspace = %root_name, error = %e, "cannot list the root for workspace candidates");
                continue;
            }
        };
        let mut folders: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| super::added::check_folder(n).is_ok())
            .collect();
        folders.sort();
        for folder in folders {
            if out.candidates.len() == MAX_CANDIDATES {
                out.truncated = true;
                return out;
            }
            let path = root.join(&folder);
            let (is_git, branch) = git_state(&path);
            out.candidates.push(WorkspaceCandidate {
                root: root_name.clone(),
                workspace: taken.get(&path).cloned(),
                folder,
                is_git,
                branch,
            });
        }
    }
    out
}

/// Whether `dir` has a `.git` (a folder, or a file as in a linked worktree) and the branch its
/// `HEAD` names. A `.git` link is not followed (and not counted).
fn git_state(dir: &Path) -> (bool, Option<String>) {
    let git = dir.join(".git");
    let Ok(md) = std::fs::symlink_metadata(&git) else {
        return (false, None);
    };
    if md.is_file() {
        return (true, None);
    }
    if !md.is_dir() {
        return (false, None);
    }
    (true, head_branch(&git.join("HEAD")))
}

fn head_branch(head: &Path) -> Option<String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(head)
        .ok()?;
    let mut text = String::new();
    f.take(MAX_HEAD).read_to_string(&mut text).ok()?;
    let branch = text.trim().strip_prefix("ref: refs/heads/")?;
    (!branch.is_empty() && !branch.chars().any(char::is_control)).then(|| branch.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_visible_subfolders_are_candidates() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir_all(root.join("app/.git/refs")).unwrap();
        std::fs::write(root.join("app/.git/HEAD"), "ref: refs/heads/dev\n").unwrap();
        std::fs::create_dir(root.join("notes")).unwrap();
        std::fs::create_dir(root.join(".hidden")).unwrap();
        std::fs::write(root.join("file.txt"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("notes"), root.join("link")).unwrap();
        let taken = BTreeMap::from([(root.join("notes"), "n".to_owned())]);
        let got = list(&[("src".into(), root.clone())], &taken);
        assert_eq!(
            got.candidates,
            vec![
                WorkspaceCandidate {
                    root: "src".into(),
                    folder: "app".into(),
                    is_git: true,
                    branch: Some("dev".into()),
                    workspace: None,
                },
                WorkspaceCandidate {
                    root: "src".into(),
                    folder: "notes".into(),
                    is_git: false,
                    branch: None,
                    workspace: Some("n".into()),
                },
            ]
        );
        assert!(!got.truncated);
    }
}
