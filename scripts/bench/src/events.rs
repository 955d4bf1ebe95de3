//! The synthetic event stream: `EventFrame`s (a `text_delta`, the most frequent event) carrying
//! their send time, fanned out by the agent to every watcher through a broadcast channel.

use bytes::Bytes;
use proto::event::{Event, EventFrame};
use proto::frame::{MAX_FRAME_LEN, to_frame};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Size of the padding text in each delta (a typical streamed chunk of a model answer).
const DELTA_TEXT: usize = 160;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds on a process-wide monotonic clock (all roles share this process).
pub fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One framed event whose delta starts with its send time.
///
/// # Errors
/// Serialization failure (not expected).
pub fn frame(seq: u64) -> anyhow::Result<Bytes> {
    let delta = format!("{}|{}", now_ns(), "x".repeat(DELTA_TEXT));
    let f = EventFrame {
        seq,
        event: Event::TextDelta {
            session: "ses_01JBENCH0000000000000000".into(),
            message_id: "msg_01JBENCH0000000000000000".into(),
            part_id: "prt_01JBENCH0000000000000000".into(),
            delta,
        },
    };
    Ok(to_frame(&f, MAX_FRAME_LEN)?.freeze())
}

/// How long ago `f` was sent, if it is one of ours.
pub fn age(f: &EventFrame) -> Option<Duration> {
    let Event::TextDelta { delta, .. } = &f.event else {
        return None;
    };
    let sent: u64 = delta.split('|').next()?.parse().ok()?;
    Some(Duration::from_nanos(now_ns().saturating_sub(sent)))
}

/// Fan-out from one generator to every open watch stream. An empty chunk means "the end".
#[derive(Debug, Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Bytes>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(4096).0,
        }
    }
}

impl EventHub {
    /// A new watcher.
    pub fn subscribe(&self) -> broadcast::Receiver<Bytes> {
        self.tx.subscribe()
    }

    /// Watchers currently subscribed.
    pub fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Writes `count` events, one every `interval`, then the end marker.
    ///
    /// # Errors
    /// Frame encoding failure.
    pub async fn generate(self, count: usize, interval: Duration) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(interval);
        for seq in 0..count as u64 {
            tick.tick().await;
            // No watcher left is not an error here: the readers report what they saw.
            let _ = self.tx.send(frame(seq)?);
        }
        let _ = self.tx.send(Bytes::new());
        Ok(())
    }
}

/// Frame length on the wire (prefix included), for the table.
pub fn frame_len() -> usize {
    frame(0).map(|b| b.len()).unwrap_or(0)
}
