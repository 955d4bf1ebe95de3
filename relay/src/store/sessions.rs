//! Session owners: who created an OpenCode session (design §6: the creator owns it).

use super::{SqliteStore, StoreError, to_i64};
use proto::ids::{HostId, UserId};
use rusqlite::{OptionalExtension, params};

impl SqliteStore {
    /// Records who created an OpenCode session (design §6: the creator owns it).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn set_session_owner(
        &self,
        host: &HostId,
        session: &str,
        owner: &UserId,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO sessions(host, session, owner, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![host.as_str(), session, owner.as_str(), to_i64(now_ms)],
        )?;
        Ok(())
    }

    /// The owner of a session, if CodeMantle saw it created.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn session_owner(
        &self,
        host: &HostId,
        session: &str,
    ) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT owner FROM sessions WHERE host = ?1 AND session = ?2",
                params![host.as_str(), session],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(UserId))
    }
}
