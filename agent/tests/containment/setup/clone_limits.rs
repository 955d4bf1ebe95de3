//! Clones that push at the host's limits: redirects to disallowed hosts, size and time limits,
//! and abort.

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
    assert_eq!(
        staged(&f),
        Vec::<PathBuf>::new(),
        "the staging folder is gone"
    );
    let e = clone_err(
        &f,
        json!({ "url": format!("http://127.0.0.1:{silent_port}/x.git"), "dir": "slow" }),
    )
    .await?;
    assert_eq!(e.code, ErrorCode::Unavailable, "{}", e.message);
    assert!(e.message.contains("did not finish"), "{}", e.message);
    assert_eq!(names(&f.root), before, "the partial folder is gone");
    assert_eq!(
        staged(&f),
        Vec::<PathBuf>::new(),
        "the staging folder is gone"
    );
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

#[tokio::test]
async fn a_running_clone_is_out_of_the_workspace_until_complete() -> anyhow::Result<()> {
    // While git clones (and checks out), nothing in the workspace (OpenCode) can reach the
    // repository: no config filter or submodule git directory can be planted into it.
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
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    let gone = async move {
        let _ = gone_rx.await;
    };
    let body = json!({ "url": format!("http://127.0.0.1:{port}/x.git"), "dir": "running" });
    let during = async {
        let _ = started_rx.await;
        // Made canonical now: the staging folder is gone once the clone ended.
        let staging: Vec<PathBuf> = staged(&f)
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap())
            .collect();
        let seen = (names(&f.root), staging);
        let _ = gone_tx.send(());
        seen
    };
    let (end, (root_during, staged_during)) =
        tokio::join!(clone_with(&f, body, gone, Some(started_tx)), during);
    assert_eq!(
        root_during, before,
        "the clone's folder is in the workspace"
    );
    assert_eq!(staged_during.len(), 1, "{staged_during:?}");
    let root = std::fs::canonicalize(&f.root)?;
    let staging = &staged_during[0];
    assert!(
        !staging.starts_with(&root),
        "{staging:?} is inside {root:?}"
    );
    assert!(staging.starts_with(std::fs::canonicalize(state_dir(&f))?));
    match end? {
        CloneEnd::Ran(Err(e), _) => assert!(e.message.contains("aborted"), "{}", e.message),
        other => anyhow::bail!("expected an aborted clone, got {other:?}"),
    }
    assert_eq!(names(&f.root), before, "the aborted clone's folder is gone");
    assert_eq!(
        staged(&f),
        Vec::<PathBuf>::new(),
        "the staging folder is gone"
    );
    f.assert_sentinel_unchanged("staged clone");
    Ok(())
}
