//! `port_list` and `port_forward`: the host's listening ports, and one forwarded TCP
//! connection to one of them under the host's `[forward]` policy (see `crate::forward`).

use super::error::OpError;
use super::frames::{FrameReader, write_frame};
use super::handler::{Cx, DuplexHandler, Handler};
use crate::forward::detect::{self, Detected};
use crate::forward::limits::Slot;
use crate::forward::policy::Refusal;
use crate::workspaces::Workspaces;
use proto::forward::{ForwardOpened, ForwardTarget, ListeningPort};
use proto::frame::MAX_FRAME_LEN;
use proto::message::Reply;
use proto::op;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How long connecting to the forwarded port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Scans `/proc` off the async threads.
async fn detect_now(workspaces: &Workspaces) -> Detected {
    let launches = workspaces.launches();
    tokio::task::spawn_blocking(move || {
        detect::scan(&launches, crate::opencode::launch::MARKER_ENV)
    })
    .await
    .unwrap_or_default()
}

impl Handler for op::PortList {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<Vec<ListeningPort>, OpError> {
        let found = detect_now(cx.workspaces).await;
        let policy = cx.workspaces.forwarding().policy();
        Ok(policy.listing(found, cx.fwd.header.workspace.as_deref()))
    }
}

fn refused(e: Refusal) -> OpError {
    OpError::Contained {
        rule: "forward_policy",
        message: e.to_string(),
    }
}

/// Decides, takes a connection slot and connects.
async fn open(cx: &Cx<'_>, port: u16) -> Result<(TcpStream, Slot, IpAddr, Duration), OpError> {
    let forwarding = cx.workspaces.forwarding();
    let policy = forwarding.policy();
    // A recent scan may allow it; a refusal is decided on a fresh one.
    let recent = forwarding
        .recent_scan()
        .and_then(|scan| policy.decide(port, &scan).ok());
    let addr = match recent {
        Some(addr) => addr,
        None => {
            let found = Arc::new(detect_now(cx.workspaces).await);
            forwarding.keep_scan(Arc::clone(&found));
            policy.decide(port, &found).map_err(refused)?
        }
    };
    let slot = forwarding
        .connections
        .take(&policy, cx.fwd.cred_id.as_str(), port)
        .map_err(refused)?;
    let target = SocketAddr::new(addr, port);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Err(OpError::Unavailable(format!(
                "cannot connect to port {port} on {addr}: {e}"
            )));
        }
        Err(_) => {
            return Err(OpError::Unavailable(format!(
                "port {port} on {addr} did not accept a connection within {CONNECT_TIMEOUT:?}"
            )));
        }
    };
    let _ = tcp.set_nodelay(true);
    Ok((tcp, slot, addr, policy.idle_timeout))
}

/// Gives a QUIC send stream (the agent's leg of the download) the forward priority, below
/// every other stream of the relay connection (sealed end to end or not); other transports
/// (tests' pipes) have none.
fn lower_priority<W: std::any::Any>(send: &mut W) {
    let send = send as &mut dyn std::any::Any;
    let quic = match send.downcast_mut::<cm_client::e2e::SealedSend<quinn::SendStream>>() {
        Some(sealed) => Some(sealed.get_mut()),
        None => send.downcast_mut::<quinn::SendStream>(),
    };
    if let Some(quic) = quic {
        let _ = quic.set_priority(proto::forward::STREAM_PRIORITY);
    }
}

impl DuplexHandler for op::PortForward {
    async fn serve<R, W, G>(
        cx: &Cx<'_>,
        target: ForwardTarget,
        recv: &mut FrameReader<R>,
        send: &mut W,
        peer_gone: G,
    ) where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send + 'static,
        G: Future<Output = ()> + Send,
    {
        let port = target.port;
        let (tcp, slot, addr, idle) = match open(cx, port).await {
            Ok(opened) => opened,
            Err(e) => {
                super::write_reply(send, Err(e)).await;
                return;
            }
        };
        let opened = ForwardOpened {
            port,
            addr: addr.to_string(),
        };
        if write_frame(send, &Reply::Ok(opened), MAX_FRAME_LEN)
            .await
            .is_err()
        {
            return;
        }
        lower_priority(send);
        let started = Instant::now();
        tracing::info!(target: "cm_agent::audit", port, %addr, principal = %cx.fwd.principal, cred = %cx.fwd.cred_id, "forward opened");
        let prefix = recv.take_buffered();
        let carried =
            crate::forward::splice::splice(recv.get_mut(), &prefix, send, tcp, idle, peer_gone)
                .await;
        drop(slot);
        tracing::info!(
            target: "cm_agent::audit",
            port,
            principal = %cx.fwd.principal,
            up = carried.up,
            down = carried.down,
            end = ?carried.end,
            secs = started.elapsed().as_secs_f64(),
            "forward closed"
        );
    }
}
