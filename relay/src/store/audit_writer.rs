//! Group commit for the audit trail: one thread owns the writing, takes every row that is
//! waiting, writes them in one transaction (one sync), and then answers each waiter.
//!
//! Under load this turns N syncs into one per batch while keeping the rule that an operation
//! whose caller waits ([`AuditWriter::durable`]) is acknowledged only after its row is on disk:
//! such a row wakes the writer at once. Rows submitted with [`AuditWriter::record`] are written
//! by the same batches, in the order they were submitted, but nobody waits for them (see
//! docs/security-model.md, "Audit trail"): they may wait up to [`LINGER`] for company, so a run
//! of reads costs one wake-up and one sync per [`LINGER`] instead of one per row.

use super::{AuditEvent, Store, StoreError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// At most this many rows go into one transaction; a larger queue is written in several.
const MAX_BATCH: usize = 512;

/// How long a row nobody waits for may sit in the queue before it is written.
const LINGER: Duration = Duration::from_millis(5);

struct Pending {
    ts_ms: u64,
    event: AuditEvent,
    /// `None` for rows nobody waits for; an empty event with a waiter is a flush marker.
    ack: Option<oneshot::Sender<Result<(), String>>>,
    /// A flush marker writes nothing; it is answered once everything before it is written.
    flush: bool,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("op", &self.event.op)
            .finish()
    }
}

/// What the writer thread is doing, so that submitters wake it only when it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Writing a batch; it looks at the queue again when done.
    Busy,
    /// Asleep with an empty queue: any row must wake it.
    Idle,
    /// Asleep until the oldest queued row's [`LINGER`] is up: only a waiter or a full batch
    /// wakes it earlier.
    Lingering,
    /// Stopped (its thread ended); rows can no longer be written.
    Gone,
}

#[derive(Debug)]
struct State {
    queue: Vec<Pending>,
    /// When the oldest queued row arrived.
    oldest: Option<Instant>,
    /// Some queued row has a waiter.
    urgent: bool,
    /// Every handle is gone: write what is queued, then stop.
    closed: bool,
    writer: Writer,
}

#[derive(Debug)]
struct Queue {
    state: Mutex<State>,
    wake: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// The handles' share: when the last one goes, the writer finishes the queue and stops.
#[derive(Debug)]
struct Handles {
    queue: Arc<Queue>,
}

impl Drop for Handles {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.wake.notify_one();
    }
}

/// Handle to the writer thread; cheap to clone. The thread ends when every handle is gone,
/// after writing what was queued.
#[derive(Debug, Clone)]
pub struct AuditWriter {
    handles: Arc<Handles>,
}

impl AuditWriter {
    /// Starts the writer thread over `store`.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn start(store: Arc<Mutex<Store>>) -> std::io::Result<Self> {
        let queue = Arc::new(Queue {
            state: Mutex::new(State {
                queue: Vec::new(),
                oldest: None,
                urgent: false,
                closed: false,
                writer: Writer::Busy,
            }),
            wake: Condvar::new(),
        });
        let q = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("cm-audit".into())
            .spawn(move || {
                let _gone = GoneGuard(&q);
                run(&store, &q);
            })?;
        Ok(Self {
            handles: Arc::new(Handles { queue }),
        })
    }

    /// Queues a row and waits until it (and everything queued before it) is durable.
    ///
    /// # Errors
    /// The write failed or the writer is gone; the caller must refuse the operation.
    pub async fn durable(&self, ts_ms: u64, event: AuditEvent) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.send(Pending {
            ts_ms,
            event,
            ack: Some(ack),
            flush: false,
        })?;
        done.await
            .map_err(|_| StoreError::Task("audit writer stopped".into()))?
            .map_err(StoreError::Task)
    }

    /// Queues a row without waiting; it is written within `LINGER` (5 ms) plus the write
    /// itself. A failure is logged by the writer.
    pub fn record(&self, ts_ms: u64, event: AuditEvent) {
        if let Err(e) = self.send(Pending {
            ts_ms,
            event,
            ack: None,
            flush: false,
        }) {
            tracing::error!(error = %e, "audit row dropped");
        }
    }

    /// Waits until every row queued so far is written (used at shutdown).
    ///
    /// # Errors
    /// A queued write failed, or the writer is gone.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.send(Pending {
            ts_ms: 0,
            event: AuditEvent::default(),
            ack: Some(ack),
            flush: true,
        })?;
        done.await
            .map_err(|_| StoreError::Task("audit writer stopped".into()))?
            .map_err(StoreError::Task)
    }

    fn send(&self, p: Pending) -> Result<(), StoreError> {
        let queue = &self.handles.queue;
        let mut st = queue.lock();
        if st.writer == Writer::Gone {
            return Err(StoreError::Task("audit writer stopped".into()));
        }
        let waited = p.ack.is_some();
        if st.queue.is_empty() {
            st.oldest = Some(Instant::now());
        }
        st.queue.push(p);
        st.urgent |= waited;
        let wake = match st.writer {
            Writer::Busy | Writer::Gone => false,
            Writer::Idle => true,
            Writer::Lingering => waited || st.queue.len() >= MAX_BATCH,
        };
        drop(st);
        if wake {
            queue.wake.notify_one();
        }
        Ok(())
    }
}

/// Marks the writer gone when its thread ends, however it ends, and drops what is still
/// queued, so that waiters learn it (their `oneshot` closes) instead of waiting forever.
struct GoneGuard<'a>(&'a Queue);

