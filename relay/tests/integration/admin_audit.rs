//! Administration and its audit trail: each action is one row naming what was done and to what,
//! and a body that never comes is refused, audited, and its stream freed.

use crate::admin::{Staff, call, refusal, staff};
use crate::harness::*;
use anyhow::Result;
use proto::admin::{
    AdminDone, CredName, HostAdd, HostEnrolled, HostEntry, HostRequest, KillTarget,
};
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use proto::wire_error::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_admin_action_is_one_audit_row_naming_what_was_done_and_to_what() -> Result<()> {
    let Staff {
        relay,
        ada,
        otto_cred,
        ..
    } = staff().await?;
    let before = relay
        .state
        .store()?
        .audit_tail(1)?
        .first()
        .map_or(0, |r| r.id);
    let _: Vec<HostEntry> = call(&ada, Op::HostRotate, Some(&HostRequest::List)).await?;
    let _: HostEnrolled = call(
        &ada,
        Op::HostAdd,
        Some(&HostAdd {
            name: "box".into(),
            relay_addr: None,
        }),
    )
    .await?;
    let _: AdminDone = call(
        &ada,
        Op::CredsRevoke,
        Some(&CredName {
            id: otto_cred.cred_id.0.clone(),
        }),
    )
    .await?;
    let _ = refusal(
        call::<_, AdminDone>(
            &ada,
            Op::Kill,
            Some(&KillTarget::User {
                name: "owner".into(),
            }),
        )
        .await,
    );
    let mut relay = relay;
    if let Some(running) = relay.relay.take() {
        running.shutdown().await;
    }
    let mut rows: Vec<(String, Option<String>, String)> = relay
        .state
        .store()?
        .audit_tail(100)?
        .into_iter()
        .filter(|r| r.id > before && r.event.actor == "ada")
        .map(|r| (r.event.op, r.event.target, r.event.decision))
        .collect();
    rows.sort();
    let row = |op: &str, target: &str, decision: &str| {
        (op.to_owned(), Some(target.to_owned()), decision.to_owned())
    };
    assert_eq!(
        rows,
        vec![
            row(
                "cred_revoke",
                &format!("revoked credential {}", otto_cred.cred_id),
                "allow"
            ),
            row("host_add", "enrolled host box", "allow"),
            ("host_list".to_owned(), None, "allow".to_owned()),
            row("kill", "user owner", "deny"),
        ]
    );
    Ok(())
}

/// A client that sends an administration header and never its body is answered with a timeout
/// error once the relay's body timeout (its handshake timeout, 1 s here) has passed, the refusal
/// is audited, and the relay lets go of the stream (it stops reading it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_body_that_never_comes_is_refused_and_its_stream_freed() -> Result<()> {
    use cm_relay::framed::{FramedRecv, send_frame};
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    let (mut send, recv) = owner.conn.open_bi().await?;
    let header = StreamHeader::new(Op::Kill, ReqId(1));
    send_frame(&mut send, &header, proto::frame::MAX_HEADER_LEN).await?;
    // No body and no end of stream: the send side stays open.
    let mut recv = FramedRecv::new(recv, proto::frame::MAX_FRAME_LEN);
    let reply =
        tokio::time::timeout(WAIT, recv.expect::<proto::message::Reply<AdminDone>>()).await??;
    match reply {
        proto::message::Reply::Error(e) => {
            assert_eq!(e.code, ErrorCode::BadRequest);
            assert_eq!(e.message, "no kill body in time");
        }
        other @ proto::message::Reply::Ok(_) => panic!("expected a refusal, got {other:?}"),
    }
    // The relay stopped reading: the stream is not held open waiting for the body.
    tokio::time::timeout(WAIT, send.stopped()).await??;
    let rows = relay.state.store()?.audit_tail(1)?;
    assert_eq!(rows[0].event.op, "kill");
    assert_eq!(rows[0].event.decision, "deny");
    assert_eq!(
        rows[0].event.reason.as_deref(),
        Some("no kill body in time")
    );
    relay.shutdown().await;
    Ok(())
}
