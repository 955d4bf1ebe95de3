//! Repositories and work trees outside the root: every git operation on them is refused and
//! nothing outside changes.

use super::*;

/// A hash of a folder outside the root that a repository inside points at.
struct Outside {
    dir: std::path::PathBuf,
    before: blake3::Hash,
}

impl Outside {
    /// A repository outside the root with a commit on `main` and a branch `x` that adds
    /// `authorized_keys`.
    fn new(f: &Fixture) -> anyhow::Result<Self> {
        let dir = f.env.tmp.path().join("elsewhere");
        std::fs::create_dir(&dir)?;
        git(&dir, &["init", "-q", "-b", "main"])?;
        git(&dir, &["config", "user.name", "o"])?;
        git(&dir, &["config", "user.email", "o@example.com"])?;
        std::fs::write(dir.join("secret.txt"), "outside secret\n")?;
        git(&dir, &["add", "secret.txt"])?;
        git(&dir, &["commit", "-q", "-m", "outside secret"])?;
        git(&dir, &["switch", "-q", "-c", "x"])?;
        std::fs::write(dir.join("authorized_keys"), "ssh-ed25519 AAAA attacker\n")?;
        git(&dir, &["add", "authorized_keys"])?;
        git(&dir, &["commit", "-q", "-m", "keys"])?;
        git(&dir, &["switch", "-q", "main"])?;
        let before = super::super::hash_tree(&dir);
        Ok(Self { dir, before })
    }

    fn assert_unchanged(&self, case: &str) {
        assert_eq!(
            super::super::hash_tree(&self.dir),
            self.before,
            "{case}: the repository outside the root changed"
        );
    }
}

/// Every git operation in `dir` is refused with `rule`, and nothing outside changes.
async fn all_refused(f: &Fixture, out: &Outside, dir: &str, rule: &str) -> anyhow::Result<()> {
    let d = json!({ "dir": dir });
    for (op, body) in [
        (Op::GitStatus, d.clone()),
        (Op::GitLog, d.clone()),
        (Op::GitDiff, d.clone()),
        (Op::GitBranchList, d.clone()),
        (Op::GitAdd, json!({ "dir": dir, "paths": ["."] })),
        (
            Op::GitCommit,
            json!({ "dir": dir, "message": "m", "all": true }),
        ),
        (Op::GitCheckout, json!({ "dir": dir, "branch": "x" })),
        (
            Op::GitBranchCreate,
            json!({ "dir": dir, "name": "y", "checkout": true }),
        ),
        (Op::GitPull, json!({ "dir": dir, "remote": "origin" })),
        (Op::GitPush, json!({ "dir": dir, "remote": "origin" })),
    ] {
        let e = f.refused(op, body, rule).await?;
        assert!(
            !e.message.contains("outside secret"),
            "{}: {}",
            op.as_str(),
            e.message
        );
        out.assert_unchanged(&format!("{} in {dir}", op.as_str()));
    }
    Ok(())
}

#[tokio::test]
async fn repositories_and_work_trees_outside_the_root_are_refused() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    let out = Outside::new(&f)?;
    let outside_git = out.dir.join(".git");

    // A `.git` file naming a git directory outside.
    std::fs::create_dir(f.root.join("gitfile"))?;
    std::fs::write(
        f.root.join("gitfile/.git"),
        format!("gitdir: {}\n", outside_git.display()),
    )?;
    all_refused(&f, &out, "gitfile", "repository_outside_root").await?;

    // A `.git` symbolic link to it.
    std::fs::create_dir(f.root.join("gitlink"))?;
    symlink(&outside_git, f.root.join("gitlink/.git"))?;
    all_refused(&f, &out, "gitlink", "repository_outside_root").await?;

    // A committed or pulled bare-repository layout (HEAD, config, objects, refs) whose config
    // makes the sentinel its work tree: git_checkout would write authorized_keys there.
    let bare = f.root.join("bare");
    git(
        &f.root,
        &[
            "clone",
            "-q",
            "--bare",
            &out.dir.display().to_string(),
            "bare",
        ],
    )?;
    git(&bare, &["config", "core.bare", "false"])?;
    git(
        &bare,
        &["config", "core.worktree", &f.sentinel.display().to_string()],
    )?;
    all_refused(&f, &out, "bare", "bare_repository").await?;

    // A nested repository whose core.worktree is outside.
    git(
        &f.root,
        &["clone", "-q", &out.dir.display().to_string(), "nested"],
    )?;
    git(&f.root.join("nested"), &["branch", "-q", "x", "origin/x"])?;
    git(
        &f.root.join("nested"),
        &["config", "core.worktree", &f.sentinel.display().to_string()],
    )?;
    all_refused(&f, &out, "nested", "repository_outside_root").await?;

    // Alternates: objects read from a repository outside.
    git(
        &f.root,
        &["clone", "-q", &out.dir.display().to_string(), "borrowing"],
    )?;
    std::fs::write(
        f.root.join("borrowing/.git/objects/info/alternates"),
        format!("{}\n", outside_git.join("objects").display()),
    )?;
    all_refused(&f, &out, "borrowing", "alternates_outside_root").await?;

    // Inside the git directory there is no work tree.
    f.refused(Op::GitStatus, json!({ "dir": ".git" }), "no_work_tree")
        .await?;

    // The workspace's own repository with core.worktree outside: git_checkout would write
    // there.
    git(
        &f.root,
        &["config", "core.worktree", &out.dir.display().to_string()],
    )?;
    all_refused(&f, &out, "", "repository_outside_root").await?;
    git(&f.root, &["config", "--unset", "core.worktree"])?;
    f.ok::<GitStatus>(Op::GitStatus, json!({})).await?;
    f.assert_sentinel_unchanged("repositories outside");
    out.assert_unchanged("repositories outside");
    Ok(())
}
