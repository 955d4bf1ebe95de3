//! The channel manager against an in-process fake agent end on a real QUIC connection: it
//! checks headers with `proto::trust::header::check`, accepts channels with
//! `cm_client::e2e::accept_channel`, and records every byte that came after each header.

use super::*;
use cm_client::e2e::HostKeyPair;
use cm_client::framed::send_frame;
use proto::ids::UserId;
use proto::ops::RenameSession;
use proto::rbac::Role;
use proto::replay::ReplayWindow;
use proto::trust::header::CheckedHeader;
use proto::trust::revocation::Revoked;
use proto::trust::{Cert, CertBody, DeviceKey, Root, Subject};
use serde_json::{Value, json};
use std::sync::atomic::AtomicUsize;

const HOST: &str = "box";
const SECRET: &str = "rm -rf the-secret-prompt";
const DAY: u64 = 86_400_000;

/// What the fake agent saw on one stream.
#[derive(Debug)]
struct Seen {
    header: StreamHeader,
    /// The checked signature, for a signed header.
    checked: Option<CheckedHeader>,
    /// Every byte after the header, as it crossed the wire.
    wire: Vec<u8>,
    /// The body, opened (or plaintext on an unsigned stream).
    body: Option<Value>,
}

struct Agent {
    pair: HostKeyPair,
    host: HostId,
    bundle: TrustBundle,
    channels: Mutex<HashMap<String, Channel>>,
    nonces: Mutex<ReplayWindow>,
    seen: Mutex<Vec<Seen>>,
    opens: AtomicUsize,
    /// The record format `e2e_open` answers with.
    records: Option<u32>,
}

impl Agent {
    fn seen_ops(&self, op: Op) -> usize {
        locked(&self.seen)
            .iter()
            .filter(|s| s.header.op == op)
            .count()
    }

    async fn stream(
        &self,
        mut send: quinn::SendStream,
        recv: quinn::RecvStream,
    ) -> anyhow::Result<()> {
        let mut framed = FramedRecv::new(recv, MAX_HEADER_LEN);
        let header: StreamHeader = framed.expect().await?;
        if header.op == Op::PortForward {
            return self.forward(header, framed, send).await;
        }
        let mut wire = framed.take_buffered().to_vec();
        wire.extend(framed.get_mut().read_to_end(1 << 20).await?);
        let checked = match &header.auth {
            Some(_) => Some(signed_header::check(
                &header,
                &self.host,
                now_ms(),
                &mut locked(&self.nonces),
            )?),
            None => None,
        };
        let mut seen = Seen {
            header: header.clone(),
            checked: checked.clone(),
            wire: wire.clone(),
            body: None,
        };
        let channel = checked
            .as_ref()
            .and_then(|c| c.fields.channel.clone())
            .map(|id| locked(&self.channels).get(&id).cloned());
        match (header.op, channel) {
            (Op::TrustFetch, _) => {
                locked(&self.seen).push(seen);
                send_frame(&mut send, &Reply::Ok(&self.bundle), MAX_FRAME_LEN).await?;
            }
            (Op::E2eOpen, _) => {
                let checked = checked.ok_or_else(|| anyhow::anyhow!("unsigned e2e_open"))?;
                let hash = signed_header::body_hash(&wire[LEN_PREFIX..]);
                anyhow::ensure!(checked.fields.body == Some(hash), "e2e_open body hash");
                let open: E2eOpen = serde_json::from_slice(&wire[LEN_PREFIX..])?;
                anyhow::ensure!(
                    open.records == Some(e2e::RECORD_FORMAT),
                    "cm-tui named record format {:?}",
                    open.records
                );
                let msg1 = URL_SAFE_NO_PAD.decode(open.msg1)?;
                let (channel, _certs, msg2) = e2e::accept_channel(&self.pair, &msg1)?;
                locked(&self.channels).insert(channel.id().to_hex(), channel);
                self.opens.fetch_add(1, Ordering::SeqCst);
                locked(&self.seen).push(seen);
                let opened = E2eOpened {
                    msg2: URL_SAFE_NO_PAD.encode(msg2),
                    records: self.records,
                };
                send_frame(&mut send, &Reply::Ok(opened), MAX_FRAME_LEN).await?;
            }
            (_, None) => {
                let mut body = FramedRecv::new(&wire[..], MAX_FRAME_LEN);
                seen.body = body.next().await?;
                let echo = json!({ "echo": seen.body });
                locked(&self.seen).push(seen);
                send_frame(&mut send, &Reply::Ok(echo), MAX_FRAME_LEN).await?;
            }
            (_, Some(None)) => {
                locked(&self.seen).push(seen);
                let unknown =
                    json!({"error": {"code": CHANNEL_UNKNOWN, "message": "open a new channel"}});
                send_frame(&mut send, &unknown, MAX_FRAME_LEN).await?;
            }
            (_, Some(Some(channel))) => {
                let checked = checked.ok_or_else(|| anyhow::anyhow!("unsigned"))?;
                // The verdict, plain, as cm-agent's zero-trust gate sends it.
                send_frame(&mut send, &Reply::<()>::Ok(()), MAX_FRAME_LEN).await?;
                let keys = channel.stream_keys(&checked.nonce, Side::Agent);
                let (recv, mut send) = e2e::seal_stream(keys, &wire[..], send);
                let mut body = FramedRecv::new(recv, MAX_FRAME_LEN);
                let raw = body.next_raw().await?;
                if let Some(raw) = &raw {
                    let hash = signed_header::body_hash(raw);
                    anyhow::ensure!(checked.fields.body == Some(hash), "body hash");
                    seen.body = Some(serde_json::from_slice(raw)?);
                }
                anyhow::ensure!(body.next_raw().await?.is_none(), "one body frame, then fin");
                let echo = json!({ "echo": seen.body });
                locked(&self.seen).push(seen);
                send_frame(&mut send, &Reply::Ok(echo), MAX_FRAME_LEN).await?;
                send.shutdown().await?;
                return Ok(());
            }
        }
        let _ = send.finish();
        Ok(())
    }
}

