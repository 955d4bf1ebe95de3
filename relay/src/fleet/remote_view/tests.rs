//! The view's rules: who holds a host, liveness and expiry, change detection.

use super::*;

fn relay(id: &str, age: Option<u64>, retired: bool) -> RelayRow {
    RelayRow {
        id: id.into(),
        peer_addr: format!("{id}.example:7444"),
        peer_pin: format!("sha256:{id}"),
        added_ms: 0,
        retired_ms: retired.then_some(1),
        heartbeat_age_ms: age,
        hosts: 0,
        unreachable: None,
    }
}

fn row(host: &str, relay: &str, connected_ms: u64, status: bool) -> PresenceRow {
    PresenceRow {
        host: host.into(),
        relay_id: relay.into(),
        conn_id: format!("{relay}-{host}"),
        connected_ms,
        status: status.then(|| serde_json::to_string(&HostStatus::default()).unwrap()),
    }
}

fn view() -> RemoteView {
    let mut v = RemoteView::default();
    v.set_relays(
        vec![
            relay("a", Some(100), false),
            relay("b", Some(200), false),
            relay("dead", Some(60_000), false),
            relay("gone", Some(100), true),
            relay("never", None, false),
        ],
        1_000,
    );
    v.set_all_hosts(vec![
        row("box", "a", 5, true),
        row("box", "b", 9, true),
        row("box", "dead", 10, true),
        row("box", "gone", 10, true),
        row("box", "never", 10, true),
        row("box", "me", 10, true),
        row("quiet", "a", 5, false),
    ]);
    v
}

#[test]
fn a_dead_or_retired_relays_rows_do_not_count() {
    let v = view();
    let me = RelayId::from("me");
    let held: Vec<&str> = v
        .holding(&HostId::from("box"), &me, 1_000, 5_000)
        .iter()
        .map(|h| h.relay.0.as_str())
        .collect();
    // Newest first among live relays; the dead, retired and never-seen relays and this
    // relay itself are left out.
    assert_eq!(held, ["b", "a"]);
    // Time passing without a fresh read: b's heartbeat (200 ms old at the read) leaves a
    // 3 s window first.
    let later: Vec<&str> = v
        .holding(&HostId::from("box"), &me, 1_000 + 2_850, 3_000)
        .iter()
        .map(|h| h.relay.0.as_str())
        .collect();
    assert_eq!(later, ["a"]);
    assert!(
        v.holding(&HostId::from("box"), &me, 1_000 + 2_901, 3_000)
            .is_empty()
    );
}

#[test]
fn a_view_the_database_stopped_refreshing_does_not_age_its_relays_out() {
    let v = view();
    let me = RelayId::from("me");
    // The last successful read was a minute ago (the database is away): the relays alive
    // at that read still count, so hosts held elsewhere stay reachable.
    let held: Vec<&str> = v
        .holding(&HostId::from("box"), &me, 1_000 + 60_000, 5_000)
        .iter()
        .map(|h| h.relay.0.as_str())
        .collect();
    assert_eq!(held, ["b", "a"]);
    assert!(v.is_alive(&RelayId::from("a"), 1_000 + 600_000, 5_000));
    assert!(!v.is_alive(&RelayId::from("dead"), 1_000 + 60_000, 5_000));
}

#[test]
fn a_connection_that_heart_beat_comes_before_a_newer_silent_one() {
    let mut v = view();
    v.set_hosts(
        &["box".into()],
        vec![row("box", "a", 5, true), row("box", "b", 9, false)],
    );
    let order: Vec<&str> = v
        .holding(&HostId::from("box"), &RelayId::from("me"), 1_000, 5_000)
        .iter()
        .map(|h| h.relay.0.as_str())
        .collect();
    assert_eq!(order, ["a", "b"]);
}

