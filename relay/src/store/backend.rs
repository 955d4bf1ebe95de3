//! What a store backend provides to the relay's [`StoreHandle`](super::StoreHandle): somewhere
//! to run reads that never wait for writes, one ordered writer for mutations and audit rows
//! (group commit), and a signal when grants change. [`SqliteBackend`] is the SQLite one,
//! [`PgBackend`] the PostgreSQL one.

use super::readers::Readers;
use super::writer::Writer;
use super::{
    AuditEvent, AuditSpool, GrantGeneration, PgConfig, PgStore, SqliteStore, Store, StoreError,
    StoreRead,
};
use std::sync::Arc;

pub use super::writer::Ack;

/// A read: given a connection that only reads (or why there is none).
pub type ReadJob = Box<dyn FnOnce(Result<&dyn StoreRead, StoreError>) + Send>;
/// A mutation: given the writer's store (or why it cannot run).
pub type WriteJob = Box<dyn FnOnce(Result<&Store, StoreError>) + Send>;

/// A store backend. Every method hands work over and returns at once; the work answers
/// through its closure or its [`Ack`].
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Runs a read; it must not wait for a write in progress.
    fn read(&self, job: ReadJob);
    /// Runs a mutation after everything submitted before it (rows and mutations), alone.
    fn write(&self, job: WriteJob);
    /// Appends an audit row after everything submitted before it; `ack` (if any) is answered
    /// once the row is durable.
    fn audit(&self, ts_ms: u64, event: AuditEvent, ack: Option<Ack>);
    /// `ack` is answered once everything submitted before it is durable.
    fn flush(&self, ack: Ack);
    /// Stops taking work; what was submitted is still done.
    fn close(&self);
    /// Bumped whenever grants may have changed (by this relay or anyone else).
    fn grants_generation(&self) -> GrantGeneration;
}

/// SQLite: one writer thread owns the write connection; reads use read-only WAL connections
/// (an in-memory database has no second connection: its reads queue on the writer).
#[derive(Debug)]
pub struct SqliteBackend {
    writer: Writer,
    readers: Option<Arc<Readers>>,
    generation: GrantGeneration,
}

impl SqliteBackend {
    /// Starts the writer thread over `store`, which becomes the one write connection; rows
    /// nobody waits for go to `spool` while the database cannot take them (without one, they
    /// are logged as lost).
    ///
    /// # Errors
    /// The OS refused to start the thread.
    pub fn start(store: SqliteStore, spool: Option<AuditSpool>) -> Result<Self, StoreError> {
        let generation = store.grants_generation();
        let readers = store.path().map(|p| Readers::new(p.to_owned()));
        let writer = Writer::start(store, spool)
            .map_err(|e| StoreError::Task(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            writer,
            readers,
            generation,
        })
    }

    /// Runs `job` on the write connection itself (tests hold its transactions open).
    #[cfg(test)]
    pub(crate) fn raw_write(&self, job: super::writer::Job) {
        self.writer.job(job);
    }
}

impl Backend for SqliteBackend {
    fn read(&self, job: ReadJob) {
        match &self.readers {
            Some(readers) => readers.run(job),
            None => self
                .writer
                .job(Box::new(move |s| job(s.map(|s| s as &dyn StoreRead)))),
        }
    }

    fn write(&self, job: WriteJob) {
        self.writer
            .job(Box::new(move |s| job(s.map(|s| s as &Store))));
    }

    fn audit(&self, ts_ms: u64, event: AuditEvent, ack: Option<Ack>) {
        self.writer.row(ts_ms, event, ack);
    }

    fn flush(&self, ack: Ack) {
        self.writer.flush(ack);
    }

    fn close(&self) {
        self.writer.close();
    }

    fn grants_generation(&self) -> GrantGeneration {
        self.generation.clone()
    }
}

/// PostgreSQL: one writer thread owns a connection (audit rows group-committed as with
/// SQLite, each batch under the chain's head-row lock, so several relays share one chain);
/// reads use pooled connections of their own. Grant changes by other relays or the CLI are
/// noticed through the database's `grants_changes` counter.
#[derive(Debug)]
pub struct PgBackend {
    writer: Writer<PgStore>,
    readers: Arc<Readers<PgStore>>,
    generation: GrantGeneration,
}

impl PgBackend {
    /// Connects (migrating the schema) and starts the writer thread; rows nobody waits for go
    /// to `spool` while the database is away.
    ///
    /// # Errors
    /// Connection or migration failures; the OS refused to start the thread.
    pub fn start(config: &PgConfig, spool: Option<AuditSpool>) -> Result<Self, StoreError> {
        let store = PgStore::open(config)?;
        let generation = store.grants_generation();
        let read_config = config.clone();
        let readers = Readers::with(Box::new(move || PgStore::connect(&read_config)));
        let writer = Writer::start(store, spool)
            .map_err(|e| StoreError::Task(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            writer,
            readers,
            generation,
        })
    }
}

impl Backend for PgBackend {
    fn read(&self, job: ReadJob) {
        self.readers.run(job);
    }

    fn write(&self, job: WriteJob) {
        self.writer
            .job(Box::new(move |s| job(s.map(|s| s as &Store))));
    }

    fn audit(&self, ts_ms: u64, event: AuditEvent, ack: Option<Ack>) {
        self.writer.row(ts_ms, event, ack);
    }

    fn flush(&self, ack: Ack) {
        self.writer.flush(ack);
    }

    fn close(&self) {
        self.writer.close();
    }

    fn grants_generation(&self) -> GrantGeneration {
        self.generation.clone()
    }
}
