//! A stream still running when the host takes a revocation list that ends its signer's grant
//! stops there, without its fin record (so the operator sees it fail), and the host says why
//! on `cm_agent::audit`.

use crate::harness::*;
use anyhow::{Result, ensure};
use cm_agent::ops::frames::{FrameReader, write_frame};
use cm_client::e2e::{Channel, SealedRecv, Side, seal_stream};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::header::Op;
use proto::message::Reply;
use proto::rbac::Role;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt as _, DuplexStream, ReadHalf};
use tokio::task::JoinHandle;

/// The operator's reading half of a sealed watch.
type Watch = FrameReader<SealedRecv<ReadHalf<DuplexStream>>>;

/// A watch by ana on `channel`, served by a fresh `serve_stream`: its header sent, then
/// `before_body` (the relay holding the body back meanwhile), then its sealed body and end.
async fn watch(
    fx: &Fixture,
    channel: &Channel,
    before_body: impl std::future::Future<Output = ()>,
) -> Result<(Watch, JoinHandle<()>)> {
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
    before_body.await;
    let keys = channel.stream_keys(&s.nonce, Side::Operator);
    let (recv, mut send) = seal_stream(keys, client_r, client_w);
    send.write_all(&frame(body)).await?;
    send.shutdown().await?;
    Ok((FrameReader::new(recv, MAX_FRAME_LEN), agent))
}

/// Whether `watch` ended without its fin record (the operator sees it fail), rather than
/// cleanly; an error when it goes on (bounded only so that a regression fails instead of
/// hanging).
async fn failed(watch: &mut Watch) -> Result<bool> {
    let read_on = async {
        loop {
            match watch.next::<serde_json::Value>().await {
                Ok(Some(_)) => {}
                Ok(None) => return false,
                Err(_) => return true,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_on)
        .await
        .map_err(|_| anyhow::anyhow!("the watch went on after ana's grant was revoked"))
}

fn revoke_ana(fx: &Fixture) {
    fx.trust
        .accept_revocations(&[revocations(&fx.owner, 2, now(), &["g-ana"])], now());
}

#[tokio::test]
async fn a_running_watch_stops_when_its_operators_grant_is_revoked() -> Result<()> {
    let fx = Fixture::new(Role::Viewer, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    let (mut watch, agent) = watch(&fx, &channel, async {}).await?;
    let attached: Reply<u64> = watch.expect().await?;
    ensure!(matches!(attached, Reply::Ok(_)), "{attached:?}");

    revoke_ana(&fx);
    ensure!(
        failed(&mut watch).await?,
        "the watch ended cleanly after ana's grant was revoked"
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
    // The header is checked (this test's runtime has one thread: the agent's task runs until
    // it waits for the body), then the relay holds the body back while the host takes the
    // owner's list revoking ana's grant.
    let meanwhile = async {
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        revoke_ana(&fx);
    };
    let (mut watch, agent) = watch(&fx, &channel, meanwhile).await?;
    ensure!(
        failed(&mut watch).await?,
        "the watch ended cleanly after ana's grant was revoked"
    );
    agent.await?;
    Ok(())
}
