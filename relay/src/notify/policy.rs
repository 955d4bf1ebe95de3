//! The sans-IO notification policy: which notice goes to which channel, and when. Every
//! input carries the time (`now_ms`), so the rules are tested with an injected clock:
//! - opt-in per event, quiet hours, presence suppression (a TUI of the user showed the session
//!   within [`PolicyConfig::focus_fresh_ms`]) unless the channel ignores presence;
//! - coalescing: the notices of one session (per channel and event) within
//!   [`PolicyConfig::coalesce_ms`] of the first become one notification that says how many;
//! - rate limit: at most one notification per session, channel and event every
//!   [`PolicyConfig::min_interval_ms`] (what comes meanwhile is held and counted);
//! - retry: a failed delivery is tried again after the relay's usual capped exponential
//!   backoff with equal jitter (`cm_client::backoff`, the random draw passed in), up to
//!   [`PolicyConfig::max_attempts`].

use cm_client::backoff;
use proto::notify::{AttentionKind, ChannelSpec, NotifyEvent};
use std::collections::HashMap;
use std::time::Duration;

/// Retries of a failed delivery: 1 s doubling to 5 min, each drawn in the upper half of its
/// ceiling so that the deliveries that failed together do not retry together.
pub const RETRY: backoff::Policy = backoff::Policy {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(300),
    // Unused: a notification's attempts are never reset.
    stable_after: Duration::MAX,
    first_retry_immediate: false,
    jitter: backoff::Jitter::Equal,
};

/// The policy's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Notices within this long of a session's first one are sent together.
    pub coalesce_ms: u64,
    /// Shortest time between two notifications of one session, channel and event.
    pub min_interval_ms: u64,
    /// A focus signal suppresses notifications about its session this long.
    pub focus_fresh_ms: u64,
    /// When a failed delivery is tried again.
    pub retry: backoff::Policy,
    /// Attempts of one notification before it is given up.
    pub max_attempts: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            coalesce_ms: 1_000,
            min_interval_ms: 30_000,
            focus_fresh_ms: 30_000,
            retry: RETRY,
            max_attempts: 6,
        }
    }
}

/// One user's channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Recipient {
    /// The user.
    pub user: String,
    /// Their channel's name.
    pub channel: String,
}

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum What {
    /// An agent's attention notice.
    Attention(AttentionKind),
    /// The host has been offline this many minutes.
    HostOffline {
        /// Minutes offline.
        minutes: u64,
    },
}

impl What {
    /// The event a channel opts in to for it.
    pub fn event(self) -> Option<NotifyEvent> {
        match self {
            Self::Attention(kind) => NotifyEvent::of(kind),
            Self::HostOffline { .. } => Some(NotifyEvent::Offline),
        }
    }
}

/// Something to tell a user about (metadata only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The host.
    pub host: String,
    /// The workspace (empty for a host event).
    pub workspace: String,
    /// The session, where there is one.
    pub session: Option<String>,
    /// The session's title (relay-trusted hosts only).
    pub title: Option<String>,
    /// What.
    pub what: What,
    /// The request waiting (`per_…`, `que_…`).
    pub request: Option<String>,
}

/// Why a notice was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// The channel does not get this event.
    NotOptedIn,
    /// The channel's quiet hours.
    QuietHours,
    /// The user's TUI shows the session.
    Present,
}

/// A notification to deliver now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// To whom.
    pub to: Recipient,
    /// The newest notice it stands for.
    pub notice: Notice,
    /// How many notices it stands for.
    pub count: u32,
    /// 1 for the first try.
    pub attempt: u32,
}

/// What became of a delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Delivered.
    Delivered,
    /// Failed; tried again at this time.
    RetryAt(u64),
    /// Failed too often; dropped.
    GaveUp,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    to: Recipient,
    host: String,
    workspace: String,
    session: Option<String>,
    event: NotifyEvent,
}

#[derive(Debug)]
struct Pending {
    notice: Notice,
    count: u32,
    send_at: u64,
}

#[derive(Debug, Default)]
struct Window {
    pending: Option<Pending>,
    last_sent_ms: Option<u64>,
}

