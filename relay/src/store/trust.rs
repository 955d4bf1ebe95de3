//! Zero-trust objects (issue #20) on SQLite (the PostgreSQL twin is `postgres/trust.rs`): the
//! relay stores and serves certificates, revocation lists, host key claims, device keys seen at
//! login and roots announced by owners. It cannot make any of them: every signed object was
//! checked (`Signed::open`) before it reaches the store, and hosts and operators check them
//! again themselves.
//!
//! - certificates by serial: a serial is stored once (publishing the same certificate again
//!   changes nothing; a different one under a stored serial is refused);
//! - the newest revocation list per signer key (a lower or equal `seq` never replaces it);
//! - each host's newest key claim;
//! - pending device keys per user and key, with the first time seen (kept) and the label;
//! - announced roots per user and key;
//! - owner root rotation statements, the newest (`seq`) per replaced root.

use super::{SqliteStore, StoreError, to_i64, to_u64};
use proto::trust::{
    Cert, HostKeyClaim, PendingDevice, PublicKey, RevocationBody, RevocationList, Root,
    RootRotation, RotationBody, TrustBundle,
};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A stored object as its JSON text.
pub(super) fn to_json<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Refused(format!("{what}: {e}")))
}

/// A stored object read back.
pub(super) fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored {what}: {e}")))
}

/// A stored public key (hex) read back.
pub(super) fn key_from_hex(text: &str) -> Result<PublicKey, StoreError> {
    PublicKey::from_hex(text).map_err(|e| StoreError::Corrupt(format!("stored device key: {e}")))
}

/// What a publish of a certificate whose serial is already stored does: nothing when it is the
/// same certificate, a refusal when it is another one.
pub(super) fn same_or_refused(serial: &str, stored: &str, new: &str) -> Result<bool, StoreError> {
    if stored == new {
        Ok(false)
    } else {
        Err(StoreError::Refused(format!(
            "a different certificate with serial {serial} is already stored; sign a new certificate (it gets a new serial)"
        )))
    }
}

/// SQL shared by both backends (placeholders `$n` are understood by SQLite too).
pub(super) const UPSERT_REVOCATION: &str = "INSERT INTO trust_revocations(issuer, seq, issued_ms, list) \
     VALUES ($1, $2, $3, $4) ON CONFLICT(issuer) DO UPDATE SET \
     seq = excluded.seq, issued_ms = excluded.issued_ms, list = excluded.list \
     WHERE excluded.seq > trust_revocations.seq";
pub(super) const UPSERT_ROTATION: &str = "INSERT INTO trust_rotations(old_key, \"user\", seq, statement) \
     VALUES ($1, $2, $3, $4) ON CONFLICT(old_key) DO UPDATE SET \
     \"user\" = excluded.\"user\", seq = excluded.seq, statement = excluded.statement \
     WHERE excluded.seq > trust_rotations.seq";
pub(super) const SELECT_ROTATIONS: &str =
    "SELECT statement FROM trust_rotations ORDER BY seq, old_key";
pub(super) const UPSERT_CLAIM: &str = "INSERT INTO trust_host_claims(host, claim, seen_ms) \
     VALUES ($1, $2, $3) ON CONFLICT(host) DO UPDATE SET \
     claim = excluded.claim, seen_ms = excluded.seen_ms";

