//! The kernel sandbox around OpenCode (agent/src/sandbox), tried the way an attacker would:
//! through the real binaries, a real `opencode serve` on the test model, and tool calls that
//! OpenCode itself lets through (links inside the workspace, commands it was told to allow).
//! Each refused action leaves a sentinel unchanged; the agent stays online and answering.

use crate::harness::World;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

const SECRET: &str = "sentinel-secret-7f3a";

/// Files outside the workspace whose content must never reach a session, and which must not
/// change: a 0600 file beside the workspace, a fake SSH key in the agent's HOME, and the
/// agent's own credential file.
struct Sentinels {
    outside: PathBuf,
    ssh_key: PathBuf,
    agent_secret: PathBuf,
    hashes: Vec<(PathBuf, blake3::Hash)>,
}

impl Sentinels {
    fn plant(root: &Path, home: &Path, agent_state: &Path) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        let outside = root.join("outside/secret.txt");
        std::fs::create_dir_all(root.join("outside"))?;
        std::fs::write(&outside, format!("{SECRET}\n"))?;
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600))?;
        let ssh_key = home.join(".ssh/id_ed25519");
        std::fs::create_dir_all(home.join(".ssh"))?;
        std::fs::write(
            &ssh_key,
            format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET}\n"),
        )?;
        std::fs::set_permissions(&ssh_key, std::fs::Permissions::from_mode(0o600))?;
        let agent_secret = agent_state.join("secrets.json");
        let mut s = Self {
            outside,
            ssh_key,
            agent_secret,
            hashes: Vec::new(),
        };
        s.hashes = s.hash_all()?;
        Ok(s)
    }

    fn hash_all(&self) -> Result<Vec<(PathBuf, blake3::Hash)>> {
        [&self.outside, &self.ssh_key, &self.agent_secret]
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(p).with_context(|| p.display().to_string())?;
                Ok((p.clone(), blake3::hash(&bytes)))
            })
            .collect()
    }

    fn assert_unchanged(&self) -> Result<()> {
        anyhow::ensure!(self.hash_all()? == self.hashes, "a sentinel file changed");
        anyhow::ensure!(
            !self.outside.with_file_name("written.txt").exists(),
            "a file was written outside the workspace"
        );
        Ok(())
    }

    /// The agent's host secret as it appears in its credential file (it must never leak).
    fn agent_secret_text(&self) -> Result<String> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&self.agent_secret)?)?;
        Ok(v.to_string())
    }
}

/// `RUN_BASH:` of a command OpenCode's own path check cannot read (it is base64), so only the
/// kernel stands between it and the host.
fn hidden_bash(cmd: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(cmd);
    format!("RUN_BASH: echo {b64} | base64 -d | sh 2>&1")
}

fn send(world: &World, text: &str) -> Result<String> {
    world.tui_ok(&["send", "box", "demo", text, "--wait"])
}

fn assert_online_and_answering(world: &World) -> Result<()> {
    let hosts = world.tui_ok(&["hosts", "--json"])?;
    anyhow::ensure!(hosts.contains("\"online\": true"), "host offline: {hosts}");
    let answer = send(world, "still there?")?;
    anyhow::ensure!(answer.contains("You said: still there?"), "{answer}");
    Ok(())
}

async fn sandboxed_world(extra: &str) -> Result<(World, PathBuf, Sentinels)> {
    let home = tempfile::tempdir()?.keep();
    let home_str = home.to_string_lossy().into_owned();
    let world = World::start_with(
        &format!("permission = {{ edit = \"allow\", bash = \"allow\" }}\n{extra}"),
        &[
            ("HOME", &home_str),
            ("SSH_AUTH_SOCK", "/tmp/agent-ssh-sock"),
            ("CM_SANDBOX_CANARY", SECRET),
        ],
    )
    .await?;
    let sentinels = Sentinels::plant(world.tmp.path(), &home, &world.agent_state)?;
    Ok((world, home, sentinels))
}

