//! Where a relay's notifications may go and what a channel must be (issue #22, review): a
//! relay with the default `[notify]` refuses loopback, private and metadata targets when a
//! channel is added (naming the setting that allows them) and again at delivery, after the
//! name is resolved; `allow_hosts` lets one through; a malformed channel is refused with what
//! to write; and a channel row the relay cannot use is listed as broken while every other
//! channel still gets its notifications.

use crate::harness::*;
use crate::notify::{SECRET, next, permission, receiver};
use crate::ownership::{session_agent, tell_relay};
use anyhow::{Result, ensure};
use cm_client as client;
use cm_relay::config::NotifyConfig;
use cm_relay::notify::sealing::Sealer;
use cm_relay::notify::targets::AllowEntry;
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use proto::notify::{
    ChannelInfo, ChannelName, ChannelSpec, ChannelTarget, NotifyTested, QuietHours,
};

fn webhook(name: &str, url: &str) -> ChannelSpec {
    ChannelSpec {
        name: name.into(),
        target: ChannelTarget::Webhook { url: url.into() },
        secret: Some(SECRET.into()),
        events: vec![],
        quiet: None,
        ignore_presence: false,
    }
}

async fn add(op: &client::Session, spec: &ChannelSpec) -> Result<ChannelInfo, String> {
    client::request(
        &op.conn,
        &StreamHeader::new(Op::NotifyAdd, ReqId(1)),
        Some(spec),
    )
    .await
    .map_err(|e| e.to_string())
}

async fn test_channel(op: &client::Session, name: &str) -> Result<NotifyTested> {
    Ok(client::request(
        &op.conn,
        &StreamHeader::new(Op::NotifyTest, ReqId(2)),
        Some(&ChannelName { name: name.into() }),
    )
    .await?)
}

/// A relay with the `[notify]` of a relay.toml that has none.
async fn default_relay() -> Result<TestRelay> {
    TestRelay::start_with(|c| c.notify = NotifyConfig::default()).await
}

#[tokio::test]
async fn a_default_relay_refuses_local_targets_when_a_channel_is_added() -> Result<()> {
    let relay = default_relay().await?;
    let (url, _rx) = receiver().await?;
    let op = operator(
        &relay.addr_str(),
        &relay.state.pin,
        &relay.login_owner().await?,
    )
    .await?;
    for target in [
        url.as_str(),
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://[::ffff:127.0.0.1]:8080/",
        "http://localhost:8080/",
    ] {
        let err = add(&op, &webhook("hook", target)).await.unwrap_err();
        ensure!(
            err.contains("allow_hosts") && err.contains("allow_private_targets"),
            "{target}: {err}"
        );
    }
    let list: Vec<ChannelInfo> = client::request(
        &op.conn,
        &StreamHeader::new(Op::NotifyList, ReqId(3)),
        Some(&()),
    )
    .await?;
    ensure!(list.is_empty(), "nothing was stored: {list:?}");
    Ok(())
}

