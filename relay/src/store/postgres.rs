//! The PostgreSQL backend's connection type and its basic queries (users, grants, invites,
//! hosts, credentials, settings); the other tables' queries are in `postgres/`. It mirrors
//! [`SqliteStore`](super::SqliteStore) method for method (the interface macro forwards to both).
//!
//! The client is the blocking `postgres` crate: the store's interface is synchronous and runs
//! on the one writer thread or on the blocking pool, like SQLite's (see docs/architecture.md).
//! Several relays may share the database, so a write transaction that checks before it writes
//! (the last owner, a template's next version) first takes [`WRITE_LOCK`], the advisory lock
//! that plays the part of SQLite's `BEGIN IMMEDIATE`.

mod admin;
mod audit;
mod connect;
mod fleet;
mod notify;
mod queue;
mod templates;
mod trust;

pub use connect::PgConfig;
pub use fleet::{FLEET_CHANNEL, PgListener, PresenceRow, PresenceWrite, RelayRow};

use super::{FoundCredential, GrantGeneration, HostRow, StoreError, to_i64, to_u64, user_changed};
use postgres::types::ToSql;
use postgres::{Client, Row};
use proto::handshake::{CredentialRecord, Key, PeerKind};
use proto::ids::{CredId, HostId, UserId};
use proto::rbac::Role;
use std::cell::{Cell, RefCell};

/// The advisory lock every checking write transaction holds (all relays serialize on it).
pub(super) const WRITE_LOCK: i64 = 0x636d_7772; // "cmwr"

/// Parameters of one statement.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The PostgreSQL store: one connection. The relay runs one as its writer and a few for reads
/// (see [`PgBackend`](super::PgBackend)); the CLI uses one directly.
pub struct PgStore {
    client: RefCell<Client>,
    /// Where to reconnect when the server closed the connection (a restart, a network cut).
    config: PgConfig,
    in_tx: Cell<bool>,
    pub(super) grants_generation: GrantGeneration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// An open transaction (or a part of the enclosing one); rolled back when dropped uncommitted.
pub(super) struct Tx<'a> {
    store: &'a PgStore,
    owner: bool,
}

impl Tx<'_> {
    /// Commits (a nested part commits with its enclosing transaction).
    pub(super) fn commit(mut self) -> Result<(), StoreError> {
        if self.owner {
            self.owner = false;
            self.store.in_tx.set(false);
            self.store.client.borrow_mut().batch_execute("COMMIT")?;
        }
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.owner {
            self.store.in_tx.set(false);
            if let Err(e) = self.store.client.borrow_mut().batch_execute("ROLLBACK") {
                tracing::error!(error = %e, "could not roll back a PostgreSQL transaction");
            }
        }
    }
}

impl PgStore {
    /// Connects and brings the schema to the newest version.
    ///
    /// # Errors
    /// Connection, TLS or migration failures.
    pub fn open(config: &PgConfig) -> Result<Self, StoreError> {
        let store = Self::connect(config)?;
        super::schema::migrate_postgres(&mut store.client.borrow_mut())?;
        Ok(store)
    }

    /// Connects without migrating (the relay's read connections, after its writer migrated).
    ///
    /// # Errors
    /// Connection or TLS failures.
    pub fn connect(config: &PgConfig) -> Result<Self, StoreError> {
        Ok(Self {
            client: RefCell::new(config.connect()?),
            config: config.clone(),
            in_tx: Cell::new(false),
            grants_generation: GrantGeneration::default(),
        })
    }

