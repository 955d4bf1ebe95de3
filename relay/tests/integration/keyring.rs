//! Where `cm-tui` keeps its login credential: in a real Secret Service (a private D-Bus
//! session bus with `gnome-keyring-daemon`, unlocked, started by this test) when the machine
//! has one, and otherwise in the 0600 file fallback, which `auto` uses and says so. The real
//! binaries store, load (a later command connects with it) and delete (logout) it.
//! Under CI (`CI=true`) the keyring is required: `.ci/run` installs it.

use crate::harness::*;
use anyhow::{Context, Result};
use proto::ids::UserId;
use proto::rbac::Role;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const PASSWORD: &str = "correct horse battery";

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

/// A private session bus with an unlocked gnome-keyring on it.
struct Keyring {
    address: String,
    home: PathBuf,
    _bus: Proc,
    _daemon: Proc,
}

fn first_line_with(
    out: impl std::io::Read + Send + 'static,
    needle: &'static str,
) -> Result<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line.contains(needle)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(WAIT)
        .with_context(|| format!("never printed {needle:?}"))
}

fn start_keyring(root: &Path) -> Result<Keyring> {
    let home = root.join("home");
    std::fs::create_dir_all(&home)?;
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!(
            "--address=unix:path={}",
            root.join("bus").display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = bus.stdout.take().context("no stdout")?;
    let bus = Proc { child: bus };
    let address = first_line_with(out, "unix:")?;
    let mut daemon = Command::new("gnome-keyring-daemon")
        .args(["--foreground", "--unlock", "--components=secrets"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    // The login keyring's password (empty), then end of input.
    let mut stdin = daemon.stdin.take().context("no stdin")?;
    stdin.write_all(b"\n")?;
    drop(stdin);
    let out = daemon.stdout.take().context("no stdout")?;
    let daemon = Proc { child: daemon };
    first_line_with(out, "GNOME_KEYRING_CONTROL")?;
    Ok(Keyring {
        address,
        home,
        _bus: bus,
        _daemon: daemon,
    })
}

/// Runs `cm-tui` with its own state and config folders and the given bus.
pub fn tui(state: &Path, home: &Path, bus: &str, store: &str, args: &[&str]) -> Result<Output> {
    let mut child = Command::new(workspace_bin("cm-tui")?)
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("CM_SECRET_STORE", store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    // Commands that need no password may exit before reading it: a closed pipe is fine.
    match stdin.write_all(format!("{PASSWORD}\n").as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    drop(stdin);
    Ok(child.wait_with_output()?)
}

pub fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Logs in with a password, uses the stored credential, logs out; returns the login's output.
fn round_trip(
    relay: &TestRelay,
    state: &Path,
    home: &Path,
    bus: &str,
    store: &str,
) -> Result<String> {
    let login = tui(
        state,
        home,
        bus,
        store,
        &[
            "login",
            &relay.addr_str(),
            "--user",
            "kira",
            "--pin",
            &relay.state.pin,
            "--password-stdin",
        ],
    )?;
    anyhow::ensure!(login.status.success(), "login: {}", text(&login));
    // A later command finds the credential and connects with it.
    let hosts = tui(state, home, bus, store, &["hosts", "--json"])?;
    anyhow::ensure!(hosts.status.success(), "hosts: {}", text(&hosts));
    let logout = tui(state, home, bus, store, &["logout"])?;
    anyhow::ensure!(logout.status.success(), "logout: {}", text(&logout));
    anyhow::ensure!(
        String::from_utf8_lossy(&logout.stdout).contains("revoked"),
        "logout: {}",
        text(&logout)
    );
    let after = tui(state, home, bus, store, &["hosts"])?;
    anyhow::ensure!(
        !after.status.success(),
        "the credential is gone: {}",
        text(&after)
    );
    Ok(text(&login))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_to_a_real_secret_service_else_a_0600_file() -> Result<()> {
    let relay = TestRelay::start().await?;
    let user = UserId::from("kira");
    {
        let store = relay.state.store()?;
        store.add_user(&user, cm_relay::time::now_ms())?;
        store.grant(&user, "*", Role::Viewer)?;
    }
    cm_relay::cli::user_passwd(&relay.state.dir, "kira", PASSWORD)?;
    let root = relay.state.tmp.path();

    // No keyring on the bus: `auto` falls back to the file, says so, and keeps it 0600.
    let state = root.join("tui-file");
    let home = root.join("home-file");
    let bogus = format!("unix:path={}", root.join("no-bus").display());
    let out = tokio::task::block_in_place(|| round_trip(&relay, &state, &home, &bogus, "auto"))?;
    assert!(out.contains("no OS keyring"), "{out}");
    let file = state.join("credentials.json");
    let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    // Demanding the keyring without one is a clear error, not a silent file.
    let refused = tokio::task::block_in_place(|| {
        tui(
            &root.join("tui-none"),
            &home,
            &bogus,
            "secret-service",
            &["hosts"],
        )
    })?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no Secret Service answers"),
        "{}",
        text(&refused)
    );

    // A real Secret Service.
    if on_path("dbus-daemon").is_none() || on_path("gnome-keyring-daemon").is_none() {
        anyhow::ensure!(
            std::env::var_os("CI").is_none(),
            "CI must test the real keyring: install gnome-keyring and dbus-daemon (.ci/run does)"
        );
        eprintln!("no dbus-daemon/gnome-keyring-daemon here: real keyring part skipped");
        relay.shutdown().await;
        return Ok(());
    }
    let keyring = start_keyring(&root.join("keyring"))?;
    let state = root.join("tui-keyring");
    // The keyring registers on the bus right after printing its control socket; a login
    // before that finds no Secret Service and stops before any network call, so retry.
    let out = tokio::time::timeout(WAIT, async {
        loop {
            let attempt = tokio::task::block_in_place(|| {
                round_trip(
                    &relay,
                    &state,
                    &keyring.home,
                    &keyring.address,
                    "secret-service",
                )
            });
            match attempt {
                Ok(out) => return Ok::<_, anyhow::Error>(out),
                Err(e) if e.to_string().contains("no Secret Service answers") => {
                    // Re-check interval while the daemon registers, not a synchronisation sleep.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .context("the keyring never answered")??;
    assert!(
        out.contains("stored in the OS keyring (Secret Service)"),
        "{out}"
    );
    assert!(
        !state.join("credentials.json").exists(),
        "no fallback file with a working keyring"
    );
    relay.shutdown().await;
    Ok(())
}