/// The policy's state.
#[derive(Debug, Default)]
pub struct Policy {
    config: PolicyConfig,
    windows: HashMap<Key, Window>,
    /// (user, host, workspace, session) → last focus signal.
    focus: HashMap<(String, String, String, String), u64>,
    retries: Vec<(u64, Outgoing)>,
}

impl Policy {
    /// A policy with `config`.
    pub fn new(config: PolicyConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// A TUI of `user` shows this session now.
    pub fn focus(&mut self, user: &str, host: &str, workspace: &str, session: &str, now_ms: u64) {
        let fresh = self.config.focus_fresh_ms;
        self.focus
            .retain(|_, at| now_ms.saturating_sub(*at) < fresh);
        self.focus.insert(
            (user.into(), host.into(), workspace.into(), session.into()),
            now_ms,
        );
    }

    fn present(&self, user: &str, notice: &Notice, now_ms: u64) -> bool {
        let Some(session) = &notice.session else {
            return false;
        };
        let key = (
            user.to_owned(),
            notice.host.clone(),
            notice.workspace.clone(),
            session.clone(),
        );
        self.focus
            .get(&key)
            .is_some_and(|at| now_ms.saturating_sub(*at) < self.config.focus_fresh_ms)
    }

    /// Offers `notice` to `to`'s channel `spec`: held for sending (coalesced with what the
    /// session already has waiting), or suppressed and why.
    ///
    /// # Errors
    /// The reason it is not sent.
    pub fn offer(
        &mut self,
        to: Recipient,
        spec: &ChannelSpec,
        notice: Notice,
        now_ms: u64,
    ) -> Result<(), Suppressed> {
        let Some(event) = notice.what.event().filter(|e| spec.wants(*e)) else {
            return Err(Suppressed::NotOptedIn);
        };
        if spec.quiet.is_some_and(|q| q.contains(now_ms)) {
            return Err(Suppressed::QuietHours);
        }
        if !spec.ignore_presence && self.present(&to.user, &notice, now_ms) {
            return Err(Suppressed::Present);
        }
        let key = Key {
            to,
            host: notice.host.clone(),
            workspace: notice.workspace.clone(),
            session: notice.session.clone(),
            event,
        };
        let window = self.windows.entry(key).or_default();
        match &mut window.pending {
            Some(p) => {
                p.count = p.count.saturating_add(1);
                p.notice = notice;
            }
            None => {
                let earliest = window
                    .last_sent_ms
                    .map_or(0, |t| t.saturating_add(self.config.min_interval_ms));
                window.pending = Some(Pending {
                    notice,
                    count: 1,
                    send_at: earliest.max(now_ms.saturating_add(self.config.coalesce_ms)),
                });
            }
        }
        Ok(())
    }

    /// The notifications due at `now_ms` (coalescing windows that closed, retries whose time
    /// came).
    pub fn due(&mut self, now_ms: u64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for (key, window) in &mut self.windows {
            if window.pending.as_ref().is_some_and(|p| p.send_at <= now_ms)
                && let Some(p) = window.pending.take()
            {
                window.last_sent_ms = Some(now_ms);
                out.push(Outgoing {
                    to: key.to.clone(),
                    notice: p.notice,
                    count: p.count,
                    attempt: 1,
                });
            }
        }
        let interval = self.config.min_interval_ms;
        self.windows.retain(|_, w| {
            w.pending.is_some()
                || w.last_sent_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) < interval)
        });
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|(at, _)| *at <= now_ms);
        self.retries = later;
        out.extend(ready.into_iter().map(|(_, o)| o));
        out.sort_by(|a, b| a.to.cmp(&b.to));
        out
    }

    /// The earliest time something will be due, if anything waits.
    pub fn next_due(&self) -> Option<u64> {
        let windows = self
            .windows
            .values()
            .filter_map(|w| w.pending.as_ref().map(|p| p.send_at));
        windows.chain(self.retries.iter().map(|(at, _)| *at)).min()
    }

    /// The delay before retry `attempt + 1` after attempt `attempt` failed; `random` is a
    /// uniform draw.
    pub fn backoff_ms(&self, attempt: u32, random: u64) -> u64 {
        let delay = self.config.retry.delay(attempt.saturating_sub(1), random);
        u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
    }

    /// Records how delivering `out` went: a failure is retried after a backoff (drawn with
    /// `random`), or given up after [`PolicyConfig::max_attempts`].
    pub fn finished(&mut self, mut out: Outgoing, ok: bool, now_ms: u64, random: u64) -> Finished {
        if ok {
            return Finished::Delivered;
        }
        if out.attempt >= self.config.max_attempts {
            return Finished::GaveUp;
        }
        let at = now_ms.saturating_add(self.backoff_ms(out.attempt, random));
        out.attempt += 1;
        self.retries.push((at, out));
        Finished::RetryAt(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::notify::{ChannelTarget, QuietHours};

    fn spec() -> ChannelSpec {
        ChannelSpec {
            name: "phone".into(),
            target: ChannelTarget::Ntfy {
                server: "http://127.0.0.1:1".into(),
                topic: "t".into(),
            },
            secret: None,
            events: vec![],
            quiet: None,
            ignore_presence: false,
        }
    }

    fn to() -> Recipient {
        Recipient {
            user: "alice".into(),
            channel: "phone".into(),
        }
    }

    fn permission(session: &str, request: &str) -> Notice {
        Notice {
            host: "box".into(),
            workspace: "api".into(),
            session: Some(session.into()),
            title: None,
            what: What::Attention(AttentionKind::PermissionWaiting),
            request: Some(request.into()),
        }
    }

    #[test]
    fn ten_permission_requests_in_one_second_make_one_notification_saying_ten() {
        let mut p = Policy::new(PolicyConfig::default());
        for i in 0..10u64 {
            let t = 1_000_000 + i * 90;
            p.offer(to(), &spec(), permission("ses_1", &format!("per_{i}")), t)
                .unwrap();
            assert!(p.due(t).is_empty(), "nothing before the window closes");
        }
        let out = p.due(1_001_000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].count, 10);
        assert_eq!(out[0].notice.request.as_deref(), Some("per_9"));
        assert!(p.due(2_000_000).is_empty(), "sent once");
    }

    #[test]
    fn sessions_and_channels_are_coalesced_separately() {
        let mut p = Policy::new(PolicyConfig::default());
        let hook = Recipient {
            user: "alice".into(),
            channel: "hook".into(),
        };
        p.offer(to(), &spec(), permission("ses_1", "per_1"), 0)
            .unwrap();
        p.offer(to(), &spec(), permission("ses_2", "per_2"), 0)
            .unwrap();
        p.offer(hook, &spec(), permission("ses_1", "per_1"), 0)
            .unwrap();
        let out = p.due(1_000);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|o| o.count == 1));
    }

    #[test]
    fn a_session_gets_at_most_one_notification_per_interval_and_the_rest_is_counted() {
        let config = PolicyConfig::default();
        let mut p = Policy::new(config);
        p.offer(to(), &spec(), permission("ses_1", "per_1"), 0)
            .unwrap();
        assert_eq!(p.due(1_000).len(), 1);
        p.offer(to(), &spec(), permission("ses_1", "per_2"), 2_000)
            .unwrap();
        p.offer(to(), &spec(), permission("ses_1", "per_3"), 5_000)
            .unwrap();
        assert!(p.due(10_000).is_empty(), "rate limited");
        assert_eq!(p.next_due(), Some(1_000 + config.min_interval_ms));
        let out = p.due(1_000 + config.min_interval_ms);
        assert_eq!((out.len(), out[0].count), (1, 2));
    }

    #[test]
    fn events_a_channel_did_not_opt_in_to_are_not_sent() {
        let mut p = Policy::new(PolicyConfig::default());
        let mut finished = permission("ses_1", "x");
        finished.what = What::Attention(AttentionKind::TurnFinished);
        // The default events leave out finished turns.
        assert_eq!(
            p.offer(to(), &spec(), finished.clone(), 0),
            Err(Suppressed::NotOptedIn)
        );
        let mut only_finished = spec();
        only_finished.events = vec![NotifyEvent::Finished];
        assert_eq!(p.offer(to(), &only_finished, finished, 0), Ok(()));
        assert_eq!(
            p.offer(to(), &only_finished, permission("ses_1", "per_1"), 0),
            Err(Suppressed::NotOptedIn)
        );
        let mut unknown = permission("ses_1", "x");
        unknown.what = What::Attention(AttentionKind::Unknown);
        assert_eq!(
            p.offer(to(), &spec(), unknown, 0),
            Err(Suppressed::NotOptedIn)
        );
    }

    #[test]
    fn quiet_hours_hold_back_notifications() {
        let mut p = Policy::new(PolicyConfig::default());
        let mut quiet = spec();
        quiet.quiet = Some(QuietHours::parse("22:00-07:00", 0).unwrap());
        let at = |h: u64| h * 3_600_000;
        assert_eq!(
            p.offer(to(), &quiet, permission("ses_1", "per_1"), at(23)),
            Err(Suppressed::QuietHours)
        );
        assert_eq!(
            p.offer(to(), &quiet, permission("ses_1", "per_1"), at(3)),
            Err(Suppressed::QuietHours)
        );
        assert!(p.due(at(24)).is_empty());
        assert_eq!(
            p.offer(to(), &quiet, permission("ses_1", "per_1"), at(12)),
            Ok(())
        );
    }

    #[test]
    fn a_focused_session_is_not_notified_unless_the_channel_ignores_presence() {
        let config = PolicyConfig::default();
        let mut p = Policy::new(config);
        p.focus("alice", "box", "api", "ses_1", 10_000);
        assert_eq!(
            p.offer(to(), &spec(), permission("ses_1", "per_1"), 10_500),
            Err(Suppressed::Present)
        );
        // Another session, another user's focus: not suppressed.
        assert_eq!(
            p.offer(to(), &spec(), permission("ses_2", "per_2"), 10_500),
            Ok(())
        );
        p.focus("bob", "box", "api", "ses_3", 10_000);
        assert_eq!(
            p.offer(to(), &spec(), permission("ses_3", "per_3"), 10_500),
            Ok(())
        );
        // The override.
        let mut loud = spec();
        loud.ignore_presence = true;
        assert_eq!(
            p.offer(to(), &loud, permission("ses_1", "per_1"), 10_500),
            Ok(())
        );
        // A stale focus no longer counts.
        let later = 10_000 + config.focus_fresh_ms;
        let mut p = Policy::new(config);
        p.focus("alice", "box", "api", "ses_1", 10_000);
        assert_eq!(
            p.offer(to(), &spec(), permission("ses_1", "per_1"), later),
            Ok(())
        );
    }

    #[test]
    fn a_failed_delivery_is_retried_with_exponential_backoff_then_given_up() {
        let config = PolicyConfig {
            max_attempts: 4,
            ..PolicyConfig::default()
        };
        let mut p = Policy::new(config);
        p.offer(to(), &spec(), permission("ses_1", "per_1"), 0)
            .unwrap();
        let mut now = 1_000;
        let mut out = p.due(now).pop().unwrap();
        let mut delays = Vec::new();
        let mut last_attempt;
        loop {
            last_attempt = out.attempt;
            // The lowest draw: half of each ceiling (1 s, 2 s, 4 s).
            match p.finished(out, false, now, 0) {
                Finished::RetryAt(at) => {
                    delays.push(at - now);
                    assert!(p.due(at - 1).is_empty());
                    now = at;
                    out = p.due(now).pop().unwrap();
                }
                Finished::GaveUp => break,
                Finished::Delivered => unreachable!(),
            }
        }
        assert_eq!(delays, [500, 1_000, 2_000]);
        assert_eq!(last_attempt, 4);
        assert!(p.due(u64::MAX).is_empty());
        // Jittered within the upper half of the ceiling, and capped.
        for random in [0, 1, 12_345, u64::MAX] {
            let d = p.backoff_ms(3, random);
            assert!((2_000..=4_000).contains(&d), "{d}");
            let capped = p.backoff_ms(40, random);
            assert!((150_000..=300_000).contains(&capped), "{capped}");
        }
        p.offer(to(), &spec(), permission("ses_2", "per_2"), now)
            .unwrap();
        let out = p.due(now + 1_000).pop().unwrap();
        assert_eq!(p.finished(out, true, now, 0), Finished::Delivered);
        assert_eq!(p.next_due(), None);
    }
}
