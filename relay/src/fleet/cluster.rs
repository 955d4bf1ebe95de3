//! `cm-relay cluster add|remove|status`: registering this machine's relay in the fleet (with
//! its peer identity, created on first use), retiring a relay, and listing the relays. Each
//! change is audited like every other administration change.

use super::identity;
use super::member::liveness_ms;
use crate::admin::CLI_ACTOR;
use crate::audit_event::Audit;
use crate::config::StoreConfig;
use crate::state::{StateDir, StateError};
use crate::store::{PgStore, RelayRow, StoreError, StoreWrite};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Why a `cluster` command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The store is SQLite.
    #[error(
        "a fleet of relays needs PostgreSQL: set [store] backend = \"postgres\" and url in relay.toml (see docs/deployment.md, \"A fleet of relays\")"
    )]
    NeedsPostgres,
    /// Bad input (the message says what to do).
    #[error("{0}")]
    Input(String),
    /// The state directory or the peer identity.
    #[error(transparent)]
    State(#[from] StateError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens the fleet's database (PostgreSQL only).
///
/// # Errors
/// [`ClusterError::NeedsPostgres`] on SQLite; connection failures.
pub fn open(store: &StoreConfig) -> Result<PgStore, ClusterError> {
    match store {
        StoreConfig::Sqlite => Err(ClusterError::NeedsPostgres),
        StoreConfig::Postgres(pg) => Ok(PgStore::open(pg)?),
    }
}

/// What `cluster add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The pin of this relay's peer identity, as registered.
    pub pin: String,
    /// Whether `peer.crt`/`peer.key` were created now (else the existing ones were kept).
    pub created_identity: bool,
}

fn check_peer_addr(peer_addr: &str) -> Result<(), ClusterError> {
    let ok = peer_addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(ClusterError::Input(format!(
            "--peer-addr {peer_addr:?} is not HOST:PORT; give the address other relays reach this one at, e.g. relay-b.internal:7444"
        )))
    }
}

fn check_id(id: &str) -> Result<(), ClusterError> {
    if proto::ids::is_valid_name(id) {
        Ok(())
    } else {
        Err(ClusterError::Input(format!(
            "--id {id:?} is not a plain name: use letters, digits, '-', '_' or '.'"
        )))
    }
}

/// `cluster add`: creates this relay's peer identity in `dir` if it has none, and registers it
/// as relay `id` reachable at `peer_addr`. Audited (`cluster_add`).
///
/// # Errors
/// Bad id or address, an id a live relay with another identity holds, I/O or database failures.
pub fn add(
    dir: &StateDir,
    store: &PgStore,
    id: &str,
    peer_addr: &str,
    now_ms: u64,
) -> Result<Added, ClusterError> {
    check_id(id)?;
    check_peer_addr(peer_addr)?;
    let root = dir.root();
    if !root.exists() {
        std::fs::create_dir_all(root).map_err(|source| StateError::Io {
            path: root.to_owned(),
            source,
        })?;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| StateError::Io {
                path: root.to_owned(),
                source,
            },
        )?;
    }
    let (pin, created_identity) = if dir.peer_cert_path().exists() {
        (identity::load(dir)?.2, false)
    } else {
        (identity::create(dir)?, true)
    };
    store.register_relay(id, peer_addr, &pin, now_ms)?;
    let row = Audit::Change {
        actor: CLI_ACTOR.into(),
        op: "cluster_add",
        summary: format!("relay {id} at {peer_addr}, peer pin {pin}"),
        host: None,
    }
    .row();
    StoreWrite::audit(store, now_ms, &row)?;
    Ok(Added {
        pin,
        created_identity,
    })
}

/// `cluster remove`: retires relay `id`; peers refuse it at once. Audited (`cluster_remove`).
///
/// # Errors
/// Unknown id, database failures.
pub fn remove(store: &PgStore, id: &str, now_ms: u64) -> Result<(), ClusterError> {
    store.retire_relay(id, now_ms)?;
    let row = Audit::Change {
        actor: CLI_ACTOR.into(),
        op: "cluster_remove",
        summary: format!("relay {id} retired"),
        host: None,
    }
    .row();
    StoreWrite::audit(store, now_ms, &row)?;
    Ok(())
}

/// One line of `cluster status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RelayStatus {
    /// Its id.
    pub id: String,
    /// Where peers reach it.
    pub peer_addr: String,
    /// The pin of its peer identity.
    pub peer_pin: String,
    /// Heart-beat within the liveness window, and not retired.
    pub alive: bool,
    /// Milliseconds since its last heartbeat (`None`: never, or it stopped cleanly).
    pub heartbeat_age_ms: Option<u64>,
    /// Hosts whose agents it holds.
    pub hosts: u64,
    /// Retired by `cluster remove`.
    pub retired: bool,
    /// A peer relay that could not reach it within the liveness window (a cut peer link).
    pub unreachable_from: Option<String>,
}

