//! Relay-to-relay forwarding over real QUIC: peer endpoints with fixed directories, and a fake
//! agent (a real QUIC connection registered in the agent's relay's presence) that echoes.

use super::open_through;
use crate::fleet::RelayId;
use crate::fleet::peer_endpoint::{Tasks, accept_loop};
use crate::fleet::peer_pool::PeerPool;
use crate::fleet::peer_tls::tests::{FixedDirectory, IDLE, identity, info};
use crate::fleet::peer_tls::{self, PeerIdentity};
use crate::fleet::send_ahead::SEND_AHEAD_MAX;
use crate::framed::FramedRecv;
use crate::net::peer_streams::AgentSide;
use crate::net::stream_quota::{PER_PRINCIPAL, StreamQuota};
use crate::presence::{MemoryPresence, Presence};
use proto::frame::MAX_HEADER_LEN;
use proto::header::{Op, StreamHeader};
use proto::ids::{ConnId, CredId, HostId, ReqId, UserId};
use proto::ops::ForwardHeader;
use proto::rbac::Role;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Upper bound of a wait that should end by itself (a hang guard, not a timing assertion).
const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(30);

/// One relay's fleet side: its peer endpoint (serving and dialling), directory and presence.
struct TestRelay {
    id: RelayId,
    pin: String,
    addr: std::net::SocketAddr,
    directory: Arc<FixedDirectory>,
    presence: Arc<MemoryPresence<quinn::Connection>>,
    pool: Arc<PeerPool>,
    cancel: CancellationToken,
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn relay(id: &str) -> TestRelay {
    relay_as(id, identity())
}

fn relay_as(id: &str, identity: (PeerIdentity, String)) -> TestRelay {
    let presence = Arc::new(MemoryPresence::new(10_000));
    let serving = AgentSide {
        presence: presence.clone(),
        quota: Arc::new(StreamQuota::default()),
    };
    let serve = move |from, send, recv| {
        super::super::peer_streams::serve(serving.clone(), from, send, recv)
    };
    relay_serving(id, identity, presence, serve)
}

/// A relay whose peer streams `serve` answers (a stand-in for the agent's relay's side).
fn relay_serving<F, Fut>(
    id: &str,
    (identity, pin): (PeerIdentity, String),
    presence: Arc<MemoryPresence<quinn::Connection>>,
    serve: F,
) -> TestRelay
where
    F: Fn(RelayId, quinn::SendStream, quinn::RecvStream) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let directory = Arc::new(FixedDirectory::new(id));
    let config = peer_tls::server_config(identity.clone(), directory.clone(), IDLE).unwrap();
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let tasks = Tasks {
        cancel: cancel.clone(),
        tracker: TaskTracker::new(),
    };
    let pool = Arc::new(PeerPool::new(
        endpoint.clone(),
        identity,
        directory.clone(),
        IDLE,
    ));
    tokio::spawn(accept_loop(endpoint, Arc::clone(&pool), tasks, serve));
    TestRelay {
        id: RelayId::from(id),
        pin,
        addr,
        directory,
        presence,
        pool,
        cancel,
    }
}

/// `a` and `b` know each other as registered peers.
fn register(a: &TestRelay, b: &TestRelay) {
    a.directory.peers.lock().push(info(&b.id.0, b.addr, &b.pin));
    b.directory.peers.lock().push(info(&a.id.0, a.addr, &a.pin));
}

/// A fake agent of `host` connected to `relay`: it reads each stream's forward header, reports
/// it, and answers `echo:` and what it received.
async fn agent_on(relay: &TestRelay, host: &str) -> mpsc::UnboundedReceiver<ForwardHeader> {
    agent_gated(relay, host, None).await
}

