//! The nonces of queued prompts already served, kept across restarts: a queued prompt may be a
//! day old, so a relay could replay one after the agent restarted if the nonces lived only in
//! memory. Each served nonce is appended to `queued-nonces.txt` in the state directory (one
//! line `TS_MS HEX_NONCE`) before the prompt runs; at start the file is read back (entries
//! older than the window dropped) and rewritten compact.

use parking_lot::Mutex;
use proto::replay::ReplayWindow;
use proto::trust::TrustError;
use proto::trust::header::{CheckedHeader, REPLAY_WINDOW_MS};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// How old a queued prompt's signed time may be (the relay keeps a queued prompt this long).
pub(crate) const MAX_QUEUED_AGE_MS: u64 = 24 * 60 * 60 * 1000;
/// Most queued-prompt nonces remembered (fail closed beyond).
const CAPACITY: usize = 65_536;
/// Pruned by signed times (see `ops::e2e::queued::record`): twice the age covers every accepted one.
const HORIZON_MS: u64 = 2 * (MAX_QUEUED_AGE_MS + REPLAY_WINDOW_MS);
/// Lines appended since the file was last compacted before it is compacted again (so a
/// long-running agent's file stays about the size of what is still in the window).
const COMPACT_AFTER: usize = 4_096;
/// The file in the agent's state directory.
pub(crate) const FILE_NAME: &str = "queued-nonces.txt";

/// The nonces of queued prompts already served (in memory, and in a file when persistent).
#[derive(Debug)]
pub struct QueuedNonces {
    pub(crate) window: Mutex<ReplayWindow>,
    file: Option<PathBuf>,
    /// Lines appended since the last compaction; held while appending or compacting.
    appended: Mutex<usize>,
}

impl Default for QueuedNonces {
    fn default() -> Self {
        Self {
            window: Mutex::new(ReplayWindow::new(CAPACITY, HORIZON_MS)),
            file: None,
            appended: Mutex::new(0),
        }
    }
}

/// One line of the file: `(ts_ms, nonce)`.
fn parse_line(line: &str) -> Option<(u64, [u8; 16])> {
    let (ts, hex_nonce) = line.trim().split_once(' ')?;
    let mut nonce = [0u8; 16];
    hex::decode_to_slice(hex_nonce, &mut nonce).ok()?;
    Some((ts.parse().ok()?, nonce))
}

fn padded(nonce: [u8; 16]) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[..16].copy_from_slice(&nonce);
    p
}

impl QueuedNonces {
    /// The nonces remembered in `state_dir` (none when the file is missing; unreadable lines
    /// are skipped with a warning), rewritten without the expired ones.
    pub fn load(state_dir: &Path, now_ms: u64) -> Self {
        let path = state_dir.join(FILE_NAME);
        let me = Self {
            file: Some(path.clone()),
            ..Self::default()
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return me,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the served queued-prompt nonces");
                return me;
            }
        };
        let mut window = me.window.lock();
        compact(&path, &text, now_ms, |ts, nonce| {
            window.check_and_insert(padded(nonce), ts, now_ms).is_ok()
        });
        drop(window);
        me
    }

    /// Writes a served nonce down before its prompt runs (a persistent set only).
    ///
    /// # Errors
    /// The file cannot be appended to: the prompt is refused rather than risk a replay after a
    /// restart.
    pub(crate) fn persist(&self, checked: &CheckedHeader) -> Result<(), TrustError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        self.append(path, checked.fields.ts_ms, checked.nonce)
            .map_err(|e| {
                TrustError::Payload(format!(
                    "cannot record the queued prompt's nonce in {} ({e}); refusing it so it \
                     cannot be replayed after a restart",
                    path.display()
                ))
            })
    }

    /// Appends one entry to `path` (compacting it first every [`COMPACT_AFTER`] entries).
    fn append(&self, path: &Path, ts_ms: u64, nonce: [u8; 16]) -> std::io::Result<()> {
        let mut appended = self.appended.lock();
        *appended += 1;
        if *appended > COMPACT_AFTER {
            *appended = 0;
            if let Ok(text) = std::fs::read_to_string(path) {
                compact(path, &text, cm_client::time::now_ms(), |_, _| true);
            }
        }
        let line = format!("{ts_ms} {}\n", hex::encode(nonce));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_data()))
    }
}

/// Rewrites `path` from `text` (its contents) without unreadable lines, entries older than the
/// horizon and those `keep` turns down (given each entry's time and nonce).
fn compact(path: &Path, text: &str, now_ms: u64, mut keep: impl FnMut(u64, [u8; 16]) -> bool) {
    let mut kept = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Some((ts, nonce)) = parse_line(line) else {
            tracing::warn!(path = %path.display(), line, "skipping an unreadable line");
            continue;
        };
        if now_ms.saturating_sub(ts) <= HORIZON_MS && keep(ts, nonce) {
            kept.push_str(&format!("{ts} {}\n", hex::encode(nonce)));
        }
    }
    if let Err(e) = crate::private_file::write_atomic(path, kept.as_bytes()) {
        tracing::warn!(path = %path.display(), error = %e, "cannot compact the served queued-prompt nonces");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_written_down_is_known_after_a_restart_and_expired_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let now = 10 * HORIZON_MS;
        let old = format!("{} {}\n", now - HORIZON_MS - 1, hex::encode([7u8; 16]));
        let fresh = format!("{} {}\n", now - 1000, hex::encode([9u8; 16]));
        std::fs::write(dir.path().join(FILE_NAME), format!("{old}garbage\n{fresh}")).unwrap();
        let nonces = QueuedNonces::load(dir.path(), now);
        let mut window = nonces.window.lock();
        assert!(window.check_and_insert(padded([9; 16]), now, now).is_err());
        assert!(window.check_and_insert(padded([7; 16]), now, now).is_ok());
        drop(window);
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text, fresh, "compacted to the fresh entry");
    }

    #[test]
    fn a_long_running_agents_file_is_compacted_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let now = cm_client::time::now_ms();
        let expired: String = (0..COMPACT_AFTER)
            .map(|i| {
                format!(
                    "{} {}\n",
                    now - HORIZON_MS - 1,
                    hex::encode((i as u128).to_be_bytes())
                )
            })
            .collect();
        let nonces = QueuedNonces::load(dir.path(), now);
        let path = dir.path().join(FILE_NAME);
        // Lines that expire while the agent runs (written as by an earlier append).
        std::fs::write(&path, &expired).unwrap();
        *nonces.appended.lock() = COMPACT_AFTER;
        nonces.append(&path, now, [5u8; 16]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("{now} {}\n", hex::encode([5u8; 16])),
            "the expired lines are gone and the new one kept"
        );
    }
}
