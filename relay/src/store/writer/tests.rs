use super::*;
use std::path::{Path, PathBuf};

fn ev(op: &str) -> AuditEvent {
    AuditEvent {
        actor: "alice".into(),
        op: op.into(),
        decision: "allow".into(),
        ..AuditEvent::default()
    }
}

fn start() -> Writer {
    Writer::start(SqliteStore::open_in_memory().unwrap(), None).unwrap()
}

/// Runs `f` on the writer's connection, after everything queued before.
async fn on_writer<R: Send + 'static>(
    w: &Writer,
    f: impl FnOnce(&SqliteStore) -> R + Send + 'static,
) -> Result<R, StoreError> {
    let (tx, rx) = oneshot::channel();
    w.job(Box::new(move |s| {
        let _ = tx.send(s.map(f));
    }));
    rx.await.unwrap()
}

async fn durable(w: &Writer, ts_ms: u64, event: AuditEvent) -> Result<(), StoreError> {
    let (tx, rx) = oneshot::channel();
    w.row(ts_ms, event, Some(tx));
    rx.await.unwrap()
}

async fn flush(w: &Writer) -> Result<(), StoreError> {
    let (tx, rx) = oneshot::channel();
    w.flush(tx);
    rx.await.unwrap()
}

#[tokio::test]
async fn waited_and_unwaited_rows_land_in_order_and_chain() {
    let writer = start();
    writer.row(1, ev("a"), None);
    writer.row(2, ev("b"), None);
    durable(&writer, 3, ev("c")).await.unwrap();
    // 100 concurrent waiters: all answered, all written, one chain.
    let waits: Vec<_> = (0..100)
        .map(|i| {
            let w = writer.clone();
            tokio::spawn(async move { durable(&w, 10 + i, ev(&format!("w{i}"))).await })
        })
        .collect();
    for w in waits {
        w.await.unwrap().unwrap();
    }
    writer.row(999, ev("last"), None);
    flush(&writer).await.unwrap();
    let (rows, verified) = on_writer(&writer, |s| {
        (s.audit_tail(1000).unwrap(), s.audit_verify().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(rows.len(), 104);
    let ops: Vec<&str> = rows.iter().take(3).map(|r| r.event.op.as_str()).collect();
    assert_eq!(ops, ["a", "b", "c"]);
    assert_eq!(rows.last().unwrap().event.op, "last");
    assert_eq!(verified, None);
}

#[tokio::test]
async fn a_failed_batch_is_reported_to_its_waiters() {
    let writer = start();
    // Make every insert fail: the append-only table is gone.
    on_writer(&writer, |s| {
        s.conn.execute_batch("DROP TABLE audit").unwrap()
    })
    .await
    .unwrap();
    let err = durable(&writer, 1, ev("x")).await.unwrap_err();
    assert!(matches!(err, StoreError::WriteFailed(_)), "{err:?}");
    assert!(err.to_string().contains("audit"), "{err}");
    // The writer goes on: a flush after the failure is answered.
    flush(&writer).await.unwrap();
}

#[tokio::test]
async fn unwaited_rows_are_written_before_a_later_flush_returns() {
    let writer = start();
    let probe = writer.clone();
    for i in 0..50 {
        writer.row(i, ev("r"), None);
    }
    drop(writer);
    flush(&probe).await.unwrap();
    let n = on_writer(&probe, |s| s.audit_tail(100).unwrap().len())
        .await
        .unwrap();
    assert_eq!(n, 50);
}

#[tokio::test]
async fn unwaited_rows_are_written_without_a_waiter_or_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    let writer = Writer::start(SqliteStore::open(&path).unwrap(), None).unwrap();
    let side = SqliteStore::open_read_only(&path).unwrap();
    for i in 0..3 {
        writer.row(i, ev("read"), None);
    }
    // Nothing else happens: the lingering batch is written on its own (seen from another
    // connection, which does not wake the writer).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = side.audit_tail(10).unwrap().len();
        if n == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} of 3 rows written");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // A later waited row still lands after them, on the same chain.
    durable(&writer, 9, ev("write")).await.unwrap();
    let rows = side.audit_tail(10).unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows.last().unwrap().event.op, "write");
    assert_eq!(side.audit_verify().unwrap(), None);
}

