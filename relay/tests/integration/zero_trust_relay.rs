//! The relay's part of zero-trust (issue #20) with a real relay: it stores and serves trust
//! objects it cannot make (refusing forged ones), records device keys seen at login and hosts'
//! key claims (only for the host itself), pushes revocation lists to agents, keeps a sealed
//! queued prompt and its signed header verbatim, and runs every `Tamper` hook of the
//! malicious-relay harness.

use crate::forward::{fake_agent, header, user_with_grant};
use crate::harness::*;
use anyhow::{Context, Result};
use cm_client::{self as client, LinkError, Session};
use cm_relay::framed::{FramedRecv, send_frame};
use cm_relay::server::Relay;
use cm_relay::tamper::Tamper;
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::{IssuedCredential, LoginMethod, LoginRequest, PeerKind};
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, HostId, ReqId, UserId};
use proto::message::{Control, Reply};
use proto::op;
use proto::ops::{ForwardHeader, Prompt, PromptAccepted};
use proto::queue::{PromptOutcome, QueueList};
use proto::rbac::Role;
use proto::trust::header::{SignInput, sign};
use proto::trust::{
    Cert, CertBody, DeviceKey, HostKeyClaim, RevocationBody, RevocationList, Root, Signed, Subject,
    TrustBundle, TrustQuery, X25519Public,
};
use proto::wire_error::ErrorCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

pub(crate) fn owner_key() -> DeviceKey {
    DeviceKey::from_seed([11; 32]).unwrap()
}

fn user_cert(serial: &str) -> Cert {
    Signed::sign(
        &CertBody {
            serial: serial.into(),
            subject: Subject::User {
                user: UserId::from("vera"),
                device_keys: vec![DeviceKey::from_seed([12; 32]).unwrap().public()],
                host: "box".into(),
                role: Role::Viewer,
            },
            not_before_ms: 0,
            not_after_ms: u64::MAX,
        },
        &owner_key(),
    )
}

pub(crate) fn revocation_list(seq: u64) -> RevocationList {
    Signed::sign(
        &RevocationBody {
            issuer_user: UserId::from("owner"),
            seq,
            issued_ms: 1_800_000_000_000,
            serials: vec!["dead".into()],
            keys: vec![],
        },
        &owner_key(),
    )
}

pub(crate) async fn fetch(s: &Session, host: Option<&str>) -> Result<TrustBundle, LinkError> {
    client::call::<op::TrustFetch>(
        &s.conn,
        &StreamHeader::new(Op::TrustFetch, ReqId(1)),
        &TrustQuery {
            host: host.map(HostId::from),
        },
    )
    .await
}

pub(crate) async fn publish(s: &Session, bundle: &TrustBundle) -> Result<String, LinkError> {
    client::call::<op::TrustPublish>(
        &s.conn,
        &StreamHeader::new(Op::TrustPublish, ReqId(2)),
        bundle,
    )
    .await
    .map(|done| done.summary)
}

/// The next revocation lists on an agent's control stream (heartbeat acks skipped).
pub(crate) async fn next_revocations(control: &mut FramedRecv) -> Result<Vec<RevocationList>> {
    tokio::time::timeout(WAIT, async {
        loop {
            match control.next::<Control>().await? {
                Some(Control::Revocations { lists, .. }) => return Ok(lists),
                Some(_) => {}
                None => anyhow::bail!("control stream ended"),
            }
        }
    })
    .await
    .context("no revocation lists pushed")?
}

