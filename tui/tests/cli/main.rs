//! `cm-tui` command-line behaviour against an in-process relay: login, hosts, logout, and the
//! errors a user sees (one line, non-zero exit, what to do).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use anyhow::{Context, Result};
use cm_relay::config::RelayConfig;
use cm_relay::server::Relay;
use cm_relay::state::{self, StateDir};
use proto::ids::UserId;
use std::process::{Command, Output};

mod multi_relay;
#[path = "../../../relay/tests/support/pg_server.rs"]
#[allow(dead_code, unreachable_pub, reason = "shared with the relay's tests")]
mod pg_server;
mod zero_trust;

struct Env {
    _tmp: tempfile::TempDir,
    dir: StateDir,
    tui_state: std::path::PathBuf,
    relay: Relay,
    invite: String,
}

async fn env() -> Result<Env> {
    let tmp = tempfile::tempdir()?;
    let dir = StateDir::new(tmp.path().join("relay"));
    let out = state::init(&dir, "127.0.0.1:9", &UserId::from("owner"))?;
    let mut config = RelayConfig::new(dir.root().to_owned());
    config.listen = "127.0.0.1:0".parse()?;
    let relay = Relay::spawn(config).await?;
    // The invite names the address given at init; point it at the bound port.
    let mut invite = out.invite;
    invite.relay = relay.local_addr().to_string();
    Ok(Env {
        tui_state: tmp.path().join("tui"),
        _tmp: tmp,
        dir,
        relay,
        invite: invite.encode(),
    })
}

