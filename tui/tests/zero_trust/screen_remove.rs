//! The administration screen removing a user revokes their certificates and device keys for
//! zero-trust hosts, as `cm-tui admin user remove` does: the owner's app (its connection task,
//! as the screen drives it) removes bob at the relay, then signs and publishes a revocation
//! list naming his certificate, and says so in the answer.

use crate::harness::WAIT;
use crate::world::ZtWorld;
use anyhow::{Context, Result, bail, ensure};
use cm_client::secrets::StoreChoice;
use cm_tui::call::{AdminCall, Call, Request, Response, Scope};
use cm_tui::event::NetEvent;
use cm_tui::net::Net;
use cm_tui::profile::Logins;
use proto::admin::UserRequest;
use proto::header::Op;
use proto::ids::HostId;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_user_from_the_admin_screen_revokes_their_certificates() -> Result<()> {
    let w = ZtWorld::start().await?;
    w.user("bob", "operator", true)?;
    let certified = |show: &serde_json::Value| {
        show["certs"].as_array().and_then(|c| {
            c.iter()
                .find(|x| x["subject"] == "bob")
                .map(|x| x["valid"] == true)
        })
    };
    let show: serde_json::Value =
        serde_json::from_str(&w.owner.ok(&["admin", "trust", "show", "--json"])?)?;
    ensure!(certified(&show) == Some(true), "bob is certified: {show}");

    let logins = Logins::open(&w.owner.state, StoreChoice::File)?;
    let (profile, key) = logins.load(cm_client::time::now_ms())?;
    let (tx, mut events) = mpsc::channel(256);
    let net = Net::spawn(profile, key, tx);
    tokio::time::timeout(WAIT, async {
        while let Some(e) = events.recv().await {
            if matches!(e, NetEvent::Connected { .. }) {
                return Ok(());
            }
        }
        bail!("the connection task ended")
    })
    .await
    .context("not connected in time")??;
    // What the screen's "remove bob" sends.
    net.request(Request {
        id: 9,
        scope: Scope::host(&HostId::from("box")),
        call: Call::Admin(AdminCall::User(
            Op::UserManage,
            UserRequest::Remove { name: "bob".into() },
        )),
    });
    let done = tokio::time::timeout(WAIT, async {
        while let Some(e) = events.recv().await {
            if let NetEvent::Reply { request, result } = e
                && request.id == 9
            {
                return match result {
                    Ok(Response::Done(done)) => Ok(done),
                    other => bail!("user remove answered {other:?}"),
                };
            }
        }
        bail!("the connection task ended")
    })
    .await
    .context("no answer to the removal in time")??;
    ensure!(
        done.summary
            .contains("revoked 1 certificate(s) and 1 device key(s) of bob"),
        "{}",
        done.summary
    );
    let show: serde_json::Value =
        serde_json::from_str(&w.owner.ok(&["admin", "trust", "show", "--json"])?)?;
    ensure!(
        certified(&show) != Some(true),
        "bob's certificate still counts: {show}"
    );
    Ok(())
}
