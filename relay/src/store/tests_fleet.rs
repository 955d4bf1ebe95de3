//! The fleet's tables on PostgreSQL: registering and retiring relays, heartbeats, presence
//! rows, and the `cm_fleet` notices each change sends (inside its transaction).

use super::test_db::pg_config;
use super::*;
use crate::pg_server::PgServer;
use proto::handshake::Key;
use proto::ids::{CredId, HostId, UserId};
use proto::rbac::Role;
use std::time::Duration;

/// Every notice `listener` gets within a generous wait, until `want` is among them.
fn notices_until(listener: &mut PgListener, want: &str) -> Vec<String> {
    let mut got = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !got.iter().any(|n| n == want) && std::time::Instant::now() < until {
        got.extend(listener.wait(Duration::from_millis(500)).unwrap());
    }
    got
}

#[test]
fn relays_register_heartbeat_and_retire() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let s = PgStore::open(&pg_config(&server)).unwrap();
    s.register_relay("a", "a:7444", "sha256:a", 1).unwrap();
    s.register_relay("b", "b:7444", "sha256:b", 2).unwrap();
    // The same identity again: its address is updated.
    s.register_relay("a", "a2:7444", "sha256:a", 3).unwrap();
    // Another identity under a live id is refused with what to do.
    let e = s
        .register_relay("a", "x:7444", "sha256:x", 4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cluster remove --id a"), "{e}");
    let rows = s.list_relays().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].peer_addr.as_str(), rows[0].heartbeat_age_ms),
        ("a2:7444", None)
    );
    assert!(s.relay_heartbeat("a").unwrap());
    assert!(!s.relay_heartbeat("nope").unwrap());
    let a = &s.list_relays().unwrap()[0];
    assert!(a.heartbeat_age_ms.is_some_and(|age| age < 60_000), "{a:?}");
    assert_eq!(a.unreachable, None);
    s.relay_unreachable("a", "b").unwrap();
    let a = &s.list_relays().unwrap()[0];
    assert!(
        a.unreachable
            .as_ref()
            .is_some_and(|(by, age)| by == "b" && *age < 60_000),
        "{a:?}"
    );

    s.presence_put("box", "b", "c1", 10, None).unwrap();
    s.retire_relay("b", 20).unwrap();
    assert!(
        !s.relay_heartbeat("b").unwrap(),
        "a retired relay does not heart-beat"
    );
    let b = &s.list_relays().unwrap()[1];
    assert_eq!((b.retired_ms, b.hosts), (Some(20), 0));
    assert!(s.presence_rows(None).unwrap().is_empty(), "its rows went");
    assert!(matches!(
        s.retire_relay("nope", 1),
        Err(StoreError::Missing { .. })
    ));
    // A retired id may be registered again, with a new identity.
    s.register_relay("b", "b:7444", "sha256:new", 30).unwrap();
    assert_eq!(s.list_relays().unwrap()[1].retired_ms, None);
}

#[test]
fn presence_rows_are_put_removed_per_connection_and_cleared_per_relay() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let s = PgStore::open(&pg_config(&server)).unwrap();
    s.register_relay("a", "a:7444", "sha256:a", 1).unwrap();
    s.register_relay("b", "b:7444", "sha256:b", 1).unwrap();
    s.presence_put("box", "a", "c1", 10, None).unwrap();
    s.presence_put("box", "b", "c2", 11, Some("{}")).unwrap();
    s.presence_put("other", "a", "c3", 12, None).unwrap();
    // A newer connection of the host on the same relay replaces its row.
    s.presence_put("box", "a", "c4", 13, Some("{}")).unwrap();
    let rows = s.presence_rows(Some(&["box".to_owned()])).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].conn_id.as_str(), rows[0].connected_ms), ("c4", 13));
    // The replaced connection's end does not remove the newer row.
    assert!(!s.presence_remove("box", "a", "c1").unwrap());
    assert!(s.presence_remove("box", "a", "c4").unwrap());
    assert_eq!(s.presence_rows(None).unwrap().len(), 2);
    assert_eq!(s.presence_clear("a").unwrap(), 1);
    let left = s.presence_rows(None).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].relay_id.as_str(), left[0].status.as_deref()),
        ("b", Some("{}"))
    );
    assert_eq!(
        s.schema_version().unwrap(),
        PgStore::expected_schema_version()
    );
}

#[test]
fn revocations_grant_changes_presence_and_relays_each_notify_the_fleet() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let config = pg_config(&server);
    let s = PgStore::open(&config).unwrap();
    let mut listener = PgListener::connect(&config).unwrap();
    s.register_relay("a", "a:7444", "sha256:a", 1).unwrap();
    assert!(notices_until(&mut listener, "relays").contains(&"relays".to_owned()));

    let bob = UserId::from("bob");
    s.add_user(&bob, 1).unwrap();
    s.grant(&bob, "*", Role::Operator).unwrap();
    assert!(notices_until(&mut listener, "grants").contains(&"grants".to_owned()));

    s.add_credential(
        &CredId::from("c1"),
        &bob,
        &Key::from_bytes([1; 32]),
        u64::MAX / 2,
        None,
        1,
    )
    .unwrap();
    assert!(s.kill_credential(&CredId::from("c1")).unwrap());
    assert!(notices_until(&mut listener, "revoked").contains(&"revoked".to_owned()));
    // Removing a user revokes inside its own transaction.
    s.remove_user(&bob, 2).unwrap();
    assert!(notices_until(&mut listener, "revoked").contains(&"revoked".to_owned()));

    s.presence_put("box", "a", "c1", 1, None).unwrap();
    assert!(notices_until(&mut listener, "presence box").contains(&"presence box".to_owned()));
    // The relay's own heartbeat is silent: nothing but the marker arrives.
    assert!(s.relay_heartbeat("a").unwrap());
    s.set_setting("marker", "1").unwrap();
    s.kill_host(&HostId::from("nope")).unwrap_err();
    s.add_host(&HostId::from("h"), &Key::from_bytes([2; 32]), 1)
        .unwrap();
    s.kill_host(&HostId::from("h")).unwrap();
    let after = notices_until(&mut listener, "revoked");
    assert_eq!(after, ["revoked"], "no notice for a heartbeat");
}
