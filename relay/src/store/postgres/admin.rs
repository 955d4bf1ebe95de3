//! Administration of users, grants, credentials and hosts, the kill switch's store side,
//! session owners and TOTP state, on PostgreSQL (the SQLite twin is `store/admin.rs`).

use super::super::{CredRow, REVOCATION_EPOCH, TotpState, UserRow};
use super::{PgStore, StoreError, to_i64, to_u64, user_changed};
use proto::ids::{CredId, HostId, UserId};

impl PgStore {
    /// The current revocation epoch (0 before any revocation).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn revocation_epoch(&self) -> Result<u64, StoreError> {
        Ok(self
            .setting(REVOCATION_EPOCH)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Increments the revocation epoch and refuses queued prompts of revoked credentials.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn bump_revocation_epoch(&self) -> Result<u64, StoreError> {
        let next = self.next_revocation_epoch()?;
        self.refuse_revoked_queue()?;
        Ok(next)
    }

    fn next_revocation_epoch(&self) -> Result<u64, StoreError> {
        // One statement: relays bumping at once each get their own number.
        let row = self.one(
            "INSERT INTO settings(key, value) VALUES ($1, '1')
             ON CONFLICT(key) DO UPDATE SET value = (settings.value::BIGINT + 1)::TEXT
             RETURNING value",
            &[&REVOCATION_EPOCH],
        )?;
        let value: String = row.try_get(0)?;
        value
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("revocation epoch {value:?}")))
    }

    fn refuse_revoked_queue(&self) -> Result<(), StoreError> {
        let refused = self.queue_refuse_revoked()?;
        if refused > 0 {
            tracing::info!(
                entries = refused,
                "queued prompts refused: their credential or host was revoked"
            );
        }
        Ok(())
    }

    /// Revoked (or removed users') credentials that would not yet have expired at `now_ms`.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn revoked_unexpired(&self, now_ms: u64) -> Result<Vec<CredId>, StoreError> {
        self.rows(
            "SELECT id FROM creds WHERE revoked AND expires_ms > $1
             UNION SELECT id FROM removed_creds WHERE expires_ms > $1
             ORDER BY id",
            &[&to_i64(now_ms)],
        )?
        .into_iter()
        .map(|r| Ok(CredId(r.try_get(0)?)))
        .collect()
    }

    /// [`Self::revoked_unexpired`], each with the hosts (or `*`) it could reach.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn revoked_unexpired_with_hosts(
        &self,
        now_ms: u64,
    ) -> Result<Vec<(CredId, String)>, StoreError> {
        self.rows(
            r#"SELECT c.id, g.host FROM creds c JOIN grants g ON g."user" = c."user"
                 WHERE c.revoked AND c.expires_ms > $1
               UNION SELECT r.id, h.host FROM removed_creds r
                 JOIN removed_cred_hosts h ON h.id = r.id WHERE r.expires_ms > $1
               ORDER BY 1, 2"#,
            &[&to_i64(now_ms)],
        )?
        .into_iter()
        .map(|r| Ok((CredId(r.try_get(0)?), r.try_get(1)?)))
        .collect()
    }

    /// All users with their grants.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = self.rows(
            "SELECT name, password_hash IS NOT NULL FROM users ORDER BY name",
            &[],
        )?;
        rows.into_iter()
            .map(|r| {
                let name = UserId(r.try_get(0)?);
                let grants = self.grants(&name)?;
                Ok(UserRow {
                    name,
                    has_password: r.try_get(1)?,
                    grants,
                })
            })
            .collect()
    }

    /// Whether `user` is the only owner on `*`.
    pub(in super::super) fn is_last_owner(&self, user: &UserId) -> Result<bool, StoreError> {
        let owners: Vec<String> = self
            .rows(
                r#"SELECT DISTINCT "user" FROM grants WHERE role = 'owner' AND host = '*'
                   ORDER BY "user""#,
                &[],
            )?
            .into_iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        Ok(owners == [user.0.clone()])
    }

    fn last_owner_refused(user: &UserId) -> StoreError {
        StoreError::Refused(format!(
            "{user} is the last owner on every host (*); grant owner on * to someone else first"
        ))
    }

    /// Removes a user, their grants and credentials (remembering the unexpired ones as
    /// revoked). The last owner on `*` cannot be removed.
    ///
    /// # Errors
    /// Unknown user, last owner, PostgreSQL failures.
    pub fn remove_user(&self, user: &UserId, now_ms: u64) -> Result<(), StoreError> {
        let tx = self.begin(true)?;
        if self.is_last_owner(user)? {
            return Err(Self::last_owner_refused(user));
        }
        let (u, now) = (user.as_str(), to_i64(now_ms));
        self.exec("DELETE FROM removed_creds WHERE expires_ms <= $1", &[&now])?;
        self.exec(
            "DELETE FROM removed_cred_hosts WHERE id NOT IN (SELECT id FROM removed_creds)",
            &[],
        )?;
        self.exec(
            r#"INSERT INTO removed_creds(id, "user", expires_ms)
               SELECT id, "user", expires_ms FROM creds WHERE "user" = $1 AND expires_ms > $2
               ON CONFLICT(id) DO UPDATE SET "user" = excluded."user",
                   expires_ms = excluded.expires_ms"#,
            &[&u, &now],
        )?;
        self.exec(
            r#"INSERT INTO removed_cred_hosts(id, host)
               SELECT c.id, g.host FROM creds c JOIN grants g ON g."user" = c."user"
                WHERE c."user" = $1 AND c.expires_ms > $2
               ON CONFLICT DO NOTHING"#,
            &[&u, &now],
        )?;
        let n = self.exec("DELETE FROM users WHERE name = $1", &[&u])?;
        if n == 0 {
            return Err(StoreError::Missing {
                what: "user",
                name: user.0.clone(),
            });
        }
        self.next_revocation_epoch()?;
        tx.commit()?;
        self.grants_generation.bump();
        self.refuse_revoked_queue()?;
        Ok(())
    }

    /// Removes a grant. The last owner grant on `*` cannot be removed.
    ///
    /// # Errors
    /// No such grant, last owner, PostgreSQL failures.
    pub fn revoke_grant(&self, user: &UserId, host: &str) -> Result<(), StoreError> {
        let tx = self.begin(true)?;
        let role: Option<String> = self
            .opt(
                r#"SELECT role FROM grants WHERE "user" = $1 AND host = $2"#,
                &[&user.as_str(), &host],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        let Some(role) = role else {
            return Err(StoreError::NoGrant {
                user: user.to_string(),
                host: host.to_owned(),
            });
        };
        if role == "owner" && host == "*" && self.is_last_owner(user)? {
            return Err(Self::last_owner_refused(user));
        }
        self.exec(
            r#"DELETE FROM grants WHERE "user" = $1 AND host = $2"#,
            &[&user.as_str(), &host],
        )?;
        tx.commit()?;
        self.grants_generation.bump();
        Ok(())
    }

    /// All credentials, newest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn list_credentials(&self) -> Result<Vec<CredRow>, StoreError> {
        self.rows(
            r#"SELECT id, "user", expires_ms, revoked, label, created_ms FROM creds
               ORDER BY created_ms DESC"#,
            &[],
        )?
        .into_iter()
        .map(|r| {
            Ok(CredRow {
                id: CredId(r.try_get(0)?),
                user: UserId(r.try_get(1)?),
                expires_ms: to_u64(r.try_get(2)?),
                revoked: r.try_get(3)?,
                label: r.try_get(4)?,
                created_ms: to_u64(r.try_get(5)?),
            })
        })
        .collect()
    }

    /// Revokes every live credential of `user`; returns how many.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn revoke_user_credentials(&self, user: &UserId, now_ms: u64) -> Result<usize, StoreError> {
        let n = self.exec(
            r#"UPDATE creds SET revoked = TRUE
               WHERE "user" = $1 AND NOT revoked AND expires_ms > $2"#,
            &[&user.as_str(), &to_i64(now_ms)],
        )?;
        self.bump_revocation_epoch()?;
        Ok(n)
    }

    /// Revokes every live operator credential and every host; returns (credentials, hosts).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn revoke_everything(&self, now_ms: u64) -> Result<(usize, usize), StoreError> {
        let creds = self.exec(
            "UPDATE creds SET revoked = TRUE WHERE NOT revoked AND expires_ms > $1",
            &[&to_i64(now_ms)],
        )?;
        let hosts = self.exec("UPDATE hosts SET revoked = TRUE WHERE NOT revoked", &[])?;
        self.bump_revocation_epoch()?;
        Ok((creds, hosts))
    }

    /// Revokes a host and bumps the epoch.
    ///
    /// # Errors
    /// Unknown host, PostgreSQL failures.
    pub fn kill_host(&self, host: &HostId) -> Result<(), StoreError> {
        self.revoke_host(host)?;
        self.bump_revocation_epoch()?;
        Ok(())
    }

    /// Revokes one credential and bumps the epoch; returns whether it existed.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn kill_credential(&self, cred: &CredId) -> Result<bool, StoreError> {
        let found = self.revoke_credential(cred)?;
        self.bump_revocation_epoch()?;
        Ok(found)
    }

    /// Records who created a session (the first creator stays its owner).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn set_session_owner(
        &self,
        host: &HostId,
        session: &str,
        owner: &UserId,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO sessions(host, session, owner, created_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&host.as_str(), &session, &owner.as_str(), &to_i64(now_ms)],
        )?;
        Ok(())
    }

    /// The owner of a session, if CodeMantle saw it created.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn session_owner(
        &self,
        host: &HostId,
        session: &str,
    ) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .opt(
                "SELECT owner FROM sessions WHERE host = $1 AND session = $2",
                &[&host.as_str(), &session],
            )?
            .map(|r| r.try_get(0))
            .transpose()?
            .map(UserId))
    }

    /// Enrolls (or replaces) a user's TOTP secret.
    ///
    /// # Errors
    /// Unknown user, PostgreSQL failures.
    pub fn set_totp_secret(&self, user: &UserId, secret: &[u8]) -> Result<(), StoreError> {
        let n = self.exec(
            "UPDATE users SET totp_secret = $2, totp_last_step = NULL WHERE name = $1",
            &[&user.as_str(), &hex::encode(secret)],
        )?;
        user_changed(n, user)
    }

    /// A user's TOTP secret and the step of the last accepted code, if enrolled.
    ///
    /// # Errors
    /// PostgreSQL failures, or a stored secret that is not hex.
    pub fn totp(&self, user: &UserId) -> Result<Option<TotpState>, StoreError> {
        let Some(r) = self.opt(
            "SELECT totp_secret, totp_last_step FROM users WHERE name = $1",
            &[&user.as_str()],
        )?
        else {
            return Ok(None);
        };
        let (secret, last): (Option<String>, Option<i64>) = (r.try_get(0)?, r.try_get(1)?);
        let Some(secret) = secret else {
            return Ok(None);
        };
        let bytes = hex::decode(&secret)
            .map_err(|_| StoreError::Corrupt(format!("totp secret of {user}")))?;
        Ok(Some((bytes, last.map(to_u64))))
    }

    /// Claims the step of an accepted code: `false` when it (or a later one) was used.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn claim_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let n = self.exec(
            "UPDATE users SET totp_last_step = $2
             WHERE name = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
            &[&user.as_str(), &to_i64(step)],
        )?;
        Ok(n == 1)
    }
}
