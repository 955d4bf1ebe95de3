//! Submodules of a clone: not fetched unless `[git] submodules = true`, and then only when
//! every submodule URL (relative ones resolved against the clone URL) passes `clone_from`,
//! checked before anything is fetched.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Commits in `dir` as a fixed author.
fn commit(dir: &Path, message: &str) -> anyhow::Result<()> {
    git(
        dir,
        &[
            "-c",
            "user.name=s",
            "-c",
            "user.email=s@e",
            "commit",
            "-qm",
            message,
        ],
    )?;
    Ok(())
}

/// The repositories of one test beneath `tmp`: `sub-work` (a repository with `inner.txt`),
/// served as `served/sub.git`; [`superproject`] adds superprojects beside it.
fn sub_repo(tmp: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let sub = tmp.join("sub-work");
    std::fs::create_dir_all(&sub)?;
    git(&sub, &["init", "-q", "-b", "main"])?;
    std::fs::write(sub.join("inner.txt"), "from the submodule\n")?;
    git(&sub, &["add", "."])?;
    commit(&sub, "s")?;
    let served = tmp.join("served-sub");
    std::fs::create_dir_all(&served)?;
    git(
        &served,
        &[
            "clone",
            "-q",
            "--bare",
            &sub.display().to_string(),
            "sub.git",
        ],
    )?;
    Ok((sub, served))
}

/// A superproject served as `served/<name>.git` whose submodule `sub` (a commit of `sub`) is
/// declared in `.gitmodules` with URL `url`.
fn superproject(
    tmp: &Path,
    served: &Path,
    sub: &Path,
    name: &str,
    url: &str,
) -> anyhow::Result<()> {
    superproject_with(tmp, served, sub, name, url, &[])
}

