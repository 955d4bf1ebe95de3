//! Login: exchange a one-time invite or a password for a short-lived credential. Every outcome
//! is audited; failures count towards the per-address limit and get one uniform message.
//! Attempts are reserved against the user and the address before any work, and argon2 runs
//! only on one of the relay's password-check threads (`password_workers`).

use super::Shared;
use super::principal::close;
use crate::audit_event::Audit;
use crate::framed::send_frame;
use crate::password::{MIN_PASSWORD_LEN, hash_password};
use crate::state::invite_hash;
use crate::store::StoreError;
use crate::time::{now_ms, random_u64, random32};
use proto::frame::MAX_HEADER_LEN;
use proto::handshake::{IssuedCredential, Key, LoginMethod, LoginRequest, ServerHello};
use proto::ids::{CredId, UserId};
use proto::message::CloseReason;
use proto::text::printable_id;
use proto::wire_error::{ErrorCode, WireError};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Why a login failed (for the log and audit; the client gets one generic message).
#[derive(Debug, thiserror::Error)]
enum LoginFailure {
    #[error("invalid user name")]
    BadName,
    #[error("unsupported protocol version {0}")]
    Version(u32),
    #[error("invite unknown, used or expired")]
    BadInvite,
    #[error("unknown user or no password set")]
    NoPassword,
    #[error("wrong password")]
    WrongPassword,
    #[error("TOTP code missing")]
    TotpMissing,
    #[error("wrong, old or reused TOTP code")]
    WrongTotp,
    #[error("new password shorter than {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
    #[error("user locked out for {0} more seconds after repeated failures")]
    LockedOut(u64),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl LoginFailure {
    /// Whether this failure keeps the attempt reserved against the user (a wrong secret);
    /// the others hand it back (the user was never really tried, or the relay failed).
    fn counts_against_user(&self) -> bool {
        matches!(
            self,
            Self::WrongPassword | Self::BadInvite | Self::NoPassword | Self::WrongTotp
        )
    }

    /// Whether the database was away: nobody's secret was tried, so nothing counts.
    fn store_away(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_unavailable())
    }

    /// Whether an attempt was reserved against the user before this failure.
    fn reserved_user(&self) -> bool {
        !matches!(self, Self::BadName | Self::Version(_) | Self::LockedOut(_))
    }

    fn public(&self) -> WireError {
        match self {
            Self::WeakPassword => WireError::new(
                ErrorCode::LoginFailed,
                format!("choose a password of at least {MIN_PASSWORD_LEN} characters"),
            ),
            Self::Version(v) => WireError::new(
                ErrorCode::BadRequest,
                format!("protocol version {v} is not supported by this relay; upgrade cm-tui"),
            ),
            Self::Store(e) if e.is_unavailable() => super::error::store_unavailable(),
            Self::Store(_) | Self::Internal(_) => WireError::new(
                ErrorCode::Internal,
                "login failed inside the relay; see its log",
            ),
            Self::TotpMissing => WireError::new(
                ErrorCode::LoginFailed,
                "this user has a second factor: add --totp CODE from your authenticator app",
            ),
            Self::LockedOut(s) => WireError::new(
                ErrorCode::LoginFailed,
                format!("too many failed logins for this user; try again in {s} s"),
            ),
            Self::BadName
            | Self::BadInvite
            | Self::NoPassword
            | Self::WrongPassword
            | Self::WrongTotp => WireError::new(
                ErrorCode::LoginFailed,
                "login failed: wrong user name or password, or the invite was already used or expired",
            ),
        }
    }
}

/// A hash to verify against when the user has none (equal work either way).
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("codemantle timing equaliser").unwrap_or_default());

/// Checks `password` against `hash` (or [`DUMMY_HASH`] when there is none) on one of the
/// relay's password-check threads, once one is free: concurrent logins never run more argon2
/// checks, or hold more of its memory, than there are threads.
async fn check_password(
    shared: &Shared,
    password: String,
    hash: Option<String>,
) -> Result<bool, LoginFailure> {
    shared
        .password_checks
        .run(move |memory| {
            let hash = hash.as_deref().unwrap_or(DUMMY_HASH.as_str());
            super::password_workers::verify_in(memory, password.as_bytes(), hash)
        })
        .await
        .map_err(|e| LoginFailure::Internal(e.to_string()))
}

