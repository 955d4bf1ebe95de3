//! `cm-relay doctor` on PostgreSQL: the database is reachable and at this build's schema
//! version, and with `[fleet]`: this relay is registered with its peer identity, and the other
//! relays are alive and answer on their peer endpoints (a real handshake with this relay's
//! peer identity, as forwarding does).

use super::cluster::status_of;
use super::config::FleetConfig;
use super::identity::{self, PEER_SERVER_NAME};
use super::peer_tls::{self, PEER_IDLE_TIMEOUT, PeerIdentity};
use crate::finding::Finding;
use crate::state::StateDir;
use crate::store::{PgConfig, PgStore, RelayRow};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// How long the doctor waits for a peer relay's handshake (as long as forwarding does).
const DIAL_TIMEOUT: Duration = super::peer_pool::CONNECT_TIMEOUT;

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
    let identity = identity::load(dir)
        .ok()
        .map(|(certs, key, _)| PeerIdentity { certs, key });
    for row in relays.into_iter().filter(|r| r.id != id) {
        let s = status_of(row, heartbeat_timeout);
        if s.retired {
            continue;
        }
        let resolves = s
            .peer_addr
            .to_socket_addrs()
            .is_ok_and(|mut a| a.next().is_some());
        // Only a live peer is dialled (a dead one is reported as such below).
        let dialled = match (&identity, resolves && s.alive) {
            (Some(identity), true) => dial(identity.clone(), &s.peer_addr, &s.peer_pin).err(),
            _ => None,
        };
        out.push(if !resolves {
            Finding::fail(
                "peer relay",
                format!("{}: its peer address {} does not resolve from here; fix DNS, or register it again with `cm-relay cluster add --id {} --peer-addr HOST:PORT` on its machine", s.id, s.peer_addr, s.id),
            )
        } else if let Some(why) = dialled {
            Finding::fail(
                "peer relay",
                format!("{}: alive, but its peer endpoint {} does not answer this relay ({why}): check that it is running with [fleet] peer_listen on that port and that UDP {} is open between the relays", s.id, s.peer_addr, s.peer_addr.rsplit_once(':').map_or("7444", |(_, p)| p)),
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

/// Dials the peer endpoint at `addr` as forwarding would (this relay's peer identity, the
/// peer's registered `pin`) and closes the connection again; the reason when it fails.
fn dial(identity: PeerIdentity, addr: &str, pin: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let target = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| format!("does not resolve: {e}"))?
            .next()
            .ok_or_else(|| "resolves to no address".to_owned())?;
        let bind: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = quinn::Endpoint::client(bind)
            .map_err(|e| format!("cannot open a UDP socket here: {e}"))?;
        let config =
            peer_tls::client_config(identity, pin, PEER_IDLE_TIMEOUT).map_err(|e| e.to_string())?;
        let connecting = endpoint
            .connect_with(config, target, PEER_SERVER_NAME)
            .map_err(|e| e.to_string())?;
        let conn = tokio::time::timeout(DIAL_TIMEOUT, connecting)
            .await
            .map_err(|_| format!("no answer within {DIAL_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        conn.close(0u32.into(), b"cm-relay doctor");
        // Lets the close reach the peer (bounded: its answer is not needed).
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        Ok(())
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::RelayId;
    use crate::fleet::directory::PeerInfo;
    use crate::fleet::peer_tls::tests::{FixedDirectory, identity};
    use crate::pg_server::PgServer;
    use crate::store::test_db::pg_config;
    use std::sync::Arc;

    fn peer_findings(findings: &[Finding]) -> Vec<String> {
        findings
            .iter()
            .filter(|f| f.check == "peer relay")
            .map(|f| match &f.problem {
                None => format!("ok {}", f.detail),
                Some(problem) => format!("FAIL {problem}"),
            })
            .collect()
    }

    #[test]
    fn doctor_reports_a_live_peer_whose_peer_endpoint_does_not_answer() {
        let Some(server) = PgServer::start() else {
            return;
        };
        let store = PgStore::open(&pg_config(&server)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path().join("me"));
        std::fs::create_dir_all(dir.root()).unwrap();
        super::super::cluster::add(&dir, &store, "me", "127.0.0.1:1", 1).unwrap();
        let (_, _, my_pin) = identity::load(&dir).unwrap();

        // "up": a real peer endpoint that knows this relay's pin.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (up_identity, up_pin) = identity();
        let directory = FixedDirectory::new("up");
        directory.peers.lock().push(PeerInfo {
            id: RelayId::from("me"),
            peer_addr: "127.0.0.1:1".into(),
            peer_pin: my_pin,
        });
        let up_addr = runtime.block_on(async {
            let config =
                peer_tls::server_config(up_identity, Arc::new(directory), PEER_IDLE_TIMEOUT)
                    .unwrap();
            let endpoint =
                quinn::Endpoint::server(config, (Ipv4Addr::LOCALHOST, 0).into()).unwrap();
            let addr = endpoint.local_addr().unwrap();
            tokio::spawn(async move {
                while let Some(incoming) = endpoint.accept().await {
                    if let Ok(conn) = incoming.await {
                        conn.closed().await;
                    }
                }
            });
            addr
        });
        // "silent": alive by its heartbeat, but nothing answers at its peer address.
        let silent = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let (_, silent_pin) = identity();
        store
            .register_relay("up", &up_addr.to_string(), &up_pin, 1)
            .unwrap();
        store
            .register_relay("silent", &silent_addr.to_string(), &silent_pin, 1)
            .unwrap();
        assert!(store.relay_heartbeat("up").unwrap());
        assert!(store.relay_heartbeat("silent").unwrap());

        let fleet_config = FleetConfig {
            id: RelayId::from("me"),
            peer_listen: "127.0.0.1:0".parse().unwrap(),
        };
        let found = fleet(&store, &dir, &fleet_config, Duration::from_secs(60));
        let peers = peer_findings(&found);
        assert_eq!(peers.len(), 2, "{peers:?}");
        assert!(
            peers[0].starts_with("FAIL silent: alive, but its peer endpoint")
                && peers[0].contains("does not answer"),
            "{peers:?}"
        );
        assert!(peers[1].starts_with("ok up: alive"), "{peers:?}");
        drop(silent);
    }
}
