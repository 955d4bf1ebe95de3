//! Grants are cached by the relay (no database round trip per stream) yet a change made by
//! another process reaches the next stream; reads are audited without waiting, and nothing
//! queued for the audit trail is lost when the relay stops.

use crate::forward::{fake_agent, header, user_with_grant};
use crate::harness::*;
use anyhow::Result;
use cm_client::{self as client, LinkError};
use proto::header::Op;
use proto::ids::UserId;
use proto::rbac::Role;
use proto::wire_error::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_changed_by_another_process_applies_to_the_next_stream() -> Result<()> {
    let relay = TestRelay::start().await?;
    let _agent = fake_agent(&relay, "box").await?;
    let bob = user_with_grant(&relay, "bob", "box", Role::Operator)?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &bob).await?;
    watch_until(&op, "box online", |l| host_online(l, "box")).await?;
    let start = header(Op::OpencodeStart, "box");
    // Allowed, and now cached.
    let answer: String = client::request::<(), String>(&op.conn, &start, None).await?;
    assert!(answer.starts_with("bob as operator"), "{answer}");

    // Another connection (the CLI's) demotes bob to viewer on box.
    let store = relay.state.store()?;
    store.grant(&UserId::from("bob"), "box", Role::Viewer)?;

    // The relay notices within its poll interval; wait for it by outcome, bounded.
    let deadline = tokio::time::Instant::now() + WAIT;
    let refusal = loop {
        match client::request::<(), String>(&op.conn, &start, None).await {
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(cm_relay::store::GRANTS_POLL_INTERVAL / 4).await;
            }
            Ok(_) => anyhow::bail!("the demotion never reached the relay"),
            Err(LinkError::Refused(e)) => break e,
            Err(other) => return Err(other.into()),
        }
    };
    assert_eq!(refusal.code, ErrorCode::Forbidden);
    assert_eq!(
        refusal.message,
        "opencode_start: needs role operator, you have viewer"
    );
    // Reading is still allowed with the new grant.
    let read: String =
        client::request::<(), String>(&op.conn, &header(Op::Messages, "box"), None).await?;
    assert!(read.starts_with("bob as viewer"), "{read}");
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_audited_and_nothing_queued_is_lost_at_shutdown() -> Result<()> {
    let relay = TestRelay::start().await?;
    let _agent = fake_agent(&relay, "box").await?;
    let owner = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;
    watch_until(&op, "box online", |l| host_online(l, "box")).await?;
    let reads = 50;
    for _ in 0..reads {
        let _: String =
            client::request::<(), String>(&op.conn, &header(Op::Messages, "box"), None).await?;
    }
    let mut relay = relay;
    if let Some(running) = relay.relay.take() {
        running.shutdown().await;
    }
    // Every read has its row once the relay has stopped, and the chain is intact.
    let store = relay.state.store()?;
    let rows = store.audit_tail(1000)?;
    let messages = rows
        .iter()
        .filter(|r| r.event.op == "messages" && r.event.decision == "allow")
        .count();
    assert_eq!(messages, reads);
    assert_eq!(store.audit_verify()?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naming_a_host_does_not_make_its_owner_a_relay_administrator() -> Result<()> {
    use proto::admin::{AdminDone, UserInfo, UserRequest};
    let relay = TestRelay::start().await?;
    let _agent = fake_agent(&relay, "box").await?;
    let boxer = user_with_grant(&relay, "boxer", "box", Role::Owner)?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &boxer).await?;
    watch_until(&op, "box online", |l| host_online(l, "box")).await?;

    // Owner of one host, asking with that host in the header: still no relay administration.
    let e = match client::request::<(), Vec<UserInfo>>(&op.conn, &header(Op::UserList, "box"), None)
        .await
    {
        Err(LinkError::Refused(e)) => e,
        other => anyhow::bail!("expected a refusal, got {other:?}"),
    };
    assert_eq!(e.code, ErrorCode::Forbidden);
    let grant = UserRequest::Grant {
        name: "boxer".into(),
        role: Role::Owner,
        host: "*".into(),
    };
    assert!(matches!(
        client::request::<_, AdminDone>(&op.conn, &header(Op::GrantAdmin, "box"), Some(&grant))
            .await,
        Err(LinkError::Refused(_))
    ));
    // Nothing changed.
    assert_eq!(
        relay.state.store()?.grants(&UserId::from("boxer"))?,
        vec![("box".to_owned(), Role::Owner)]
    );
    relay.shutdown().await;
    Ok(())
}
