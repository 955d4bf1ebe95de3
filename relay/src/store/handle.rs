//! The relay's async handle on its store: reads go to the backend's read side (they never wait
//! for the writer), mutations and audit rows to its one writer. Cloning is cheap.

use super::backend::{Backend, SqliteBackend};
use super::grant_cache::{GrantCache, Grants};
use super::session_cache::SessionCache;
use super::{AuditEvent, SqliteStore, Store, StoreError, StoreRead};
use proto::ids::UserId;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The handle.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    backend: Arc<dyn Backend>,
    audit: AuditWriter,
    grants: Arc<GrantCache>,
    pub(super) sessions: Arc<SessionCache>,
}

fn unanswered(_: oneshot::error::RecvError) -> StoreError {
    StoreError::Task("a store job ended without an answer (it panicked; see the log)".into())
}

impl StoreHandle {
    /// Starts the SQLite backend over an opened store (its writer thread and read pool).
    ///
    /// # Errors
    /// The OS refused to start the writer thread.
    pub fn new(store: SqliteStore) -> Result<Self, StoreError> {
        Ok(Self::with_backend(Arc::new(SqliteBackend::start(
            store, None,
        )?)))
    }

    /// A handle over any backend.
    pub fn with_backend(backend: Arc<dyn Backend>) -> Self {
        Self {
            audit: AuditWriter {
                backend: Arc::clone(&backend),
            },
            grants: Arc::new(GrantCache::new(backend.grants_generation())),
            sessions: Arc::default(),
            backend,
        }
    }

    /// Runs `f` on the writer, after everything submitted before it: mutations, and reads
    /// that must be one unit of work with them. Acknowledged once committed.
    ///
    /// # Errors
    /// Whatever `f` returns; [`StoreError::WriterGone`] if the writer has stopped;
    /// [`StoreError::Task`] if `f` panicked.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.backend.write(Box::new(move |s| {
            let _ = tx.send(s.and_then(f));
        }));
        rx.await.map_err(unanswered)?
    }

    /// Runs `f` on a read-only connection: it sees every write acknowledged before, and does
    /// not wait for the writer.
    ///
    /// # Errors
    /// Whatever `f` returns, or [`StoreError::Task`] if `f` panicked.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&dyn StoreRead) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.backend.read(Box::new(move |s| {
            let _ = tx.send(s.and_then(f));
        }));
        rx.await.map_err(unanswered)?
    }

    /// The audit trail's writer.
    pub fn audit(&self) -> &AuditWriter {
        &self.audit
    }

    /// Writes what is queued, then stops the writer: later writes fail with
    /// [`StoreError::WriterGone`]. Reads still work.
    ///
    /// # Errors
    /// A queued write failed, or the writer had already stopped.
    pub async fn close(&self) -> Result<(), StoreError> {
        let flushed = self.audit.flush().await;
        self.backend.close();
        flushed
    }

    /// Grants were changed elsewhere (a notice from the fleet): cached grants are stale.
    pub fn grants_changed_elsewhere(&self) {
        self.grants.invalidate();
    }

    /// A user's grants, from the cache when fresh.
    ///
    /// The cache stays (measured; see `grant_cache.rs`): every stream is authorized, and a
    /// read costs a hop to the blocking pool and back even though it no longer waits for the
    /// writer.
    ///
    /// # Errors
    /// Store failures.
    pub async fn grants(&self, user: &UserId) -> Result<Grants, StoreError> {
        if let Some(g) = self.grants.get(user) {
            return Ok(g);
        }
        let generation = self.grants.generation();
        let u = user.clone();
        let fresh: Grants = self.read(move |s| s.grants(&u)).await?.into();
        self.grants
            .put(user.clone(), generation, Arc::clone(&fresh));
        Ok(fresh)
    }
}

/// Appends to the audit trail through the backend's writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditWriter {
    backend: Arc<dyn Backend>,
}

impl AuditWriter {
    /// Queues a row and waits until it (and everything queued before it) is durable.
    ///
    /// # Errors
    /// The write failed ([`StoreError::DiskFull`], [`StoreError::WriteFailed`]) or the writer
    /// is gone ([`StoreError::WriterGone`]); the caller must refuse the operation.
    pub async fn durable(&self, ts_ms: u64, event: AuditEvent) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.backend.audit(ts_ms, event, Some(ack));
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Queues a row without waiting; it is written within a few milliseconds. A failure is
    /// logged by the writer.
    pub fn record(&self, ts_ms: u64, event: AuditEvent) {
        self.backend.audit(ts_ms, event, None);
    }

    /// Waits until every row queued so far is written (used at shutdown).
    ///
    /// # Errors
    /// A queued write failed, or the writer is gone.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.backend.flush(ack);
        done.await.map_err(|_| StoreError::WriterGone)?
    }
}