/// [`agent_on`], answering each stream only once `gate` gives it a permit (when given).
async fn agent_gated(
    relay: &TestRelay,
    host: &str,
    gate: Option<Arc<tokio::sync::Semaphore>>,
) -> mpsc::UnboundedReceiver<ForwardHeader> {
    let certified =
        rcgen::generate_simple_self_signed(vec![crate::tls::RELAY_SERVER_NAME.to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let pin = crate::tls::pin_of_certificate(&cert).unwrap();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let config = crate::tls::server_config(vec![cert], key, IDLE).unwrap();
    let agent = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let (headers, seen) = mpsc::unbounded_channel();
    let agent_addr = agent.local_addr().unwrap();
    tokio::spawn(async move {
        let conn = agent.accept().await.unwrap().await.unwrap();
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            let headers = headers.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                let header: ForwardHeader = recv.expect().await.unwrap();
                let _ = headers.send(header);
                let mut body = recv.take_buffered().to_vec();
                body.extend(recv.into_inner().read_to_end(1 << 20).await.unwrap());
                if let Some(gate) = gate {
                    gate.acquire().await.unwrap().forget();
                }
                send.write_all(b"echo:").await.unwrap();
                send.write_all(&body).await.unwrap();
                send.finish().unwrap();
                let _ = send.stopped().await;
            });
        }
    });
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    client.set_default_client_config(crate::tls::client_config(&pin, IDLE).unwrap().0);
    let conn = client
        .connect(agent_addr, crate::tls::RELAY_SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    relay
        .presence
        .connect(&HostId::from(host), ConnId::from("c1"), conn, 0);
    seen
}

fn forward_header(host: &str) -> ForwardHeader {
    let mut header = StreamHeader::new(Op::SessionList, ReqId(7));
    header.host = Some(HostId::from(host));
    ForwardHeader {
        header,
        principal: UserId::from("alice"),
        role: Role::Operator,
        cred_id: CredId::from("cred-1"),
    }
}

fn holding(relay: &TestRelay, host: &str, holders: &[&TestRelay]) -> Vec<RelayId> {
    let ids: Vec<RelayId> = holders.iter().map(|r| r.id.clone()).collect();
    relay
        .directory
        .holding
        .lock()
        .insert(HostId::from(host), ids.clone());
    ids
}

/// The operator's side of a stream, as the operator's relay reads it after the header:
/// `sent` so far, and the writer for the rest (`None`: the operator already finished).
async fn operator(sent: &[u8], finished: bool) -> (OperatorRecv, Option<tokio::io::DuplexStream>) {
    let (recv, mut writer) = tokio::io::duplex(1 << 20);
    tokio::io::AsyncWriteExt::write_all(&mut writer, sent)
        .await
        .unwrap();
    let recv = FramedRecv::new(recv, MAX_HEADER_LEN);
    if finished {
        drop(writer);
        (recv, None)
    } else {
        (recv, Some(writer))
    }
}

type OperatorRecv = FramedRecv<tokio::io::DuplexStream>;

/// What the splice does after the open: the rest of the operator's stream to the agent.
async fn splice_rest(op: &mut OperatorRecv, send: &mut quinn::SendStream) {
    let mut rest = op.take_buffered().to_vec();
    op.get_mut().read_to_end(&mut rest).await.unwrap();
    if !rest.is_empty() {
        send.write_all(&rest).await.unwrap();
    }
    // Already finished when the operator's end was sent ahead (as in the splice).
    let _ = send.finish();
}

/// Opens a stream to `host` from `relay` through `holders` for an operator that sent `body`
/// and finished, and returns the answer; `None` when no relay opened it.
async fn send_body(
    relay: &TestRelay,
    holders: &[RelayId],
    host: &str,
    body: &[u8],
) -> Option<Vec<u8>> {
    let fwd = forward_header(host);
    let (mut op, _) = operator(body, true).await;
    let (mut send, mut recv, sent) = open_through(
        relay.directory.as_ref(),
        &relay.pool,
        holders,
        &fwd,
        &mut op,
    )
    .await?
    .expect("not busy");
    assert!(sent <= SEND_AHEAD_MAX as u64, "{sent} bytes sent ahead");
    splice_rest(&mut op, &mut send).await;
    Some(recv.read_to_end(1 << 20).await.unwrap())
}

/// [`send_body`] with `ping`.
async fn ping(relay: &TestRelay, holders: &[RelayId], host: &str) -> Option<Vec<u8>> {
    send_body(relay, holders, host, b"ping").await
}

#[tokio::test]
async fn an_operator_stream_reaches_an_agent_on_another_relay_both_ways() {
    let (a, b) = (relay("a"), relay("b"));
    register(&a, &b);
    let mut headers = agent_on(&b, "h").await;
    let holders = holding(&a, "h", &[&b]);
    assert_eq!(ping(&a, &holders, "h").await.unwrap(), b"echo:ping");
    assert_eq!(headers.recv().await.unwrap(), forward_header("h"));
    // The connection is reused by the next stream.
    assert_eq!(ping(&a, &holders, "h").await.unwrap(), b"echo:ping");
    assert!(a.directory.unreachable.lock().is_empty());
}

