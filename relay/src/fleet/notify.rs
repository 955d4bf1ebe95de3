//! The fleet's control notices: one dedicated connection per relay `LISTEN`s on `cm_fleet`
//! (on a blocking thread of its own) and turns each notice into its effect here: a revocation
//! wakes the sweeper at once (the kill switch issued on any relay closes connections held by
//! every relay without waiting for a poll), a grant change makes cached grants stale, and a
//! presence or relays change makes the presence thread re-read that part of the fleet.
//!
//! When the connection is lost it is made again, and everything is treated as changed (the
//! notices sent meanwhile were missed).

use super::presence_sync::{HostReloads, SyncJob};
use crate::store::{PgConfig, PgListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

/// How long one wait for notices lasts (the thread checks for shutdown in between).
const WAIT: Duration = Duration::from_millis(250);
/// Quiet waits between two checks that the connection still works.
const PING_EVERY: u32 = 20;
/// Pause before connecting again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// One notice on `cm_fleet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A credential or host was revoked (the revocation epoch moved).
    Revoked,
    /// Grants changed.
    Grants,
    /// The relays holding this host changed.
    Presence(String),
    /// Relays were registered, retired or changed address.
    Relays,
    /// A user's TUI shows a session (on whichever relay it is connected to): notifications
    /// about it are held back on every relay (issue #22's presence suppression).
    Focus(FocusNotice),
}

/// The payload of a [`Notice::Focus`] (JSON after `focus `).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FocusNotice {
    /// The user whose TUI it is.
    pub user: String,
    /// The host.
    pub host: String,
    /// The workspace.
    pub workspace: String,
    /// The session on screen.
    pub session: String,
}

impl FocusNotice {
    /// The `cm_fleet` payload that carries it.
    pub fn payload(&self) -> String {
        format!(
            "focus {}",
            serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
        )
    }
}

impl Notice {
    /// The notice a payload carries (`None` for one this build does not know: ignored).
    pub fn parse(payload: &str) -> Option<Self> {
        match payload {
            "revoked" => Some(Self::Revoked),
            "grants" => Some(Self::Grants),
            "relays" => Some(Self::Relays),
            other if other.starts_with("focus ") => {
                serde_json::from_str(&other[6..]).ok().map(Self::Focus)
            }
            other => other
                .strip_prefix("presence ")
                .filter(|h| !h.is_empty())
                .map(|h| Self::Presence(h.to_owned())),
        }
    }
}

/// Where notices take effect.
pub struct Targets {
    /// Wakes the sweeper.
    pub sweep: Arc<tokio::sync::Notify>,
    /// Marks cached grants stale.
    pub grants_changed: Box<dyn Fn() + Send>,
    /// The presence thread.
    pub presence: Sender<SyncJob>,
    /// Where hosts to re-read wait for it (coalesced).
    pub host_reloads: Arc<HostReloads>,
    /// Holds back notifications about a session a user's TUI shows.
    pub focus: Box<dyn Fn(FocusNotice) + Send>,
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Targets").finish_non_exhaustive()
    }
}

impl Targets {
    fn apply(&self, notice: Notice) {
        match notice {
            Notice::Revoked => self.sweep.notify_one(),
            Notice::Grants => (self.grants_changed)(),
            Notice::Presence(host) => {
                if self.host_reloads.note(host) {
                    let _ = self.presence.send(SyncJob::ReloadHosts);
                }
            }
            Notice::Relays => {
                let _ = self.presence.send(SyncJob::ReloadRelays);
            }
            Notice::Focus(focus) => (self.focus)(focus),
        }
    }

    /// After notices may have been missed: everything is treated as changed.
    fn everything(&self) {
        self.sweep.notify_one();
        (self.grants_changed)();
        let _ = self.presence.send(SyncJob::ReloadAll);
    }
}

/// Listens until `stop` is set (checked every [`WAIT`]). `listener` is the connection made at
/// start (so a relay that cannot listen does not start); later ones are made here.
pub fn run(config: &PgConfig, listener: PgListener, targets: &Targets, stop: &AtomicBool) {
    let mut listener = Some(listener);
    let mut quiet = 0u32;
    while !stop.load(Ordering::Acquire) {
        let Some(l) = listener.as_mut() else {
            match PgListener::connect(config) {
                Ok(l) => {
                    tracing::info!("listening to the fleet's notices again");
                    listener = Some(l);
                    targets.everything();
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot listen to the fleet's notices yet");
                    pause(stop);
                }
            }
            continue;
        };
        match l.wait(WAIT) {
            Ok(payloads) if payloads.is_empty() => {
                quiet += 1;
                if quiet >= PING_EVERY {
                    quiet = 0;
                    if let Err(e) = l.ping() {
                        lost(&mut listener, &e);
                    }
                }
            }
            Ok(payloads) => {
                quiet = 0;
                for notice in payloads.iter().filter_map(|p| Notice::parse(p)) {
                    targets.apply(notice);
                }
            }
            Err(e) => lost(&mut listener, &e),
        }
    }
}

