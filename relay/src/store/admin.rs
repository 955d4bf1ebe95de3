//! Administration of users, grants, credentials and hosts, and the kill switch's store side.
//! Every revocation bumps the revocation epoch, which the running relay watches to close the
//! affected live connections within a second.

use super::{SqliteStore, StoreError, to_i64, to_u64};
use proto::ids::{CredId, HostId, UserId};
use proto::rbac::Role;
use rusqlite::{OptionalExtension, params};

/// Setting key of the revocation epoch.
pub const REVOCATION_EPOCH: &str = "revocation_epoch";

/// A credential row, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CredRow {
    /// Credential id.
    pub id: CredId,
    /// Owner.
    pub user: UserId,
    /// Expiry, unix ms.
    pub expires_ms: u64,
    /// Revoked.
    pub revoked: bool,
    /// Label given at login.
    pub label: Option<String>,
    /// Issue time, unix ms.
    pub created_ms: u64,
}

/// A user with their grants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserRow {
    /// Name.
    pub name: UserId,
    /// Whether a password is set.
    pub has_password: bool,
    /// Grants `(host or *, role)`.
    pub grants: Vec<(String, Role)>,
}

impl SqliteStore {
    /// The current revocation epoch (0 before any revocation).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn revocation_epoch(&self) -> Result<u64, StoreError> {
        Ok(self
            .setting(REVOCATION_EPOCH)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Increments the revocation epoch. Every revocation path ends here, so this is also where
    /// queued prompts of revoked credentials and hosts are refused (they are never delivered).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn bump_revocation_epoch(&self) -> Result<u64, StoreError> {
        let next = self.next_revocation_epoch()?;
        self.refuse_revoked_queue()?;
        Ok(next)
    }