#[tokio::test]
async fn a_relay_that_no_longer_holds_the_host_passes_to_the_next() {
    let (a, b, c) = (relay("a"), relay("b"), relay("c"));
    register(&a, &b);
    register(&a, &c);
    let _headers = agent_on(&b, "h").await;
    let holders = holding(&a, "h", &[&c, &b]);
    assert_eq!(ping(&a, &holders, "h").await.unwrap(), b"echo:ping");
    assert!(
        a.directory.unreachable.lock().is_empty(),
        "not holding a host is not being unreachable"
    );
    // Nobody holds it: the caller falls back to the offline answer.
    b.presence
        .disconnect(&HostId::from("h"), &ConnId::from("c1"), 1);
    assert!(ping(&a, &holders, "h").await.is_none());
}

#[tokio::test]
async fn a_relay_not_registered_cannot_open_peer_streams() {
    let (b, intruder) = (relay("b"), relay("x"));
    // The intruder knows b's address and pin, but b does not know the intruder's.
    intruder
        .directory
        .peers
        .lock()
        .push(info("b", b.addr, &b.pin));
    let mut headers = agent_on(&b, "h").await;
    let holders = holding(&intruder, "h", &[&b]);
    assert!(ping(&intruder, &holders, "h").await.is_none());
    assert_eq!(*intruder.directory.unreachable.lock(), vec![b.id.clone()]);
    assert!(headers.try_recv().is_err(), "no stream reached the agent");
}

#[tokio::test]
async fn a_retired_relay_is_refused_at_its_next_stream_and_connection() {
    let (a, b) = (relay("a"), relay("b"));
    register(&a, &b);
    let _headers = agent_on(&b, "h").await;
    let holders = holding(&a, "h", &[&b]);
    assert!(ping(&a, &holders, "h").await.is_some());
    b.directory.peers.lock().retain(|p| p.id != a.id);
    // On the connection it already has, then on a new one.
    assert!(ping(&a, &holders, "h").await.is_none());
    assert!(ping(&a, &holders, "h").await.is_none());
    assert_eq!(
        *a.directory.unreachable.lock(),
        vec![b.id.clone(), b.id.clone()]
    );
}

#[tokio::test]
async fn an_unreachable_relay_is_skipped_reported_and_tried_last() {
    let (a, b) = (relay("a"), relay("b"));
    register(&a, &b);
    // A registered relay whose address answers nothing (a partitioned peer).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = relay_as("dead", identity());
    a.directory
        .peers
        .lock()
        .push(info("dead", silent.local_addr().unwrap(), &dead.pin));
    let _headers = agent_on(&b, "h").await;
    let holders = holding(&a, "h", &[&dead, &b]);
    assert_eq!(ping(&a, &holders, "h").await.unwrap(), b"echo:ping");
    assert_eq!(*a.directory.unreachable.lock(), vec![dead.id.clone()]);
    // Until it answers again, it is tried after the others: b serves at once.
    assert_eq!(ping(&a, &holders, "h").await.unwrap(), b"echo:ping");
    assert_eq!(*a.directory.unreachable.lock(), vec![dead.id.clone()]);
}

/// A UDP forwarder between one client and `to`, cut (everything dropped, both ways, nothing
/// closed) once the returned flag is set: a relay killed or cut off by a firewall.
async fn cuttable_path(to: SocketAddr) -> (SocketAddr, Arc<AtomicBool>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    let cut_flag = Arc::clone(&cut);
    tokio::spawn(async move {
        let mut client = None;
        let mut buf = vec![0u8; 65_536];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            if cut_flag.load(Ordering::SeqCst) {
                continue;
            }
            let dest = if from == to {
                client
            } else {
                client = Some(from);
                Some(to)
            };
            if let Some(dest) = dest {
                let _ = socket.send_to(&buf[..len], dest).await;
            }
        }
    });
    (addr, cut)
}

