//! Users' notification channels and how their deliveries went (the PostgreSQL twin is
//! `store/postgres/notify.rs`). A channel's spec is one JSON column; its secret is sealed
//! (`notify::sealing`) before it is written, so the column holds no token or key in clear.
//! Rows written before secrets were sealed still read (their `secret` is plaintext) and are
//! sealed when next written. A row this relay cannot use (JSON it cannot decode, a kind from
//! a newer relay, a secret sealed under another key) is listed as broken; it never hides the
//! other rows. The secret never leaves the relay (`notify_list` shows whether one is set,
//! never the value) and never reaches the audit trail.

use super::{SqliteStore, StoreError, to_i64, to_u64};
use crate::notify::sealing::Sealer;
use proto::notify::{ChannelInfo, ChannelSpec, ChannelTarget};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// One stored channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyRow {
    /// Whose.
    pub user: String,
    /// Its name.
    pub name: String,
    /// The spec as subscribed (secret opened), or why this relay cannot use the row.
    pub spec: Result<ChannelSpec, String>,
    /// Notifications delivered.
    pub delivered: u64,
    /// Last delivery.
    pub last_ok_ms: Option<u64>,
    /// Last failed attempt.
    pub last_error_ms: Option<u64>,
    /// What it said.
    pub last_error: Option<String>,
    /// Failed attempts since the last delivery.
    pub failures: u32,
}

impl NotifyRow {
    /// As `notify_list` shows it (no secret). A broken row shows kind `unknown`, why it is
    /// broken as its last error and at least one failure.
    pub fn info(&self) -> ChannelInfo {
        match &self.spec {
            Ok(spec) => ChannelInfo {
                name: self.name.clone(),
                target: spec.target.clone(),
                has_secret: spec.secret.as_deref().is_some_and(|s| !s.is_empty()),
                events: spec.effective_events(),
                quiet: spec.quiet,
                ignore_presence: spec.ignore_presence,
                delivered: self.delivered,
                last_ok_ms: self.last_ok_ms,
                last_error_ms: self.last_error_ms,
                last_error: self.last_error.clone(),
                failures: self.failures,
            },
            Err(why) => ChannelInfo {
                name: self.name.clone(),
                target: ChannelTarget::Unknown,
                has_secret: false,
                events: Vec::new(),
                quiet: None,
                ignore_presence: false,
                delivered: self.delivered,
                last_ok_ms: self.last_ok_ms,
                last_error_ms: self.last_error_ms,
                last_error: Some(why.clone()),
                failures: self.failures.max(1),
            },
        }
    }
}

/// The spec column: the spec without its secret, and the secret sealed.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    spec: ChannelSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_secret: Option<String>,
}

pub(super) const COLUMNS: &str =
    "user_name, name, spec, delivered, last_ok_ms, last_error_ms, last_error, failures";

/// The spec in `json` of `user`'s channel `name`, secret opened, or why it cannot be used.
fn usable_spec(user: &str, name: &str, json: &str, sealer: &Sealer) -> Result<ChannelSpec, String> {
    let stored: Stored = serde_json::from_str(json).map_err(|e| {
        format!("this relay cannot read the channel ({e}); remove it (cm-tui notify remove {name}) or add it again")
    })?;
    let mut spec = stored.spec;
    if spec.target == ChannelTarget::Unknown {
        return Err(format!(
            "the channel's kind is not known to this relay (written by a newer one?); upgrade this relay or remove it (cm-tui notify remove {name})"
        ));
    }
    if let Some(sealed) = stored.sealed_secret {
        spec.secret = Some(
            sealer
                .open(user, name, &sealed)
                .map_err(|e| e.to_string())?,
        );
    }
    spec.name = name.to_owned();
    Ok(spec)
}

/// A row from its columns, in [`COLUMNS`] order (either backend).
#[allow(clippy::too_many_arguments, reason = "one per column")]
pub(super) fn from_columns(
    user: String,
    name: String,
    spec: &str,
    delivered: i64,
    last_ok_ms: Option<i64>,
    last_error_ms: Option<i64>,
    last_error: Option<String>,
    failures: i64,
    sealer: &Sealer,
) -> NotifyRow {
    let spec = usable_spec(&user, &name, spec, sealer);
    NotifyRow {
        user,
        name,
        spec,
        delivered: to_u64(delivered),
        last_ok_ms: last_ok_ms.map(to_u64),
        last_error_ms: last_error_ms.map(to_u64),
        last_error,
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
    }
}

