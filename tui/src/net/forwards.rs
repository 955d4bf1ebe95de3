//! The app's port forwards: [`crate::forward_cli`]'s pieces on the app's connection. The host
//! is asked once whether it forwards the port (a refusal comes back with its reason), a local
//! listener is bound on 127.0.0.1 (the same port when free, else one the OS picks), and each
//! accepted connection is carried by its own `port_forward` stream. Cancelling the token (the
//! app stopped it, the connection ended, the app quit) closes the listener and every carried
//! connection.

use crate::call::{CallError, ForwardNews, ForwardRequest};
use crate::e2e_channels::HostStreams;
use crate::event::NetEvent;
use crate::forward_cli::{self, Served};
use cm_client::LinkError;
use proto::header::Op;
use proto::ids::ReqId;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Request ids of a forward's streams start here (logs only), apart from the app's and the
/// watches'.
const FORWARD_REQ_BASE: u64 = 1 << 41;
/// Request ids per forward.
const REQS_PER_FORWARD: u64 = 1 << 20;

/// Runs one forward until it is cancelled or fails.
pub(super) async fn run(
    conn: Arc<HostStreams>,
    request: ForwardRequest,
    events: mpsc::Sender<NetEvent>,
    cancel: CancellationToken,
) {
    let id = request.id;
    let (news_tx, mut news_rx) = mpsc::unbounded_channel();
    let serve = serve(&conn, &request, news_tx);
    tokio::pin!(serve);
    let ended = loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            Some(news) = news_rx.recv() => {
                if events.send(NetEvent::Forward { id, news }).await.is_err() {
                    return;
                }
            }
            ended = &mut serve => break ended,
        }
    };
    // News sent before the end comes first.
    while let Ok(news) = news_rx.try_recv() {
        let _ = events.send(NetEvent::Forward { id, news }).await;
    }
    cancel.cancel();
    if let Some(error) = ended {
        let news = ForwardNews::Ended(error);
        let _ = events.send(NetEvent::Forward { id, news }).await;
    }
}

/// Checks, binds and serves; `None` when the relay connection ended (the app hears of that
/// itself), else why the forward ended.
async fn serve(
    conn: &Arc<HostStreams>,
    request: &ForwardRequest,
    news: mpsc::UnboundedSender<ForwardNews>,
) -> Option<CallError> {
    let mut next = FORWARD_REQ_BASE.saturating_add(request.id.saturating_mul(REQS_PER_FORWARD));
    let scope = crate::call::Scope::host(&request.host);
    let mut header = move || {
        next += 1;
        super::header(Op::PortForward, ReqId(next), &scope)
    };
    let port = request.port;
    match forward_cli::check_on(conn, &header(), port).await {
        Ok(_) => {}
        Err(LinkError::Refused(w)) => return Some(CallError::refused(w.code, w.message)),
        Err(LinkError::Connection(_)) => return None,
        Err(e) => return Some(CallError::transport(e.to_string())),
    }
    let listener = match forward_cli::bind(None, port).await {
        Ok(l) => l,
        Err(e) => return Some(CallError::transport(format!("no local port: {e}"))),
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return Some(CallError::transport(format!("no local port: {e}"))),
    };
    let _ = news.send(ForwardNews::Listening { local });
    let report = |served| {
        let _ = news.send(match served {
            Served::Connections(n) => ForwardNews::Connections(n),
            Served::NotForwarded { why, .. } => ForwardNews::NotForwarded(why),
        });
    };
    match forward_cli::serve_on(conn, header, port, listener, report).await {
        Ok(_closed) => None,
        Err(e) => Some(CallError::transport(format!(
            "the local listener failed: {e}"
        ))),
    }
}