#[tokio::test]
async fn a_peer_cut_off_while_connected_is_noticed_and_routed_around() {
    let (a, b, c) = (relay("a"), relay("b"), relay("c"));
    register(&a, &c);
    b.directory.peers.lock().push(info("a", a.addr, &a.pin));
    let (path, cut) = cuttable_path(b.addr).await;
    a.directory.peers.lock().push(info("b", path, &b.pin));
    let mut at_b = agent_on(&b, "h").await;
    let mut at_c = agent_on(&c, "h").await;
    let holders = holding(&a, "h", &[&b, &c]);
    assert_eq!(ping(&a, &holders, "h").await.unwrap(), b"echo:ping");
    assert!(at_b.recv().await.is_some(), "served by b while reachable");
    cut.store(true, Ordering::SeqCst);
    // The connection to b looks open but answers nothing: it is given up on (idle timeout)
    // and c serves the stream.
    assert_eq!(ping(&a, &holders, "h").await.unwrap(), b"echo:ping");
    assert!(
        at_c.recv().await.is_some(),
        "served by c after b was cut off"
    );
    assert_eq!(*a.directory.unreachable.lock(), vec![b.id.clone()]);
}

#[tokio::test]
async fn retiring_a_relay_cuts_its_open_streams() {
    let (a, b) = (relay("a"), relay("b"));
    register(&a, &b);
    let mut headers = agent_on(&b, "h").await;
    let holders = holding(&a, "h", &[&b]);
    let (mut send, mut recv) = hold_stream(&a, &holders, "h", "alice").await;
    send.write_all(b"still talking").await.unwrap();
    // The stream reached the agent and stays open (the agent answers at its end).
    assert!(headers.recv().await.is_some());
    assert_eq!(b.pool.close_unregistered(), 0, "a is still registered");
    b.directory.peers.lock().retain(|p| p.id != a.id);
    assert_eq!(b.pool.close_unregistered(), 1);
    // The bound only guards against a hang.
    let end = tokio::time::timeout(HANG_GUARD, recv.read_to_end(1 << 20))
        .await
        .expect("the stream ended");
    assert!(end.is_err(), "the retired relay's open stream was cut");
}

/// Opens a stream to `host` from `relay` for `user`, sending nothing yet (the agent holds it
/// open until the operator's side finishes).
async fn hold_stream(
    relay: &TestRelay,
    holders: &[RelayId],
    host: &str,
    user: &str,
) -> (quinn::SendStream, quinn::RecvStream) {
    let mut fwd = forward_header(host);
    fwd.principal = UserId::from(user);
    // The operator has not finished (its writer lives until the stream is open).
    let (mut op, _writer) = operator(b"", false).await;
    let (send, recv, sent) = open_through(
        relay.directory.as_ref(),
        &relay.pool,
        holders,
        &fwd,
        &mut op,
    )
    .await
    .expect("a relay holds the host")
    .expect("not busy");
    assert_eq!(sent, 0);
    (send, recv)
}

#[tokio::test]
async fn one_user_through_two_relays_holds_at_most_the_per_user_quota_of_agent_streams() {
    let (a, b, c) = (relay("a"), relay("b"), relay("c"));
    register(&a, &b);
    register(&c, &b);
    let mut headers = agent_on(&b, "h").await;
    let via_a = holding(&a, "h", &[&b]);
    let via_c = holding(&c, "h", &[&b]);
    // Alice holds her whole share of b's agent streams, half through a and half through c.
    let mut held = Vec::new();
    for i in 0..PER_PRINCIPAL {
        let (relay, holders) = if i % 2 == 0 {
            (&a, &via_a)
        } else {
            (&c, &via_c)
        };
        held.push(hold_stream(relay, holders, "h", "alice").await);
        assert!(
            headers.recv().await.is_some(),
            "stream {i} reached the agent"
        );
    }
    // One more through either relay is refused by b, with the quota's own message.
    let answer = ping_as(&c, &via_c, "h", "alice").await;
    let answer = String::from_utf8_lossy(&answer);
    let quota = format!("you have {PER_PRINCIPAL} streams open to host h");
    assert!(
        answer.contains("unavailable") && answer.contains(&quota),
        "{answer}"
    );
    assert!(
        headers.try_recv().is_err(),
        "the refused stream never reached the agent"
    );
    // Another user is not held back by alice's streams.
    assert_eq!(ping_as(&a, &via_a, "h", "bob").await, b"echo:ping");
    drop(held);
}

/// [`ping`] for `user`: the whole answer (a refusal may come before `ping` is sent).
async fn ping_as(relay: &TestRelay, holders: &[RelayId], host: &str, user: &str) -> Vec<u8> {
    let (mut send, mut recv) = hold_stream(relay, holders, host, user).await;
    let _ = send.write_all(b"ping").await;
    let _ = send.finish();
    tokio::time::timeout(HANG_GUARD, recv.read_to_end(1 << 20))
        .await
        .expect("answered")
        .unwrap()
}

