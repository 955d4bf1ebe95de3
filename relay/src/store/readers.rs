//! The read side of a backend: read connections kept in a small pool and used on tokio's
//! blocking pool. SQLite: read-only connections to the WAL database (a WAL reader sees the last
//! commit and takes no lock the writer holds, so a read never waits for the writer's
//! transaction or sync). PostgreSQL: connections of their own (MVCC: the same holds).

use super::backend::ReadJob;
use super::{SqliteStore, StoreError, StoreRead};
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;

/// Idle connections kept for reuse; more are opened while many reads run at once (each is
/// closed when it is not needed back in the pool).
const MAX_IDLE: usize = 4;

/// Opens a read connection.
type Open<S> = Box<dyn Fn() -> Result<S, StoreError> + Send + Sync>;

/// The pool.
pub(crate) struct Readers<S: Send + 'static = SqliteStore> {
    open: Open<S>,
    idle: Mutex<Vec<S>>,
}

impl<S: Send> std::fmt::Debug for Readers<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").finish_non_exhaustive()
    }
}

impl Readers<SqliteStore> {
    /// Reads of the database at `path` (already migrated and in WAL mode by the writer).
    pub(crate) fn new(path: std::path::PathBuf) -> Arc<Self> {
        Self::with(Box::new(move || SqliteStore::open_read_only(&path)))
    }
}

/// A pooled read connection.
pub(crate) trait ReadConn: StoreRead + Send + 'static {
    /// Whether it may go back to the pool (a connection the server closed may not).
    fn reusable(&self) -> bool {
        true
    }
}

impl ReadConn for SqliteStore {}

impl ReadConn for super::PgStore {
    fn reusable(&self) -> bool {
        !self.is_closed()
    }
}

impl<S: Send + 'static> Drop for Readers<S> {
    fn drop(&mut self) {
        // A PostgreSQL connection closes by blocking on its own runtime, which must not happen
        // on an async runtime's thread: idle connections are closed on a thread of their own.
        let idle = std::mem::take(&mut *self.idle.lock());
        if !idle.is_empty() && tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("cm-store-close".into())
                .spawn(move || drop(idle));
        }
    }
}

impl<S: ReadConn> Readers<S> {
    /// Reads on connections `open` makes.
    pub(crate) fn with(open: Open<S>) -> Arc<Self> {
        Arc::new(Self {
            open,
            idle: Mutex::default(),
        })
    }

    fn idle(&self) -> MutexGuard<'_, Vec<S>> {
        self.idle.lock()
    }

    fn take(&self) -> Result<S, StoreError> {
        let pooled = self.idle().pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => (self.open)(),
        }
    }

    fn give_back(&self, conn: S) {
        if !conn.reusable() {
            return;
        }
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
