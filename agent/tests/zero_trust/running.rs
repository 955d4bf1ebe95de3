//! A stream still running when the host takes a revocation list that ends its signer's grant
//! stops there, without its fin record (so the operator sees it fail), and the host says why
//! on `cm_agent::audit`.

use crate::harness::*;
use anyhow::{Result, ensure};
use cm_agent::ops::frames::{FrameReader, write_frame};
use cm_client::e2e::{Side, seal_stream};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::header::Op;
use proto::message::Reply;
use proto::rbac::Role;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

#[tokio::test]
async fn a_running_watch_stops_when_its_operators_grant_is_revoked() -> Result<()> {
    let fx = Fixture::new(Role::Viewer, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    let body = b"{}";
    let s = signed(
        "ana",
        &fx.ana,
        Op::WatchEvents,
        Some(WS),
        Some(body),
        Some(channel.id()),
    )?;
    let (client, server) = tokio::io::duplex(1 << 20);
    let (server_r, server_w) = tokio::io::split(server);
    let ws = Arc::clone(&fx.workspaces);
    let agent = tokio::spawn(async move {
        cm_agent::ops::serve_stream(&ws, server_r, server_w, std::future::pending()).await;
    });
    let (client_r, mut client_w) = tokio::io::split(client);
    write_frame(&mut client_w, &Fixture::forward(s.header), MAX_HEADER_LEN).await?;
    let keys = channel.stream_keys(&s.nonce, Side::Operator);
    let (recv, mut send) = seal_stream(keys, client_r, client_w);
    send.write_all(&frame(body)).await?;
    send.shutdown().await?;
    let mut watch = FrameReader::new(recv, MAX_FRAME_LEN);
    let attached: Reply<u64> = watch.expect().await?;
    ensure!(matches!(attached, Reply::Ok(_)), "{attached:?}");

    fx.trust
        .accept_revocations(&[revocations(&fx.owner, 2, now(), &["g-ana"])], now());
    // Bounded only so that a regression fails instead of hanging.
    let end = tokio::time::timeout(Duration::from_secs(60), watch.next::<serde_json::Value>())
        .await
        .map_err(|_| anyhow::anyhow!("the watch went on after ana's grant was revoked"))?;
    ensure!(
        end.is_err(),
        "the watch ended cleanly, or went on, after ana's grant was revoked: {end:?}"
    );
    agent.await?;
    let logs = fx.logs.text();
    ensure!(
        logs.contains("stopped a running stream")
            && logs.contains("no valid certificate grants ana"),
        "{logs}"
    );
    Ok(())
}

#[tokio::test]
async fn a_list_taken_while_a_stream_waits_for_its_body_stops_it_too() -> Result<()> {
    let fx = Fixture::new(Role::Viewer, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    let body = b"{}";
    let s = signed(
        "ana",
        &fx.ana,
        Op::WatchEvents,
        Some(WS),
        Some(body),
        Some(channel.id()),
    )?;
    let (client, server) = tokio::io::duplex(1 << 20);
    let (server_r, server_w) = tokio::io::split(server);
    let ws = Arc::clone(&fx.workspaces);
    let agent = tokio::spawn(async move {
        cm_agent::ops::serve_stream(&ws, server_r, server_w, std::future::pending()).await;
    });
    let (client_r, mut client_w) = tokio::io::split(client);
    write_frame(&mut client_w, &Fixture::forward(s.header), MAX_HEADER_LEN).await?;
    // The header is checked (this test's runtime has one thread: the agent's task runs until
    // it waits for the body), then the relay holds the body back while the host takes the
    // owner's list revoking ana's grant.
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    fx.trust
        .accept_revocations(&[revocations(&fx.owner, 2, now(), &["g-ana"])], now());
    let keys = channel.stream_keys(&s.nonce, Side::Operator);
    let (recv, mut send) = seal_stream(keys, client_r, client_w);
    send.write_all(&frame(body)).await?;
    send.shutdown().await?;
    let mut watch = FrameReader::new(recv, MAX_FRAME_LEN);
    // Bounded only so that a regression fails instead of hanging.
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        while watch
            .next::<serde_json::Value>()
            .await
            .is_ok_and(|f| f.is_some())
        {}
    })
    .await;
    ensure!(
        ended.is_ok(),
        "the watch went on after ana's grant was revoked"
    );
    agent.await?;
    Ok(())
}
