use super::*;

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
