//! Git operations: normal use, option injection through every argument, remotes that are local
//! paths, `file://` or `ext::`, and repository settings that would run programs.

use super::{Fixture, git};
use proto::git::{GitBranches, GitCommitted, GitDiff, GitLog, GitStatus};
use proto::header::Op;
use proto::wire_error::ErrorCode;
use serde_json::json;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

mod outside;
mod settings;

/// A local server that answers every connection with `401` asking for Basic credentials, then
/// closes it (an http remote that wants a password; for `git://` it is a protocol error). Its
/// port. It stops with the test's runtime.
async fn answer_401() -> anyhow::Result<u16> {
    answer(
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\
          Set-Cookie: session=1; Max-Age=3600\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec(),
    )
    .await
}

/// A local server that answers every connection with `response`, then closes it. Its port.
async fn answer(response: Vec<u8>) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let response = std::sync::Arc::new(response);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(&response).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Ok(port)
}

/// A "dumb" http remote whose only ref is `branch` at `id` (a commit the repository has, so a
/// pull succeeds without fetching objects), setting a cookie.
async fn dumb_remote(branch: &str, id: &str) -> anyhow::Result<u16> {
    let body = format!("{id}\trefs/heads/{branch}\n");
    answer(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
             Set-Cookie: session=1; Max-Age=3600\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
    .await
}

/// Makes HEAD a commit with a `gpgsig` header (a signature git would verify with the
/// configured program when showing it).
fn signed_commit(repo: &Path) -> anyhow::Result<()> {
    let tree = git(repo, &["rev-parse", "HEAD^{tree}"])?;
    let head = git(repo, &["rev-parse", "HEAD"])?;
    let raw = format!(
        "tree {}\nparent {}\nauthor A <a@example.com> 1700000000 +0000\n\
         committer A <a@example.com> 1700000000 +0000\n\
         gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n\
         \nsigned\n",
        tree.trim(),
        head.trim()
    );
    let path = repo.join(".git/signed-commit");
    std::fs::write(&path, raw)?;
    let p = path.display().to_string();
    let id = git(repo, &["hash-object", "-t", "commit", "-w", &p])?;
    std::fs::remove_file(&path)?;
    git(repo, &["update-ref", "HEAD", id.trim()])?;
    anyhow::ensure!(git(repo, &["cat-file", "commit", "HEAD"])?.contains("\ngpgsig "));
    Ok(())
}

#[tokio::test]
async fn git_operations_work_inside_the_root() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    std::fs::write(f.root.join("README.md"), "hello\nmore\n")?;
    std::fs::write(f.root.join("-dash.txt"), "new\n")?;
    let st: GitStatus = f.ok(Op::GitStatus, json!({})).await?;
    assert!(st.branch.is_some());
    let paths: Vec<_> = st
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.worktree.as_str()))
        .collect();
    assert!(paths.contains(&("README.md", "M")), "{paths:?}");
    assert!(paths.contains(&("-dash.txt", "?")), "{paths:?}");
    let d: GitDiff = f.ok(Op::GitDiff, json!({ "paths": ["README.md"] })).await?;
    assert!(d.patch.contains("+more"), "{}", d.patch);
    assert!(!d.truncated);
    let st: GitStatus = f.ok(Op::GitAdd, json!({ "paths": ["README.md"] })).await?;
    assert!(
        st.entries
            .iter()
            .any(|e| e.path == "README.md" && e.index == "M")
    );
    let staged: GitDiff = f.ok(Op::GitDiff, json!({ "staged": true })).await?;
    assert!(staged.patch.contains("+more"));
    // A message that looks like options is only a message.
    let c: GitCommitted = f
        .ok(
            Op::GitCommit,
            json!({ "message": "--amend --no-verify -c core.pager=x" }),
        )
        .await?;
    let log: GitLog = f.ok(Op::GitLog, json!({ "limit": 10 })).await?;
    assert_eq!(log.commits.len(), 2, "committed, not amended");
    assert_eq!(log.commits[0].id, c.id);
    assert_eq!(
        log.commits[0].subject,
        "--amend --no-verify -c core.pager=x"
    );
    assert_eq!(
        log.commits[0].author, "tester",
        "the operator is the author"
    );
    let b: GitBranches = f
        .ok(
            Op::GitBranchCreate,
            json!({ "name": "feature/x", "checkout": true }),
        )
        .await?;
    assert_eq!(b.current.as_deref(), Some("feature/x"));
    let main = c.branch.clone().unwrap();
    let b: GitBranches = f.ok(Op::GitCheckout, json!({ "branch": main })).await?;
    assert_eq!(b.current.as_deref(), Some(main.as_str()));
    let b: GitBranches = f.ok(Op::GitBranchList, json!({})).await?;
    assert_eq!(b.branches.len(), 2);
    let e = f.err(Op::GitCheckout, json!({ "branch": "nope" })).await?;
    assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
    // Git in a folder beneath the root finds the root's repository.
    std::fs::create_dir(f.root.join("sub"))?;
    let st: GitStatus = f.ok(Op::GitStatus, json!({ "dir": "sub" })).await?;
    assert_eq!(st.branch.as_deref(), Some(main.as_str()));
    f.assert_sentinel_unchanged("normal git use");
    Ok(())
}