impl Drop for GoneGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.writer = Writer::Gone;
        st.queue.clear();
    }
}

fn run(store: &Mutex<Store>, queue: &Queue) {
    let mut st = queue.lock();
    loop {
        if st.queue.is_empty() {
            if st.closed {
                return;
            }
            st.writer = Writer::Idle;
            st = match queue.wake.wait(st) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            continue;
        }
        if !(st.urgent || st.closed || st.queue.len() >= MAX_BATCH) {
            let due = st.oldest.map_or_else(Instant::now, |t| t + LINGER);
            let now = Instant::now();
            if now < due {
                st.writer = Writer::Lingering;
                st = match queue.wake.wait_timeout(st, due - now) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
                continue;
            }
        }
        st.writer = Writer::Busy;
        let n = st.queue.len().min(MAX_BATCH);
        let batch: Vec<Pending> = st.queue.drain(..n).collect();
        // What is left (a backlog beyond one batch) is written right after.
        st.urgent = st.queue.iter().any(|p| p.ack.is_some());
        drop(st);
        let result = write(store, &batch).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, rows = batch.len(), "audit write failed");
        }
        for p in batch {
            if let Some(ack) = p.ack {
                // A waiter that went away (its stream was dropped) needs no answer.
                let _ = ack.send(result.clone());
            }
        }
        st = queue.lock();
    }
}

fn write(store: &Mutex<Store>, batch: &[Pending]) -> Result<(), StoreError> {
    let rows: Vec<(u64, &AuditEvent)> = batch
        .iter()
        .filter(|p| !p.flush)
        .map(|p| (p.ts_ms, &p.event))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let guard = store
        .lock()
        .map_err(|_| StoreError::Task("store mutex poisoned".into()))?;
    guard.audit_batch(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(op: &str) -> AuditEvent {
        AuditEvent {
            actor: "alice".into(),
            op: op.into(),
            decision: "allow".into(),
            ..AuditEvent::default()
        }
    }

    #[tokio::test]
    async fn waited_and_unwaited_rows_land_in_order_and_chain() {
        let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
        let writer = AuditWriter::start(Arc::clone(&store)).unwrap();
        writer.record(1, ev("a"));
        writer.record(2, ev("b"));
        writer.durable(3, ev("c")).await.unwrap();
        // 100 concurrent waiters: all answered, all written, one chain.
        let waits: Vec<_> = (0..100)
            .map(|i| {
                let w = writer.clone();
                tokio::spawn(async move { w.durable(10 + i, ev(&format!("w{i}"))).await })
            })
            .collect();
        for w in waits {
            w.await.unwrap().unwrap();
        }
        writer.record(999, ev("last"));
        writer.flush().await.unwrap();
        let guard = store.lock().unwrap();
        let rows = guard.audit_tail(1000).unwrap();
        assert_eq!(rows.len(), 104);
        let ops: Vec<&str> = rows.iter().take(3).map(|r| r.event.op.as_str()).collect();
        assert_eq!(ops, ["a", "b", "c"]);
        assert_eq!(rows.last().unwrap().event.op, "last");
        assert_eq!(guard.audit_verify().unwrap(), None);
    }

    #[tokio::test]
    async fn a_failed_batch_is_reported_to_its_waiters() {
        let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
        // Make every insert fail: the append-only table is gone.
        store
            .lock()
            .unwrap()
            .conn
            .execute_batch("DROP TABLE audit")
            .unwrap();
        let writer = AuditWriter::start(Arc::clone(&store)).unwrap();
        let err = writer.durable(1, ev("x")).await.unwrap_err();
        assert!(err.to_string().contains("audit"), "{err}");
    }

    #[tokio::test]
    async fn unwaited_rows_are_written_before_a_later_flush_returns() {
        let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
        let writer = AuditWriter::start(Arc::clone(&store)).unwrap();
        let probe = writer.clone();
        for i in 0..50 {
            writer.record(i, ev("r"));
        }
        drop(writer);
        probe.flush().await.unwrap();
        assert_eq!(store.lock().unwrap().audit_tail(100).unwrap().len(), 50);
    }

    #[tokio::test]
    async fn unwaited_rows_are_written_without_a_waiter_or_flush() {
        let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
        let writer = AuditWriter::start(Arc::clone(&store)).unwrap();
        for i in 0..3 {
            writer.record(i, ev("read"));
        }
        // Nothing else happens: the lingering batch is written on its own.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = store.lock().unwrap().audit_tail(10).unwrap().len();
            if n == 3 {
                break;
            }
            assert!(Instant::now() < deadline, "only {n} of 3 rows written");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // A later waited row still lands after them, on the same chain.
        writer.durable(9, ev("write")).await.unwrap();
        let guard = store.lock().unwrap();
        let rows = guard.audit_tail(10).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows.last().unwrap().event.op, "write");
        assert_eq!(guard.audit_verify().unwrap(), None);
    }

    #[tokio::test]
    async fn more_than_a_batch_of_unwaited_rows_is_written_in_several() {
        let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
        let writer = AuditWriter::start(Arc::clone(&store)).unwrap();
        let n = MAX_BATCH as u64 * 2 + 7;
        for i in 0..n {
            writer.record(i, ev("read"));
        }
        writer.flush().await.unwrap();
        let guard = store.lock().unwrap();
        assert_eq!(guard.audit_tail(10_000).unwrap().len() as u64, n);
        assert_eq!(guard.audit_verify().unwrap(), None);
    }
}