/// The spec column for `user`'s `spec`: its secret sealed.
pub(super) fn spec_json(
    user: &str,
    spec: &ChannelSpec,
    sealer: &Sealer,
) -> Result<String, StoreError> {
    let sealed_secret =
        match spec.secret.as_deref().filter(|s| !s.is_empty()) {
            Some(secret) => Some(sealer.seal(user, &spec.name, secret).map_err(|e| {
                StoreError::Refused(format!("cannot store the channel's secret: {e}"))
            })?),
            None => None,
        };
    let stored = Stored {
        spec: ChannelSpec {
            secret: None,
            ..spec.clone()
        },
        sealed_secret,
    };
    serde_json::to_string(&stored).map_err(|e| StoreError::Refused(format!("channel: {e}")))
}

/// The refusal for a user with `max` channels already.
pub(super) fn too_many(max: usize) -> StoreError {
    StoreError::Refused(format!(
        "at most {max} notification channels per user; remove one first (cm-tui notify remove NAME)"
    ))
}

/// Longest error text kept.
pub(super) const MAX_ERROR_CHARS: usize = 300;

/// A row's columns as SQLite gives them, in [`COLUMNS`] order.
type Columns = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Columns> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

impl SqliteStore {
    /// A user's channels (every user's with `None`), by user and name, secrets opened with
    /// `sealer`; a row it cannot use is returned broken, never an error.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn notify_channels(
        &self,
        user: Option<&str>,
        sealer: &Sealer,
    ) -> Result<Vec<NotifyRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notify_channels WHERE ?1 IS NULL OR user_name = ?1 \
             ORDER BY user_name, name"
        ))?;
        let rows = st
            .query_map(params![user], row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|(u, n, s, d, ok, em, e, f)| from_columns(u, n, &s, d, ok, em, e, f, sealer))
            .collect())
    }

    /// Stores (or replaces, by name) a channel of `user`, its secret sealed with `sealer`;
    /// `true` when it is new. A user has at most `max` channels.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Refused`] beyond `max` or without a key to seal with.
    pub fn notify_put(
        &self,
        user: &str,
        spec: &ChannelSpec,
        sealer: &Sealer,
        max: usize,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let json = spec_json(user, spec, sealer)?;
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let (count, exists): (i64, i64) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(name = ?2), 0) FROM notify_channels WHERE user_name = ?1",
            params![user, spec.name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if exists == 0 && to_u64(count) >= max as u64 {
            return Err(too_many(max));
        }
        self.conn.execute(
            "INSERT INTO notify_channels(user_name, name, spec, created_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(user_name, name) DO UPDATE SET spec = excluded.spec, delivered = 0, \
             last_ok_ms = NULL, last_error_ms = NULL, last_error = NULL, failures = 0",
            params![user, spec.name, json, to_i64(now_ms)],
        )?;
        tx.commit()?;
        Ok(exists == 0)
    }

    /// Removes a channel; `false` when there was none.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn notify_remove(&self, user: &str, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM notify_channels WHERE user_name = ?1 AND name = ?2",
            params![user, name],
        )? > 0)
    }

    /// Records a delivery attempt: delivered, or failed with `error`.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn notify_record(
        &self,
        user: &str,
        name: &str,
        error: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        match error {
            None => self.conn.execute(
                "UPDATE notify_channels SET delivered = delivered + 1, last_ok_ms = ?3, \
                 failures = 0 WHERE user_name = ?1 AND name = ?2",
                params![user, name, to_i64(now_ms)],
            )?,
            Some(e) => self.conn.execute(
                "UPDATE notify_channels SET failures = failures + 1, last_error_ms = ?3, \
                 last_error = ?4 WHERE user_name = ?1 AND name = ?2",
                params![
                    user,
                    name,
                    to_i64(now_ms),
                    proto::text::sanitize_capped(e, MAX_ERROR_CHARS)
                ],
            )?,
        };
        Ok(())
    }
}