pub(crate) fn audit_targets(relay: &TestRelay, op: &str) -> Result<Vec<String>> {
    Ok(relay
        .state
        .store()?
        .audit_tail(200)?
        .into_iter()
        .filter(|r| r.event.op == op)
        .filter_map(|r| r.event.target)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_trust_objects_are_refused_and_published_ones_are_served_audited_and_pushed()
-> Result<()> {
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    let mut agent = fake_agent(&relay, "box").await?;

    // Any bit flipped: refused as a bad request, nothing stored.
    let mut forged = user_cert("00aa");
    forged.sig.0[3] ^= 1;
    let refused = publish(
        &owner,
        &TrustBundle {
            certs: vec![forged],
            ..TrustBundle::default()
        },
    )
    .await;
    assert!(
        matches!(&refused, Err(LinkError::Refused(e)) if e.code == ErrorCode::BadRequest
            && e.message.contains("exactly as cm-tui signed them")),
        "{refused:?}"
    );
    assert!(fetch(&owner, None).await?.certs.is_empty());

    // Published: stored, each object audited with its signer, the list pushed to the agent.
    let fp = owner_key().public().fingerprint();
    let bundle = TrustBundle {
        certs: vec![user_cert("00aa")],
        revocations: vec![revocation_list(1)],
        roots: vec![Root {
            user: UserId::from("owner"),
            key: owner_key().public(),
        }],
        ..TrustBundle::default()
    };
    let summary = publish(&owner, &bundle).await?;
    assert!(
        summary.contains("stored 1 certificates, 1 revocation lists, 1 roots"),
        "{summary}"
    );
    assert_eq!(
        next_revocations(&mut agent.control_recv).await?,
        vec![revocation_list(1)]
    );
    let rows = audit_targets(&relay, "trust_publish")?;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.contains(&fp)), "{rows:?}");

    // Served to any grant; a viewer may fetch but not publish, nor announce a root.
    let viewer = user_with_grant(&relay, "vera", "box", Role::Viewer)?;
    let vera = operator(&relay.addr_str(), &relay.state.pin, &viewer).await?;
    let served = fetch(&vera, Some("box")).await?;
    assert_eq!(served.certs, bundle.certs);
    assert_eq!(served.revocations, bundle.revocations);
    assert_eq!(served.roots, bundle.roots);
    let denied = publish(&vera, &bundle).await;
    assert!(
        matches!(&denied, Err(LinkError::Refused(e)) if e.code == ErrorCode::Forbidden),
        "{denied:?}"
    );

    // An agent connecting later is sent the newest lists after its handshake.
    let mut late = fake_agent(&relay, "late").await?;
    assert_eq!(
        next_revocations(&mut late.control_recv).await?,
        vec![revocation_list(1)]
    );
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_key_at_login_is_pending_and_an_agent_claims_a_key_only_for_its_own_host()
-> Result<()> {
    let relay = TestRelay::start().await?;
    let device = DeviceKey::from_seed([21; 32])?;
    let req = LoginRequest {
        v: proto::PROTOCOL_VERSION,
        user: relay.state.invite.user.clone(),
        method: LoginMethod::Invite {
            secret: relay.state.invite.secret,
            new_password: None,
        },
        ttl_s: None,
        label: Some("olga-laptop".into()),
        device_key: Some(device.public()),
    };
    let cred = client::login(&relay.addr_str(), &relay.state.pin, req).await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    let pending = fetch(&owner, None).await?.pending;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].key, device.public());
    assert_eq!(pending[0].user, UserId::from("owner"));
    assert_eq!(pending[0].label.as_deref(), Some("olga-laptop"));
    let rows = audit_targets(&relay, "device_key")?;
    assert!(
        rows.iter()
            .any(|r| r.contains(&device.public().fingerprint())),
        "{rows:?}"
    );

    // The agent of `box` claims a key for `other` (ignored), then for itself (stored); the
    // control stream is read in order, so once the second is stored the first was handled.
    let token = relay.state.add_host("box", relay.addr)?;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let Session {
        control_send: mut control,
        ..
    } = client::authenticate(conn, PeerKind::Agent, &CredId::from("box"), &token.secret).await?;
    let bind = proto::handshake::Bytes32([5; 32]);
    for host in ["other", "box"] {
        let claim = HostKeyClaim::new(HostId::from(host), X25519Public([6; 32]), &bind);
        send_frame(
            &mut control,
            &Control::HostKeyClaim { claim },
            MAX_FRAME_LEN,
        )
        .await?;
    }
    let claims = tokio::time::timeout(WAIT, async {
        loop {
            let claims = fetch(&owner, None).await?.claims;
            if !claims.is_empty() {
                return Ok::<_, anyhow::Error>(claims);
            }
            // Re-check interval of a condition, not a synchronisation sleep.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .context("the host key claim was never stored")??;
    assert_eq!(
        claims,
        vec![HostKeyClaim::new(
            HostId::from("box"),
            X25519Public([6; 32]),
            &bind
        )]
    );
    relay.shutdown().await;
    Ok(())
}

/// A compromised relay as the harness plays it: every hook counted, the role rewritten, the
/// forwarded bytes kept, a root slipped into fetch answers.
#[derive(Debug, Default)]
struct Recorder {
    headers: AtomicUsize,
    revocations: AtomicUsize,
    bundles: AtomicUsize,
    up: parking_lot::Mutex<Vec<u8>>,
    down: parking_lot::Mutex<Vec<u8>>,
}

impl Tamper for Recorder {
    fn forward_header(&self, fwd: &mut ForwardHeader) {
        self.headers.fetch_add(1, Ordering::SeqCst);
        fwd.role = Role::Owner;
    }

    fn forwarded_bytes(&self, to_agent: bool, bytes: &[u8]) {
        let side = if to_agent { &self.up } else { &self.down };
        side.lock().extend_from_slice(bytes);
    }

    fn revocations(&self, lists: Vec<RevocationList>) -> Vec<RevocationList> {
        self.revocations.fetch_add(1, Ordering::SeqCst);
        lists
    }

    fn trust_bundle(&self, mut bundle: TrustBundle) -> TrustBundle {
        self.bundles.fetch_add(1, Ordering::SeqCst);
        bundle.roots.push(Root {
            user: UserId::from("mallory"),
            key: DeviceKey::from_seed([66; 32]).unwrap().public(),
        });
        bundle
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampering_relay_runs_every_hook_and_the_agent_sees_what_it_rewrote() -> Result<()> {
    let state = RelayState::new()?;
    let recorder = Arc::new(Recorder::default());
    let tamper: Arc<dyn Tamper> = recorder.clone();
    let relay = Relay::spawn_with_tamper(state.config("127.0.0.1:0".parse()?), tamper).await?;
    let addr = relay.local_addr();
    let relay = TestRelay {
        state,
        relay: Some(relay),
        addr,
    };
    let cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    let mut agent = fake_agent(&relay, "box").await?;
    watch_until(&owner, "box online", |l| host_online(l, "box")).await?;

    // forward_header: a viewer's request reaches the agent as the owner's role.
    let viewer = user_with_grant(&relay, "vera", "box", Role::Viewer)?;
    let vera = operator(&relay.addr_str(), &relay.state.pin, &viewer).await?;
    let answer: String =
        client::request::<(), _>(&vera.conn, &header(Op::Messages, "box"), None).await?;
    assert!(answer.starts_with("vera as owner"), "{answer}");
    assert!(recorder.headers.load(Ordering::SeqCst) >= 1);

    // forwarded_bytes: the relay saw the prompt going up and the answer coming down.
    let prompt = Prompt {
        text: "plaintext the relay can read".into(),
        idempotency_key: "k".into(),
        model: None,
        agent: None,
    };
    let _: String = client::request(&owner.conn, &header(Op::Prompt, "box"), Some(&prompt)).await?;
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains(
        &recorder.up.lock(),
        "plaintext the relay can read"
    ));
    assert!(contains(&recorder.down.lock(), "vera as owner"));

    // revocations: the pushed lists went through the hook.
    publish(
        &owner,
        &TrustBundle {
            revocations: vec![revocation_list(1)],
            ..TrustBundle::default()
        },
    )
    .await?;
    assert_eq!(
        next_revocations(&mut agent.control_recv).await?,
        vec![revocation_list(1)]
    );
    assert!(recorder.revocations.load(Ordering::SeqCst) >= 1);

    // trust_bundle: the fetch answer carries what the relay slipped in.
    let served = fetch(&owner, None).await?;
    assert!(
        served
            .roots
            .iter()
            .any(|r| r.user == UserId::from("mallory"))
    );
    assert_eq!(recorder.bundles.load(Ordering::SeqCst), 1);
    relay.shutdown().await;
    Ok(())
}

/// An agent that accepts prompts and reports each forward header with its raw body bytes.
pub(crate) async fn raw_prompt_agent(
    relay: &TestRelay,
    secret: &proto::handshake::Key,
) -> Result<(
    quinn::Connection,
    mpsc::UnboundedReceiver<(ForwardHeader, Vec<u8>)>,
)> {
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let session = client::authenticate(conn, PeerKind::Agent, &CredId::from("box"), secret).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let conn = session.conn.clone();
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                let fwd: ForwardHeader = recv.expect().await?;
                recv.set_max_len(MAX_FRAME_LEN);
                let body = recv.next_raw().await?.unwrap_or_default().to_vec();
                let session = fwd.header.session.clone().unwrap_or_default();
                let _ = tx.send((fwd, body));
                let accepted = PromptAccepted {
                    session,
                    message_id: "msg_sealed".into(),
                    duplicate: false,
                };
                send_frame(&mut send, &Reply::Ok(accepted), MAX_FRAME_LEN).await?;
                send.finish()?;
                Ok::<_, anyhow::Error>(())
            });
        }
    });
    let Session {
        conn,
        control_send,
        mut control_recv,
        ..
    } = session;
    tokio::spawn(async move { while let Ok(Some(_)) = control_recv.next::<Control>().await {} });
    heartbeat_forever(control_send, Default::default()).await?;
    Ok((conn, rx))
}

