//! `cm-relay doctor` on PostgreSQL: the database is reachable and at this build's schema
//! version, and with `[fleet]`: this relay is registered with its peer identity, and the other
//! relays are alive (and their peer addresses resolve).

use super::cluster::status_of;
use super::config::FleetConfig;
use super::identity;
use crate::finding::Finding;
use crate::state::StateDir;
use crate::store::{PgConfig, PgStore, RelayRow};
use std::net::ToSocketAddrs;
use std::time::Duration;

/// The database checks: reachable, schema version, audit chain. Connects without migrating.
pub fn database(pg: &PgConfig) -> (Vec<Finding>, Option<PgStore>) {
    let store = match PgStore::connect(pg) {
        Ok(s) => s,
        Err(e) => {
            return (
                vec![Finding::fail(
                    "database",
                    format!("{e}; is PostgreSQL running and reachable from here?"),
                )],
                None,
            );
        }
    };
    let expected = PgStore::expected_schema_version();
    let finding = match store.schema_version() {
        Err(e) => Finding::fail("database", format!("{e}")),
        Ok(v) if v < expected => Finding::fail(
            "database",
            format!(
                "schema version {v}, this build expects {expected}: `cm-relay run` (or any other cm-relay command) migrates it"
            ),
        ),
        Ok(v) if v > expected => Finding::fail(
            "database",
            format!(
                "schema version {v} is newer than this build's {expected}: upgrade cm-relay on this machine (every relay of a fleet runs the same version)"
            ),
        ),
        Ok(v) => match store.audit_verify() {
            Ok(None) => Finding::ok(
                "database",
                format!("PostgreSQL reachable, schema version {v}, audit chain intact"),
            ),
            Ok(Some(row)) => Finding::fail(
                "database",
                format!(
                    "audit chain broken at row {row}: the audit trail was edited; investigate, then restore from a backup"
                ),
            ),
            Err(e) => Finding::fail("database", format!("{e}")),
        },
    };
    (vec![finding], Some(store))
}

/// The fleet checks for relay `fleet.id`.
pub fn fleet(
    store: &PgStore,
    dir: &StateDir,
    fleet: &FleetConfig,
    heartbeat_timeout: Duration,
) -> Vec<Finding> {
    let relays = match store.list_relays() {
        Ok(r) => r,
        Err(e) => return vec![Finding::fail("fleet", format!("{e}"))],
    };
    let id = fleet.id.0.as_str();
    let mut out = vec![this_relay(&relays, dir, id)];
    for row in relays.into_iter().filter(|r| r.id != id) {
        let s = status_of(row, heartbeat_timeout);
        if s.retired {
            continue;
        }
        let resolves = s
            .peer_addr
            .to_socket_addrs()
            .is_ok_and(|mut a| a.next().is_some());
        out.push(if !resolves {
            Finding::fail(
                "peer relay",
                format!("{}: its peer address {} does not resolve from here; fix DNS, or register it again with `cm-relay cluster add --id {} --peer-addr HOST:PORT` on its machine", s.id, s.peer_addr, s.id),
            )
        } else if let Some(by) = s.unreachable_from.as_ref().filter(|_| s.alive) {
            Finding::fail(
                "peer relay",
                format!("{}: alive, but relay {by} could not reach it at {}: check that UDP {} is open between the relays", s.id, s.peer_addr, s.peer_addr.rsplit_once(':').map_or("7444", |(_, p)| p)),
            )
        } else if s.alive {
            Finding::ok(
                "peer relay",
                format!("{}: alive at {}, {} hosts", s.id, s.peer_addr, s.hosts),
            )
        } else {
            Finding::fail(
                "peer relay",
                format!(
                    "{}: no heartbeat {}: is it running? If it is gone for good, `cm-relay cluster remove --id {}`",
                    s.id,
                    s.heartbeat_age_ms
                        .map_or_else(|| "ever (or it stopped)".to_owned(), |a| format!("for {} s", a / 1000)),
                    s.id
                ),
            )
        });
    }
    out
}

fn this_relay(relays: &[RelayRow], dir: &StateDir, id: &str) -> Finding {
    let Some(row) = relays.iter().find(|r| r.id == id) else {
        return Finding::fail(
            "fleet",
            format!(
                "relay {id} is not registered: run `cm-relay cluster add --id {id} --peer-addr HOST:7444` on this machine"
            ),
        );
    };
    if row.retired_ms.is_some() {
        return Finding::fail(
            "fleet",
            format!(
                "relay {id} is retired; `cm-relay cluster add --id {id} --peer-addr HOST:7444` registers it again"
            ),
        );
    }
    match identity::load(dir) {
        Err(e) => Finding::fail("fleet", format!("{e}")),
        Ok((_, _, pin)) if pin != row.peer_pin => Finding::fail(
            "fleet",
            format!(
                "peer.crt has pin {pin} but relay {id} is registered with {}: run `cm-relay cluster add --id {id} --peer-addr {}` again",
                row.peer_pin, row.peer_addr
            ),
        ),
        Ok(_) => Finding::ok(
            "fleet",
            format!(
                "relay {id} registered at {} with this peer identity",
                row.peer_addr
            ),
        ),
    }
}
