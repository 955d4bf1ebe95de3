//! The control socket and what `cm-agent attach` says when it cannot attach. No relay runs:
//! the local channel does not need one.

use crate::harness::World;
use anyhow::Result;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

/// Runs `cm-agent attach WORKSPACE`, which must fail; returns its stderr.
fn attach_fails(world: &World, workspace: &str) -> Result<String> {
    let out = world.agent_cmd(&["attach", workspace])?.output()?;
    let stderr = String::from_utf8(out.stderr)?;
    anyhow::ensure!(!out.status.success(), "attach succeeded: {stderr}");
    Ok(stderr)
}

#[test]
fn attach_without_a_running_agent_says_how_to_start_it() -> Result<()> {
    let mut world = World::new("")?;
    let never_started = attach_fails(&world, "demo")?;
    assert!(
        never_started.contains("no cm-agent is running with the state folder")
            && never_started.contains("cm-agent run"),
        "{never_started}"
    );
    // An agent killed without a clean stop leaves its socket file: nobody answers there.
    world.start_agent()?;
    let socket = cm_agent::attach::socket_path(&world.agent_state);
    assert!(socket.exists());
    world.agent()?.kill9();
    assert!(socket.exists(), "SIGKILL leaves the socket file");
    let dead = attach_fails(&world, "demo")?;
    assert!(
        dead.contains("no cm-agent is running with the state folder"),
        "{dead}"
    );
    Ok(())
}

#[test]
fn attach_to_an_unknown_workspace_lists_the_configured_ones() -> Result<()> {
    let mut world = World::new("")?;
    world.start_agent()?;
    let stderr = attach_fails(&world, "nope")?;
    assert!(
        stderr.contains(r#"no workspace "nope" on this host; configured: demo"#),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn attach_without_opencode_says_how_to_install_it() -> Result<()> {
    let mut world = World::new(r#"binary = "/nonexistent/opencode""#)?;
    world.start_agent()?;
    let stderr = attach_fails(&world, "demo")?;
    assert!(
        stderr.contains("OpenCode not found") && stderr.contains("install-opencode.sh"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn the_control_socket_is_owner_only_and_answers_a_bad_request_with_a_refusal() -> Result<()> {
    let mut world = World::new("")?;
    world.start_agent()?;
    let socket = cm_agent::attach::socket_path(&world.agent_state);
    let mode = std::fs::metadata(&socket)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    let state = std::fs::metadata(&world.agent_state)?.permissions().mode() & 0o777;
    assert_eq!(state, 0o700, "state folder mode {state:o}");
    let mut conn = std::os::unix::net::UnixStream::connect(&socket)?;
    conn.write_all(b"{\"op\":\"teleport\"}\n")?;
    let mut reply = String::new();
    BufReader::new(&conn).read_line(&mut reply)?;
    let reply: cm_agent::attach::wire::Reply = serde_json::from_str(&reply)?;
    assert!(
        matches!(
            reply,
            cm_agent::attach::wire::Reply::Refused(
                cm_agent::attach::wire::Refusal::BadRequest { .. }
            )
        ),
        "{reply:?}"
    );
    Ok(())
}

/// Whether this test runs as root (it can then run a command as another user).
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn a_connection_from_another_user_is_refused_even_when_file_modes_let_it_in() -> Result<()> {
    if !is_root() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!(
            "\n\n!!!!!!!! SKIPPED: running attach as another user needs root and `setpriv` !!!!!!!!\n\n"
        );
        return Ok(());
    }
    let mut world = World::new("")?;
    world.start_agent()?;
    // Open every folder on the way and the socket itself to everyone: only the agent's own
    // check of the peer's uid is left.
    let socket = cm_agent::attach::socket_path(&world.agent_state);
    let mut dir = world.agent_state.clone();
    while dir.starts_with(world.tmp.path()) {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
        if !dir.pop() {
            break;
        }
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(crate::harness::bin("cm-agent")?)
        .arg("--state-dir")
        .arg(&world.agent_state)
        .args(["attach", "demo"])
        .output()?;
    let stderr = String::from_utf8(out.stderr)?;
    assert!(
        !out.status.success(),
        "{stderr}{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("the agent runs as uid 0, this command as uid 65534"),
        "{:?} {stderr}",
        out.status
    );
    world
        .agent()?
        .wait_stderr("refused a connection from another user")?;
    Ok(())
}
