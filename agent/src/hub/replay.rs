//! The bounded replay buffer behind `watch_events` resumption: the newest events of a
//! workspace, limited by count and by encoded size. Pure.

use proto::event::EventFrame;
use std::collections::VecDeque;

/// Events kept per workspace.
pub const MAX_EVENTS: usize = 10_000;
/// Encoded bytes kept per workspace (8 MiB): a few long turns with tool output.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

/// What a resuming watcher gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    /// Every event after the requested one, in order (possibly none).
    Frames(Vec<EventFrame>),
    /// Some of those events are no longer kept (or the sequence number is from another run of
    /// the agent): the watcher must re-read the history.
    Gone,
}

/// The newest events, oldest first.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    frames: VecDeque<(EventFrame, usize)>,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

impl Default for ReplayBuffer {
    fn default() -> Self {
        Self::new(MAX_EVENTS, MAX_BYTES)
    }
}

impl ReplayBuffer {
    /// An empty buffer with these limits.
    pub fn new(max_events: usize, max_bytes: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            max_events,
            max_bytes,
        }
    }

    /// Appends a frame of `size` encoded bytes (sequence numbers must ascend), evicting the
    /// oldest frames beyond the limits.
    pub fn push(&mut self, frame: EventFrame, size: usize) {
        self.frames.push_back((frame, size));
        self.bytes += size;
        while self.frames.len() > self.max_events
            || (self.bytes > self.max_bytes && self.frames.len() > 1)
        {
            if let Some((_, s)) = self.frames.pop_front() {
                self.bytes -= s;
            }
        }
    }

    /// Number of frames kept.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frames after `after_seq`, when `next_seq` is the number the next event will get.
    pub fn after(&self, after_seq: u64, next_seq: u64) -> Replay {
        let first_wanted = after_seq.saturating_add(1);
        if first_wanted > next_seq {
            return Replay::Gone;
        }
        if first_wanted == next_seq {
            return Replay::Frames(Vec::new());
        }
        match self.frames.front() {
            Some((oldest, _)) if oldest.seq <= first_wanted => Replay::Frames(
                self.frames
                    .iter()
                    .filter(|(f, _)| f.seq >= first_wanted)
                    .map(|(f, _)| f.clone())
                    .collect(),
            ),
            _ => Replay::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::event::Event;

    fn frame(seq: u64) -> EventFrame {
        EventFrame {
            seq,
            event: Event::SessionIdle {
                session: format!("ses_{seq}"),
            },
        }
    }

    fn seqs(r: &Replay) -> Vec<u64> {
        match r {
            Replay::Frames(f) => f.iter().map(|f| f.seq).collect(),
            Replay::Gone => panic!("gone"),
        }
    }

    #[test]
    fn replays_what_it_still_has() {
        let mut b = ReplayBuffer::new(3, 1000);
        for s in 1..=5 {
            b.push(frame(s), 10);
        }
        assert_eq!(b.len(), 3);
        // next_seq is 6: after 2 → 3,4,5; after 4 → 5; after 5 → nothing.
        assert_eq!(seqs(&b.after(2, 6)), vec![3, 4, 5]);
        assert_eq!(seqs(&b.after(4, 6)), vec![5]);
        assert_eq!(seqs(&b.after(5, 6)), Vec::<u64>::new());
        // 2 was evicted: after 1 cannot be served.
        assert_eq!(b.after(1, 6), Replay::Gone);
        // A number from the future (an earlier run of the agent).
        assert_eq!(b.after(9, 6), Replay::Gone);
    }

    #[test]
    fn byte_limit_evicts_but_keeps_the_newest() {
        let mut b = ReplayBuffer::new(100, 25);
        b.push(frame(1), 10);
        b.push(frame(2), 10);
        b.push(frame(3), 10);
        assert_eq!(b.len(), 2);
        b.push(frame(4), 100);
        assert_eq!(b.len(), 1);
        assert_eq!(seqs(&b.after(3, 5)), vec![4]);
        let empty = ReplayBuffer::default();
        assert!(empty.is_empty());
        assert_eq!(empty.after(0, 1), Replay::Frames(Vec::new()));
        assert_eq!(empty.after(0, 2), Replay::Gone);
    }
}
