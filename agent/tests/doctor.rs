//! `cm-agent doctor` against a real relay and the test model: a healthy setup passes; a
//! missing root, a wrong pin, an unreachable model provider, a missing model and an unset
//! `{env:NAME}` each give one line saying what to do.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use cm_agent::config::{ConfigFile, OpencodeSection, RelaySetting, WorkspaceEntry};
use cm_agent::{doctor, enroll};
use cm_client::secrets::StoreChoice;
use cm_relay::config::RelayConfig;
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
    let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;
    let mut file = ConfigFile::load(&config)?;
    file.workspaces.push(WorkspaceEntry {
        name: "demo".into(),
        path: root.clone(),
        permission: None,
        sandbox: None,
        subworkspaces: None,
    });
    file.opencode = Some(mock_model(&model.base_url(), "mock-key")?);
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
    // The kernel sandbox each workspace gets, with the kernel's Landlock ABI.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ok    sandbox") && l.contains("demo: enforced: Landlock ABI")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ok    model") && l.contains("mock/mock-model")),
        "{lines:#?}"
    );
    let url = model.base_url();
    assert!(
        lines.iter().any(|l| l.starts_with("ok    provider")
            && l.contains(&format!("mock at {url} accepts connections"))),
        "{lines:#?}"
    );

    // Broken: the root is gone, the pin is someone else's, the model provider is down.
    model.shutdown().await;
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
    assert!(
        lines.iter().any(|l| l.starts_with("FAIL  provider")
            && l.contains(&format!("mock at {url} cannot be reached"))
            && l.contains("options.baseURL in [opencode.provider.mock]")),
        "{lines:#?}"
    );
    relay.shutdown().await;
    Ok(())
}

/// A relay list: every address is checked, each named in its line; a dead one fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_every_relay_address() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = StateDir::new(tmp.path().join("relay"));
    state::init(&dir, "127.0.0.1:9", &UserId::from("owner"))?;
    let mut rc = RelayConfig::new(dir.root().to_owned());
    rc.listen = "127.0.0.1:0".parse()?;
    let relay = Relay::spawn(rc).await?;
    let live = relay.local_addr().to_string();
    let token = cm_relay::cli::host_add(&dir, "box", Some(live.clone()))?;
    let config = tmp.path().join("agent.toml");
    let state_dir = tmp.path().join("agent-state");
    enroll::enroll(&token.encode(), &config, &state_dir, StoreChoice::File)?;
    // A port nobody answers on: bound, then closed.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .to_string();
    let mut file = ConfigFile::load(&config)?;
    file.relay = RelaySetting::Many(vec![live.clone(), dead.clone()]);
    file.save(&config)?;

    let findings = doctor::check(&config, &state_dir).await;
    let lines: Vec<String> = findings.iter().map(|f| f.line()).collect();
    assert!(
        lines.iter().any(|l| l.starts_with("ok    secret")),
        "the secret enrolled for the first relay is found: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("ok    relay")
            && l.contains(&format!("{live} (of {live},{dead}) reachable"))),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("FAIL  relay")
            && l.contains(&format!("{dead} (of "))
            && l.contains("UDP port is open")),
        "{lines:#?}"
    );
    relay.shutdown().await;
    Ok(())
}

/// An `[opencode]` table for an OpenAI-compatible provider `mock` at `base_url` (the shape a
/// new user writes for a local model server).
fn mock_model(base_url: &str, api_key: &str) -> anyhow::Result<OpencodeSection> {
    let provider: toml::Table = toml::from_str(&format!(
        r#"
[mock]
npm = "@ai-sdk/openai-compatible"
options = {{ baseURL = "{base_url}", apiKey = "{api_key}" }}
models = {{ mock-model = {{ name = "Mock", tool_call = true, limit = {{ context = 128000, output = 4096 }} }} }}
"#
    ))?;
    Ok(OpencodeSection {
        model: Some("mock/mock-model".into()),
        provider: Some(provider),
        ..OpencodeSection::default()
    })
}

/// `cm-agent doctor` on `config`, with `env` set; its stdout lines.
fn doctor_lines(
    dir: &std::path::Path,
    config: &ConfigFile,
    env: &[(&str, &str)],
) -> anyhow::Result<Vec<String>> {
    let path = dir.join("agent.toml");
    config.save(&path)?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cm-agent"))
        .arg("--config")
        .arg(&path)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("doctor")
        .envs(env.iter().copied())
        .output()?;
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(str::to_owned)
        .collect())
}

/// The README's first setup had no model: doctor said ok and the first prompt hung. Now a
/// missing model fails the check and says what to add.
#[test]
fn doctor_fails_without_a_model_and_says_what_to_add() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let file = ConfigFile {
        relay: "127.0.0.1:9".into(),
        pin: proto::token::pin_from_spki(b"a relay"),
        host: "box".into(),
        ..ConfigFile::default()
    };
    let lines = doctor_lines(tmp.path(), &file, &[])?;
    assert!(
        lines.iter().any(|l| l.starts_with("FAIL  model")
            && l.contains("model = \"provider/model\"")
            && l.contains("[opencode.provider.<provider>]")),
        "{lines:#?}"
    );
    Ok(())
}

/// A provider key read from the host's environment (`apiKey = "{env:NAME}"`) must be set where
/// the agent runs.
#[test]
fn doctor_names_an_unset_provider_key_variable() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let file = ConfigFile {
        relay: "127.0.0.1:9".into(),
        pin: proto::token::pin_from_spki(b"a relay"),
        host: "box".into(),
        opencode: Some(mock_model(
            "http://127.0.0.1:9/v1",
            "{env:CM_DOCTOR_TEST_PROVIDER_KEY}",
        )?),
        ..ConfigFile::default()
    };
    let unset = doctor_lines(tmp.path(), &file, &[])?;
    assert!(
        unset.iter().any(|l| l.starts_with("FAIL  provider")
            && l.contains("{env:CM_DOCTOR_TEST_PROVIDER_KEY}")
            && l.contains("export CM_DOCTOR_TEST_PROVIDER_KEY")),
        "{unset:#?}"
    );
    let set = doctor_lines(
        tmp.path(),
        &file,
        &[("CM_DOCTOR_TEST_PROVIDER_KEY", "sk-test")],
    )?;
    assert!(
        !set.iter()
            .any(|l| l.contains("CM_DOCTOR_TEST_PROVIDER_KEY")),
        "{set:#?}"
    );
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