#[tokio::test]
async fn more_than_a_batch_of_unwaited_rows_is_written_in_several() {
    let writer = start();
    let n = MAX_BATCH as u64 * 2 + 7;
    for i in 0..n {
        writer.row(i, ev("read"), None);
    }
    flush(&writer).await.unwrap();
    let (count, verified) = on_writer(&writer, |s| {
        (
            s.audit_tail(10_000).unwrap().len() as u64,
            s.audit_verify().unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(count, n);
    assert_eq!(verified, None);
}

#[tokio::test]
async fn jobs_run_in_queue_order_between_rows_and_a_panic_does_not_stop_the_writer() {
    let writer = start();
    writer.row(1, ev("before"), None);
    let seen = on_writer(&writer, |s| {
        s.set_setting("k", "v").unwrap();
        s.audit_tail(10).unwrap().len()
    })
    .await
    .unwrap();
    assert_eq!(seen, 1, "the row queued before the job was written first");
    // A panicking job loses its answer; the writer goes on.
    let (tx, rx) = oneshot::channel::<()>();
    writer.job(Box::new(move |_| {
        let _keep = tx;
        panic!("job bug");
    }));
    assert!(rx.await.is_err());
    // A job that leaves a transaction open has it rolled back, so later rows are not in it.
    on_writer(&writer, |s| {
        s.conn
            .execute_batch("BEGIN; INSERT INTO settings(key, value) VALUES ('half', 'x');")
            .unwrap()
    })
    .await
    .unwrap();
    durable(&writer, 2, ev("after")).await.unwrap();
    let (half, rows) = on_writer(&writer, |s| {
        (s.setting("half").unwrap(), s.audit_tail(10).unwrap().len())
    })
    .await
    .unwrap();
    assert_eq!(half, None);
    assert_eq!(rows, 2);
}

#[tokio::test]
async fn a_closed_writer_refuses_later_work_with_writer_gone() {
    let writer = start();
    writer.row(1, ev("queued before close"), None);
    let (tx, rx) = oneshot::channel();
    writer.flush(tx);
    writer.close();
    rx.await.unwrap().unwrap();
    let err = durable(&writer, 2, ev("late")).await.unwrap_err();
    assert!(matches!(err, StoreError::WriterGone), "{err:?}");
    let err = on_writer(&writer, |_| ()).await.unwrap_err();
    assert!(matches!(err, StoreError::WriterGone), "{err:?}");
}

/// A store whose database can be taken away and given back.
struct Flaky {
    store: SqliteStore,
    away: Arc<std::sync::atomic::AtomicBool>,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.away.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Connect("connection refused".into()));
        }
        Ok(())
    }
}

impl SpoolSink for Flaky {
    fn spool_mark(&self, generation: &str) -> Result<Option<u64>, StoreError> {
        self.check()?;
        self.store.spool_mark(generation)
    }

    fn append_spooled(
        &self,
        rows: &[(u64, &AuditEvent)],
        generation: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.store.append_spooled(rows, generation, seq)
    }
}

impl WriterStore for Flaky {
    fn append(&self, rows: &[(u64, &AuditEvent)]) -> Result<(), StoreError> {
        self.check()?;
        self.store.append(rows)
    }

    fn change_marker(&self) -> Option<i64> {
        None
    }

    fn grants_changed(&self) {}

    fn end_open_transaction(&self) -> bool {
        false
    }
}

