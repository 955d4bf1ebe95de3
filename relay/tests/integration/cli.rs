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
