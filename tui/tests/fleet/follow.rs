//! An operator following a session's events across relay failures: when its watch ends (its
//! relay died, or the relay that carried the stream did), it connects to the next relay that
//! answers and resumes after the last sequence number it saw, as `cm-tui` does.

use crate::harness::WAIT;
use crate::support::deltas;
use crate::world::Operator;
use anyhow::{Context, Result, bail};
use cm_tui::remote::{EventStream, Remote, Target};
use proto::event::{Event, EventFrame};
use proto::queue::PromptOutcome;
use std::time::Duration;

/// One dial of one relay (a dead relay's handshake times out within this).
const DIAL: Duration = Duration::from_secs(15);

/// A watch of one target that resumes on another relay when its relay goes.
pub struct Follower {
    /// The operator's login on each relay it may use, in the order it tries them.
    ops: Vec<Operator>,
    target: Target,
    remote: Remote,
    events: EventStream,
    /// Which of `ops` the watch runs on now.
    pub on: usize,
    /// Every frame seen, in order.
    pub frames: Vec<EventFrame>,
    /// How many times the watch was resumed.
    pub resumed: usize,
}

/// One attempt to connect as `op` (bounded by [`DIAL`]).
async fn dial(op: &Operator) -> Result<Remote> {
    let (profile, key) = op.profile()?;
    Ok(tokio::time::timeout(DIAL, Remote::connect(&profile, &key))
        .await
        .context("dial timed out")??)
}

impl Follower {
    /// Watches `target` from its start through `ops[0]` (retrying while it comes up).
    pub async fn open(ops: Vec<Operator>, target: Target) -> Result<Self> {
        let remote = ops[0].remote().await?;
        let events = crate::support::watch(&remote, &target, None).await?;
        Ok(Self {
            ops,
            target,
            remote,
            events,
            on: 0,
            frames: Vec::new(),
            resumed: 0,
        })
    }

    /// The library client of the relay the watch runs on now.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Sends a prompt on the watched target through the current relay; it must be accepted
    /// (not queued: the host is online). Returns the index of the next frame.
    pub async fn prompt(&self, text: &str, key: &str) -> Result<usize> {
        let outcome: PromptOutcome = self
            .remote
            .call::<proto::op::Prompt>(&self.target, &crate::support::prompt(text, key))
            .await?;
        anyhow::ensure!(
            matches!(outcome, PromptOutcome::Accepted(_)),
            "expected accepted, got {outcome:?}"
        );
        Ok(self.frames.len())
    }

    /// Reads frames until `done(frames)` holds, resuming on another relay whenever the watch
    /// ends. A `Resync` is an error: the agent still has every event.
    pub async fn until(&mut self, done: impl Fn(&[EventFrame]) -> bool) -> Result<()> {
        while !done(&self.frames) {
            match tokio::time::timeout(WAIT, self.events.next()).await {
                Ok(Ok(Some(f))) => {
                    anyhow::ensure!(
                        !matches!(f.event, Event::Resync { .. }),
                        "the agent still had the events: {f:?}"
                    );
                    self.frames.push(f);
                }
                Ok(Ok(None) | Err(_)) => self.resume().await?,
                Err(_) => bail!("no event within {WAIT:?}"),
            }
        }
        Ok(())
    }

    /// Until the frames from index `from` on hold `text` (`session`'s deltas, joined) and
    /// `session` went idle after them.
    pub async fn until_answered(&mut self, session: &str, from: usize, text: &str) -> Result<()> {
        self.until(|frames| {
            let frames = &frames[from.min(frames.len())..];
            deltas(frames, session) == text
                && frames
                    .iter()
                    .rev()
                    .take_while(|f| !matches!(f.event, Event::TextDelta { .. }))
                    .any(|f| matches!(&f.event, Event::SessionIdle { session: s } if s == session))
        })
        .await
    }

    /// How many `chunk`s of `session`'s answer arrived from index `from` on.
    pub fn chunks(&self, session: &str, from: usize) -> usize {
        deltas(&self.frames[from.min(self.frames.len())..], session)
            .matches("chunk")
            .count()
    }

    /// Connects to the first relay (starting with the current one) that answers and resumes
    /// the watch after the last frame seen (bounded by [`WAIT`] in all).
    async fn resume(&mut self) -> Result<()> {
        let after = self.frames.last().map(|f| f.seq);
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut errors = Vec::new();
        let mut i = self.on;
        loop {
            let op = &self.ops[i];
            let attempt = async {
                let remote = dial(op).await?;
                let events = tokio::time::timeout(DIAL, remote.watch(&self.target, after))
                    .await
                    .context("watch timed out")??;
                Ok::<_, anyhow::Error>((remote, events))
            };
            match attempt.await {
                Ok((remote, events)) => {
                    self.remote.close();
                    self.remote = remote;
                    self.events = events;
                    self.on = i;
                    self.resumed += 1;
                    return Ok(());
                }
                Err(e) => errors.push(format!("{}: {e:#}", op.relay)),
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no relay resumed the watch: {errors:?}");
            }
            i = (i + 1) % self.ops.len();
            if i == self.on {
                // Every relay refused once: poll again (the host may be coming back).
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// The frames' sequence numbers are consecutive: nothing lost, nothing twice.
    pub fn assert_gapless(&self) {
        let seqs: Vec<u64> = self.frames.iter().map(|f| f.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "no gap, no duplicate: {seqs:?}"
        );
    }
}
