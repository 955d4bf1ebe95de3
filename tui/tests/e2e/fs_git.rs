//! `cm-tui fs` and `cm-tui git` through a real relay and agent (issue "Host containment"): the
//! commands work inside the workspace, print JSON with `--json`, and a refusal reaches the
//! operator with its rule and a non-zero exit.

use crate::harness::*;
use anyhow::Result;
use serde_json::Value;

fn refusal(world: &World, args: &[&str], rule: &str) -> Result<()> {
    let out = world.tui(args)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "cm-tui {args:?} succeeded");
    assert!(
        stderr.contains(&format!("refused ({rule})")),
        "cm-tui {args:?}: expected rule {rule}, got: {stderr}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_and_git_commands_end_to_end() -> Result<()> {
    let world = World::start().await?;

    // Folders.
    assert_eq!(
        world.tui_ok(&["fs", "box", "demo", "mkdir", "src"])?.trim(),
        "ok: src"
    );
    std::fs::write(world.workspace.join("src/main.rs"), "fn main() {}\n")?;
    std::os::unix::fs::symlink("/etc", world.workspace.join("etc"))?;
    let ls: Value = serde_json::from_str(&world.tui_ok(&["fs", "box", "demo", "ls", "--json"])?)?;
    let entries: Vec<(String, String)> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Folders first (.git and src), then files and links.
    assert_eq!(
        entries[1],
        ("src".to_owned(), "dir".to_owned()),
        "{entries:?}"
    );
    assert!(
        entries.contains(&("etc".to_owned(), "symlink".to_owned())),
        "{entries:?}"
    );
    let text = world.tui_ok(&["fs", "box", "demo", "ls", "src"])?;
    assert!(text.contains("main.rs"), "{text}");
    world.tui_ok(&["fs", "box", "demo", "mkdir", "empty"])?;
    world.tui_ok(&["fs", "box", "demo", "mv", "empty", "gone"])?;
    world.tui_ok(&["fs", "box", "demo", "rmdir", "gone"])?;
    assert!(!world.workspace.join("gone").exists());
    refusal(&world, &["fs", "box", "demo", "ls", "etc"], "symlink")?;
    refusal(
        &world,
        &["fs", "box", "demo", "ls", "../.."],
        "parent_reference",
    )?;
    refusal(
        &world,
        &["fs", "box", "demo", "mkdir", "/tmp/cm-e2e"],
        "absolute_path",
    )?;
    refusal(&world, &["fs", "box", "demo", "rmdir", "."], "root")?;
    let out = world.tui(&["fs", "box", "demo", "rmdir", "src"])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));

    // Names come from the host: an escape sequence in one never reaches the terminal in text
    // output (an OSC title change here), while --json keeps the exact name.
    let evil = "\u{1b}]0;pwned\u{7}";
    let made = world.tui_ok(&["fs", "box", "demo", "mkdir", evil])?;
    assert!(
        !made.contains('\u{1b}') && made.contains("ok: "),
        "{made:?}"
    );
    assert!(world.workspace.join(evil).is_dir());
    std::fs::write(world.workspace.join(evil).join("f"), "x\n")?;
    let text = world.tui_ok(&["fs", "box", "demo", "ls"])?;
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    // The whole OSC sequence is dropped, not only its ESC.
    assert!(text.lines().any(|l| l == "d  /"), "{text:?}");
    let ls: Value = serde_json::from_str(&world.tui_ok(&["fs", "box", "demo", "ls", "--json"])?)?;
    assert!(
        ls["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == evil),
        "{ls}"
    );
    let status = world.tui_ok(&["git", "box", "demo", "status"])?;
    assert!(!status.contains('\u{1b}'), "{status:?}");

    // Git.
    let st: Value =
        serde_json::from_str(&world.tui_ok(&["git", "box", "demo", "status", "--json"])?)?;
    let paths: Vec<&str> = st["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"src/"),
        "untracked folders are collapsed as git does: {st}"
    );
    world.tui_ok(&["git", "box", "demo", "add", "src"])?;
    let staged = world.tui_ok(&["git", "box", "demo", "diff", "--staged"])?;
    assert!(staged.contains("+fn main() {}"), "{staged}");
    let out = world.tui_ok(&["git", "box", "demo", "commit", "-m", "add main"])?;
    assert!(out.starts_with("committed "), "{out}");
    let log: Value =
        serde_json::from_str(&world.tui_ok(&["git", "box", "demo", "log", "--json"])?)?;
    assert_eq!(log["commits"][0]["subject"], "add main");
    assert_eq!(
        log["commits"][0]["author"], "owner",
        "the operator is the author"
    );
    world.tui_ok(&["git", "box", "demo", "branch", "feature/x", "--checkout"])?;
    let branches = world.tui_ok(&["git", "box", "demo", "branch"])?;
    assert!(branches.contains("* feature/x"), "{branches}");
    refusal(
        &world,
        &["git", "box", "demo", "checkout", "--", "-D"],
        "leading_dash",
    )?;
    refusal(
        &world,
        &["git", "box", "demo", "pull", "--remote", "/tmp/elsewhere"],
        "ref_format",
    )?;
    Ok(())
}

