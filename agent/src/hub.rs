//! One workspace's event hub: assigns the per-workspace sequence numbers, keeps the replay
//! buffer, and fans events out to watchers through a `tokio::sync::broadcast` channel.
//!
//! Watchers must tolerate gaps: a watcher that falls behind the broadcast channel, or resumes
//! from a number the buffer no longer reaches, gets an [`Event::Resync`] and should re-read
//! the history (messages, pending requests). Updates carry whole objects (a part, a session),
//! so applying one twice is harmless.
//!
//! Sequence rules: real events are numbered 1, 2, 3… per workspace for the life of the agent.
//! A watcher-specific `Resync` frame carries the number of the last event it stands in for, so
//! the next frame on that stream always has `seq + 1`.

pub mod replay;

use proto::event::{Event, EventFrame};
use replay::{Replay, ReplayBuffer};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Broadcast queue per workspace; a watcher further behind than this gets a `Resync`.
pub const BROADCAST_CAPACITY: usize = 4096;

/// Sequence numbers reserved per write of the state file (`supervisor/statefile.rs`): the file
/// is rewritten once per this many events.
pub const SEQ_BLOCK: u64 = 10_000;

/// Called with a new reservation before a number beyond the current one is used.
pub type Reserve = Box<dyn Fn(u64) + Send + Sync>;

struct HubState {
    next_seq: u64,
    replay: ReplayBuffer,
    /// Numbers up to this one are recorded as possibly used (state file); `None` = not
    /// persisted.
    reserved: Option<u64>,
    reserve: Option<Reserve>,
}

impl std::fmt::Debug for HubState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubState")
            .field("next_seq", &self.next_seq)
            .field("reserved", &self.reserved)
            .finish_non_exhaustive()
    }
}

/// The hub. Publishing and subscribing take one short lock, so a subscriber sees every event
/// exactly once: older ones from the buffer, newer ones from the channel.
#[derive(Debug)]
pub struct EventHub {
    state: Mutex<HubState>,
    tx: broadcast::Sender<EventFrame>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// A hub whose first event will be number 1.
    pub fn new() -> Self {
        Self::with_buffer(ReplayBuffer::default())
    }

    /// A hub with a given replay buffer (tests use small ones).
    pub fn with_buffer(replay: ReplayBuffer) -> Self {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Self {
            state: Mutex::new(HubState {
                next_seq: 1,
                replay,
                reserved: None,
                reserve: None,
            }),
            tx,
        }
    }