/// Hashes a new password (after a valid invite only) on a password-check thread.
async fn hash_new_password(shared: &Shared, password: String) -> Result<String, LoginFailure> {
    shared
        .password_checks
        .run(move |_| hash_password(&password))
        .await
        .map_err(|e| LoginFailure::Internal(e.to_string()))?
        .map_err(LoginFailure::Internal)
}

async fn check(shared: &Arc<Shared>, req: LoginRequest) -> Result<IssuedCredential, LoginFailure> {
    if req.v != proto::PROTOCOL_VERSION {
        return Err(LoginFailure::Version(req.v));
    }
    if !proto::ids::is_valid_name(req.user.as_str()) {
        return Err(LoginFailure::BadName);
    }
    let user = req.user.clone();
    // Reserved before the work: concurrent attempts cannot all pass before one fails.
    if let Err(wait_ms) = shared
        .user_lockout
        .lock()
        .try_reserve(user.0.clone(), now_ms())
    {
        return Err(LoginFailure::LockedOut(wait_ms.div_ceil(1000)));
    }
    match req.method {
        LoginMethod::Invite {
            secret,
            new_password,
        } => {
            if new_password
                .as_ref()
                .is_some_and(|p| !crate::password::long_enough(p))
            {
                return Err(LoginFailure::WeakPassword);
            }
            let (u, hash) = (user.clone(), invite_hash(&secret.0));
            if !shared
                .store
                .call(move |s| s.redeem_invite(&u, &hash, now_ms()))
                .await?
            {
                return Err(LoginFailure::BadInvite);
            }
            if let Some(pw) = new_password {
                let hash = hash_new_password(shared, pw).await?;
                let u = user.clone();
                shared
                    .store
                    .call(move |s| s.set_password_hash(&u, &hash))
                    .await?;
            }
        }
        LoginMethod::Password { password, totp } => {
            // Ask for a missing second factor before checking the password, so the answer
            // never tells whether the password was right.
            let u = user.clone();
            if totp.is_none() && shared.store.read(move |s| s.totp(&u)).await?.is_some() {
                return Err(LoginFailure::TotpMissing);
            }
            let u = user.clone();
            let hash = shared.store.read(move |s| s.password_hash(&u)).await?;
            // Unknown users and users without a password cost the same argon2 work as a wrong
            // password, so response time does not reveal which names exist.
            let known = hash.is_some();
            let matches = check_password(shared, password, hash).await?;
            if !known {
                return Err(LoginFailure::NoPassword);
            }
            if !matches {
                return Err(LoginFailure::WrongPassword);
            }
            check_totp(shared, &user, totp).await?;
        }
    }
    issue(shared, user, req.ttl_s, req.label).await
}

/// Second factor: required when the user enrolled one; each code is accepted once.
async fn check_totp(
    shared: &Arc<Shared>,
    user: &UserId,
    code: Option<String>,
) -> Result<(), LoginFailure> {
    let u = user.clone();
    let Some((secret, last)) = shared.store.read(move |s| s.totp(&u)).await? else {
        return Ok(());
    };
    let code = code.ok_or(LoginFailure::TotpMissing)?;
    let step =
        crate::totp::verify(&secret, &code, now_ms(), last).ok_or(LoginFailure::WrongTotp)?;
    let u = user.clone();
    // The claim is atomic: of two logins racing with the same code, only one gets it.
    if !shared
        .store
        .call(move |s| s.claim_totp_step(&u, step))
        .await?
    {
        return Err(LoginFailure::WrongTotp);
    }
    Ok(())
}

async fn issue(
    shared: &Arc<Shared>,
    user: UserId,
    ttl_s: Option<u64>,
    label: Option<String>,
) -> Result<IssuedCredential, LoginFailure> {
    let ttl = ttl_s
        .map(Duration::from_secs)
        .unwrap_or(shared.config.credential_ttl)
        .min(shared.config.max_credential_ttl);
    let now = now_ms();
    let expires_at_ms = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    let secret = Key::from_bytes(random32().map_err(|e| LoginFailure::Internal(e.to_string()))?);
    let cred_id = CredId(format!("c{:016x}", random_u64()));
    let label = label.map(|l| l.chars().take(64).collect::<String>());
    let (c, u, k) = (cred_id.clone(), user.clone(), secret.clone());
    shared
        .store
        .call(move |s| s.add_credential(&c, &u, &k, expires_at_ms, label.as_deref(), now))
        .await?;
    Ok(IssuedCredential {
        cred_id,
        secret,
        expires_at_ms,
        user,
    })
}

