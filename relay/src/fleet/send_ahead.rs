//! What the operator's relay sends a peer relay right behind the open frame, without waiting
//! for its answer: the operator's first bytes, up to [`SEND_AHEAD_MAX`]. They are kept until a
//! peer answers `open`, so that they can be sent again to the next relay when one answers that
//! it no longer holds the host (or is busy, or fails), and are put back into the operator's
//! stream when no relay opened it (the offline queue reads the prompt from there).
//!
//! Waiting for the answer before sending the body cost every stream across relays one round
//! trip between the relays (performance finding 12). What the operator already sent, and its
//! end, go in the open frame's write ([`SendAhead::take_ready`]): an end sent on its own was a
//! second packet through both relays that the agent waited for.
//!
//! The agent's relay reads what a peer relay sent behind the open frame the same way, and
//! passes it on with the forward header (and the end with it, when it came).

use crate::framed::FramedRecv;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Most bytes of the operator's stream sent ahead of a peer's answer (and kept to send again):
/// a prompt, a small request, the start of a forwarded connection. Later bytes wait for the
/// answer and are spliced.
pub const SEND_AHEAD_MAX: usize = 16 * 1024;

/// The operator's stream while a peer relay is asked for the agent stream.
#[derive(Debug)]
pub struct SendAhead<'a, R: AsyncRead + Unpin> {
    from: &'a mut FramedRecv<R>,
    /// Every byte taken from the operator so far (all of it sent to the peer being asked).
    taken: BytesMut,
    /// The operator finished its side.
    ended: bool,
    /// Reading the operator's stream failed (reset, connection lost).
    failed: bool,
    /// A peer opened the stream: the bytes are its own now, nothing is put back.
    handed_over: bool,
}

impl<'a, R: AsyncRead + Unpin> SendAhead<'a, R> {
    /// Takes what `from` already buffered (the bytes behind the stream header).
    pub fn new(from: &'a mut FramedRecv<R>) -> Self {
        let taken = from.take_buffered();
        Self {
            from,
            taken,
            ended: false,
            failed: false,
            handed_over: false,
        }
    }

    /// Every byte taken so far: to send to the next peer asked, in order.
    pub fn taken(&self) -> &[u8] {
        &self.taken
    }

    /// Whether the operator finished its side (after [`Self::taken`]).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Whether the operator's stream failed: the agent must see it reset, not finished.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Whether [`Self::read_more`] may read: the operator has not ended and there is room.
    pub fn can_read(&self) -> bool {
        !self.ended && !self.failed && self.taken.len() < SEND_AHEAD_MAX
    }

    /// Reads what the operator sends next (at most the room left) and returns where it lies in
    /// [`Self::taken`]; an empty range once the operator ended or its stream failed. Cancel
    /// safe: nothing is lost when the future is dropped unfinished.
    pub async fn read_more(&mut self) -> std::ops::Range<usize> {
        let start = self.taken.len();
        let room = SEND_AHEAD_MAX.saturating_sub(start);
        if room == 0 || self.ended || self.failed {
            return start..start;
        }
        self.taken.reserve(room.min(4 * 1024));
        let mut limited = bytes::BufMut::limit(&mut self.taken, room);
        match self.from.get_mut().read_buf(&mut limited).await {
            Ok(0) => self.ended = true,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "the operator's stream failed before the peer answered");
                self.failed = true;
            }
        }
        start..self.taken.len()
    }

    /// Takes what the operator already sent, and its end when it already finished, without
    /// waiting for more: so that the first write carries the whole request and its end (one
    /// packet, not the request and then the end in a second one, when it fits).
    pub fn take_ready(&mut self) {
        while self.can_read() {
            match futures::FutureExt::now_or_never(self.read_more()) {
                Some(more) if !more.is_empty() => {}
                // Ended, failed, or nothing more yet.
                _ => return,
            }
        }
    }

    /// A peer opened the stream with everything taken: returns how many bytes that was.
    pub fn hand_over(mut self) -> u64 {
        self.handed_over = true;
        self.taken.len() as u64
    }

    /// [`Self::hand_over`], keeping the bytes: the agent's relay takes what a peer sent behind
    /// its open frame this way, to pass it on with the forward header.
    pub fn hand_over_bytes(mut self) -> BytesMut {
        self.handed_over = true;
        std::mem::take(&mut self.taken)
    }
}

impl<R: AsyncRead + Unpin> Drop for SendAhead<'_, R> {
    /// No peer opened the stream: the operator's stream reads as if nothing had been taken.
    fn drop(&mut self) {
        if !self.handed_over && !self.taken.is_empty() {
            self.from.unread(&self.taken);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn bytes_taken_are_put_back_when_no_peer_opened_the_stream() {
        let (op, mut writer) = tokio::io::duplex(64 * 1024);
        writer.write_all(b"\0\0\0\x07\"hello\"rest").await.unwrap();
        drop(writer);
        let mut recv = FramedRecv::new(op, 1024);
        {
            let mut ahead = SendAhead::new(&mut recv);
            while ahead.can_read() {
                ahead.read_more().await;
            }
            assert!(ahead.ended());
            assert_eq!(ahead.taken(), b"\0\0\0\x07\"hello\"rest");
        }
        assert_eq!(recv.expect::<String>().await.unwrap(), "hello");
        assert_eq!(&recv.take_buffered()[..], b"rest");
    }

    #[tokio::test]
    async fn what_is_ready_is_taken_without_waiting_with_the_end_when_it_came() {
        let (op, mut writer) = tokio::io::duplex(64 * 1024);
        writer.write_all(b"\0\0\0\x02{}body").await.unwrap();
        let mut recv = FramedRecv::new(op, 1024);
        recv.expect::<serde_json::Value>().await.unwrap();
        let mut ahead = SendAhead::new(&mut recv);
        // Nothing more is waited for while the operator keeps its side open.
        ahead.take_ready();
        assert_eq!(ahead.taken(), b"body");
        assert!(!ahead.ended());
        writer.write_all(b" more").await.unwrap();
        drop(writer);
        ahead.take_ready();
        assert_eq!(ahead.taken(), b"body more");
        assert!(ahead.ended(), "the end is taken with the bytes");
        assert_eq!(&ahead.hand_over_bytes()[..], b"body more");
        assert!(recv.take_buffered().is_empty(), "nothing is put back");
    }

    #[tokio::test]
    async fn no_more_than_the_bound_is_taken_and_handing_over_keeps_nothing() {
        let (op, mut writer) = tokio::io::duplex(4 * SEND_AHEAD_MAX);
        writer
            .write_all(&vec![7u8; 2 * SEND_AHEAD_MAX])
            .await
            .unwrap();
        let mut recv = FramedRecv::new(op, 1024);
        let mut ahead = SendAhead::new(&mut recv);
        while ahead.can_read() {
            ahead.read_more().await;
        }
        assert_eq!(ahead.taken().len(), SEND_AHEAD_MAX);
        assert!(!ahead.ended(), "the rest is still the operator's");
        assert_eq!(ahead.hand_over(), SEND_AHEAD_MAX as u64);
        assert!(recv.take_buffered().is_empty());
        drop(writer);
        let mut rest = Vec::new();
        recv.get_mut().read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), SEND_AHEAD_MAX, "spliced after the answer");
    }
}
