//! Zero-trust objects on PostgreSQL (the SQLite twin, with the rules, is `store/trust.rs`).

use super::super::trust::{
    SELECT_ROTATIONS, UPSERT_CLAIM, UPSERT_REVOCATION, UPSERT_ROTATION, from_json, pending, root,
    same_or_refused, to_json,
};
use super::{PgStore, StoreError, to_i64};
use proto::trust::{
    Cert, HostKeyClaim, PendingDevice, RevocationBody, RevocationList, Root, RootRotation,
    RotationBody, TrustBundle,
};

impl PgStore {
    /// Stores a certificate under its serial; `false` when this very one was stored already.
    ///
    /// # Errors
    /// PostgreSQL failures; [`StoreError::Refused`] for another certificate under a stored
    /// serial.
    pub fn trust_put_cert(
        &self,
        serial: &str,
        cert: &Cert,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let json = to_json("certificate", cert)?;
        let tx = self.begin(true)?;
        if let Some(stored) =
            self.opt("SELECT cert FROM trust_certs WHERE serial = $1", &[&serial])?
        {
            let stored: String = stored.try_get(0)?;
            return same_or_refused(serial, &stored, &json);
        }
        self.exec(
            "INSERT INTO trust_certs(serial, issuer, cert, published_ms) VALUES ($1, $2, $3, $4)",
            &[&serial, &cert.signer().to_hex(), &json, &to_i64(now_ms)],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Stores a revocation list if newer than its signer's; returns whether it was stored.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn trust_put_revocation(
        &self,
        body: &RevocationBody,
        list: &RevocationList,
    ) -> Result<bool, StoreError> {
        let json = to_json("revocation list", list)?;
        let n = self.exec(
            UPSERT_REVOCATION,
            &[
                &list.signer().to_hex(),
                &to_i64(body.seq),
                &to_i64(body.issued_ms),
                &json,
            ],
        )?;
        Ok(n > 0)
    }

    /// Stores a root rotation statement if newer than the one held for its old root.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn trust_put_rotation(
        &self,
        body: &RotationBody,
        statement: &RootRotation,
    ) -> Result<bool, StoreError> {
        let json = to_json("root rotation", statement)?;
        let n = self.exec(
            UPSERT_ROTATION,
            &[
                &body.old_key.to_hex(),
                &body.user.as_str(),
                &to_i64(body.seq),
                &json,
            ],
        )?;
        Ok(n > 0)
    }

    /// Every root rotation statement, oldest sequence first.
    ///
    /// # Errors
    /// PostgreSQL failures, or a stored statement this build cannot read.
    pub fn root_rotations(&self) -> Result<Vec<RootRotation>, StoreError> {
        self.rows(SELECT_ROTATIONS, &[])?
            .iter()
            .map(|r| from_json("root rotation", &r.try_get::<_, String>(0)?))
            .collect()
    }

    /// Stores a host's key claim, replacing its previous one.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn trust_put_claim(&self, claim: &HostKeyClaim, now_ms: u64) -> Result<(), StoreError> {
        let json = to_json("host key claim", claim)?;
        self.exec(
            UPSERT_CLAIM,
            &[&claim.host.as_str(), &json, &to_i64(now_ms)],
        )?;
        Ok(())
    }

    /// Records a device key seen at login; `false` when it was seen before.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn trust_add_pending(&self, p: &PendingDevice) -> Result<bool, StoreError> {
        let n = self.exec(
            r#"INSERT INTO trust_pending("user", key, seen_ms, label) VALUES ($1, $2, $3, $4)
               ON CONFLICT ("user", key) DO NOTHING"#,
            &[
                &p.user.as_str(),
                &p.key.to_hex(),
                &to_i64(p.seen_ms),
                &p.label,
            ],
        )?;
        Ok(n > 0)
    }

    /// Records a root announced by its owner; `false` when it was known.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub fn trust_add_root(&self, r: &Root, now_ms: u64) -> Result<bool, StoreError> {
        let n = self.exec(
            r#"INSERT INTO trust_roots("user", key, announced_ms) VALUES ($1, $2, $3)
               ON CONFLICT ("user", key) DO NOTHING"#,
            &[&r.user.as_str(), &r.key.to_hex(), &to_i64(now_ms)],
        )?;
        Ok(n > 0)
    }

    /// The newest revocation list of each signer.
    ///
    /// # Errors
    /// PostgreSQL failures, or a stored list this build cannot read.
    pub fn revocation_lists(&self) -> Result<Vec<RevocationList>, StoreError> {
        self.rows("SELECT list FROM trust_revocations ORDER BY issuer", &[])?
            .iter()
            .map(|r| from_json("revocation list", &r.try_get::<_, String>(0)?))
            .collect()
    }

    /// Everything stored (the caller narrows it).
    ///
    /// # Errors
    /// PostgreSQL failures, or a stored object this build cannot read.
    pub fn trust_bundle(&self) -> Result<TrustBundle, StoreError> {
        let certs = self
            .rows(
                "SELECT cert FROM trust_certs ORDER BY published_ms, serial",
                &[],
            )?
            .iter()
            .map(|r| from_json("certificate", &r.try_get::<_, String>(0)?))
            .collect::<Result<_, _>>()?;
        let claims = self
            .rows("SELECT claim FROM trust_host_claims ORDER BY host", &[])?
            .iter()
            .map(|r| from_json("host key claim", &r.try_get::<_, String>(0)?))
            .collect::<Result<_, _>>()?;
        let pending = self
            .rows(
                r#"SELECT "user", key, seen_ms, label FROM trust_pending ORDER BY seen_ms, "user""#,
                &[],
            )?
            .iter()
            .map(|r| {
                let key: String = r.try_get(1)?;
                pending(r.try_get(0)?, &key, r.try_get(2)?, r.try_get(3)?)
            })
            .collect::<Result<_, _>>()?;
        let roots = self
            .rows(
                r#"SELECT "user", key FROM trust_roots ORDER BY "user", key"#,
                &[],
            )?
            .iter()
            .map(|r| {
                let key: String = r.try_get(1)?;
                root(r.try_get(0)?, &key)
            })
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
