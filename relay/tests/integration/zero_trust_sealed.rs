//! The relay's part of two zero-trust operations: a `template_apply` sealed on an end-to-end
//! channel (forwarded unread, audited by the template its signed header names) and an owner's
//! root rotation (stored, audited, served and pushed to agents before the lists).

use crate::forward::fake_agent;
use crate::harness::*;
use crate::zero_trust_relay::{
    audit_targets, fetch, next_revocations, owner_key, publish, raw_prompt_agent, revocation_list,
};
use anyhow::{Context, Result};
use cm_client::LinkError;
use cm_relay::framed::{FramedRecv, send_frame};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::IssuedCredential;
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId, UserId};
use proto::message::{Control, Reply};
use proto::trust::header::{SignInput, sign};
use proto::trust::{DeviceKey, Signed, TrustBundle};
use proto::wire_error::ErrorCode;

/// A `template_apply` header signed on an end-to-end channel, naming `template` when given.
fn sealed_apply_header(
    cred: &IssuedCredential,
    template: Option<proto::template::TemplateRef>,
    nonce: u8,
) -> Result<StreamHeader> {
    let mut h = StreamHeader::new(Op::TemplateApply, ReqId(77));
    h.host = Some(HostId::from("box"));
    h.workspace = Some("demo".into());
    sign(
        &mut h,
        SignInput {
            user: &cred.user,
            key: &owner_key(),
            nonce: [nonce; 16],
            now_ms: cm_relay::time::now_ms(),
            body: Some("7e57".into()),
            channel: Some("00112233445566778899aabbccddeeff".into()),
            template,
        },
    )?;
    Ok(h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_template_apply_is_forwarded_unread_and_audited_by_its_signed_template()
-> Result<()> {
    let relay = TestRelay::start().await?;
    let token = relay.state.add_host("box", relay.addr)?;
    let cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    let (_agent, mut delivered) = raw_prompt_agent(&relay, &token.secret).await?;
    watch_until(&owner, "box online", |l| host_online(l, "box")).await?;

    // The template travels inside the sealed body (opaque records here); the signed header
    // names it. No template by that name is published at this relay: it is not looked up.
    let named = proto::template::TemplateRef {
        name: "team".into(),
        version: 3,
        hash: format!("blake3:{}", "0f".repeat(32)),
    };
    let h = sealed_apply_header(&cred, Some(named), 5)?;
    let record: Vec<u8> = (0u8..=200).collect();
    let (mut send, recv) = owner.conn.open_bi().await?;
    send_frame(&mut send, &h, MAX_HEADER_LEN).await?;
    send.write_all(&u32::try_from(record.len())?.to_be_bytes())
        .await?;
    send.write_all(&record).await?;
    send.finish()?;
    let mut recv = FramedRecv::new(recv, MAX_FRAME_LEN);
    let reply: Reply<serde_json::Value> = tokio::time::timeout(WAIT, recv.expect()).await??;
    assert!(matches!(reply, Reply::Ok(_)), "{reply:?}");
    let (fwd, body) = tokio::time::timeout(WAIT, delivered.recv())
        .await?
        .context("agent gone")?;
    assert_eq!(body, record, "the sealed body was changed on its way");
    assert_eq!(fwd.header.auth, h.auth);
    let noted = relay
        .state
        .store()?
        .audit_tail(50)?
        .into_iter()
        .filter(|r| r.event.op == "template_apply")
        .filter_map(|r| r.event.reason)
        .any(|r| {
            r.contains(&format!(
                "template team v3 blake3:{} (sealed)",
                "0f".repeat(32)
            ))
        });
    assert!(noted, "no audit row naming the signed template");

    // A sealed apply whose signed header names no template (an older cm-tui): refused, with
    // what to do.
    let h = sealed_apply_header(&cred, None, 6)?;
    let (mut send, recv) = owner.conn.open_bi().await?;
    send_frame(&mut send, &h, MAX_HEADER_LEN).await?;
    send.finish()?;
    let mut recv = FramedRecv::new(recv, MAX_FRAME_LEN);
    let reply: Reply<serde_json::Value> = tokio::time::timeout(WAIT, recv.expect()).await??;
    let Reply::Error(e) = reply else {
        anyhow::bail!("a sealed template_apply naming no template was forwarded: {reply:?}");
    };
    assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}");
    assert!(e.message.contains("update cm-tui"), "{}", e.message);
    relay.shutdown().await;
    Ok(())
}

fn rotation(old: &DeviceKey, new: &DeviceKey, user: &str) -> proto::trust::RootRotation {
    Signed::sign(
        &proto::trust::RotationBody {
            user: UserId::from(user),
            old_key: old.public(),
            new_key: new.public(),
            seq: 1,
            issued_ms: 1_800_000_000_000,
        },
        old,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_rotation_is_stored_audited_served_and_pushed_before_the_lists() -> Result<()> {
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    let mut agent = fake_agent(&relay, "box").await?;
    let new = DeviceKey::from_seed([13; 32])?;

    // Not signed by the root it replaces: refused, nothing stored.
    let mut forged = rotation(&owner_key(), &new, "owner");
    forged.key = new.public();
    let refused = publish(
        &owner,
        &TrustBundle {
            rotations: vec![forged],
            ..TrustBundle::default()
        },
    )
    .await;
    assert!(
        matches!(&refused, Err(LinkError::Refused(e)) if e.code == ErrorCode::BadRequest),
        "{refused:?}"
    );
    // For another owner's name: refused.
    let refused = publish(
        &owner,
        &TrustBundle {
            rotations: vec![rotation(&owner_key(), &new, "olga")],
            ..TrustBundle::default()
        },
    )
    .await;
    assert!(
        matches!(&refused, Err(LinkError::Refused(e)) if e.message.contains("own root")),
        "{refused:?}"
    );
    assert!(fetch(&owner, None).await?.rotations.is_empty());

    // The owner's own: stored, audited, served, and pushed to agents ahead of the lists.
    let statement = rotation(&owner_key(), &new, "owner");
    let summary = publish(
        &owner,
        &TrustBundle {
            rotations: vec![statement.clone()],
            revocations: vec![revocation_list(1)],
            ..TrustBundle::default()
        },
    )
    .await?;
    assert!(summary.contains("1 root rotations"), "{summary}");
    assert_eq!(
        fetch(&owner, None).await?.rotations,
        vec![statement.clone()]
    );
    let rows = audit_targets(&relay, "trust_publish")?;
    assert!(
        rows.iter()
            .any(|r| r.contains("root rotation 1 of owner")
                && r.contains(&new.public().fingerprint())),
        "{rows:?}"
    );
    let first = tokio::time::timeout(WAIT, async {
        loop {
            match agent.control_recv.next::<Control>().await? {
                Some(Control::Revocations { lists, rotations }) => {
                    return Ok::<_, anyhow::Error>((lists, rotations));
                }
                Some(_) => {}
                None => anyhow::bail!("control stream ended"),
            }
        }
    })
    .await??;
    assert_eq!(first, (vec![], vec![statement]));
    assert_eq!(
        next_revocations(&mut agent.control_recv).await?,
        vec![revocation_list(1)]
    );
    relay.shutdown().await;
    Ok(())
}
