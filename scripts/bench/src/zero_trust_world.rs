//! The zero-trust scenario's world: an in-process relay (relay runtime, as [`crate::worlds`]),
//! the zero-trust fake agent ([`ZtAgent`], agent runtime) enrolled and online, and the owner
//! logged in for operator sessions (operator runtime).

use crate::events::EventHub;
use crate::netutil;
use crate::roles::{Roles, on};
use crate::worlds::{HOST, heartbeat_loop, init_state, login_owner, online, watch_until};
use crate::zero_trust_agent::ZtAgent;
use crate::zero_trust_identity::Identity;
use anyhow::Result;
use cm_client::{self as client, Session};
use cm_relay::config::RelayConfig;
use cm_relay::server::Relay;
use cm_relay::state::StateDir;
use proto::handshake::{IssuedCredential, LoginMethod, LoginRequest, PeerKind};
use proto::ids::CredId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// A relay with the zero-trust fake agent online.
#[derive(Debug)]
pub struct ZtWorld {
    _tmp: TempDir,
    dir: StateDir,
    pin: String,
    relay: Option<Relay>,
    addr: SocketAddr,
    cred: IssuedCredential,
    op_ep: quinn::Endpoint,
    agent_ep: quinn::Endpoint,
    /// The fake agent (for channels opened in process).
    pub agent: Arc<ZtAgent>,
}

impl ZtWorld {
    /// Starts the relay and the agent (its trust from `identity`, events from `hub`), logs the
    /// owner in, waits until the agent is online. Runs on the operator runtime.
    ///
    /// # Errors
    /// Any setup step failing.
    pub async fn start(
        roles: &Roles,
        hub: &EventHub,
        identity: &Identity,
        tmp: TempDir,
    ) -> Result<Self> {
        let (dir, init) = init_state(&tmp)?;
        let mut config = RelayConfig::new(dir.root().to_owned());
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.drain_timeout = Duration::from_secs(1);
        let relay = on(&roles.relay, async move { Ok(Relay::spawn(config).await?) }).await?;
        let addr = relay.local_addr();
        let pin = relay.pin().to_owned();
        let cred = login_owner(addr, &pin, &init).await?;
        let token = cm_relay::cli::host_add(&dir, HOST, Some(addr.to_string()))?;
        let agent = ZtAgent::new(
            identity.host_trust()?,
            identity.host_key.clone(),
            hub.clone(),
        );
        let (agent_pin, serving) = (pin.clone(), Arc::clone(&agent));
        let agent_ep = on(&roles.agent, async move {
            let ep = netutil::client_endpoint(&agent_pin)?;
            let conn = netutil::connect(&ep, addr).await?;
            let s =
                client::authenticate(conn, PeerKind::Agent, &CredId(HOST.into()), &token.secret)
                    .await?;
            tokio::spawn(heartbeat_loop(
                s.control_send,
                s.control_recv,
                Duration::from_secs(3),
                Arc::default(),
            ));
            tokio::spawn(serving.serve(s.conn));
            Ok(ep)
        })
        .await?;
        let world = Self {
            _tmp: tmp,
            dir,
            pin: pin.clone(),
            relay: Some(relay),
            addr,
            cred,
            op_ep: netutil::client_endpoint(&pin)?,
            agent_ep,
            agent,
        };
        let probe = world.operator().await?;
        watch_until(&probe.conn, |l| online(l) == 1).await?;
        Ok(world)
    }

    /// A new authenticated operator session (keep it alive while its connection is used).
    ///
    /// # Errors
    /// Connection or authentication failures.
    pub async fn operator(&self) -> Result<Session> {
        let conn = netutil::connect(&self.op_ep, self.addr).await?;
        Ok(client::authenticate(
            conn,
            PeerKind::Operator,
            &self.cred.cred_id,
            &self.cred.secret,
        )
        .await?)
    }

    /// A session of a new viewer `name` on the agent's host: the relay lets one principal hold
    /// at most 32 of a host's streams, so 100 watchers are 100 people.
    ///
    /// # Errors
    /// The user cannot be added, or login or authentication failures.
    pub async fn viewer(&self, name: &str) -> Result<Session> {
        let invite = cm_relay::cli::user_add(&self.dir, name, "viewer", HOST)?;
        let req = LoginRequest {
            v: proto::PROTOCOL_VERSION,
            user: invite.user,
            method: LoginMethod::Invite {
                secret: invite.secret,
                new_password: None,
            },
            ttl_s: None,
            label: Some("cm-bench".into()),
            device_key: None,
        };
        let cred = client::login(&self.addr.to_string(), &self.pin, req).await?;
        let conn = netutil::connect(&self.op_ep, self.addr).await?;
        Ok(client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?)
    }

    /// Closes the clients and drains the relay.
    ///
    /// # Errors
    /// The relay task panicked.
    pub async fn stop(mut self, roles: &Roles) -> Result<()> {
        self.op_ep.close(0u32.into(), b"done");
        self.agent_ep.close(0u32.into(), b"done");
        if let Some(relay) = self.relay.take() {
            on(&roles.relay, async move {
                relay.shutdown().await;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}
