//! Test helpers: a store on either backend (SQLite in memory, or PostgreSQL on a throwaway
//! server of its own), and [`on_both_backends!`], which runs one test body on each.

use super::{PgConfig, PgStore, SqliteStore, Store, StoreError};
use crate::pg_server::PgServer;

/// A store under test.
pub(crate) enum Db {
    Sqlite(SqliteStore),
    /// The store is dropped before its server (field order).
    Postgres(
        Box<PgStore>,
        #[allow(dead_code, reason = "kept alive: dropped = stopped")] Box<PgServer>,
    ),
}

impl Db {
    pub(crate) fn sqlite() -> Self {
        Self::Sqlite(SqliteStore::open_in_memory().unwrap())
    }

    /// `None` (after a loud message) when PostgreSQL is not installed.
    pub(crate) fn postgres() -> Option<Self> {
        let server = PgServer::start()?;
        let store = PgStore::open(&pg_config(&server)).unwrap();
        Some(Self::Postgres(Box::new(store), Box::new(server)))
    }

    /// Runs raw SQL (what an attacker with database access could do).
    pub(crate) fn sql(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => Ok(s.conn.execute_batch(sql)?),
            Self::Postgres(s, _) => s.batch(sql),
        }
    }

    /// The one integer `sql` selects.
    pub(crate) fn count(&self, sql: &str) -> i64 {
        match self {
            Self::Sqlite(s) => s.conn.query_row(sql, [], |r| r.get(0)).unwrap(),
            Self::Postgres(s, _) => s.one(sql, &[]).unwrap().get(0),
        }
    }

    /// The one text `sql` selects.
    pub(crate) fn text(&self, sql: &str) -> String {
        match self {
            Self::Sqlite(s) => s.conn.query_row(sql, [], |r| r.get(0)).unwrap(),
            Self::Postgres(s, _) => s.one(sql, &[]).unwrap().get(0),
        }
    }

    /// Drops one of the audit table's append-only triggers.
    pub(crate) fn drop_audit_trigger(&self, name: &str) {
        match self {
            Self::Sqlite(_) => self.sql(&format!("DROP TRIGGER {name}")),
            Self::Postgres(..) => self.sql(&format!("DROP TRIGGER {name} ON audit")),
        }
        .unwrap();
    }
}

/// How a store reaches a test server.
pub(crate) fn pg_config(server: &PgServer) -> PgConfig {
    PgConfig {
        url: server.url(),
        ca_file: None,
    }
}

impl std::ops::Deref for Db {
    type Target = Store;

    fn deref(&self) -> &Store {
        match self {
            Self::Sqlite(s) => s,
            Self::Postgres(s, _) => &**s,
        }
    }
}

/// `on_both_backends! { fn name(s) { body } … }`: a module per test with a `sqlite` and a
/// `postgres` case, `s` being a [`Db`] of that backend.
macro_rules! on_both_backends {
    ($($(#[$meta:meta])* fn $name:ident($s:ident) $body:block)*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                use $crate::store::test_db::Db;

                fn body($s: &Db) $body

                #[test]
                fn sqlite() {
                    body(&Db::sqlite());
                }

                #[test]
                fn postgres() {
                    if let Some(db) = Db::postgres() {
                        body(&db);
                    }
                }
            }
        )*
    };
}
pub(crate) use on_both_backends;
