//! Creating and configuring repositories: `git_init`, `git_config` (an allowlist of keys) and
//! `git_clone` (the host's URL policy, time and size limits, streamed progress, abort), with
//! real git against `git daemon` and a dumb-HTTP server on 127.0.0.1; and every way such an operation could reach outside the root
//! or run a program: `file://`, `ext::`, option-looking URLs, local paths, disallowed hosts,
//! redirects, keys outside the allowlist, existing folders, `..` and links.

use super::{Fixture, WS, git};
use cm_agent::git::policy::GitSettings;
use cm_agent::ops::frames::{FrameReader, write_frame};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::git::{
    GitCloneEvent, GitCloneStarted, GitCloned, GitConfigDone, GitInitialized, GitProgress,
    GitStatus,
};
use proto::header::Op;
use proto::message::Reply;
use proto::wire_error::ErrorCode;
use proto::wire_error::WireError;
use serde_json::json;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

mod clone_limits;
mod submodules;

/// The agent's state folder in [`fixture`]s.
fn state_dir(f: &Fixture) -> PathBuf {
    f.env.tmp.path().join("state-git")
}

/// What is in the agent's clone staging folder of a [`fixture`] (nothing when it is not there).
fn staged(f: &Fixture) -> Vec<PathBuf> {
    std::fs::read_dir(state_dir(f).join("clones"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// A fixture whose agent has the `[git]` settings `settings`, clones staged in its state
/// folder (as `cm-agent run` does) unless `settings` names another staging folder.
async fn fixture(mut settings: GitSettings) -> anyhow::Result<Fixture> {
    let mut f = Fixture::new().await?;
    let state = state_dir(&f);
    if settings.clone_staging.is_none() {
        settings = settings.staged_in(&state);
    }
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

/// `git daemon --inetd` behind a listener on 127.0.0.1 (an OS-chosen port) serving the
/// repositories beneath `base` (one daemon per connection); stops with the test's runtime.
async fn git_daemon(base: &Path) -> anyhow::Result<u16> {
    use std::os::fd::OwnedFd;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let base_path = format!("--base-path={}", base.display());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let Ok(stream) = s.into_std() else { continue };
            let _ = stream.set_nonblocking(false);
            let Ok(out) = stream.try_clone() else {
                continue;
            };
            let child = tokio::process::Command::new("git")
                .args(["daemon", "--inetd", "--export-all", &base_path])
                .stdin(Stdio::from(OwnedFd::from(stream)))
                .stdout(Stdio::from(OwnedFd::from(out)))
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn();
            if let Ok(mut c) = child {
                tokio::spawn(async move {
                    let _ = c.wait().await;
                });
            }
        }
    });
    Ok(port)
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

/// How a `git_clone` stream ended.
#[derive(Debug)]
enum CloneEnd {
    /// Refused before it started (the first frame).
    Refused(WireError),
    /// Started, then done or failed; the progress frames seen.
    Ran(Result<GitCloned, WireError>, Vec<GitProgress>),
}

/// Sends `git_clone` as the relay forwards it, as an operator, and reads the stream to its end.
/// `gone` resolves when the operator stops reading (after `started` is signalled if given).
async fn clone_with(
    f: &Fixture,
    body: serde_json::Value,
    gone: impl std::future::Future<Output = ()> + Send + 'static,
    started: Option<tokio::sync::oneshot::Sender<()>>,
) -> anyhow::Result<CloneEnd> {
    let fwd = proto::ops::ForwardHeader {
        header: proto::header::StreamHeader {
            op: Op::GitClone,
            req_id: proto::ids::ReqId(1),
            host: None,
            workspace: Some(WS.into()),
            session: None,
            auth: None,
            mac: None,
        },
        principal: proto::ids::UserId::from("tester"),
        role: proto::rbac::Role::Operator,
        cred_id: proto::ids::CredId::from("cred-tester"),
    };
    let (client, server) = tokio::io::duplex(1 << 20);
    let (server_r, server_w) = tokio::io::split(server);
    let ws = std::sync::Arc::clone(&f.env.workspaces);
    tokio::spawn(async move {
        cm_agent::ops::serve_stream(&ws, server_r, server_w, gone).await;
    });
    let (client_r, mut client_w) = tokio::io::split(client);
    write_frame(&mut client_w, &fwd, MAX_HEADER_LEN).await?;
    let _ = write_frame(&mut client_w, &body, MAX_FRAME_LEN).await;
    let _ = client_w.shutdown().await;
    let mut r = FrameReader::new(client_r, MAX_FRAME_LEN);
    let wait = std::time::Duration::from_secs(120);
    let first: Reply<GitCloneStarted> = tokio::time::timeout(wait, r.expect()).await??;
    if let Reply::Error(e) = first {
        return Ok(CloneEnd::Refused(e));
    }
    if let Some(tx) = started {
        let _ = tx.send(());
    }
    let mut progress = Vec::new();
    loop {
        let item: Option<GitCloneEvent> = tokio::time::timeout(wait, r.next()).await??;
        match item {
            Some(GitCloneEvent::Progress(p)) => progress.push(p),
            Some(GitCloneEvent::Done(c)) => return Ok(CloneEnd::Ran(Ok(c), progress)),
            Some(GitCloneEvent::Failed(e)) => return Ok(CloneEnd::Ran(Err(e), progress)),
            None => anyhow::bail!("the clone stream ended without done or failed"),
        }
    }
}

/// A clone that must succeed; its result and progress.
async fn clone_ok(
    f: &Fixture,
    body: serde_json::Value,
) -> anyhow::Result<(GitCloned, Vec<GitProgress>)> {
    match clone_with(f, body.clone(), std::future::pending(), None).await? {
        CloneEnd::Ran(Ok(c), p) => Ok((c, p)),
        other => anyhow::bail!("git_clone {body} did not succeed: {other:?}"),
    }
}

/// A clone that must be refused or fail; its error (either way).
async fn clone_err(f: &Fixture, body: serde_json::Value) -> anyhow::Result<WireError> {
    match clone_with(f, body.clone(), std::future::pending(), None).await? {
        CloneEnd::Refused(e) | CloneEnd::Ran(Err(e), _) => Ok(e),
        other @ CloneEnd::Ran(..) => anyhow::bail!("git_clone {body} succeeded: {other:?}"),
    }
}

/// A clone that must be refused before it starts by containment rule `rule`, leaving the
/// sentinel unchanged.
async fn clone_refused(
    f: &Fixture,
    body: serde_json::Value,
    rule: &str,
) -> anyhow::Result<WireError> {
    match clone_with(f, body.clone(), std::future::pending(), None).await? {
        CloneEnd::Refused(e) => {
            assert_eq!(e.code, ErrorCode::Forbidden, "{body}: {}", e.message);
            assert!(
                e.message.contains(&format!("refused ({rule})")),
                "{body}: expected rule {rule}, got: {}",
                e.message
            );
            f.assert_sentinel_unchanged(&format!("git_clone {body}"));
            Ok(e)
        }
        other @ CloneEnd::Ran(..) => anyhow::bail!("git_clone {body} was not refused: {other:?}"),
    }
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
async fn init_config_and_clone_over_git_daemon_stay_inside_the_root() -> anyhow::Result<()> {
    let probe = Fixture::new().await?;
    let (served, head) = source_repo(&probe, 4096)?;
    let daemon = git_daemon(&served).await?;
    let base = format!("git://127.0.0.1:{daemon}");
    let f = fixture(GitSettings {
        clone_from: vec![format!("{base}/*")],
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
    let st: GitStatus = f.ok(Op::GitStatus, json!({ "dir": "fresh" })).await?;
    assert_eq!(st.branch.as_deref(), Some("main"));
    assert_eq!(st.head, None);
    let fsck = std::process::Command::new("git")
        .args(["fsck", "--no-progress"])
        .current_dir(f.root.join("fresh"))
        .output()?;
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    let remote = format!("{base}/src.git");
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
    let (c, progress) = clone_ok(&f, json!({ "url": remote, "dir": "cloned" })).await?;
    assert!(
        progress.iter().any(|p| p.phase == "Receiving objects"),
        "{progress:?}"
    );
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
    assert_eq!(
        staged(&f),
        Vec::<PathBuf>::new(),
        "the staging folder was moved in"
    );
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
        let e = clone_refused(&f, json!({ "url": url, "dir": "c" }), rule).await?;
        assert!(!e.message.is_empty());
        assert_eq!(names(&f.root), before, "{url}: something was created");
    }
    // The default policy: https and ssh only.
    let d = fixture(GitSettings::default()).await?;
    let e = clone_refused(
        &d,
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
    let e = clone_err(&f, json!({ "url": url, "dir": "exists" })).await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    assert_eq!(
        std::fs::read_to_string(f.root.join("exists/keep.txt"))?,
        "keep\n"
    );
    let e = clone_err(&f, json!({ "url": url, "dir": "" })).await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    // A link in the root's place: the clone's folder exists already; init does not follow it.
    let e = clone_err(&f, json!({ "url": url, "dir": "link" })).await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    f.refused(Op::GitInit, json!({ "dir": "link" }), "symlink")
        .await?;
    for (dir, rule) in [
        ("../sentinel/c", "parent_reference"),
        ("link/c", "symlink"),
        ("/tmp/c", "absolute_path"),
    ] {
        clone_refused(&f, json!({ "url": url, "dir": dir }), rule).await?;
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