fn tui(env: &Env, args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_cm-tui"))
        .args(args)
        .env("CM_TUI_STATE_DIR", &env.tui_state)
        .env("CM_SECRET_STORE", "file")
        .output()?)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_hosts_logout() -> Result<()> {
    let env = env().await?;
    let out = tui(&env, &["hosts"])?;
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim_end(),
        "cm-tui: not logged in; run `cm-tui login <invite>` or `cm-tui login RELAY --user NAME --pin PIN`"
    );

    let out = tui(&env, &["login", &env.invite])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout)?;
    assert!(
        text.starts_with("logged in as owner at 127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("credentials.json (mode 0600)"), "{text}");

    cm_relay::cli::host_add(&env.dir, "box", None)?;
    let out = tui(&env, &["hosts", "--json"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["hosts"][0]["host"], "box");
    assert_eq!(v["hosts"][0]["online"], false);

    // The invite is spent.
    let out = tui(&env, &["login", &env.invite])?;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already used or expired"),
        "{}",
        stderr(&out)
    );

    let out = tui(&env, &["logout"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let creds = env.dir.open_store()?.list_credentials()?;
    assert!(creds.iter().all(|c| c.revoked), "revoked at the relay");
    let out = tui(&env, &["hosts"])?;
    assert!(stderr(&out).contains("not logged in"), "{}", stderr(&out));
    env.relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_invite_and_missing_options_say_what_to_do() -> Result<()> {
    let env = env().await?;
    let out = tui(&env, &["login", "cm-invite-###"])?;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    let out = tui(&env, &["login", "relay.example:7443"])?;
    assert!(
        stderr(&out).contains("needs --user NAME"),
        "{}",
        stderr(&out)
    );
    let out = tui(&env, &["login", "relay.example:7443", "--user", "bob"])?;
    assert!(stderr(&out).contains("needs --pin"), "{}", stderr(&out));
    env.relay.shutdown().await;
    Ok(())
}

#[test]
fn help_completions_and_man_are_generated_from_clap() -> Result<()> {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cm-tui"))
            .args(args)
            .output()
    };
    let help = String::from_utf8(run(&["--help"])?.stdout)?;
    assert!(help.contains("Examples:"), "{help}");
    let version = String::from_utf8(run(&["--version"])?.stdout)?;
    assert!(version.contains("protocol codemantle/1"), "{version}");
    let bash = run(&["completions", "bash"])?;
    assert!(bash.status.success());
    assert!(String::from_utf8(bash.stdout)?.contains("_cm__tui()"));
    let man = run(&["man"])?;
    assert!(String::from_utf8(man.stdout)?.contains(".TH cm-tui 1"));
    Ok(())
}

#[test]
fn a_bad_tui_toml_names_the_key_and_the_file() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let config = tmp.path().join("tui.toml");
    std::fs::write(&config, "bell = true\nthem = \"dark\"\n")?;
    let out = Command::new(env!("CARGO_BIN_EXE_cm-tui"))
        .args(["hosts", "--config"])
        .arg(&config)
        .env("CM_TUI_STATE_DIR", tmp.path())
        .output()?;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("them") && err.contains(&config.display().to_string()),
        "{err}"
    );
    Ok(())
}

/// Runs `cm-tui` with its standard output a pipe whose reader is already gone (`| head` that
/// has exited): every write to stdout fails with EPIPE.
fn tui_closed_stdout(env: Option<&Env>, args: &[&str]) -> Result<Output> {
    let (reader, writer) = std::io::pipe()?;
    drop(reader);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cm-tui"));
    cmd.args(args).stdout(writer);
    if let Some(env) = env {
        cmd.env("CM_TUI_STATE_DIR", &env.tui_state)
            .env("CM_SECRET_STORE", "file");
    }
    Ok(cmd.output()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_pipe_ends_quietly_like_a_pipeline() -> Result<()> {
    let env = env().await?;
    let out = tui(&env, &["login", &env.invite])?;
    assert!(out.status.success(), "{}", stderr(&out));
    cm_relay::cli::host_add(&env.dir, "box", None)?;
    // write_all errors (man, completions) and println! panics (hosts).
    for args in [
        &["man"][..],
        &["completions", "bash"],
        &["hosts"],
        &["hosts", "--json"],
    ] {
        let out = tui_closed_stdout(Some(&env), args)?;
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
    }
    let out = tui_closed_stdout(None, &["--help"])?;
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(matches!(out.status.code(), Some(0 | 141)));
    env.relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_credential_is_described_in_minutes() -> Result<()> {
    let env = env().await?;
    let out = tui(&env, &["login", &env.invite, "--ttl", "10m"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout)?;
    assert!(text.contains(" min, stored in"), "{text}");
    assert!(!text.contains("0 h"), "{text}");
    env.relay.shutdown().await;
    Ok(())
}

#[test]
fn a_password_login_without_a_terminal_points_to_password_stdin() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    // `setsid`: no controlling terminal even when the tests run in one, so no prompt can open.
    let out = Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_cm-tui"))
        .args([
            "login",
            "127.0.0.1:9",
            "--user",
            "bob",
            "--pin",
            "blake3:00",
        ])
        .env("CM_TUI_STATE_DIR", tmp.path())
        .env("CM_SECRET_STORE", "file")
        .stdin(std::process::Stdio::null())
        .output()?;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no terminal") && err.contains("--password-stdin"),
        "{err}"
    );
    Ok(())
}

/// The `{"error":{"kind":…,"message":…}}` object a `--json` command prints on stderr.
fn json_error(o: &Output) -> serde_json::Value {
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    serde_json::from_str(err.trim_end()).unwrap_or_else(|e| panic!("{e}: {err}"))
}

fn tui_in(state: &std::path::Path, args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_cm-tui"))
        .args(args)
        .env("CM_TUI_STATE_DIR", state)
        .env("CM_SECRET_STORE", "file")
        .output()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_have_distinct_exit_codes_and_one_json_error_under_json() -> Result<()> {
    let env = env().await?;
    // Not logged in: auth (3).
    let out = tui(&env, &["hosts", "--json"])?;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let e = json_error(&out);
    assert_eq!(e["error"]["kind"], "auth");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not logged in")),
        "{e}"
    );
    // Without --json the same failure is one line of prose with the same code.
    let out = tui(&env, &["hosts"])?;
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).starts_with("cm-tui: not logged in"));
    // A usage mistake: usage (2), as JSON too.
    let out = tui(&env, &["fs", "box", "--json"])?;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(json_error(&out)["error"]["kind"], "usage");

    let out = tui(&env, &["login", &env.invite, "--json"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let profile: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(profile["user"], "owner");
    cm_relay::cli::host_add(&env.dir, "box", None)?;
    // An unknown host: not found (5).
    let out = tui(&env, &["workspaces", "nosuchhost", "--json"])?;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(json_error(&out)["error"]["kind"], "not_found");
    // A known host that is not connected: unavailable (6).
    let out = tui(&env, &["sessions", "box", "demo", "--json"])?;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(json_error(&out)["error"]["kind"], "unavailable");
    // approve and reject take --json too (the host is offline here: unavailable).
    let out = tui(&env, &["approve", "box", "demo", "per_1", "--json"])?;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(json_error(&out)["error"]["kind"], "unavailable");
    let out = tui(&env, &["reject", "box", "demo", "per_1", "--json"])?;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));

    // A viewer may look but not start OpenCode: forbidden (4).
    let mut invite = cm_relay::cli::user_add(&env.dir, "vera", "viewer", "*")?;
    invite.relay = env.relay.local_addr().to_string();
    let viewer = env._tmp.path().join("viewer");
    let out = tui_in(&viewer, &["login", &invite.encode()])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tui_in(&viewer, &["opencode", "box", "demo", "start", "--json"])?;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(json_error(&out)["error"]["kind"], "forbidden");
    env.relay.shutdown().await;
    Ok(())
}

#[test]
fn a_host_enrollment_token_given_to_login_is_recognised_and_never_echoed() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let token = "cm-enroll-eyJzZWNyZXQiOiJ0b3BzZWNyZXRob3N0a2V5In0";
    let out = tui_in(tmp.path(), &["login", token])?;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("host enrollment token"), "{err}");
    assert!(err.contains("cm-agent enroll"), "{err}");
    assert!(
        !err.contains("eyJzZWNyZXQ"),
        "the token is not echoed: {err}"
    );
    assert!(out.stdout.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_login_roles_and_connection() -> Result<()> {
    let env = env().await?;
    let out = tui(&env, &["login", &env.invite])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tui(&env, &["status", "--json"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["user"], "owner");
    assert_eq!(v["relay"], env.relay.local_addr().to_string());
    assert!(
        v["pin"].as_str().is_some_and(|p| p.starts_with("blake3:")),
        "{v}"
    );
    assert_eq!(v["connection"]["state"], "connected");
    // The transport in use, and which transports work from here (QUIC and TCP each tried).
    assert!(
        v["transport"]
            .as_str()
            .is_some_and(|t| t.starts_with("QUIC")),
        "{v}"
    );
    assert!(
        v["reachability"]
            .as_str()
            .is_some_and(|r| r.contains("QUIC")),
        "{v}"
    );
    assert_eq!(v["global_role"], "owner");
    assert!(v["expires_at_ms"].as_u64().is_some(), "{v}");
    let text = String::from_utf8(tui(&env, &["status"])?.stdout)?;
    assert!(text.contains("connection:   connected"), "{text}");
    assert!(text.contains("transport:    QUIC"), "{text}");
    assert!(text.contains("owner on every host"), "{text}");
    // The relay gone: the status says so, and the exit code says unavailable.
    let Env {
        _tmp,
        relay,
        tui_state,
        ..
    } = env;
    relay.shutdown().await;
    let out = tui_in(&tui_state, &["status", "--json"])?;
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["connection"]["state"], "unreachable");
    Ok(())
}

#[test]
fn the_keyring_fallback_warning_is_printed_once() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_cm-tui"))
            .arg("hosts")
            .env("CM_TUI_STATE_DIR", tmp.path())
            .env("CM_SECRET_STORE", "auto")
            // No Secret Service to find: `auto` falls back to the file.
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/cm-tui-test",
            )
            .output()
    };
    let first = stderr(&run()?);
    assert!(first.contains("no OS keyring"), "{first}");
    for _ in 0..2 {
        let again = stderr(&run()?);
        assert!(!again.contains("warning"), "said once: {again}");
        assert!(again.contains("not logged in"), "{again}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_dials_with_the_laptops_transport_settings() -> Result<()> {
    let env = env().await?;
    // On 127.0.0.1:0 the relay's TCP listener has a port of its own.
    let tcp = env
        .relay
        .tcp_local_addr()
        .context("the relay has no TCP listener")?;
    let login = |relay_tcp: &str| -> Result<Output> {
        Ok(Command::new(env!("CARGO_BIN_EXE_cm-tui"))
            .args(["login", &env.invite])
            .env("CM_TUI_STATE_DIR", &env.tui_state)
            .env("CM_SECRET_STORE", "file")
            .env("CM_TRANSPORT", "tcp")
            .env("CM_RELAY_TCP", relay_tcp)
            .output()?)
    };
    // TCP only, at an address where nothing listens: the login must not quietly use QUIC.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let refused = login(&closed.to_string())?;
    anyhow::ensure!(
        !refused.status.success(),
        "a TCP-only login went through without the relay's TCP listener: {}",
        stderr(&refused)
    );
    // TCP only, at the relay's TCP listener: it works (the invite is still unused).
    let ok = login(&tcp.to_string())?;
    anyhow::ensure!(ok.status.success(), "{}", stderr(&ok));
    Ok(())
}
