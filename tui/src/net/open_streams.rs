//! The app's open streams and port forwards by id, kept across connections: after a hand-over
//! to QUIC the old connection's streams still run there until they are done
//! ([`super::handover`]), and the app must still be able to close them (a clone cancelled, a
//! forward stopped) instead of waiting for the hand-over's bound.

use std::collections::HashMap;
use tokio_util::sync::CancellationToken;

/// Stream id → the token that ends that stream.
#[derive(Debug, Default)]
pub(super) struct OpenStreams(HashMap<u64, CancellationToken>);

impl OpenStreams {
    /// The token for stream `id`, a child of its connection's `streams` token (so it also ends
    /// with that connection). Ended streams' tokens are dropped as new ones open.
    pub(super) fn open(&mut self, id: u64, streams: &CancellationToken) -> CancellationToken {
        self.0.retain(|_, token| !token.is_cancelled());
        let token = streams.child_token();
        self.0.insert(id, token.clone());
        token
    }

    /// Ends stream `id`, on whichever connection it runs; false when no open stream has it.
    pub(super) fn close(&mut self, id: u64) -> bool {
        match self.0.remove(&id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_left_on_a_draining_connection_can_still_be_closed() {
        let mut open = OpenStreams::default();
        let draining = CancellationToken::new();
        let clone = open.open(7, &draining);
        // The hand-over: the next connection's streams open under a new token; the old
        // connection keeps running its stream.
        let current = CancellationToken::new();
        let forward = open.open(8, &current);
        assert!(open.close(7));
        assert!(clone.is_cancelled(), "the app closed it");
        assert!(
            !draining.is_cancelled(),
            "the rest of the old connection drains on"
        );
        assert!(
            !forward.is_cancelled(),
            "the new connection's stream runs on"
        );
        assert!(!open.close(7), "closed once");
    }

    #[test]
    fn a_stream_ends_with_its_connection_and_ended_ones_are_forgotten() {
        let mut open = OpenStreams::default();
        let conn = CancellationToken::new();
        let stream = open.open(1, &conn);
        conn.cancel();
        assert!(stream.is_cancelled());
        let _next = open.open(2, &CancellationToken::new());
        assert!(!open.close(1), "an ended stream's token is gone");
        assert!(open.close(2));
    }
}
