//! The host list from the client's side: `host_list` once, or `watch_hosts` as a stream of
//! complete lists, both assembled from the relay's pages and deltas (`proto::host_watch`).

use super::{LinkError, subscribe};
use crate::framed::{FramedRecv, StreamError};
use proto::header::{Op, StreamHeader};
use proto::host_watch::{HostUpdate, HostView};
use proto::ids::ReqId;
use proto::message::{HostList, Reply};

/// Asks the relay once for the hosts this login may see.
///
/// # Errors
/// [`LinkError::Refused`] with the relay's typed error, or transport failures.
pub async fn host_list(conn: &quinn::Connection, req: ReqId) -> Result<HostList, LinkError> {
    let (mut send, recv) = subscribe(conn, &StreamHeader::new(Op::HostList, req)).await?;
    let _ = send.finish();
    Pages::new(recv)
        .next()
        .await?
        .ok_or(LinkError::Stream(StreamError::Closed))
}

/// A `watch_hosts` subscription: yields the whole list now and after every change.
#[derive(Debug)]
pub struct HostWatch {
    /// Kept open for the life of the watch; dropping it would end the request.
    _send: quinn::SendStream,
    pages: Pages,
}

impl HostWatch {
    /// Opens the watch.
    ///
    /// # Errors
    /// Transport failures (a refusal arrives from [`next`](Self::next)).
    pub async fn open(conn: &quinn::Connection, req: ReqId) -> Result<Self, LinkError> {
        let (send, recv) = subscribe(conn, &StreamHeader::new(Op::WatchHosts, req)).await?;
        Ok(Self {
            _send: send,
            pages: Pages::new(recv),
        })
    }

    /// The next complete list; `None` when the relay ended the watch. Cancel-safe: pages read
    /// before a cancellation stay applied.
    ///
    /// # Errors
    /// [`LinkError::Refused`] with the relay's typed error, or transport failures.
    pub async fn next(&mut self) -> Result<Option<HostList>, LinkError> {
        self.pages.next().await
    }
}

/// Reads pages off a stream into a [`HostView`].
#[derive(Debug)]
struct Pages {
    recv: FramedRecv,
    view: HostView,
}

impl Pages {
    fn new(recv: FramedRecv) -> Self {
        Self {
            recv,
            view: HostView::new(),
        }
    }

    async fn next(&mut self) -> Result<Option<HostList>, LinkError> {
        loop {
            match self.recv.next::<Reply<HostUpdate>>().await? {
                None => return Ok(None),
                Some(Reply::Error(e)) => return Err(LinkError::Refused(e)),
                Some(Reply::Ok(page)) => {
                    if let Some(list) = self.view.apply(page) {
                        return Ok(Some(list));
                    }
                }
            }
        }
    }
}
