//! The zero-trust gate on every forwarded stream (issue #20), through `serve_stream` as the
//! relay forwards: a signed and sealed request is served; whatever a relay changes, replays or
//! invents is refused and logged on `cm_agent::audit`; certificates are checked on the host;
//! a relay-trusted host is unchanged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod harness;
mod mac;
mod running;
mod sealed_template;

use anyhow::{Result, bail, ensure};
use harness::*;
use proto::header::{Op, StreamHeader};
use proto::ids::{ReqId, UserId};
use proto::message::Reply;
use proto::rbac::Role;
use proto::wire_error::{ErrorCode, WireError};

/// The plain refusal of a stream.
async fn refusal(out: &[u8]) -> Result<WireError> {
    match first_reply::<serde_json::Value>(out).await?.0 {
        Reply::Error(e) => Ok(e),
        Reply::Ok(v) => bail!("expected a refusal, got {v}"),
    }
}

fn refused(answer: Answer) -> Result<WireError> {
    match answer {
        Answer::Refused(e) => Ok(e),
        Answer::Sealed(reply, _) => bail!("expected a refusal, got {reply:?}"),
    }
}

#[tokio::test]
async fn signed_sealed_workspace_list_is_served_and_the_relay_sees_only_ciphertext() -> Result<()> {
    let fx = Fixture::new(Role::Viewer, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    let s = signed_listing(&fx, channel.id())?;
    let answer = call_sealed(&fx, &channel, &s.nonce, &Fixture::forward(s.header), None).await?;
    let Answer::Sealed(Reply::Ok(list), wire) = answer else {
        bail!("workspace_list not served: {answer:?}");
    };
    ensure!(list.to_string().contains(WS), "{list}");
    let seen = String::from_utf8_lossy(&wire);
    ensure!(
        !seen.contains(WS),
        "the relay saw the workspace name: {seen}"
    );
    ensure!(fx.logs.text().contains("end-to-end channel opened"));
    Ok(())
}

#[tokio::test]
async fn unsigned_request_is_refused_on_a_zero_trust_host() -> Result<()> {
    let fx = Fixture::new(Role::Owner, now())?;
    let header = StreamHeader {
        op: Op::WorkspaceList,
        req_id: ReqId(1),
        host: Some(proto::ids::HostId::from(HOST)),
        workspace: None,
        session: None,
        auth: None,
        mac: None,
    };
    let out = fx.exchange(&Fixture::forward(header), &[]).await?;
    let e = refusal(&out).await?;
    ensure!(e.code == ErrorCode::Forbidden, "{e}");
    ensure!(e.message.contains("not signed"), "{e}");
    ensure!(fx.logs.text().contains("refused: zero-trust check failed"));
    Ok(())
}

#[tokio::test]
async fn relay_rewriting_the_op_or_workspace_is_refused_and_logged() -> Result<()> {
    let fx = Fixture::new(Role::Owner, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    // Signed for a workspace_list; the relay turns it into opencode_stop.
    let s = signed_listing(&fx, channel.id())?;
    let mut header = s.header.clone();
    header.op = Op::OpencodeStop;
    header.workspace = Some(WS.into());
    let e = refused(call_sealed(&fx, &channel, &s.nonce, &Fixture::forward(header), None).await?)?;
    ensure!(e.message.contains("relay tampered"), "{e}");
    // Signed for one workspace, forwarded for another.
    let s = signed(
        "ana",
        &fx.ana,
        Op::Messages,
        Some("other"),
        None,
        Some(channel.id()),
    )?;
    let mut header = s.header.clone();
    header.workspace = Some(WS.into());
    let e = refused(call_sealed(&fx, &channel, &s.nonce, &Fixture::forward(header), None).await?)?;
    ensure!(e.message.contains("workspace differs"), "{e}");
    let logs = fx.logs.text();
    ensure!(
        logs.matches("refused: relay tampered").count() == 2
            && logs.contains("relay_principal=ana"),
        "{logs}"
    );
    Ok(())
}

#[tokio::test]
async fn replayed_signed_header_is_refused_on_another_stream() -> Result<()> {
    let fx = Fixture::new(Role::Viewer, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    let s = signed_listing(&fx, channel.id())?;
    let fwd = Fixture::forward(s.header);
    let first = call_sealed(&fx, &channel, &s.nonce, &fwd, None).await?;
    ensure!(
        matches!(first, Answer::Sealed(Reply::Ok(_), _)),
        "{first:?}"
    );
    let e = refused(call_sealed(&fx, &channel, &s.nonce, &fwd, None).await?)?;
    ensure!(e.message.contains("replayed"), "{e}");
    ensure!(fx.logs.text().contains("refused: relay tampered"));
    Ok(())
}

#[tokio::test]
async fn relay_raising_the_role_or_changing_the_principal_is_ignored() -> Result<()> {
    let fx = Fixture::new(Role::Viewer, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    // The relay claims mallory as owner; the certificate makes ana a viewer, who may not stop
    // OpenCode.
    let s = signed(
        "ana",
        &fx.ana,
        Op::OpencodeStop,
        Some(WS),
        None,
        Some(channel.id()),
    )?;
    let mut fwd = Fixture::forward(s.header);
    fwd.principal = UserId::from("mallory");
    fwd.role = Role::Owner;
    let e = refused(call_sealed(&fx, &channel, &s.nonce, &fwd, None).await?)?;
    ensure!(e.code == ErrorCode::Forbidden, "{e}");
    // A viewer's request goes through as ana, whatever the relay says.
    let s = signed_listing(&fx, channel.id())?;
    let mut fwd = Fixture::forward(s.header);
    fwd.principal = UserId::from("mallory");
    let answer = call_sealed(&fx, &channel, &s.nonce, &fwd, None).await?;
    ensure!(
        matches!(answer, Answer::Sealed(Reply::Ok(_), _)),
        "{answer:?}"
    );
    let logs = fx.logs.text();
    ensure!(
        logs.contains("relay's principal differs from the signed one"),
        "{logs}"
    );
    Ok(())
}

#[tokio::test]
async fn expired_forged_or_other_users_certificates_open_no_channel() -> Result<()> {
    let fx = Fixture::new(Role::Owner, now())?;
    let expired = grant_until(&fx.owner, "g-old", "ana", &fx.ana, Role::Owner, now() - 1);
    let err = open_channel(&fx, &[expired]).await.unwrap_err().to_string();
    ensure!(err.contains("no valid certificate grants ana"), "{err}");
    // A grant signed by a key that is no root (what a relay could make).
    let relay_key = proto::trust::DeviceKey::from_seed([66; 32])?;
    let forged = grant(&relay_key, "g-forged", "ana", &fx.ana, Role::Owner);
    let err = open_channel(&fx, &[forged]).await.unwrap_err().to_string();
    ensure!(err.contains("no valid certificate grants ana"), "{err}");
    // A valid grant for bob does not make ana anything.
    let bob = proto::trust::DeviceKey::from_seed([3; 32])?;
    let for_bob = grant(&fx.owner, "g-bob", "bob", &bob, Role::Owner);
    let err = open_channel(&fx, &[for_bob]).await.unwrap_err().to_string();
    ensure!(err.contains("no valid certificate grants ana"), "{err}");
    Ok(())
}

#[tokio::test]
async fn revoked_certificate_stops_an_open_channel_at_the_next_request() -> Result<()> {
    let fx = Fixture::new(Role::Viewer, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    fx.trust
        .accept_revocations(&[revocations(&fx.owner, 2, now(), &["g-ana"])], now());
    let s = signed_listing(&fx, channel.id())?;
    let e =
        refused(call_sealed(&fx, &channel, &s.nonce, &Fixture::forward(s.header), None).await?)?;
    ensure!(e.message.contains("no valid certificate grants ana"), "{e}");
    let err = open_channel(&fx, &fx.certs).await.unwrap_err().to_string();
    ensure!(err.contains("no valid certificate grants ana"), "{err}");
    Ok(())
}

#[tokio::test]
async fn withheld_revocation_list_refuses_new_work_with_the_reason() -> Result<()> {
    let fx = Fixture::new(Role::Owner, now() - 2 * DAY)?;
    let (body, _) = open_body(&fx, &fx.certs)?;
    let s = signed("ana", &fx.ana, Op::E2eOpen, None, Some(&body), None)?;
    let out = fx
        .exchange(&Fixture::forward(s.header), &frame(&body))
        .await?;
    let e = refusal(&out).await?;
    ensure!(
        e.message.contains("revocation list is")
            && e.message.contains("cm-tui admin trust refresh"),
        "{e}"
    );
    Ok(())
}

#[tokio::test]
async fn unknown_channel_is_answered_e2e_channel_unknown() -> Result<()> {
    let fx = Fixture::new(Role::Viewer, now())?;
    let other = Fixture::new(Role::Viewer, now())?;
    // A channel another agent holds.
    let channel = open_channel(&other, &other.certs).await?;
    let s = signed_listing(&fx, channel.id())?;
    let e =
        refused(call_sealed(&fx, &channel, &s.nonce, &Fixture::forward(s.header), None).await?)?;
    ensure!(e.code == ErrorCode::E2eChannelUnknown, "{e}");
    Ok(())
}

#[tokio::test]
async fn request_without_a_channel_is_refused_not_served_in_plaintext() -> Result<()> {
    let fx = Fixture::new(Role::Owner, now())?;
    let s = signed("ana", &fx.ana, Op::WorkspaceList, None, None, None)?;
    let out = fx.exchange(&Fixture::forward(s.header), &[]).await?;
    let e = refusal(&out).await?;
    ensure!(
        e.message.contains("open an end-to-end channel first"),
        "{e}"
    );
    ensure!(!String::from_utf8_lossy(&out).contains(WS));
    Ok(())
}

#[tokio::test]
async fn another_device_cannot_use_someone_elses_channel() -> Result<()> {
    let mut fx = Fixture::new(Role::Owner, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    let eve = proto::trust::DeviceKey::from_seed([5; 32])?;
    fx.certs = vec![grant(&fx.owner, "g-eve", "eve", &eve, Role::Owner)];
    let s = signed(
        "eve",
        &eve,
        Op::WorkspaceList,
        None,
        None,
        Some(channel.id()),
    )?;
    let e =
        refused(call_sealed(&fx, &channel, &s.nonce, &Fixture::forward(s.header), None).await?)?;
    ensure!(e.message.contains("another device key"), "{e}");
    Ok(())
}

#[tokio::test]
async fn body_not_matching_the_signed_hash_is_refused() -> Result<()> {
    let fx = Fixture::new(Role::Owner, now())?;
    // e2e_open: the relay swaps msg1 for its own (a channel it could read).
    let (body, _) = open_body(&fx, &fx.certs)?;
    let (relays, _) = open_body(&fx, &fx.certs)?;
    let s = signed("ana", &fx.ana, Op::E2eOpen, None, Some(&body), None)?;
    let out = fx
        .exchange(&Fixture::forward(s.header), &frame(&relays))
        .await?;
    let e = refusal(&out).await?;
    ensure!(e.message.contains("not the one its author signed"), "{e}");
    // On a channel: the sealed body is not the signed one.
    let channel = open_channel(&fx, &fx.certs).await?;
    let signed_body = br#"{"limit":1}"#;
    let s = signed(
        "ana",
        &fx.ana,
        Op::Messages,
        Some(WS),
        Some(signed_body),
        Some(channel.id()),
    )?;
    let answer = call_sealed(
        &fx,
        &channel,
        &s.nonce,
        &Fixture::forward(s.header),
        Some(br#"{"limit":2}"#),
    )
    .await?;
    let Answer::Sealed(Reply::Error(e), _) = answer else {
        bail!("a changed body was not refused: {answer:?}");
    };
    ensure!(e.message.contains("not the one its author signed"), "{e}");
    ensure!(fx.logs.text().matches("refused: relay tampered").count() == 2);
    Ok(())
}

#[tokio::test]
async fn relay_trusted_host_still_serves_the_relays_word() -> Result<()> {
    let fx = Fixture::relay_trusted()?;
    let header = StreamHeader {
        op: Op::WorkspaceList,
        req_id: ReqId(1),
        host: Some(proto::ids::HostId::from(HOST)),
        workspace: None,
        session: None,
        auth: None,
        mac: None,
    };
    let out = fx.exchange(&Fixture::forward(header), &[]).await?;
    match first_reply::<serde_json::Value>(&out).await?.0 {
        Reply::Ok(list) => ensure!(list.to_string().contains(WS), "{list}"),
        Reply::Error(e) => bail!("refused: {e}"),
    }
    // And says it has no end-to-end key.
    let (body, _) = open_body(&fx, &fx.certs)?;
    let s = signed("ana", &fx.ana, Op::E2eOpen, None, Some(&body), None)?;
    let out = fx
        .exchange(&Fixture::forward(s.header), &frame(&body))
        .await?;
    ensure!(refusal(&out).await?.message.contains("relay-trusted"));
    Ok(())
}

/// A prompt that passes the gate and the body check reaches the handler, which refuses an
/// empty text before OpenCode is involved.
const BLANK_PROMPT: &[u8] = br#"{"text":"   ","idempotency_key":"k-1"}"#;

/// A queued prompt by ana signed `age_ms` ago, served once (past the gate: the handler refuses
/// its blank text); returns its forward header and sealed body for a second try.
async fn serve_a_queued_prompt(
    fx: &Fixture,
    age_ms: u64,
) -> Result<(proto::ops::ForwardHeader, Vec<u8>)> {
    // The certificates come from an earlier channel.
    open_channel(fx, &fx.certs).await?;
    let body = sealed_prompt(fx, BLANK_PROMPT)?;
    let s = signed_at(
        now() - age_ms,
        "ana",
        &fx.ana,
        Op::Prompt,
        Some(WS),
        Some(BLANK_PROMPT),
        None,
    )?;
    let fwd = Fixture::forward(s.header);
    let e = refusal(&fx.exchange(&fwd, &frame(&body)).await?).await?;
    ensure!(
        e.message.contains("the prompt is empty"),
        "not past the gate: {e}"
    );
    Ok((fwd, body))
}

#[tokio::test]
async fn queued_prompt_a_day_old_at_most_is_served_once() -> Result<()> {
    let fx = Fixture::new(Role::Operator, now())?;
    let (fwd, body) = serve_a_queued_prompt(&fx, 2 * 3_600_000).await?;
    let e = refusal(&fx.exchange(&fwd, &frame(&body)).await?).await?;
    ensure!(
        e.message.contains("replayed"),
        "a replayed queued prompt: {e}"
    );
    let too_old = signed_at(
        now() - DAY - 60_000,
        "ana",
        &fx.ana,
        Op::Prompt,
        Some(WS),
        Some(BLANK_PROMPT),
        None,
    )?;
    let e = refusal(
        &fx.exchange(&Fixture::forward(too_old.header), &frame(&body))
            .await?,
    )
    .await?;
    ensure!(e.message.contains("signed time"), "{e}");
    Ok(())
}

#[tokio::test]
async fn queued_prompt_replayed_after_the_agent_restarted_is_refused() -> Result<()> {
    let mut fx = Fixture::new(Role::Operator, now())?;
    let (fwd, body) = serve_a_queued_prompt(&fx, 3_600_000).await?;
    // The relay waits for the agent to restart (its memory gone) and sends it again.
    fx.restart()?;
    open_channel(&fx, &fx.certs).await?;
    let e = refusal(&fx.exchange(&fwd, &frame(&body)).await?).await?;
    ensure!(
        e.message.contains("replayed"),
        "a queued prompt replayed after a restart: {e}"
    );
    Ok(())
}

#[tokio::test]
async fn queued_prompt_not_matching_the_signed_hash_or_not_sealed_is_refused() -> Result<()> {
    let fx = Fixture::new(Role::Operator, now())?;
    open_channel(&fx, &fx.certs).await?;
    let other = sealed_prompt(&fx, br#"{"text":"rm -rf","idempotency_key":"k-2"}"#)?;
    let s = signed(
        "ana",
        &fx.ana,
        Op::Prompt,
        Some(WS),
        Some(BLANK_PROMPT),
        None,
    )?;
    let e = refusal(
        &fx.exchange(&Fixture::forward(s.header), &frame(&other))
            .await?,
    )
    .await?;
    ensure!(e.message.contains("not the one its author signed"), "{e}");
    let s = signed(
        "ana",
        &fx.ana,
        Op::Prompt,
        Some(WS),
        Some(BLANK_PROMPT),
        None,
    )?;
    let e = refusal(
        &fx.exchange(&Fixture::forward(s.header), &frame(BLANK_PROMPT))
            .await?,
    )
    .await?;
    ensure!(e.message.contains("must be sealed to the host key"), "{e}");
    ensure!(fx.logs.text().contains("refused: relay tampered"));
    Ok(())
}

#[tokio::test]
async fn a_cm_tui_sealing_another_record_format_is_told_which_to_update() -> Result<()> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use cm_client::e2e::RECORD_FORMAT;
    use proto::trust::E2eOpened;
    let fx = &Fixture::new(Role::Viewer, now())?;
    let open = |records| async move {
        let (body, pending) = open_body_in(fx, &fx.certs, records)?;
        let s = signed("ana", &fx.ana, Op::E2eOpen, None, Some(&body), None)?;
        let out = fx
            .exchange(&Fixture::forward(s.header), &frame(&body))
            .await?;
        anyhow::Ok((first_reply::<E2eOpened>(&out).await?.0, pending))
    };
    for (records, update) in [
        (RECORD_FORMAT - 1, "update your cm-tui"),
        (RECORD_FORMAT + 1, "update the host's cm-agent"),
    ] {
        match open(Some(records)).await?.0 {
            Reply::Error(e) => ensure!(
                e.code == ErrorCode::BadRequest
                    && e.message.contains(&format!(
                        "your cm-tui seals end-to-end records in format {records}"
                    ))
                    && e.message.ends_with(update),
                "{e}"
            ),
            Reply::Ok(_) => bail!("a channel opened for record format {records}"),
        }
    }
    // A build from before the field says nothing: the channel opens (its first record would
    // tell a mismatch), and the host names its own format.
    let (reply, pending) = open(None).await?;
    let Reply::Ok(opened) = reply else {
        bail!("a cm-tui that names no record format was refused: {reply:?}");
    };
    ensure!(opened.records == Some(RECORD_FORMAT), "{opened:?}");
    pending.finish(&URL_SAFE_NO_PAD.decode(opened.msg2)?)?;
    Ok(())
}

/// `fwd` then `after`, sent twice, refused both times for `reason` (never as a replay).
async fn refused_twice(
    fx: &Fixture,
    fwd: &proto::ops::ForwardHeader,
    after: &[u8],
    reason: &str,
) -> Result<()> {
    for _ in 0..2 {
        let e = refusal(&fx.exchange(fwd, after).await?).await?;
        ensure!(e.message.contains(reason), "{e}");
    }
    Ok(())
}

/// Each refused twice for the same reason: a signer this host does not vouch for leaves no
/// nonce behind (else keys anyone can make would fill the window and lock everyone out).
#[tokio::test]
async fn a_signer_the_host_does_not_vouch_for_records_no_nonce() -> Result<()> {
    let fx = Fixture::new(Role::Operator, now())?;
    let mallory = proto::trust::DeviceKey::from_seed([77; 32])?;
    // e2e_open showing a grant no root signed.
    let forged = grant(&mallory, "g-forged", "mallory", &mallory, Role::Owner);
    let (body, _) = open_body(&fx, &[forged])?;
    let s = signed("mallory", &mallory, Op::E2eOpen, None, Some(&body), None)?;
    refused_twice(
        &fx,
        &Fixture::forward(s.header),
        &frame(&body),
        "no valid certificate grants mallory",
    )
    .await?;
    // A request naming ana's channel, signed by another key (no MAC: it cannot make one).
    let channel = open_channel(&fx, &fx.certs).await?;
    let s = signed(
        "mallory",
        &mallory,
        Op::WorkspaceList,
        None,
        None,
        Some(channel.id()),
    )?;
    refused_twice(
        &fx,
        &Fixture::forward(s.header),
        &[],
        "opened by another device key",
    )
    .await?;
    // A queued prompt by a user no certificate this host has seen names.
    let body = sealed_prompt(&fx, BLANK_PROMPT)?;
    let s = signed(
        "mallory",
        &mallory,
        Op::Prompt,
        Some(WS),
        Some(BLANK_PROMPT),
        None,
    )?;
    refused_twice(
        &fx,
        &Fixture::forward(s.header),
        &frame(&body),
        "no valid certificate grants mallory",
    )
    .await?;
    // ana's own e2e_open still counts once.
    let (body, _) = open_body(&fx, &fx.certs)?;
    let s = signed("ana", &fx.ana, Op::E2eOpen, None, Some(&body), None)?;
    let fwd = Fixture::forward(s.header);
    let (first, _) =
        first_reply::<serde_json::Value>(&fx.exchange(&fwd, &frame(&body)).await?).await?;
    ensure!(matches!(first, Reply::Ok(_)), "{first:?}");
    let e = refusal(&fx.exchange(&fwd, &frame(&body)).await?).await?;
    ensure!(e.message.contains("replayed"), "{e}");
    Ok(())
}
