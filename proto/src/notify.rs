//! Notifications the relay sends (issue #22): what an agent tells the relay needs a human
//! ([`Attention`], metadata only: never prompt text or code), the channels a user subscribes
//! (`notify_add|list|test|remove`) and the TUI's presence signal (`notify_focus`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// What needs a human, as an agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    /// A permission request waits for an answer.
    PermissionWaiting,
    /// A question of the model waits for an answer.
    QuestionWaiting,
    /// A turn ended (the session is idle).
    TurnFinished,
    /// A turn failed.
    TurnFailed,
    /// The workspace's OpenCode crashed (it is restarted).
    OpencodeCrashed,
    /// The workspace's OpenCode crashed too often; the agent gave up restarting it.
    OpencodeGaveUp,
    /// A kind this build does not know (from a newer agent).
    #[serde(other)]
    Unknown,
}

/// Agent → relay, on the control stream: something in a workspace needs a human. Metadata
/// only; the title is sent by relay-trusted hosts only (a zero-trust host sends none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    /// The workspace.
    pub workspace: String,
    /// The session, where the event has one.
    #[serde(default)]
    pub session: Option<String>,
    /// The session's title (relay-trusted hosts only).
    #[serde(default)]
    pub title: Option<String>,
    /// What waits or happened.
    pub kind: AttentionKind,
    /// The permission or question request id (`per_…`, `que_…`).
    #[serde(default)]
    pub request: Option<String>,
}

/// The events a channel can opt in to (`--events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A permission request waits.
    Permission,
    /// A question waits.
    Question,
    /// A turn finished.
    Finished,
    /// A turn failed.
    Failed,
    /// OpenCode crashed or the agent gave up on it.
    Crashed,
    /// A host was offline longer than the relay's threshold.
    Offline,
}

impl NotifyEvent {
    /// Every event, in order.
    pub const ALL: [Self; 6] = [
        Self::Permission,
        Self::Question,
        Self::Finished,
        Self::Failed,
        Self::Crashed,
        Self::Offline,
    ];

    /// The name in `--events` and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permission => "permission",
            Self::Question => "question",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::Crashed => "crashed",
            Self::Offline => "offline",
        }
    }

    /// The event named `s`.
    ///
    /// # Errors
    /// A name that is none of [`NotifyEvent::ALL`], with the list.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|e| e.as_str()).collect();
                format!("unknown event {s:?}: use {}", names.join(", "))
            })
    }

    /// The event an attention kind belongs to (`None` for unknown kinds).
    pub fn of(kind: AttentionKind) -> Option<Self> {
        Some(match kind {
            AttentionKind::PermissionWaiting => Self::Permission,
            AttentionKind::QuestionWaiting => Self::Question,
            AttentionKind::TurnFinished => Self::Finished,
            AttentionKind::TurnFailed => Self::Failed,
            AttentionKind::OpencodeCrashed | AttentionKind::OpencodeGaveUp => Self::Crashed,
            AttentionKind::Unknown => return None,
        })
    }
}

/// The events a channel gets when it names none: what waits for an answer and what broke.
pub const DEFAULT_EVENTS: [NotifyEvent; 5] = [
    NotifyEvent::Permission,
    NotifyEvent::Question,
    NotifyEvent::Failed,
    NotifyEvent::Crashed,
    NotifyEvent::Offline,
];

/// Quiet hours: no notification from `start` to `end` (minutes after midnight, at
/// `utc_offset_min` from UTC); `start > end` spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// First quiet minute of the day.
    pub start_min: u16,
    /// First minute no longer quiet.
    pub end_min: u16,
    /// The user's clock's offset from UTC, in minutes.
    #[serde(default)]
    pub utc_offset_min: i16,
}

impl QuietHours {
    /// Parses `HH:MM-HH:MM` (`22:00-07:00`), at `utc_offset_min`.
    ///
    /// # Errors
    /// Anything else, with what to write.
    pub fn parse(s: &str, utc_offset_min: i16) -> Result<Self, String> {
        let bad = || format!("quiet hours {s:?}: write HH:MM-HH:MM, e.g. 22:00-07:00");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let minute = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (start_min, end_min) = (minute(a).ok_or_else(bad)?, minute(b).ok_or_else(bad)?);
        if start_min == end_min {
            return Err(format!(
                "quiet hours {s:?}: start and end are the same minute"
            ));
        }
        Ok(Self {
            start_min,
            end_min,
            utc_offset_min,
        })
    }