fn signed_prompt_header(cred: &IssuedCredential, key: &DeviceKey) -> StreamHeader {
    let mut h = StreamHeader::new(Op::Prompt, ReqId(4242));
    h.host = Some(HostId::from("box"));
    h.workspace = Some("demo".into());
    h.session = Some("ses_1".into());
    sign(
        &mut h,
        SignInput {
            user: &cred.user,
            key,
            nonce: [9; 16],
            now_ms: cm_relay::time::now_ms(),
            body: Some("b0d7".into()),
            channel: None,
            template: None,
        },
    )
    .unwrap();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_queued_prompt_is_delivered_verbatim_with_its_signed_header() -> Result<()> {
    let relay = TestRelay::start().await?;
    let token = relay.state.add_host("box", relay.addr)?;
    let cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    let sealed = serde_json::json!({ "sealed": "b3BhcXVlIHRvIHRoZSByZWxheQ" });
    let raw = serde_json::to_vec(&sealed)?;

    // Unsigned, a sealed prompt has no author anyone could check: refused.
    let mut unsigned = signed_prompt_header(&cred, &owner_key());
    unsigned.auth = None;
    let refused = client::request::<_, PromptOutcome>(&owner.conn, &unsigned, Some(&sealed)).await;
    assert!(
        matches!(&refused, Err(LinkError::Refused(e)) if e.code == ErrorCode::BadRequest
            && e.message.contains("signed header")),
        "{refused:?}"
    );

    // Signed: queued as sent; the list shows it as sealed; the audit row names its signer.
    let signed = signed_prompt_header(&cred, &owner_key());
    let outcome: PromptOutcome = client::request(&owner.conn, &signed, Some(&sealed)).await?;
    assert!(
        matches!(outcome, PromptOutcome::Queued { .. }),
        "{outcome:?}"
    );
    let list: QueueList = client::request::<(), _>(
        &owner.conn,
        &StreamHeader::new(Op::QueueList, ReqId(5)),
        None,
    )
    .await?;
    assert_eq!(list.entries[0].preview, cm_relay::store::SEALED_PREVIEW);
    let fp = owner_key().public().fingerprint();
    let noted = relay
        .state
        .store()?
        .audit_tail(50)?
        .into_iter()
        .filter_map(|r| r.event.reason)
        .any(|r| r.contains(&format!("signed by {fp} body blake3:b0d7")) && r.contains("sealed"));
    assert!(noted, "no audit row with the signer and body hash");

    // The host comes back: the body and the signed header arrive exactly as the operator sent
    // them, with the request id it signed.
    let (_agent, mut delivered) = raw_prompt_agent(&relay, &token.secret).await?;
    let (fwd, body) = tokio::time::timeout(WAIT, delivered.recv())
        .await?
        .context("agent gone")?;
    assert_eq!(body, raw);
    assert_eq!(fwd.header.auth, signed.auth);
    assert_eq!(fwd.header.req_id, ReqId(4242));
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_streams_body_is_forwarded_unread_and_audited_with_its_signer() -> Result<()> {
    let relay = TestRelay::start().await?;
    let token = relay.state.add_host("box", relay.addr)?;
    let cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    let (_agent, mut delivered) = raw_prompt_agent(&relay, &token.secret).await?;
    watch_until(&owner, "box online", |l| host_online(l, "box")).await?;

    // A prompt on an end-to-end channel: after the header, records the relay cannot read.
    let mut h = signed_prompt_header(&cred, &owner_key());
    sign(
        &mut h,
        SignInput {
            user: &cred.user,
            key: &owner_key(),
            nonce: [3; 16],
            now_ms: cm_relay::time::now_ms(),
            body: Some("5ea1".into()),
            channel: Some("00112233445566778899aabbccddeeff".into()),
            template: None,
        },
    )?;
    let record: Vec<u8> = (0u8..=255).rev().collect();
    let (mut send, recv) = owner.conn.open_bi().await?;
    send_frame(&mut send, &h, MAX_HEADER_LEN).await?;
    send.write_all(&u32::try_from(record.len())?.to_be_bytes())
        .await?;
    send.write_all(&record).await?;
    send.finish()?;
    let mut recv = FramedRecv::new(recv, MAX_FRAME_LEN);
    let reply: Reply<PromptAccepted> = tokio::time::timeout(WAIT, recv.expect()).await??;
    assert!(matches!(reply, Reply::Ok(_)), "{reply:?}");
    let (fwd, body) = tokio::time::timeout(WAIT, delivered.recv())
        .await?
        .context("agent gone")?;
    assert_eq!(body, record);
    assert_eq!(fwd.header.auth, h.auth);
    let fp = owner_key().public().fingerprint();
    let noted = relay
        .state
        .store()?
        .audit_tail(50)?
        .into_iter()
        .filter_map(|r| r.event.reason)
        .any(|r| r.contains(&format!("signed by {fp} body blake3:5ea1 sealed")));
    assert!(
        noted,
        "no audit row with the signer, body hash and sealed mark"
    );
    relay.shutdown().await;
    Ok(())
}