impl Agent {
    /// A sealed `port_forward` (the stream stays open both ways): opens the target, then
    /// answers the raw bytes upper-cased, recording every byte that came after the header.
    async fn forward(
        &self,
        header: StreamHeader,
        mut framed: FramedRecv<quinn::RecvStream>,
        mut send: quinn::SendStream,
    ) -> anyhow::Result<()> {
        let checked =
            signed_header::check(&header, &self.host, now_ms(), &mut locked(&self.nonces))?;
        let id = checked
            .fields
            .channel
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no channel"))?;
        let channel = locked(&self.channels)
            .get(&id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("unknown channel"))?;
        send_frame(&mut send, &Reply::<()>::Ok(()), MAX_FRAME_LEN).await?;
        let front = framed.take_buffered().to_vec();
        let wire = Arc::new(Mutex::new(front.clone()));
        let tee = Tee {
            inner: framed.into_inner(),
            log: Arc::clone(&wire),
        };
        let keys = channel.stream_keys(&checked.nonce, Side::Agent);
        let (recv, mut send) = e2e::seal_stream(keys, Prefixed::with_front(front, tee), send);
        let mut body = FramedRecv::new(recv, MAX_FRAME_LEN);
        let target: proto::forward::ForwardTarget = body.expect().await?;
        let opened = proto::forward::ForwardOpened {
            port: target.port,
            addr: "127.0.0.1".into(),
        };
        send_frame(&mut send, &Reply::Ok(opened), MAX_FRAME_LEN).await?;
        let mut raw = body.take_buffered().to_vec();
        body.into_inner().read_to_end(&mut raw).await?;
        send.write_all(&raw.to_ascii_uppercase()).await?;
        send.shutdown().await?;
        let wire = locked(&wire).clone();
        locked(&self.seen).push(Seen {
            header,
            checked: Some(checked),
            wire,
            body: Some(json!({ "raw": String::from_utf8_lossy(&raw) })),
        });
        Ok(())
    }
}

/// A reader that keeps a copy of every byte it reads.
struct Tee<R> {
    inner: R,
    log: Arc<Mutex<Vec<u8>>>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Tee<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = buf.filled()[before..].to_vec();
        locked(&self.log).extend_from_slice(&new);
        polled
    }
}

/// A fake agent end on a real QUIC connection, and the operator's end of it.
struct Rig {
    agent: Arc<Agent>,
    conn: quinn::Connection,
    _endpoints: (quinn::Endpoint, quinn::Endpoint),
    _dir: tempfile::TempDir,
}

