//! The SQLite backend as the relay uses it: durability of acknowledged writes across a crash,
//! reads that do not wait for the writer, typed writer errors, the audit chain across batches.

use super::*;
use proto::ids::UserId;
use proto::rbac::Role;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn ev(op: &str) -> AuditEvent {
    AuditEvent {
        actor: "alice".into(),
        op: op.into(),
        decision: "allow".into(),
        ..AuditEvent::default()
    }
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("relay.db")
}

fn start(path: &Path) -> (Arc<SqliteBackend>, StoreHandle) {
    let backend = Arc::new(SqliteBackend::start(SqliteStore::open(path).unwrap(), None).unwrap());
    let handle = StoreHandle::with_backend(Arc::clone(&backend) as Arc<dyn Backend>);
    (backend, handle)
}

/// Set in the child process of the crash test: the database it writes to before it aborts.
const CRASH_CHILD_DB: &str = "CM_STORE_CRASH_CHILD_DB";
const CRASH_TEST: &str = "store::tests_backend::acknowledged_writes_survive_a_crash";
const CRASH_ROWS: u64 = 40;

/// The child: writes, waits for each acknowledgement, then dies without closing anything.
fn crash_child(path: &Path) -> ! {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_backend, handle) = start(path);
        handle
            .call(|s| s.add_user(&UserId::from("carol"), 1))
            .await
            .unwrap();
        for i in 0..CRASH_ROWS {
            handle
                .audit()
                .durable(i, ev(&format!("row{i}")))
                .await
                .unwrap();
        }
        handle
            .call(|s| s.grant(&UserId::from("carol"), "*", Role::Admin))
            .await
            .unwrap();
        // No flush, no close, no destructors: the process ends here.
        std::process::abort();
    })
}

#[test]
fn acknowledged_writes_survive_a_crash() {
    if let Some(path) = std::env::var_os(CRASH_CHILD_DB) {
        crash_child(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .args([CRASH_TEST, "--exact", "--test-threads=1", "--nocapture"])
        .env(CRASH_CHILD_DB, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to abort: {status}");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.grants(&UserId::from("carol")).unwrap(),
        vec![("*".to_owned(), Role::Admin)]
    );
    let rows = store.audit_tail(1000).unwrap();
    assert_eq!(rows.len() as u64, CRASH_ROWS);
    assert_eq!(store.audit_verify().unwrap(), None);
}

#[tokio::test]
async fn a_read_completes_while_the_writer_holds_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let (backend, handle) = start(&path);
    let bob = UserId::from("bob");
    let b = bob.clone();
    handle
        .call(move |s| {
            s.add_user(&b, 1)?;
            s.grant(&b, "box", Role::Viewer)?;
            s.set_setting("k", "before")
        })
        .await
        .unwrap();
    // Hold the writer inside a write transaction until told to commit.
    let (inside_tx, inside) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    backend.raw_write(Box::new(move |s| {
        let s = s.unwrap();
        s.conn
            .execute_batch("BEGIN IMMEDIATE; UPDATE settings SET value = 'during' WHERE key = 'k';")
            .unwrap();
        inside_tx.send(()).unwrap();
        released.recv().unwrap();
        s.conn.execute_batch("COMMIT").unwrap();
    }));
    inside.await.unwrap();
    // A row queued now waits behind the transaction ...
    let queued = {
        let h = handle.clone();
        tokio::spawn(async move { h.audit().durable(1, ev("behind")).await })
    };
    // ... while reads go on: the last commit, not the open transaction.
    let k = handle.read(|s| s.setting("k")).await.unwrap();
    assert_eq!(k.as_deref(), Some("before"));
    let b = bob.clone();
    assert_eq!(
        handle.read(move |s| s.grants(&b)).await.unwrap(),
        vec![("box".to_owned(), Role::Viewer)]
    );
    assert!(!queued.is_finished());
    release.send(()).unwrap();
    queued.await.unwrap().unwrap();
    let k = handle.read(|s| s.setting("k")).await.unwrap();
    assert_eq!(
        k.as_deref(),
        Some("during"),
        "a read sees every acknowledged write"
    );
}

#[tokio::test]
async fn a_full_disk_reaches_the_caller_as_disk_full() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, handle) = start(&db(&dir));
    // The database may not grow by a page: what needs one fails as a full disk would.
    let (tx, rx) = tokio::sync::oneshot::channel();
    backend.raw_write(Box::new(move |s| {
        let s = s.unwrap();
        let pages: i64 = s
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        s.conn.pragma_update(None, "max_page_count", pages).unwrap();
        tx.send(()).unwrap();
    }));
    rx.await.unwrap();
    let big = "x".repeat(64 * 1024);
    let err = handle
        .audit()
        .durable(
            1,
            AuditEvent {
                reason: Some(big.clone()),
                ..ev("big")
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DiskFull(_)), "{err:?}");
    let err = handle
        .call(move |s| s.set_setting("big", &big))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DiskFull(_)), "{err:?}");
    assert!(err.to_string().contains("free disk space"), "{err}");
}

#[tokio::test]
async fn a_stopped_writer_reaches_the_caller_as_writer_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, handle) = start(&db(&dir));
    handle.audit().record(1, ev("before close"));
    handle.close().await.unwrap();
    let err = handle.audit().durable(2, ev("late")).await.unwrap_err();
    assert!(matches!(err, StoreError::WriterGone), "{err:?}");
    let err = handle.call(|s| s.set_setting("k", "v")).await.unwrap_err();
    assert!(matches!(err, StoreError::WriterGone), "{err:?}");
    let err = handle.audit().flush().await.unwrap_err();
    assert!(matches!(err, StoreError::WriterGone), "{err:?}");
    // Reads still work, and see what was written before the close.
    assert_eq!(handle.read(|s| s.audit_tail(10)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_audit_chain_stays_valid_across_batches_and_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let (_backend, handle) = start(&path);
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => h.audit().durable(i, ev("waited")).await,
                1 => {
                    h.audit().record(i, ev("unwaited"));
                    Ok(())
                }
                // Jobs that write rows of their own, between the group commits.
                _ => h.call(move |s| s.audit(i, &ev("in a job"))).await,
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    handle.close().await.unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.audit_tail(1000).unwrap().len(), 300);
    assert_eq!(store.audit_verify().unwrap(), None);
}

#[tokio::test]
async fn a_grant_change_by_another_process_makes_cached_grants_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let (_backend, handle) = start(&path);
    let bob = UserId::from("bob");
    let b = bob.clone();
    handle
        .call(move |s| {
            s.add_user(&b, 1)?;
            s.grant(&b, "*", Role::Viewer)
        })
        .await
        .unwrap();
    assert_eq!(handle.grants(&bob).await.unwrap()[0].1, Role::Viewer);
    // The CLI, on its own connection.
    SqliteStore::open(&path)
        .unwrap()
        .grant(&bob, "*", Role::Admin)
        .unwrap();
    // The writer checks before each batch (and when idle, every POLL_INTERVAL): after this
    // job, the cached grant is stale for sure.
    handle.call(|_| Ok(())).await.unwrap();
    assert_eq!(handle.grants(&bob).await.unwrap()[0].1, Role::Admin);
}

#[tokio::test]
async fn an_in_memory_store_reads_through_the_writer() {
    let handle = StoreHandle::new(SqliteStore::open_in_memory().unwrap()).unwrap();
    handle.call(|s| s.set_setting("k", "v")).await.unwrap();
    assert_eq!(
        handle.read(|s| s.setting("k")).await.unwrap().as_deref(),
        Some("v")
    );
}
