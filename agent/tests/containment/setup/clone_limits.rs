//! Clones that push at the host's limits: redirects to disallowed hosts, size and time limits,
//! abort, and submodules pointing outside.

use super::*;

/// A local server answering every connection with `response`, then closing it. Its port.
async fn answer(response: String) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(response.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Ok(port)
}

#[tokio::test]
async fn redirects_to_disallowed_hosts_are_not_followed() -> anyhow::Result<()> {
    let probe = Fixture::new().await?;
    let (served, _) = source_repo(&probe, 16)?;
    let http = DumbHttp::serve(&served).await?;
    let redirect = answer(format!(
        "HTTP/1.1 302 Found\r\nLocation: {}/src.git/info/refs?service=git-upload-pack\r\n\
         Content-Length: 0\r\n\
         Connection: close\r\n\r\n",
        http.base()
    ))
    .await?;
    // Only the redirecting server is allowed, not the one it points to.
    let f = fixture(GitSettings {
        clone_from: vec![format!("http://127.0.0.1:{redirect}/*")],
        ..GitSettings::default()
    })
    .await?;
    let before = names(&f.root);
    let e = clone_err(
        &f,
        json!({ "url": format!("http://127.0.0.1:{redirect}/src.git"), "dir": "c" }),
    )
    .await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    assert_eq!(names(&f.root), before, "the failed clone's folder is gone");
    f.assert_sentinel_unchanged("redirect");
    Ok(())
}

#[tokio::test]
async fn clones_past_the_size_or_time_limit_are_stopped_and_removed() -> anyhow::Result<()> {
    let probe = Fixture::new().await?;
    let (served, _) = source_repo(&probe, 512 * 1024)?;
    let http = DumbHttp::serve(&served).await?;
    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let silent_port = silent.local_addr()?.port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let f = fixture(GitSettings {
        clone_from: vec![
            format!("{}/*", http.base()),
            format!("http://127.0.0.1:{silent_port}/*"),
        ],
        clone_max_bytes: 64 * 1024,
        clone_timeout: std::time::Duration::from_secs(2),
        ..GitSettings::default()
    })
    .await?;
    let before = names(&f.root);
    let e = clone_err(
        &f,
        json!({ "url": format!("{}/src.git", http.base()), "dir": "big" }),
    )
    .await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    assert!(e.message.contains("clone_max_size"), "{}", e.message);
    assert_eq!(names(&f.root), before, "the partial folder is gone");
    let e = clone_err(
        &f,
        json!({ "url": format!("http://127.0.0.1:{silent_port}/x.git"), "dir": "slow" }),
    )
    .await?;
    assert_eq!(e.code, ErrorCode::Unavailable, "{}", e.message);
    assert!(e.message.contains("did not finish"), "{}", e.message);
    assert_eq!(names(&f.root), before, "the partial folder is gone");
    f.assert_sentinel_unchanged("limits");
    Ok(())
}

#[tokio::test]
async fn an_aborted_clone_leaves_no_folder() -> anyhow::Result<()> {
    // A server that accepts and never answers: the clone runs until it is aborted.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = silent.local_addr()?.port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let f = fixture(GitSettings {
        clone_from: vec![format!("http://127.0.0.1:{port}/*")],
        ..GitSettings::default()
    })
    .await?;
    let before = names(&f.root);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    // The operator goes away once the clone has started.
    let gone = async move {
        let _ = started_rx.await;
    };
    let end = clone_with(
        &f,
        json!({ "url": format!("http://127.0.0.1:{port}/x.git"), "dir": "aborted" }),
        gone,
        Some(started_tx),
    )
    .await?;
    match end {
        CloneEnd::Ran(Err(e), _) => {
            assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
            assert!(e.message.contains("aborted"), "{}", e.message);
        }
        other => anyhow::bail!("expected an aborted clone, got {other:?}"),
    }
    assert_eq!(names(&f.root), before, "the aborted clone's folder is gone");
    f.assert_sentinel_unchanged("abort");
    Ok(())
}

/// A served repository whose submodule points at a repository outside the root, by local path
/// (git would read it with the `file` transport). Without `[git] submodules` it is not fetched;
/// with it, git refuses the transport and the clone fails, leaving nothing behind.
#[tokio::test]
async fn submodules_pointing_outside_are_not_fetched() -> anyhow::Result<()> {
    let probe = Fixture::new().await?;
    let tmp = probe.env.tmp.path();
    let sub = tmp.join("subsrc");
    std::fs::create_dir_all(&sub)?;
    git(&sub, &["init", "-q", "-b", "main"])?;
    std::fs::write(sub.join("secret.txt"), "outside secret\n")?;
    git(&sub, &["add", "."])?;
    git(
        &sub,
        &[
            "-c",
            "user.name=s",
            "-c",
            "user.email=s@e",
            "commit",
            "-qm",
            "s",
        ],
    )?;
    let work = tmp.join("super-work");
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
        &[
            "-c",
            "user.name=s",
            "-c",
            "user.email=s@e",
            "commit",
            "-qm",
            "with sub",
        ],
    )?;
    let served = tmp.join("served-sub");
    std::fs::create_dir_all(&served)?;
    git(
        &served,
        &[
            "clone",
            "-q",
            "--bare",
            &work.display().to_string(),
            "super.git",
        ],
    )?;
    let daemon = git_daemon(&served).await?;
    let url = format!("git://127.0.0.1:{daemon}/super.git");
    let policy = vec![format!("git://127.0.0.1:{daemon}/*")];

    let f = fixture(GitSettings {
        clone_from: policy.clone(),
        ..GitSettings::default()
    })
    .await?;
    clone_ok(&f, json!({ "url": url, "dir": "plain" })).await?;
    assert!(f.root.join("plain/.gitmodules").is_file());
    assert!(
        !f.root.join("plain/sub/secret.txt").exists(),
        "the submodule was fetched"
    );

    let g = fixture(GitSettings {
        clone_from: policy,
        submodules: true,
        ..GitSettings::default()
    })
    .await?;
    let before = names(&g.root);
    let e = clone_err(&g, json!({ "url": url, "dir": "recursive" })).await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    assert!(
        e.message.contains("transport 'file' not allowed"),
        "{}",
        e.message
    );
    assert_eq!(names(&g.root), before, "the failed clone's folder is gone");
    f.assert_sentinel_unchanged("submodules");
    g.assert_sentinel_unchanged("submodules");
    Ok(())
}