fn lost(listener: &mut Option<PgListener>, e: &dyn std::fmt::Display) {
    tracing::warn!(error = %e, "lost the fleet's notice connection; reconnecting (until then, revocations by other relays act within the sweeper's poll)");
    *listener = None;
}

#[allow(
    clippy::disallowed_methods,
    reason = "the notice thread is a dedicated blocking thread (not the async runtime) waiting before it reconnects"
)]
fn pause(stop: &AtomicBool) {
    let until = std::time::Instant::now() + RETRY;
    while std::time::Instant::now() < until && !stop.load(Ordering::Acquire) {
        std::thread::sleep(WAIT.min(until.saturating_duration_since(std::time::Instant::now())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_and_unknown_ones_are_ignored() {
        assert_eq!(Notice::parse("revoked"), Some(Notice::Revoked));
        assert_eq!(Notice::parse("grants"), Some(Notice::Grants));
        assert_eq!(Notice::parse("relays"), Some(Notice::Relays));
        assert_eq!(
            Notice::parse("presence home-box"),
            Some(Notice::Presence("home-box".into()))
        );
        assert_eq!(Notice::parse("presence "), None);
        assert_eq!(Notice::parse("reboot"), None);
        let focus = FocusNotice {
            user: "alice".into(),
            host: "box".into(),
            workspace: "api".into(),
            session: "ses_1".into(),
        };
        assert_eq!(
            Notice::parse(&focus.payload()),
            Some(Notice::Focus(focus.clone()))
        );
        assert_eq!(Notice::parse("focus {not json"), None);
    }

    #[test]
    fn a_focus_notice_reaches_the_notifier() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let targets = Targets {
            sweep: Arc::new(tokio::sync::Notify::new()),
            grants_changed: Box::new(|| {}),
            presence: tx,
            host_reloads: Arc::default(),
            focus: Box::new(move |f| s.lock().unwrap().push(f.session)),
        };
        let focus = FocusNotice {
            user: "alice".into(),
            host: "box".into(),
            workspace: "api".into(),
            session: "ses_9".into(),
        };
        targets.apply(Notice::parse(&focus.payload()).unwrap());
        assert_eq!(*seen.lock().unwrap(), ["ses_9"]);
    }

    #[test]
    fn a_revocation_notice_wakes_the_sweeper_and_a_lost_connection_reloads_everything() {
        let (tx, rx) = std::sync::mpsc::channel();
        let grants = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let g = Arc::clone(&grants);
        let targets = Targets {
            sweep: Arc::new(tokio::sync::Notify::new()),
            grants_changed: Box::new(move || {
                g.fetch_add(1, Ordering::AcqRel);
            }),
            presence: tx,
            host_reloads: Arc::default(),
            focus: Box::new(|_| {}),
        };
        targets.apply(Notice::Revoked);
        // The permit is stored: the sweeper wakes even if it was busy when the notice came.
        let woke = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(30), targets.sweep.notified())
                    .await
                    .is_ok()
            });
        assert!(woke);
        targets.apply(Notice::Grants);
        assert_eq!(grants.load(Ordering::Acquire), 1);
        targets.everything();
        assert_eq!(grants.load(Ordering::Acquire), 2);
        assert!(matches!(rx.try_recv(), Ok(SyncJob::ReloadAll)));
    }

    #[test]
    fn a_flood_of_presence_notices_queues_one_job_and_each_host_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        let targets = Targets {
            sweep: Arc::new(tokio::sync::Notify::new()),
            grants_changed: Box::new(|| {}),
            presence: tx,
            host_reloads: Arc::default(),
            focus: Box::new(|_| {}),
        };
        for i in 0..5_000 {
            targets.apply(Notice::Presence(format!("box{}", i % 3)));
        }
        assert!(matches!(rx.try_recv(), Ok(SyncJob::ReloadHosts)));
        assert!(rx.try_recv().is_err(), "one job for the whole flood");
        let hosts = targets.host_reloads.take().unwrap();
        assert_eq!(
            hosts.into_iter().collect::<Vec<_>>(),
            ["box0", "box1", "box2"]
        );
        // Once taken, the next notice wakes the presence thread again.
        targets.apply(Notice::Presence("box0".into()));
        assert!(matches!(rx.try_recv(), Ok(SyncJob::ReloadHosts)));
        // Too many distinct hosts waiting: everything is re-read instead (bounded memory).
        for i in 0..=crate::fleet::presence_sync::MAX_PENDING_HOSTS {
            targets.apply(Notice::Presence(format!("h{i}")));
        }
        assert!(targets.host_reloads.take().is_none());
        assert!(rx.try_recv().is_err());
    }
}
