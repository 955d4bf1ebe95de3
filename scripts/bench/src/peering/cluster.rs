//! A fleet for the bench: a throwaway PostgreSQL (`initdb` into a temporary directory), and
//! `cm-relay run` child processes sharing it, each with `[fleet]` in its `relay.toml` and
//! registered with `cm-relay cluster add`, all with relay a's client-facing certificate, and
//! with `MALLOC_ARENA_MAX=2` as the shipped systemd unit sets it.

use crate::child::{self, Proc};
use crate::pg_server::PgServer;
use anyhow::{Context, Result, ensure};
use cm_relay::config::StoreConfig;
use cm_relay::state::{self, StateDir};
use cm_relay::store::PgConfig;
use proto::ids::UserId;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// One relay process of the fleet.
#[derive(Debug)]
pub struct Member {
    /// Its id (`[fleet] id`).
    pub id: String,
    /// The process.
    pub proc: Proc,
    /// Where operators and agents dial it.
    pub addr: SocketAddr,
    /// Its `relay.toml`.
    pub config: PathBuf,
    /// Its state directory.
    pub state: PathBuf,
}

/// PostgreSQL and the relays; everything stops on drop (relays first).
#[derive(Debug)]
pub struct Cluster {
    /// The relays, `a`, `b`, `c`… in order.
    pub members: Vec<Member>,
    /// Relay a's state directory on the shared store (enroll hosts through it).
    pub dir: StateDir,
    /// The shared pin and the owner's invite.
    pub init: state::InitOutput,
    _pg: PgServer,
    _tmp: TempDir,
}

fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `cm-relay --config CONFIG --state-dir STATE ARGS`.
fn cm_relay_command(bin_dir: &Path, config: &Path, state: &Path, args: &[&str]) -> Result<Command> {
    let mut cmd = Command::new(child::binary(bin_dir, "cm-relay")?);
    cmd.arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .args(args);
    Ok(cmd)
}

/// [`cm_relay_command`], which must succeed.
fn cm_relay(bin_dir: &Path, config: &Path, state: &Path, args: &[&str]) -> Result<()> {
    let out = cm_relay_command(bin_dir, config, state, args)?.output()?;
    ensure!(
        out.status.success(),
        "cm-relay {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl Cluster {
    /// Starts PostgreSQL and `n` relays, or `None` when PostgreSQL is not installed.
    ///
    /// # Errors
    /// A relay that cannot be registered or does not come up.
    pub fn start(bin_dir: &Path, tmp: TempDir, n: usize) -> Result<Option<Self>> {
        let Some(pg) = PgServer::start() else {
            return Ok(None);
        };
        let store = StoreConfig::Postgres(PgConfig {
            url: pg.url(),
            ca_file: None,
        });
        let ids: Vec<String> = (0..n)
            .map(|i| char::from(b'a' + i as u8).to_string())
            .collect();
        let states: Vec<PathBuf> = ids
            .iter()
            .map(|id| tmp.path().join(format!("relay-{id}")))
            .collect();
        let dir = StateDir::new(states[0].clone()).with_store(store);
        let init = state::init(&dir, "127.0.0.1:7443", &UserId::from("owner"))?;
        let mut members = Vec::with_capacity(n);
        for (id, state) in ids.iter().zip(&states) {
            if state != dir.root() {
                std::fs::create_dir_all(state)?;
                std::fs::set_permissions(
                    state,
                    std::os::unix::fs::PermissionsExt::from_mode(0o700),
                )?;
                for file in ["relay.crt", "relay.key"] {
                    std::fs::copy(dir.root().join(file), state.join(file))
                        .with_context(|| format!("copy {file}"))?;
                }
            }
            let config = state.with_extension("toml");
            let peer_addr = format!("127.0.0.1:{}", free_udp_port()?);
            std::fs::write(
                &config,
                format!(
                    "[store]\nbackend = \"postgres\"\nurl = \"{}\"\n\n[fleet]\nid = \"{id}\"\npeer_listen = \"{peer_addr}\"\n",
                    pg.url()
                ),
            )?;
            cm_relay(
                bin_dir,
                &config,
                state,
                &["cluster", "add", "--id", id, "--peer-addr", &peer_addr],
            )?;
            let mut cmd = Command::new(child::binary(bin_dir, "cm-relay")?);
            cmd.arg("--config")
                .arg(&config)
                .arg("--state-dir")
                .arg(state)
                .args(["run", "--listen", "127.0.0.1:0"])
                .env("RUST_LOG", "info")
                // As the shipped unit (scripts/systemd/cm-relay.service) runs every relay.
                .env("MALLOC_ARENA_MAX", "2");
            let proc = Proc::spawn(cmd)?;
            let addr = child::local_addr(&proc.wait_for("relay listening")?)?;
            members.push(Member {
                id: id.clone(),
                proc,
                addr,
                config,
                state: state.clone(),
            });
        }
        Ok(Some(Self {
            members,
            dir,
            init,
            _pg: pg,
            _tmp: tmp,
        }))
    }

    /// Relay `i`'s address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.members[i].addr
    }

    /// `cm-relay ARGS` with relay `i`'s configuration and state directory.
    ///
    /// # Errors
    /// A missing binary.
    pub fn command(&self, bin_dir: &Path, i: usize, args: &[&str]) -> Result<Command> {
        let m = &self.members[i];
        cm_relay_command(bin_dir, &m.config, &m.state, args)
    }

    /// Stops the relays (SIGTERM), then the database.
    pub fn stop(self) {
        for m in self.members {
            m.proc.stop();
        }
    }
}
