//! A bounded queue of encoded records waiting for one TCP connection's writer. Full, it refuses
//! more ([`Push::Full`]) and wakes whoever waits for room ([`SendQueue::poll_room`]) once the
//! writer took records out; closed, it takes nothing more and lets waiters go.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// What [`SendQueue::try_push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// Queued.
    Queued,
    /// The queue is full; nothing was queued.
    Full,
    /// The connection is gone; nothing was queued.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Bytes>,
    closed: bool,
    writer: Option<Waker>,
    room: Vec<Waker>,
}

/// The queue (shared by the socket and the connection's writer task).
#[derive(Debug)]
pub(crate) struct SendQueue {
    capacity: usize,
    state: Mutex<State>,
}

impl SendQueue {
    /// A queue holding at most `capacity` items (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` unless the queue is full or closed.
    pub(crate) fn try_push(&self, item: Bytes) -> Push {
        let mut s = self.lock();
        if s.closed {
            return Push::Closed;
        }
        if s.items.len() >= self.capacity {
            return Push::Full;
        }
        s.items.push_back(item);
        if let Some(w) = s.writer.take() {
            w.wake();
        }
        Push::Queued
    }

    /// Ready when an item would be taken (room, or closed: then pushes are dropped); else
    /// registers `cx` to be woken when there is room.
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if s.closed || s.items.len() < self.capacity {
            return Poll::Ready(());
        }
        if !s.room.iter().any(|w| w.will_wake(cx.waker())) {
            s.room.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Moves every queued item into `out`: `Ready(true)` with items, `Ready(false)` once the
    /// queue is closed and empty, else `Pending` until something is pushed.
    pub(crate) fn poll_drain(&self, cx: &mut Context<'_>, out: &mut Vec<Bytes>) -> Poll<bool> {
        let mut s = self.lock();
        if !s.items.is_empty() {
            out.extend(s.items.drain(..));
            for w in s.room.drain(..) {
                w.wake();
            }
            return Poll::Ready(true);
        }
        if s.closed {
            return Poll::Ready(false);
        }
        s.writer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Takes nothing more; the writer still gets what was queued, waiters are released.
    pub(crate) fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        if let Some(w) = s.writer.take() {
            w.wake();
        }
        for w in s.room.drain(..) {
            w.wake();
        }
    }

    /// Whether [`Self::close`] was called.
    #[cfg(test)]
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn item(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[test]
    fn a_full_queue_refuses_and_wakes_the_waiter_once_the_writer_took_items() {
        let q = SendQueue::new(2);
        assert_eq!(q.try_push(item(1)), Push::Queued);
        assert_eq!(q.try_push(item(2)), Push::Queued);
        assert_eq!(q.try_push(item(3)), Push::Full);
        let waiter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&waiter));
        let mut cx = Context::from_waker(&waker);
        assert!(q.poll_room(&mut cx).is_pending());
        assert_eq!(waiter.0.load(Ordering::SeqCst), 0);
        let mut out = Vec::new();
        assert_eq!(q.poll_drain(&mut cx, &mut out), Poll::Ready(true));
        assert_eq!(out, vec![item(1), item(2)]);
        assert_eq!(waiter.0.load(Ordering::SeqCst), 1);
        assert!(q.poll_room(&mut cx).is_ready());
        assert_eq!(q.try_push(item(3)), Push::Queued);
    }

    #[test]
    fn closing_releases_waiters_keeps_queued_items_and_refuses_more() {
        let q = SendQueue::new(1);
        assert_eq!(q.try_push(item(1)), Push::Queued);
        let waiter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&waiter));
        let mut cx = Context::from_waker(&waker);
        assert!(q.poll_room(&mut cx).is_pending());
        q.close();
        assert_eq!(waiter.0.load(Ordering::SeqCst), 1);
        assert!(q.poll_room(&mut cx).is_ready());
        assert_eq!(q.try_push(item(2)), Push::Closed);
        let mut out = Vec::new();
        assert_eq!(q.poll_drain(&mut cx, &mut out), Poll::Ready(true));
        assert_eq!(out, vec![item(1)]);
        assert_eq!(q.poll_drain(&mut cx, &mut out), Poll::Ready(false));
    }

    #[test]
    fn the_writer_is_woken_by_a_push() {
        let q = SendQueue::new(4);
        let writer = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&writer));
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        assert!(q.poll_drain(&mut cx, &mut out).is_pending());
        assert_eq!(q.try_push(item(1)), Push::Queued);
        assert_eq!(writer.0.load(Ordering::SeqCst), 1);
    }
}