    /// Checks hours that arrived as JSON (not through [`QuietHours::parse`]).
    ///
    /// # Errors
    /// A minute past the day, equal start and end, or an offset beyond ±14 h.
    pub fn check(&self) -> Result<(), String> {
        const DAY: u16 = 24 * 60;
        if self.start_min >= DAY || self.end_min >= DAY {
            return Err(format!(
                "quiet hours: start_min and end_min are minutes of the day (0-{}), got {} and {}",
                DAY - 1,
                self.start_min,
                self.end_min
            ));
        }
        if self.start_min == self.end_min {
            return Err("quiet hours: start and end are the same minute".into());
        }
        if self.utc_offset_min.unsigned_abs() > MAX_UTC_OFFSET_MIN {
            return Err(format!(
                "quiet hours: UTC offset {} min is beyond ±14:00",
                self.utc_offset_min
            ));
        }
        Ok(())
    }

    /// Whether unix time `now_ms` is quiet.
    pub fn contains(&self, now_ms: u64) -> bool {
        let day_min = (now_ms / 60_000) as i64 + i64::from(self.utc_offset_min);
        let m = u16::try_from(day_min.rem_euclid(24 * 60)).unwrap_or(0);
        if self.start_min < self.end_min {
            (self.start_min..self.end_min).contains(&m)
        } else {
            m >= self.start_min || m < self.end_min
        }
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start_min / 60,
            self.start_min % 60,
            self.end_min / 60,
            self.end_min % 60
        )?;
        if self.utc_offset_min != 0 {
            let (sign, off) = if self.utc_offset_min < 0 {
                ('-', -i32::from(self.utc_offset_min))
            } else {
                ('+', i32::from(self.utc_offset_min))
            };
            write!(f, " UTC{sign}{:02}:{:02}", off / 60, off % 60)?;
        }
        Ok(())
    }
}

/// Where a channel delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelTarget {
    /// An ntfy topic: HTTP POST of the text to `server/topic`.
    Ntfy {
        /// `https://ntfy.sh` or a self-hosted server.
        server: String,
        /// The topic.
        topic: String,
    },
    /// A generic webhook: HTTP POST of a JSON body signed with HMAC-SHA256.
    Webhook {
        /// The URL.
        url: String,
    },
    /// A kind this build does not know (written by a newer relay), or a channel the relay
    /// cannot read: listed, never delivered to, never accepted from a user.
    #[serde(other)]
    Unknown,
}

impl ChannelTarget {
    /// `ntfy`, `webhook` or `unknown`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ntfy { .. } => "ntfy",
            Self::Webhook { .. } => "webhook",
            Self::Unknown => "unknown",
        }
    }

    /// Where it delivers, without any secret (for lists).
    pub fn describe(&self) -> String {
        match self {
            Self::Ntfy { server, topic } => format!("{}/{topic}", server.trim_end_matches('/')),
            Self::Webhook { url } => url.clone(),
            Self::Unknown => "(unreadable by this relay)".into(),
        }
    }
}

/// A channel as a user subscribes it (`notify_add`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSpec {
    /// The user's name for it (`phone`, `team-hook`).
    pub name: String,
    /// Where it delivers.
    pub target: ChannelTarget,
    /// The ntfy bearer token or the webhook's HMAC key. Stored by the relay, never shown or
    /// audited.
    #[serde(default)]
    pub secret: Option<String>,
    /// The events it gets (empty: [`DEFAULT_EVENTS`]).
    #[serde(default)]
    pub events: Vec<NotifyEvent>,
    /// Quiet hours.
    #[serde(default)]
    pub quiet: Option<QuietHours>,
    /// Notify even while a TUI of the user has the session on screen.
    #[serde(default)]
    pub ignore_presence: bool,
}

impl ChannelSpec {
    /// The events it gets, with the default for none.
    pub fn effective_events(&self) -> Vec<NotifyEvent> {
        if self.events.is_empty() {
            DEFAULT_EVENTS.to_vec()
        } else {
            self.events.clone()
        }
    }

    /// Whether it gets `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.effective_events().contains(&event)
    }
}

/// A channel as `notify_list` shows it: no secret, and how its deliveries went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// The name.
    pub name: String,
    /// Where it delivers.
    pub target: ChannelTarget,
    /// Whether a token or key is stored.
    pub has_secret: bool,
    /// The events it gets.
    pub events: Vec<NotifyEvent>,
    /// Quiet hours.
    #[serde(default)]
    pub quiet: Option<QuietHours>,
    /// Notifies even while the session is on screen.
    #[serde(default)]
    pub ignore_presence: bool,
    /// Notifications delivered.
    #[serde(default)]
    pub delivered: u64,
    /// The last delivery, unix ms.
    #[serde(default)]
    pub last_ok_ms: Option<u64>,
    /// The last failed attempt, unix ms.
    #[serde(default)]
    pub last_error_ms: Option<u64>,
    /// What the last failed attempt said.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Failed attempts since the last delivery.
    #[serde(default)]
    pub failures: u32,
}

