//! A host list larger than one frame: `host_list` and `watch_hosts` deliver it in pages, and a
//! watch then carries only what changed (before paging, a list over 1 MiB ended the watch with
//! `unavailable`, which cm-bench hit at about 3,350 real hosts).

use crate::harness::*;
use anyhow::{Context, Result};
use cm_client::{self as client, HostWatch, Session};
use cm_relay::framed::FramedRecv;
use proto::frame::{MAX_FRAME_LEN, encoded_len};
use proto::handshake::PeerKind;
use proto::ids::{CredId, ReqId};
use proto::message::HostStatus;
use std::time::Duration;

/// Hosts in the fleet: each reports the largest status the relay keeps (about 65 KB), so
/// together they need more than one frame.
const HOSTS: usize = 20;

/// The largest status the relay keeps (it cuts larger ones on receipt).
fn big_status(host: &str) -> HostStatus {
    use proto::message::{MAX_STATUS_TEXT, MAX_STATUS_WORKSPACES};
    HostStatus {
        hostname: host.into(),
        workspaces: (0..MAX_STATUS_WORKSPACES)
            .map(|i| format!("{:-<MAX_STATUS_TEXT$}", format!("ws-{host}-{i:05}")))
            .collect(),
        ..HostStatus::default()
    }
}

/// An agent that heartbeats a large status every 200 ms until its connection is closed (the
/// control stream's receive half is returned: dropping it would end the agent's session).
async fn agent_with_big_status(
    relay: &TestRelay,
    name: &str,
) -> Result<(quinn::Connection, FramedRecv)> {
    let token = relay.state.add_host(name, relay.addr)?;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let session =
        client::authenticate(conn, PeerKind::Agent, &CredId(name.into()), &token.secret).await?;
    let Session {
        conn,
        control_send: control,
        control_recv,
        ..
    } = session;
    heartbeat_forever(control, big_status(name)).await?;
    Ok((conn, control_recv))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_list_larger_than_a_frame_arrives_whole_in_pages() -> Result<()> {
    // Heartbeats of 20 large statuses can come late on a loaded machine: a host flapping
    // offline is not what this checks (a closed connection is offline at once all the same).
    let relay = TestRelay::start_with(|c| c.heartbeat_timeout = Duration::from_secs(20)).await?;
    let names: Vec<String> = (1..=HOSTS).map(|i| format!("h{i:02}")).collect();
    let mut agents = Vec::new();
    for name in &names {
        agents.push(agent_with_big_status(&relay, name).await?);
    }
    let cred = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;

    // The watch shows every host online with its whole status.
    let all_online = |l: &proto::message::HostList| names.iter().all(|n| host_online(l, n));
    let list = watch_until(&op, "every host online", all_online).await?;
    assert!(
        encoded_len(&list)? > MAX_FRAME_LEN,
        "the test list must not fit one frame ({} bytes)",
        encoded_len(&list)?
    );
    for h in &list.hosts {
        let status = h.status.as_ref().context("status missing")?;
        assert_eq!(status, &big_status(h.host.as_str()), "{}", h.host);
    }

    // host_list answers with the same hosts in one go.
    let once = client::host_list(&op.conn, ReqId(2)).await?;
    let ids: Vec<&str> = once.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(ids, names);
    for h in &once.hosts {
        let status = h.status.as_ref();
        assert!(
            status == Some(&big_status(h.host.as_str())),
            "{}: online {}, status {:?}",
            h.host,
            h.online,
            status.map(|s| (&s.hostname, s.workspaces.len()))
        );
    }

    // On one watch: after the full list, a host going away arrives as a change, and the other
    // hosts keep their status (they were not resent as empty).
    let mut watch = HostWatch::open(&op.conn, ReqId(3)).await?;
    let first = watch.next().await?.context("watch ended")?;
    assert!(all_online(&first));
    agents[1].0.close(0u32.into(), b"bye");
    // Waits for the list where h02 is offline and every other host online: on a loaded machine
    // another host may miss a heartbeat deadline and flap, which is not what this checks; a
    // change that dropped the other hosts would never reach that list and time out here.
    let others_online = |l: &proto::message::HostList| {
        names
            .iter()
            .filter(|n| *n != "h02")
            .all(|n| host_online(l, n))
    };
    let mut last = first;
    let after = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let l = watch.next().await?.context("watch ended")?;
            if host_offline(&l, "h02") && others_online(&l) {
                return Ok::<_, anyhow::Error>(l);
            }
            last = l;
        }
    })
    .await;
    let after = match after {
        Ok(r) => r?,
        Err(_) => anyhow::bail!(
            "no list with h02 offline and the others online within 30 s; last: {:?}",
            last.hosts
                .iter()
                .map(|h| (h.host.as_str(), h.status.is_some()))
                .collect::<Vec<_>>()
        ),
    };
    let h03 = after
        .hosts
        .iter()
        .find(|h| h.host.as_str() == "h03")
        .context("h03 gone")?;
    assert_eq!(h03.status.as_ref(), Some(&big_status("h03")));
    relay.shutdown().await;
    Ok(())
}
