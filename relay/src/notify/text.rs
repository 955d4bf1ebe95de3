//! The words of a notification: host, workspace, session title and what waits, plus the exact
//! `cm-tui` command that answers it. Never prompt text or code: a [`Notice`] carries none.
//! Names are checked ids (see `notify::accept_attention`), so the command is safe to paste.

use super::policy::{Notice, What};
use proto::notify::AttentionKind;

/// Longest session title shown, in characters.
pub const MAX_TITLE_CHARS: usize = 80;

/// A notification, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One short line (`box/api: permission waiting`).
    pub title: String,
    /// The text: what and where, then the command.
    pub message: String,
    /// The `cm-tui` command that answers it, if one does.
    pub command: Option<String>,
    /// The event name (`permission`, …).
    pub event: &'static str,
}

fn plural(count: u32, one: &str, many: &str) -> String {
    if count == 1 {
        one.to_owned()
    } else {
        format!("{count} {many}")
    }
}

/// `cm-tui messages` for `session`, or the session list when the notice names none.
fn session_command(h: &str, w: &str, session: Option<&str>) -> Option<String> {
    Some(match session {
        Some(s) => format!("cm-tui messages {h} {w} {s} --limit 5"),
        None => format!("cm-tui sessions {h} {w}"),
    })
}

/// Renders `notice`, which stands for `count` notices.
pub fn render(notice: &Notice, count: u32) -> Rendered {
    let (h, w) = (&notice.host, &notice.workspace);
    let session = notice.session.as_deref();
    let (what, command) = match notice.what {
        What::Attention(AttentionKind::PermissionWaiting) => (
            plural(
                count,
                "a permission request waits",
                "permission requests wait",
            ),
            Some(match notice.request.as_deref() {
                Some(request) if count == 1 => format!(
                    "cm-tui approve {h} {w} {request}   (or: cm-tui reject {h} {w} {request})"
                ),
                _ => format!("cm-tui permissions {h} {w}"),
            }),
        ),
        What::Attention(AttentionKind::QuestionWaiting) => (
            plural(count, "a question waits", "questions wait"),
            Some(match notice.request.as_deref() {
                Some(request) if count == 1 => format!(
                    "cm-tui answer {h} {w} {request} ANSWER   (cm-tui permissions {h} {w} shows it)"
                ),
                _ => format!("cm-tui permissions {h} {w}"),
            }),
        ),
        What::Attention(AttentionKind::TurnFinished) => (
            plural(count, "a turn finished", "turns finished"),
            session_command(h, w, session),
        ),
        What::Attention(AttentionKind::TurnFailed) => (
            plural(count, "a turn failed", "turns failed"),
            session_command(h, w, session),
        ),
        What::Attention(AttentionKind::OpencodeCrashed) => (
            plural(count, "OpenCode crashed (restarting)", "OpenCode crashes"),
            Some(format!("cm-tui opencode {h} {w} status")),
        ),
        What::Attention(AttentionKind::OpencodeGaveUp) => (
            "OpenCode kept crashing; the agent gave up restarting it".to_owned(),
            Some(format!("cm-tui opencode {h} {w} start")),
        ),
        What::Attention(AttentionKind::Unknown) => ("something needs you".to_owned(), None),
        What::HostOffline { minutes } => (
            format!("the host has been offline for {minutes} min"),
            Some("cm-tui hosts".to_owned()),
        ),
    };
    let event = notice.what.event().map_or("unknown", |e| e.as_str());
    let place = if w.is_empty() {
        h.clone()
    } else {
        format!("{h}/{w}")
    };
    let title = format!("{place}: {what}");
    let mut message = String::new();
    if let Some(t) = notice.title.as_deref().filter(|t| !t.trim().is_empty()) {
        message.push_str(&format!(
            "Session \"{}\"",
            proto::text::sanitize_capped(t, MAX_TITLE_CHARS)
        ));
    } else if let Some(session) = session {
        message.push_str(&format!("Session {session}"));
    } else {
        message.push_str("Host");
    }
    message.push_str(&format!(" on {place}: {what}."));
    if let Some(c) = &command {
        message.push_str(&format!("\n{c}"));
    }
    Rendered {
        title,
        message,
        command,
        event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(what: What) -> Notice {
        Notice {
            host: "home-box".into(),
            workspace: "api".into(),
            session: Some("ses_1".into()),
            title: Some("Fix the login\u{1b}[2J page".into()),
            what,
            request: Some("per_9".into()),
        }
    }

    #[test]
    fn a_permission_notification_carries_the_exact_approve_command() {
        let r = render(
            &notice(What::Attention(AttentionKind::PermissionWaiting)),
            1,
        );
        assert_eq!(r.title, "home-box/api: a permission request waits");
        assert_eq!(
            r.command.as_deref(),
            Some("cm-tui approve home-box api per_9   (or: cm-tui reject home-box api per_9)")
        );
        assert!(r.message.contains("Session \"Fix the login"));
        assert!(!r.message.contains('\u{1b}'), "controls are stripped");
        let ten = render(
            &notice(What::Attention(AttentionKind::PermissionWaiting)),
            10,
        );
        assert_eq!(ten.title, "home-box/api: 10 permission requests wait");
        assert_eq!(ten.event, "permission");
    }

    #[test]
    fn several_requests_or_a_missing_id_point_to_the_list_not_a_command_with_a_hole() {
        let many = render(
            &notice(What::Attention(AttentionKind::PermissionWaiting)),
            10,
        );
        assert_eq!(
            many.command.as_deref(),
            Some("cm-tui permissions home-box api")
        );
        let mut n = notice(What::Attention(AttentionKind::QuestionWaiting));
        n.request = None;
        assert_eq!(
            render(&n, 1).command.as_deref(),
            Some("cm-tui permissions home-box api")
        );
        let mut n = notice(What::Attention(AttentionKind::TurnFailed));
        n.session = None;
        assert_eq!(
            render(&n, 1).command.as_deref(),
            Some("cm-tui sessions home-box api")
        );
    }

    #[test]
    fn every_kind_renders_a_place_and_what() {
        for what in [
            What::Attention(AttentionKind::QuestionWaiting),
            What::Attention(AttentionKind::TurnFinished),
            What::Attention(AttentionKind::TurnFailed),
            What::Attention(AttentionKind::OpencodeCrashed),
            What::Attention(AttentionKind::OpencodeGaveUp),
            What::Attention(AttentionKind::Unknown),
        ] {
            let r = render(&notice(what), 1);
            assert!(r.title.starts_with("home-box/api: "), "{r:?}");
        }
        let mut offline = notice(What::HostOffline { minutes: 12 });
        offline.workspace.clear();
        offline.session = None;
        offline.title = None;
        let r = render(&offline, 1);
        assert_eq!(r.title, "home-box: the host has been offline for 12 min");
        assert_eq!(r.event, "offline");
    }
}