#[tokio::test]
async fn a_malformed_channel_is_refused_with_what_to_write() -> Result<()> {
    let relay = TestRelay::start().await?;
    let (url, _rx) = receiver().await?;
    let op = operator(
        &relay.addr_str(),
        &relay.state.pin,
        &relay.login_owner().await?,
    )
    .await?;
    let mut bad_quiet = webhook("hook", &url);
    bad_quiet.quiet = Some(QuietHours {
        start_min: 5_000,
        end_min: 60,
        utc_offset_min: 0,
    });
    let mut no_secret = webhook("hook", &url);
    no_secret.secret = None;
    let mut bad_topic = webhook("phone", &url);
    bad_topic.target = ChannelTarget::Ntfy {
        server: url.clone(),
        topic: "a/../b".into(),
    };
    let mut bad_server = bad_topic.clone();
    bad_server.target = ChannelTarget::Ntfy {
        server: "http://127.0.0.1:notaport".into(),
        topic: "t".into(),
    };
    for (spec, says) in [
        (webhook("hook", "ftp://127.0.0.1/x"), "http(s)://"),
        (webhook("hook", "http://u:p@127.0.0.1/x"), "bad URL"),
        (webhook("a b", &url), "channel name"),
        (bad_quiet, "minutes of the day"),
        (no_secret, "--secret-env"),
        (bad_topic, "ntfy topic"),
        (bad_server, "bad URL"),
    ] {
        let err = add(&op, &spec).await.unwrap_err();
        ensure!(err.contains(says), "{spec:?}: {err}");
    }
    // The same target, well formed, is taken (the test relay allows 127.0.0.1).
    add(&op, &webhook("hook", &url))
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(())
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_at_delivery_too() -> Result<()> {
    let relay = default_relay().await?;
    let (url, mut rx) = receiver().await?;
    let port = url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches("/hook");
    let op = operator(
        &relay.addr_str(),
        &relay.state.pin,
        &relay.login_owner().await?,
    )
    .await?;
    // Stored as a relay that did not check (or before the name's address changed) would have.
    let local = webhook("hook", &format!("http://localhost:{port}/hook"));
    let sealer = Sealer::from_file(relay.state.dir.root().join("notify.key"));
    relay
        .state
        .store()?
        .notify_put("owner", &local, &sealer, 16, 1)?;
    let tested = test_channel(&op, "hook").await?;
    let error = tested.error.clone().unwrap_or_default();
    ensure!(
        !tested.delivered && error.contains("loopback") && error.contains("allow_hosts"),
        "{tested:?}"
    );
    ensure!(rx.try_recv().is_err(), "the receiver was reached");
    Ok(())
}

#[tokio::test]
async fn allow_hosts_lets_a_named_local_receiver_through() -> Result<()> {
    let relay = TestRelay::start_with(|c| {
        c.notify = NotifyConfig::default();
        c.notify.targets.allow_hosts = vec![AllowEntry::Name("localhost".into())];
    })
    .await?;
    let (url, mut rx) = receiver().await?;
    let op = operator(
        &relay.addr_str(),
        &relay.state.pin,
        &relay.login_owner().await?,
    )
    .await?;
    let local = url.replace("127.0.0.1", "localhost");
    add(&op, &webhook("hook", &local))
        .await
        .map_err(anyhow::Error::msg)?;
    // Another local address is still refused.
    let err = add(&op, &webhook("other", "http://127.0.0.2:9/"))
        .await
        .unwrap_err();
    ensure!(err.contains("allow_hosts"), "{err}");
    let tested = test_channel(&op, "hook").await?;
    ensure!(tested.delivered, "{tested:?}");
    let body = next(&mut rx).await?;
    ensure!(body["event"] == "test", "{body}");
    Ok(())
}

#[tokio::test]
async fn a_channel_the_relay_cannot_read_is_listed_broken_and_the_others_still_notified()
-> Result<()> {
    let relay = TestRelay::start().await?;
    let (url, mut rx) = receiver().await?;
    let (_agent, control) = session_agent(&relay).await?;
    let op = operator(
        &relay.addr_str(),
        &relay.state.pin,
        &relay.login_owner().await?,
    )
    .await?;
    // Sorted before the good one, so a fan-out that stopped at it would miss the good one.
    let store = relay.state.store()?;
    let stranger = Sealer::with_key([9; 32]);
    store.notify_put("owner", &webhook("a-other-key", &url), &stranger, 16, 1)?;
    add(&op, &webhook("hook", &url))
        .await
        .map_err(anyhow::Error::msg)?;

    let list: Vec<ChannelInfo> = client::request(
        &op.conn,
        &StreamHeader::new(Op::NotifyList, ReqId(3)),
        Some(&()),
    )
    .await?;
    ensure!(list.len() == 2, "{list:?}");
    let broken = &list[0];
    ensure!(
        broken.target == ChannelTarget::Unknown
            && broken.failures >= 1
            && broken
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("secret_key_file")),
        "{broken:?}"
    );
    ensure!(list[1].target.kind() == "webhook" && list[1].failures == 0);

    tell_relay(&control, permission("ses_1", "per_1")).await?;
    let got = next(&mut rx).await?;
    ensure!(got["request"] == "per_1", "{got}");
    let tested = test_channel(&op, "a-other-key").await?;
    ensure!(
        !tested.delivered
            && tested
                .error
                .as_deref()
                .is_some_and(|e| e.contains("another key")),
        "{tested:?}"
    );
    Ok(())
}