#[tokio::test]
async fn discovery_never_climbs_above_the_root() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    // The workspace's parent is a repository; the workspace root itself is not.
    let ws = f.root.join("plain");
    std::fs::create_dir(&ws)?;
    std::fs::remove_dir_all(f.root.join(".git"))?;
    git(f.env.tmp.path(), &["init", "-q"])?;
    let e = f.err(Op::GitStatus, json!({})).await?;
    assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
    assert!(
        e.message.contains("not inside a git repository"),
        "{}",
        e.message
    );
    Ok(())
}

#[tokio::test]
async fn no_value_can_become_a_git_option() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    let pwned = f.sentinel.join("pwned");
    let pwned = pwned.display();
    let up = format!("--upload-pack=touch {pwned}");
    let out = format!("--output={pwned}");
    let ssh = format!("-c core.sshCommand=touch {pwned}");
    for evil in [
        up.as_str(),
        out.as_str(),
        ssh.as_str(),
        "-D",
        "-f",
        "--orphan=x",
        "-c",
        "--exec=sh",
    ] {
        f.refused(Op::GitBranchCreate, json!({ "name": evil }), "leading_dash")
            .await?;
        f.refused(
            Op::GitBranchCreate,
            json!({ "name": "ok", "start": evil }),
            "leading_dash",
        )
        .await?;
        f.refused(Op::GitCheckout, json!({ "branch": evil }), "leading_dash")
            .await?;
        f.refused(Op::GitLog, json!({ "rev": evil }), "leading_dash")
            .await?;
        f.refused(Op::GitDiff, json!({ "paths": [evil] }), "leading_dash")
            .await?;
        f.refused(
            Op::GitAdd,
            json!({ "paths": ["README.md", evil] }),
            "leading_dash",
        )
        .await?;
        f.refused(Op::GitPull, json!({ "remote": evil }), "leading_dash")
            .await?;
        f.refused(Op::GitPush, json!({ "remote": evil }), "leading_dash")
            .await?;
        f.refused(
            Op::GitPull,
            json!({ "remote": "origin", "branch": evil }),
            "leading_dash",
        )
        .await?;
        f.refused(
            Op::GitPush,
            json!({ "remote": "origin", "branch": evil }),
            "leading_dash",
        )
        .await?;
    }
    // Refspec tricks and revision syntax in names.
    for (name, rule) in [
        ("+main", "leading_plus"),
        ("main:refs/heads/x", "ref_format"),
        (":main", "ref_format"),
        ("main~1", "ref_format"),
        ("a..b", "ref_format"),
        ("a b", "ref_format"),
        ("@{-1}", "ref_format"),
    ] {
        f.refused(
            Op::GitPush,
            json!({ "remote": "origin", "branch": name }),
            rule,
        )
        .await?;
        f.refused(Op::GitBranchCreate, json!({ "name": name }), rule)
            .await?;
    }
    // Paths out of the root, for git too.
    f.refused(
        Op::GitAdd,
        json!({ "paths": ["../sentinel/secret.txt"] }),
        "parent_reference",
    )
    .await?;
    let abs = f.sentinel.join("secret.txt");
    f.refused(Op::GitAdd, json!({ "paths": [abs] }), "absolute_path")
        .await?;
    f.refused(Op::GitDiff, json!({ "paths": ["a\u{0}b"] }), "nul_byte")
        .await?;
    f.refused(Op::GitStatus, json!({ "dir": ".." }), "parent_reference")
        .await?;
    f.refused(Op::GitStatus, json!({ "dir": f.sentinel }), "absolute_path")
        .await?;
    symlink(&f.sentinel, f.root.join("out"))?;
    f.refused(Op::GitStatus, json!({ "dir": "out" }), "symlink")
        .await?;
    f.refused(Op::GitLog, json!({ "dir": "out/outside.git" }), "symlink")
        .await?;
    // A path through a link inside the repository: git itself refuses it.
    let e = f
        .err(Op::GitAdd, json!({ "paths": ["out/secret.txt"] }))
        .await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    f.assert_sentinel_unchanged("git add through a link");
    let e = f.err(Op::GitCommit, json!({ "message": "  " })).await?;
    assert!(
        e.message.contains("refused (empty_message)"),
        "{}",
        e.message
    );
    Ok(())
}

