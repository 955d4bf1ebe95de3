//! `cm-tui login`: exchange an invite or a password for a short-lived credential and keep it.

use crate::profile::{Logins, Profile, ProfileError};
use crate::trust::{TrustFileError, device, file::TrustFile};
use cm_client::{self as client, LinkError};
use proto::handshake::{Bytes32, LoginMethod, LoginRequest};
use proto::ids::UserId;
use proto::token::{ENROLL_PREFIX, INVITE_PREFIX, Invite, TokenError};
use proto::trust::{PublicKey, Root};

/// Login failures.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Bad invite text.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Missing option.
    #[error("{0}")]
    Usage(String),
    /// The relay refused or could not be reached.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Saving failed.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The device key or trust file failed.
    #[error(transparent)]
    Trust(#[from] TrustFileError),
}

/// What a login did.
#[derive(Debug)]
pub struct LoggedIn {
    /// The saved profile.
    pub profile: Profile,
    /// This laptop's device key (sent to the relay, pending until an admin certifies it).
    pub device_key: PublicKey,
    /// Whether the device key was made by this login.
    pub device_key_created: bool,
    /// Owners' roots pinned from the invite by this login (not pinned before).
    pub pinned: Vec<Root>,
}

/// What to log in with.
#[derive(Debug)]
pub enum LoginTarget {
    /// An invite token.
    Invite(Invite),
    /// A relay, user, pin and password.
    Password {
        /// Relay address.
        relay: String,
        /// Relay pin.
        pin: String,
        /// User.
        user: UserId,
        /// TOTP code, for users with a second factor.
        totp: Option<String>,
    },
}

/// Interprets the positional argument: an invite, or a relay address (then `user` and `pin` are
/// needed).
///
/// # Errors
/// A damaged invite, or missing `--user`/`--pin`.
pub fn parse_target(
    arg: &str,
    user: Option<String>,
    pin: Option<String>,
    totp: Option<String>,
) -> Result<LoginTarget, LoginError> {
    if arg.starts_with(INVITE_PREFIX) {
        return Ok(LoginTarget::Invite(Invite::decode(arg)?));
    }
    // A host's secret pasted here by mistake: say what it is, and never repeat it.
    if arg.starts_with(ENROLL_PREFIX) {
        return Err(LoginError::Usage(
            "this is a host enrollment token, not an invite; use it with `cm-agent enroll` on \
             the host (and keep it secret: it is the host's credential)"
                .into(),
        ));
    }
    let user = user.ok_or_else(|| {
        LoginError::Usage(format!(
            "logging in to {arg} needs --user NAME (or pass an invite)"
        ))
    })?;
    let pin = pin.ok_or_else(|| {
        LoginError::Usage(format!(
            "logging in to {arg} needs --pin (the relay key pin printed by `cm-relay init`)"
        ))
    })?;
    Ok(LoginTarget::Password {
        relay: arg.to_owned(),
        pin,
        user: UserId(user),
        totp,
    })
}

/// Runs the login and saves the credential; see [`login_device`].
///
/// # Errors
/// Refusal, transport or storage failures.
pub async fn login(
    logins: &Logins,
    target: LoginTarget,
    password: Option<String>,
    new_password: Option<String>,
    ttl_s: Option<u64>,
) -> Result<Profile, LoginError> {
    login_device(logins, target, password, new_password, ttl_s)
        .await
        .map(|d| d.profile)
}

/// Runs the login with this laptop's device key (made if this account has none, and sent so
/// the relay records it as pending), saves the credential and pins the invite's roots.
///
/// # Errors
/// Refusal, transport or storage failures.
pub async fn login_device(
    logins: &Logins,
    target: LoginTarget,
    password: Option<String>,
    new_password: Option<String>,
    ttl_s: Option<u64>,
) -> Result<LoggedIn, LoginError> {
    let label = Some(crate_label());
    let (relay, pin, roots, mut request) = match target {
        LoginTarget::Invite(inv) => (
            inv.relay,
            inv.pin,
            inv.roots,
            LoginRequest {
                v: proto::PROTOCOL_VERSION,
                user: inv.user,
                method: LoginMethod::Invite {
                    secret: Bytes32(inv.secret.0),
                    new_password,
                },
                ttl_s,
                label,
                device_key: None,
            },
        ),
        LoginTarget::Password {
            relay,
            pin,
            user,
            totp,
        } => {
            let password =
                password.ok_or_else(|| LoginError::Usage("a password is needed".into()))?;
            (
                relay,
                pin,
                Vec::new(),
                LoginRequest {
                    v: proto::PROTOCOL_VERSION,
                    user,
                    method: LoginMethod::Password { password, totp },
                    ttl_s,
                    label,
                    device_key: None,
                },
            )
        }
    };
    // The device key exists before the login so the relay records it as pending for this user.
    let account = format!("{}@{relay}", request.user);
    let (key, created) = device::ensure(logins.secrets(), &account)?;
    request.device_key = Some(key.public());
    // Dialled with this laptop's transport settings (tui.toml, CM_TRANSPORT, CM_PROXY …).
    let dial = client::DialOptions {
        transport: logins.home().transport,
        ..client::DialOptions::default()
    };
    let cred = client::login_with(&relay, &pin, request, &dial).await?;
    let profile = logins.save(&relay, &pin, &cred)?;
    let pinned = pin_roots(&profile, &roots)?;
    Ok(LoggedIn {
        profile,
        device_key: key.public(),
        device_key_created: created,
        pinned,
    })
}

/// Pins `roots` (from an invite) in the profile's trust file; returns those not pinned before.
///
/// # Errors
/// Trust file failures.
pub fn pin_roots(profile: &Profile, roots: &[Root]) -> Result<Vec<Root>, TrustFileError> {
    let path = crate::trust::file_path(profile);
    let mut f = TrustFile::read(&path)?;
    let new: Vec<Root> = roots
        .iter()
        .filter(|r| !f.roots.contains(r))
        .cloned()
        .collect();
    f.roots.extend(new.iter().cloned());
    f.user = Some(profile.user.clone());
    f.write(&path)?;
    Ok(new)
}

fn crate_label() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("cm-tui on {}", host.trim())
}

/// How long a credential stays valid, for the login message: hours, or minutes or seconds for
/// short TTLs (a 10-minute credential is not "valid for 0 h").
#[must_use]
pub fn describe_validity(remaining_ms: u64) -> String {
    let secs = remaining_ms / 1000;
    match secs {
        s if s >= 3600 => format!("{} h", s / 3600),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod validity_tests {
    use super::describe_validity;

    #[test]
    fn short_credentials_are_described_in_minutes_or_seconds() {
        assert_eq!(describe_validity(12 * 3_600_000 + 5), "12 h");
        assert_eq!(describe_validity(10 * 60_000), "10 min");
        assert_eq!(describe_validity(59_999), "59 s");
        assert_eq!(describe_validity(0), "0 s");
    }
}
