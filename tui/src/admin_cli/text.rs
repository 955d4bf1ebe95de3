//! What `cm-tui admin` prints: JSON for scripts, or text for people with everything that came
//! from the relay sanitized.

use crate::commands::CommandError;
use crate::view::text::{sanitize, sanitize_text};
use cm_client::time::utc;
use proto::admin::{AdminDone, AuditEntry, CredInfo, HostEnrolled, UserInfo};
use serde::Serialize;

pub(super) fn print<T: Serialize>(
    json: bool,
    v: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<(), CommandError> {
    if json {
        println!("{}", proto::text::json_pretty(v)?);
    } else {
        // Everything printed came from the relay: no escape sequence reaches the terminal.
        print!("{}", sanitize_text(&text(v)));
    }
    Ok(())
}

pub(super) fn done_text(d: &AdminDone) -> String {
    match &d.invite {
        Some(i) => format!(
            "{}\ninvite (give it to them privately; it works once):\n{i}\n",
            d.summary
        ),
        None => format!("{}\n", d.summary),
    }
}

/// Formats users as lines.
pub fn users_text(users: &[UserInfo]) -> String {
    let mut out = String::new();
    for u in users {
        let grants: Vec<String> = u
            .grants
            .iter()
            .map(|g| format!("{} on {}", g.role, g.host))
            .collect();
        out.push_str(&format!(
            "{:<20} {:<12} {}\n",
            u.name,
            if u.has_password {
                "password"
            } else {
                "invite only"
            },
            grants.join(", ")
        ));
    }
    out
}

/// Formats credentials as lines, expiry in UTC.
pub fn creds_text(creds: &[CredInfo]) -> String {
    creds
        .iter()
        .map(|c| {
            format!(
                "{:<26} {:<16} expires {} {}{}\n",
                c.id,
                c.user,
                utc(c.expires_ms),
                if c.revoked { "revoked " } else { "" },
                c.label.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// Formats audit rows as lines. Every field is sanitized: the audit records what clients
/// sent, escape sequences included.
pub fn audit_text(rows: &[AuditEntry]) -> String {
    let mut out = String::new();
    for r in rows {
        out.push_str(&format!(
            "{:>6} {} {:<24} {:<14} {:<6} {}{}{}\n",
            r.id,
            utc(r.ts_ms),
            sanitize(&r.actor),
            sanitize(&r.op),
            sanitize(&r.decision),
            r.host
                .as_deref()
                .map(|h| format!("host={} ", sanitize(h)))
                .unwrap_or_default(),
            r.target
                .as_deref()
                .map(|t| format!("target={} ", sanitize(t)))
                .unwrap_or_default(),
            sanitize(r.reason.as_deref().unwrap_or(""))
        ));
    }
    out
}

pub(super) fn enrolled_text(e: &HostEnrolled) -> String {
    format!(
        "token for {} (a secret; on the host run `cm-agent enroll <token>`):\n{}\n",
        e.name, e.token
    )
}
