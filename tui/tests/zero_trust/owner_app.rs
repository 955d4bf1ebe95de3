//! The owner's full-screen app as its administration screen drives it: its connection task
//! (`cm_tui::net::Net`) on the owner's login, asked one administration call at a time.

use crate::harness::WAIT;
use crate::world::ZtWorld;
use anyhow::{Context, Result, bail};
use cm_client::secrets::StoreChoice;
use cm_tui::call::{AdminCall, Call, CallError, Request, Response, Scope};
use cm_tui::event::NetEvent;
use cm_tui::net::Net;
use cm_tui::profile::{Logins, Profile};
use proto::ids::HostId;
use tokio::sync::mpsc;

/// The owner's app, connected.
pub struct OwnerApp {
    pub profile: Profile,
    net: Net,
    events: mpsc::Receiver<NetEvent>,
}

impl OwnerApp {
    /// Starts the connection task on the owner's login and waits until it is connected.
    pub async fn connect(w: &ZtWorld) -> Result<Self> {
        let logins = Logins::open(&w.owner.state, StoreChoice::File)?;
        let (profile, key) = logins.load(cm_client::time::now_ms())?;
        let (tx, mut events) = mpsc::channel(256);
        let net = Net::spawn(profile.clone(), key, tx);
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
        Ok(Self {
            profile,
            net,
            events,
        })
    }

    /// Sends `call` as request `id` (scoped to host `box`, as the screen does) and waits for
    /// its answer.
    pub async fn ask(
        &mut self,
        id: u64,
        call: AdminCall,
    ) -> Result<std::result::Result<Response, CallError>> {
        self.net.request(Request {
            id,
            scope: Scope::host(&HostId::from("box")),
            call: Call::Admin(call),
        });
        tokio::time::timeout(WAIT, async {
            while let Some(e) = self.events.recv().await {
                if let NetEvent::Reply { request, result } = e
                    && request.id == id
                {
                    return Ok(result);
                }
            }
            bail!("the connection task ended")
        })
        .await
        .context("no answer in time")?
    }
}