/// Runs git (test set-up).
pub(crate) fn git(dir: &std::path::Path, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `python3 -m http.server` on 127.0.0.1 (an OS-chosen port) serving a folder; killed on drop.
struct DumbHttp {
    child: std::process::Child,
    port: u16,
}

impl DumbHttp {
    fn serve(dir: &std::path::Path) -> Result<Self> {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line)?;
        // "Serving HTTP on 127.0.0.1 port 43567 (http://127.0.0.1:43567/) ..."
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            anyhow::bail!("no port in {line:?}");
        };
        Ok(Self { child, port })
    }
}

impl Drop for DumbHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git daemon --inetd` behind a listener on 127.0.0.1 (an OS-chosen port) serving the
/// repositories beneath `base`; stops with the test's runtime.
pub(crate) async fn git_daemon(base: &std::path::Path) -> Result<u16> {
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
                .stdin(std::process::Stdio::from(OwnedFd::from(stream)))
                .stdout(std::process::Stdio::from(OwnedFd::from(out)))
                .stderr(std::process::Stdio::null())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_init_config_and_clone_end_to_end() -> Result<()> {
    // A bare repository outside every workspace, served over dumb HTTP.
    let served = tempfile::tempdir()?;
    let work = served.path().join("work");
    std::fs::create_dir(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    std::fs::write(work.join("README.md"), "from afar\n")?;
    git(&work, &["add", "."])?;
    git(
        &work,
        &[
            "-c",
            "user.email=t@t",
            "-c",
            "user.name=t",
            "commit",
            "-qm",
            "first",
        ],
    )?;
    git(served.path(), &["clone", "-q", "--bare", "work", "src.git"])?;
    git(&served.path().join("src.git"), &["update-server-info"])?;
    let http = DumbHttp::serve(served.path())?;
    let base = format!("http://127.0.0.1:{}", http.port);
    let daemon = format!("git://127.0.0.1:{}", git_daemon(served.path()).await?);
    let world = World::start_with(
        &format!("\n[git]\nclone_from = [\"{base}/*\", \"{daemon}/*\"]\n"),
        &[],
    )
    .await?;

    let out = world.tui_ok(&["git", "box", "demo", "init", "fresh"])?;
    assert!(
        out.contains("initialized an empty repository in fresh"),
        "{out}"
    );
    let out = world.tui_ok(&[
        "git",
        "box",
        "demo",
        "--dir",
        "fresh",
        "config",
        "user.name",
        "Ada",
    ])?;
    assert_eq!(out.trim(), "user.name = Ada");
    let url = format!("{base}/src.git");
    let out = world.tui_ok(&["git", "box", "demo", "clone", &url, "libs"])?;
    assert!(
        out.starts_with(&format!("cloned {url} into libs (branch main at ")),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(world.workspace.join("libs/README.md"))?,
        "from afar\n"
    );
    let cloned: Value = serde_json::from_str(
        &world.tui_ok(&["git", "box", "demo", "clone", &url, "again", "--json"])?,
    )?;
    assert_eq!(cloned["branch"], "main", "{cloned}");
    // Over git's own protocol, git reports progress: it reaches the operator's stderr.
    let out = world.tui(&[
        "git",
        "box",
        "demo",
        "clone",
        &format!("{daemon}/src.git"),
        "third",
    ])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Receiving objects 100%"), "{stderr:?}");

    refusal(
        &world,
        &["git", "box", "demo", "clone", "file:///etc", "x"],
        "local_remote",
    )?;
    refusal(
        &world,
        &[
            "git",
            "box",
            "demo",
            "clone",
            "--",
            "--upload-pack=touch /tmp/cm-x",
            "x",
        ],
        "leading_dash",
    )?;
    refusal(
        &world,
        &[
            "git",
            "box",
            "demo",
            "clone",
            "https://github.com/a/b.git",
            "x",
        ],
        "url_not_allowed",
    )?;
    refusal(
        &world,
        &[
            "git",
            "box",
            "demo",
            "config",
            "core.sshCommand",
            "touch /tmp/cm-x",
        ],
        "config_key",
    )?;
    assert!(!world.workspace.join("x").exists());
    Ok(())
}
