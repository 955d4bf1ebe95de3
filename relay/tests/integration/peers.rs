//! Relay-to-relay forwarding between in-process relays (each on its own SQLite store, with a
//! fixed table as their fleet directory): an operator on relay A reaches a host whose agent is
//! connected to relay B, and a host no reachable relay holds is offline at A.

use crate::forward::{fake_agent, header};
use crate::harness::*;
use anyhow::Result;
use cm_client::transport::{Transport, TransportMode};
use cm_client::{self as client, LinkError};
use cm_relay::fleet::{FleetConfig, PeerDirectory, PeerInfo, RelayId};
use cm_relay::server::Relay;
use parking_lot::Mutex;
use proto::header::Op;
use proto::ids::HostId;
use proto::ops::Prompt;
use proto::queue::PromptOutcome;
use proto::wire_error::ErrorCode;
use std::collections::HashMap;
use std::sync::Arc;

/// A fleet directory fixed by the test.
#[derive(Debug)]
struct Directory {
    local: RelayId,
    peers: Mutex<Vec<PeerInfo>>,
    holding: Mutex<HashMap<HostId, Vec<RelayId>>>,
    unreachable: Mutex<Vec<RelayId>>,
}

impl PeerDirectory for Directory {
    fn local_id(&self) -> &RelayId {
        &self.local
    }
    fn relays_holding(&self, host: &HostId) -> Vec<RelayId> {
        self.holding.lock().get(host).cloned().unwrap_or_default()
    }
    fn peer(&self, id: &RelayId) -> Option<PeerInfo> {
        self.peers.lock().iter().find(|p| &p.id == id).cloned()
    }
    fn peers(&self) -> Vec<PeerInfo> {
        self.peers.lock().clone()
    }
    fn unreachable(&self, id: &RelayId) {
        self.unreachable.lock().push(id.clone());
    }
}

/// A relay's state with a peer identity, not started yet.
struct Member {
    state: RelayState,
    info: PeerInfo,
    directory: Arc<Directory>,
}

fn member(id: &str) -> Result<Member> {
    let state = RelayState::new()?;
    let pin = cm_relay::fleet::identity::create(&state.dir)?;
    let info = PeerInfo {
        id: RelayId::from(id),
        peer_addr: format!("127.0.0.1:{}", free_udp_port()?),
        peer_pin: pin,
    };
    let directory = Arc::new(Directory {
        local: RelayId::from(id),
        peers: Mutex::default(),
        holding: Mutex::default(),
        unreachable: Mutex::default(),
    });
    Ok(Member {
        state,
        info,
        directory,
    })
}

async fn start(member: Member) -> Result<(TestRelay, Arc<Directory>)> {
    let mut config = member.state.config("127.0.0.1:0".parse()?);
    config.fleet = Some(FleetConfig {
        id: member.info.id.clone(),
        peer_listen: member.info.peer_addr.parse()?,
    });
    let peers: Arc<dyn PeerDirectory> = member.directory.clone();
    let relay = Relay::spawn_with_peers(config, Some(peers)).await?;
    let addr = relay.local_addr();
    let test_relay = TestRelay {
        state: member.state,
        relay: Some(relay),
        addr,
    };
    Ok((test_relay, member.directory))
}

