//! A host's newer connection replaces its older one: new streams go to the newer at once (the
//! presence route), while the older keeps the streams it carries until they finish. An agent
//! moving from TCP back to QUIC authenticates its QUIC connection first and closes the TCP one
//! itself once its streams are done; an older connection still open after [`HANDOVER_GRACE`]
//! is closed as `Replaced`.

use super::super::Shared;
use super::super::principal::close;
use proto::ids::HostId;
use proto::message::CloseReason;
use std::sync::Arc;
use std::time::Duration;

/// How long a replaced connection may keep finishing its open streams.
pub(crate) const HANDOVER_GRACE: Duration = Duration::from_secs(30);

/// What a replaced connection's closing says.
pub(crate) const REPLACED: &str = "replaced by a newer connection of this host";

/// Closes `old` (the connection a newer one of its host replaced) once its agent closed it, or
/// after [`HANDOVER_GRACE`], or at once when the relay stops.
pub(crate) fn retire(shared: &Arc<Shared>, old: quinn::Connection) {
    let cancel = shared.cancel.clone();
    shared.tracker.spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {}
            _ = old.closed() => return,
            () = tokio::time::sleep(HANDOVER_GRACE) => {}
        }
        close(&old, CloseReason::Replaced, REPLACED);
    });
}

/// Whether `conn` is no longer `host`'s current connection (a newer one replaced it).
pub(crate) fn replaced(shared: &Shared, host: &HostId, conn: &quinn::Connection) -> bool {
    shared
        .presence
        .route(host)
        .is_some_and(|current| current.stable_id() != conn.stable_id())
}
