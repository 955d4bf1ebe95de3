//! `cm-tui watch`: a workspace's live events on the TUI's own connection task ([`Net`]), so a
//! watch outlives its connection as the TUI's screens do: when the network changes (UDP
//! dropped, the laptop's address moved, QUIC answering again after a time on TCP) the task
//! reconnects, and the watch resumes after the last event printed: nothing lost, nothing
//! twice.

use crate::call::WatchKey;
use crate::command_error::CommandError;
use crate::commands::describe;
use crate::event::NetEvent;
use crate::net::Net;
use crate::profile::Profile;
use crate::remote::Target;
use crate::view::text::sanitize;
use proto::event::EventFrame;
use proto::handshake::Key;
use proto::ids::HostId;
use std::io::Write as _;
use std::time::Duration;
use tokio::sync::mpsc;

/// First wait before reopening a watch that ended on a live connection (doubles, capped).
const REOPEN_FIRST: Duration = Duration::from_millis(250);
const REOPEN_MAX: Duration = Duration::from_secs(10);

/// What the watch knows between events.
#[derive(Debug, Default)]
struct Follow {
    /// The last sequence number printed (or skipped by the session filter).
    last_seq: Option<u64>,
    /// A watch was open once (a first refusal is an error, later ends are retried).
    started: bool,
    /// Watch ends since the last start, for the reopen backoff.
    failures: u32,
}

impl Follow {
    /// Whether `frame` is new (after the last one seen); records it.
    fn take(&mut self, frame: &EventFrame) -> bool {
        if self.last_seq.is_some_and(|last| frame.seq <= last) {
            return false;
        }
        self.last_seq = Some(frame.seq);
        true
    }

    fn reopen_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        REOPEN_FIRST
            .saturating_mul(1 << self.failures.saturating_sub(1).min(8))
            .min(REOPEN_MAX)
    }
}

fn print(frame: &EventFrame, target: &Target, json: bool) -> Result<(), CommandError> {
    if let (Some(want), Some(got)) = (&target.session, frame.event.session())
        && want != got
    {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", proto::text::json_line(frame)?)?;
    } else {
        writeln!(
            out,
            "{:>6} {}",
            frame.seq,
            sanitize(&describe(&frame.event))
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Prints `target`'s events until Ctrl-C (the caller's) or until the login is refused, or the
/// first watch is refused (unknown host or workspace, no access).
///
/// # Errors
/// The login refused, the first watch refused, or output failed.
pub async fn follow(
    profile: Profile,
    key: Key,
    target: &Target,
    json: bool,
) -> Result<(), CommandError> {
    let watch = WatchKey {
        host: HostId(target.host.clone()),
        workspace: target.workspace.clone().unwrap_or_default(),
    };
    let (tx, mut rx) = mpsc::channel(256);
    let net = Net::spawn(profile, key, tx);
    let mut state = Follow::default();
    let result = loop {
        let Some(event) = rx.recv().await else {
            break Ok(());
        };
        match event {
            NetEvent::Connected { .. } => net.watch(watch.clone(), state.last_seq),
            NetEvent::Disconnected { reason, retry_in } => {
                eprintln!(
                    "connection lost ({}); reconnecting in {:.1} s",
                    sanitize(&reason),
                    retry_in.as_secs_f64()
                );
            }
            NetEvent::Fatal { message, .. } => break Err(CommandError::Ended(message)),
            NetEvent::WatchStarted { next_seq, .. } => {
                state.started = true;
                state.failures = 0;
                // From the first start on, a resume asks for everything after this point.
                if state.last_seq.is_none() {
                    state.last_seq = next_seq.checked_sub(1);
                }
            }
            NetEvent::WatchFrame { frame, .. } if state.take(&frame) => {
                print(&frame, target, json)?;
            }
            NetEvent::WatchEnded { reason, .. } if !state.started => {
                break Err(CommandError::Ended(reason));
            }
            NetEvent::WatchEnded { .. } => {
                // On a live connection: reopen after a pause (on a lost one, `Connected`
                // reopens it).
                tokio::time::sleep(state.reopen_delay()).await;
                net.watch(watch.clone(), state.last_seq);
            }
            _ => {}
        }
    };
    net.shutdown().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::event::Event;

    fn frame(seq: u64) -> EventFrame {
        EventFrame {
            seq,
            event: Event::SessionIdle {
                session: "s".into(),
            },
        }
    }

    #[test]
    fn a_resumed_watch_prints_no_event_twice() {
        let mut f = Follow::default();
        assert!(f.take(&frame(3)));
        assert!(f.take(&frame(4)));
        // A resume that overlaps (the agent resent what was already printed).
        assert!(!f.take(&frame(4)));
        assert!(!f.take(&frame(2)));
        assert!(f.take(&frame(5)));
        assert_eq!(f.last_seq, Some(5));
    }

    #[test]
    fn reopening_backs_off_and_is_capped() {
        let mut f = Follow::default();
        assert_eq!(f.reopen_delay(), REOPEN_FIRST);
        assert_eq!(f.reopen_delay(), REOPEN_FIRST * 2);
        for _ in 0..20 {
            f.reopen_delay();
        }
        assert_eq!(f.reopen_delay(), REOPEN_MAX);
    }
}
