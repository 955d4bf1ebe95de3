//! The append-only, hash-chained audit trail: each row stores
//! `hash = BLAKE3(prev_hash ‖ canonical row)`, so editing or deleting any row breaks the chain
//! from that row on. A row is written (and synced, `synchronous = FULL`) before the operation
//! it records is acknowledged.

use super::audit_spool::{SpoolSink, mark_key};
use super::{SqliteStore, StoreError, to_i64, to_u64};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// The hash that precedes the first row.
pub(super) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What to record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Who acted (user, host, or `-` for an unauthenticated peer with its address).
    pub actor: String,
    /// Their role, where one applies.
    pub role: Option<String>,
    /// Target host, where one applies.
    pub host: Option<String>,
    /// What was attempted (`login`, `handshake`, `host_add`, an op name…).
    pub op: String,
    /// What it was attempted on.
    pub target: Option<String>,
    /// `allow` or `deny`.
    pub decision: String,
    /// Why (the precise reason for a denial).
    pub reason: Option<String>,
}

/// Most characters of a reason kept in a row about an unauthenticated peer; longer ones are
/// cut with a marker (a stranger's text must not make rows large). Rows about authenticated
/// operators are not cut (`audit_prompt_text` records whole prompts).
pub const MAX_REASON_CHARS: usize = 200;
/// Most characters of the actor, host and target fields kept in a row.
pub const MAX_FIELD_CHARS: usize = 256;

impl AuditEvent {
    /// The event with every text field cut to its bound ([`MAX_REASON_CHARS`],
    /// [`MAX_FIELD_CHARS`]), each cut marked.
    #[must_use]
    pub fn capped(mut self) -> Self {
        use proto::text::cap_chars;
        let cap = |s: &mut String, max: usize| {
            if s.len() > max {
                *s = cap_chars(s, max);
            }
        };
        cap(&mut self.actor, MAX_FIELD_CHARS);
        cap(&mut self.op, MAX_FIELD_CHARS);
        cap(&mut self.decision, MAX_FIELD_CHARS);
        for s in [&mut self.role, &mut self.host, &mut self.target]
            .into_iter()
            .flatten()
        {
            cap(s, MAX_FIELD_CHARS);
        }
        if let Some(s) = &mut self.reason {
            cap(s, MAX_REASON_CHARS);
        }
        self
    }
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    /// Row id.
    pub id: i64,
    /// Time, unix ms.
    pub ts_ms: u64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hash of the previous row.
    pub prev_hash: String,
    /// This row's chained hash.
    pub hash: String,
}