#[tokio::test(flavor = "multi_thread")]
async fn links_out_of_the_workspace_give_opencode_tools_nothing() -> Result<()> {
    let (world, _home, sentinels) = sandboxed_world("").await?;
    let ws = world.workspace.clone();
    // Committed links, as a cloned repository could hold them.
    std::os::unix::fs::symlink("/", ws.join("root"))?;
    std::os::unix::fs::symlink(&world.agent_state, ws.join("state"))?;
    let via_root = |p: &Path| ws.join("root").join(p.strip_prefix("/").unwrap_or(p));
    let outside = via_root(&sentinels.outside);
    let attempts = [
        format!(r#"TOOL: read {{"filePath":"{}"}}"#, outside.display()),
        format!(
            r#"TOOL: read {{"filePath":"{}"}}"#,
            ws.join("root/etc/shadow").display()
        ),
        format!(
            r#"TOOL: read {{"filePath":"{}"}}"#,
            ws.join("state/secrets.json").display()
        ),
        format!(
            r#"TOOL: grep {{"pattern":"sentinel","path":"{}"}}"#,
            outside.parent().unwrap_or(&outside).display()
        ),
        format!(
            r#"TOOL: glob {{"pattern":"*","path":"{}"}}"#,
            ws.join("state").display()
        ),
        format!(
            r#"TOOL: edit {{"filePath":"{}","oldString":"sentinel","newString":"pwned"}}"#,
            outside.display()
        ),
        format!(
            r#"TOOL: write {{"filePath":"{}","content":"pwned"}}"#,
            outside.with_file_name("written.txt").display()
        ),
    ];
    let agent_secret = sentinels.agent_secret_text()?;
    for (i, attempt) in attempts.iter().enumerate() {
        let answer = send(&world, attempt)?;
        assert!(!answer.contains(SECRET), "{attempt} leaked: {answer}");
        assert!(
            !answer.contains("root:"),
            "{attempt} read /etc/shadow: {answer}"
        );
        assert!(
            !answer.contains("agent-state.json"),
            "{attempt} listed the state dir: {answer}"
        );
        assert!(answer.contains("Tool finished:"), "{attempt}: {answer}");
        // read, read, read, …, edit, write: the kernel's refusal is what the model is told.
        if !(3..5).contains(&i) {
            assert!(
                answer.contains("PermissionDenied") || answer.contains("ermission denied"),
                "{attempt}: the kernel's refusal should be shown: {answer}"
            );
        }
    }
    sentinels.assert_unchanged()?;
    // Nothing of it in any session's history either.
    let sessions: serde_json::Value =
        serde_json::from_str(&world.tui_ok(&["sessions", "box", "demo", "--json"])?)?;
    let ids: Vec<String> = sessions
        .as_array()
        .or_else(|| sessions["sessions"].as_array())
        .context("sessions list")?
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    assert!(ids.len() >= attempts.len(), "{sessions}");
    for s in &ids {
        let history = world.tui_ok(&["messages", "box", "demo", s, "--json"])?;
        assert!(!history.contains(SECRET), "{s}: {history}");
        assert!(!history.contains(&agent_secret), "{s}");
    }
    // Inside the workspace all works: read, write, git.
    let answer = send(&world, "WRITE_FILE: inside.txt hello")?;
    assert!(answer.contains("Wrote file successfully"), "{answer}");
    assert_eq!(std::fs::read_to_string(ws.join("inside.txt"))?, "hello\n");
    let answer = send(&world, &hidden_bash("git status --short"))?;
    assert!(
        answer.contains("inside.txt"),
        "git in the workspace: {answer}"
    );
    assert_online_and_answering(&world)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_commands_cannot_leave_the_workspace_or_exhaust_the_host() -> Result<()> {
    let (world, _home, sentinels) =
        sandboxed_world("\n[sandbox]\npids_max = 96\nmemory_max = \"1536MiB\"\n").await?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let agent_secret = sentinels.agent_secret_text()?;
    // /dev/shm is shared with every other program of the user: neither read nor written.
    let shm_secret = PathBuf::from(format!("/dev/shm/cm-sandbox-test-{}", std::process::id()));
    std::fs::write(&shm_secret, format!("{SECRET}\n"))?;
    let shm_planted = shm_secret.with_extension("planted");
    let attempts = [
        format!("cat {}", shm_secret.display()),
        format!("echo pwned > {}", shm_planted.display()),
        format!(
            "echo pwned > {}",
            sentinels.outside.with_file_name("written.txt").display()
        ),
        format!("cat {}", sentinels.ssh_key.display()),
        format!("cat {}", sentinels.agent_secret.display()),
        format!("cat {}", sentinels.outside.display()),
        format!("cat /proc/{}/environ", agent_pid(&world)?),
        // OpenCode's own config (and plugins beside it) must not change its next launch.
        format!(
            "echo '{{\"permission\":\"allow\"}}' > {}",
            world
                .agent_state
                .join("opencode/demo/xdg/config/opencode/opencode.json")
                .display()
        ),
        format!(
            "echo pwned > {}",
            world
                .agent_state
                .join("opencode/demo/opencode.json")
                .display()
        ),
    ];
    for cmd in &attempts {
        let answer = send(&world, &hidden_bash(cmd))?;
        assert!(!answer.contains(SECRET), "{cmd} leaked: {answer}");
        assert!(
            !answer.contains(&agent_secret),
            "{cmd} leaked the host secret"
        );
        assert!(
            answer.contains("Permission denied") || answer.contains("ermission"),
            "{cmd}: the kernel's refusal should be shown: {answer}"
        );
    }
    let shm_after = std::fs::read_to_string(&shm_secret);
    let planted = shm_planted.exists();
    let _ = std::fs::remove_file(&shm_secret);
    let _ = std::fs::remove_file(&shm_planted);
    assert_eq!(shm_after?, format!("{SECRET}\n"));
    assert!(!planted, "a tool left a file in /dev/shm");
    // The environment is an allow-list: none of the agent's own variables.
    let answer = send(&world, &hidden_bash("env"))?;
    assert!(!answer.contains("CM_SANDBOX_CANARY"), "{answer}");
    assert!(!answer.contains("SSH_AUTH_SOCK"), "{answer}");
    assert!(answer.contains("PATH="), "{answer}");
    // A TCP port the host did not allow.
    let answer = send(
        &world,
        &hidden_bash(&format!(
            "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED'"
        )),
    )?;
    assert!(!answer.contains("CONNECTED"), "{answer}");
    assert!(answer.contains("Permission denied"), "{answer}");
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the connection reached the listener"
    );
    // A Unix socket outside (as a user's systemd manager, D-Bus or an SSH agent listens on).
    let socket_path = world.tmp.path().join("outside/agent.sock");
    let unix = std::os::unix::net::UnixListener::bind(&socket_path)?;
    unix.set_nonblocking(true)?;
    let answer = send(
        &world,
        &hidden_bash(&format!(
            "perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Peer => \"{}\") or die \"refused: $!\\n\"; print \"CONNECTED\\n\"'",
            socket_path.display()
        )),
    )?;
    assert!(!answer.contains("CONNECTED"), "{answer}");
    assert!(answer.contains("refused"), "{answer}");
    assert!(
        matches!(unix.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the connection reached the Unix socket"
    );
    // A memory hog stops at memory_max; a fork bomb at pids_max. The agent is not touched.
    let answer = send(
        &world,
        &hidden_bash("head -c 4G /dev/zero | tail; echo status=$?"),
    )?;
    assert!(
        answer.contains("status=137"),
        "the hog should be killed: {answer}"
    );
    let answer = send(
        &world,
        &hidden_bash("i=0; while [ $i -lt 400 ]; do sleep 5 & i=$((i+1)); done; echo ALL-FORKED"),
    )?;
    assert!(!answer.contains("ALL-FORKED"), "{answer}");
    assert!(
        answer.contains("fork"),
        "the refusal should name fork: {answer}"
    );
    // The operator sees which limits stopped them, on the workspace's sandbox line.
    let ws = workspaces_once_they_contain(&world, &["memory limit 1536 MiB", "process limit 96"])?;
    assert!(ws.contains("\"enforced\""), "{ws}");
    sentinels.assert_unchanged()?;
    assert_online_and_answering(&world)?;
    Ok(())
}

/// `workspaces box --json` once it holds every one of `needles` (the agent reads the
/// launch's cgroup counters every second), bounded by the hang guard.
fn workspaces_once_they_contain(world: &World, needles: &[&str]) -> Result<String> {
    let deadline = std::time::Instant::now() + crate::harness::WAIT;
    loop {
        let ws = world.tui_ok(&["workspaces", "box", "--json"])?;
        if needles.iter().all(|n| ws.contains(n)) {
            return Ok(ws);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the workspace never showed {needles:?}: {ws}"
        );
        std::thread::park_timeout(std::time::Duration::from_millis(200));
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next().map(str::to_owned))
        })
        .is_some_and(|state| state != "Z")
}