impl SqliteStore {
    /// Stores a certificate (already checked by the caller) under its serial; `false` when
    /// this very certificate was stored already.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Refused`] for another certificate under a stored serial.
    pub fn trust_put_cert(
        &self,
        serial: &str,
        cert: &Cert,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let json = to_json("certificate", cert)?;
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let stored: Option<String> = self
            .conn
            .query_row(
                "SELECT cert FROM trust_certs WHERE serial = ?1",
                params![serial],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(stored) = stored {
            return same_or_refused(serial, &stored, &json);
        }
        self.conn.execute(
            "INSERT INTO trust_certs(serial, issuer, cert, published_ms) VALUES (?1, ?2, ?3, ?4)",
            params![serial, cert.signer().to_hex(), json, to_i64(now_ms)],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Stores a revocation list (already checked) if it is newer (`seq`) than the one held
    /// from its signer; returns whether it was stored.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn trust_put_revocation(
        &self,
        body: &RevocationBody,
        list: &RevocationList,
    ) -> Result<bool, StoreError> {
        let json = to_json("revocation list", list)?;
        let n = self.conn.execute(
            UPSERT_REVOCATION,
            params![
                list.signer().to_hex(),
                to_i64(body.seq),
                to_i64(body.issued_ms),
                json
            ],
        )?;
        Ok(n > 0)
    }

    /// Stores an owner's root rotation statement (already checked) if it is newer (`seq`) than
    /// the one held for the root it replaces; returns whether it was stored.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn trust_put_rotation(
        &self,
        body: &RotationBody,
        statement: &RootRotation,
    ) -> Result<bool, StoreError> {
        let json = to_json("root rotation", statement)?;
        let n = self.conn.execute(
            UPSERT_ROTATION,
            params![
                body.old_key.to_hex(),
                body.user.as_str(),
                to_i64(body.seq),
                json
            ],
        )?;
        Ok(n > 0)
    }

    /// Every root rotation statement, oldest sequence first.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for a stored statement this build cannot read.
    pub fn root_rotations(&self) -> Result<Vec<RootRotation>, StoreError> {
        let mut st = self.conn.prepare_cached(SELECT_ROTATIONS)?;
        let texts = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        texts
            .iter()
            .map(|t| from_json("root rotation", t))
            .collect()
    }

    /// Stores a host's key claim, replacing its previous one.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn trust_put_claim(&self, claim: &HostKeyClaim, now_ms: u64) -> Result<(), StoreError> {
        let json = to_json("host key claim", claim)?;
        self.conn.execute(
            UPSERT_CLAIM,
            params![claim.host.as_str(), json, to_i64(now_ms)],
        )?;
        Ok(())
    }

    /// Records a device key seen at login; `false` when it was seen before (its first time
    /// and label are kept).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn trust_add_pending(&self, pending: &PendingDevice) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO trust_pending(user, key, seen_ms, label) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(user, key) DO NOTHING",
            params![
                pending.user.as_str(),
                pending.key.to_hex(),
                to_i64(pending.seen_ms),
                pending.label
            ],
        )?;
        Ok(n > 0)
    }

    /// Records a root announced by its owner; `false` when it was known.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn trust_add_root(&self, root: &Root, now_ms: u64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO trust_roots(user, key, announced_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT(user, key) DO NOTHING",
            params![root.user.as_str(), root.key.to_hex(), to_i64(now_ms)],
        )?;
        Ok(n > 0)
    }

    /// The newest revocation list of each signer.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for a stored list this build cannot read.
    pub fn revocation_lists(&self) -> Result<Vec<RevocationList>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT list FROM trust_revocations ORDER BY issuer")?;
        let texts = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        texts
            .iter()
            .map(|t| from_json("revocation list", t))
            .collect()
    }

    /// Everything stored (the caller narrows it).
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for a stored object this build cannot read.
    pub fn trust_bundle(&self) -> Result<TrustBundle, StoreError> {
        let texts = |sql: &str| -> Result<Vec<String>, StoreError> {
            let mut st = self.conn.prepare_cached(sql)?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        };
        let certs = texts("SELECT cert FROM trust_certs ORDER BY published_ms, serial")?
            .iter()
            .map(|t| from_json("certificate", t))
            .collect::<Result<_, _>>()?;
        let claims = texts("SELECT claim FROM trust_host_claims ORDER BY host")?
            .iter()
            .map(|t| from_json("host key claim", t))
            .collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare_cached(
            "SELECT user, key, seen_ms, label FROM trust_pending ORDER BY seen_ms, user",
        )?;
        let pending_rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let pending = pending_rows
            .into_iter()
            .map(|(user, key, seen, label)| pending(user, &key, seen, label))
            .collect::<Result<_, _>>()?;
        let mut st = self
            .conn
            .prepare_cached("SELECT user, key FROM trust_roots ORDER BY user, key")?;
        let root_rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let roots = root_rows
            .into_iter()
            .map(|(user, key)| root(user, &key))
            .collect::<Result<_, _>>()?;
        Ok(TrustBundle {
            roots,
            certs,
            revocations: self.revocation_lists()?,
            rotations: self.root_rotations()?,
            claims,
            pending,
        })
    }
}

/// A pending device row (either backend).
pub(super) fn pending(
    user: String,
    key: &str,
    seen_ms: i64,
    label: Option<String>,
) -> Result<PendingDevice, StoreError> {
    Ok(PendingDevice {
        user: proto::ids::UserId(user),
        key: key_from_hex(key)?,
        seen_ms: to_u64(seen_ms),
        label,
    })
}

/// A root row (either backend).
pub(super) fn root(user: String, key: &str) -> Result<Root, StoreError> {
    Ok(Root {
        user: proto::ids::UserId(user),
        key: key_from_hex(key)?,
    })
}
