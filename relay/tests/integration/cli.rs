//! The `cm-relay` binary as an admin uses it: help, doctor on a healthy and a broken setup.

use crate::harness::*;
use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn relay_cmd(state: &RelayState, args: &[&str]) -> Result<std::process::Output> {
    Ok(Command::new(workspace_bin("cm-relay")?)
        .arg("--state-dir")
        .arg(state.dir.root())
        .args(args)
        .output()?)
}

#[test]
fn doctor_reports_health_and_fixes() -> Result<()> {
    let state = RelayState::new()?;
    // The port of the public address init recorded (in use is fine: "if this relay runs").
    let listen = "127.0.0.1:7443";
    let out = relay_cmd(&state, &["doctor", "--listen", listen])?;
    let text = String::from_utf8(out.stdout)?;
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("pin {}", state.pin)), "{text}");

    std::fs::set_permissions(state.dir.root(), std::fs::Permissions::from_mode(0o755))?;
    let out = relay_cmd(&state, &["doctor", "--listen", listen])?;
    let text = String::from_utf8(out.stdout)?;
    assert!(!out.status.success());
    assert!(
        text.contains("FAIL  state dir") && text.contains("chmod 700"),
        "{text}"
    );
    assert!(String::from_utf8(out.stderr)?.contains("1 problem found"));
    Ok(())
}

#[test]
fn help_has_examples_and_version_names_the_protocol() -> Result<()> {
    let state = RelayState::new()?;
    let help = String::from_utf8(relay_cmd(&state, &["--help"])?.stdout)?;
    assert!(help.contains("Examples:"), "{help}");
    for sub in ["init", "run", "host", "user", "kill", "audit", "doctor"] {
        assert!(help.contains(sub), "{sub} missing from --help");
    }
    let version = String::from_utf8(relay_cmd(&state, &["--version"])?.stdout)?;
    assert!(version.contains("protocol codemantle/1"), "{version}");
    let completions = relay_cmd(&state, &["completions", "fish"])?;
    assert!(String::from_utf8(completions.stdout)?.contains("complete -c cm-relay"));
    Ok(())
}

#[test]
fn audit_verify_names_the_first_tampered_row() -> Result<()> {
    let state = RelayState::new()?;
    let addr: std::net::SocketAddr = "127.0.0.1:7443".parse()?;
    state.add_host("a", addr)?;
    state.add_host("b", addr)?;
    let out = relay_cmd(&state, &["audit", "verify"])?;
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout)?.trim(), "audit chain intact");
    let out = relay_cmd(&state, &["audit", "--host", "b"])?;
    let text = String::from_utf8(out.stdout)?;
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("host_add") && text.contains("host=b"),
        "{text}"
    );

    // Edit row 2 behind the relay's back (dropping the append-only trigger first).
    let db = rusqlite::Connection::open(state.dir.db_path())?;
    db.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'someone else' WHERE id = 2;",
    )?;
    let out = relay_cmd(&state, &["audit", "verify"])?;
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)?.contains("audit chain broken at row 2"));
    // Put it back, then delete a row: the next row no longer chains.
    db.execute("UPDATE audit SET actor = 'cm-relay cli' WHERE id = 2", [])?;
    assert!(relay_cmd(&state, &["audit", "verify"])?.status.success());
    db.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id = 2;")?;
    let out = relay_cmd(&state, &["audit", "verify"])?;
    assert!(String::from_utf8(out.stderr)?.contains("audit chain broken at row 3"));
    Ok(())
}

/// Runs `cm-relay` with its standard output a pipe whose reader is already gone (`| head`
/// that has exited): every write to stdout fails with EPIPE.
fn relay_cmd_closed_stdout(state: &RelayState, args: &[&str]) -> Result<std::process::Output> {
    let (reader, writer) = std::io::pipe()?;
    drop(reader);
    Ok(Command::new(workspace_bin("cm-relay")?)
        .arg("--state-dir")
        .arg(state.dir.root())
        .args(args)
        .stdout(writer)
        .output()?)
}

#[test]
fn a_closed_stdout_pipe_ends_quietly_like_a_pipeline() -> Result<()> {
    let state = RelayState::new()?;
    // The write_all path (completions) and the println! path (user list, audit).
    for args in [
        &["completions", "bash"][..],
        &["user", "list"],
        &["audit"],
        &["man"],
    ] {
        let out = relay_cmd_closed_stdout(&state, args)?;
        let err = String::from_utf8(out.stderr)?;
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
    }
    // clap prints --help itself and ignores the error.
    let out = relay_cmd_closed_stdout(&state, &["--help"])?;
    let err = String::from_utf8(out.stderr)?;
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(out.status.code(), Some(0 | 141)), "{err}");
    Ok(())
}

