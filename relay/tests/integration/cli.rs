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
    assert!(String::from_utf8(out.stderr)?.contains("1 problem(s) found"));
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
