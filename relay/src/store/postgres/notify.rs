//! Notification channels on PostgreSQL (the SQLite twin is `store/notify.rs`).

use super::super::notify::{
    COLUMNS, MAX_ERROR_CHARS, NotifyRow, from_columns, spec_json, too_many,
};
use super::{PgStore, StoreError, to_i64, to_u64};
use crate::notify::sealing::Sealer;
use proto::notify::ChannelSpec;

impl PgStore {
    /// A user's channels (every user's with `None`), by user and name, secrets opened with
    /// `sealer`; a row it cannot use is returned broken, never an error.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn notify_channels(
        &self,
        user: Option<&str>,
        sealer: &Sealer,
    ) -> Result<Vec<NotifyRow>, StoreError> {
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM notify_channels WHERE $1::TEXT IS NULL OR user_name = $1 \
                 ORDER BY user_name, name"
            ),
            &[&user],
        )?
        .iter()
        .map(|r| {
            let spec: String = r.try_get(2)?;
            Ok(from_columns(
                r.try_get(0)?,
                r.try_get(1)?,
                &spec,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
                r.try_get(7)?,
                sealer,
            ))
        })
        .collect()
    }

    /// Stores (or replaces, by name) a channel of `user`, its secret sealed with `sealer`;
    /// `true` when it is new.
    ///
    /// # Errors
    /// PostgreSQL failures; [`StoreError::Refused`] beyond `max` or without a key to seal with.
    pub fn notify_put(
        &self,
        user: &str,
        spec: &ChannelSpec,
        sealer: &Sealer,
        max: usize,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let json = spec_json(user, spec, sealer)?;
        let tx = self.begin(true)?;
        let row = self.one(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE name = $2) FROM notify_channels \
             WHERE user_name = $1",
            &[&user, &spec.name],
        )?;
        let (count, exists): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        if exists == 0 && to_u64(count) >= max as u64 {
            return Err(too_many(max));
        }
        self.exec(
            "INSERT INTO notify_channels(user_name, name, spec, created_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT(user_name, name) DO UPDATE SET spec = excluded.spec, delivered = 0, \
             last_ok_ms = NULL, last_error_ms = NULL, last_error = NULL, failures = 0",
            &[&user, &spec.name, &json, &to_i64(now_ms)],
        )?;
        tx.commit()?;
        Ok(exists == 0)
    }

    /// Removes a channel; `false` when there was none.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn notify_remove(&self, user: &str, name: &str) -> Result<bool, StoreError> {
        Ok(self.exec(
            "DELETE FROM notify_channels WHERE user_name = $1 AND name = $2",
            &[&user, &name],
        )? > 0)
    }

    /// Records a delivery attempt.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn notify_record(
        &self,
        user: &str,
        name: &str,
        error: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        match error {
            None => self.exec(
                "UPDATE notify_channels SET delivered = delivered + 1, last_ok_ms = $3, \
                 failures = 0 WHERE user_name = $1 AND name = $2",
                &[&user, &name, &to_i64(now_ms)],
            )?,
            Some(e) => {
                let e = proto::text::sanitize_capped(e, MAX_ERROR_CHARS);
                self.exec(
                    "UPDATE notify_channels SET failures = failures + 1, last_error_ms = $3, \
                     last_error = $4 WHERE user_name = $1 AND name = $2",
                    &[&user, &name, &to_i64(now_ms), &e],
                )?
            }
        };
        Ok(())
    }
}