/// What a row says, judged with the liveness window of `heartbeat_timeout`.
pub fn status_of(row: RelayRow, heartbeat_timeout: Duration) -> RelayStatus {
    let window = liveness_ms(heartbeat_timeout);
    let retired = row.retired_ms.is_some();
    let unreachable_from = row
        .unreachable
        .filter(|(_, age)| *age <= window)
        .map(|(by, _)| by);
    RelayStatus {
        unreachable_from,
        alive: !retired && row.heartbeat_age_ms.is_some_and(|a| a <= window),
        id: row.id,
        peer_addr: row.peer_addr,
        peer_pin: row.peer_pin,
        heartbeat_age_ms: row.heartbeat_age_ms,
        hosts: row.hosts,
        retired,
    }
}

/// `cluster status`: every registered relay.
///
/// # Errors
/// Database failures.
pub fn status(
    store: &PgStore,
    heartbeat_timeout: Duration,
) -> Result<Vec<RelayStatus>, ClusterError> {
    Ok(store
        .list_relays()?
        .into_iter()
        .map(|r| status_of(r, heartbeat_timeout))
        .collect())
}

/// The table `cluster status` prints.
pub fn table(relays: &[RelayStatus]) -> String {
    let mut out = format!(
        "{:<20} {:<28} {:<8} {:>10} {:>6}  NOTE\n",
        "RELAY", "PEER ADDRESS", "STATE", "HEARTBEAT", "HOSTS"
    );
    for r in relays {
        let state = if r.retired {
            "retired"
        } else if r.alive {
            "alive"
        } else {
            "DOWN"
        };
        let beat = r.heartbeat_age_ms.map_or_else(
            || "-".to_owned(),
            |a| format!("{:.1}s ago", a as f64 / 1000.0),
        );
        let note = r
            .unreachable_from
            .as_ref()
            .map(|by| format!("{by} could not reach it"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<20} {:<28} {:<8} {:>10} {:>6}  {note}\n",
            r.id, r.peer_addr, state, beat, r.hosts
        ));
    }
    if relays.is_empty() {
        out.push_str(
            "(no relays registered: `cm-relay cluster add --id NAME --peer-addr HOST:7444`)\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ids_and_addresses_say_what_to_give() {
        assert!(check_peer_addr("relay-b.internal:7444").is_ok());
        assert!(check_peer_addr("[2001:db8::1]:7444").is_ok());
        for bad in ["relay-b", ":7444", "b:0", "b:port"] {
            let e = check_peer_addr(bad).unwrap_err().to_string();
            assert!(e.contains("HOST:PORT"), "{e}");
        }
        assert!(check_id("relay-b").is_ok());
        assert!(
            check_id("-x")
                .unwrap_err()
                .to_string()
                .contains("plain name")
        );
    }

    #[test]
    fn a_relay_needs_postgresql() {
        let e = open(&StoreConfig::Sqlite).unwrap_err().to_string();
        assert!(
            e.contains("needs PostgreSQL") && e.contains("backend = \"postgres\""),
            "{e}"
        );
    }

    #[test]
    fn a_stale_or_retired_relay_is_not_alive() {
        let row = |age, retired: bool| RelayRow {
            id: "b".into(),
            peer_addr: "b:7444".into(),
            peer_pin: "sha256:x".into(),
            added_ms: 0,
            retired_ms: retired.then_some(5),
            heartbeat_age_ms: age,
            hosts: 2,
            unreachable: None,
        };
        let t = Duration::from_secs(10);
        assert!(status_of(row(Some(9_000), false), t).alive);
        assert!(!status_of(row(Some(10_001), false), t).alive);
        assert!(!status_of(row(None, false), t).alive);
        assert!(!status_of(row(Some(1), true), t).alive);
        // The window never drops below a few relay heartbeats.
        assert!(status_of(row(Some(4_000), false), Duration::from_secs(1)).alive);
        let printed = table(&[status_of(row(None, false), t)]);
        assert!(printed.contains("DOWN"), "{printed}");
        // A peer's recent report that it could not reach the relay is shown; an old one not.
        let mut cut = row(Some(1), false);
        cut.unreachable = Some(("a".into(), 2_000));
        assert_eq!(
            status_of(cut.clone(), t).unreachable_from.as_deref(),
            Some("a")
        );
        assert!(table(&[status_of(cut.clone(), t)]).contains("a could not reach it"));
        cut.unreachable = Some(("a".into(), 60_000));
        assert_eq!(status_of(cut, t).unreachable_from, None);
    }
}