#[test]
fn a_retired_relay_is_no_peer_and_this_relay_is_not_its_own_peer() {
    let v = view();
    let me = RelayId::from("a");
    let peers: Vec<String> = v.peers(&me).into_iter().map(|p| p.id.0).collect();
    assert_eq!(peers, ["b", "dead", "never"]);
    assert!(v.peer(&RelayId::from("gone"), &me).is_none());
    assert!(v.peer(&me, &me).is_none());
    assert_eq!(
        v.peer(&RelayId::from("b"), &me).unwrap().peer_pin,
        "sha256:b"
    );
}

#[test]
fn a_relay_dying_is_a_change_though_no_row_changed() {
    let v = view();
    let same = v.clone();
    assert!(!v.differs_from(&same, 1_000, 5_000));
    let mut aged = v.clone();
    aged.set_relays(
        vec![
            relay("a", Some(100), false),
            relay("b", Some(9_000), false),
            relay("dead", Some(60_000), false),
            relay("gone", Some(100), true),
            relay("never", None, false),
        ],
        1_000,
    );
    assert!(aged.differs_from(&v, 1_000, 5_000));
    let mut fresher = v.clone();
    fresher.set_relays(
        vec![
            relay("a", Some(300), false),
            relay("b", Some(10), false),
            relay("dead", Some(60_000), false),
            relay("gone", Some(100), true),
            relay("never", None, false),
        ],
        1_000,
    );
    assert!(!fresher.differs_from(&v, 1_000, 5_000), "ages alone");
}

fn status(hostname: &str, os: &str, workspaces: &[&str]) -> HostStatus {
    HostStatus {
        hostname: hostname.into(),
        os: os.into(),
        agent_version: "0.9.0".into(),
        uptime_s: 7,
        load: [0.5, 0.25, 0.125],
        mem_total_kib: 1 << 20,
        mem_available_kib: 1 << 19,
        workspaces: workspaces.iter().map(|w| (*w).to_owned()).collect(),
    }
}

fn row_with(host: &str, relay: &str, connected_ms: u64, s: &HostStatus) -> PresenceRow {
    PresenceRow {
        status: Some(serde_json::to_string(s).unwrap()),
        ..row(host, relay, connected_ms, false)
    }
}

#[test]
fn the_compact_view_answers_routing_as_the_rows_say() {
    let mut v = view();
    let long = status(&"h".repeat(1_000), "linux 6.1", &["api", "web"]);
    v.set_hosts(
        &["box".into(), "moving".into()],
        vec![
            row_with("box", "a", 5, &status("box", "linux 6.1", &["api"])),
            row_with("moving", "a", 20, &long),
            row("moving", "b", 30, false),
            row("moving", "dead", 40, false),
        ],
    );
    let me = RelayId::from("me");
    let held = v.holding(&HostId::from("moving"), &me, 1_000, 5_000);
    let seen: Vec<(&str, u64, Option<HostStatus>)> = held
        .iter()
        .map(|h| {
            (
                h.relay.0.as_str(),
                h.connected_ms,
                h.status.map(RemoteStatus::to_host_status),
            )
        })
        .collect();
    // The connection that heart-beat first, then the newer silent one; the dead relay's row
    // does not count. The status comes back as the relay would have kept it (bounded).
    assert_eq!(
        seen,
        [("a", 20, Some(long.clone().bounded())), ("b", 30, None),]
    );
    assert_eq!(
        v.holding(&HostId::from("box"), &me, 1_000, 5_000)[0]
            .status
            .map(RemoteStatus::to_host_status),
        Some(status("box", "linux 6.1", &["api"]))
    );
    assert!(
        v.holding(&HostId::from("nowhere"), &me, 1_000, 5_000)
            .is_empty()
    );
    // Held only by this relay itself: nothing to route to.
    let a = RelayId::from("a");
    assert!(v.holding(&HostId::from("box"), &a, 1_000, 5_000).is_empty());
}

