//! The hash-chained audit trail on PostgreSQL. Several relays append to one chain: each append
//! batch locks the chain's head row (`audit_head`, `FOR UPDATE`), so batches are serialized in
//! the database, row ids grow in chain order, and a batch of many rows costs one commit.

use super::super::audit::{GENESIS, parse_mark, row_hash};
use super::super::audit_spool::{SpoolSink, mark_key};
use super::super::{AuditEvent, AuditFilter, AuditRow};
use super::{PgStore, StoreError, to_i64, to_u64};
use postgres::Row;

const COLUMNS: &str = "id, ts_ms, actor, role, host, op, target, decision, reason, prev_hash, hash";

fn read_row(r: &Row) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        id: r.try_get(0)?,
        ts_ms: to_u64(r.try_get(1)?),
        event: AuditEvent {
            actor: r.try_get(2)?,
            role: r.try_get(3)?,
            host: r.try_get(4)?,
            op: r.try_get(5)?,
            target: r.try_get(6)?,
            decision: r.try_get(7)?,
            reason: r.try_get(8)?,
        },
        prev_hash: r.try_get(9)?,
        hash: r.try_get(10)?,
    })
}

fn read_rows(rows: Vec<Row>) -> Result<Vec<AuditRow>, StoreError> {
    rows.iter().map(read_row).collect()
}

impl PgStore {
    /// Appends an event to the audit trail.
    ///
    /// # Errors
    /// PostgreSQL failures; the caller must then refuse the operation.
    pub fn audit(&self, ts_ms: u64, e: &AuditEvent) -> Result<(), StoreError> {
        self.audit_batch(&[(ts_ms, e)])
    }

    /// Appends several events in one transaction, after every batch committed before by any
    /// relay. Either all rows are written or none.
    ///
    /// # Errors
    /// PostgreSQL failures; the callers must then refuse their operations.
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
        let tx = self.begin(false)?;
        let mut prev: String = self
            .one("SELECT hash FROM audit_head FOR UPDATE", &[])?
            .try_get(0)?;
        for (ts_ms, e) in events {
            let hash = row_hash(&prev, *ts_ms, e);
            self.exec(
                "INSERT INTO audit(ts_ms, actor, role, host, op, target, decision, reason,
                                   prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &to_i64(*ts_ms),
                    &e.actor,
                    &e.role,
                    &e.host,
                    &e.op,
                    &e.target,
                    &e.decision,
                    &e.reason,
                    &prev,
                    &hash,
                ],
            )?;
            prev = hash;
        }
        self.exec("UPDATE audit_head SET hash = $1", &[&prev])?;
        if let Some((generation, seq)) = mark {
            self.set_setting(&mark_key(generation), &seq.to_string())?;
        }
        tx.commit()
    }

    /// The newest `limit` audit rows, oldest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn audit_tail(&self, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        self.audit_page(&AuditFilter {
            limit,
            ..AuditFilter::default()
        })
    }

    /// The newest `filter.limit` rows that pass `filter`, oldest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn audit_page(&self, filter: &AuditFilter<'_>) -> Result<Vec<AuditRow>, StoreError> {
        read_rows(self.rows(
            &format!(
                "SELECT {COLUMNS} FROM (SELECT * FROM audit
                   WHERE ($1::TEXT IS NULL OR actor = $1 OR starts_with(actor, $1 || '@'))
                     AND ($2::TEXT IS NULL OR host = $2)
                     AND ($3::BIGINT IS NULL OR id < $3)
                   ORDER BY id DESC LIMIT $4) AS page ORDER BY id"
            ),
            &[
                &filter.user,
                &filter.host,
                &filter.before_id,
                &i64::try_from(filter.limit).unwrap_or(i64::MAX),
            ],
        )?)
    }

    /// Up to `limit` rows written after row `after_id`, oldest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn audit_after(&self, after_id: i64, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        read_rows(self.rows(
            &format!("SELECT {COLUMNS} FROM audit WHERE id > $1 ORDER BY id LIMIT $2"),
            &[&after_id, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )?)
    }

    /// Checks the whole chain (a page at a time); `Ok(None)` if intact, else the id of the
    /// first row that does not chain. The head row must match the last row too (a deleted
    /// tail is caught).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn audit_verify(&self) -> Result<Option<i64>, StoreError> {
        const PAGE: usize = 1_000;
        let tx = self.begin_snapshot()?;
        let mut prev = GENESIS.to_owned();
        let mut after = 0;
        loop {
            let rows = self.audit_after(after, PAGE)?;
            for row in &rows {
                if row.prev_hash != prev || row_hash(&prev, row.ts_ms, &row.event) != row.hash {
                    return Ok(Some(row.id));
                }
                prev.clone_from(&row.hash);
                after = row.id;
            }
            if rows.len() < PAGE {
                break;
            }
        }
        let head: String = self.one("SELECT hash FROM audit_head", &[])?.try_get(0)?;
        if head != prev {
            // Rows at the end were removed: the next row to be written is the first that fails.
            return Ok(Some(after.saturating_add(1)));
        }
        tx.commit()?;
        Ok(None)
    }
}

impl SpoolSink for PgStore {
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
