//! A profile naming two relays ("A,B": two relays on one PostgreSQL, sharing one key, so one
//! pin): `cm-tui login` takes the list, and the commands keep working through B after A stops.

use crate::pg_server::PgServer;
use anyhow::Result;
use cm_relay::config::{RelayConfig, StoreConfig};
use cm_relay::server::Relay;
use cm_relay::state::{self, StateDir};
use cm_relay::store::PgConfig;
use proto::ids::UserId;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn tui(state: &Path, args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_cm-tui"))
        .args(args)
        .env("CM_TUI_STATE_DIR", state)
        .env("CM_SECRET_STORE", "file")
        .output()?)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn relay_on(dir: &StateDir, store: &StoreConfig) -> Result<Relay> {
    let mut config = RelayConfig::new(dir.root().to_owned());
    config.listen = "127.0.0.1:0".parse()?;
    config.store = store.clone();
    Ok(Relay::spawn(config).await?)
}

fn hosts_json(state: &Path) -> Result<serde_json::Value> {
    let out = tui(state, &["hosts", "--json"])?;
    anyhow::ensure!(out.status.success(), "{}", stderr(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_with_two_relays_keeps_working_through_the_second_when_the_first_stops()
-> Result<()> {
    let Some(server) = PgServer::start() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let store = StoreConfig::Postgres(PgConfig {
        url: server.url(),
        ca_file: None,
    });
    let dir_a = StateDir::new(tmp.path().join("a")).with_store(store.clone());
    let dir_b = StateDir::new(tmp.path().join("b")).with_store(store.clone());
    // The store is blocking (the postgres crate): set up off the async threads.
    let (a, b) = (dir_a.clone(), dir_b.clone());
    let init = tokio::task::spawn_blocking(move || -> Result<_> {
        let init = state::init(&a, "127.0.0.1:9", &UserId::from("owner"))?;
        std::fs::create_dir_all(b.root())?;
        std::fs::set_permissions(b.root(), std::fs::Permissions::from_mode(0o700))?;
        std::fs::copy(a.cert_path(), b.cert_path())?;
        std::fs::copy(a.key_path(), b.key_path())?;
        cm_relay::cli::host_add(&a, "box", None)?;
        Ok(init)
    })
    .await??;
    let relay_a = relay_on(&dir_a, &store).await?;
    let relay_b = relay_on(&dir_b, &store).await?;
    let list = format!("{},{}", relay_a.local_addr(), relay_b.local_addr());

    // The invite names both relays; the profile keeps the list as given.
    let mut invite = init.invite;
    invite.relay.clone_from(&list);
    let tui_state = tmp.path().join("tui");
    let out = tui(&tui_state, &["login", &invite.encode()])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout)?;
    assert!(
        text.starts_with(&format!("logged in as owner at {list}")),
        "{text}"
    );
    assert_eq!(hosts_json(&tui_state)?["hosts"][0]["host"], "box");

    relay_a.shutdown().await;
    assert_eq!(hosts_json(&tui_state)?["hosts"][0]["host"], "box");
    relay_b.shutdown().await;
    Ok(())
}
