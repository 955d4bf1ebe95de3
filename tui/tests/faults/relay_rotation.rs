//! A profile listing several relay addresses: a lost connection reconnects to the NEXT address
//! first, not to the one that was just lost. Two UDP proxies in front of one relay stand for two
//! relays; their packet counters show which one the connection task used.

use crate::support::UdpProxy;
use anyhow::{Context, Result};
use cm_client::secrets::StoreChoice;
use cm_relay::config::RelayConfig;
use cm_relay::server::Relay;
use cm_relay::state::{self, StateDir};
use cm_tui::event::NetEvent;
use cm_tui::login::{self, LoginTarget};
use cm_tui::net::{Net, PING_INTERVAL, PING_TIMEOUT};
use cm_tui::profile::Logins;
use proto::ids::UserId;
use std::time::Duration;
use tokio::sync::mpsc;

async fn until(
    events: &mut mpsc::Receiver<NetEvent>,
    bound: Duration,
    want: impl Fn(&NetEvent) -> bool,
) -> Result<()> {
    tokio::time::timeout(bound, async {
        while let Some(e) = events.recv().await {
            if want(&e) {
                return Ok(());
            }
        }
        anyhow::bail!("the connection task ended")
    })
    .await
    .context("no such event in time")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_reconnects_to_the_next_relay_address_first() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = StateDir::new(tmp.path().join("relay"));
    let out = state::init(&dir, "127.0.0.1:9", &UserId::from("owner"))?;
    let mut config = RelayConfig::new(dir.root().to_owned());
    config.listen = "127.0.0.1:0".parse()?;
    let relay = Relay::spawn(config).await?;
    let first = UdpProxy::start(relay.local_addr()).await?;
    let second = UdpProxy::start(relay.local_addr()).await?;
    let mut invite = out.invite;
    invite.relay = format!("{},{}", first.addr, second.addr);
    let logins = Logins::open(&tmp.path().join("tui"), StoreChoice::File)?;
    let profile = login::login(&logins, LoginTarget::Invite(invite), None, None, None).await?;
    let (_, key) = logins.load(cm_client::time::now_ms())?;
    // The login went to the first address, in list order.
    assert_eq!(second.forwarded(), 0);

    let (tx, mut events) = mpsc::channel(256);
    let net = Net::spawn(profile, key, tx);
    let bound = PING_TIMEOUT + PING_INTERVAL * 5;
    until(&mut events, bound, |e| {
        matches!(e, NetEvent::Connected { .. })
    })
    .await?;
    assert_eq!(
        second.forwarded(),
        0,
        "the first connection uses the first address"
    );

    // The first address goes silent: the connection is lost...
    first.cut(true);
    until(&mut events, bound, |e| {
        matches!(e, NetEvent::Disconnected { .. })
    })
    .await?;
    // ...and comes back before the retry: the retry still goes to the next address.
    first.cut(false);
    until(&mut events, bound, |e| {
        matches!(e, NetEvent::Connected { .. })
    })
    .await?;
    assert!(
        second.forwarded() > 0,
        "the reconnect went to the second address"
    );
    net.shutdown().await;
    relay.shutdown().await;
    Ok(())
}