/// Records the device key a user logged in with as pending certification (its first sighting
/// is kept), audited with its fingerprint in the same writer job. A failure is logged: the
/// login stands (an owner sees no pending key, and the operator's requests stay uncertified).
async fn record_device_key(
    shared: &Arc<Shared>,
    user: &UserId,
    key: proto::trust::PublicKey,
    label: Option<String>,
) {
    let now = now_ms();
    let pending = proto::trust::PendingDevice {
        user: user.clone(),
        key,
        seen_ms: now,
        label: label.map(|l| proto::text::sanitize_line(&l).chars().take(64).collect()),
    };
    let result = shared
        .store
        .call(move |s| {
            let new = s.trust_add_pending(&pending)?;
            let summary = format!(
                "logged in with device key {} ({})",
                pending.key.fingerprint(),
                if new {
                    "first seen: pending certification"
                } else {
                    "seen before"
                }
            );
            let row = Audit::Change {
                actor: pending.user.0.clone(),
                op: "device_key",
                summary,
                host: None,
            }
            .row();
            s.audit(now, &row)?;
            Ok(new)
        })
        .await;
    match result {
        Ok(new) => tracing::info!(%user, key = %key.fingerprint(), new, "device key recorded"),
        Err(e) => tracing::error!(%user, error = %e, "could not record a device key seen at login"),
    }
}

/// Handles a login hello on `send`, then closes the connection. The caller has reserved one
/// attempt for the source address (`addr_key`); a success hands it back.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    remote: SocketAddr,
    addr_key: IpAddr,
    req: LoginRequest,
    mut send: quinn::SendStream,
) {
    let user = req.user.clone();
    let shown_user = printable_id(user.as_str());
    let method = match req.method {
        LoginMethod::Invite { .. } => "invite",
        LoginMethod::Password { .. } => "password",
    };
    let (device_key, label) = (req.device_key, req.label.clone());
    let result = check(shared, req).await;
    let event = |result| Audit::Login {
        user: shown_user.clone(),
        ip: remote.ip(),
        method,
        result,
    };
    let reply = match result {
        Ok(cred) => {
            shared.user_lockout.lock().clear(&user.0);
            shared.limiter.lock().refund(&addr_key);
            // The credential is only handed out once its audit row is durable.
            match shared
                .audit_or_refusal(event(Ok(cred.cred_id.clone())))
                .await
            {
                Ok(()) => {
                    tracing::info!(user = %shown_user, %remote, method, cred = %cred.cred_id, "login");
                    if let Some(key) = device_key {
                        record_device_key(shared, &cred.user, key, label).await;
                    }
                    ServerHello::LoginOk(cred)
                }
                Err(super::error::RequestError::StoreUnavailable) => {
                    ServerHello::Error(super::error::store_unavailable())
                }
                Err(_) => {
                    ServerHello::Error(LoginFailure::Internal("audit write failed".into()).public())
                }
            }
        }
        Err(failure) => {
            tracing::warn!(user = %shown_user, %remote, method, reason = %failure, "login refused");
            // The address's reservation stays counted: every failed login is a failure there,
            // except while the database is away (no secret was checked).
            if failure.reserved_user() && !failure.counts_against_user() {
                shared.user_lockout.lock().refund(&user.0);
            }
            if failure.store_away() {
                shared.limiter.lock().refund(&addr_key);
                // Its row goes to the spool: one per address per window, then a count.
                let decision = shared.refusals.lock().note_kind(
                    addr_key,
                    super::refusal_log::Kind::LoginStoreAway,
                    now_ms(),
                );
                super::conn::audit_refusal_summaries(shared, &decision.summaries);
                if decision.write {
                    shared.audit_kept(event(Err(failure.to_string()))).await;
                }
            } else {
                shared.audit_kept(event(Err(failure.to_string()))).await;
            }
            ServerHello::Error(failure.public())
        }
    };
    let _ = send_frame(&mut send, &reply, MAX_HEADER_LEN).await;
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
    close(conn, CloseReason::Normal, "login done");
}
