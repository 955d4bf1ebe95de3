//! The read side of the SQLite backend: read-only connections to the WAL database, kept in a
//! small pool and used on tokio's blocking pool. A WAL reader sees the last commit and takes
//! no lock the writer holds, so a read never waits for the writer's transaction or sync.

use super::backend::ReadJob;
use super::{SqliteStore, StoreError, StoreRead};
use parking_lot::{Mutex, MutexGuard};
use std::path::PathBuf;
use std::sync::Arc;

/// Idle connections kept for reuse; more are opened while many reads run at once (each is
/// closed when it is not needed back in the pool).
const MAX_IDLE: usize = 4;

/// The pool.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<SqliteStore>>,
}

impl Readers {
    /// Reads of the database at `path` (already migrated and in WAL mode by the writer).
    pub(crate) fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            idle: Mutex::default(),
        })
    }

    fn idle(&self) -> MutexGuard<'_, Vec<SqliteStore>> {
        self.idle.lock()
    }

    fn take(&self) -> Result<SqliteStore, StoreError> {
        let pooled = self.idle().pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => SqliteStore::open_read_only(&self.path),
        }
    }

    fn give_back(&self, conn: SqliteStore) {
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Runs `job` on a pooled connection, on the blocking pool (inline outside a runtime).
    pub(crate) fn run(self: &Arc<Self>, job: ReadJob) {
        let readers = Arc::clone(self);
        let work = move || match readers.take() {
            Ok(conn) => {
                job(Ok(&conn as &dyn StoreRead));
                readers.give_back(conn);
            }
            Err(e) => job(Err(e)),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(work);
            }
            Err(_) => work(),
        }
    }
}
