//! What the host's own user did at the desk (`cm-agent attach`), waiting to be told to the
//! relay for its audit trail. A local action never waits for the relay: it is logged on the
//! host at once (target `cm_agent::audit`) and its notice is queued here; whichever link to a
//! relay is up takes it, and a notice whose send fails is put back for the next link. The queue
//! is in memory and bounded: notices of an agent that stops before any relay is reachable are
//! only in the host's log.

use parking_lot::Mutex;
use proto::message::Control;
use std::collections::VecDeque;
use tokio::sync::Notify;

/// Most notices kept while no relay is reachable; beyond, the oldest is dropped (it is still in
/// the host's log).
pub const MAX_QUEUED: usize = 256;

fn warn_dropped() {
    tracing::warn!(
        "a local-action notice was dropped before any relay heard of it (it is in this log)"
    );
}

/// The queue of notices for the relay.
#[derive(Debug, Default)]
pub struct LocalNotices {
    queue: Mutex<VecDeque<Control>>,
    added: Notify,
}

impl LocalNotices {
    /// Queues `notice` for the next link.
    pub fn push(&self, notice: Control) {
        {
            let mut queue = self.queue.lock();
            if queue.len() >= MAX_QUEUED {
                queue.pop_front();
                warn_dropped();
            }
            queue.push_back(notice);
        }
        self.added.notify_one();
    }

    /// Puts back a notice whose send failed, first in line.
    /// When the queue filled meanwhile, the newest notice gives way (the oldest is kept, as
    /// `push` keeps the newest): the queue never holds more than [`MAX_QUEUED`].
    pub fn put_back(&self, notice: Control) {
        {
            let mut queue = self.queue.lock();
            if queue.len() >= MAX_QUEUED {
                queue.pop_back();
                warn_dropped();
            }
            queue.push_front(notice);
        }
        self.added.notify_one();
    }

    /// The next notice, waiting for one. Cancel-safe: a notice is taken only in the poll that
    /// returns it.
    pub async fn next(&self) -> Control {
        loop {
            let added = self.added.notified();
            if let Some(notice) = self.queue.lock().pop_front() {
                return notice;
            }
            added.await;
        }
    }

    /// How many notices wait.
    pub fn len(&self) -> usize {
        self.queue.lock().len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attach(n: u64) -> Control {
        Control::LocalAttach {
            workspace: "demo".into(),
            at_ms: n,
        }
    }

    #[tokio::test]
    async fn a_notice_queued_with_no_link_is_taken_by_the_next_one_and_a_failed_send_is_kept() {
        let notices = LocalNotices::default();
        notices.push(attach(1));
        notices.push(attach(2));
        let first = notices.next().await;
        assert_eq!(first, attach(1));
        notices.put_back(first);
        assert_eq!(notices.next().await, attach(1));
        assert_eq!(notices.next().await, attach(2));
        assert!(notices.is_empty());
    }

    #[tokio::test]
    async fn a_waiting_link_wakes_when_a_notice_arrives() {
        let notices = std::sync::Arc::new(LocalNotices::default());
        let waiter = tokio::spawn({
            let notices = std::sync::Arc::clone(&notices);
            async move { notices.next().await }
        });
        tokio::task::yield_now().await;
        notices.push(attach(7));
        assert_eq!(waiter.await.unwrap(), attach(7));
    }

    #[test]
    fn the_queue_is_bounded_and_keeps_the_newest() {
        let notices = LocalNotices::default();
        for n in 0..(MAX_QUEUED as u64 + 10) {
            notices.push(attach(n));
        }
        assert_eq!(notices.len(), MAX_QUEUED);
        let first = notices.queue.lock().front().cloned();
        assert_eq!(first, Some(attach(10)));
        // A notice put back into a full queue keeps it at its bound, first in line.
        notices.put_back(attach(1));
        assert_eq!(notices.len(), MAX_QUEUED);
        assert_eq!(notices.queue.lock().front().cloned(), Some(attach(1)));
    }
}