#[test]
fn a_dead_relays_rows_expire_and_come_back_with_its_heartbeat() {
    let mut v = view();
    v.set_hosts(&["far".into()], vec![row("far", "b", 3, true)]);
    let me = RelayId::from("me");
    let far = HostId::from("far");
    assert_eq!(v.holding(&far, &me, 1_000, 5_000).len(), 1);
    // b's heartbeat was 200 ms old at the read: 4.8 s later it is out of a 5 s window.
    assert!(v.holding(&far, &me, 1_000 + 2_999, 3_000).is_empty());
    v.set_relays(
        vec![relay("b", Some(60_000), false), relay("a", Some(1), false)],
        10_000,
    );
    assert!(v.holding(&far, &me, 10_000, 5_000).is_empty(), "dead");
    v.set_relays(vec![relay("b", Some(10), false)], 11_000);
    assert_eq!(v.holding(&far, &me, 11_000, 5_000)[0].connected_ms, 3);
}

#[test]
fn statuses_share_the_texts_hosts_report_alike() {
    let mut v = RemoteView::default();
    v.set_all_hosts((0..100).map(|i| {
        row_with(
            &format!("h{i}"),
            if i % 2 == 0 { "a" } else { "b" },
            i,
            &status(&format!("h{i}"), "linux 6.1", &["api", "web"]),
        )
    }));
    assert_eq!(v.host_count(), 100);
    // One OS, one agent version, two workspace names; two relay names for 100 rows.
    assert_eq!(v.strings.len(), 4);
    assert_eq!(v.names.len(), 2);
    let os = |host: &str| {
        let holds = v.hosts.get(host).unwrap();
        assert_eq!(holds.len(), 1);
        let first = holds.iter().next().unwrap();
        first.status.as_ref().unwrap().to_host_status().os
    };
    assert_eq!(os("h1"), "linux 6.1");
    assert_eq!(os("h2"), os("h3"));
    // A full read starts with no texts and keeps only what its hosts use.
    let mut next = v.successor();
    next.set_all_hosts(vec![row_with("h1", "b", 1, &status("h1", "bsd", &[]))]);
    assert_eq!(next.strings.len(), 2);
    assert_eq!(next.names, v.names, "indices stay comparable");
}

#[test]
fn re_reading_hosts_reports_a_change_only_when_routing_or_status_changed() {
    let mut v = view();
    let hosts = ["box".to_owned(), "quiet".to_owned()];
    let rows = || vec![row("box", "a", 5, true), row("quiet", "a", 5, false)];
    assert!(v.set_hosts(&hosts, rows()), "box lost four holds");
    assert!(!v.set_hosts(&hosts, rows()));
    // A new connection (epoch) on the same relay.
    assert!(v.set_hosts(
        &hosts,
        vec![row("box", "a", 6, true), row("quiet", "a", 5, false)]
    ));
    // A first status.
    assert!(v.set_hosts(
        &hosts,
        vec![row("box", "a", 6, true), row("quiet", "a", 5, true)]
    ));
    // Gone.
    assert!(v.set_hosts(&hosts, vec![row("box", "a", 6, true)]));
    assert!(!v.set_hosts(&hosts, vec![row("box", "a", 6, true)]));
}

#[test]
fn views_read_separately_compare_by_relay_name_not_by_index() {
    let fresh = || {
        let mut v = RemoteView::default();
        v.set_relays(
            vec![relay("a", Some(1), false), relay("b", Some(1), false)],
            1_000,
        );
        v
    };
    let rows =
        |first: &str, second: &str| vec![row("x", first, 1, true), row("y", second, 2, true)];
    let mut one = fresh();
    one.set_all_hosts(rows("a", "b"));
    // Another view that met the relays in the other order.
    let mut two = fresh();
    two.set_all_hosts(vec![row("y", "b", 2, true), row("x", "a", 1, true)]);
    assert_ne!(one.names, two.names);
    assert!(!one.differs_from(&two, 1_000, 5_000));
    let mut moved = fresh();
    moved.set_all_hosts(rows("b", "b"));
    assert!(one.differs_from(&moved, 1_000, 5_000));
    let mut fewer = fresh();
    fewer.set_all_hosts(vec![row("x", "a", 1, true)]);
    assert!(one.differs_from(&fewer, 1_000, 5_000));
    assert!(fewer.differs_from(&one, 1_000, 5_000));
}
