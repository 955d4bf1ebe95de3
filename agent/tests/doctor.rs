//! `cm-agent doctor` against a real relay: a healthy setup passes; a missing root and a wrong
//! pin each give one line saying what to do.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use cm_agent::config::{ConfigFile, WorkspaceEntry};
use cm_agent::{doctor, enroll};
use cm_relay::config::RelayConfig;
use cm_relay::secrets::StoreChoice;
use cm_relay::server::Relay;
use cm_relay::state::{self, StateDir};
use proto::ids::UserId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_healthy_then_broken() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = StateDir::new(tmp.path().join("relay"));
    state::init(&dir, "127.0.0.1:9", &UserId::from("owner"))?;
    let mut rc = RelayConfig::new(dir.root().to_owned());
    rc.listen = "127.0.0.1:0".parse()?;
    let relay = Relay::spawn(rc).await?;
    let token = cm_relay::cli::host_add(&dir, "box", Some(relay.local_addr().to_string()))?;

    let config = tmp.path().join("agent.toml");
    let state_dir = tmp.path().join("agent-state");
    enroll::enroll(&token.encode(), &config, &state_dir, StoreChoice::File)?;
    let root = tmp.path().join("ws");
    std::fs::create_dir(&root)?;
    let mut file = ConfigFile::load(&config)?;
    file.workspaces.push(WorkspaceEntry {
        name: "demo".into(),
        path: root.clone(),
        permission: None,
        sandbox: None,
    });
    file.save(&config)?;

    let findings = doctor::check(&config, &state_dir).await;
    let lines: Vec<String> = findings.iter().map(|f| f.line()).collect();
    assert!(findings.iter().all(|f| f.problem.is_none()), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ok    relay") && l.contains("key pin matches")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("ok    clock")),
        "{lines:#?}"
    );

    // Broken: the root is gone, and the pin is someone else's.
    std::fs::remove_dir(&root)?;
    let mut file = ConfigFile::load(&config)?;
    file.pin = proto::token::pin_from_spki(b"another relay");
    file.save(&config)?;
    let findings = doctor::check(&config, &state_dir).await;
    let lines: Vec<String> = findings.iter().map(|f| f.line()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FAIL  workspace") && l.contains("create it or fix its path")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("FAIL  relay")
            && l.contains("pin mismatch")
            && l.contains("re-enroll")),
        "{lines:#?}"
    );
    relay.shutdown().await;
    Ok(())
}

/// `cm-agent … | head` with `head` gone: a quiet exit with the shell's SIGPIPE status, not a
/// panic with a backtrace.
#[test]
fn a_closed_stdout_pipe_ends_quietly_like_a_pipeline() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let config = tmp.path().join("agent.toml");
    for args in [&["completions", "bash"][..], &["man"], &["doctor"]] {
        let (reader, writer) = std::io::pipe()?;
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cm-agent"))
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(tmp.path().join("state"))
            .args(args)
            .stdout(writer)
            .output()?;
        let err = String::from_utf8(out.stderr)?;
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
    }
    Ok(())
}

/// Doctor checks what `cm-agent run` would use: the file with the `CM_AGENT_*` overrides.
#[test]
fn doctor_checks_the_environment_overrides_too() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let config = tmp.path().join("agent.toml");
    let pin = proto::token::pin_from_spki(b"a relay");
    std::fs::write(
        &config,
        format!("relay = \"127.0.0.1:9\"\npin = \"{pin}\"\nhost = \"box\"\n"),
    )?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cm-agent"))
        .args(["doctor", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .env("CM_AGENT_HOST", "-not a host")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAIL  config") && l.contains("host")),
        "{stdout}"
    );
    Ok(())
}
