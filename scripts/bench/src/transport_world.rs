//! Scenario 14's world: the in-process relay listening on one port number for both QUIC (UDP)
//! and its TCP tunnel listener (the default of `listen_tcp`: the same IP and port as
//! `listen`), the fake agent on it over QUIC, and operators dialled through the real client
//! (`cm_client::dial_any` with a [`TransportMode`]), so the TCP rows measure the path
//! `cm-tui` and `cm-agent` take.

use crate::events::EventHub;
use crate::roles::{Roles, on};
use crate::worlds::{fake_agent, init_state, login_owner, online, watch_until};
use anyhow::{Context, Result, ensure};
use cm_client::transport::{Transport, TransportMode};
use cm_client::{self as client, DialOptions, Session};
use cm_relay::config::RelayConfig;
use cm_relay::server::Relay;
use proto::handshake::{IssuedCredential, PeerKind};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;
use tempfile::TempDir;

/// An operator connection and the endpoint it lives on.
#[derive(Debug)]
pub struct TransportOp {
    pub session: Session,
    pub endpoint: quinn::Endpoint,
    /// What carried it.
    pub transport: Transport,
}

impl TransportOp {
    /// The QUIC connection (inside the tunnel on TCP).
    pub fn conn(&self) -> &quinn::Connection {
        &self.session.conn
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.session.conn.close(0u32.into(), b"done");
        self.endpoint.close(0u32.into(), b"done");
    }
}

/// A port on 127.0.0.1 free for both UDP and TCP just now (released for the relay to bind).
///
/// # Errors
/// No such port found in a few tries.
pub fn free_dual_port() -> Result<u16> {
    for _ in 0..32 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no port free for both UDP and TCP on 127.0.0.1")
}

/// The relay with both listeners, the fake agent online, the owner logged in.
#[derive(Debug)]
pub struct DualRelay {
    _tmp: TempDir,
    relay: Option<Relay>,
    /// QUIC and TCP: the same IP and port.
    pub addr: SocketAddr,
    pub pin: String,
    pub cred: IssuedCredential,
    agent_ep: quinn::Endpoint,
}

/// Dial options for `mode` with the relay's TCP listener at `tcp`.
pub fn dial_options(mode: TransportMode, tcp: SocketAddr) -> DialOptions {
    let mut opts = DialOptions::default();
    opts.transport.mode = mode;
    opts.transport.relay_tcp = Some(tcp.to_string());
    opts
}

impl DualRelay {
    /// Starts the relay and the fake agent (over QUIC), logs the owner in, waits until the
    /// agent is online. Runs on the operator runtime.
    ///
    /// # Errors
    /// Any setup step failing.
    pub async fn start(roles: &Roles, hub: &EventHub, tmp: TempDir) -> Result<Self> {
        let (dir, init) = init_state(&tmp)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_dual_port()?));
        let mut config = RelayConfig::new(dir.root().to_owned());
        config.listen = addr;
        config.drain_timeout = Duration::from_secs(1);
        let relay = on(&roles.relay, async move { Ok(Relay::spawn(config).await?) }).await?;
        let pin = relay.pin().to_owned();
        let cred = login_owner(addr, &pin, &init).await?;
        let token = cm_relay::cli::host_add(&dir, crate::worlds::HOST, Some(addr.to_string()))?;
        let agent_ep = fake_agent(roles, hub, &pin, addr, token.secret).await?;
        let world = Self {
            _tmp: tmp,
            relay: Some(relay),
            addr,
            pin,
            cred,
            agent_ep,
        };
        let probe = world.operator(TransportMode::Quic).await?;
        watch_until(probe.conn(), |l| online(l) == 1).await?;
        probe.close();
        // The TCP listener answers too (the default `listen_tcp`).
        let tcp = world.operator(TransportMode::Tcp).await?;
        tcp.close();
        Ok(world)
    }

    /// A new authenticated operator connection over `mode` (`Quic` or `Tcp`), checked to be
    /// carried by that transport.
    ///
    /// # Errors
    /// Dial or authentication failures, or another transport answered.
    pub async fn operator(&self, mode: TransportMode) -> Result<TransportOp> {
        let opts = dial_options(mode, self.addr);
        let op = dial_as_owner(&[self.addr], &self.pin, &self.cred, &opts).await?;
        let want = match mode {
            TransportMode::Tcp => Transport::Tcp,
            _ => Transport::Quic,
        };
        ensure!(
            op.transport == want,
            "asked for {mode:?}, got {}",
            op.transport
        );
        Ok(op)
    }

    /// Closes the agent and drains the relay.
    ///
    /// # Errors
    /// The relay task panicked.
    pub async fn stop(mut self, roles: &Roles) -> Result<()> {
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

/// Dials `addrs` with `opts` through the real client and authenticates as the owner.
///
/// # Errors
/// Dial or authentication failures.
pub async fn dial_as_owner(
    addrs: &[SocketAddr],
    pin: &str,
    cred: &IssuedCredential,
    opts: &DialOptions,
) -> Result<TransportOp> {
    let dialed = client::dial_any(addrs, 0, pin, opts)
        .await
        .context("dial")?;
    let transport = dialed.transport;
    let session =
        client::authenticate(dialed.conn, PeerKind::Operator, &cred.cred_id, &cred.secret)
            .await
            .context("authenticate")?;
    Ok(TransportOp {
        session,
        endpoint: dialed.endpoint,
        transport,
    })
}