    fn next_revocation_epoch(&self) -> Result<u64, StoreError> {
        let next = self.revocation_epoch()?.wrapping_add(1);
        self.set_setting(REVOCATION_EPOCH, &next.to_string())?;
        Ok(next)
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

    /// Operator credentials that are revoked (or belonged to a removed user) but would not yet
    /// have expired at `now_ms`: the ones an agent may still have OpenCode launches bound to.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn revoked_unexpired(&self, now_ms: u64) -> Result<Vec<CredId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM creds WHERE revoked = 1 AND expires_ms > ?1
             UNION SELECT id FROM removed_creds WHERE expires_ms > ?1
             ORDER BY id",
        )?;
        let rows = stmt
            .query_map([to_i64(now_ms)], |r| Ok(CredId(r.get(0)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// [`Self::revoked_unexpired`], each with the hosts (or `*`) its user holds a grant on
    /// (held when the user was removed, for a removed user's credentials): a host's agent is
    /// told only about credentials that could have reached it.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn revoked_unexpired_with_hosts(
        &self,
        now_ms: u64,
    ) -> Result<Vec<(CredId, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, g.host FROM creds c JOIN grants g ON g.user = c.user
               WHERE c.revoked = 1 AND c.expires_ms > ?1
             UNION SELECT r.id, h.host FROM removed_creds r JOIN removed_cred_hosts h ON h.id = r.id
               WHERE r.expires_ms > ?1
             ORDER BY 1, 2",
        )?;
        let rows = stmt
            .query_map([to_i64(now_ms)], |r| Ok((CredId(r.get(0)?), r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// All users with their grants.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, password_hash IS NOT NULL FROM users ORDER BY name")?;
        let rows: Vec<(String, bool)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(name, has_password)| {
                let name = UserId(name);
                let grants = self.grants(&name)?;
                Ok(UserRow {
                    name,
                    has_password,
                    grants,
                })
            })
            .collect()
    }

    /// Users holding owner on every host (`*`): the ones who can always administer the relay.
    /// An owner grant on one host does not count.
    fn owners(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT user FROM grants WHERE role = 'owner' AND host = '*' ORDER BY user",
        )?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Whether `user` is the only owner on `*` (who must stay).
    pub(super) fn is_last_owner(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.owners()? == [user.0.clone()])
    }

    /// Removes a user, their grants and credentials. The last owner on `*` cannot be removed.
    /// The user's credentials that had not expired at `now_ms` are remembered as revoked
    /// (`removed_creds`), so agents are told to stop OpenCode launches bound to them.
    ///
    /// # Errors
    /// Unknown user, last owner, SQLite failures.
    pub fn remove_user(&self, user: &UserId, now_ms: u64) -> Result<(), StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        if self.is_last_owner(user)? {
            return Err(StoreError::Refused(format!(
                "{user} is the last owner on every host (*); grant owner on * to someone else first"
            )));
        }
        tx.execute(
            "DELETE FROM removed_creds WHERE expires_ms <= ?1",
            [to_i64(now_ms)],
        )?;
        tx.execute(
            "DELETE FROM removed_cred_hosts WHERE id NOT IN (SELECT id FROM removed_creds)",
            [],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO removed_creds(id, user, expires_ms)
             SELECT id, user, expires_ms FROM creds WHERE user = ?1 AND expires_ms > ?2",
            params![user.as_str(), to_i64(now_ms)],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO removed_cred_hosts(id, host)
             SELECT c.id, g.host FROM creds c JOIN grants g ON g.user = c.user
              WHERE c.user = ?1 AND c.expires_ms > ?2",
            params![user.as_str(), to_i64(now_ms)],
        )?;
        let n = tx.execute("DELETE FROM users WHERE name = ?1", [user.as_str()])?;
        if n == 0 {
            return Err(StoreError::Missing {
                what: "user",
                name: user.0.clone(),
            });
        }
        self.next_revocation_epoch()?;
        tx.commit()?;
        self.grants_generation.bump();
        // After the commit: it writes audit rows, which take their own transaction.
        self.refuse_revoked_queue()?;
        Ok(())
    }

    /// Removes a grant. The last owner grant cannot be removed.
    ///
    /// # Errors
    /// No such grant, last owner, SQLite failures.
    pub fn revoke_grant(&self, user: &UserId, host: &str) -> Result<(), StoreError> {
        // One write transaction: two owners removing each other cannot both pass the check.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let role: Option<String> = tx
            .query_row(
                "SELECT role FROM grants WHERE user = ?1 AND host = ?2",
                params![user.as_str(), host],
                |r| r.get(0),
            )
            .optional()?;
        let Some(role) = role else {
            return Err(StoreError::NoGrant {
                user: user.to_string(),
                host: host.to_owned(),
            });
        };
        if role == "owner" && host == "*" && self.is_last_owner(user)? {
            return Err(StoreError::Refused(format!(
                "{user} is the last owner on every host (*); grant owner on * to someone else first"
            )));
        }
        tx.execute(
            "DELETE FROM grants WHERE user = ?1 AND host = ?2",
            params![user.as_str(), host],
        )?;
        tx.commit()?;
        self.grants_generation.bump();
        Ok(())
    }

    /// All credentials, newest first.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn list_credentials(&self) -> Result<Vec<CredRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, user, expires_ms, revoked, label, created_ms FROM creds ORDER BY created_ms DESC",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(CredRow {
                    id: CredId(r.get(0)?),
                    user: UserId(r.get(1)?),
                    expires_ms: to_u64(r.get(2)?),
                    revoked: r.get(3)?,
                    label: r.get(4)?,
                    created_ms: to_u64(r.get(5)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Revokes every live credential of `user`; returns how many.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn revoke_user_credentials(&self, user: &UserId, now_ms: u64) -> Result<usize, StoreError> {
        let n = self.conn.execute(
            "UPDATE creds SET revoked = 1 WHERE user = ?1 AND revoked = 0 AND expires_ms > ?2",
            params![user.as_str(), to_i64(now_ms)],
        )?;
        self.bump_revocation_epoch()?;
        Ok(n)
    }

    /// Revokes every live operator credential and every host; returns (credentials, hosts).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn revoke_everything(&self, now_ms: u64) -> Result<(usize, usize), StoreError> {
        let creds = self.conn.execute(
            "UPDATE creds SET revoked = 1 WHERE revoked = 0 AND expires_ms > ?1",
            [to_i64(now_ms)],
        )?;
        let hosts = self
            .conn
            .execute("UPDATE hosts SET revoked = 1 WHERE revoked = 0", [])?;
        self.bump_revocation_epoch()?;
        Ok((creds, hosts))
    }

    /// Revokes a host (kill switch for one host) and bumps the epoch.
    ///
    /// # Errors
    /// Unknown host, SQLite failures.
    pub fn kill_host(&self, host: &HostId) -> Result<(), StoreError> {
        self.revoke_host(host)?;
        self.bump_revocation_epoch()?;
        Ok(())
    }

    /// Revokes one credential and bumps the epoch; returns whether it existed.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn kill_credential(&self, cred: &CredId) -> Result<bool, StoreError> {
        let found = self.revoke_credential(cred)?;
        self.bump_revocation_epoch()?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::on_both_backends;

    on_both_backends! {

    fn session_owner_is_the_first_creator(s) {
        let h = HostId::from("box");
        assert_eq!(s.session_owner(&h, "ses_1").unwrap(), None);
        s.set_session_owner(&h, "ses_1", &UserId::from("ann"), 1)
            .unwrap();
        s.set_session_owner(&h, "ses_1", &UserId::from("bob"), 2)
            .unwrap();
        assert_eq!(
            s.session_owner(&h, "ses_1").unwrap(),
            Some(UserId::from("ann"))
        );
        assert_eq!(
            s.session_owner(&HostId::from("other"), "ses_1").unwrap(),
            None
        );
    }

    fn last_owner_is_protected(s) {
        let (a, b) = (UserId::from("a"), UserId::from("b"));
        s.add_user(&a, 0).unwrap();
        s.add_user(&b, 0).unwrap();
        s.grant(&a, "*", Role::Owner).unwrap();
        // An owner of one host does not count: `a` is still the only owner on `*`.
        s.grant(&b, "box", Role::Owner).unwrap();
        let err = s.remove_user(&a, 0).unwrap_err().to_string();
        assert!(err.contains("last owner"), "{err}");
        assert!(
            s.revoke_grant(&a, "*")
                .unwrap_err()
                .to_string()
                .contains("last owner")
        );
        let err = s.grant(&a, "*", Role::Viewer).unwrap_err().to_string();
        assert!(err.contains("last owner"), "demoting the last owner: {err}");
        // A per-host owner grant can always go (the `*` owner stays).
        s.grant(&b, "box", Role::Viewer).unwrap();
        s.grant(&b, "box", Role::Owner).unwrap();
        s.revoke_grant(&b, "box").unwrap();
        s.grant(&b, "*", Role::Owner).unwrap();
        s.grant(&a, "*", Role::Viewer).unwrap();
        s.revoke_grant(&a, "*").unwrap();
        s.remove_user(&a, 0).unwrap();
        assert_eq!(s.list_users().unwrap().len(), 1);
        assert!(matches!(
            s.remove_user(&a, 0),
            Err(StoreError::Missing { .. })
        ));
    }

    fn revocations_bump_the_epoch_and_hit_only_their_target(s) {
        let (a, b) = (UserId::from("a"), UserId::from("b"));
        for u in [&a, &b] {
            s.add_user(u, 0).unwrap();
        }
        let key = proto::handshake::Key::from_bytes([1; 32]);
        s.add_credential(&CredId::from("ca"), &a, &key, 100, None, 0)
            .unwrap();
        s.add_credential(&CredId::from("cb"), &b, &key, 100, None, 0)
            .unwrap();
        s.add_host(&HostId::from("h"), &key, 0).unwrap();
        assert_eq!(s.revocation_epoch().unwrap(), 0);
        assert_eq!(s.revoke_user_credentials(&a, 50).unwrap(), 1);
        assert_eq!(s.revocation_epoch().unwrap(), 1);
        let creds = s.list_credentials().unwrap();
        assert!(
            creds
                .iter()
                .find(|c| c.id.as_str() == "ca")
                .unwrap()
                .revoked
        );
        assert!(
            !creds
                .iter()
                .find(|c| c.id.as_str() == "cb")
                .unwrap()
                .revoked
        );
        assert_eq!(s.revoke_everything(50).unwrap(), (1, 1));
        assert_eq!(s.revocation_epoch().unwrap(), 2);
        assert!(s.list_hosts().unwrap()[0].revoked);
    }

    fn a_removed_users_unexpired_credentials_stay_announced_as_revoked(s) {
        let (owner, a) = (UserId::from("owner"), UserId::from("a"));
        s.add_user(&owner, 0).unwrap();
        s.grant(&owner, "*", Role::Owner).unwrap();
        s.add_user(&a, 0).unwrap();
        let key = proto::handshake::Key::from_bytes([1; 32]);
        s.add_credential(&CredId::from("c-old"), &a, &key, 40, None, 0)
            .unwrap();
        s.add_credential(&CredId::from("c-live"), &a, &key, 100, None, 0)
            .unwrap();
        s.add_credential(&CredId::from("c-owner"), &owner, &key, 100, None, 0)
            .unwrap();
        assert!(s.revoked_unexpired(50).unwrap().is_empty());
        s.remove_user(&a, 50).unwrap();
        assert_eq!(s.revocation_epoch().unwrap(), 1);
        // The rows went with the user; the one that had not expired is still announced.
        assert!(
            s.list_credentials()
                .unwrap()
                .iter()
                .all(|c| c.user == owner)
        );
        assert_eq!(
            s.revoked_unexpired(50).unwrap(),
            vec![CredId::from("c-live")]
        );
        assert!(s.revoked_unexpired(100).unwrap().is_empty());
        // A later removal forgets tombstones that have expired by then.
        let b = UserId::from("b");
        s.add_user(&b, 0).unwrap();
        s.remove_user(&b, 200).unwrap();
        let left = s.count("SELECT COUNT(*) FROM removed_creds");
        assert_eq!(left, 0);
    }

    fn every_revocation_refuses_the_queued_prompts_it_affects(s) {
        let key = proto::handshake::Key::from_bytes([1; 32]);
        for (u, c) in [("a", "ca"), ("b", "cb"), ("k", "ck"), ("z", "cz")] {
            let user = UserId::from(u);
            s.add_user(&user, 0).unwrap();
            s.add_credential(&CredId::from(c), &user, &key, 1_000, None, 0)
                .unwrap();
        }
        s.grant(&UserId::from("z"), "*", Role::Owner).unwrap();
        s.add_host(&HostId::from("h1"), &key, 0).unwrap();
        s.add_host(&HostId::from("h2"), &key, 0).unwrap();
        let queue = |id: &str, user: &str, cred: &str, host: &str| {
            s.queue_add(&crate::store::QueueRow {
                id: id.into(),
                host: host.into(),
                workspace: "w".into(),
                session: "ses".into(),
                user: user.into(),
                cred_id: cred.into(),
                body: "{}".into(),
                idempotency_key: id.into(),
                created_ms: 1,
                expires_ms: 1_000,
                state: proto::queue::QueueState::Queued,
                detail: None,
                auth: None,
            })
            .unwrap();
        };
        queue("q_a", "a", "ca", "h1");
        queue("q_b", "b", "cb", "h1");
        queue("q_k", "k", "ck", "h1");
        queue("q_z", "z", "cz", "h1");
        queue("q_h", "z", "cz", "h2");
        let state = |id: &str| s.queue_get(id).unwrap().unwrap().state;
        let refused = proto::queue::QueueState::Refused;
        s.kill_credential(&CredId::from("ca")).unwrap();
        assert_eq!(state("q_a"), refused);
        assert_eq!(state("q_b"), proto::queue::QueueState::Queued);
        s.revoke_user_credentials(&UserId::from("b"), 10).unwrap();
        assert_eq!(state("q_b"), refused);
        s.remove_user(&UserId::from("k"), 10).unwrap();
        assert_eq!(state("q_k"), refused);
        s.kill_host(&HostId::from("h2")).unwrap();
        assert_eq!(state("q_h"), refused);
        assert_eq!(state("q_z"), proto::queue::QueueState::Queued);
        let row = s.queue_get("q_a").unwrap().unwrap();
        assert_eq!(
            row.detail.as_deref(),
            Some("not delivered: the author's credential was revoked")
        );
        s.revoke_everything(10).unwrap();
        assert_eq!(state("q_z"), refused);
        // Each refusal is audited once, as its author's.
        let audited: Vec<_> = s
            .audit_tail(100)
            .unwrap()
            .into_iter()
            .filter(|r| r.event.op == "queue_refused")
            .map(|r| (r.event.target.unwrap_or_default(), r.event.actor))
            .collect();
        let expect: Vec<(String, String)> = [
            ("q_a", "a"),
            ("q_b", "b"),
            ("q_k", "k"),
            ("q_h", "z"),
            ("q_z", "z"),
        ]
        .iter()
        .map(|(q, u)| ((*q).to_owned(), (*u).to_owned()))
        .collect();
        assert_eq!(audited, expect);
        assert_eq!(s.audit_verify().unwrap(), None);
    }

    fn a_totp_step_is_claimed_once(s) {
        let u = UserId::from("tess");
        s.add_user(&u, 1).unwrap();
        s.set_totp_secret(&u, b"0123456789abcdef0123").unwrap();
        assert!(s.claim_totp_step(&u, 100).unwrap());
        assert!(!s.claim_totp_step(&u, 100).unwrap(), "the same code twice");
        assert!(!s.claim_totp_step(&u, 99).unwrap(), "an older code");
        assert!(s.claim_totp_step(&u, 101).unwrap());
        assert_eq!(s.totp(&u).unwrap().unwrap().1, Some(101));
    }
    }
}
