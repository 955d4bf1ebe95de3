//! The zero-trust scenario's keys and certificates, made the way laptops make them: the owner's
//! root key, the operator's own device key with one root-signed grant (so the host really walks
//! a chain: root → grant → device key), the host's end-to-end key, and a fresh owner-signed
//! revocation list. Also the operator's side of a signed header.

use crate::worlds::HOST;
use anyhow::{Context, Result};
use cm_agent::trust::{DEFAULT_REVOCATION_MAX_AGE_MS, HostTrust};
use cm_client::e2e::{ChannelId, HostKeyPair};
use cm_client::time::{now_ms, random32};
use proto::header::StreamHeader;
use proto::ids::{HostId, UserId};
use proto::rbac::Role;
use proto::trust::header::{SignInput, sign};
use proto::trust::{
    Cert, CertBody, DeviceKey, RevocationBody, RevocationList, Root, Signed, Subject,
};
use std::sync::Arc;

/// How long the bench's grant is valid (it only has to outlive the run).
const GRANT_VALIDITY_MS: u64 = 24 * 60 * 60 * 1000;

/// Who the operator is and what the host pinned.
#[derive(Debug)]
pub struct Identity {
    /// The signing user (the relay's owner principal, so both checks agree on who asks).
    pub user: UserId,
    /// The operator's device key (not a root: its role comes from [`Self::certs`]).
    pub device: DeviceKey,
    /// The owner's root.
    pub root: Root,
    /// One grant, signed by the root: operator on the bench host.
    pub certs: Vec<Cert>,
    /// The host's end-to-end key (what a host certificate would tell the operator).
    pub host_key: HostKeyPair,
    revocations: RevocationList,
}

fn device_key() -> Result<DeviceKey> {
    let seed = random32().context("drawing a device key")?;
    Ok(DeviceKey::from_seed(seed)?)
}

impl Identity {
    /// Fresh keys, the grant and the revocation list.
    ///
    /// # Errors
    /// No OS randomness.
    pub fn new() -> Result<Self> {
        let user = UserId::from("owner");
        let owner = device_key()?;
        let device = device_key()?;
        let now = now_ms();
        let serial = hex_serial()?;
        let grant = CertBody {
            serial,
            subject: Subject::User {
                user: user.clone(),
                device_keys: vec![device.public()],
                host: HOST.into(),
                role: Role::Operator,
            },
            not_before_ms: now.saturating_sub(60_000),
            not_after_ms: now + GRANT_VALIDITY_MS,
        };
        let revocations = Signed::sign(
            &RevocationBody {
                issuer_user: user.clone(),
                seq: 1,
                issued_ms: now,
                serials: Vec::new(),
                keys: Vec::new(),
            },
            &owner,
        );
        Ok(Self {
            root: Root {
                user: user.clone(),
                key: owner.public(),
            },
            certs: vec![Signed::sign(&grant, &owner)],
            user,
            device,
            host_key: HostKeyPair::generate()?,
            revocations,
        })
    }

    /// What the fake agent holds: the pinned root, its end-to-end key, a fresh revocation list.
    ///
    /// # Errors
    /// The revocation list is refused (not expected).
    pub fn host_trust(&self) -> Result<Arc<HostTrust>> {
        let trust = HostTrust::new(
            HostId::from(HOST),
            vec![self.root.clone()],
            self.host_key.secret(),
            DEFAULT_REVOCATION_MAX_AGE_MS,
        );
        let taken = trust.accept_revocations(std::slice::from_ref(&self.revocations), now_ms());
        anyhow::ensure!(taken == 1, "the host refused the owner's revocation list");
        trust.check_fresh(now_ms())?;
        Ok(Arc::new(trust))
    }

    /// Signs `header` as the operator does for every stream: a fresh nonce, the time, the
    /// body's hash (when it matters) and the channel (when sealed). Returns the nonce, which
    /// names the stream's keys.
    ///
    /// # Errors
    /// No OS randomness, or a header without a host.
    pub fn sign(
        &self,
        header: &mut StreamHeader,
        body: Option<String>,
        channel: Option<ChannelId>,
    ) -> Result<[u8; 16]> {
        let random = random32().context("drawing a stream nonce")?;
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&random[..16]);
        sign(
            header,
            SignInput {
                user: &self.user,
                key: &self.device,
                nonce,
                now_ms: now_ms(),
                body,
                channel: channel.map(|c| c.to_hex()),
                template: None,
            },
        )?;
        Ok(nonce)
    }
}

fn hex_serial() -> Result<String> {
    let r = random32().context("drawing a serial")?;
    Ok(r[..8].iter().map(|b| format!("{b:02x}")).collect())
}
