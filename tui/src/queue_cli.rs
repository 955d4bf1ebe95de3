//! `cm-tui queue list|cancel`: prompts the relay keeps for hosts that were offline.

use crate::command_error::CommandError;
use crate::remote::Remote;
use crate::view::text::sanitize;
use cm_client::time::now_ms;
use proto::op;
use proto::queue::{QueueCancel, QueueEntry, QueueList, Queued};

/// How far in the future `then_ms` is, in words ("in 59 min", "in 12 s", "passed").
pub fn until(now_ms: u64, then_ms: u64) -> String {
    let Some(left) = then_ms.checked_sub(now_ms).filter(|l| *l > 0) else {
        return "passed".into();
    };
    let s = left.div_ceil(1000);
    match s {
        0..=119 => format!("in {s} s"),
        120..=7199 => format!("in {} min", s / 60),
        _ => format!("in {} h", s / 3600),
    }
}

/// The line `cm-tui send` prints for a queued prompt.
pub fn queued_line(q: &Queued, now_ms: u64) -> String {
    format!(
        "queued (host offline), expires {}: delivered once when the host is back; `cm-tui queue cancel {}` drops it",
        until(now_ms, q.expires_ms),
        sanitize(&q.id)
    )
}

/// Formats entries as a table.
pub fn format_entries(entries: &[QueueEntry], now_ms: u64) -> String {
    if entries.is_empty() {
        return "no queued prompts\n".into();
    }
    let mut out = String::new();
    for e in entries {
        let when = match e.state {
            proto::queue::QueueState::Queued => format!("expires {}", until(now_ms, e.expires_ms)),
            _ => sanitize(e.detail.as_deref().unwrap_or_default()),
        };
        // Everything but the state came from the relay: sanitized (the preview is quoted).
        out.push_str(&format!(
            "{}  {:<10}  {}/{}/{}  {}  {:?}\n",
            sanitize(&e.id),
            e.state.as_str(),
            sanitize(&e.host),
            sanitize(&e.workspace),
            sanitize(&e.session),
            when,
            e.preview
        ));
    }
    out
}

/// `queue list`.
///
/// # Errors
/// Refusals and transport failures.
pub async fn list(remote: &Remote, json: bool) -> Result<(), CommandError> {
    let list: QueueList = remote.call_relay::<op::QueueList>(&()).await?;
    if json {
        println!("{}", proto::text::json_pretty(&list)?);
    } else {
        print!("{}", format_entries(&list.entries, now_ms()));
    }
    Ok(())
}

/// `queue cancel ID`.
///
/// # Errors
/// Refusals (unknown id, already delivered) and transport failures.
pub async fn cancel(remote: &Remote, id: String, json: bool) -> Result<(), CommandError> {
    let entry: QueueEntry = remote
        .call_relay::<op::QueueCancel>(&QueueCancel { id })
        .await?;
    if json {
        println!("{}", proto::text::json_pretty(&entry)?);
    } else {
        println!(
            "cancelled {} (it will not be delivered)",
            sanitize(&entry.id)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_in_words() {
        assert_eq!(until(1_000, 1_000), "passed");
        assert_eq!(until(0, 12_000), "in 12 s");
        assert_eq!(until(0, 3_600_000), "in 60 min");
        assert_eq!(until(0, 3 * 3_600_000), "in 3 h");
        let line = queued_line(
            &Queued {
                id: "q_1".into(),
                expires_ms: 3_600_000,
            },
            0,
        );
        assert!(
            line.starts_with("queued (host offline), expires in 60 min"),
            "{line}"
        );
    }
}
