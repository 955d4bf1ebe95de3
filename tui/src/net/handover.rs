//! The work one connection carries (calls, streams, port forwards), tracked so that a move
//! from TCP back to QUIC lets it finish on the TCP connection: new work goes to the QUIC
//! session at once, and the TCP connection closes when its work is done, or after
//! [`HANDOVER_DRAIN`] at the latest.

use proto::message::CloseReason;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a connection left for QUIC may take to finish its open calls, streams and
/// forwards before they are cut and it closes.
pub(super) const HANDOVER_DRAIN: Duration = Duration::from_secs(30);

/// The work of one connection and the token that ends it.
#[derive(Debug)]
pub(super) struct Work {
    /// Ends every task of the connection (a child of the task's own cancellation).
    pub(super) cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Work {
    pub(super) fn new(cancel: CancellationToken) -> Self {
        Self {
            cancel,
            tracker: TaskTracker::new(),
        }
    }

    /// Runs `task` as part of this connection's work.
    pub(super) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// After a hand-over: waits for the work (within [`HANDOVER_DRAIN`]), then ends what is
    /// left (`cancel`, the same token as `self.cancel`) and closes `conn`.
    pub(super) async fn finish(self, conn: quinn::Connection, cancel: CancellationToken) {
        self.tracker.close();
        if tokio::time::timeout(HANDOVER_DRAIN, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?HANDOVER_DRAIN,
                "work on the connection left for QUIC still running; ending it"
            );
        }
        cancel.cancel();
        conn.close(CloseReason::Normal.code().into(), b"moving to QUIC");
    }
}
