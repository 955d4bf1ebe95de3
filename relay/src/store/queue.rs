//! The offline prompt queue: prompts for hosts that were offline, kept until the host is back
//! or the entry expires. Every state change is a conditional `UPDATE` (from the state the
//! caller saw), so one entry is claimed for delivery at most once at a time.

use super::{AuditEvent, SqliteStore, StoreError, to_i64, to_u64};
use proto::queue::{QueueEntry, QueueState};
use rusqlite::{OptionalExtension, params};

/// Characters of the prompt shown by `queue_list`.
const PREVIEW_CHARS: usize = 60;

/// What `queue_list` shows for a prompt encrypted to its host.
pub const SEALED_PREVIEW: &str = "(sealed: encrypted to the host)";

/// Whether a prompt body is one encrypted to its host (`{"sealed": "…"}`, zero-trust): opaque
/// to the relay, stored and delivered as sent.
pub fn is_sealed_body(body: &str) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sealed {
        #[allow(dead_code, reason = "only its presence counts")]
        sealed: String,
    }
    serde_json::from_str::<Sealed>(body).is_ok()
}

/// A queued prompt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    /// Entry id.
    pub id: String,
    /// Target host.
    pub host: String,
    /// Target workspace.
    pub workspace: String,
    /// Target session.
    pub session: String,
    /// Author.
    pub user: String,
    /// The author's credential when it was queued.
    pub cred_id: String,
    /// The `Prompt` body, as JSON.
    pub body: String,
    /// The prompt's idempotency key.
    pub idempotency_key: String,
    /// Queued at, unix ms.
    pub created_ms: u64,
    /// Expires at, unix ms.
    pub expires_ms: u64,
    /// State now.
    pub state: QueueState,
    /// Refusal reason or delivery result.
    pub detail: Option<String>,
    /// The operator's signed header (`StreamHeader.auth`, JSON), delivered with the body as
    /// it was sent (zero-trust hosts check it themselves).
    pub auth: Option<String>,
}

impl QueueRow {
    /// The operator's view of the row (the body's first characters, not the whole body).
    pub fn entry(&self) -> QueueEntry {
        let preview = match serde_json::from_str::<proto::ops::Prompt>(&self.body) {
            Ok(p) => {
                let mut preview: String = p.text.chars().take(PREVIEW_CHARS).collect();
                if p.text.chars().count() > PREVIEW_CHARS {
                    preview.push('…');
                }
                preview
            }
            // Encrypted to the host (zero-trust): the relay cannot read it.
            Err(_) if is_sealed_body(&self.body) => SEALED_PREVIEW.to_owned(),
            Err(_) => String::new(),
        };
        QueueEntry {
            id: self.id.clone(),
            host: self.host.clone(),
            workspace: self.workspace.clone(),
            session: self.session.clone(),
            user: self.user.clone(),
            preview,
            created_ms: self.created_ms,
            expires_ms: self.expires_ms,
            state: self.state,
            detail: self.detail.clone(),
        }
    }
}

const COLUMNS: &str = "id, host, workspace, session, user, cred_id, body, idempotency_key, created_ms, expires_ms, state, detail, auth";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueueRow> {
    let state: String = r.get(10)?;
    Ok(QueueRow {
        id: r.get(0)?,
        host: r.get(1)?,
        workspace: r.get(2)?,
        session: r.get(3)?,
        user: r.get(4)?,
        cred_id: r.get(5)?,
        body: r.get(6)?,
        idempotency_key: r.get(7)?,
        created_ms: to_u64(r.get(8)?),
        expires_ms: to_u64(r.get(9)?),
        state: QueueState::parse(&state).unwrap_or(QueueState::Refused),
        detail: r.get(11)?,
        auth: r.get(12)?,
    })
}