#[test]
fn init_without_a_public_address_warns_that_the_invite_is_local() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let init = |dir: &str, extra: &[&str]| {
        Command::new(workspace_bin("cm-relay")?)
            .arg("--state-dir")
            .arg(tmp.path().join(dir))
            .arg("init")
            .args(extra)
            .env_remove("CM_RELAY_PUBLIC_ADDR")
            .output()
            .map_err(anyhow::Error::from)
    };
    let out = init("local", &[])?;
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("127.0.0.1:7443") && err.contains("only works on this machine"),
        "{err}"
    );
    assert!(err.contains("--public-addr"), "{err}");

    let out = init("public", &["--public-addr", "relay.example.com:7443"])?;
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(!err.contains("warning"), "{err}");
    Ok(())
}

/// `program args…` run with umask 000 (the most permissive a service manager could leave).
fn with_open_umask(program: &std::path::Path, args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(program)
        .args(args);
    cmd
}

/// The files under `dir` (recursively) whose mode lets anyone but the owner read them.
fn readable_by_others(dir: &std::path::Path, public: &[&str]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if meta.is_dir() {
            found.extend(readable_by_others(&entry.path(), public)?);
        } else if meta.permissions().mode() & 0o077 != 0 && !public.contains(&name.as_str()) {
            found.push(format!("{name} {:o}", meta.permissions().mode() & 0o777));
        }
    }
    Ok(found)
}

#[test]
fn secret_files_are_owner_only_whatever_the_umask() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let relay_dir = tmp.path().join("relay");
    let port = free_udp_port()?;
    let addr = format!("127.0.0.1:{port}");
    let relay = workspace_bin("cm-relay")?;
    let state = ["--state-dir".as_ref(), relay_dir.as_os_str()];
    let init = with_open_umask(
        &relay,
        &[
            &state[..],
            &["init".as_ref(), "--public-addr".as_ref(), addr.as_ref()],
        ]
        .concat(),
    )
    .output()?;
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let host = with_open_umask(
        &relay,
        &[
            &state[..],
            &["host".as_ref(), "add".as_ref(), "box".as_ref()],
        ]
        .concat(),
    )
    .output()?;
    assert!(
        host.status.success(),
        "{}",
        String::from_utf8_lossy(&host.stderr)
    );
    let token = String::from_utf8(host.stdout)?
        .split_whitespace()
        .find(|w| w.starts_with("cm-enroll-"))
        .map(str::to_owned)
        .context("no token printed")?;
    // The running relay opens the database (its WAL files) too.
    let mut run = with_open_umask(
        &relay,
        &[
            &state[..],
            &["run".as_ref(), "--listen".as_ref(), addr.as_ref()],
        ]
        .concat(),
    )
    .env("RUST_LOG", "info")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()?;
    let stderr = run.stderr.take().context("no stderr")?;
    let mut run = Proc { child: run };
    LogLines::read(stderr, "relay").wait_line(&["relay listening"])?;
    // An agent enrolled with its secret in a file.
    let agent_dir = tmp.path().join("agent");
    let config = agent_dir.join("agent.toml");
    let agent_state = agent_dir.join("state");
    let enroll = with_open_umask(
        &workspace_bin("cm-agent")?,
        &[
            "--config".as_ref(),
            config.as_os_str(),
            "--state-dir".as_ref(),
            agent_state.as_os_str(),
            "enroll".as_ref(),
            token.as_ref(),
        ],
    )
    .env("CM_SECRET_STORE", "file")
    .output()?;
    assert!(
        enroll.status.success(),
        "{}",
        String::from_utf8_lossy(&enroll.stderr)
    );
    run.terminate()?;
    let loose = readable_by_others(&relay_dir, &["relay.crt"])?;
    assert!(loose.is_empty(), "relay files others can read: {loose:?}");
    let loose = readable_by_others(&agent_state, &[])?;
    assert!(loose.is_empty(), "agent files others can read: {loose:?}");
    Ok(())
}

#[test]
fn run_listens_on_the_port_init_recorded_and_doctor_flags_another() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("relay");
    let port = free_udp_port()?;
    let public = format!("127.0.0.1:{port}");
    let relay = workspace_bin("cm-relay")?;
    let init = Command::new(&relay)
        .arg("--state-dir")
        .arg(&dir)
        .args(["init", "--public-addr", &public])
        .output()?;
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    // No --listen and no relay.toml: the port the invite names, not 7443.
    let mut run = Command::new(&relay)
        .arg("--state-dir")
        .arg(&dir)
        .arg("run")
        .env("RUST_LOG", "info")
        .env_remove("CM_RELAY_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = run.stderr.take().context("no stderr")?;
    let mut run = Proc { child: run };
    let line = LogLines::read(stderr, "relay").wait_line(&["relay listening"])?;
    assert!(line.contains(&format!("0.0.0.0:{port}")), "{line}");
    run.terminate()?;

    let doctor = |listen: &str| {
        Command::new(&relay)
            .arg("--state-dir")
            .arg(&dir)
            .args(["doctor", "--listen", listen])
            .output()
    };
    let out = doctor(&public)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let other = format!("127.0.0.1:{}", free_udp_port()?);
    let out = doctor(&other)?;
    let text = String::from_utf8(out.stdout)?;
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("FAIL  public address") && text.contains(&format!("dial {public}")),
        "{text}"
    );
    Ok(())
}