fn refused(err: LinkError) -> proto::wire_error::WireError {
    match err {
        LinkError::Refused(e) => e,
        other => panic!("expected a typed refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_on_one_relay_reaches_a_host_whose_agent_is_on_another() -> Result<()> {
    reach_a_host_on_another_relay(TransportMode::Quic).await
}

/// The fleet with the TCP path (issue 21): an operator whose network drops UDP reaches relay A
/// over its TCP listener, and relay A forwards to the agent's relay B as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_on_the_tcp_path_reaches_a_host_whose_agent_is_on_another_relay() -> Result<()>
{
    reach_a_host_on_another_relay(TransportMode::Tcp).await
}

async fn reach_a_host_on_another_relay(mode: TransportMode) -> Result<()> {
    let (a, b) = (member("a")?, member("b")?);
    a.directory.peers.lock().push(b.info.clone());
    b.directory.peers.lock().push(a.info.clone());
    let (a, a_dir) = start(a).await?;
    let (b, _b_dir) = start(b).await?;
    let _agent = fake_agent(&b, "box").await?;
    let at_b = operator(&b.addr_str(), &b.state.pin, &b.login_owner().await?).await?;
    watch_until(&at_b, "box online at b", |l| host_online(l, "box")).await?;
    a_dir
        .holding
        .lock()
        .insert(HostId::from("box"), vec![RelayId::from("b")]);

    let cred = a.login_owner().await?;
    let mut options = crate::harness::quick_dial();
    options.transport.mode = mode;
    // On 127.0.0.1:0 the TCP listener has its own OS-chosen port.
    options.transport.relay_tcp = a
        .relay
        .as_ref()
        .and_then(Relay::tcp_local_addr)
        .map(|t| t.to_string());
    let dialed = client::dial_any(&[a.addr], 0, &a.state.pin, &options).await?;
    let expected = match mode {
        TransportMode::Tcp => Transport::Tcp,
        TransportMode::Quic | TransportMode::Auto => Transport::Quic,
    };
    assert_eq!(dialed.transport, expected);
    let op = client::authenticate(
        dialed.conn,
        proto::handshake::PeerKind::Operator,
        &cred.cred_id,
        &cred.secret,
    )
    .await?;
    let prompt = Prompt {
        text: "hello across relays".into(),
        idempotency_key: "k".into(),
        model: None,
        agent: None,
    };
    let answer: String =
        client::request(&op.conn, &header(Op::Prompt, "box"), Some(&prompt)).await?;
    // The agent saw the principal and credential of relay A's operator, and the body.
    assert_eq!(
        answer,
        format!(
            "owner as owner ({}) op=prompt text=hello across relays",
            cred.cred_id
        )
    );
    // The prompt was audited at the operator's relay (waited for: it is durable now), and
    // not at the agent's.
    let prompts = |relay: &TestRelay| -> Result<usize> {
        let rows = relay.state.store()?.audit_tail(100)?;
        Ok(rows.iter().filter(|r| r.event.op == "prompt").count())
    };
    assert_eq!(prompts(&a)?, 1);
    assert_eq!(prompts(&b)?, 0);
    assert!(a_dir.unreachable.lock().is_empty());
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_relays_cannot_be_reached_is_offline_and_queued_at_the_operators_relay()
-> Result<()> {
    let a = member("a")?;
    // Registered, but nothing answers at its address (a partitioned relay).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let gone = PeerInfo {
        id: RelayId::from("gone"),
        peer_addr: silent.local_addr()?.to_string(),
        peer_pin: member("gone")?.info.peer_pin,
    };
    a.directory.peers.lock().push(gone.clone());
    a.directory
        .holding
        .lock()
        .insert(HostId::from("box"), vec![gone.id.clone()]);
    let (a, a_dir) = start(a).await?;
    a.state.add_host("box", a.addr)?;
    let op = operator(&a.addr_str(), &a.state.pin, &a.login_owner().await?).await?;
    let e = refused(
        client::request::<(), String>(&op.conn, &header(Op::SessionList, "box"), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, ErrorCode::HostOffline);
    // A prompt is kept in the offline queue, as for any offline host.
    let prompt = Prompt {
        text: "for later".into(),
        idempotency_key: "k".into(),
        model: None,
        agent: None,
    };
    let mut h = header(Op::Prompt, "box");
    h.session = Some("ses_1".into());
    let outcome: PromptOutcome = client::request(&op.conn, &h, Some(&prompt)).await?;
    assert!(
        matches!(outcome, PromptOutcome::Queued { .. }),
        "{outcome:?}"
    );
    assert_eq!(*a_dir.unreachable.lock(), vec![gone.id.clone(), gone.id]);
    a.shutdown().await;
    Ok(())
}
