//! Users' TOTP secrets and the step of the last code accepted (a code is used once).

use super::{SqliteStore, StoreError, to_i64, to_u64, user_changed};
use proto::ids::UserId;
use rusqlite::{OptionalExtension, params};

/// A user's TOTP secret and the step of the last code accepted.
pub type TotpState = (Vec<u8>, Option<u64>);

impl SqliteStore {
    /// Enrolls (or replaces) a user's TOTP secret.
    ///
    /// # Errors
    /// Unknown user, SQLite failures.
    pub fn set_totp_secret(&self, user: &UserId, secret: &[u8]) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE users SET totp_secret = ?2, totp_last_step = NULL WHERE name = ?1",
            params![user.as_str(), hex::encode(secret)],
        )?;
        user_changed(n, user)
    }

    /// A user's TOTP secret and the step of the last accepted code, if enrolled.
    ///
    /// # Errors
    /// SQLite failures, or a stored secret that is not hex.
    pub fn totp(&self, user: &UserId) -> Result<Option<TotpState>, StoreError> {
        let row: Option<(Option<String>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT totp_secret, totp_last_step FROM users WHERE name = ?1",
                [user.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((Some(secret), last)) => {
                let bytes = hex::decode(&secret)
                    .map_err(|_| StoreError::Corrupt(format!("totp secret of {user}")))?;
                Ok(Some((bytes, last.map(to_u64))))
            }
            _ => Ok(None),
        }
    }

    /// Claims the step of an accepted code, so it cannot be used again: `false` when that step
    /// (or a later one) was already used, e.g. by a concurrent login with the same code.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn claim_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let rows = self.conn.execute(
            "UPDATE users SET totp_last_step = ?2
             WHERE name = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
            params![user.as_str(), to_i64(step)],
        )?;
        Ok(rows == 1)
    }
}