/// Has an approved command start a process that double-forks into its own session with no
/// environment (no process group, parent chain or launch marker leads back to OpenCode);
/// returns its pid once it runs.
fn escape_with_setsid(world: &World, name: &str) -> Result<i32> {
    let pid_file = world.workspace.join(format!("{name}.pid"));
    let answer = send(
        world,
        &hidden_bash(&format!(
            r#"setsid sh -c 'env -i /bin/sh -c "echo \$\$ > {}; exec /bin/sleep 1000" </dev/null >/dev/null 2>&1 &'; echo STARTED"#,
            pid_file.display()
        )),
    )?;
    anyhow::ensure!(answer.contains("STARTED"), "{answer}");
    let deadline = std::time::Instant::now() + crate::harness::WAIT;
    let pid: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no pid file");
        std::thread::park_timeout(std::time::Duration::from_millis(50));
    };
    anyhow::ensure!(alive(pid), "the stand-in tool did not start");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    anyhow::ensure!(
        !String::from_utf8_lossy(&environ).contains("CM_AGENT_LAUNCH"),
        "the stand-in should carry no launch marker"
    );
    Ok(pid)
}

/// Whether `pid` outlived what should have ended it (killed here if so, not to leak it).
fn survived(pid: i32) -> bool {
    let alive = alive(pid);
    if alive {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    alive
}

/// The workspace's running `opencode` process.
fn opencode_pid(world: &World) -> Result<i32> {
    std::fs::read_dir("/proc")?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            exe.file_name().is_some_and(|n| n == "opencode") && cwd == world.workspace
        })
        .context("no OpenCode runs in the workspace")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_that_double_forks_into_its_own_session_dies_with_opencode() -> Result<()> {
    let (world, _home, _sentinels) = sandboxed_world("").await?;
    // OpenCode dies on its own (killed here): the escaped tool dies with it, before the
    // agent reports the crash.
    let first = escape_with_setsid(&world, "first")?;
    let oc = opencode_pid(&world)?;
    let killed = std::process::Command::new("kill")
        .args(["-9", &oc.to_string()])
        .status()?;
    anyhow::ensure!(killed.success(), "cannot kill OpenCode {oc}");
    let deadline = std::time::Instant::now() + crate::harness::WAIT;
    loop {
        let s = world.tui_ok(&["opencode", "box", "demo", "status", "--json"])?;
        if s.contains("\"restarts\": 1") {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no restart: {s}");
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
    assert!(!survived(first), "process {first} outlived its OpenCode");
    // OpenCode is stopped by an operator: the same.
    let second = escape_with_setsid(&world, "second")?;
    world.tui_ok(&["opencode", "box", "demo", "stop"])?;
    assert!(
        !survived(second),
        "process {second} outlived its OpenCode's stop"
    );
    assert_online_and_answering(&world)?;
    Ok(())
}

/// The pids cgroup of the workspace's current launch (named after its marker, beneath the
/// agent's own pids cgroup).
fn launch_cgroup(world: &World) -> Result<PathBuf> {
    let state = std::fs::read_to_string(world.agent_state.join("agent-state.json"))?;
    let v: serde_json::Value = serde_json::from_str(&state)?;
    let marker = v["children"]["demo"]["marker"]
        .as_str()
        .context("no launch recorded")?;
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", agent_pid(world)?))?;
    let parent = own
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "pids")
                .then(|| path.to_owned())
        })
        .context("no cgroup v1 pids hierarchy")?;
    Ok(Path::new("/sys/fs/cgroup/pids")
        .join(parent.trim_start_matches('/'))
        .join(format!("codemantle-{}", marker.get(..16).unwrap_or(marker))))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_launch_adopted_or_stopped_by_its_keeper_leaves_no_cgroup_or_tool_behind() -> Result<()> {
    let grace = [("CM_AGENT_ORPHAN_GRACE", "2s")];
    let mut world = World::start_with(
        "permission = { edit = \"allow\", bash = \"allow\" }\n",
        &grace,
    )
    .await?;
    world.tui_ok(&["opencode", "box", "demo", "start"])?;
    let first = launch_cgroup(&world)?;
    anyhow::ensure!(
        first.is_dir(),
        "no cgroup {} for the launch",
        first.display()
    );
    // The agent dies; a new one re-adopts the launch, and stops it.
    world.agent.as_mut().context("agent")?.kill9();
    world.agent = None;
    world.start_agent_with(&grace)?;
    world
        .agent
        .as_ref()
        .context("agent")?
        .wait_stderr("re-adopting OpenCode")?;
    world.tui_ok(&["opencode", "box", "demo", "stop"])?;
    assert!(!first.exists(), "{} is left behind", first.display());
    // The agent dies for good: the keeper stops OpenCode after its grace, and cleans up.
    world.tui_ok(&["opencode", "box", "demo", "start"])?;
    let second = launch_cgroup(&world)?;
    anyhow::ensure!(second.is_dir(), "no cgroup {}", second.display());
    let escaped = escape_with_setsid(&world, "escaped")?;
    let procs = std::fs::read_to_string(second.join("cgroup.procs"))?;
    world.agent.as_mut().context("agent")?.kill9();
    world.agent = None;
    let deadline = std::time::Instant::now() + crate::harness::WAIT;
    while second.exists() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{} is left behind (it held {procs:?}; now {:?})",
            second.display(),
            std::fs::read_to_string(second.join("cgroup.procs"))
        );
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
    assert!(!survived(escaped), "{escaped} outlived the keeper's stop");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opencode_killed_at_its_memory_limit_tells_the_operator_why() -> Result<()> {
    let world = World::start_with("\n[sandbox]\nmemory_max = \"48MiB\"\n", &[]).await?;
    // OpenCode itself cannot start in 48 MiB: the kernel kills it; the agent is untouched.
    let out = world.tui(&["opencode", "box", "demo", "start"])?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = if said.contains("memory limit 48 MiB reached") {
        said
    } else {
        let deadline = std::time::Instant::now() + crate::harness::WAIT;
        loop {
            let s = world.tui_ok(&["opencode", "box", "demo", "status", "--json"])?;
            if s.contains("memory limit 48 MiB reached") {
                break s;
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "last_error never said why: {s} (start said: {said})"
            );
            std::thread::park_timeout(std::time::Duration::from_millis(200));
        }
    };
    assert!(status.contains("memory_max"), "{status}");
    let hosts = world.tui_ok(&["hosts", "--json"])?;
    anyhow::ensure!(hosts.contains("\"online\": true"), "host offline: {hosts}");
    Ok(())
}