    /// Begins a transaction; `lock` takes [`WRITE_LOCK`] first. Inside a transaction already,
    /// the new one is part of it.
    pub(super) fn begin(&self, lock: bool) -> Result<Tx<'_>, StoreError> {
        if lock {
            self.begin_with(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
            ))
        } else {
            self.begin_with("BEGIN")
        }
    }

    /// Begins a read-only transaction that sees one snapshot throughout.
    pub(super) fn begin_snapshot(&self) -> Result<Tx<'_>, StoreError> {
        self.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }

    fn begin_with(&self, sql: &str) -> Result<Tx<'_>, StoreError> {
        if self.in_tx.get() {
            return Ok(Tx {
                store: self,
                owner: false,
            });
        }
        let begun = self.live()?.batch_execute(sql);
        if let Err(e) = begun {
            let _ = self.client.borrow_mut().batch_execute("ROLLBACK");
            return Err(e.into());
        }
        self.in_tx.set(true);
        Ok(Tx {
            store: self,
            owner: true,
        })
    }

    /// The connection, reconnected first if the server had closed it and no transaction is
    /// open (inside one, the statement fails and the transaction is rolled back; the next
    /// statement reconnects). So a relay comes back by itself after a database restart.
    fn live(&self) -> Result<std::cell::RefMut<'_, Client>, StoreError> {
        let mut client = self.client.borrow_mut();
        if client.is_closed() && !self.in_tx.get() {
            // Tried at every use while the database is away: not worth a line each time.
            tracing::debug!("reconnecting to PostgreSQL");
            *client = self.config.connect()?;
        }
        Ok(client)
    }

    /// Whether the connection was closed (by the server, or a network failure).
    pub(super) fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
    }

    /// Whether a transaction is open (a job must not leave one).
    pub(super) fn in_transaction(&self) -> bool {
        self.in_tx.get()
    }

    /// Rolls back a transaction a job left open.
    pub(super) fn roll_back(&self) -> Result<(), StoreError> {
        self.in_tx.set(false);
        Ok(self.client.borrow_mut().batch_execute("ROLLBACK")?)
    }

    /// Runs statements with no parameters (tests, maintenance).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn batch(&self, sql: &str) -> Result<(), StoreError> {
        Ok(self.live()?.batch_execute(sql)?)
    }

    pub(super) fn exec(&self, sql: &str, params: Params<'_>) -> Result<usize, StoreError> {
        let n = self.live()?.execute(sql, params)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(super) fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        Ok(self.live()?.query(sql, params)?)
    }

    pub(super) fn opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        Ok(self.live()?.query_opt(sql, params)?)
    }

    pub(super) fn one(&self, sql: &str, params: Params<'_>) -> Result<Row, StoreError> {
        Ok(self.live()?.query_one(sql, params)?)
    }

    /// A counter the database bumps on every grant change, by any relay or the CLI.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn grants_marker(&self) -> Result<i64, StoreError> {
        Ok(self.one("SELECT n FROM grants_changes", &[])?.try_get(0)?)
    }

    /// The generation that every grant change through this store bumps.
    pub fn grants_generation(&self) -> GrantGeneration {
        self.grants_generation.clone()
    }

    /// Checks that the schema is the one this build wrote (PostgreSQL checks its own pages).
    ///
    /// # Errors
    /// An unexpected schema version, or PostgreSQL failures.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let v: i64 = self
            .one("SELECT COALESCE(MAX(version), 0) FROM cm_schema", &[])?
            .try_get(0)?;
        if usize::try_from(v).ok() == Some(super::schema::POSTGRES.len()) {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!(
                "schema version {v}, this build expects {}",
                super::schema::POSTGRES.len()
            )))
        }
    }

    /// Reads a setting.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.opt("SELECT value FROM settings WHERE key = $1", &[&key])?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(Into::into)
    }

    /// Writes a setting.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO settings(key, value) VALUES ($1, $2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    /// Adds a user (without password).
    ///
    /// # Errors
    /// [`StoreError::Exists`] if the name is taken.
    pub fn add_user(&self, user: &UserId, now_ms: u64) -> Result<(), StoreError> {
        let n = self.exec(
            "INSERT INTO users(name, created_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&user.as_str(), &to_i64(now_ms)],
        )?;
        if n == 0 {
            return Err(StoreError::Exists {
                what: "user",
                name: user.0.clone(),
            });
        }
        Ok(())
    }

    /// Sets a user's password hash.
    ///
    /// # Errors
    /// [`StoreError::Missing`] for an unknown user.
    pub fn set_password_hash(&self, user: &UserId, hash: &str) -> Result<(), StoreError> {
        let n = self.exec(
            "UPDATE users SET password_hash = $2 WHERE name = $1",
            &[&user.as_str(), &hash],
        )?;
        user_changed(n, user)
    }

    /// A user's password hash, if the user exists and has one.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        Ok(self
            .opt(
                "SELECT password_hash FROM users WHERE name = $1",
                &[&user.as_str()],
            )?
            .map(|r| r.try_get::<_, Option<String>>(0))
            .transpose()?
            .flatten())
    }

    /// Grants `role` on `host`, replacing an earlier grant there.
    ///
    /// # Errors
    /// The last owner on `*` demoted, PostgreSQL failures (an unknown user violates the
    /// foreign key).
    pub fn grant(&self, user: &UserId, host: &str, role: Role) -> Result<(), StoreError> {
        let tx = self.begin(true)?;
        if role != Role::Owner && host == "*" && self.is_last_owner(user)? {
            return Err(StoreError::Refused(format!(
                "{user} is the last owner on every host (*); grant owner on * to someone else first"
            )));
        }
        self.exec(
            r#"INSERT INTO grants("user", host, role) VALUES ($1, $2, $3)
               ON CONFLICT("user", host) DO UPDATE SET role = excluded.role"#,
            &[&user.as_str(), &host, &role.as_str()],
        )?;
        tx.commit()?;
        self.grants_generation.bump();
        Ok(())
    }

    /// A user's grants as `(host or *, role)`.
    ///
    /// # Errors
    /// PostgreSQL failures, or a role name this build does not know.
    pub fn grants(&self, user: &UserId) -> Result<Vec<(String, Role)>, StoreError> {
        self.rows(
            r#"SELECT host, role FROM grants WHERE "user" = $1 ORDER BY host"#,
            &[&user.as_str()],
        )?
        .into_iter()
        .map(|r| {
            let (h, role): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            Role::parse(&role)
                .map(|role| (h, role))
                .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))
        })
        .collect()
    }

    /// Stores an invite (by the BLAKE3 hash of its secret).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn add_invite(
        &self,
        user: &UserId,
        secret_hash: &str,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        self.exec(
            r#"INSERT INTO invites("user", secret_hash, expires_ms) VALUES ($1, $2, $3)"#,
            &[&user.as_str(), &secret_hash, &to_i64(expires_ms)],
        )?;
        Ok(())
    }

    /// Marks an unused, unexpired invite as used; at most one caller ever gets `true`.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn redeem_invite(
        &self,
        user: &UserId,
        secret_hash: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let n = self.exec(
            r#"UPDATE invites SET used_ms = $3
               WHERE "user" = $1 AND secret_hash = $2 AND used_ms IS NULL AND expires_ms > $3"#,
            &[&user.as_str(), &secret_hash, &to_i64(now_ms)],
        )?;
        Ok(n == 1)
    }

    /// Enrolls a host; a revoked host may be enrolled again under its name, a live one not.
    ///
    /// # Errors
    /// [`StoreError::Exists`] if the id is taken.
    pub fn add_host(&self, host: &HostId, secret: &Key, now_ms: u64) -> Result<(), StoreError> {
        let n = self.exec(
            "INSERT INTO hosts(id, secret, created_ms) VALUES ($1, $2, $3)
             ON CONFLICT(id) DO UPDATE SET secret = excluded.secret, revoked = FALSE,
                 created_ms = excluded.created_ms
             WHERE hosts.revoked",
            &[&host.as_str(), &secret.to_hex(), &to_i64(now_ms)],
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
    /// PostgreSQL failures.
    pub fn list_hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        self.rows("SELECT id, revoked, created_ms FROM hosts ORDER BY id", &[])?
            .into_iter()
            .map(|r| {
                Ok(HostRow {
                    id: HostId(r.try_get(0)?),
                    revoked: r.try_get(1)?,
                    created_ms: to_u64(r.try_get(2)?),
                })
            })
            .collect()
    }

    /// Revokes a host's credential.
    ///
    /// # Errors
    /// [`StoreError::Missing`] for an unknown host.
    pub fn revoke_host(&self, host: &HostId) -> Result<(), StoreError> {
        let n = self.exec(
            "UPDATE hosts SET revoked = TRUE WHERE id = $1",
            &[&host.as_str()],
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
    /// PostgreSQL failures.
    pub fn add_credential(
        &self,
        cred: &CredId,
        user: &UserId,
        secret: &Key,
        expires_ms: u64,
        label: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.exec(
            r#"INSERT INTO creds(id, "user", secret, expires_ms, label, created_ms)
               VALUES ($1, $2, $3, $4, $5, $6)"#,
            &[
                &cred.as_str(),
                &user.as_str(),
                &secret.to_hex(),
                &to_i64(expires_ms),
                &label,
                &to_i64(now_ms),
            ],
        )?;
        Ok(())
    }

    /// Revokes one operator credential; returns whether it existed.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn revoke_credential(&self, cred: &CredId) -> Result<bool, StoreError> {
        let n = self.exec(
            "UPDATE creds SET revoked = TRUE WHERE id = $1",
            &[&cred.as_str()],
        )?;
        Ok(n == 1)
    }

    /// Looks up what a handshake needs for `cred_id` presented by a peer of `kind`.
    ///
    /// # Errors
    /// PostgreSQL failures, or a stored secret that is not 32 hex bytes.
    pub fn find_credential(
        &self,
        kind: PeerKind,
        cred_id: &CredId,
    ) -> Result<Option<FoundCredential>, StoreError> {
        let sql = match kind {
            PeerKind::Agent => "SELECT secret, revoked, NULL::BIGINT, id FROM hosts WHERE id = $1",
            PeerKind::Operator => {
                r#"SELECT secret, revoked, expires_ms, "user" FROM creds WHERE id = $1"#
            }
        };
        let Some(r) = self.opt(sql, &[&cred_id.as_str()])? else {
            return Ok(None);
        };
        let (secret, revoked, expires, owner): (String, bool, Option<i64>, String) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        let key = Key::from_hex(&secret).ok_or_else(|| {
            StoreError::Corrupt(format!("secret of {cred_id} is not 32 hex bytes"))
        })?;
        Ok(Some(FoundCredential {
            record: CredentialRecord {
                key,
                kind,
                revoked,
                expires_at_ms: expires.map(to_u64),
            },
            owner,
        }))
    }
}
