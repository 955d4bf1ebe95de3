//! The operator's connection notices a relay that vanished without closing anything (a UDP
//! blackhole: no CONNECTION_CLOSE, no ICMP): the status bar stops saying "connected" and the
//! connection task reconnects once the relay is reachable again.

use crate::support::UdpProxy;
use anyhow::{Context, Result};
use cm_client::secrets::StoreChoice;
use cm_relay::config::RelayConfig;
use cm_relay::server::Relay;
use cm_relay::state::{self, StateDir};
use cm_tui::app::App;
use cm_tui::event::{Event, NetEvent};
use cm_tui::login::{self, LoginTarget};
use cm_tui::net::{Net, PING_INTERVAL, PING_TIMEOUT};
use cm_tui::profile::Logins;
use proto::ids::UserId;
use std::time::Duration;
use tokio::sync::mpsc;

/// Waits for the first event `want` accepts, feeding every event to `app`; bounded so a
/// missing event fails the test instead of hanging it.
async fn until(
    events: &mut mpsc::Receiver<NetEvent>,
    app: &mut App,
    bound: Duration,
    want: impl Fn(&NetEvent) -> bool,
) -> Result<()> {
    tokio::time::timeout(bound, async {
        while let Some(e) = events.recv().await {
            let done = want(&e);
            app.update(Event::Net(e));
            if done {
                return Ok(());
            }
        }
        anyhow::bail!("the connection task ended")
    })
    .await
    .context("no such event in time")?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_relay_is_noticed_and_the_status_bar_stops_saying_connected() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = StateDir::new(tmp.path().join("relay"));
    let out = state::init(&dir, "127.0.0.1:9", &UserId::from("owner"))?;
    let mut config = RelayConfig::new(dir.root().to_owned());
    config.listen = "127.0.0.1:0".parse()?;
    let relay = Relay::spawn(config).await?;
    let proxy = UdpProxy::start(relay.local_addr()).await?;
    let mut invite = out.invite;
    invite.relay = proxy.addr.to_string();
    let logins = Logins::open(&tmp.path().join("tui"), StoreChoice::File)?;
    let profile = login::login(&logins, LoginTarget::Invite(invite), None, None, None).await?;
    let (_, key) = logins.load(cm_client::time::now_ms())?;

    let (tx, mut events) = mpsc::channel(256);
    let net = Net::spawn(profile.clone(), key, tx);
    let mut app = App::new(&profile, cm_client::time::now_ms());
    // Liveness window: pings every PING_INTERVAL, dead after PING_TIMEOUT unanswered (QUIC's
    // idle timeout is the same); the bound below only keeps a broken build from hanging.
    let bound = PING_TIMEOUT + PING_INTERVAL * 5;
    until(&mut events, &mut app, bound, |e| {
        matches!(e, NetEvent::Connected { .. })
    })
    .await?;
    assert_eq!(app.connection_text(), "connected");

    proxy.cut(true);
    until(&mut events, &mut app, bound, |e| {
        matches!(e, NetEvent::Disconnected { .. })
    })
    .await?;
    assert_ne!(app.connection_text(), "connected");
    assert!(app.problem().is_some(), "the banner says why");

    // Reachable again: the task reconnects by itself.
    proxy.cut(false);
    net.reconnect();
    until(&mut events, &mut app, bound, |e| {
        matches!(e, NetEvent::Connected { .. })
    })
    .await?;
    assert_eq!(app.connection_text(), "connected");
    net.shutdown().await;
    relay.shutdown().await;
    Ok(())
}