/// Names one of the caller's channels (`notify_test`, `notify_remove`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelName {
    /// The name.
    pub name: String,
}

/// What `notify_test` did: the test notification went out, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyTested {
    /// Whether the receiver accepted it.
    pub delivered: bool,
    /// Why not.
    #[serde(default)]
    pub error: Option<String>,
}

/// TUI → relay (`notify_focus`), every few seconds while a session is on screen and the
/// terminal has focus: no notification about it for the user meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Focus {
    /// The host.
    pub host: String,
    /// The workspace.
    pub workspace: String,
    /// The session.
    pub session: String,
}

/// Longest channel name, in bytes.
pub const MAX_CHANNEL_NAME: usize = 64;
/// Longest URL, server or topic, in bytes.
pub const MAX_TARGET_LEN: usize = 512;
/// Most channels per user.
pub const MAX_CHANNELS: usize = 16;
/// Longest token or signing secret, in bytes.
pub const MAX_SECRET_LEN: usize = 1024;
/// Largest offset from UTC a clock has (UTC+14:00, Kiribati), in minutes.
pub const MAX_UTC_OFFSET_MIN: u16 = 14 * 60;

fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_CHANNEL_NAME
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks a spec a user sends: a short name, `http(s)://` URLs of bounded length, a topic,
/// a secret that fits in a header, valid quiet hours. (The relay also parses the URL and
/// checks where it points before it stores the channel.)
///
/// # Errors
/// What is wrong and what to write instead.
pub fn check_spec(spec: &ChannelSpec) -> Result<(), String> {
    if !is_plain_name(&spec.name) {
        return Err(format!(
            "channel name {:?}: use 1-{MAX_CHANNEL_NAME} letters, digits, - or _",
            spec.name
        ));
    }
    let url_ok = |u: &str| {
        u.len() <= MAX_TARGET_LEN
            && (u.starts_with("https://") || u.starts_with("http://"))
            && !u.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    match &spec.target {
        ChannelTarget::Ntfy { server, topic } => {
            if !url_ok(server) {
                return Err(format!(
                    "ntfy server {server:?}: give an http(s):// URL, e.g. https://ntfy.sh"
                ));
            }
            if !is_plain_name(topic) {
                return Err(format!(
                    "ntfy topic {topic:?}: use 1-{MAX_CHANNEL_NAME} letters, digits, - or _"
                ));
            }
        }
        ChannelTarget::Webhook { url } => {
            if !url_ok(url) {
                return Err(format!("webhook URL {url:?}: give an http(s):// URL"));
            }
            if spec.secret.as_deref().is_none_or(str::is_empty) {
                return Err(
                    "a webhook needs a signing secret: pass --secret-env VAR naming an environment variable that holds it".into(),
                );
            }
        }
        ChannelTarget::Unknown => {
            return Err("unknown channel kind: use ntfy or webhook".into());
        }
    }
    if let Some(secret) = &spec.secret {
        // An ntfy token travels in a header: printable ASCII only, so it can never split one.
        let header = matches!(spec.target, ChannelTarget::Ntfy { .. });
        let fits = |c: char| {
            if header {
                c.is_ascii_graphic()
            } else {
                !c.is_control()
            }
        };
        if secret.len() > MAX_SECRET_LEN || !secret.chars().all(fits) {
            return Err(format!(
                "the {} must be at most {MAX_SECRET_LEN} bytes of {} (e.g. from `openssl rand -hex 32`)",
                if header { "token" } else { "secret" },
                if header {
                    "printable ASCII without spaces"
                } else {
                    "text without control characters"
                }
            ));
        }
    }
    if let Some(quiet) = &spec.quiet {
        quiet.check()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_span_midnight_at_an_offset() {
        let q = QuietHours::parse("22:00-07:00", 60).unwrap();
        let at = |h: u64, m: u64| (h * 60 + m) * 60_000;
        // 21:30 UTC is 22:30 at UTC+1: quiet. 05:59 UTC is 06:59 local: quiet. 06:00 UTC: not.
        assert!(q.contains(at(21, 30)));
        assert!(q.contains(at(5, 59)));
        assert!(!q.contains(at(6, 0)));
        assert!(!q.contains(at(12, 0)));
        assert_eq!(q.to_string(), "22:00-07:00 UTC+01:00");
        let day = QuietHours::parse("09:00-17:00", 0).unwrap();
        assert!(day.contains(at(9, 0)) && !day.contains(at(17, 0)));
        assert!(QuietHours::parse("25:00-07:00", 0).is_err());
        assert!(QuietHours::parse("22:00", 0).is_err());
    }

    #[test]
    fn attention_golden_json_and_unknown_kinds() {
        let a = Attention {
            workspace: "api".into(),
            session: Some("ses_1".into()),
            title: None,
            kind: AttentionKind::PermissionWaiting,
            request: Some("per_1".into()),
        };
        let json = r#"{"workspace":"api","session":"ses_1","title":null,"kind":"permission_waiting","request":"per_1"}"#;
        assert_eq!(serde_json::to_string(&a).unwrap(), json);
        let future: Attention =
            serde_json::from_str(r#"{"workspace":"w","kind":"teleported"}"#).unwrap();
        assert_eq!(future.kind, AttentionKind::Unknown);
        assert_eq!(NotifyEvent::of(future.kind), None);
    }

    #[test]
    fn specs_are_checked() {
        let mut spec = ChannelSpec {
            name: "phone".into(),
            target: ChannelTarget::Ntfy {
                server: "https://ntfy.sh".into(),
                topic: "cm-alerts".into(),
            },
            secret: None,
            events: vec![],
            quiet: None,
            ignore_presence: false,
        };
        assert_eq!(check_spec(&spec), Ok(()));
        assert!(spec.wants(NotifyEvent::Permission) && !spec.wants(NotifyEvent::Finished));
        spec.name = "a b".into();
        assert!(check_spec(&spec).is_err());
        spec.name = "hook".into();
        spec.target = ChannelTarget::Webhook {
            url: "file:///etc/passwd".into(),
        };
        assert!(check_spec(&spec).unwrap_err().contains("http"));
        spec.target = ChannelTarget::Webhook {
            url: "https://example.com/h".into(),
        };
        assert!(check_spec(&spec).unwrap_err().contains("--secret-env"));
        assert_eq!(NotifyEvent::parse("offline"), Ok(NotifyEvent::Offline));
        spec.secret = Some("k".into());
        assert_eq!(check_spec(&spec), Ok(()));
        spec.secret = Some("line\r\nX-Evil: 1".into());
        assert!(check_spec(&spec).unwrap_err().contains("control"));
        spec.secret = Some("k".repeat(MAX_SECRET_LEN + 1));
        assert!(check_spec(&spec).unwrap_err().contains("at most"));
        spec.secret = Some("k".into());
        spec.target = ChannelTarget::Unknown;
        assert!(check_spec(&spec).unwrap_err().contains("ntfy or webhook"));
    }

    #[test]
    fn an_ntfy_token_must_fit_in_a_header_and_quiet_hours_from_json_are_checked() {
        let mut spec = ChannelSpec {
            name: "phone".into(),
            target: ChannelTarget::Ntfy {
                server: "https://ntfy.sh".into(),
                topic: "t".into(),
            },
            secret: Some("tk_ok".into()),
            events: vec![],
            quiet: None,
            ignore_presence: false,
        };
        assert_eq!(check_spec(&spec), Ok(()));
        spec.secret = Some("tk with space".into());
        assert!(check_spec(&spec).unwrap_err().contains("printable ASCII"));
        spec.secret = None;
        let bad = [
            (
                QuietHours {
                    start_min: 1440,
                    end_min: 60,
                    utc_offset_min: 0,
                },
                "minutes of the day",
            ),
            (
                QuietHours {
                    start_min: 60,
                    end_min: 60,
                    utc_offset_min: 0,
                },
                "same minute",
            ),
            (
                QuietHours {
                    start_min: 0,
                    end_min: 60,
                    utc_offset_min: 15 * 60,
                },
                "14:00",
            ),
        ];
        for (quiet, says) in bad {
            spec.quiet = Some(quiet);
            let err = check_spec(&spec).unwrap_err();
            assert!(err.contains(says), "{quiet:?}: {err}");
        }
        spec.quiet = Some(QuietHours {
            start_min: 1320,
            end_min: 420,
            utc_offset_min: -300,
        });
        assert_eq!(check_spec(&spec), Ok(()));
    }

    #[test]
    fn a_channel_kind_from_a_newer_relay_reads_as_unknown() {
        let spec: ChannelSpec = serde_json::from_str(
            r#"{"name":"mail","target":{"kind":"carrier_pigeon","loft":"x"}}"#,
        )
        .unwrap();
        assert_eq!(spec.target, ChannelTarget::Unknown);
        assert_eq!(spec.target.kind(), "unknown");
        assert!(NotifyEvent::parse("x").unwrap_err().contains("permission"));
    }
}