/// A writer over a database file that can be taken away, with a spool; and a connection of
/// its own to read the chain.
fn start_flaky(
    dir: &tempfile::TempDir,
) -> (
    Writer<Flaky>,
    Arc<std::sync::atomic::AtomicBool>,
    SqliteStore,
    PathBuf,
) {
    let path = dir.path().join("relay.db");
    let away = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store = Flaky {
        store: SqliteStore::open(&path).unwrap(),
        away: Arc::clone(&away),
    };
    let spool_path = dir.path().join(super::super::SPOOL_FILE);
    let spool = AuditSpool::open(&spool_path).unwrap();
    let writer = Writer::start(store, Some(spool)).unwrap();
    (
        writer,
        away,
        SqliteStore::open_read_only(&path).unwrap(),
        spool_path,
    )
}

async fn durable_on<S: WriterStore>(
    w: &Writer<S>,
    ts_ms: u64,
    event: AuditEvent,
) -> Result<(), StoreError> {
    let (tx, rx) = oneshot::channel();
    w.row(ts_ms, event, Some(tx));
    rx.await.unwrap()
}

async fn flush_on<S: WriterStore>(w: &Writer<S>) -> Result<(), StoreError> {
    let (tx, rx) = oneshot::channel();
    w.flush(tx);
    rx.await.unwrap()
}

fn spooled_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

fn chain_ops(side: &SqliteStore) -> Vec<String> {
    assert_eq!(side.audit_verify().unwrap(), None, "the chain verifies");
    side.audit_tail(100)
        .unwrap()
        .into_iter()
        .map(|r| r.event.op)
        .collect()
}

#[tokio::test]
async fn unwaited_rows_are_spooled_while_the_database_is_away_and_land_first_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, away, side, spool_path) = start_flaky(&dir);
    durable_on(&writer, 1, ev("before")).await.unwrap();
    away.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.row(2, ev("read1"), None);
    writer.row(3, ev("read2"), None);
    // A waited row is refused (its operation must be), and says why.
    let err = durable_on(&writer, 4, ev("grant")).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(err.to_string().contains("store unavailable"), "{err}");
    writer.row(5, ev("read3"), None);
    let _ = flush_on(&writer).await;
    assert_eq!(
        spooled_lines(&spool_path),
        3,
        "the unwaited rows are in the spool"
    );
    assert_eq!(chain_ops(&side), ["before"]);

    away.store(false, std::sync::atomic::Ordering::SeqCst);
    durable_on(&writer, 6, ev("after")).await.unwrap();
    assert_eq!(
        chain_ops(&side),
        ["before", "read1", "read2", "read3", "after"]
    );
    assert_eq!(spooled_lines(&spool_path), 0, "the spool is emptied");
    let times: Vec<u64> = side
        .audit_tail(10)
        .unwrap()
        .iter()
        .map(|r| r.ts_ms)
        .collect();
    assert_eq!(times, [1, 2, 3, 5, 6], "each row keeps its own time");
}

#[tokio::test]
async fn an_idle_writer_appends_spooled_rows_by_itself_when_the_database_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, away, side, spool_path) = start_flaky(&dir);
    away.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.row(1, ev("read"), None);
    let _ = flush_on(&writer).await;
    assert_eq!(spooled_lines(&spool_path), 1);
    away.store(false, std::sync::atomic::Ordering::SeqCst);
    // Nothing else is submitted: the writer retries on its own.
    let deadline = Instant::now() + Duration::from_secs(30);
    while side.audit_tail(10).unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the spooled row never reached the chain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(chain_ops(&side), ["read"]);
    drop(writer);
}

#[tokio::test]
async fn a_relay_started_with_a_non_empty_spool_appends_it_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let spool_path = dir.path().join(super::super::SPOOL_FILE);
    let mut spool = AuditSpool::open(&spool_path).unwrap();
    spool.append(&[(1, &ev("from the last run"))]).unwrap();
    drop(spool);
    let (writer, _away, side, _) = start_flaky(&dir);
    durable_on(&writer, 2, ev("new")).await.unwrap();
    assert_eq!(chain_ops(&side), ["from the last run", "new"]);
    assert_eq!(spooled_lines(&spool_path), 0);
}