/// As [`superproject`], with more `.gitmodules` keys.
fn superproject_with(
    tmp: &Path,
    served: &Path,
    sub: &Path,
    name: &str,
    url: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<()> {
    let work = tmp.join(format!("{name}-work"));
    std::fs::create_dir_all(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    git(
        &work,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &sub.display().to_string(),
            "sub",
        ],
    )?;
    git(
        &work,
        &["config", "-f", ".gitmodules", "submodule.sub.url", url],
    )?;
    for (key, value) in extra {
        git(&work, &["config", "-f", ".gitmodules", key, value])?;
    }
    git(&work, &["add", ".gitmodules"])?;
    commit(&work, "with sub")?;
    git(
        served,
        &[
            "clone",
            "-q",
            "--bare",
            &work.display().to_string(),
            &format!("{name}.git"),
        ],
    )?;
    Ok(())
}

/// A listener on 127.0.0.1 that counts and drops connections (a host outside the policy).
async fn counting_host() -> anyhow::Result<(u16, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    Ok((port, seen))
}

#[tokio::test]
async fn submodules_pointing_outside_are_not_fetched() -> anyhow::Result<()> {
    let probe = Fixture::new().await?;
    let tmp = probe.env.tmp.path();
    let (sub, served) = sub_repo(tmp)?;
    let (outside_port, outside_seen) = counting_host().await?;
    let cases = [
        (
            "file-url",
            format!("file://{}", sub.display()),
            "local_remote",
        ),
        ("local-path", sub.display().to_string(), "local_remote"),
        (
            "other-host",
            format!("git://127.0.0.1:{outside_port}/sub.git"),
            "url_not_allowed",
        ),
        (
            "climbs",
            "../../../../evil.example/x.git".to_owned(),
            "submodule_url",
        ),
        ("dot-segments", "../x/../../y.git".to_owned(), "url_path"),
    ];
    for (name, url, _) in &cases {
        superproject(tmp, &served, &sub, name, url)?;
    }
    let daemon = git_daemon(&served).await?;
    let policy = vec![format!("git://127.0.0.1:{daemon}/*")];

    // Without [git] submodules the declaration is cloned, the submodule is not fetched.
    let f = fixture(GitSettings {
        clone_from: policy.clone(),
        ..GitSettings::default()
    })
    .await?;
    let url = format!("git://127.0.0.1:{daemon}/file-url.git");
    clone_ok(&f, json!({ "url": url, "dir": "plain" })).await?;
    assert!(f.root.join("plain/.gitmodules").is_file());
    assert!(
        !f.root.join("plain/sub/inner.txt").exists(),
        "the submodule was fetched"
    );
    f.assert_sentinel_unchanged("submodules off");

    let g = fixture(GitSettings {
        clone_from: policy,
        submodules: true,
        ..GitSettings::default()
    })
    .await?;
    let before = names(&g.root);
    for (name, url, rule) in &cases {
        let clone_url = format!("git://127.0.0.1:{daemon}/{name}.git");
        let e = clone_err(&g, json!({ "url": clone_url, "dir": "recursive" })).await?;
        assert_eq!(e.code, ErrorCode::Forbidden, "{name}: {}", e.message);
        assert!(
            e.message.contains(&format!("refused ({rule})"))
                && e.message.contains("submodule \"sub\""),
            "{name}: expected rule {rule} naming the submodule, got: {}",
            e.message
        );
        let shown: String = url.chars().take(40).collect();
        assert!(
            e.message.contains(&shown),
            "{name}: the URL {url} is not named: {}",
            e.message
        );
        assert_eq!(
            names(&g.root),
            before,
            "{name}: the failed clone's folder is gone"
        );
        g.assert_sentinel_unchanged(name);
    }
    assert_eq!(
        outside_seen.load(Ordering::SeqCst),
        0,
        "the host outside clone_from was contacted"
    );
    Ok(())
}

#[tokio::test]
async fn allowed_submodules_are_fetched_after_their_urls_are_checked() -> anyhow::Result<()> {
    let probe = Fixture::new().await?;
    let tmp = probe.env.tmp.path();
    let (sub, served) = sub_repo(tmp)?;
    superproject(tmp, &served, &sub, "relative", "../sub.git")?;
    let daemon = git_daemon(&served).await?;
    superproject(
        tmp,
        &served,
        &sub,
        "absolute",
        &format!("git://127.0.0.1:{daemon}/sub.git"),
    )?;
    let f = fixture(GitSettings {
        clone_from: vec![format!("git://127.0.0.1:{daemon}/*")],
        submodules: true,
        ..GitSettings::default()
    })
    .await?;
    for name in ["relative", "absolute"] {
        let url = format!("git://127.0.0.1:{daemon}/{name}.git");
        let (done, _) = clone_ok(&f, json!({ "url": url, "dir": name })).await?;
        assert_eq!(done.dir, name);
        assert_eq!(
            std::fs::read_to_string(f.root.join(name).join("sub/inner.txt"))?,
            "from the submodule\n",
            "{name}: the submodule was not checked out"
        );
        let recorded = git(
            &f.root.join(name),
            &["config", "--local", "submodule.sub.url"],
        )?;
        assert_eq!(recorded.trim(), format!("git://127.0.0.1:{daemon}/sub.git"));
    }
    f.assert_sentinel_unchanged("allowed submodules");

    // An allowed URL with an update command in `.gitmodules`: the command never runs (the
    // update is an explicit checkout), whether or not git accepts the declaration.
    let marker = tmp.join("update-command-ran");
    superproject_with(
        tmp,
        &served,
        &sub,
        "command",
        "../sub.git",
        &[(
            "submodule.sub.update",
            &format!("!touch {}", marker.display()),
        )],
    )?;
    let url = format!("git://127.0.0.1:{daemon}/command.git");
    let _ = clone_with(
        &f,
        json!({ "url": url, "dir": "command" }),
        std::future::pending(),
        None,
    )
    .await?;
    assert!(!marker.exists(), "the submodule's update command ran");
    f.assert_sentinel_unchanged("update command");
    Ok(())
}

#[tokio::test]
async fn submodules_are_refused_when_the_state_folder_is_on_another_filesystem()
-> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let probe = Fixture::new().await?;
    let tmp = probe.env.tmp.path();
    let (sub, served) = sub_repo(tmp)?;
    superproject(tmp, &served, &sub, "relative", "../sub.git")?;
    let daemon = git_daemon(&served).await?;
    // tmpfs, beside the disk the workspace is on.
    let Ok(other) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("no /dev/shm on this machine: nothing to check");
        return Ok(());
    };
    if std::fs::metadata(other.path())?.dev() == std::fs::metadata(tmp)?.dev() {
        eprintln!("/dev/shm is on the workspace's filesystem here: nothing to check");
        return Ok(());
    }
    let f = fixture(GitSettings {
        clone_from: vec![format!("git://127.0.0.1:{daemon}/*")],
        submodules: true,
        clone_staging: Some(other.path().join("clones")),
        ..GitSettings::default()
    })
    .await?;
    let before = names(&f.root);
    let url = format!("git://127.0.0.1:{daemon}/relative.git");
    let e = clone_err(&f, json!({ "url": url, "dir": "recursive" })).await?;
    assert!(e.message.contains("same filesystem"), "{}", e.message);
    assert_eq!(names(&f.root), before, "the failed clone's folder is gone");
    // A repository without submodules is cloned in place.
    let url = format!("git://127.0.0.1:{daemon}/sub.git");
    let (done, _) = clone_ok(&f, json!({ "url": url, "dir": "plain" })).await?;
    assert_eq!(done.dir, "plain");
    assert!(f.root.join("plain/inner.txt").is_file());
    assert_eq!(
        std::fs::read_dir(other.path().join("clones"))?.count(),
        0,
        "nothing is left in the staging folder"
    );
    f.assert_sentinel_unchanged("submodules across filesystems");
    Ok(())
}
