//! Who is asking, as the request handlers see it: the authenticated operator, how they relate
//! to a session (decided in `crate::authz`), and closing a connection with a reason.

use super::Shared;
use crate::authz;
use proto::header::StreamHeader;
use proto::ids::{ConnId, CredId, UserId};
use proto::message::CloseReason;
use proto::rbac::Ownership;
use std::sync::Arc;

/// An authenticated operator, as the rest of the relay sees it.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) user: UserId,
    pub(crate) cred_id: CredId,
    pub(crate) conn_id: ConnId,
}

/// Closes `conn` with `reason`'s code and `text`.
pub(crate) fn close(conn: &quinn::Connection, reason: CloseReason, text: &str) {
    conn.close(reason.code().into(), text.as_bytes());
}

/// How `user` relates to the header's session (see [`authz::ownership`]).
pub(crate) async fn session_ownership(
    shared: &Arc<Shared>,
    user: &UserId,
    header: &StreamHeader,
) -> (Ownership, Option<UserId>) {
    let owner = match (&header.host, &header.session) {
        (Some(host), Some(session)) => {
            let found = shared.store.session_owner(host, session).await;
            if let Err(e) = &found {
                // authz fails closed: someone else's session.
                tracing::error!(error = %e, "session owner lookup failed");
            }
            Some(found)
        }
        _ => None,
    };
    authz::ownership(user, owner)
}