impl SqliteStore {
    /// Stores a new entry (state `queued`).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_add(&self, q: &QueueRow) -> Result<(), StoreError> {
        self.conn.execute(
            &format!("INSERT INTO prompt_queue({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
            params![
                q.id,
                q.host,
                q.workspace,
                q.session,
                q.user,
                q.cred_id,
                q.body,
                q.idempotency_key,
                to_i64(q.created_ms),
                to_i64(q.expires_ms),
                QueueState::Queued.as_str(),
                q.detail,
                q.auth
            ],
        )?;
        Ok(())
    }

    /// Stores `q` unless its author already queued a prompt for its host with the same
    /// idempotency key: then that first entry is returned and nothing is stored. The lookup and
    /// the insert are one write transaction, so two concurrent retries make one entry.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_add_once(&self, q: &QueueRow) -> Result<Option<QueueRow>, StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        if let Some(first) = self.queue_find_key(&q.user, &q.host, &q.idempotency_key)? {
            return Ok(Some(first));
        }
        self.queue_add(q)?;
        tx.commit()?;
        Ok(None)
    }

    /// Refuses every waiting entry whose credential is revoked or gone (its user removed) or
    /// whose host is revoked, and audits each (`queue_refused`, deny); returns how many. Called
    /// on every revocation, after it is committed (see [`SqliteStore::bump_revocation_epoch`]);
    /// delivery checks the credential again. Not inside a transaction of the caller's.
    ///
    /// # Errors
    /// SQLite failures. A failed audit write is logged, not returned: the revocation and the
    /// refusals stand either way.
    pub fn queue_refuse_revoked(&self) -> Result<usize, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM prompt_queue WHERE state = 'queued' AND (
                 NOT EXISTS (SELECT 1 FROM creds
                     WHERE creds.id = prompt_queue.cred_id AND creds.revoked = 0)
                 OR EXISTS (SELECT 1 FROM hosts
                     WHERE hosts.id = prompt_queue.host AND hosts.revoked = 1))"
        ))?;
        let due: Vec<QueueRow> = st.query_map([], row)?.collect::<Result<_, _>>()?;
        drop(st);
        let mut events = Vec::new();
        for r in due {
            let host_revoked: bool = self.conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM hosts WHERE id = ?1 AND revoked = 1)",
                params![r.host],
                |x| x.get(0),
            )?;
            let why = if host_revoked {
                "not delivered: the host was revoked"
            } else {
                "not delivered: the author's credential was revoked"
            };
            // From `queued` only: an entry being delivered right now is left to delivery.
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
    /// SQLite failures.
    pub fn queue_get(&self, id: &str) -> Result<Option<QueueRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM prompt_queue WHERE id = ?1"),
                params![id],
                row,
            )
            .optional()?)
    }

    /// The entry `user` queued for `host` with this idempotency key, if any (a retried
    /// prompt gets the first entry instead of a second one).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_find_key(
        &self,
        user: &str,
        host: &str,
        key: &str,
    ) -> Result<Option<QueueRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM prompt_queue WHERE user = ?1 AND host = ?2 AND idempotency_key = ?3 AND state IN ('queued', 'delivering', 'delivered') ORDER BY created_ms LIMIT 1"),
                params![user, host, key],
                row,
            )
            .optional()?)
    }

    /// A user's entries, newest first (at most `limit`).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_of_user(&self, user: &str, limit: usize) -> Result<Vec<QueueRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM prompt_queue WHERE user = ?1 ORDER BY created_ms DESC, id LIMIT ?2"
        ))?;
        let rows = st.query_map(params![user, i64::try_from(limit).unwrap_or(i64::MAX)], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Entries waiting for a host, oldest first (delivery order).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_waiting(&self, host: &str) -> Result<Vec<QueueRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM prompt_queue WHERE host = ?1 AND state = 'queued' ORDER BY created_ms, id"
        ))?;
        let rows = st.query_map(params![host], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Hosts with entries waiting.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_hosts(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT DISTINCT host FROM prompt_queue WHERE state = 'queued' ORDER BY host",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Moves an entry from `from` to `to` (with `detail`); false if it was not in `from`
    /// (someone else moved it first).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_transition(
        &self,
        id: &str,
        from: QueueState,
        to: QueueState,
        detail: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE prompt_queue SET state = ?3, detail = COALESCE(?4, detail) WHERE id = ?1 AND state = ?2",
            params![id, from.as_str(), to.as_str(), detail],
        )?;
        Ok(n == 1)
    }

    /// Marks every waiting entry whose expiry is at or before `now_ms` as expired; returns them.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_expire(&self, now_ms: u64) -> Result<Vec<QueueRow>, StoreError> {
        // Most passes find nothing: a read first, so they take no write lock.
        let due: bool = self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM prompt_queue WHERE state = 'queued' AND expires_ms <= ?1)",
            params![to_i64(now_ms)],
            |r| r.get(0),
        )?;
        if !due {
            return Ok(Vec::new());
        }
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let expired = {
            let mut st = tx.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM prompt_queue WHERE state = 'queued' AND expires_ms <= ?1"
            ))?;
            let rows = st.query_map(params![to_i64(now_ms)], row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.execute(
            "UPDATE prompt_queue SET state = 'expired' WHERE state = 'queued' AND expires_ms <= ?1",
            params![to_i64(now_ms)],
        )?;
        tx.commit()?;
        Ok(expired
            .into_iter()
            .map(|mut r| {
                r.state = QueueState::Expired;
                r
            })
            .collect())
    }

    /// Forgets finished entries (delivered, expired, cancelled, refused) that expired before
    /// `before_ms`; returns how many.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_purge(&self, before_ms: u64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM prompt_queue WHERE state NOT IN ('queued', 'delivering') AND expires_ms < ?1",
            params![to_i64(before_ms)],
        )?)
    }

    /// Claims a waiting entry for delivery by `relay` (`queued → delivering`); false if it
    /// was not waiting (another relay, a cancel or an expiry came first).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_claim(&self, id: &str, relay: &str, now_ms: u64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE prompt_queue SET state = 'delivering', claimed_by = ?2, claimed_ms = ?3
             WHERE id = ?1 AND state = 'queued'",
            params![id, relay, to_i64(now_ms)],
        )?;
        Ok(n == 1)
    }

    /// Ends `relay`'s delivery of an entry: `delivering → to` (with `detail`); false if the
    /// entry is no longer `relay`'s to finish (its claim was recovered as stale).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_finish(
        &self,
        id: &str,
        relay: &str,
        to: QueueState,
        detail: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE prompt_queue SET state = ?3, detail = COALESCE(?4, detail),
                 claimed_by = CASE WHEN ?3 = 'queued' THEN NULL ELSE claimed_by END
             WHERE id = ?1 AND state = 'delivering' AND claimed_by = ?2",
            params![id, relay, to.as_str(), detail],
        )?;
        Ok(n == 1)
    }

    /// Re-queues entries left `delivering` that nobody is delivering: those claimed by
    /// `relay` (which calls this only while none of its deliveries is in flight), claimed
    /// before claims were recorded, or claimed more than `stale_ms` before `now_ms`. The agent's
    /// idempotency record answers a repeat with the first result. (SQLite has one relay;
    /// `alive_ms`, the fleet's heartbeat window, is for PostgreSQL.)
    ///
    /// # Errors
    /// SQLite failures.
    pub fn queue_recover(
        &self,
        relay: &str,
        now_ms: u64,
        stale_ms: u64,
        _alive_ms: u64,
    ) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE prompt_queue SET state = 'queued', claimed_by = NULL
             WHERE state = 'delivering'
               AND (claimed_by = ?1 OR claimed_by IS NULL OR claimed_ms IS NULL
                    OR claimed_ms < ?2)",
            params![relay, to_i64(now_ms.saturating_sub(stale_ms))],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, expires_ms: u64) -> QueueRow {
        QueueRow {
            id: id.into(),
            host: "h1".into(),
            workspace: "w".into(),
            session: "ses_1".into(),
            user: "alice".into(),
            cred_id: "c1".into(),
            body: r#"{"text":"hello there","idempotency_key":"k"}"#.into(),
            idempotency_key: "k".into(),
            created_ms: 1,
            expires_ms,
            state: QueueState::Queued,
            detail: None,
            auth: None,
        }
    }

    crate::store::test_db::on_both_backends! {
    fn an_entry_is_claimed_once_and_expires_only_while_waiting(s) {
        s.queue_add(&entry("q_1", 100)).unwrap();
        s.queue_add(&entry("q_2", 50)).unwrap();
        assert_eq!(s.queue_hosts().unwrap(), vec!["h1".to_owned()]);
        assert!(s.queue_claim("q_1", "r1", 10).unwrap());
        assert!(!s.queue_claim("q_1", "r2", 10).unwrap());
        let expired = s.queue_expire(200).unwrap();
        assert_eq!(
            expired.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            vec!["q_2"]
        );
        assert_eq!(s.queue_recover("r1", 20, 60_000, 10_000).unwrap(), 1);
        assert_eq!(s.queue_waiting("h1").unwrap().len(), 1);
        let listed = s.queue_of_user("alice", 10).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].entry().preview, "hello there");
        assert_eq!(
            s.queue_get("q_2").unwrap().map(|r| r.state),
            Some(QueueState::Expired)
        );
        // Finished entries are forgotten after their time; waiting ones never.
        assert_eq!(s.queue_purge(1_000).unwrap(), 1);
        assert!(s.queue_get("q_2").unwrap().is_none());
        assert!(s.queue_get("q_1").unwrap().is_some());
    }
    }

    crate::store::test_db::on_both_backends! {
    fn a_sealed_prompt_is_kept_verbatim_with_its_signed_header_and_listed_as_sealed(s) {
        let body = r#"{"sealed":"bm9pc2UgTiBvbmUtc2hvdA"}"#;
        let auth = r#"{"payload":"e30","key":"00","sig":"00"}"#;
        let mut q = entry("q_s", 100);
        q.body = body.into();
        q.auth = Some(auth.into());
        s.queue_add(&q).unwrap();
        let stored = s.queue_get("q_s").unwrap().unwrap();
        assert_eq!(stored.body, body);
        assert_eq!(stored.auth.as_deref(), Some(auth));
        assert_eq!(stored.entry().preview, SEALED_PREVIEW);
        assert_eq!(s.queue_waiting("h1").unwrap()[0].auth.as_deref(), Some(auth));
    }
    }

    #[test]
    fn only_a_lone_sealed_field_counts_as_a_sealed_body() {
        assert!(is_sealed_body(r#"{"sealed":"abc"}"#));
        assert!(!is_sealed_body(r#"{"sealed":"abc","text":"hi"}"#));
        assert!(!is_sealed_body(r#"{"text":"hi","idempotency_key":"k"}"#));
        assert!(!is_sealed_body("not json"));
    }

    /// How long a claim may be in flight, and a relay's heartbeat window, in these tests.
    const STALE_MS: u64 = 600_000;
    const ALIVE_MS: u64 = 10_000;

    fn state(s: &crate::store::test_db::Db, id: &str) -> QueueState {
        s.queue_get(id).unwrap().unwrap().state
    }

    crate::store::test_db::on_both_backends! {
    fn a_restarting_relay_requeues_its_own_and_stale_claims_never_a_live_peers(s) {
        let now = crate::time::now_ms();
        if let Db::Postgres(pg, _) = s {
            for id in ["a", "b"] {
                pg.register_relay(id, &format!("{id}:7444"), &format!("sha256:{id}"), 1)
                    .unwrap();
                assert!(pg.relay_heartbeat(id).unwrap());
            }
        }
        s.queue_add(&entry("q_a", u64::MAX / 2)).unwrap();
        s.queue_add(&entry("q_b", u64::MAX / 2)).unwrap();
        assert!(s.queue_claim("q_a", "a", now).unwrap());
        assert!(s.queue_claim("q_b", "b", now).unwrap());
        // Relay a restarts: its own claim is queued again, b's delivery in flight is not.
        assert_eq!(s.queue_recover("a", now, STALE_MS, ALIVE_MS).unwrap(), 1);
        assert_eq!(state(s, "q_a"), QueueState::Queued);
        assert_eq!(state(s, "q_b"), QueueState::Delivering);
        // A finish by a relay whose claim it is not changes nothing.
        assert!(!s.queue_finish("q_b", "a", QueueState::Delivered, None).unwrap());
        // A claim older than any delivery can take is queued again, whoever made it, and
        // its late finish then changes nothing.
        s.sql("UPDATE prompt_queue SET claimed_ms = claimed_ms - 1000000 WHERE id = 'q_b'")
            .unwrap();
        assert_eq!(s.queue_recover("a", now, STALE_MS, ALIVE_MS).unwrap(), 1);
        assert_eq!(state(s, "q_b"), QueueState::Queued);
        assert!(!s.queue_finish("q_b", "b", QueueState::Delivered, None).unwrap());
        // A claim finished by its relay is final.
        assert!(s.queue_claim("q_a", "a", now).unwrap());
        assert!(s.queue_finish("q_a", "a", QueueState::Delivered, Some("msg_1")).unwrap());
        assert_eq!(s.queue_recover("a", now, STALE_MS, ALIVE_MS).unwrap(), 0);
        assert_eq!(state(s, "q_a"), QueueState::Delivered);
    }
    }

    #[test]
    fn a_dead_or_retired_relays_claims_are_delivered_again_by_a_live_one() {
        let Some(db) = crate::store::test_db::Db::postgres() else {
            return;
        };
        let crate::store::test_db::Db::Postgres(s, _) = &db else {
            unreachable!("a PostgreSQL store");
        };
        let now = crate::time::now_ms();
        for id in ["a", "b", "c"] {
            s.register_relay(id, &format!("{id}:7444"), &format!("sha256:{id}"), 1)
                .unwrap();
            assert!(s.relay_heartbeat(id).unwrap());
        }
        s.queue_add(&entry("q_b", u64::MAX / 2)).unwrap();
        s.queue_add(&entry("q_c", u64::MAX / 2)).unwrap();
        assert!(s.queue_claim("q_b", "b", now).unwrap());
        assert!(s.queue_claim("q_c", "c", now).unwrap());
        // b and c are alive: a's periodic recovery leaves their deliveries alone.
        assert_eq!(s.queue_recover("a", now, STALE_MS, ALIVE_MS).unwrap(), 0);
        // b dies (its heartbeat stops being fresh; a clean stop clears it at once).
        s.relay_stopped("b").unwrap();
        assert_eq!(s.queue_recover("a", now, STALE_MS, ALIVE_MS).unwrap(), 1);
        assert_eq!(s.queue_waiting("h1").unwrap()[0].id, "q_b");
        assert!(s.queue_claim("q_b", "a", now).unwrap(), "a delivers it now");
        assert!(
            s.queue_finish("q_b", "a", QueueState::Delivered, Some("msg_1"))
                .unwrap()
        );
        // c is retired by `cluster remove`.
        s.retire_relay("c", now).unwrap();
        assert_eq!(s.queue_recover("a", now, STALE_MS, ALIVE_MS).unwrap(), 1);
        assert_eq!(
            s.queue_get("q_c").unwrap().unwrap().state,
            QueueState::Queued
        );
        // A heartbeat older than the window counts as dead too.
        assert!(s.relay_heartbeat("b").unwrap(), "b is back");
        assert!(s.queue_claim("q_c", "b", now).unwrap());
        assert_eq!(s.queue_recover("a", now, STALE_MS, ALIVE_MS).unwrap(), 0);
        s.batch("UPDATE relays SET heartbeat_ms = heartbeat_ms - 60000 WHERE id = 'b'")
            .unwrap();
        assert_eq!(s.queue_recover("a", now, STALE_MS, ALIVE_MS).unwrap(), 1);
    }
}