async fn rig(bundle: TrustBundle, pair: HostKeyPair) -> Rig {
    rig_sealing_in(bundle, pair, Some(e2e::RECORD_FORMAT)).await
}

/// [`rig`] with an agent that says it seals records in `records`.
async fn rig_sealing_in(bundle: TrustBundle, pair: HostKeyPair, records: Option<u32>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let state = cm_relay::state::StateDir::new(dir.path().join("relay"));
    cm_relay::state::init(&state, "127.0.0.1:1", &UserId::from("owner")).unwrap();
    let (certs, key, pin) = state.load_tls().unwrap();
    let config =
        cm_relay::tls::server_config(certs, key, cm_client::tls::DEFAULT_IDLE_TIMEOUT).unwrap();
    let server = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    let agent = Arc::new(Agent {
        pair,
        host: HostId::from(HOST),
        bundle,
        channels: Mutex::new(HashMap::new()),
        nonces: Mutex::new(signed_header::nonce_window()),
        seen: Mutex::new(Vec::new()),
        opens: AtomicUsize::new(0),
        records,
    });
    let serving = Arc::clone(&agent);
    let accepting = server.clone();
    tokio::spawn(async move {
        let Some(incoming) = accepting.accept().await else {
            return;
        };
        let Ok(conn) = incoming.await else { return };
        while let Ok((send, recv)) = conn.accept_bi().await {
            let agent = Arc::clone(&serving);
            tokio::spawn(async move {
                if let Err(e) = agent.stream(send, recv).await {
                    eprintln!("fake agent: {e:#}");
                }
            });
        }
    });
    let options = cm_client::DialOptions::default();
    let (client, conn) = cm_client::dial_addr(addr, &pin, &options).await.unwrap();
    Rig {
        agent,
        conn,
        _endpoints: (server, client),
        _dir: dir,
    }
}

fn root_key() -> DeviceKey {
    DeviceKey::from_seed([1; 32]).unwrap()
}

fn cert(subject: Subject) -> Cert {
    let now = now_ms();
    let body = CertBody {
        serial: format!("{:016x}", cm_client::time::random_u64()),
        subject,
        not_before_ms: now - DAY,
        not_after_ms: now + DAY,
    };
    Cert::sign(&body, &root_key())
}

fn host_cert(pair: &HostKeyPair) -> Cert {
    cert(Subject::Host {
        host: HostId::from(HOST),
        host_key: X25519Public(pair.public()),
    })
}

/// Alice's zero-trust state: the owner's root, her grant, no host certificate yet.
fn alice() -> OperatorTrust {
    let key = DeviceKey::from_seed([2; 32]).unwrap();
    let grant = cert(Subject::User {
        user: UserId::from("alice"),
        device_keys: vec![key.public()],
        host: "*".into(),
        role: Role::Operator,
    });
    OperatorTrust {
        user: UserId::from("alice"),
        key,
        roots: vec![Root {
            user: UserId::from("owner"),
            key: root_key().public(),
        }],
        pins: proto::trust::RootPins::default(),
        certs: vec![grant],
        revoked: Revoked::default(),
        pinned_hosts: std::collections::BTreeMap::new(),
    }
}

fn rename_header(req: u64) -> StreamHeader {
    let mut h = StreamHeader::new(Op::SessionRename, ReqId(req));
    h.host = Some(HostId::from(HOST));
    h.workspace = Some("w".into());
    h.session = Some("ses_1".into());
    h
}

fn secret_body() -> RenameSession {
    RenameSession {
        title: SECRET.into(),
    }
}

