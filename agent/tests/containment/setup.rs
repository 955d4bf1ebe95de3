//! Creating and configuring repositories: `git_init`, `git_config` (an allowlist of keys) and
//! `git_clone` (the host's URL policy, time and size limits), with real git against a real
//! dumb-HTTP server on 127.0.0.1; and every way such an operation could reach outside the root
//! or run a program: `file://`, `ext::`, option-looking URLs, local paths, disallowed hosts,
//! redirects, keys outside the allowlist, existing folders, `..` and links.

use super::{Fixture, WS, git};
use cm_agent::git::policy::GitSettings;
use proto::git::{GitCloned, GitConfigDone, GitInitialized, GitStatus};
use proto::header::Op;
use proto::wire_error::ErrorCode;
use serde_json::json;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

/// A fixture whose agent has the `[git]` settings `settings`.
async fn fixture(settings: GitSettings) -> anyhow::Result<Fixture> {
    let mut f = Fixture::new().await?;
    let state = f.env.tmp.path().join("state-git");
    f.env.workspaces = cm_agent::workspaces::Workspaces::spawn_with(
        &[cm_agent::config::Workspace {
            name: WS.into(),
            root: f.root.clone(),
            permissions: Default::default(),
            sandbox: crate::harness::unsandboxed(),
        }],
        f.env.workspaces.opencode_config().clone(),
        &state,
        cm_agent::policy::Policy::new(Default::default(), &state),
        std::time::Duration::from_secs(60),
        settings,
    );
    Ok(f)
}

/// `python3 -m http.server` on 127.0.0.1 (an OS-chosen port) serving `dir`; stopped on drop.
struct DumbHttp {
    port: u16,
    _child: tokio::process::Child,
}

