//! Typed calls to a host's agent through the relay, for the scripting commands and the app.

use crate::connect;
use crate::profile::Profile;
use cm_client::framed::{FramedRecv, StreamError, send_frame};
use cm_client::{self as client, LinkError, Session};
use proto::event::EventFrame;
use proto::frame::MAX_FRAME_LEN;
use proto::handshake::Key;
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId};
use proto::message::Reply;
use proto::ops::WatchQuery;
use serde::{Serialize, de::DeserializeOwned};
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

/// An authenticated operator connection.
#[derive(Debug)]
pub struct Remote {
    session: Session,
    next_req: AtomicU64,
}

/// A live event subscription.
#[derive(Debug)]
pub struct EventStream {
    _send: quinn::SendStream,
    recv: FramedRecv,
    /// The agent's next sequence number when the watch started.
    pub start_seq: u64,
}

impl EventStream {
    /// The next event; `Ok(None)` when the agent ended the stream.
    ///
    /// # Errors
    /// Transport or framing failures.
    pub async fn next(&mut self) -> Result<Option<EventFrame>, StreamError> {
        self.recv.next().await
    }
}

impl Remote {
    /// Connects with the saved login.
    ///
    /// # Errors
    /// Dial or authentication failures.
    pub async fn connect(profile: &Profile, key: &Key) -> Result<Self, LinkError> {
        Ok(Self {
            session: connect::connect(profile, key).await?,
            next_req: AtomicU64::new(1),
        })
    }

    /// The QUIC connection.
    pub fn conn(&self) -> &quinn::Connection {
        &self.session.conn
    }

    fn header(&self, op: Op, target: &Target) -> StreamHeader {
        let mut h = StreamHeader::new(op, ReqId(self.next_req.fetch_add(1, Ordering::Relaxed)));
        h.host = Some(HostId(target.host.clone()));
        h.workspace = target.workspace.clone();
        h.session = target.session.clone();
        h
    }

    /// One request, one reply.
    ///
    /// # Errors
    /// A typed refusal ([`LinkError::Refused`]) or transport failures.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        op: Op,
        target: &Target,
        body: Option<&B>,
    ) -> Result<T, LinkError> {
        client::request(&self.session.conn, &self.header(op, target), body).await
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
        let (mut send, mut recv) =
            client::subscribe(&self.session.conn, &self.header(Op::WatchEvents, target)).await?;
        send_frame(&mut send, &WatchQuery { after_seq }, MAX_FRAME_LEN).await?;
        let _ = send.finish();
        let first: Reply<u64> = recv.expect().await?;
        let start_seq = first.into_result().map_err(LinkError::Refused)?;
        Ok(EventStream {
            _send: send,
            recv,
            start_seq,
        })
    }

    /// Closes the connection politely.
    pub fn close(&self) {
        self.session.conn.close(0u32.into(), b"done");
    }
}
