//! The offline prompt queue on PostgreSQL (the SQLite twin is `store/queue.rs`). Every state
//! change is a conditional `UPDATE`, so an entry is claimed at most once, whichever relay asks.

use super::super::{AuditEvent, QueueRow};
use super::{PgStore, StoreError, to_i64, to_u64};

/// The database clock in unix milliseconds (claims of every relay are aged by it).
const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";
use postgres::Row;
use proto::queue::QueueState;

const COLUMNS: &str = r#"id, host, workspace, session, "user", cred_id, body, idempotency_key, created_ms, expires_ms, state, detail, auth"#;

fn row(r: &Row) -> Result<QueueRow, StoreError> {
    let state: String = r.try_get(10)?;
    Ok(QueueRow {
        id: r.try_get(0)?,
        host: r.try_get(1)?,
        workspace: r.try_get(2)?,
        session: r.try_get(3)?,
        user: r.try_get(4)?,
        cred_id: r.try_get(5)?,
        body: r.try_get(6)?,
        idempotency_key: r.try_get(7)?,
        created_ms: to_u64(r.try_get(8)?),
        expires_ms: to_u64(r.try_get(9)?),
        state: QueueState::parse(&state).unwrap_or(QueueState::Refused),
        detail: r.try_get(11)?,
        auth: r.try_get(12)?,
    })
}

fn rows(rs: Vec<Row>) -> Result<Vec<QueueRow>, StoreError> {
    rs.iter().map(row).collect()
}

impl PgStore {
    /// Stores a new entry (state `queued`).
    ///
    /// # Errors
    /// PostgreSQL failures (a duplicate id).
    pub fn queue_add(&self, q: &QueueRow) -> Result<(), StoreError> {
        self.exec(
            &format!(
                "INSERT INTO prompt_queue({COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ),
            &[
                &q.id,
                &q.host,
                &q.workspace,
                &q.session,
                &q.user,
                &q.cred_id,
                &q.body,
                &q.idempotency_key,
                &to_i64(q.created_ms),
                &to_i64(q.expires_ms),
                &QueueState::Queued.as_str(),
                &q.detail,
                &q.auth,
            ],
        )?;
        Ok(())
    }

    /// Stores `q` unless its author already queued the same key for the host (then returns
    /// that first entry).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_add_once(&self, q: &QueueRow) -> Result<Option<QueueRow>, StoreError> {
        let tx = self.begin(true)?;
        if let Some(first) = self.queue_find_key(&q.user, &q.host, &q.idempotency_key)? {
            return Ok(Some(first));
        }
        self.queue_add(q)?;
        tx.commit()?;
        Ok(None)
    }

