//! The control messages waiting for one agent's control stream (revocation notices and lists
//! that the sweeper and a publish send while the connection task waits on the agent).
//!
//! Every connected agent holds one, so it costs nothing until something is sent: an empty
//! queue and a wake-up, about a hundred bytes. A tokio channel allocates its first block of 32
//! messages and its cache-padded state when it is made, about 1.8 KiB per agent (heaptrack,
//! scenario 8). Unbounded on purpose: only revocations made by administrators fill it (at
//! most one batch per revocation), never the agent, and a notice dropped would leave a launch
//! running.

use parking_lot::Mutex;
use proto::message::Control;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Queue {
    messages: Mutex<VecDeque<Control>>,
    ready: Notify,
}

/// The sending side, kept in the live table (`sweeper::LiveConn`); clones share the queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct AgentNotices(Arc<Queue>);

impl AgentNotices {
    /// Queues `message` for the agent's control stream. Never blocks; a message sent after the
    /// connection task ended is dropped with the queue.
    pub(crate) fn send(&self, message: Control) {
        self.0.messages.lock().push_back(message);
        // Stores a permit when the task is not waiting, so a message is never missed.
        self.0.ready.notify_one();
    }

    /// The next queued message, waiting for one. Cancel-safe: a message is taken only when
    /// it is returned.
    pub(crate) async fn recv(&self) -> Control {
        loop {
            if let Some(message) = self.0.messages.lock().pop_front() {
                return message;
            }
            self.0.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt as _;
    use std::time::Duration;

    fn notice(id: &str) -> Control {
        Control::CredsRevoked {
            cred_ids: vec![proto::ids::CredId::from(id)],
        }
    }

    #[tokio::test]
    async fn messages_arrive_in_order_whether_sent_before_or_while_waiting() {
        let notices = AgentNotices::default();
        let sender = notices.clone();
        sender.send(notice("a"));
        sender.send(notice("b"));
        assert_eq!(notices.recv().await, notice("a"));
        assert_eq!(notices.recv().await, notice("b"));
        let waiting = tokio::spawn({
            let notices = notices.clone();
            async move { notices.recv().await }
        });
        tokio::task::yield_now().await;
        sender.send(notice("c"));
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting receiver is woken")
            .expect("the receiver task ran");
        assert_eq!(got, notice("c"));
    }

    #[tokio::test]
    async fn a_receive_cancelled_while_waiting_loses_nothing() {
        let notices = AgentNotices::default();
        // Polled once and dropped, as `select!` drops the branch that did not win.
        assert!(notices.recv().now_or_never().is_none());
        notices.clone().send(notice("a"));
        let got = tokio::time::timeout(Duration::from_secs(5), notices.recv())
            .await
            .expect("the queued message is received");
        assert_eq!(got, notice("a"));
    }
}
