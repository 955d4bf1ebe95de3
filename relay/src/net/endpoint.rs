//! The accept loop: one task per incoming connection, tracked for shutdown.

use super::Shared;
use std::sync::Arc;

/// Accepts connections until the endpoint closes or the relay is cancelled.
pub(crate) async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    loop {
        let incoming = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else { break };
        let shared_for_conn = Arc::clone(&shared);
        shared
            .tracker
            .spawn(super::conn::handle(shared_for_conn, incoming));
    }
    tracing::debug!("accept loop ended");
}