pub(super) fn row_hash(prev_hash: &str, ts_ms: u64, e: &AuditEvent) -> String {
    let mut h = blake3::Hasher::new();
    h.update(prev_hash.as_bytes());
    for field in [
        Some(ts_ms.to_string()),
        Some(e.actor.clone()),
        e.role.clone(),
        e.host.clone(),
        Some(e.op.clone()),
        e.target.clone(),
        Some(e.decision.clone()),
        e.reason.clone(),
    ] {
        // Length-prefixed, with a marker for None, so field boundaries are unambiguous.
        match field {
            None => {
                h.update(&[0]);
            }
            Some(s) => {
                h.update(&[1]);
                h.update(&(s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    h.finalize().to_hex().to_string()
}

impl SqliteStore {
    /// Appends an event to the audit trail.
    ///
    /// # Errors
    /// SQLite failures; the caller must then refuse the operation.
    pub fn audit(&self, ts_ms: u64, e: &AuditEvent) -> Result<(), StoreError> {
        self.audit_batch(&[(ts_ms, e)])
    }

    /// Appends several events in one transaction (one sync): the group commit of
    /// [`AuditWriter`](super::AuditWriter). Either all rows are written or none.
    ///
    /// # Errors
    /// SQLite failures; the callers must then refuse their operations.
    pub fn audit_batch(&self, events: &[(u64, &AuditEvent)]) -> Result<(), StoreError> {
        self.append_chain(events, None)
    }

    /// [`Self::audit_batch`], also recording in the same transaction (when `mark` is given)
    /// how far a spool generation was appended (see `audit_spool.rs`).
    fn append_chain(
        &self,
        events: &[(u64, &AuditEvent)],
        mark: Option<(&str, u64)>,
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // IMMEDIATE: take the write lock before reading the chain head, so a writer in another
        // process (the CLI) makes us wait (busy_timeout) instead of failing on a stale snapshot.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let mut prev: String = tx
            .query_row("SELECT hash FROM audit ORDER BY id DESC LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or_else(|| GENESIS.to_owned());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO audit(ts_ms, actor, role, host, op, target, decision, reason, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for (ts_ms, e) in events {
                let hash = row_hash(&prev, *ts_ms, e);
                insert.execute(params![
                    to_i64(*ts_ms),
                    e.actor,
                    e.role,
                    e.host,
                    e.op,
                    e.target,
                    e.decision,
                    e.reason,
                    prev,
                    hash
                ])?;
                prev = hash;
            }
        }
        if let Some((generation, seq)) = mark {
            tx.execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![mark_key(generation), seq.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The newest `limit` audit rows, oldest first.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn audit_tail(&self, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        self.audit_page(&AuditFilter {
            limit,
            ..AuditFilter::default()
        })
    }

    /// The newest `filter.limit` rows that pass `filter`, oldest first. The filtering and the
    /// paging happen in the database: only the rows returned are read.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn audit_page(&self, filter: &AuditFilter<'_>) -> Result<Vec<AuditRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM (SELECT * FROM audit
               WHERE (?1 IS NULL OR actor = ?1 OR substr(actor, 1, length(?1) + 1) = ?1 || '@')
                 AND (?2 IS NULL OR host = ?2)
                 AND (?3 IS NULL OR id < ?3)
               ORDER BY id DESC LIMIT ?4) ORDER BY id"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    filter.user,
                    filter.host,
                    filter.before_id,
                    i64::try_from(filter.limit).unwrap_or(i64::MAX)
                ],
                read_row,
            )?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Up to `limit` rows written after row `after_id`, oldest first (for following the trail).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn audit_after(&self, after_id: i64, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(
                params![after_id, i64::try_from(limit).unwrap_or(i64::MAX)],
                read_row,
            )?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Checks the whole chain; `Ok(None)` if intact, else the id of the first row that does not
    /// chain (edited, or following a deleted row). Reads one row at a time.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn audit_verify(&self) -> Result<Option<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY id"))?;
        let mut prev = GENESIS.to_owned();
        for row in stmt.query_map([], read_row)? {
            let row = row?;
            if row.prev_hash != prev || row_hash(&prev, row.ts_ms, &row.event) != row.hash {
                return Ok(Some(row.id));
            }
            prev = row.hash;
        }
        Ok(None)
    }
}

impl SpoolSink for SqliteStore {
    fn spool_mark(&self, generation: &str) -> Result<Option<u64>, StoreError> {
        parse_mark(self.setting(&mark_key(generation))?)
    }

    fn append_spooled(
        &self,
        rows: &[(u64, &AuditEvent)],
        generation: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        self.append_chain(rows, Some((generation, seq)))
    }
}

/// A spool mark as stored in `settings`.
pub(super) fn parse_mark(value: Option<String>) -> Result<Option<u64>, StoreError> {
    value
        .map(|v| {
            v.parse()
                .map_err(|_| StoreError::Corrupt(format!("audit spool mark {v:?} is not a number")))
        })
        .transpose()
}

/// Which audit rows to read ([`SqliteStore::audit_page`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFilter<'a> {
    /// Only rows whose actor is this user (`user` or `user@address`).
    pub user: Option<&'a str>,
    /// Only rows about this host.
    pub host: Option<&'a str>,
    /// Only rows older than this id (paging backwards).
    pub before_id: Option<i64>,
    /// At most this many (the newest).
    pub limit: usize,
}

const COLUMNS: &str = "id, ts_ms, actor, role, host, op, target, decision, reason, prev_hash, hash";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        ts_ms: to_u64(r.get(1)?),
        event: AuditEvent {
            actor: r.get(2)?,
            role: r.get(3)?,
            host: r.get(4)?,
            op: r.get(5)?,
            target: r.get(6)?,
            decision: r.get(7)?,
            reason: r.get(8)?,
        },
        prev_hash: r.get(9)?,
        hash: r.get(10)?,
    })
}
