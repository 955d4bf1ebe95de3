//! Group commit for the audit trail: one thread owns the writing, takes every row that is
//! waiting, writes them in one transaction (one sync), and then answers each waiter.
//!
//! Under load this turns N syncs into one per batch while keeping the rule that an operation
//! whose caller waits ([`AuditWriter::durable`]) is acknowledged only after its row is on disk.
//! Rows submitted with [`AuditWriter::record`] are written by the same batches, in the order
//! they were submitted, but nobody waits for them (see docs/security-model.md, "Audit trail").

use super::{AuditEvent, Store, StoreError};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// At most this many rows go into one transaction; a larger queue is written in several.
const MAX_BATCH: usize = 512;

struct Pending {
    ts_ms: u64,
    event: AuditEvent,
    /// `None` for rows nobody waits for; an empty event with a waiter is a flush marker.
    ack: Option<oneshot::Sender<Result<(), String>>>,
    /// A flush marker writes nothing; it is answered once everything before it is written.
    flush: bool,
}

/// Handle to the writer thread; cheap to clone. The thread ends when every handle is gone,
/// after writing what was queued.
#[derive(Debug, Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("op", &self.event.op)
            .finish()
    }
}

impl AuditWriter {
    /// Starts the writer thread over `store`.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn start(store: Arc<Mutex<Store>>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Pending>();
        std::thread::Builder::new()
            .name("cm-audit".into())
            .spawn(move || run(&store, &rx))?;
        Ok(Self { tx })
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

    /// Queues a row without waiting; a failure is logged by the writer.
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
        self.tx
            .send(p)
            .map_err(|_| StoreError::Task("audit writer stopped".into()))
    }
}

fn run(store: &Mutex<Store>, rx: &mpsc::Receiver<Pending>) {
    // `recv` keeps returning queued rows after the last handle is dropped, so nothing queued is
    // lost at shutdown.
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
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
}
