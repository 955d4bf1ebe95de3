//! Streams on a channel whose header carries the channel's MAC (as cm-tui sends them): served
//! like signature-checked ones, whatever a relay changes is refused, and a bad signature under a
//! good MAC (only the operator's device can make one) stops the stream and the channel.

use crate::harness::*;
use crate::refused;
use anyhow::{Result, bail, ensure};
use proto::header::Op;
use proto::message::Reply;
use proto::rbac::Role;
use proto::wire_error::ErrorCode;

/// A `workspace_list` on `channel` as cm-tui sends it: signed by `ana`, with the channel's MAC.
fn listing(fx: &Fixture, channel: &cm_client::e2e::Channel) -> Result<Signed> {
    with_mac(signed_listing(fx, channel.id())?, channel)
}

#[tokio::test]
async fn a_maced_header_is_served_once_and_its_replay_refused() -> Result<()> {
    let fx = Fixture::new(Role::Viewer, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    let s = listing(&fx, &channel)?;
    let fwd = Fixture::forward(s.header.clone());
    let answer = call_sealed(&fx, &channel, &s.nonce, &fwd, None).await?;
    let Answer::Sealed(Reply::Ok(list), wire) = answer else {
        bail!("workspace_list not served: {answer:?}");
    };
    ensure!(list.to_string().contains(WS), "{list}");
    ensure!(!String::from_utf8_lossy(&wire).contains(WS));
    let e = refused(call_sealed(&fx, &channel, &s.nonce, &fwd, None).await?)?;
    ensure!(e.message.contains("replayed"), "{e}");
    Ok(())
}

#[tokio::test]
async fn a_relay_changing_a_maced_header_is_refused_and_logged() -> Result<()> {
    let fx = Fixture::new(Role::Owner, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    let fresh = || listing(&fx, &channel);
    // The MAC itself.
    let s = fresh()?;
    let mut header = s.header.clone();
    let mac = header.mac.take().unwrap_or_default();
    let flipped = if mac.starts_with('0') { "1" } else { "0" };
    header.mac = Some(format!("{flipped}{}", &mac[1..]));
    let e = refused(call_sealed(&fx, &channel, &s.nonce, &Fixture::forward(header), None).await?)?;
    ensure!(e.message.contains("channel MAC does not match"), "{e}");
    // The forwarded op (the signed one stays).
    let s = fresh()?;
    let mut header = s.header.clone();
    header.op = Op::OpencodeStop;
    header.workspace = Some(WS.into());
    let e = refused(call_sealed(&fx, &channel, &s.nonce, &Fixture::forward(header), None).await?)?;
    ensure!(e.message.contains("relay tampered"), "{e}");
    // The signature, swapped for the device's signature of another request.
    let s = fresh()?;
    let other = fresh()?;
    let mut header = s.header.clone();
    if let (Some(auth), Some(theirs)) = (header.auth.as_mut(), other.header.auth) {
        auth.sig = theirs.sig;
    }
    let e = refused(call_sealed(&fx, &channel, &s.nonce, &Fixture::forward(header), None).await?)?;
    ensure!(e.message.contains("channel MAC does not match"), "{e}");
    let logs = fx.logs.text();
    ensure!(
        logs.matches("refused: relay tampered").count() == 3,
        "{logs}"
    );
    Ok(())
}

#[tokio::test]
async fn a_bad_signature_under_a_good_mac_stops_the_stream_and_forgets_the_channel() -> Result<()> {
    let fx = Fixture::new(Role::Viewer, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    let mut s = signed_listing(&fx, channel.id())?;
    if let Some(auth) = s.header.auth.as_mut() {
        auth.sig.0[0] ^= 1;
    }
    let s = with_mac(s, &channel)?;
    // Served or cut off, depending on whether the listing or the check ended first; either
    // way the host says why and drops the channel.
    let _ = call_sealed(&fx, &channel, &s.nonce, &Fixture::forward(s.header), None).await;
    let logs = fx.logs.text();
    ensure!(
        logs.contains("sent a bad signature under its channel's MAC")
            && logs.contains("channel_forgotten=true"),
        "{logs}"
    );
    let next = listing(&fx, &channel)?;
    let e = refused(
        call_sealed(
            &fx,
            &channel,
            &next.nonce,
            &Fixture::forward(next.header),
            None,
        )
        .await?,
    )?;
    ensure!(e.code == ErrorCode::E2eChannelUnknown, "{e}");
    Ok(())
}
