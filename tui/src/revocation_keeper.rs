//! While the full-screen app runs on an owner's or admin's laptop, it re-signs and publishes
//! that laptop's revocation list every [`RESIGN_EVERY`], so its hosts keep a fresh list (a host
//! refuses new work once its newest owner-signed list is older than its
//! `[trust] revocation_max_age`, 24 h by default) without anyone running
//! `cm-tui admin trust refresh`. A laptop that cannot sign (no root, no admin certificate)
//! does nothing.

use crate::e2e_channels::HostStreams;
use crate::profile::Profile;
use crate::trust::admin::{self, Authority};
use crate::trust::file::TrustFile;
use cm_client::time::now_ms;
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use proto::op;
use proto::trust::TrustBundle;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the running app re-signs (well inside the default 24 h freshness limit).
pub const RESIGN_EVERY: Duration = Duration::from_secs(60 * 60);

/// Overrides [`RESIGN_EVERY`] in seconds (for hosts with a short `revocation_max_age`).
pub const RESIGN_ENV: &str = "CM_TUI_RESIGN_SECS";

/// Request id of the app's own publishes (logs only).
const RESIGN_REQ: u64 = (1 << 43) + 1;

/// The interval: [`RESIGN_ENV`] when set to a positive number of seconds, else [`RESIGN_EVERY`].
pub fn interval() -> Duration {
    std::env::var(RESIGN_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(RESIGN_EVERY, Duration::from_secs)
}

/// Whether a list last signed with sequence `seq` (at least its signing time in ms) is due for
/// re-signing at `now_ms` (a list never signed, `seq` 0, is due).
pub fn due(seq: u64, now_ms: u64, every: Duration) -> bool {
    let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
    seq == 0 || now_ms.saturating_sub(seq) >= every_ms
}

/// Re-signs and publishes this laptop's list when it can sign and the list is due; returns the
/// new sequence number.
///
/// # Errors
/// A text for the log: trust file, signing or publishing failures.
pub async fn resign_if_due(
    hosts: &HostStreams,
    profile: &Profile,
    every: Duration,
) -> Result<Option<u64>, String> {
    let path = crate::trust::file_path(profile);
    let now = now_ms();
    // The file alone says whether a list is due: the device key (OS keyring, D-Bus) is read
    // only then, and off the async threads.
    if !due(
        TrustFile::read(&path)
            .map_err(|e| e.to_string())?
            .own_list
            .seq,
        now,
        every,
    ) {
        return Ok(None);
    }
    let owned = profile.clone();
    let trust = tokio::task::spawn_blocking(move || crate::trust::load(&owned))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let Some(trust) = trust else {
        return Ok(None);
    };
    if admin::authority(&trust, now) == Authority::None {
        return Ok(None);
    }
    // Read, sign and save with nothing awaited in between, touching only this laptop's own
    // list: a revocation another `cm-tui` saved meanwhile is kept and signed too (saving a
    // stale copy could drop it from a list with a higher sequence number, which hosts prefer).
    let (list, seq) = {
        let _one_at_a_time = crate::admin_trust_local::OWN_LIST
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut file = TrustFile::read(&path).map_err(|e| e.to_string())?;
        let list = admin::sign_own_list(&trust, &mut file.own_list, now);
        file.write(&path).map_err(|e| e.to_string())?;
        (list, file.own_list.seq)
    };
    let bundle = TrustBundle {
        revocations: vec![list],
        ..TrustBundle::default()
    };
    let header = StreamHeader::new(Op::TrustPublish, ReqId(RESIGN_REQ));
    hosts
        .call::<op::TrustPublish>(&header, &bundle)
        .await
        .map_err(|e| format!("publishing the re-signed revocation list: {e}"))?;
    Ok(Some(seq))
}

/// Re-signs whenever due until `cancel` (the connection's end); failures are logged and tried
/// again at the next tick.
pub async fn keep_fresh(
    hosts: std::sync::Arc<HostStreams>,
    profile: Profile,
    cancel: CancellationToken,
) {
    let every = interval();
    // Checked often enough to re-sign within a tenth of the interval of it falling due.
    let mut tick = tokio::time::interval((every / 10).max(Duration::from_millis(200)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match resign_if_due(&hosts, &profile, every).await {
            Ok(Some(seq)) => tracing::info!(seq, "revocation list re-signed and published"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not keep the revocation list fresh"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_due_once_the_interval_has_passed_since_it_was_signed() {
        let every = Duration::from_secs(60);
        assert!(due(0, 1_000, every), "never signed");
        assert!(!due(100_000, 159_999, every));
        assert!(due(100_000, 160_000, every));
        assert!(
            !due(200_000, 100_000, every),
            "a sequence ahead of the clock"
        );
    }
}
