//! A `cm-tui watch box demo --json` running on the laptop, its frames collected in order.
//! Whatever the network does, its frames' sequence numbers must be consecutive: nothing lost,
//! nothing twice.

use crate::harness::{Proc, WAIT};
use crate::lab::Lab;
use crate::support::deltas;
use anyhow::{Context, Result, bail};
use proto::event::{Event, EventFrame};
use std::time::Instant;

pub struct Watcher {
    proc: Proc,
    /// Every frame printed, in order.
    pub frames: Vec<EventFrame>,
}

impl Watcher {
    /// Starts the watch of the whole workspace (every event has a sequence number there).
    pub fn spawn(lab: &Lab) -> Result<Self> {
        Ok(Self {
            proc: lab.tui_spawn(&["watch", "box", "demo", "--json"])?,
            frames: Vec::new(),
        })
    }

    /// Reads frames until `done(frames)` holds (bounded by the hang guard).
    pub fn until(&mut self, what: &str, done: impl Fn(&[EventFrame]) -> bool) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        while !done(&self.frames) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.proc.stdout.recv_timeout(left) else {
                let status = self.proc.child.try_wait()?;
                bail!(
                    "waiting for {what}: no more output (watch exited: {status:?}); frames: {:?}\n\
                     its stderr:\n{}",
                    self.seqs(),
                    self.proc.stderr_log.lock().unwrap().join("\n")
                );
            };
            let frame: EventFrame = serde_json::from_str(&line)
                .with_context(|| format!("a watch line that is no frame: {line}"))?;
            self.frames.push(frame);
        }
        Ok(())
    }

    /// Until `session`'s deltas hold `needle`.
    pub fn until_text(&mut self, session: &str, needle: &str) -> Result<()> {
        self.until(&format!("{needle:?} in the watch"), |f| {
            deltas(f, session).contains(needle)
        })
    }

    /// Until `session`'s deltas from frame `from` on are exactly `text` and the session went
    /// idle after them.
    pub fn until_answered(&mut self, session: &str, from: usize, text: &str) -> Result<()> {
        self.until(&format!("the answer {text:?}"), |frames| {
            let frames = &frames[from.min(frames.len())..];
            deltas(frames, session) == text
                && frames
                    .iter()
                    .rev()
                    .take_while(|f| !matches!(f.event, Event::TextDelta { .. }))
                    .any(|f| matches!(&f.event, Event::SessionIdle { session: s } if s == session))
        })
    }

    /// The sequence numbers seen.
    pub fn seqs(&self) -> Vec<u64> {
        self.frames.iter().map(|f| f.seq).collect()
    }

    /// Consecutive sequence numbers, and no `Resync` (the agent still had every event).
    pub fn assert_gapless(&self) {
        let seqs = self.seqs();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "no gap, no duplicate: {seqs:?}"
        );
        assert!(
            !self
                .frames
                .iter()
                .any(|f| matches!(f.event, Event::Resync { .. })),
            "the agent still had every event, no resync needed"
        );
    }

    /// Whether the watch is still running.
    pub fn running(&mut self) -> Result<bool> {
        Ok(self.proc.child.try_wait()?.is_none())
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        self.proc.stderr_log.lock().unwrap().join("\n")
    }
}
