//! Typed calls to a host's agent through the relay, for the scripting commands and the app.

use crate::connect;
use crate::e2e_channels::{self, HostMode, HostRecv, HostSend, HostStreams, OpenOptions};
use crate::profile::Profile;
use cm_client::framed::StreamError;
use cm_client::{LinkError, Session};
use proto::handshake::Key;
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId};
use proto::message::Reply;
use proto::op;
use proto::operation::{Operation, Streaming, Unary};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a call goes: host, and optionally workspace and session.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Host id.
    pub host: String,
    /// Workspace name.
    pub workspace: Option<String>,
    /// OpenCode session id.
    pub session: Option<String>,
}

impl Target {
    /// A workspace target.
    pub fn workspace(host: &str, workspace: &str) -> Self {
        Self {
            host: host.to_owned(),
            workspace: Some(workspace.to_owned()),
            session: None,
        }
    }

    /// The same target with a session.
    pub fn with_session(mut self, session: Option<String>) -> Self {
        self.session = session;
        self
    }
}

/// Longest [`Remote::close_flushed`] waits for its close to go out.
pub const FLUSH_BOUND: std::time::Duration = std::time::Duration::from_secs(1);

/// An authenticated operator connection.
#[derive(Debug)]
pub struct Remote {
    session: Session,
    streams: Arc<HostStreams>,
    endpoint: quinn::Endpoint,
    next_req: AtomicU64,
}

/// A live event subscription.
#[derive(Debug)]
pub struct EventStream {
    _send: HostSend,
    recv: HostRecv,
    /// The agent's next sequence number when the watch started.
    pub start_seq: u64,
}

impl EventStream {
    /// The next event; `Ok(None)` when the agent ended the stream.
    ///
    /// # Errors
    /// Transport or framing failures.
    pub async fn next(
        &mut self,
    ) -> Result<Option<<op::WatchEvents as Streaming>::Item>, StreamError> {
        self.recv.next().await
    }
}

/// A running streaming operation `O` whose first reply has come: its items follow. Dropping
/// it closes the stream (for `git_clone`, that aborts the clone).
#[derive(Debug)]
pub struct OpStream<O: Streaming> {
    _send: HostSend,
    recv: HostRecv,
    _op: std::marker::PhantomData<O>,
}

impl<O: Streaming> OpStream<O> {
    /// The next item; `Ok(None)` when the agent ended the stream.
    ///
    /// # Errors
    /// Transport or framing failures.
    pub async fn next(&mut self) -> Result<Option<O::Item>, StreamError> {
        self.recv.next().await
    }
}

impl Remote {
    /// Connects with the saved login.
    ///
    /// # Errors
    /// Dial or authentication failures.
    pub async fn connect(profile: &Profile, key: &Key) -> Result<Self, LinkError> {
        let (endpoint, session) = connect::connect_endpoint(profile, key).await?;
        let streams = Arc::new(e2e_channels::for_profile(session.conn.clone(), profile).await?);
        Ok(Self {
            session,
            streams,
            endpoint,
            next_req: AtomicU64::new(1),
        })
    }

    /// The QUIC connection.
    pub fn conn(&self) -> &quinn::Connection {
        &self.session.conn
    }

    /// The host streams of this connection (signed and sealed to verified hosts).
    pub fn streams(&self) -> &Arc<HostStreams> {
        &self.streams
    }

    /// Whether `host` is verified end to end or relay-trusted (`None`: not used yet).
    pub fn host_mode(&self, host: &str) -> Option<HostMode> {
        self.streams.host_mode(&HostId(host.to_owned()))
    }

    /// A header for `op` to `target` with this connection's next request id.
    pub fn header(&self, op: Op, target: &Target) -> StreamHeader {
        let mut h = StreamHeader::new(op, self.next_req_id());
        h.host = Some(HostId(target.host.clone()));
        h.workspace = target.workspace.clone();
        h.session = target.session.clone();
        h
    }

    /// One request of operation `O` to `target`: `O`'s body in, `O`'s reply out.
    ///
    /// # Errors
    /// A typed refusal ([`LinkError::Refused`]) or transport failures.
    pub async fn call<O: Unary>(
        &self,
        target: &Target,
        body: &O::Body,
    ) -> Result<O::Reply, LinkError> {
        self.streams
            .call::<O>(&self.header(O::OP, target), body)
            .await
    }

    /// One request of a relay operation (no target: the relay answers it itself).
    ///
    /// # Errors
    /// A typed refusal ([`LinkError::Refused`]) or transport failures.
    pub async fn call_relay<O: Unary>(&self, body: &O::Body) -> Result<O::Reply, LinkError> {
        let header = StreamHeader::new(O::OP, self.next_req_id());
        self.streams.call::<O>(&header, body).await
    }

    fn next_req_id(&self) -> ReqId {
        ReqId(self.next_req.fetch_add(1, Ordering::Relaxed))
    }

    /// Subscribes to a workspace's events.
    ///
    /// # Errors
    /// A typed refusal or transport failures.
    pub async fn watch(
        &self,
        target: &Target,
        after_seq: Option<u64>,
    ) -> Result<EventStream, LinkError> {
        type Watch = op::WatchEvents;
        let header = self.header(Watch::OP, target);
        let query: <Watch as Operation>::Body = proto::ops::WatchQuery { after_seq };
        let opened = self
            .streams
            .open(&header, Some(&query), OpenOptions::FINISH);
        let e2e_channels::HostStream { send, mut recv } = opened.await?;
        let first: Reply<<Watch as Operation>::Reply> = recv.expect().await?;
        let start_seq = first.into_result().map_err(LinkError::Refused)?;
        Ok(EventStream {
            _send: send,
            recv,
            start_seq,
        })
    }

    /// Starts a streaming operation `O` on `target`: its first reply, then its items.
    ///
    /// # Errors
    /// A typed refusal or transport failures.
    pub async fn stream<O: Streaming>(
        &self,
        target: &Target,
        body: &O::Body,
    ) -> Result<(O::Reply, OpStream<O>), LinkError> {
        let header = self.header(O::OP, target);
        let body = (O::BODY != proto::operation::BodyKind::None).then_some(body);
        let opened = self.streams.open(&header, body, OpenOptions::FINISH);
        let e2e_channels::HostStream { send, mut recv } = opened.await?;
        let first: Reply<O::Reply> = recv.expect().await?;
        let reply = first.into_result().map_err(LinkError::Refused)?;
        Ok((
            reply,
            OpStream {
                _send: send,
                recv,
                _op: std::marker::PhantomData,
            },
        ))
    }

    /// Closes the connection politely.
    pub fn close(&self) {
        self.session.conn.close(0u32.into(), b"done");
    }

    /// Closes the connection and waits (at most [`FLUSH_BOUND`]) until the close has gone
    /// out, so the relay and the host learn at once that this operator left (its streams end
    /// now, not at the connection's idle timeout), even when the process exits right after.
    pub async fn close_flushed(&self) {
        self.close();
        let _ = tokio::time::timeout(FLUSH_BOUND, self.endpoint.wait_idle()).await;
    }
}
