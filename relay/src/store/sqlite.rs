//! The SQLite backend's connection type and its basic queries (users, grants, invites, hosts,
//! credentials, settings); the other tables' queries are in `admin.rs`, `audit.rs` and
//! `queue.rs`.

use super::{FoundCredential, GrantGeneration, HostRow, StoreError, schema};
use proto::handshake::{CredentialRecord, Key, PeerKind};
use proto::ids::{CredId, HostId, UserId};
use proto::rbac::Role;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// The SQLite store: one connection. The relay runs one of these as its writer and a few
/// read-only ones for reads (see [`SqliteBackend`](super::SqliteBackend)); the CLI uses one
/// directly.
#[derive(Debug)]
pub struct SqliteStore {
    pub(super) conn: Connection,
    /// Bumped by every grant change made through this store (see [`GrantCache`](super::GrantCache)).
    pub(super) grants_generation: GrantGeneration,
    /// The database file (`None` in memory): where read-only connections open.
    path: Option<PathBuf>,
}

/// `Ok` if an update touched the user's row, else [`StoreError::Missing`].
pub(super) fn user_changed(rows: usize, user: &UserId) -> Result<(), StoreError> {
    if rows == 0 {
        return Err(StoreError::Missing {
            what: "user",
            name: user.0.clone(),
        });
    }
    Ok(())
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Creates the database file owner-only (0600) if it is missing, and makes an existing one
/// (and its WAL files) owner-only: it holds password hashes and credential secrets, and SQLite
/// would create it 0644 (its WAL and shared-memory files then copy the database's mode).
fn owner_only(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", path.display()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
            }
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        owner_only(path)?;
        let conn = Connection::open(path)?;
        let mut store = Self::init(conn)?;
        store.path = Some(path.to_owned());
        Ok(store)
    }

    /// A read-only connection to the database at `path`, which an opened store has migrated
    /// and put in WAL mode: its reads never wait for the writer (WAL readers see the last
    /// commit and take no lock a writer holds).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Self {
            conn,
            grants_generation: GrantGeneration::default(),
            path: Some(path.to_owned()),
        })
    }

    /// The database file, if the store is not in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// An in-memory store (tests).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Self {
            conn,
            grants_generation: GrantGeneration::default(),
            path: None,
        };
        schema::migrate(&mut store.conn)?;
        Ok(store)
    }

    /// Runs SQLite's integrity check; `Ok(())` when it says "ok".
    ///
    /// # Errors
    /// The check's findings, or SQLite failures.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if result == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt(result))
        }
    }

    /// Reads a setting.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Writes a setting.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO settings(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Adds a user (without password).
    ///
    /// # Errors
    /// [`StoreError::Exists`] if the name is taken.
    pub fn add_user(&self, user: &UserId, now_ms: u64) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO users(name, created_ms) VALUES (?1, ?2)",
            params![user.as_str(), to_i64(now_ms)],
        )?;
        if n == 0 {
            return Err(StoreError::Exists {
                what: "user",
                name: user.0.clone(),
            });
        }
        Ok(())
    }

    /// Sets a user's password hash (argon2id PHC string).
    ///
    /// # Errors
    /// [`StoreError::Missing`] for an unknown user.
    pub fn set_password_hash(&self, user: &UserId, hash: &str) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE users SET password_hash = ?2 WHERE name = ?1",
            params![user.as_str(), hash],
        )?;
        user_changed(n, user)
    }

    /// A user's password hash, if the user exists and has one.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT password_hash FROM users WHERE name = ?1",
                [user.as_str()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Grants `role` on `host` (`*` for every host), replacing an earlier grant there.
    ///
    /// # Errors
    /// SQLite failures (an unknown user violates the foreign key).
    pub fn grant(&self, user: &UserId, host: &str, role: Role) -> Result<(), StoreError> {
        // One write transaction: two owners demoting each other cannot both pass the check.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        // Only owners on `*` count: an owner of one host cannot administer the relay.
        if role != Role::Owner && host == "*" && self.is_last_owner(user)? {
            return Err(StoreError::Refused(format!(
                "{user} is the last owner on every host (*); grant owner on * to someone else first"
            )));
        }
        tx.execute(
            "INSERT INTO grants(user, host, role) VALUES (?1, ?2, ?3)
             ON CONFLICT(user, host) DO UPDATE SET role = excluded.role",
            params![user.as_str(), host, role.as_str()],
        )?;
        tx.commit()?;
        self.grants_generation.bump();
        Ok(())
    }

    /// The generation that every grant change through this store bumps.
    pub fn grants_generation(&self) -> GrantGeneration {
        self.grants_generation.clone()
    }

    /// SQLite's `data_version`: changes whenever another connection (the CLI) commits.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// A user's grants as `(host or *, role)`.
    ///
    /// # Errors
    /// SQLite failures, or a role name this build does not know.
    pub fn grants(&self, user: &UserId) -> Result<Vec<(String, Role)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT host, role FROM grants WHERE user = ?1 ORDER BY host")?;
        let rows: Vec<(String, String)> = stmt
            .query_map([user.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(h, r)| {
                Role::parse(&r)
                    .map(|role| (h, role))
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown role {r:?}")))
            })
            .collect()
    }

    /// Stores an invite (by the BLAKE3 hash of its secret).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn add_invite(
        &self,
        user: &UserId,
        secret_hash: &str,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO invites(user, secret_hash, expires_ms) VALUES (?1, ?2, ?3)",
            params![user.as_str(), secret_hash, to_i64(expires_ms)],
        )?;
        Ok(())
    }

    /// Marks an unused, unexpired invite of `user` with this secret hash as used. Returns
    /// whether one was found; at most one caller ever gets `true` for an invite.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn redeem_invite(
        &self,
        user: &UserId,
        secret_hash: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE invites SET used_ms = ?3
             WHERE user = ?1 AND secret_hash = ?2 AND used_ms IS NULL AND expires_ms > ?3",
            params![user.as_str(), secret_hash, to_i64(now_ms)],
        )?;
        Ok(n == 1)
    }

    /// Enrolls a host with its secret. A revoked host may be enrolled again under its name (with
    /// a new secret); a live one may not.
    ///
    /// # Errors
    /// [`StoreError::Exists`] if the id is taken.
    pub fn add_host(&self, host: &HostId, secret: &Key, now_ms: u64) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "INSERT INTO hosts(id, secret, created_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET secret = excluded.secret, revoked = 0,
                 created_ms = excluded.created_ms
             WHERE hosts.revoked = 1",
            params![host.as_str(), secret.to_hex(), to_i64(now_ms)],
        )?;
        if n == 0 {
            return Err(StoreError::Exists {
                what: "host",
                name: host.0.clone(),
            });
        }
        Ok(())
    }

    /// All hosts, sorted by id.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn list_hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, revoked, created_ms FROM hosts ORDER BY id")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(HostRow {
                    id: HostId(r.get(0)?),
                    revoked: r.get(1)?,
                    created_ms: to_u64(r.get(2)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Revokes a host's credential.
    ///
    /// # Errors
    /// [`StoreError::Missing`] for an unknown host.
    pub fn revoke_host(&self, host: &HostId) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE hosts SET revoked = 1 WHERE id = ?1",
            [host.as_str()],
        )?;
        if n == 0 {
            return Err(StoreError::Missing {
                what: "host",
                name: host.0.clone(),
            });
        }
        Ok(())
    }

    /// Issues an operator credential.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn add_credential(
        &self,
        cred: &CredId,
        user: &UserId,
        secret: &Key,
        expires_ms: u64,
        label: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO creds(id, user, secret, expires_ms, label, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                cred.as_str(),
                user.as_str(),
                secret.to_hex(),
                to_i64(expires_ms),
                label,
                to_i64(now_ms)
            ],
        )?;
        Ok(())
    }

    /// Revokes one operator credential; returns whether it existed.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn revoke_credential(&self, cred: &CredId) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE creds SET revoked = 1 WHERE id = ?1",
            [cred.as_str()],
        )?;
        Ok(n == 1)
    }

    /// Looks up what a handshake needs for `cred_id` presented by a peer of `kind`.
    ///
    /// # Errors
    /// SQLite failures, or a stored secret that is not 32 hex bytes.
    pub fn find_credential(
        &self,
        kind: PeerKind,
        cred_id: &CredId,
    ) -> Result<Option<FoundCredential>, StoreError> {
        let row: Option<(String, bool, Option<i64>, String)> = match kind {
            PeerKind::Agent => self
                .conn
                .query_row(
                    "SELECT secret, revoked, NULL, id FROM hosts WHERE id = ?1",
                    [cred_id.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?,
            PeerKind::Operator => self
                .conn
                .query_row(
                    "SELECT secret, revoked, expires_ms, user FROM creds WHERE id = ?1",
                    [cred_id.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?,
        };
        row.map(|(secret, revoked, expires, owner)| {
            let key = Key::from_hex(&secret).ok_or_else(|| {
                StoreError::Corrupt(format!("secret of {cred_id} is not 32 hex bytes"))
            })?;
            Ok(FoundCredential {
                record: CredentialRecord {
                    key,
                    kind,
                    revoked,
                    expires_at_ms: expires.map(to_u64),
                },
                owner,
            })
        })
        .transpose()
    }
}
