use super::*;
use crate::frame::{FrameDecoder, MAX_FRAME_LEN};
use crate::message::HostStatus;
use proptest::prelude::*;

fn status(workspaces: usize) -> HostStatus {
    HostStatus {
        hostname: "box.example".into(),
        os: "linux 6.1.0".into(),
        agent_version: "0.1.0".into(),
        uptime_s: 12_345,
        load: [0.5, 0.25, 0.125],
        mem_total_kib: 16_000_000,
        mem_available_kib: 8_000_000,
        workspaces: (0..workspaces).map(|i| format!("workspace-{i}")).collect(),
    }
}

fn host(id: &str, online: bool, beat: u64) -> HostInfo {
    HostInfo {
        host: HostId::from(id),
        online,
        last_heartbeat_ms: Some(beat),
        status: Some(status(2)),
    }
}

fn list(hosts: Vec<HostInfo>) -> HostList {
    let roles = hosts
        .iter()
        .map(|h| (h.host.clone(), Role::Operator))
        .collect();
    HostList {
        now_ms: 1_000,
        hosts,
        roles,
        global_role: None,
    }
}

/// Decodes the frames [`pages`] produced, as a client reads them off the stream.
fn decode(frames: &[BytesMut]) -> Vec<HostUpdate> {
    let decoder = FrameDecoder::new(MAX_FRAME_LEN);
    let mut buf = BytesMut::new();
    for f in frames {
        buf.extend_from_slice(f);
    }
    let mut out = Vec::new();
    while let Some(reply) = decoder.decode_json::<Reply<HostUpdate>>(&mut buf).unwrap() {
        match reply {
            Reply::Ok(page) => out.push(page),
            Reply::Error(e) => panic!("unexpected error page {e}"),
        }
    }
    assert!(buf.is_empty(), "trailing bytes after the pages");
    out
}

/// Sends `next` through a differ the way the relay does and applies it to `view`.
fn send(differ: &mut HostDiffer, view: &mut HostView, next: &HostList) -> Option<HostList> {
    let delta = differ.diff(next)?;
    let frames = pages(delta.update, 4 * 1024, MAX_FRAME_LEN).unwrap();
    differ.commit(next.clone());
    let mut complete = None;
    let decoded = decode(&frames);
    let last = decoded.len() - 1;
    for (i, page) in decoded.into_iter().enumerate() {
        assert_eq!(page.more, i != last, "only the last page ends the update");
        let got = view.apply(page);
        assert_eq!(got.is_some(), i == last, "a list only after the last page");
        complete = got;
    }
    complete
}

#[test]
fn the_first_update_is_a_reset_with_every_host() {
    let differ = HostDiffer::new();
    let l = list(vec![host("a", true, 1), host("b", false, 2)]);
    let delta = differ.diff(&l).unwrap();
    assert!(delta.update.reset);
    assert!(delta.presence_changed);
    assert_eq!(delta.update.upsert, l.hosts);
    assert_eq!(delta.update.roles, l.roles);
}

#[test]
fn an_unchanged_list_sends_nothing() {
    let mut differ = HostDiffer::new();
    let l = list(vec![host("a", true, 1)]);
    differ.commit(l.clone());
    assert_eq!(differ.diff(&l), None);
}

#[test]
fn a_heartbeat_is_a_status_change_and_a_new_host_a_presence_change() {
    let mut differ = HostDiffer::new();
    differ.commit(list(vec![host("a", true, 1), host("b", true, 1)]));
    let beat = differ
        .diff(&list(vec![host("a", true, 2), host("b", true, 1)]))
        .unwrap();
    assert!(!beat.presence_changed);
    assert!(!beat.update.reset);
    assert_eq!(beat.update.upsert, vec![host("a", true, 2)]);
    assert!(beat.update.remove.is_empty());

    let offline = differ
        .diff(&list(vec![host("a", false, 1), host("b", true, 1)]))
        .unwrap();
    assert!(offline.presence_changed);

    let gone = differ.diff(&list(vec![host("a", true, 1)])).unwrap();
    assert!(gone.presence_changed);
    assert_eq!(gone.update.remove, vec![HostId::from("b")]);
    assert!(gone.update.upsert.is_empty());
}

#[test]
fn a_role_change_alone_is_sent() {
    let mut differ = HostDiffer::new();
    let before = list(vec![host("a", true, 1)]);
    differ.commit(before.clone());
    let mut after = before;
    after.roles.insert(HostId::from("a"), Role::Admin);
    let delta = differ.diff(&after).unwrap();
    assert_eq!(
        delta.update.roles.get(&HostId::from("a")),
        Some(&Role::Admin)
    );
}