async fn rename(streams: &HostStreams, req: u64) -> Result<Value, LinkError> {
    streams
        .request(&rename_header(req), Some(&secret_body()))
        .await
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_request_to_a_verified_host_is_signed_and_its_body_and_reply_are_sealed() {
    let pair = HostKeyPair::generate().unwrap();
    let bundle = TrustBundle {
        certs: vec![host_cert(&pair)],
        ..TrustBundle::default()
    };
    let rig = rig(bundle, pair).await;
    let pins = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&pins);
    let on_change = move |t: &OperatorTrust| {
        if t.pinned_hosts.contains_key(&HostId::from(HOST)) {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    };
    let streams = HostStreams::new(rig.conn.clone(), Some(alice()), Some(Box::new(on_change)));

    let reply = rename(&streams, 7).await.unwrap();

    assert_eq!(reply["echo"]["title"], SECRET, "the reply opened");
    let seen = locked(&rig.agent.seen);
    let fetch = seen.iter().find(|s| s.header.op == Op::TrustFetch).unwrap();
    assert!(fetch.header.auth.is_none() && fetch.header.host.is_none());
    let request = seen
        .iter()
        .find(|s| s.header.op == Op::SessionRename)
        .unwrap();
    let checked = request.checked.as_ref().expect("the request is signed");
    assert_eq!(checked.key, alice().key.public());
    assert_eq!(checked.fields.req_id, ReqId(7));
    assert!(checked.fields.channel.is_some() && checked.fields.body.is_some());
    assert_eq!(request.body.as_ref().unwrap()["title"], SECRET);
    assert!(!request.wire.is_empty());
    assert!(
        !contains(&request.wire, SECRET) && !contains(&request.wire, "title"),
        "the body crossed the wire sealed"
    );
    drop(seen);
    assert_eq!(
        streams.host_mode(&HostId::from(HOST)),
        Some(HostMode::Verified)
    );
    assert_eq!(
        pins.load(Ordering::SeqCst),
        1,
        "the vouched-for host is pinned and saved once"
    );
}

#[tokio::test]
async fn concurrent_first_requests_to_a_host_share_one_channel_open() {
    let pair = HostKeyPair::generate().unwrap();
    let rig = rig(
        TrustBundle::default(),
        HostKeyPair::from_secret(pair.secret()),
    )
    .await;
    let mut trust = alice();
    trust.certs.push(host_cert(&pair));
    let streams = HostStreams::new(rig.conn.clone(), Some(trust), None);

    let (a, b, c) = tokio::join!(
        rename(&streams, 1),
        rename(&streams, 2),
        rename(&streams, 3)
    );

    for r in [a, b, c] {
        assert_eq!(r.unwrap()["echo"]["title"], SECRET);
    }
    assert_eq!(rig.agent.opens.load(Ordering::SeqCst), 1);
    assert_eq!(
        rig.agent.seen_ops(Op::TrustFetch),
        0,
        "the certificate was at hand"
    );
}

#[tokio::test]
async fn a_host_that_lost_the_channel_gets_a_new_one_and_the_request_once_more() {
    let pair = HostKeyPair::generate().unwrap();
    let rig = rig(
        TrustBundle::default(),
        HostKeyPair::from_secret(pair.secret()),
    )
    .await;
    let mut trust = alice();
    trust.certs.push(host_cert(&pair));
    let streams = HostStreams::new(rig.conn.clone(), Some(trust), None);
    rename(&streams, 1).await.unwrap();
    // The agent restarted: it knows no channel.
    locked(&rig.agent.channels).clear();

    let reply = rename(&streams, 2).await.unwrap();

    assert_eq!(reply["echo"]["title"], SECRET);
    assert_eq!(rig.agent.opens.load(Ordering::SeqCst), 2, "re-opened once");
    assert_eq!(
        rig.agent.seen_ops(Op::SessionRename),
        3,
        "the first request, the refused one, its retry"
    );
}

#[tokio::test]
async fn a_pinned_host_without_a_valid_certificate_is_refused_never_sent_plaintext() {
    let pair = HostKeyPair::generate().unwrap();
    let public = X25519Public(pair.public());
    let rig = rig(TrustBundle::default(), pair).await;
    let mut trust = alice();
    trust.pinned_hosts.insert(HostId::from(HOST), public);
    let streams = HostStreams::new(rig.conn.clone(), Some(trust), None);

    let refused = rename(&streams, 1).await.unwrap_err();

    assert!(
        refused.to_string().contains("no longer vouched for"),
        "{refused}"
    );
    assert_eq!(
        rig.agent.seen_ops(Op::TrustFetch),
        1,
        "it asked the relay first"
    );
    assert_eq!(
        rig.agent.seen_ops(Op::SessionRename),
        0,
        "nothing went to the host"
    );
    assert_eq!(rig.agent.opens.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_relay_trusted_profile_sends_plaintext_unsigned_as_before() {
    let rig = rig(TrustBundle::default(), HostKeyPair::generate().unwrap()).await;
    let streams = HostStreams::new(rig.conn.clone(), None, None);

    let reply = rename(&streams, 1).await.unwrap();

    assert_eq!(reply["echo"]["title"], SECRET);
    let seen = locked(&rig.agent.seen);
    assert_eq!(seen.len(), 1, "no trust_fetch, no e2e_open");
    assert!(seen[0].header.auth.is_none());
    assert!(
        contains(&seen[0].wire, SECRET),
        "plaintext, as before zero-trust"
    );
    drop(seen);
    assert_eq!(
        streams.host_mode(&HostId::from(HOST)),
        Some(HostMode::RelayTrusted)
    );
}

#[tokio::test]
async fn an_uncertified_host_never_pinned_is_used_relay_trusted_and_shown_so() {
    let rig = rig(TrustBundle::default(), HostKeyPair::generate().unwrap()).await;
    let streams = HostStreams::new(rig.conn.clone(), Some(alice()), None);
    assert_eq!(streams.host_mode(&HostId::from(HOST)), None);

    let reply = rename(&streams, 1).await.unwrap();

    assert_eq!(reply["echo"]["title"], SECRET);
    assert_eq!(
        streams.host_mode(&HostId::from(HOST)),
        Some(HostMode::RelayTrusted)
    );
    assert_eq!(rig.agent.seen_ops(Op::TrustFetch), 1);
}

#[tokio::test]
async fn a_port_forward_to_a_verified_host_carries_its_raw_bytes_sealed_both_ways() {
    let pair = HostKeyPair::generate().unwrap();
    let rig = rig(
        TrustBundle::default(),
        HostKeyPair::from_secret(pair.secret()),
    )
    .await;
    let mut trust = alice();
    trust.certs.push(host_cert(&pair));
    let streams = HostStreams::new(rig.conn.clone(), Some(trust), None);
    let mut header = StreamHeader::new(Op::PortForward, ReqId(9));
    header.host = Some(HostId::from(HOST));
    let options = OpenOptions {
        finish: false,
        priority: Some(proto::forward::STREAM_PRIORITY),
    };
    let target = proto::forward::ForwardTarget { port: 8000 };

    let HostStream { mut send, mut recv } =
        streams.open(&header, Some(&target), options).await.unwrap();
    let first: Reply<proto::forward::ForwardOpened> = recv.expect().await.unwrap();
    assert_eq!(first.into_result().unwrap().port, 8000);
    send.write_all(b"GET /the-secret-path HTTP/1.1")
        .await
        .unwrap();
    send.shutdown().await.unwrap();
    let mut down = recv.take_buffered().to_vec();
    recv.into_inner().read_to_end(&mut down).await.unwrap();

    assert_eq!(down, b"GET /THE-SECRET-PATH HTTP/1.1", "the answer opened");
    let seen = locked(&rig.agent.seen);
    let forward = seen
        .iter()
        .find(|s| s.header.op == Op::PortForward)
        .unwrap();
    assert_eq!(
        forward.body.as_ref().unwrap()["raw"],
        "GET /the-secret-path HTTP/1.1"
    );
    assert!(
        !contains(&forward.wire, "the-secret-path") && !contains(&forward.wire, "8000"),
        "the target and the raw bytes crossed the wire sealed"
    );
}

#[tokio::test]
async fn relay_operations_stay_plaintext_and_unsigned_on_a_zero_trust_profile() {
    let pair = HostKeyPair::generate().unwrap();
    let rig = rig(
        TrustBundle::default(),
        HostKeyPair::from_secret(pair.secret()),
    )
    .await;
    let mut trust = alice();
    trust.certs.push(host_cert(&pair));
    let streams = HostStreams::new(rig.conn.clone(), Some(trust), None);
    let query = proto::template::TemplateQuery {
        name: "team".into(),
        version: None,
    };
    for host in [None, Some(HostId::from(HOST))] {
        let mut header = StreamHeader::new(Op::TemplateShow, ReqId(1));
        header.host = host;
        let reply: Value = streams.request(&header, Some(&query)).await.unwrap();
        assert_eq!(reply["echo"]["name"], "team");
    }

    let seen = locked(&rig.agent.seen);
    assert_eq!(seen.len(), 2, "no e2e_open, no trust_fetch");
    assert!(
        seen.iter()
            .all(|s| s.header.auth.is_none() && contains(&s.wire, "team"))
    );
}

mod record_format;
