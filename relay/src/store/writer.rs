//! The one writer: a thread that owns the write connection and takes, over a queue, audit rows
//! and mutation jobs. Rows are group-committed: the thread takes every row that is waiting,
//! writes them in one transaction (one sync), and then answers each waiter. A job runs on its
//! own, in queue order between the rows around it (its own transactions are its business).
//!
//! Under load this turns N syncs into one per batch while keeping the rule that an operation
//! whose caller waits is acknowledged only after its row is on disk: such a row (or a job, or a
//! flush) wakes the writer at once. Rows nobody waits for are written by the same batches, in
//! the order they were submitted (see docs/security-model.md, "Audit trail"): they may wait up
//! to [`LINGER`] for company, so a run of reads costs one wake-up and one sync per [`LINGER`]
//! instead of one per row.
//!
//! When the database is away, rows nobody waits for go to the [`AuditSpool`] (a file in the
//! state directory) instead of being lost; rows with a waiter fail, and so do their
//! operations. Spooled rows are appended to the chain before any newer row: before each batch
//! and each job while the spool holds rows, and every [`SPOOL_RETRY`] while idle.
//!
//! The writer also notices commits by other processes (the `cm-relay` CLI): after each batch,
//! and at least every [`POLL_INTERVAL`] when idle, it reads its connection's `data_version`
//! and marks cached grants stale when it moved.

use super::audit_spool::SpoolSink;
use super::grant_cache::POLL_INTERVAL;
use super::{AuditEvent, AuditSpool, SqliteStore, StoreError};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// At most this many queued items go into one batch; a larger queue is written in several.
const MAX_BATCH: usize = 512;

/// How long a row nobody waits for may sit in the queue before it is written.
const LINGER: Duration = Duration::from_millis(5);

/// While rows wait in the spool, the idle writer tries to append them this often.
const SPOOL_RETRY: Duration = Duration::from_secs(1);

/// Answers one waiter.
pub type Ack = oneshot::Sender<Result<(), StoreError>>;

/// A unit of work run on the write connection (or told why it cannot run).
pub(crate) type Job<S = SqliteStore> = Box<dyn FnOnce(Result<&S, StoreError>) + Send>;

/// What the writer needs of a backend's write connection.
pub(crate) trait WriterStore: SpoolSink + Send + 'static {
    /// Appends rows in one transaction.
    fn append(&self, rows: &[(u64, &AuditEvent)]) -> Result<(), StoreError>;
    /// A value that moves when anyone else commits a change cached grants depend on.
    fn change_marker(&self) -> Option<i64>;
    /// Marks cached grants stale.
    fn grants_changed(&self);
    /// Rolls back a transaction a job left open (it would swallow the next rows); `true` if
    /// there was one.
    fn end_open_transaction(&self) -> bool;
}

enum Item<S> {
    /// An audit row; `ack` is `None` when nobody waits for it (such a row is spooled when
    /// the database is away).
    Row {
        ts_ms: u64,
        event: AuditEvent,
        ack: Option<Ack>,
    },
    /// Answered once everything queued before it is written.
    Flush(Ack),
    /// A mutation (or a read that must see the writer's state).
    Job(Job<S>),
}

impl<S> Item<S> {
    fn waited(&self) -> bool {
        match self {
            Self::Row { ack, .. } => ack.is_some(),
            Self::Flush(_) | Self::Job(_) => true,
        }
    }

    /// Tells the item's waiter that it will never run.
    fn refuse(self) {
        match self {
            Self::Row { ack: Some(ack), .. } | Self::Flush(ack) => {
                let _ = ack.send(Err(StoreError::WriterGone));
            }
            Self::Row { ack: None, .. } => tracing::error!("audit row dropped: the writer stopped"),
            Self::Job(job) => job(Err(StoreError::WriterGone)),
        }
    }
}

/// What the writer thread is doing, so that submitters wake it only when it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Writing a batch; it looks at the queue again when done.
    Busy,
    /// Asleep with an empty queue: any item must wake it.
    Idle,
    /// Asleep until the oldest queued row's [`LINGER`] is up: only a waited item or a full
    /// batch wakes it earlier.
    Lingering,
    /// Stopped (its thread ended); nothing more can be written.
    Gone,
}

struct Inner<S> {
    queue: Vec<Item<S>>,
    /// When the oldest queued row arrived.
    oldest: Option<Instant>,
    /// Some queued item has a waiter.
    urgent: bool,
    /// Closed (or every handle is gone): write what is queued, then stop.
    closed: bool,
    state: State,
}

struct Queue<S> {
    inner: Mutex<Inner<S>>,
    wake: Condvar,
}

impl<S> Queue<S> {
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock()
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }
}

/// The handles' share: when the last one goes, the writer finishes the queue and stops.
struct Handles<S> {
    queue: Arc<Queue<S>>,
}

impl<S> Drop for Handles<S> {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Handle to the writer thread; cheap to clone. The thread ends when it is closed or every
/// handle is gone, after writing what was queued.
pub(crate) struct Writer<S = SqliteStore> {
    handles: Arc<Handles<S>>,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Self {
            handles: Arc::clone(&self.handles),
        }
    }
}