#[tokio::test]
async fn a_body_sent_ahead_arrives_whole_through_the_next_relay_when_the_first_no_longer_holds_the_host()
 {
    let (a, b, c) = (relay("a"), relay("b"), relay("c"));
    register(&a, &b);
    register(&a, &c);
    let mut at_b = agent_on(&b, "h").await;
    // c is asked first and answers that it does not hold the host, after the first bytes
    // already went to it.
    let holders = holding(&a, "h", &[&c, &b]);
    // More than is sent ahead: the rest follows once b opened the stream.
    let body: Vec<u8> = (0..3 * SEND_AHEAD_MAX).map(|i| (i % 251) as u8).collect();
    let answer = send_body(&a, &holders, "h", &body).await.unwrap();
    assert_eq!(answer.len(), "echo:".len() + body.len());
    assert_eq!(&answer[..5], b"echo:");
    assert!(
        answer[5..] == body[..],
        "the agent got the body whole and in order"
    );
    assert_eq!(at_b.recv().await.unwrap(), forward_header("h"));
}

#[tokio::test]
async fn the_operators_bytes_read_untouched_when_no_relay_opened_the_stream() {
    let (a, c) = (relay("a"), relay("c"));
    register(&a, &c);
    let holders = holding(&a, "h", &[&c]);
    let prompt = proto::frame::to_frame(&"a prompt for later", MAX_HEADER_LEN).unwrap();
    let (mut op, _) = operator(&prompt, true).await;
    let opened = open_through(
        a.directory.as_ref(),
        &a.pool,
        &holders,
        &forward_header("h"),
        &mut op,
    )
    .await;
    assert!(opened.is_none(), "no relay holds the host");
    // The offline queue reads the prompt as the operator sent it.
    assert_eq!(op.expect::<String>().await.unwrap(), "a prompt for later");
    assert_eq!(op.next::<String>().await.unwrap(), None);
}

#[tokio::test]
async fn the_operators_first_bytes_reach_the_peer_before_its_answer() {
    let a = relay("a");
    // A peer that answers only once it has the operator's first bytes: the operator's relay
    // must not wait for the answer before sending them.
    let serve = |_from, mut send: quinn::SendStream, recv: quinn::RecvStream| async move {
        let mut recv = FramedRecv::new(recv, crate::fleet::peer_stream::MAX_PEER_FRAME);
        let _open = crate::fleet::peer_stream::read_open(&mut recv)
            .await
            .unwrap();
        let mut body = recv.take_buffered().to_vec();
        let mut recv = recv.into_inner();
        while body.len() < 4 {
            match recv.read_chunk(usize::MAX, true).await.unwrap() {
                Some(chunk) => body.extend_from_slice(&chunk.bytes),
                None => break,
            }
        }
        crate::fleet::peer_stream::answer(&mut send, &crate::fleet::peer_stream::PeerAnswer::Open)
            .await
            .unwrap();
        send.write_all(b"got:").await.unwrap();
        send.write_all(&body).await.unwrap();
        send.finish().unwrap();
        let _ = send.stopped().await;
    };
    let peer = relay_serving("p", identity(), Arc::new(MemoryPresence::new(1)), serve);
    register(&a, &peer);
    let holders = holding(&a, "h", &[&peer]);
    // The operator sent its request and keeps its side open (a long-lived stream).
    let (mut op, _writer) = operator(b"ping", false).await;
    let (_send, mut recv, sent) = open_guarded(
        &a,
        &holders,
        &mut op,
        "the peer answered: it had the first bytes without waiting for them",
    )
    .await;
    assert_eq!(sent, 4);
    assert_eq!(recv.read_to_end(1 << 20).await.unwrap(), b"got:ping");
}

/// `open_through` from relay `a` for host `h`, opened within [`HANG_GUARD`] (else the test
/// fails saying `why`).
async fn open_guarded(
    a: &TestRelay,
    holders: &[RelayId],
    op: &mut OperatorRecv,
    why: &str,
) -> super::Opened {
    let opened = tokio::time::timeout(
        HANG_GUARD,
        open_through(
            a.directory.as_ref(),
            &a.pool,
            holders,
            &forward_header("h"),
            op,
        ),
    )
    .await
    .expect(why);
    opened.unwrap().unwrap()
}

/// The agent's relay's `open` answer to a stream whose operator already finished.
mod answer;
