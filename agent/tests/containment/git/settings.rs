//! Repository settings that would run programs (hooks, filters, `core.*` commands and the
//! like) are never honoured.

use super::*;

#[tokio::test]
async fn repository_settings_cannot_run_programs() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    let script = |name: &str| -> anyhow::Result<String> {
        let p = f.root.join(name);
        let target = f.sentinel.join(format!("pwned-{name}"));
        std::fs::write(
            &p,
            format!("#!/bin/sh\ntouch '{}'\nexit 0\n", target.display()),
        )?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        Ok(p.display().to_string())
    };
    // Hooks (pre-commit, commit-msg, post-commit), fsmonitor, an external diff, a pager, an ssh
    // command and a credential helper, all set in the repository's own config.
    for hook in ["pre-commit", "commit-msg", "post-commit", "post-checkout"] {
        let s = script(hook)?;
        let dest = f.root.join(".git/hooks").join(hook);
        std::fs::copy(&s, &dest)?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
    }
    git(
        &f.root,
        &["config", "core.fsmonitor", &script("fsmonitor")?],
    )?;
    git(&f.root, &["config", "diff.external", &script("extdiff")?])?;
    git(&f.root, &["config", "core.pager", &script("pager")?])?;
    git(&f.root, &["config", "core.sshCommand", &script("ssh")?])?;
    git(
        &f.root,
        &[
            "config",
            "credential.helper",
            &format!("!{}", script("cred")?),
        ],
    )?;
    git(&f.root, &["config", "commit.gpgSign", "true"])?;
    git(&f.root, &["config", "gpg.program", &script("gpg")?])?;
    git(
        &f.root,
        &["remote", "add", "origin", "ssh://127.0.0.1:1/x.git"],
    )?;
    // An http remote that asks for credentials: neither the credential helpers (general and
    // URL-specific) nor `core.askPass` may run.
    let port = answer_401().await?;
    let web = format!("http://127.0.0.1:{port}/x.git");
    git(&f.root, &["remote", "add", "web", &web])?;
    git(
        &f.root,
        &[
            "config",
            &format!("credential.{web}.helper"),
            &format!("!{}", script("cred-url")?),
        ],
    )?;
    git(&f.root, &["config", "core.askPass", &script("askpass")?])?;
    // A git:// remote: `core.gitProxy` may not run.
    git(
        &f.root,
        &[
            "remote",
            "add",
            "daemon",
            &format!("git://127.0.0.1:{port}/x.git"),
        ],
    )?;
    git(&f.root, &["config", "core.gitProxy", &script("proxy")?])?;
    // A signed commit shown with `log.showSignature`: the repository's gpg programs may not run.
    git(&f.root, &["config", "log.showSignature", "true"])?;
    git(&f.root, &["config", "gpg.ssh.program", &script("gpg-ssh")?])?;
    git(
        &f.root,
        &["config", "gpg.x509.program", &script("gpg-x509")?],
    )?;
    git(&f.root, &["config", "pull.rebase", "interactive"])?;
    git(&f.root, &["config", "sequence.editor", &script("seqedit")?])?;
    signed_commit(&f.root)?;
    // Filter drivers named by .gitattributes (also a driver name with a dot, and a
    // long-running `process` filter): status, diff, add, commit and checkout run none.
    std::fs::write(
        f.root.join(".gitattributes"),
        "README.md filter=evil\n*.txt filter=a.b\n",
    )?;
    git(&f.root, &["config", "filter.evil.clean", &script("clean")?])?;
    git(
        &f.root,
        &["config", "filter.evil.smudge", &script("smudge")?],
    )?;
    git(
        &f.root,
        &["config", "filter.a.b.process", &script("process")?],
    )?;
    std::fs::write(f.root.join("notes.txt"), "notes\n")?;
    std::fs::write(f.root.join("README.md"), "changed\n")?;

    f.ok::<GitStatus>(Op::GitStatus, json!({})).await?;
    let d: GitDiff = f.ok(Op::GitDiff, json!({})).await?;
    assert!(
        d.patch.contains("+changed"),
        "the built-in diff ran: {}",
        d.patch
    );
    f.ok::<GitStatus>(
        Op::GitAdd,
        json!({ "paths": ["notes.txt", ".gitattributes"] }),
    )
    .await?;
    f.ok::<GitCommitted>(Op::GitCommit, json!({ "message": "m", "all": true }))
        .await?;
    let main = git(&f.root, &["symbolic-ref", "--short", "HEAD"])?;
    let first = git(&f.root, &["rev-parse", "HEAD~2"])?;
    f.ok::<GitBranches>(
        Op::GitBranchCreate,
        json!({ "name": "b1", "start": first.trim(), "checkout": true }),
    )
    .await?;
    f.ok::<GitBranches>(Op::GitCheckout, json!({ "branch": main.trim() }))
        .await?;
    f.ok::<GitBranches>(
        Op::GitBranchCreate,
        json!({ "name": "b2", "checkout": true }),
    )
    .await?;
    // The pull fails (nothing listens), but without running the repository's ssh command.
    let e = f
        .err(Op::GitPull, json!({ "remote": "origin", "branch": "b2" }))
        .await?;
    assert_ne!(e.code, ErrorCode::Forbidden, "{}", e.message);
    let e = f
        .err(Op::GitPush, json!({ "remote": "origin", "branch": "b2" }))
        .await?;
    assert_ne!(e.code, ErrorCode::Forbidden, "{}", e.message);
    // A cookie jar outside the root, named for one URL (more specific than any general
    // override), after a pull that succeeds: never written.
    let b2 = git(&f.root, &["rev-parse", "b2"])?;
    let dumb = format!(
        "http://127.0.0.1:{}/x.git",
        dumb_remote("b2", b2.trim()).await?
    );
    git(&f.root, &["remote", "add", "dumb", &dumb])?;
    let jar = f.sentinel.join("jar").display().to_string();
    git(
        &f.root,
        &["config", &format!("http.{dumb}.cookieFile"), &jar],
    )?;
    git(
        &f.root,
        &["config", &format!("http.{dumb}.saveCookies"), "true"],
    )?;
    f.ok::<proto::git::GitOutput>(Op::GitPull, json!({ "remote": "dumb", "branch": "b2" }))
        .await?;
    let log: GitLog = f.ok(Op::GitLog, json!({ "limit": 5 })).await?;
    assert!(
        log.commits.iter().any(|c| c.subject == "signed"),
        "{:?}",
        log.commits
    );
    for remote in ["web", "daemon"] {
        let e = f
            .err(Op::GitPull, json!({ "remote": remote, "branch": "b2" }))
            .await?;
        assert_eq!(e.code, ErrorCode::Conflict, "{remote}: {}", e.message);
        let e = f
            .err(Op::GitPush, json!({ "remote": remote, "branch": "b2" }))
            .await?;
        assert_eq!(e.code, ErrorCode::Conflict, "{remote}: {}", e.message);
    }
    let ran: Vec<_> = std::fs::read_dir(&f.sentinel)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(
        ran.is_empty(),
        "programs from the repository's config ran: {ran:?}"
    );
    f.assert_sentinel_unchanged("repository settings");
    Ok(())
}