#[tokio::test]
async fn remotes_outside_the_root_are_refused() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    let outside = f.sentinel.join("outside.git");
    let o = outside.display();
    git(&f.root, &["remote", "add", "local", &o.to_string()])?;
    git(
        &f.root,
        &["remote", "add", "fileurl", &format!("file://{o}")],
    )?;
    git(
        &f.root,
        &["remote", "add", "relative", "../../sentinel/outside.git"],
    )?;
    let pwned = f.sentinel.join("pwned").display().to_string();
    git(
        &f.root,
        &[
            "remote",
            "add",
            "ext",
            &format!("ext::sh -c touch% {pwned}"),
        ],
    )?;
    git(
        &f.root,
        &["remote", "add", "mixed", "https://example.invalid/x.git"],
    )?;
    git(
        &f.root,
        &[
            "remote",
            "set-url",
            "--add",
            "--push",
            "mixed",
            &o.to_string(),
        ],
    )?;
    for remote in ["local", "fileurl", "relative"] {
        f.refused(Op::GitPull, json!({ "remote": remote }), "local_remote")
            .await?;
        f.refused(Op::GitPush, json!({ "remote": remote }), "local_remote")
            .await?;
    }
    f.refused(Op::GitPull, json!({ "remote": "ext" }), "remote_helper")
        .await?;
    f.refused(Op::GitPush, json!({ "remote": "ext" }), "remote_helper")
        .await?;
    f.refused(Op::GitPush, json!({ "remote": "mixed" }), "local_remote")
        .await?;
    // A path or URL in place of a remote name.
    let cases = [
        (o.to_string(), "ref_format"),
        (format!("file://{o}"), "ref_format"),
        ("../../sentinel/outside.git".to_owned(), "ref_format"),
        ("sentinel/outside.git".to_owned(), "remote_not_a_name"),
        (format!("ext::sh -c touch% {pwned}"), "ref_format"),
    ];
    for (remote, rule) in &cases {
        f.refused(Op::GitPull, json!({ "remote": remote }), rule)
            .await?;
        f.refused(Op::GitPush, json!({ "remote": remote }), rule)
            .await?;
    }
    // The default remote of a branch comes from the repository's config: checked the same.
    let branch = git(&f.root, &["symbolic-ref", "--short", "HEAD"])?;
    let branch = branch.trim();
    git(
        &f.root,
        &["config", &format!("branch.{branch}.remote"), "local"],
    )?;
    f.refused(Op::GitPull, json!({}), "local_remote").await?;
    let e = f.err(Op::GitPull, json!({ "remote": "nosuch" })).await?;
    assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
    f.assert_sentinel_unchanged("remotes");
    Ok(())
}

