//! The relay's durable state: users, grants, hosts, credentials, invites, settings, the
//! offline prompt queue and the hash-chained audit trail.
//!
//! - The interface is [`StoreRead`] / [`StoreWrite`] (alias [`Store`]), implemented by
//!   [`SqliteStore`] (one SQLite connection; the CLI uses it directly).
//! - The running relay uses a [`StoreHandle`] over a [`Backend`]: [`SqliteBackend`] has one
//!   writer thread that owns the write connection and takes mutations and audit rows over a
//!   queue (group commit, see `writer.rs`), and read-only WAL connections for reads, so a read
//!   never waits for the writer's sync. A PostgreSQL backend implements [`Backend`] and the
//!   two traits; the network code only sees the handle. [`PgBackend`] is that backend: the
//!   same writer thread and group commit over a PostgreSQL connection ([`PgStore`]), so
//!   several relays can share one database (`[store] backend = "postgres"`).

mod admin;
mod audit;
mod audit_spool;
mod backend;
mod grant_cache;
mod handle;
mod interface;
mod notify;
mod postgres;
mod queue;
mod readers;
mod schema;
mod session_cache;
mod sessions;
mod sqlite;
mod templates;
mod totp_state;
mod trust;
mod writer;

pub use admin::{CredRow, REVOCATION_EPOCH, UserRow};
pub use audit::{AuditEvent, AuditFilter, AuditRow, MAX_FIELD_CHARS, MAX_REASON_CHARS};
pub use audit_spool::{AuditSpool, SPOOL_FILE};
pub use backend::{Ack, Backend, PgBackend, ReadJob, SqliteBackend, WriteJob};
pub use grant_cache::{GrantCache, GrantGeneration, Grants, POLL_INTERVAL as GRANTS_POLL_INTERVAL};
pub use handle::{AuditWriter, StoreHandle};
pub use interface::{Store, StoreRead, StoreWrite};
pub use notify::NotifyRow;
pub use postgres::{
    FLEET_CHANNEL, PgConfig, PgListener, PgStore, PresenceRow, PresenceWrite, RelayRow,
};
pub use queue::{QueueRow, SEALED_PREVIEW, is_sealed_body};
pub use sqlite::SqliteStore;
pub use templates::Published;
pub use totp_state::TotpState;

use proto::handshake::CredentialRecord;
use proto::ids::HostId;
use sqlite::{to_i64, to_u64, user_changed};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    /// PostgreSQL failed (or could not be reached).
    #[error("database: {0}")]
    Postgres(::postgres::Error),
    /// The disk (or the database's size limit) is full: nothing was written.
    #[error("database full, nothing was written ({0}); free disk space on the relay")]
    DiskFull(String),
    /// The database server could not be reached or refused the connection (TLS included).
    #[error("cannot connect to the database: {0}; check [store] url and ca_file in relay.toml")]
    Connect(String),
    /// The database cannot be reached right now (a shared copy of [`Self::Connect`] or of a
    /// lost connection); the relay reconnects by itself.
    #[error("store unavailable, retrying: {0}")]
    Unavailable(String),
    /// A write shared by several callers (a group commit of audit rows) failed.
    #[error("database write failed: {0}")]
    WriteFailed(String),
    /// The store's writer has stopped (it was closed, or its thread ended): nothing more can
    /// be written.
    #[error("the store's writer has stopped; restart the relay (see its log)")]
    WriterGone,
    /// A name is taken.
    #[error("{what} {name:?} already exists")]
    Exists {
        /// What kind of thing.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// A name is unknown.
    #[error("no {what} named {name:?}")]
    Missing {
        /// What kind of thing.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// A user holds no grant on a host.
    #[error("{user} has no grant on {host}")]
    NoGrant {
        /// The user.
        user: String,
        /// The host or `*`.
        host: String,
    },
    /// The change is not allowed (e.g. removing the last owner).
    #[error("{0}")]
    Refused(String),
    /// The blocking task failed.
    #[error("store task failed: {0}")]
    Task(String),
    /// Data in the database is not what this build expects.
    #[error("database content is invalid: {0}")]
    Corrupt(String),
    /// The database file could not be created or made owner-only.
    #[error("database file {0}")]
    Io(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            Self::DiskFull(e.to_string())
        } else {
            Self::Sqlite(e)
        }
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        if e.code() == Some(&::postgres::error::SqlState::DISK_FULL) {
            Self::DiskFull(e.to_string())
        } else {
            Self::Postgres(e)
        }
    }
}

impl StoreError {
    /// A copy for each of several callers that share one failed write (the error is not
    /// `Clone`); the kind (disk full, writer gone) is kept.
    pub(crate) fn share(&self) -> Self {
        match self {
            Self::DiskFull(m) => Self::DiskFull(m.clone()),
            Self::WriterGone => Self::WriterGone,
            other if other.is_unavailable() => Self::Unavailable(other.to_string()),
            other => Self::WriteFailed(other.to_string()),
        }
    }

    /// Whether the database is away rather than refusing this request: it could not be
    /// reached, the connection was lost or the server is shutting down or starting up
    /// (PostgreSQL), or it stayed locked by another writer (SQLite). The same request may
    /// succeed once it is back; the relay reconnects by itself.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Unavailable(_) => true,
            Self::Postgres(e) => postgres_unavailable(e),
            Self::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

/// A lost connection, an I/O failure, or a server that is shutting down, starting up or out of
/// connections (SQLSTATE classes 08, 57 and 53300).
fn postgres_unavailable(e: &::postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        return code.starts_with("08") || code.starts_with("57") || code == "53300";
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A host row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    /// Host id.
    pub id: HostId,
    /// Revoked hosts cannot connect.
    pub revoked: bool,
    /// Enrollment time, unix ms.
    pub created_ms: u64,
}

/// A credential with its owner, as found at handshake time.
#[derive(Debug, Clone)]
pub struct FoundCredential {
    /// What the handshake needs.
    pub record: CredentialRecord,
    /// The user (operators) or host (agents) it belongs to.
    pub owner: String,
}

#[cfg(test)]
pub(crate) mod test_db;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_backend;
#[cfg(test)]
mod tests_fleet;
#[cfg(test)]
mod tests_notify;
#[cfg(test)]
mod tests_pg;
#[cfg(test)]
mod tests_trust;