    /// A hub whose first event is `first`, for a workspace whose numbers up to `reserved` are
    /// recorded as used; `reserve` records a further block before the hub goes beyond it, so
    /// a restarted agent never hands out a number twice.
    pub fn numbered_from(first: u64, reserved: u64, reserve: Reserve) -> Self {
        let hub = Self::new();
        {
            let mut st = hub.lock();
            st.next_seq = first.max(1);
            st.reserved = Some(reserved);
            st.reserve = Some(reserve);
        }
        hub
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        // A panic while holding this lock cannot leave the state half-updated in a way that
        // matters (a counter and a queue), so a poisoned lock is still used.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Numbers, stores and broadcasts `event`; returns its number.
    pub fn publish(&self, event: Event) -> u64 {
        let mut st = self.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        if let Some(r) = st.reserved
            && seq > r
        {
            let upto = seq + SEQ_BLOCK;
            if let Some(f) = &st.reserve {
                f(upto);
            }
            st.reserved = Some(upto);
        }
        let frame = EventFrame { seq, event };
        let size = serde_json::to_vec(&frame).map_or(0, |v| v.len());
        st.replay.push(frame.clone(), size);
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(frame);
        seq
    }

    /// The number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Subscribes; with `after_seq`, first replays the events after it (or a `Resync` when
    /// they are no longer kept).
    pub fn subscribe(&self, after_seq: Option<u64>) -> Subscription {
        let st = self.lock();
        let rx = self.tx.subscribe();
        let next_seq = st.next_seq;
        let backlog = match after_seq.map(|a| st.replay.after(a, next_seq)) {
            None => Vec::new(),
            Some(Replay::Frames(frames)) => frames,
            Some(Replay::Gone) => vec![EventFrame {
                seq: next_seq - 1,
                event: Event::Resync {
                    reason: "the agent no longer has the events after the requested one; re-read the session history".into(),
                },
            }],
        };
        Subscription {
            next_seq,
            backlog: backlog.into(),
            rx,
            pending: None,
        }
    }
}

/// One watcher's view of the hub.
#[derive(Debug)]
pub struct Subscription {
    /// The number the first live (not replayed) event will have.
    pub next_seq: u64,
    backlog: std::collections::VecDeque<EventFrame>,
    rx: broadcast::Receiver<EventFrame>,
    pending: Option<EventFrame>,
}

impl Subscription {
    /// The next frame: replayed ones first, then live ones; `None` when the hub is gone.
    pub async fn next(&mut self) -> Option<EventFrame> {
        if let Some(f) = self.backlog.pop_front() {
            return Some(f);
        }
        if let Some(f) = self.pending.take() {
            return Some(f);
        }
        match self.rx.recv().await {
            Ok(f) => Some(f),
            Err(broadcast::error::RecvError::Closed) => None,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                // The oldest frame still queued follows the gap; the Resync stands in for the
                // frames before it.
                let next = loop {
                    match self.rx.recv().await {
                        Ok(f) => break f,
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                };
                let resync = EventFrame {
                    seq: next.seq - 1,
                    event: Event::Resync {
                        reason: format!(
                            "this watcher fell {missed} events behind; re-read the session history"
                        ),
                    },
                };
                self.pending = Some(next);
                Some(resync)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(n: u64) -> Event {
        Event::SessionIdle {
            session: format!("ses_{n}"),
        }
    }

    #[tokio::test]
    async fn live_and_replayed_events_are_each_seen_once_in_order() {
        let hub = EventHub::new();
        for n in 1..=3 {
            assert_eq!(hub.publish(idle(n)), n);
        }
        let mut sub = hub.subscribe(Some(1));
        assert_eq!(sub.next_seq, 4);
        hub.publish(idle(4));
        let got: Vec<u64> = [
            sub.next().await.unwrap(),
            sub.next().await.unwrap(),
            sub.next().await.unwrap(),
        ]
        .iter()
        .map(|f| f.seq)
        .collect();
        assert_eq!(got, vec![2, 3, 4]);
        let mut fresh = hub.subscribe(None);
        assert_eq!(fresh.next_seq, 5);
        hub.publish(idle(5));
        assert_eq!(fresh.next().await.unwrap().seq, 5);
    }

    #[tokio::test]
    async fn resuming_beyond_the_buffer_gets_a_resync() {
        let hub = EventHub::with_buffer(ReplayBuffer::new(2, 1 << 20));
        for n in 1..=5 {
            hub.publish(idle(n));
        }
        let mut sub = hub.subscribe(Some(1));
        let f = sub.next().await.unwrap();
        assert!(matches!(f.event, Event::Resync { .. }));
        assert_eq!(f.seq, 5);
        hub.publish(idle(6));
        assert_eq!(sub.next().await.unwrap().seq, 6);
        // A number from a previous run of the agent.
        let mut sub = hub.subscribe(Some(99));
        assert!(matches!(
            sub.next().await.unwrap().event,
            Event::Resync { .. }
        ));
    }

    #[tokio::test]
    async fn a_lagging_watcher_gets_a_resync_then_continues() {
        let hub = EventHub::new();
        let mut sub = hub.subscribe(None);
        let total = BROADCAST_CAPACITY as u64 + 10;
        for n in 1..=total {
            hub.publish(idle(n));
        }
        let first = sub.next().await.unwrap();
        assert!(matches!(first.event, Event::Resync { .. }), "{first:?}");
        let second = sub.next().await.unwrap();
        assert_eq!(second.seq, first.seq + 1);
        let mut last = second.seq;
        while last < total {
            let f = sub.next().await.unwrap();
            assert_eq!(f.seq, last + 1);
            last = f.seq;
        }
    }
}
