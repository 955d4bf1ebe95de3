//! The offline prompt queue (issue #7): a prompt for an offline host is queued with an expiry,
//! delivered exactly once when the host is back (as its author, with its idempotency key),
//! never when it expired, was cancelled, or its author lost the role meanwhile.

use crate::forward::user_with_grant;
use crate::harness::*;
use anyhow::{Context, Result};
use cm_client::{self as client, LinkError, Session};
use cm_relay::framed::{FramedRecv, send_frame};
use cm_relay::server::Relay;
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::{IssuedCredential, PeerKind};
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, HostId, ReqId, UserId};
use proto::message::{Control, Reply};
use proto::ops::{ForwardHeader, Prompt, PromptAccepted};
use proto::queue::{PromptOutcome, QueueCancel, QueueEntry, QueueList, QueueState};
use proto::rbac::Role;
use proto::wire_error::ErrorCode;
use std::time::Duration;
use tokio::sync::mpsc;

async fn relay_with_expiry(expiry: Duration) -> Result<TestRelay> {
    let state = RelayState::new()?;
    let mut config = state.config("127.0.0.1:0".parse()?);
    config.queue_expiry = expiry;
    let relay = Relay::spawn(config).await?;
    let addr = relay.local_addr();
    Ok(TestRelay {
        state,
        relay: Some(relay),
        addr,
    })
}

fn prompt_header(host: &str, session: &str) -> StreamHeader {
    let mut h = StreamHeader::new(Op::Prompt, ReqId(1));
    h.host = Some(HostId::from(host));
    h.workspace = Some("demo".into());
    h.session = Some(session.into());
    h
}

async fn send_prompt(op: &Session, text: &str, key: &str) -> Result<PromptOutcome> {
    send_prompt_to(op, "ses_q", text, key).await
}

async fn send_prompt_to(
    op: &Session,
    session: &str,
    text: &str,
    key: &str,
) -> Result<PromptOutcome> {
    let body = Prompt {
        text: text.into(),
        idempotency_key: key.into(),
        model: None,
        agent: None,
    };
    Ok(client::request(&op.conn, &prompt_header("box", session), Some(&body)).await?)
}

/// Records `user` as the owner of `session` on `box`, as if they had created it through the
/// relay (an operator drives only sessions of their own). Before any request names it.
fn own_session(relay: &TestRelay, session: &str, user: &str) -> Result<()> {
    let db = rusqlite::Connection::open(relay.state.dir.db_path())?;
    db.execute(
        "INSERT INTO sessions(host, session, owner, created_ms) VALUES ('box', ?1, ?2, 0)",
        [session, user],
    )?;
    Ok(())
}

async fn queue_list(op: &Session) -> Result<Vec<QueueEntry>> {
    let list: QueueList =
        client::request::<(), _>(&op.conn, &StreamHeader::new(Op::QueueList, ReqId(2)), None)
            .await?;
    Ok(list.entries)
}

/// Polls `queue_list` until entry `id` is in `state` (bounded).
async fn wait_state(op: &Session, id: &str, state: QueueState) -> Result<QueueEntry> {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(e) = queue_list(op).await?.into_iter().find(|e| e.id == id)
                && e.state == state
            {
                return Ok::<_, anyhow::Error>(e);
            }
            // A poll interval against another process's timer, not a synchronisation sleep.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .with_context(|| format!("{id} never became {state:?}"))?
}

fn queued_id(outcome: PromptOutcome) -> Result<(String, u64)> {
    match outcome {
        PromptOutcome::Queued { queued } => Ok((queued.id, queued.expires_ms)),
        PromptOutcome::Accepted(a) => anyhow::bail!("expected queued, got accepted {a:?}"),
    }
}

