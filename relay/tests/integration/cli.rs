//! The `cm-relay` binary as an admin uses it: help, doctor on a healthy and a broken setup.

use crate::harness::*;
use anyhow::Result;
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
    let port = free_udp_port()?.to_string();
    let listen = format!("127.0.0.1:{port}");
    let out = relay_cmd(&state, &["doctor", "--listen", &listen])?;
    let text = String::from_utf8(out.stdout)?;
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("pin {}", state.pin)), "{text}");

    std::fs::set_permissions(state.dir.root(), std::fs::Permissions::from_mode(0o755))?;
    let out = relay_cmd(&state, &["doctor", "--listen", &listen])?;
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