impl DumbHttp {
    async fn serve(dir: &Path) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(out).lines();
        // "Serving HTTP on 127.0.0.1 port 43567 (http://127.0.0.1:43567/) ..."
        let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await??
            .ok_or_else(|| anyhow::anyhow!("http.server printed nothing"))?;
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no port in {line:?}"))?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            port,
            _child: child,
        })
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A bare repository `served/src.git` outside the root with one commit on `main` (a README
/// and `payload` bytes of incompressible data), ready for dumb HTTP. Its head.
fn source_repo(f: &Fixture, payload: usize) -> anyhow::Result<(PathBuf, String)> {
    let work = f.env.tmp.path().join("src-work");
    std::fs::create_dir_all(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    git(&work, &["config", "user.name", "s"])?;
    git(&work, &["config", "user.email", "s@example.com"])?;
    std::fs::write(work.join("README.md"), "cloned\n")?;
    let mut data = Vec::with_capacity(payload);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while data.len() < payload {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(work.join("payload.bin"), data)?;
    git(&work, &["add", "."])?;
    git(&work, &["commit", "-q", "-m", "first"])?;
    let head = git(&work, &["rev-parse", "HEAD"])?.trim().to_owned();
    let served = f.env.tmp.path().join("served");
    std::fs::create_dir_all(&served)?;
    git(
        &served,
        &[
            "clone",
            "-q",
            "--bare",
            &work.display().to_string(),
            "src.git",
        ],
    )?;
    git(&served.join("src.git"), &["update-server-info"])?;
    Ok((served, head))
}

/// Names in the root (to see that nothing was left behind).
fn names(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn init_config_and_clone_over_http_stay_inside_the_root() -> anyhow::Result<()> {
    let probe = Fixture::new().await?;
    let (served, head) = source_repo(&probe, 4096)?;
    let http = DumbHttp::serve(&served).await?;
    let f = fixture(GitSettings {
        clone_from: vec![format!("{}/*", http.base())],
        ..GitSettings::default()
    })
    .await?;

    // init a new folder, then configure it.
    let i: GitInitialized = f.ok(Op::GitInit, json!({ "dir": "fresh" })).await?;
    assert_eq!(i.dir, "fresh");
    assert!(f.root.join("fresh/.git/HEAD").is_file());
    assert!(
        !f.root.join("fresh/.git/hooks").exists(),
        "no template hooks copied"
    );
    let remote = format!("{}/src.git", http.base());
    for (key, value) in [
        ("user.name", "-Ada --Lovelace"),
        ("user.email", "ada@example.com"),
        ("remote.origin.url", remote.as_str()),
        ("branch.main.remote", "origin"),
        ("branch.main.merge", "refs/heads/main"),
        ("core.autocrlf", "input"),
    ] {
        let d: GitConfigDone = f
            .ok(
                Op::GitConfig,
                json!({ "dir": "fresh", "key": key, "value": value }),
            )
            .await?;
        assert_eq!((d.key.as_str(), d.value.as_str()), (key, value));
        let got = git(&f.root.join("fresh"), &["config", "--local", "--get", key])?;
        assert_eq!(got.trim(), value, "{key}");
    }
    // An existing empty folder can be initialized too; a second init of the same is refused.
    std::fs::create_dir(f.root.join("empty"))?;
    f.ok::<GitInitialized>(Op::GitInit, json!({ "dir": "empty" }))
        .await?;
    let e = f.err(Op::GitInit, json!({ "dir": "fresh" })).await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    assert!(e.message.contains("not empty"), "{}", e.message);

    // clone into a new folder.
    let c: GitCloned = f
        .ok(Op::GitClone, json!({ "url": remote, "dir": "cloned" }))
        .await?;
    assert_eq!(c.dir, "cloned");
    assert_eq!(c.branch.as_deref(), Some("main"));
    assert_eq!(c.head.as_deref(), Some(head.as_str()));
    assert_eq!(
        std::fs::read_to_string(f.root.join("cloned/README.md"))?,
        "cloned\n"
    );
    let st: GitStatus = f.ok(Op::GitStatus, json!({ "dir": "cloned" })).await?;
    assert_eq!(st.branch.as_deref(), Some("main"));
    assert!(st.entries.is_empty(), "{:?}", st.entries);
    f.assert_sentinel_unchanged("init, config, clone");
    Ok(())
}

#[tokio::test]
async fn clone_urls_outside_the_policy_are_refused() -> anyhow::Result<()> {
    let probe = Fixture::new().await?;
    let (served, _) = source_repo(&probe, 16)?;
    let http = DumbHttp::serve(&served).await?;
    let f = fixture(GitSettings {
        clone_from: vec![format!("{}/*", http.base())],
        ..GitSettings::default()
    })
    .await?;
    let outside = f.sentinel.join("outside.git").display().to_string();
    let pwned = f.sentinel.join("pwned").display().to_string();
    let before = names(&f.root);
    for (url, rule) in [
        (format!("file://{outside}"), "local_remote"),
        (outside.clone(), "local_remote"),
        ("../sentinel/outside.git".to_owned(), "local_remote"),
        (format!("ext::sh -c touch% {pwned}"), "url_format"),
        ("ext::sh".to_owned(), "remote_helper"),
        ("-u".to_owned(), "leading_dash"),
        (format!("--upload-pack=touch {pwned}"), "leading_dash"),
        ("ssh://-oProxyCommand=touch/x".to_owned(), "url_host"),
        (
            format!("http://127.0.0.1:{}/src.git", http.port + 1),
            "url_not_allowed",
        ),
        ("https://github.com/a/b.git".to_owned(), "url_not_allowed"),
        (String::new(), "empty_url"),
    ] {
        let e = f
            .refused(Op::GitClone, json!({ "url": url, "dir": "c" }), rule)
            .await?;
        assert!(!e.message.is_empty());
        assert_eq!(names(&f.root), before, "{url}: something was created");
    }
    // The default policy: https and ssh only.
    let d = fixture(GitSettings::default()).await?;
    let e = d
        .refused(
            Op::GitClone,
            json!({ "url": format!("{}/src.git", http.base()), "dir": "c" }),
            "url_not_allowed",
        )
        .await?;
    assert!(e.message.contains("https://"), "{}", e.message);
    assert!(!f.sentinel.join("pwned").exists());
    f.assert_sentinel_unchanged("clone URLs");
    Ok(())
}

#[tokio::test]
async fn clones_into_existing_or_outside_folders_are_refused() -> anyhow::Result<()> {
    let probe = Fixture::new().await?;
    let (served, _) = source_repo(&probe, 16)?;
    let http = DumbHttp::serve(&served).await?;
    let f = fixture(GitSettings {
        clone_from: vec![format!("{}/*", http.base())],
        ..GitSettings::default()
    })
    .await?;
    let url = format!("{}/src.git", http.base());
    std::fs::create_dir(f.root.join("exists"))?;
    std::fs::write(f.root.join("exists/keep.txt"), "keep\n")?;
    symlink(&f.sentinel, f.root.join("link"))?;
    let e = f
        .err(Op::GitClone, json!({ "url": url, "dir": "exists" }))
        .await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    assert_eq!(
        std::fs::read_to_string(f.root.join("exists/keep.txt"))?,
        "keep\n"
    );
    let e = f
        .err(Op::GitClone, json!({ "url": url, "dir": "" }))
        .await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    // A link in the root's place: the clone's folder exists already; init does not follow it.
    let e = f
        .err(Op::GitClone, json!({ "url": url, "dir": "link" }))
        .await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    f.refused(Op::GitInit, json!({ "dir": "link" }), "symlink")
        .await?;
    for (dir, rule) in [
        ("../sentinel/c", "parent_reference"),
        ("link/c", "symlink"),
        ("/tmp/c", "absolute_path"),
    ] {
        f.refused(Op::GitClone, json!({ "url": url, "dir": dir }), rule)
            .await?;
        f.refused(Op::GitInit, json!({ "dir": dir }), rule).await?;
    }
    // git_init of a folder with files in it (the root is a repository with files).
    let e = f.err(Op::GitInit, json!({ "dir": "" })).await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    f.assert_sentinel_unchanged("clone targets");
    Ok(())
}

#[tokio::test]
async fn config_keys_outside_the_allowlist_are_refused() -> anyhow::Result<()> {
    let f = fixture(GitSettings::default()).await?;
    let config = f.root.join(".git/config");
    let before = std::fs::read(&config)?;
    let pwned = f.sentinel.join("pwned").display().to_string();
    for (key, value, rule) in [
        ("core.sshCommand", format!("touch {pwned}"), "config_key"),
        (
            "core.hooksPath",
            f.sentinel.display().to_string(),
            "config_key",
        ),
        ("core.fsmonitor", format!("touch {pwned}"), "config_key"),
        (
            "core.worktree",
            f.sentinel.display().to_string(),
            "config_key",
        ),
        ("filter.x.smudge", format!("touch {pwned}"), "config_key"),
        (
            "remote.origin.uploadpack",
            format!("touch {pwned}"),
            "config_key",
        ),
        (
            "include.path",
            f.sentinel.join("x").display().to_string(),
            "config_key",
        ),
        ("credential.helper", format!("!touch {pwned}"), "config_key"),
        (
            "remote.origin.url",
            format!("file://{}", f.sentinel.display()),
            "local_remote",
        ),
        ("remote.origin.url", "ext::sh".into(), "remote_helper"),
        (
            "remote.origin.url",
            "http://example.com/x".into(),
            "url_not_allowed",
        ),
        ("user.name", "a\nb".into(), "config_value"),
        ("core.autocrlf", "sometimes".into(), "config_value"),
    ] {
        let e = f
            .refused(Op::GitConfig, json!({ "key": key, "value": value }), rule)
            .await?;
        if rule == "config_key" {
            assert!(
                e.message
                    .contains("user.name, user.email, remote.<name>.url"),
                "{}",
                e.message
            );
        }
        assert_eq!(std::fs::read(&config)?, before, "{key} changed the config");
    }
    assert!(!f.sentinel.join("pwned").exists());
    f.assert_sentinel_unchanged("config keys");
    Ok(())
}

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
    let e = f
        .err(
            Op::GitClone,
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
    let e = f
        .err(
            Op::GitClone,
            json!({ "url": format!("{}/src.git", http.base()), "dir": "big" }),
        )
        .await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    assert!(e.message.contains("clone_max_size"), "{}", e.message);
    assert_eq!(names(&f.root), before, "the partial folder is gone");
    let e = f
        .err(
            Op::GitClone,
            json!({ "url": format!("http://127.0.0.1:{silent_port}/x.git"), "dir": "slow" }),
        )
        .await?;
    assert_eq!(e.code, ErrorCode::Unavailable, "{}", e.message);
    assert!(e.message.contains("did not finish"), "{}", e.message);
    assert_eq!(names(&f.root), before, "the partial folder is gone");
    f.assert_sentinel_unchanged("limits");
    Ok(())
}