/// An agent built from the client library that accepts prompts like the real one (answers
/// `PromptAccepted`), reports every prompt it receives, and heart-beats.
async fn prompt_agent(
    relay: &TestRelay,
    secret: &proto::handshake::Key,
) -> Result<(
    quinn::Connection,
    mpsc::UnboundedReceiver<(ForwardHeader, Prompt)>,
)> {
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let Session {
        conn: agent_conn,
        control_send: mut control,
        control_recv: mut acks,
        ..
    } = client::authenticate(conn, PeerKind::Agent, &CredId("box".into()), secret).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let conn = agent_conn.clone();
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                let fwd: ForwardHeader = recv.expect().await?;
                recv.set_max_len(MAX_FRAME_LEN);
                let body: Prompt = recv.expect().await?;
                let session = fwd.header.session.clone().unwrap_or_default();
                let _ = tx.send((fwd, body));
                let accepted = PromptAccepted {
                    session,
                    message_id: "msg_queued".into(),
                    duplicate: false,
                };
                send_frame(&mut send, &Reply::Ok(accepted), MAX_FRAME_LEN).await?;
                send.finish()?;
                Ok::<_, anyhow::Error>(())
            });
        }
    });
    tokio::spawn(async move { while let Ok(Some(_)) = acks.next::<Control>().await {} });
    tokio::spawn(async move {
        let mut seq = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            seq += 1;
            let hb = Control::Heartbeat {
                seq,
                status: Default::default(),
            };
            if send_frame(&mut control, &hb, MAX_FRAME_LEN).await.is_err() {
                return;
            }
        }
    });
    Ok((agent_conn, rx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_prompt_is_delivered_once_and_a_cancelled_one_never() -> Result<()> {
    let relay = relay_with_expiry(Duration::from_secs(3600)).await?;
    let token = relay.state.add_host("box", relay.addr)?;
    let owner = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;

    // The host is enrolled but offline: both prompts are queued, with the configured expiry.
    let before = cm_relay::time::now_ms();
    let (kept, expires) = queued_id(send_prompt(&op, "deliver me", "key-1").await?)?;
    assert!(expires >= before + 3_599_000, "expiry {expires}");
    // A retry (same key) is the same entry, not a second one.
    let (retried, _) = queued_id(send_prompt(&op, "deliver me", "key-1").await?)?;
    assert_eq!(retried, kept);
    let (dropped, _) = queued_id(send_prompt(&op, "cancel me", "key-2").await?)?;
    let cancelled: QueueEntry = client::request(
        &op.conn,
        &StreamHeader::new(Op::QueueCancel, ReqId(3)),
        Some(&QueueCancel {
            id: dropped.clone(),
        }),
    )
    .await?;
    assert_eq!(cancelled.state, QueueState::Cancelled);
    // A second cancel is a typed conflict, someone else's id is not found.
    let again = client::request::<_, QueueEntry>(
        &op.conn,
        &StreamHeader::new(Op::QueueCancel, ReqId(4)),
        Some(&QueueCancel {
            id: dropped.clone(),
        }),
    )
    .await;
    assert!(
        matches!(&again, Err(LinkError::Refused(e)) if e.code == ErrorCode::Conflict),
        "{again:?}"
    );

    // The host comes back: exactly the kept prompt arrives, once, as its author.
    let (_agent, mut delivered) = prompt_agent(&relay, &token.secret).await?;
    let entry = wait_state(&op, &kept, QueueState::Delivered).await?;
    assert_eq!(entry.detail.as_deref(), Some("msg_queued"));
    let (fwd, body) = delivered.try_recv().context("nothing delivered")?;
    assert_eq!(fwd.principal, UserId::from("owner"));
    assert_eq!(fwd.role, Role::Owner);
    assert_eq!(fwd.header.session.as_deref(), Some("ses_q"));
    assert_eq!(body.text, "deliver me");
    assert_eq!(body.idempotency_key, "key-1");
    // The delivery loop has seen the host online since; the cancelled prompt stays cancelled
    // and nothing else arrived.
    let list = queue_list(&op).await?;
    let state_of = |id: &str| list.iter().find(|e| e.id == id).map(|e| e.state);
    assert_eq!(state_of(&dropped), Some(QueueState::Cancelled));
    assert!(delivered.try_recv().is_err(), "a second delivery");

    // Audit (each of these rows was durable before the relay acted): queued twice, cancelled
    // once, delivered once.
    let rows = relay.state.store()?.audit_tail(1000)?;
    relay.shutdown().await;
    let count = |op: &str| rows.iter().filter(|r| r.event.op == op).count();
    assert_eq!(count("queued"), 2);
    assert_eq!(count("queue_cancelled"), 1);
    assert_eq!(count("queue_deliver"), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_prompt_and_one_whose_author_lost_the_role_are_not_delivered() -> Result<()> {
    let relay = relay_with_expiry(Duration::from_millis(300)).await?;
    let token = relay.state.add_host("box", relay.addr)?;
    let bob: IssuedCredential = user_with_grant(&relay, "bob", "box", Role::Operator)?;
    own_session(&relay, "ses_q", "bob")?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &bob).await?;

    let (expired, _) = queued_id(send_prompt(&op, "too late", "key-e").await?)?;
    wait_state(&op, &expired, QueueState::Expired).await?;

    // A longer-lived relay for the revocation case.
    let relay2 = relay_with_expiry(Duration::from_secs(3600)).await?;
    let token2 = relay2.state.add_host("box", relay2.addr)?;
    let bob2 = user_with_grant(&relay2, "bob", "box", Role::Operator)?;
    own_session(&relay2, "ses_q", "bob")?;
    let op2 = operator(&relay2.addr_str(), &relay2.state.pin, &bob2).await?;
    let (revoked, _) = queued_id(send_prompt(&op2, "not any more", "key-r").await?)?;
    relay2
        .state
        .store()?
        .revoke_grant(&UserId::from("bob"), "box")?;
    // Bob has no grant left to list his queue with; the store shows the entry's fate.
    let (_agent2, mut delivered2) = prompt_agent(&relay2, &token2.secret).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let row = loop {
        let store = relay2.state.store()?;
        let row = store.queue_get(&revoked)?.context("entry gone")?;
        if row.state != QueueState::Queued && row.state != QueueState::Delivering {
            break row;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "never decided: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row.state, QueueState::Refused);
    assert!(
        row.detail
            .as_deref()
            .unwrap_or("")
            .starts_with("not delivered"),
        "{row:?}"
    );
    assert!(
        delivered2.try_recv().is_err(),
        "a revoked user's prompt arrived"
    );

    // The expired one is not delivered when its host comes back either.
    let (_agent, mut delivered) = prompt_agent(&relay, &token.secret).await?;
    watch_until(&op, "box online", |l| host_online(l, "box")).await?;
    let list = queue_list(&op).await?;
    assert_eq!(
        list.iter().find(|e| e.id == expired).map(|e| e.state),
        Some(QueueState::Expired)
    );
    assert!(delivered.try_recv().is_err(), "an expired prompt arrived");

    for r in [relay, relay2] {
        let rows = r.state.store()?.audit_tail(1000)?;
        r.shutdown().await;
        assert!(
            rows.iter()
                .all(|r| !(r.event.op == "queue_deliver" && r.event.decision == "allow")),
            "nothing was delivered"
        );
    }
    Ok(())
}

/// Polls the store until entry `id` has left `queued`/`delivering` (bounded).
async fn decided(relay: &TestRelay, id: &str) -> Result<cm_relay::store::QueueRow> {
    tokio::time::timeout(WAIT, async {
        loop {
            let row = relay.state.store()?.queue_get(id)?.context("entry gone")?;
            if row.state != QueueState::Queued && row.state != QueueState::Delivering {
                return Ok::<_, anyhow::Error>(row);
            }
            // A poll interval against the relay's delivery loop, not a synchronisation sleep.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .with_context(|| format!("{id} was never decided"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_queued_with_a_credential_revoked_since_is_never_delivered() -> Result<()> {
    let relay = relay_with_expiry(Duration::from_secs(3600)).await?;
    let token = relay.state.add_host("box", relay.addr)?;
    // Both keep their grant on the host: only their credentials are revoked.
    let bob = user_with_grant(&relay, "bob", "box", Role::Operator)?;
    let bob_op = operator(&relay.addr_str(), &relay.state.pin, &bob).await?;
    let carol = user_with_grant(&relay, "carol", "box", Role::Operator)?;
    let carol_op = operator(&relay.addr_str(), &relay.state.pin, &carol).await?;
    own_session(&relay, "ses_q", "bob")?;
    own_session(&relay, "ses_c", "carol")?;
    let (bobs, _) = queued_id(send_prompt(&bob_op, "from bob", "key-b").await?)?;
    let (carols, _) = queued_id(send_prompt_to(&carol_op, "ses_c", "from carol", "key-c").await?)?;

    // The kill switch for bob's credential refuses his waiting prompt right away.
    cm_relay::cli::kill(
        &relay.state.dir,
        &cm_relay::cli::KillArgs {
            cred: Some(bob.cred_id.0.clone()),
            ..kill_args()
        },
    )?;
    let row = relay
        .state
        .store()?
        .queue_get(&bobs)?
        .context("entry gone")?;
    assert_eq!(row.state, QueueState::Refused, "{row:?}");
    assert_eq!(
        row.detail.as_deref(),
        Some("not delivered: the author's credential was revoked")
    );
    // Carol's credential is marked revoked without the revocation path (as an older relay
    // left it): delivery itself checks the credential and refuses.
    relay.state.store()?.revoke_credential(&carol.cred_id)?;
    assert_eq!(
        relay.state.store()?.queue_get(&carols)?.map(|r| r.state),
        Some(QueueState::Queued)
    );

    let (_agent, mut delivered) = prompt_agent(&relay, &token.secret).await?;
    let row = decided(&relay, &carols).await?;
    assert_eq!(row.state, QueueState::Refused, "{row:?}");
    assert_eq!(
        row.detail.as_deref(),
        Some("not delivered: credential c-carol was revoked")
    );
    assert!(delivered.try_recv().is_err(), "a revoked prompt arrived");
    let rows = relay.state.store()?.audit_tail(1000)?;
    relay.shutdown().await;
    assert!(
        rows.iter().any(|r| r.event.op == "queue_deliver"
            && r.event.decision == "deny"
            && r.event.target.as_deref() == Some(carols.as_str())),
        "the refusal is audited"
    );
    assert!(
        rows.iter().any(|r| r.event.op == "queue_refused"
            && r.event.decision == "deny"
            && r.event.actor == "bob"
            && r.event.target.as_deref() == Some(bobs.as_str())),
        "the refusal by the kill switch is audited"
    );
    assert!(
        rows.iter()
            .all(|r| !(r.event.op == "queue_deliver" && r.event.decision == "allow")),
        "nothing was delivered"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_left_mid_delivery_by_a_relay_that_died_is_delivered_without_a_restart()
-> Result<()> {
    let relay = relay_with_expiry(Duration::from_secs(3600)).await?;
    let token = relay.state.add_host("box", relay.addr)?;
    let owner = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;
    let (id, _) = queued_id(send_prompt(&op, "left behind", "key-dead").await?)?;
    // Another claimer took it for delivery long ago and never finished (it was killed).
    let claimed_long_ago = cm_relay::time::now_ms() - 10 * 60 * 1000;
    assert!(
        relay
            .state
            .store()?
            .queue_claim(&id, "gone", claimed_long_ago)?
    );
    // The host comes back: the running relay finds the claim stale and delivers the prompt.
    let (_agent, mut delivered) = prompt_agent(&relay, &token.secret).await?;
    let entry = wait_state(&op, &id, QueueState::Delivered).await?;
    assert_eq!(entry.detail.as_deref(), Some("msg_queued"));
    let (_, body) = delivered.try_recv().context("nothing delivered")?;
    assert_eq!(body.text, "left behind");
    relay.shutdown().await;
    Ok(())
}
