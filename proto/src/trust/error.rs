//! Why a signature, certificate, header or list was refused.

use crate::ids::{HostId, UserId};

/// Why a zero-trust check failed. The messages name what to do where a person can act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// A key or signature of the wrong length or not on the curve.
    #[error("malformed key or signature: {0}")]
    Malformed(String),
    /// The signature does not verify.
    #[error("bad signature by {signer}")]
    BadSignature {
        /// The claimed signer's fingerprint.
        signer: String,
    },
    /// The signed payload is not the expected JSON.
    #[error("signed payload is damaged: {0}")]
    Payload(String),
    /// The stream header carries no signature, and this host verifies operators itself.
    #[error(
        "this host verifies operators itself and the request is not signed; update cm-tui and log in again"
    )]
    Unsigned,
    /// A header on an end-to-end channel without its channel MAC, where one is required.
    #[error("the header carries no channel MAC")]
    NoMac,
    /// The header's channel MAC does not match: not made with the channel's key over this
    /// signature and these fields.
    #[error("the header's channel MAC does not match its channel: relay tampered")]
    MacMismatch,
    /// The signed fields differ from the header the relay forwarded.
    #[error("the signed header does not match the forwarded one ({field} differs): relay tampered")]
    HeaderMismatch {
        /// The field that differs.
        field: &'static str,
    },
    /// The request is for another host.
    #[error("the request was signed for host {signed}, not this host ({this})")]
    WrongHost {
        /// Host in the signed fields.
        signed: HostId,
        /// This host.
        this: HostId,
    },
    /// The signed time is outside the replay window of this host's clock.
    #[error(
        "the request's signed time is {skew_ms} ms away from this host's clock (limit {limit_ms} ms); check both clocks"
    )]
    Stale {
        /// Absolute difference.
        skew_ms: u64,
        /// The window.
        limit_ms: u64,
    },
    /// The nonce was already used.
    #[error("replayed request: its nonce was already used")]
    Replayed,
    /// The nonce window is full (fail closed).
    #[error("too many requests within the replay window; try again in a moment")]
    NoncesFull,
    /// No valid certificate grants this user's device key a role here.
    #[error(
        "no valid certificate grants {user}'s device key {fingerprint} a role on {host}; ask an admin to run `cm-tui admin user certify {user}`"
    )]
    NoGrant {
        /// The user.
        user: UserId,
        /// Their device key's fingerprint.
        fingerprint: String,
        /// This host.
        host: HostId,
    },
    /// The role the certificates give is too low for the operation.
    #[error("{user} holds {role} here by certificate; {op} needs {needed}")]
    RoleTooLow {
        /// The user.
        user: UserId,
        /// Certified role.
        role: crate::rbac::Role,
        /// The operation.
        op: &'static str,
        /// The role it needs.
        needed: String,
    },
    /// No valid host certificate names this host's end-to-end key.
    #[error(
        "no valid certificate vouches for host {host}'s key; an owner or admin must run `cm-tui admin host certify {host}`"
    )]
    NoHostCert {
        /// The host.
        host: HostId,
    },
    /// The host never received a revocation list signed by a root.
    #[error(
        "no revocation list signed by an owner has reached this host; an owner must run `cm-tui admin trust refresh`"
    )]
    NoRevocationList,
    /// The newest root-signed revocation list is too old (withheld by the relay, or no owner
    /// refreshed it).
    #[error(
        "the newest revocation list is {age_min} min old (limit {limit_min} min); refusing new work until an owner runs `cm-tui admin trust refresh` and the relay delivers it"
    )]
    RevocationsStale {
        /// Its age, minutes.
        age_min: u64,
        /// The limit, minutes.
        limit_min: u64,
    },
    /// The only owner-signed lists are dated ahead of this clock by more than the replay window.
    #[error(
        "the newest revocation list an owner signed is dated {ahead_min} min ahead of this host's clock, so it does not count as fresh; check the clock of the laptop that signed it (and this host's), then run `cm-tui admin trust refresh`"
    )]
    RevocationListAhead {
        /// How far ahead, minutes.
        ahead_min: u64,
    },
    /// A list signed by a key that is neither a root nor a certified admin (of this host, on a
    /// host).
    #[error(
        "revocation list signed by {signer}, who is not an owner or a certified admin (of this host)"
    )]
    UntrustedIssuer {
        /// The signer's fingerprint.
        signer: String,
    },
    /// A rotation statement signed by a key this host does not pin as that owner's root.
    #[error(
        "rotation statement signed by {signer}, which is not an owner root pinned here; ignored (only a pinned root can name its successor)"
    )]
    NotARoot {
        /// The signer's fingerprint.
        signer: String,
    },
    /// A rotation statement whose sequence number is not above the last one taken.
    #[error(
        "rotation statement {seq} is not newer than the last one taken here ({held}): a replayed or out-of-date statement; ignored"
    )]
    RotationReplayed {
        /// Its sequence number.
        seq: u64,
        /// The highest taken.
        held: u64,
    },
    /// A rotation statement signed by, or naming, a root already replaced or retired.
    #[error(
        "root {key} was already replaced or retired here: a root rotates once and never comes back; the owner rotates from their current root (`cm-tui admin trust rotate-owner` on the laptop that holds it)"
    )]
    RootRetired {
        /// The key's fingerprint.
        key: String,
    },
}