/// The host owner can switch pull and push off (`[policy] disabled_ops`): refused by the agent
/// even though the role allows them.
#[tokio::test]
async fn pull_and_push_can_be_disabled_by_the_host() -> anyhow::Result<()> {
    use cm_agent::policy::{Policy, PolicyConfig};
    let f = Fixture::new().await?;
    git(
        &f.root,
        &["remote", "add", "origin", "https://example.invalid/x.git"],
    )?;
    let config = PolicyConfig {
        disabled_ops: [Op::GitPush, Op::GitPull].into_iter().collect(),
        ..PolicyConfig::default()
    };
    let state = f.env.tmp.path().join("state-policy");
    let workspaces = cm_agent::workspaces::Workspaces::spawn_with(
        &[cm_agent::config::Workspace {
            name: super::WS.into(),
            root: f.root.clone(),
            permissions: Default::default(),
            sandbox: crate::harness::unsandboxed(),
        }],
        f.env.workspaces.opencode_config().clone(),
        &state,
        Policy::new(config, &state),
        std::time::Duration::from_secs(60),
        Default::default(),
    );
    let env = crate::harness::Env {
        tmp: tempfile::tempdir()?,
        model: cm_test_model::spawn("127.0.0.1:0".parse()?).await?,
        workspaces,
    };
    for op in [Op::GitPush, Op::GitPull] {
        let r = env
            .call_as::<serde_json::Value>(
                proto::rbac::Role::Owner,
                op,
                Some(super::WS),
                None,
                Some(json!({ "remote": "origin" })),
            )
            .await?;
        match r {
            proto::message::Reply::Error(e) => {
                assert_eq!(e.code, ErrorCode::Forbidden, "{}", e.message);
                assert!(e.message.contains("disabled_ops"), "{}", e.message);
            }
            proto::message::Reply::Ok(v) => anyhow::bail!("{} ran: {v}", op.as_str()),
        }
    }
    // Other git operations still work.
    let st: GitStatus = match env
        .call_as::<GitStatus>(
            proto::rbac::Role::Operator,
            Op::GitStatus,
            Some(super::WS),
            None,
            Some(json!({})),
        )
        .await?
    {
        proto::message::Reply::Ok(s) => s,
        proto::message::Reply::Error(e) => anyhow::bail!("{e}"),
    };
    assert!(st.branch.is_some());
    Ok(())
}

/// Outputs are bounded: a diff larger than the limit is cut at a line end and marked; a log
/// never returns more than asked.
#[tokio::test]
async fn outputs_are_bounded() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    let line = "x".repeat(99) + "\n";
    std::fs::write(f.root.join("README.md"), line.repeat(8000))?;
    let d: GitDiff = f.ok(Op::GitDiff, json!({})).await?;
    assert!(d.truncated);
    assert!(
        d.patch.len() <= proto::git::MAX_DIFF_BYTES,
        "{}",
        d.patch.len()
    );
    assert!(d.patch.ends_with('\n'));
    for i in 0..3 {
        git(
            &f.root,
            &["commit", "-q", "--allow-empty", "-m", &format!("c{i}")],
        )?;
    }
    let log: GitLog = f.ok(Op::GitLog, json!({ "limit": 2 })).await?;
    assert_eq!(log.commits.len(), 2);
    assert_eq!(log.commits[0].subject, "c2");
    let log: GitLog = f.ok(Op::GitLog, json!({ "limit": 0 })).await?;
    assert_eq!(log.commits.len(), 1, "a zero limit is raised to one");
    Ok(())
}