fn agent_pid(world: &World) -> Result<u32> {
    world
        .agent
        .as_ref()
        .map(|a| a.child.id())
        .context("no agent")
}

#[tokio::test(flavor = "multi_thread")]
async fn enforce_mode_on_a_kernel_without_landlock_refuses_to_start_opencode() -> Result<()> {
    let world = World::start_with("\n[sandbox]\npretend_abi = 0\n", &[]).await?;
    let out = world.tui(&["send", "box", "demo", "hello", "--wait"])?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Landlock"), "{stderr}");
    let ws = world.tui_ok(&["workspaces", "box", "--json"])?;
    assert!(ws.contains("refused"), "{ws}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn warn_mode_runs_unconfined_logs_what_it_would_refuse_and_says_so() -> Result<()> {
    let world = World::start_with("sandbox = { mode = \"warn\" }\n", &[]).await?;
    let ws = world.tui_ok(&["workspaces", "box", "--json"])?;
    assert!(ws.contains("warn"), "{ws}");
    std::os::unix::fs::symlink("/", world.workspace.join("root"))?;
    let outside = world.tmp.path().join("plain.txt");
    std::fs::write(&outside, "readable-in-warn-mode\n")?;
    let via = world
        .workspace
        .join("root")
        .join(outside.strip_prefix("/").unwrap_or(&outside));
    let answer = send(
        &world,
        &format!(r#"TOOL: read {{"filePath":"{}"}}"#, via.display()),
    )?;
    assert!(answer.contains("readable-in-warn-mode"), "{answer}");
    let agent = world.agent.as_ref().context("no agent")?;
    agent.wait_stderr("sandbox (warn): would have refused")?;
    Ok(())
}