    /// Refuses waiting entries whose credential or host is revoked; audits each; returns how
    /// many.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_refuse_revoked(&self) -> Result<usize, StoreError> {
        let due = rows(self.rows(
            &format!(
                "SELECT {COLUMNS} FROM prompt_queue WHERE state = 'queued' AND (
                     NOT EXISTS (SELECT 1 FROM creds
                         WHERE creds.id = prompt_queue.cred_id AND NOT creds.revoked)
                     OR EXISTS (SELECT 1 FROM hosts
                         WHERE hosts.id = prompt_queue.host AND hosts.revoked))"
            ),
            &[],
        )?)?;
        let mut events = Vec::new();
        for r in due {
            let host_revoked: bool = self
                .one(
                    "SELECT EXISTS(SELECT 1 FROM hosts WHERE id = $1 AND revoked)",
                    &[&r.host],
                )?
                .try_get(0)?;
            let why = if host_revoked {
                "not delivered: the host was revoked"
            } else {
                "not delivered: the author's credential was revoked"
            };
            if self.queue_transition(&r.id, QueueState::Queued, QueueState::Refused, Some(why))? {
                events.push(AuditEvent {
                    actor: r.user.clone(),
                    host: Some(r.host.clone()),
                    op: "queue_refused".into(),
                    target: Some(r.id.clone()),
                    decision: "deny".into(),
                    reason: Some(why.into()),
                    ..AuditEvent::default()
                });
            }
        }
        let now = crate::time::now_ms();
        let batch: Vec<(u64, &AuditEvent)> = events.iter().map(|e| (now, e)).collect();
        if let Err(e) = self.audit_batch(&batch) {
            tracing::error!(error = %e, entries = events.len(), "could not audit queued prompts refused by a revocation");
        }
        Ok(events.len())
    }

    /// One entry.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_get(&self, id: &str) -> Result<Option<QueueRow>, StoreError> {
        self.opt(
            &format!("SELECT {COLUMNS} FROM prompt_queue WHERE id = $1"),
            &[&id],
        )?
        .as_ref()
        .map(row)
        .transpose()
    }

    /// The live entry of `user` for `host` with idempotency key `key`.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_find_key(
        &self,
        user: &str,
        host: &str,
        key: &str,
    ) -> Result<Option<QueueRow>, StoreError> {
        self.opt(
            &format!(
                r#"SELECT {COLUMNS} FROM prompt_queue WHERE "user" = $1 AND host = $2
                   AND idempotency_key = $3 AND state IN ('queued', 'delivering', 'delivered')
                   ORDER BY created_ms LIMIT 1"#
            ),
            &[&user, &host, &key],
        )?
        .as_ref()
        .map(row)
        .transpose()
    }

    /// A user's entries, newest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_of_user(&self, user: &str, limit: usize) -> Result<Vec<QueueRow>, StoreError> {
        rows(self.rows(
            &format!(
                r#"SELECT {COLUMNS} FROM prompt_queue WHERE "user" = $1
                   ORDER BY created_ms DESC, id LIMIT $2"#
            ),
            &[&user, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )?)
    }

    /// Entries waiting for `host`, oldest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_waiting(&self, host: &str) -> Result<Vec<QueueRow>, StoreError> {
        rows(self.rows(
            &format!(
                "SELECT {COLUMNS} FROM prompt_queue WHERE host = $1 AND state = 'queued'
                 ORDER BY created_ms, id"
            ),
            &[&host],
        )?)
    }

    /// Hosts with entries waiting.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_hosts(&self) -> Result<Vec<String>, StoreError> {
        self.rows(
            "SELECT DISTINCT host FROM prompt_queue WHERE state = 'queued' ORDER BY host",
            &[],
        )?
        .into_iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    /// Moves an entry from `from` to `to`; `false` if it was not in `from`.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_transition(
        &self,
        id: &str,
        from: QueueState,
        to: QueueState,
        detail: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self.exec(
            "UPDATE prompt_queue SET state = $3, detail = COALESCE($4, detail)
             WHERE id = $1 AND state = $2",
            &[&id, &from.as_str(), &to.as_str(), &detail],
        )?;
        Ok(n == 1)
    }

    /// Expires waiting entries past their time; returns them.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_expire(&self, now_ms: u64) -> Result<Vec<QueueRow>, StoreError> {
        let expired = rows(self.rows(
            &format!(
                "UPDATE prompt_queue SET state = 'expired'
                 WHERE state = 'queued' AND expires_ms <= $1 RETURNING {COLUMNS}"
            ),
            &[&to_i64(now_ms)],
        )?)?;
        Ok(expired)
    }

    /// Forgets finished entries that expired before `before_ms`.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_purge(&self, before_ms: u64) -> Result<usize, StoreError> {
        self.exec(
            "DELETE FROM prompt_queue
             WHERE state NOT IN ('queued', 'delivering') AND expires_ms < $1",
            &[&to_i64(before_ms)],
        )
    }

    /// Claims a waiting entry for delivery by `relay`, at the database's clock (`now_ms` is
    /// not used: the claims of every relay are aged by one clock).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_claim(&self, id: &str, relay: &str, _now_ms: u64) -> Result<bool, StoreError> {
        let n = self.exec(
            &format!(
                "UPDATE prompt_queue SET state = 'delivering', claimed_by = $2,
                     claimed_ms = {DB_NOW_MS}
                 WHERE id = $1 AND state = 'queued'"
            ),
            &[&id, &relay],
        )?;
        Ok(n == 1)
    }

    /// Ends `relay`'s delivery of an entry; false if it is no longer `relay`'s claim.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_finish(
        &self,
        id: &str,
        relay: &str,
        to: QueueState,
        detail: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self.exec(
            "UPDATE prompt_queue SET state = $3, detail = COALESCE($4, detail),
                 claimed_by = CASE WHEN $3 = 'queued' THEN NULL ELSE claimed_by END
             WHERE id = $1 AND state = 'delivering' AND claimed_by = $2",
            &[&id, &relay, &to.as_str(), &detail],
        )?;
        Ok(n == 1)
    }

    /// Re-queues entries left `delivering` that nobody is delivering: claimed by `relay`
    /// (which calls this only while none of its deliveries is in flight), claimed before
    /// claims were recorded, claimed more than `stale_ms` ago, or claimed by a relay of the
    /// fleet that is retired or whose heartbeat is older than `alive_ms` (all by the
    /// database's clock; `now_ms` is not used). A live peer's delivery is left alone.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn queue_recover(
        &self,
        relay: &str,
        _now_ms: u64,
        stale_ms: u64,
        alive_ms: u64,
    ) -> Result<usize, StoreError> {
        self.exec(
            &format!(
                "UPDATE prompt_queue SET state = 'queued', claimed_by = NULL
                 WHERE state = 'delivering'
                   AND (claimed_by = $1 OR claimed_by IS NULL OR claimed_ms IS NULL
                        OR claimed_ms < {DB_NOW_MS} - $2
                        OR EXISTS (SELECT 1 FROM relays r WHERE r.id = claimed_by
                            AND (r.retired_ms IS NOT NULL OR r.heartbeat_ms IS NULL
                                 OR r.heartbeat_ms < {DB_NOW_MS} - $3)))"
            ),
            &[&relay, &to_i64(stale_ms), &to_i64(alive_ms)],
        )
    }
}