impl<S> std::fmt::Debug for Writer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl<S: WriterStore> Writer<S> {
    /// Starts the writer thread, which takes `store` (the one write connection) for good.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub(crate) fn start(store: S, spool: Option<AuditSpool>) -> std::io::Result<Self> {
        let queue = Arc::new(Queue {
            inner: Mutex::new(Inner {
                queue: Vec::new(),
                oldest: None,
                urgent: false,
                closed: false,
                state: State::Busy,
            }),
            wake: Condvar::new(),
        });
        let q = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("cm-store-writer".into())
            .spawn(move || {
                let _gone = GoneGuard(&q);
                let mut spool = Spool {
                    file: spool,
                    next_retry: Instant::now(),
                };
                let _ = spool.flush(&store);
                run(&store, &mut spool, &q);
            })?;
        Ok(Self {
            handles: Arc::new(Handles { queue }),
        })
    }

    /// Queues an audit row; `ack` (if any) is answered once it is durable.
    pub(crate) fn row(&self, ts_ms: u64, event: AuditEvent, ack: Option<Ack>) {
        self.send(Item::Row { ts_ms, event, ack });
    }

    /// `ack` is answered once everything queued before is written.
    pub(crate) fn flush(&self, ack: Ack) {
        self.send(Item::Flush(ack));
    }

    /// Queues a job; it runs after everything queued before it.
    pub(crate) fn job(&self, job: Job<S>) {
        self.send(Item::Job(job));
    }

    /// Stops taking new items; what is queued is still written, then the thread ends.
    pub(crate) fn close(&self) {
        self.handles.queue.close();
    }

    fn send(&self, item: Item<S>) {
        let queue = &self.handles.queue;
        let mut st = queue.lock();
        if st.state == State::Gone || st.closed {
            drop(st);
            item.refuse();
            return;
        }
        let waited = item.waited();
        if st.queue.is_empty() {
            st.oldest = Some(Instant::now());
        }
        st.queue.push(item);
        st.urgent |= waited;
        let wake = match st.state {
            State::Busy | State::Gone => false,
            State::Idle => true,
            State::Lingering => waited || st.queue.len() >= MAX_BATCH,
        };
        drop(st);
        if wake {
            queue.wake.notify_one();
        }
    }
}

/// Marks the writer gone when its thread ends, however it ends, and refuses what is still
/// queued, so that waiters learn it instead of waiting forever.
struct GoneGuard<'a, S>(&'a Queue<S>);

impl<S> Drop for GoneGuard<'_, S> {
    fn drop(&mut self) {
        let left = {
            let mut st = self.0.lock();
            st.state = State::Gone;
            std::mem::take(&mut st.queue)
        };
        for item in left {
            item.refuse();
        }
    }
}

fn run<S: WriterStore>(store: &S, spool: &mut Spool, queue: &Queue<S>) {
    let mut seen_version = data_version(store);
    let mut st = queue.lock();
    loop {
        if st.queue.is_empty() {
            if st.closed {
                return;
            }
            st.state = State::Idle;
            queue.wake.wait_for(&mut st, POLL_INTERVAL);
            if st.queue.is_empty() {
                drop(st);
                notice_other_writers(store, &mut seen_version);
                spool.retry(store);
                st = queue.lock();
            }
            continue;
        }
        if !(st.urgent || st.closed || st.queue.len() >= MAX_BATCH) {
            let due = st.oldest.map_or_else(Instant::now, |t| t + LINGER);
            let now = Instant::now();
            if now < due {
                st.state = State::Lingering;
                queue.wake.wait_for(&mut st, due - now);
                continue;
            }
        }
        st.state = State::Busy;
        let n = st.queue.len().min(MAX_BATCH);
        let batch: Vec<Item<S>> = st.queue.drain(..n).collect();
        // What is left (a backlog beyond one batch) is written right after.
        st.urgent = st.queue.iter().any(Item::waited);
        st.oldest = (!st.queue.is_empty()).then(Instant::now);
        drop(st);
        notice_other_writers(store, &mut seen_version);
        process(store, spool, batch);
        st = queue.lock();
    }
}

/// Runs a batch in order: consecutive rows (and flushes) are one transaction, jobs run alone.
fn process<S: WriterStore>(store: &S, spool: &mut Spool, batch: Vec<Item<S>>) {
    let mut rows = Rows::default();
    for item in batch {
        match item {
            Item::Row { ts_ms, event, ack } => {
                rows.unwaited.push(ack.is_none());
                rows.rows.push((ts_ms, event));
                rows.acks.extend(ack);
            }
            Item::Flush(ack) => rows.acks.push(ack),
            Item::Job(job) => {
                commit_rows(store, spool, &mut rows);
                // A job's own rows come after the spooled ones too.
                let _ = spool.flush(store);
                run_job(store, job);
            }
        }
    }
    commit_rows(store, spool, &mut rows);
}

/// Consecutive rows of a batch, written in one transaction.
#[derive(Default)]
struct Rows {
    rows: Vec<(u64, AuditEvent)>,
    /// Per row: nobody waits for it (it is spooled if the database is away).
    unwaited: Vec<bool>,
    acks: Vec<Ack>,
}

