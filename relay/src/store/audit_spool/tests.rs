use super::*;
use crate::store::SqliteStore;
use std::cell::Cell;

fn ev(op: &str) -> AuditEvent {
    AuditEvent {
        actor: "alice".into(),
        op: op.into(),
        decision: "allow".into(),
        reason: Some("a \"quoted\"\nline".into()),
        ..AuditEvent::default()
    }
}

fn spool_at(dir: &tempfile::TempDir) -> (PathBuf, AuditSpool) {
    let path = dir.path().join(SPOOL_FILE);
    let spool = AuditSpool::open(&path).unwrap();
    (path, spool)
}

fn append(spool: &mut AuditSpool, rows: &[(u64, &str)]) {
    let events: Vec<(u64, AuditEvent)> = rows.iter().map(|(t, op)| (*t, ev(op))).collect();
    let refs: Vec<(u64, &AuditEvent)> = events.iter().map(|(t, e)| (*t, e)).collect();
    spool.append(&refs).unwrap();
}

fn chain(store: &SqliteStore) -> Vec<(u64, String)> {
    assert_eq!(store.audit_verify().unwrap(), None, "the chain verifies");
    store
        .audit_tail(1_000)
        .unwrap()
        .into_iter()
        .map(|r| (r.ts_ms, r.event.op))
        .collect()
}

fn ops(rows: &[(u64, &str)]) -> Vec<(u64, String)> {
    rows.iter().map(|(t, o)| (*t, (*o).to_owned())).collect()
}

#[test]
fn spooled_rows_survive_a_reopen_and_join_the_chain_in_order_with_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut spool) = spool_at(&dir);
    append(&mut spool, &[(30, "a"), (10, "b")]);
    append(&mut spool, &[(20, "c")]);
    drop(spool);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "owner-only");

    let mut spool = AuditSpool::open(&path).unwrap();
    assert_eq!(spool.len(), 3);
    let store = SqliteStore::open_in_memory().unwrap();
    store.audit(1, &ev("before")).unwrap();
    assert_eq!(spool.flush(&store).unwrap(), 3);
    assert_eq!(
        chain(&store),
        ops(&[(1, "before"), (30, "a"), (10, "b"), (20, "c")])
    );
    assert_eq!(
        store.audit_tail(10).unwrap()[1].event,
        ev("a"),
        "fields kept"
    );
}

#[test]
fn a_flushed_spool_is_empty_on_disk_and_starts_a_new_generation() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut spool) = spool_at(&dir);
    append(&mut spool, &[(1, "a")]);
    let first = spool.generation.clone();
    let store = SqliteStore::open_in_memory().unwrap();
    spool.flush(&store).unwrap();
    assert!(spool.is_empty());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    append(&mut spool, &[(2, "b")]);
    assert_ne!(spool.generation, first);
    assert_eq!(spool.flush(&store).unwrap(), 1);
    assert_eq!(chain(&store), ops(&[(1, "a"), (2, "b")]));
    assert_eq!(spool.flush(&store).unwrap(), 0, "nothing left");
}

#[test]
fn a_torn_last_line_is_cut_off_and_the_rows_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut spool) = spool_at(&dir);
    append(&mut spool, &[(1, "a"), (2, "b")]);
    drop(spool);
    let whole = std::fs::metadata(&path).unwrap().len();
    // The relay stopped in the middle of writing a third line.
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"generation":"ab","seq":3,"ts"#)
        .unwrap();
    drop(file);

    let mut spool = AuditSpool::open(&path).unwrap();
    assert_eq!(spool.len(), 2);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "cut");
    // Appending goes on after the last whole line, in the same generation.
    append(&mut spool, &[(3, "c")]);
    let store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(spool.flush(&store).unwrap(), 3);
    assert_eq!(chain(&store), ops(&[(1, "a"), (2, "b"), (3, "c")]));
}

#[test]
fn rows_appended_before_a_crash_that_kept_the_file_are_not_appended_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut spool) = spool_at(&dir);
    append(&mut spool, &[(1, "a"), (2, "b")]);
    // The relay dies after the commit and before the file is emptied: the file comes back.
    let before = std::fs::read(&path).unwrap();
    let store = SqliteStore::open_in_memory().unwrap();
    spool.flush(&store).unwrap();
    drop(spool);
    std::fs::write(&path, &before).unwrap();

    let mut spool = AuditSpool::open(&path).unwrap();
    assert_eq!(spool.len(), 2);
    // Rows spooled after the restart (same generation) are the only ones appended.
    append(&mut spool, &[(3, "c")]);
    assert_eq!(spool.flush(&store).unwrap(), 1);
    assert_eq!(chain(&store), ops(&[(1, "a"), (2, "b"), (3, "c")]));
}

/// A store that is away after `up` appends.
struct Flaky {
    store: SqliteStore,
    up: Cell<usize>,
}

impl SpoolSink for Flaky {
    fn spool_mark(&self, generation: &str) -> Result<Option<u64>, StoreError> {
        self.store.spool_mark(generation)
    }

    fn append_spooled(
        &self,
        rows: &[(u64, &AuditEvent)],
        generation: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        if self.up.get() == 0 {
            return Err(StoreError::Connect("connection refused".into()));
        }
        self.up.set(self.up.get() - 1);
        self.store.append_spooled(rows, generation, seq)
    }
}

#[test]
fn a_flush_cut_off_by_the_database_resumes_after_what_it_appended() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut spool) = spool_at(&dir);
    let n = FLUSH_CHUNK + 3;
    let events: Vec<(u64, AuditEvent)> = (0..n as u64).map(|i| (i, ev(&format!("r{i}")))).collect();
    let refs: Vec<(u64, &AuditEvent)> = events.iter().map(|(t, e)| (*t, e)).collect();
    spool.append(&refs).unwrap();
    let flaky = Flaky {
        store: SqliteStore::open_in_memory().unwrap(),
        up: Cell::new(1),
    };
    let err = spool.flush(&flaky).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert_eq!(spool.len(), n, "the rows wait in the file");
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    assert_eq!(flaky.store.audit_tail(10_000).unwrap().len(), FLUSH_CHUNK);

    flaky.up.set(1);
    assert_eq!(spool.flush(&flaky).unwrap(), 3);
    let got: Vec<String> = chain(&flaky.store).into_iter().map(|(_, op)| op).collect();
    let want: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    assert_eq!(got, want, "each row once, in order");
}