#[test]
fn a_list_larger_than_one_frame_goes_out_in_pages_that_each_fit() {
    // 5,000 hosts with 40 workspaces each: several MiB as one list.
    let hosts: Vec<HostInfo> = (0..5_000)
        .map(|i| HostInfo {
            status: Some(status(40)),
            ..host(&format!("host-{i:05}"), i % 3 == 0, i)
        })
        .collect();
    let whole = list(hosts);
    assert!(frame::encoded_len(&whole).unwrap() > MAX_FRAME_LEN);
    let delta = HostDiffer::new().diff(&whole).unwrap();
    let frames = pages(delta.update, PAGE_BUDGET, MAX_FRAME_LEN).unwrap();
    assert!(frames.len() > 4, "{} pages", frames.len());
    for f in &frames {
        assert!(
            f.len() <= PAGE_BUDGET + frame::LEN_PREFIX,
            "page of {} bytes",
            f.len()
        );
    }
    let mut view = HostView::new();
    let mut got = None;
    for page in decode(&frames) {
        got = view.apply(page);
    }
    assert_eq!(got, Some(whole));
}

#[test]
fn a_host_too_large_for_a_frame_is_an_error_not_a_truncated_list() {
    let huge = HostInfo {
        status: Some(status(80_000)),
        ..host("a", true, 1)
    };
    let delta = HostDiffer::new().diff(&list(vec![huge])).unwrap();
    match pages(delta.update, PAGE_BUDGET, MAX_FRAME_LEN) {
        Err(FrameError::Oversize { len, max }) => assert!(len > max),
        Err(other) => panic!("wrong error: {other}"),
        Ok(frames) => panic!("{} frames for a host over the limit", frames.len()),
    }
}

#[test]
fn an_empty_list_still_answers_with_one_page() {
    let delta = HostDiffer::new().diff(&list(Vec::new())).unwrap();
    let frames = pages(delta.update, PAGE_BUDGET, MAX_FRAME_LEN).unwrap();
    assert_eq!(frames.len(), 1);
    let mut view = HostView::new();
    view.apply(HostUpdate {
        now_ms: 1,
        reset: true,
        upsert: vec![host("stale", true, 1)],
        roles: BTreeMap::new(),
        remove: Vec::new(),
        global_role: None,
        more: false,
    });
    let got = view.apply(decode(&frames).remove(0)).unwrap();
    assert!(got.hosts.is_empty(), "a reset drops what was known");
}

#[test]
fn reset_is_honoured_only_at_the_start_of_an_update() {
    let mut view = HostView::new();
    let page = |id: &str, more| HostUpdate {
        now_ms: 1,
        reset: true,
        upsert: vec![host(id, true, 1)],
        roles: BTreeMap::new(),
        remove: Vec::new(),
        global_role: Some(Role::Owner),
        more,
    };
    assert_eq!(view.apply(page("a", true)), None);
    let list = view.apply(page("b", false)).unwrap();
    let ids: Vec<&str> = list.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(
        ids,
        ["a", "b"],
        "the second page of a reset keeps the first"
    );
    assert_eq!(list.global_role, Some(Role::Owner));
    assert!(list.roles.is_empty());
}

/// A random host list over a small id space, so successive lists share, add and drop hosts.
fn arb_list() -> impl Strategy<Value = HostList> {
    prop::collection::btree_map(
        0u8..24,
        (any::<bool>(), 0u64..4, 0usize..6, prop::option::of(0u8..4)),
        0..24,
    )
    .prop_map(|m| {
        let mut roles = BTreeMap::new();
        let hosts = m
            .into_iter()
            .map(|(id, (online, beat, workspaces, role))| {
                let id = HostId::from(format!("h{id:02}").as_str());
                if let Some(r) = role {
                    let role = [Role::Viewer, Role::Operator, Role::Admin, Role::Owner][r as usize];
                    roles.insert(id.clone(), role);
                }
                HostInfo {
                    host: id,
                    online,
                    last_heartbeat_ms: Some(beat),
                    status: (workspaces > 0).then(|| status(workspaces * 20)),
                }
            })
            .collect();
        HostList {
            now_ms: 7,
            hosts,
            roles,
            global_role: None,
        }
    })
}

proptest! {
    /// Whatever sequence of lists the relay sees, the client ends each update holding exactly
    /// the relay's list, and nothing is sent when nothing changed.
    #[test]
    fn the_client_view_follows_the_relay_list(lists in prop::collection::vec(arb_list(), 1..12)) {
        let mut differ = HostDiffer::new();
        let mut view = HostView::new();
        let mut shown: Option<HostList> = None;
        for l in &lists {
            if let Some(got) = send(&mut differ, &mut view, l) {
                shown = Some(got);
            }
            let shown = shown.as_ref().expect("the first update always goes out");
            prop_assert_eq!(&shown.hosts, &l.hosts);
            prop_assert_eq!(&shown.roles, &l.roles);
        }
    }
}