fn commit_rows<S: WriterStore>(store: &S, spool: &mut Spool, batch: &mut Rows) {
    if batch.rows.is_empty() && batch.acks.is_empty() {
        return;
    }
    let refs: Vec<(u64, &AuditEvent)> = batch.rows.iter().map(|(t, e)| (*t, e)).collect();
    // Spooled rows first: while some wait, nothing newer may go into the chain.
    let result = spool.flush(store).and_then(|()| store.append(&refs));
    if let Err(e) = &result {
        tracing::error!(error = %e, rows = refs.len(), "audit write failed");
        let unwaited: Vec<(u64, &AuditEvent)> = refs
            .iter()
            .zip(&batch.unwaited)
            .filter_map(|(row, unwaited)| unwaited.then_some(*row))
            .collect();
        spool.keep(e, &unwaited);
    }
    for ack in batch.acks.drain(..) {
        // A waiter that went away (its stream was dropped) needs no answer.
        let _ = ack.send(result.as_ref().map(|_| ()).map_err(StoreError::share));
    }
    batch.rows.clear();
    batch.unwaited.clear();
}

/// The writer's side of the spool (none for a store without a state directory).
struct Spool {
    file: Option<AuditSpool>,
    /// When the idle writer next tries to append spooled rows.
    next_retry: Instant,
}

impl Spool {
    /// Appends the spooled rows (if any) to the chain; `Err` while some remain.
    fn flush<S: WriterStore>(&mut self, store: &S) -> Result<(), StoreError> {
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
                tracing::warn!(error = %e, waiting, "spooled audit rows still wait for the database");
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

    /// Tries again when idle, at most every [`SPOOL_RETRY`].
    fn retry<S: WriterStore>(&mut self, store: &S) {
        if self.file.as_ref().is_some_and(|f| !f.is_empty()) && Instant::now() >= self.next_retry {
            let _ = self.flush(store);
        }
    }

    /// Keeps rows nobody waits for whose append failed with `error`: spooled when the
    /// database is away (or spooled rows still wait), otherwise lost (logged).
    fn keep(&mut self, error: &StoreError, rows: &[(u64, &AuditEvent)]) {
        if rows.is_empty() {
            return;
        }
        let away = error.is_unavailable() || self.file.as_ref().is_some_and(|f| !f.is_empty());
        let spooled = match self.file.as_mut() {
            Some(file) if away => file.append(rows),
            Some(_) => Err(StoreError::Refused(format!(
                "the database refused them: {error}"
            ))),
            None => Err(StoreError::Refused("this store has no spool".into())),
        };
        match spooled {
            Ok(()) => tracing::warn!(
                rows = rows.len(),
                "database away: audit rows spooled; they join the chain when it is back"
            ),
            Err(e) => tracing::error!(
                rows = rows.len(),
                error = %e,
                "audit rows lost: {:?}",
                rows.iter().map(|(_, r)| r.op.as_str()).collect::<Vec<_>>()
            ),
        }
    }
}

/// A job that panics loses its own answer (its waiter sees the job end unanswered); the
/// writer goes on, and the job's open transaction is rolled back when it unwinds.
fn run_job<S: WriterStore>(store: &S, job: Job<S>) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| job(Ok(store)))).is_err() {
        tracing::error!("a store job panicked; the writer goes on");
    }
    // A job must not leave a transaction open: the next rows would join it.
    if store.end_open_transaction() {
        tracing::error!("a store job left a transaction open; rolled back");
    }
}

fn data_version<S: WriterStore>(store: &S) -> Option<i64> {
    store.change_marker()
}

fn notice_other_writers<S: WriterStore>(store: &S, seen: &mut Option<i64>) {
    let now = data_version(store);
    if now != *seen {
        store.grants_changed();
        *seen = now;
    }
}

impl WriterStore for SqliteStore {
    fn append(&self, rows: &[(u64, &AuditEvent)]) -> Result<(), StoreError> {
        self.audit_batch(rows)
    }

    fn change_marker(&self) -> Option<i64> {
        self.data_version().ok()
    }

    fn grants_changed(&self) {
        self.grants_generation.bump();
    }

    fn end_open_transaction(&self) -> bool {
        if self.conn.is_autocommit() {
            return false;
        }
        if let Err(e) = self.conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "could not roll back a job's transaction");
        }
        true
    }
}

impl WriterStore for super::PgStore {
    fn append(&self, rows: &[(u64, &AuditEvent)]) -> Result<(), StoreError> {
        self.audit_batch(rows)
    }

    fn change_marker(&self) -> Option<i64> {
        self.grants_marker().ok()
    }

    fn grants_changed(&self) {
        self.grants_generation.bump();
    }

    fn end_open_transaction(&self) -> bool {
        if !self.in_transaction() {
            return false;
        }
        if let Err(e) = self.roll_back() {
            tracing::error!(error = %e, "could not roll back a job's transaction");
        }
        true
    }
}

#[cfg(test)]
mod tests;
