//! The writer's side of the audit spool: appends spooled rows before newer ones, retries
//! while idle, numbers the rows it appends directly (see [`AuditSpool::reserve`]), and keeps
//! the rows of a failed append.

use super::WriterStore;
use crate::store::{AuditEvent, AuditSpool, StoreError};
use std::time::{Duration, Instant};

/// While rows wait in the spool, the idle writer tries to append them this often.
const SPOOL_RETRY: Duration = Duration::from_secs(1);

/// The writer's side of the spool (none for a store without a state directory).
pub(super) struct Spool {
    pub(super) file: Option<AuditSpool>,
    /// When the idle writer next tries to append spooled rows.
    pub(super) next_retry: Instant,
}

impl Spool {
    /// Appends the spooled rows (if any) to the chain; `Err` while some remain.
    pub(super) fn flush<S: WriterStore>(&mut self, store: &S) -> Result<(), StoreError> {
        let Some(file) = self.file.as_mut().filter(|f| !f.is_empty()) else {
            return Ok(());
        };
        self.next_retry = Instant::now() + SPOOL_RETRY;
        let waiting = file.len();
        match file.flush(store) {
            Ok(appended) => {
                tracing::info!(
                    appended,
                    waiting,
                    "the database is back: spooled audit rows appended to the chain"
                );
                Ok(())
            }
            Err(e) if e.is_unavailable() => {
                tracing::debug!(error = %e, waiting, "spooled audit rows still wait for the database");
                Err(e)
            }
            // The database is there but refuses them: waiting would stop the whole trail.
            Err(e) => {
                match file.set_aside() {
                    Ok(kept) => tracing::error!(
                        error = %e,
                        kept = %kept.display(),
                        "the database refused spooled audit rows: the spool was set aside \
                         (rows before the failing one are in the chain); see docs/deployment.md"
                    ),
                    Err(moved) => tracing::error!(
                        error = %e,
                        set_aside = %moved,
                        "the database refused spooled audit rows and the spool could not be set aside"
                    ),
                }
                Ok(())
            }
        }
    }

    /// Appends `rows` to the chain. With a spool, under numbers reserved in it (the first is
    /// put in `reserved`), recorded as its mark in the same transaction: rows whose commit
    /// landed but was reported failed are then spooled under those numbers and skipped by
    /// the flush, not appended twice.
    pub(super) fn append_marked<S: WriterStore>(
        &mut self,
        store: &S,
        rows: &[(u64, &AuditEvent)],
        reserved: &mut Option<u64>,
    ) -> Result<(), StoreError> {
        match self.file.as_mut() {
            Some(file) if !rows.is_empty() => {
                let (generation, first) = file.reserve(rows.len());
                *reserved = Some(first);
                let last = first.saturating_add(rows.len() as u64 - 1);
                store.append_spooled(rows, &generation, last)
            }
            _ => store.append(rows),
        }
    }

    /// Tries again when idle, at most every [`SPOOL_RETRY`].
    pub(super) fn retry<S: WriterStore>(&mut self, store: &S) {
        if self.file.as_ref().is_some_and(|f| !f.is_empty()) && Instant::now() >= self.next_retry {
            let _ = self.flush(store);
        }
    }

    /// Keeps rows whose append failed with `error` (rows nobody waits for, and rows of
    /// decided operations): spooled when the database is away (or spooled rows still wait),
    /// otherwise lost (logged). Returns whether they are in the spool.
    ///
    /// `rows` are `(seq, ts_ms, event)`; the numbers are used when `numbered` (reserved for
    /// them by [`Self::append_marked`]), else new ones are taken.
    pub(super) fn keep(
        &mut self,
        error: &StoreError,
        rows: &[(u64, u64, &AuditEvent)],
        numbered: bool,
    ) -> bool {
        if rows.is_empty() {
            return false;
        }
        let away = error.is_unavailable() || self.file.as_ref().is_some_and(|f| !f.is_empty());
        let spooled = match self.file.as_mut() {
            Some(file) if away && numbered => file.append_reserved(rows),
            Some(file) if away => {
                let plain: Vec<(u64, &AuditEvent)> = rows
                    .iter()
                    .map(|(_, ts_ms, event)| (*ts_ms, *event))
                    .collect();
                file.append(&plain)
            }
            Some(_) => Err(StoreError::Refused(format!(
                "the database refused them: {error}"
            ))),
            None => Err(StoreError::Refused("this store has no spool".into())),
        };
        match spooled {
            Ok(()) => {
                if self.file.as_ref().is_some_and(|f| f.len() == rows.len()) {
                    tracing::warn!(
                        error = %error,
                        "the database is away: audit rows go to the spool until it is back"
                    );
                }
                true
            }
            Err(e) => {
                tracing::error!(
                    rows = rows.len(),
                    error = %e,
                    "audit rows lost: {:?}",
                    rows.iter().map(|(_, _, r)| r.op.as_str()).collect::<Vec<_>>()
                );
                false
            }
        }
    }
}
