//! The store interface: every query and mutation the relay makes, as two traits that a backend
//! implements ([`SqliteStore`] and [`PgStore`]). Code that takes `&Store` (the admin
//! domain, the CLI, jobs run by [`StoreHandle::call`](super::StoreHandle::call)) works with
//! any backend; reads run by [`StoreHandle::read`](super::StoreHandle::read) get only
//! [`StoreRead`], so a read cannot write by mistake.
//!
//! Each method is declared once below; the macro writes the trait and both backends'
//! implementations, which forward to the store's inherent method of the same name.

use super::{
    AuditEvent, AuditFilter, AuditRow, CredRow, FoundCredential, HostRow, NotifyRow, PgStore,
    Published, QueueRow, SqliteStore, StoreError, TotpState, UserRow,
};
use crate::notify::sealing::Sealer;
use proto::handshake::{Key, PeerKind};
use proto::ids::{CredId, HostId, UserId};
use proto::notify::ChannelSpec;
use proto::queue::QueueState;
use proto::rbac::Role;
use proto::template::{Template, TemplateContent, TemplateSummary};
use proto::trust::{
    Cert, HostKeyClaim, PendingDevice, RevocationBody, RevocationList, Root, RootRotation,
    RotationBody, TrustBundle,
};

/// What the admin domain and mutation jobs work with: a store that can read and write.
pub type Store = dyn StoreWrite;

macro_rules! store_trait {
    (
        $(#[$trait_meta:meta])*
        trait $name:ident $(: $parent:ident)? {
            $(
                $(#[$meta:meta])*
                fn $method:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
            )*
        }
    ) => {
        $(#[$trait_meta])*
        pub trait $name $(: $parent)? {
            $(
                $(#[$meta])*
                ///
                /// # Errors
                /// Backend failures, and the refusals the SQLite method documents.
                fn $method(&self $(, $arg: $ty)*) -> Result<$ret, StoreError>;
            )*
        }

        impl $name for SqliteStore {
            $(
                fn $method(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    SqliteStore::$method(self $(, $arg)*)
                }
            )*
        }

        impl $name for PgStore {
            $(
                fn $method(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    PgStore::$method(self $(, $arg)*)
                }
            )*
        }
    };
}

store_trait! {
    /// Queries: they never change anything, so they may run on a read-only connection.
    trait StoreRead {
        /// The backend's own consistency check.
        fn integrity_check(&self) -> ();
        /// A setting.
        fn setting(&self, key: &str) -> Option<String>;
        /// A user's password hash.
        fn password_hash(&self, user: &UserId) -> Option<String>;
        /// A user's grants as `(host or *, role)`.
        fn grants(&self, user: &UserId) -> Vec<(String, Role)>;
        /// All hosts, sorted by id.
        fn list_hosts(&self) -> Vec<HostRow>;
        /// What a handshake needs for a credential.
        fn find_credential(&self, kind: PeerKind, cred_id: &CredId) -> Option<FoundCredential>;
        /// The revocation epoch.
        fn revocation_epoch(&self) -> u64;
        /// Revoked credentials that have not expired.
        fn revoked_unexpired(&self, now_ms: u64) -> Vec<CredId>;
        /// The same, each with the hosts (or `*`) it could reach.
        fn revoked_unexpired_with_hosts(&self, now_ms: u64) -> Vec<(CredId, String)>;
        /// All users with their grants.
        fn list_users(&self) -> Vec<UserRow>;
        /// All credentials, newest first.
        fn list_credentials(&self) -> Vec<CredRow>;
        /// The owner of a session.
        fn session_owner(&self, host: &HostId, session: &str) -> Option<UserId>;
        /// A user's TOTP state.
        fn totp(&self, user: &UserId) -> Option<TotpState>;
        /// The newest audit rows.
        fn audit_tail(&self, limit: usize) -> Vec<AuditRow>;
        /// A page of audit rows.
        fn audit_page(&self, filter: &AuditFilter<'_>) -> Vec<AuditRow>;
        /// Audit rows after one.
        fn audit_after(&self, after_id: i64, limit: usize) -> Vec<AuditRow>;
        /// Checks the audit chain; the first row that does not chain.
        fn audit_verify(&self) -> Option<i64>;
        /// One queue entry.
        fn queue_get(&self, id: &str) -> Option<QueueRow>;
        /// A queue entry by its author, host and idempotency key.
        fn queue_find_key(&self, user: &str, host: &str, key: &str) -> Option<QueueRow>;
        /// A user's queue entries.
        fn queue_of_user(&self, user: &str, limit: usize) -> Vec<QueueRow>;
        /// Entries waiting for a host.
        fn queue_waiting(&self, host: &str) -> Vec<QueueRow>;
        /// Hosts with entries waiting.
        fn queue_hosts(&self) -> Vec<String>;
        /// The latest version of every template.
        fn list_templates(&self) -> Vec<TemplateSummary>;
        /// One version of a template (the latest when `version` is `None`).
        fn template(&self, name: &str, version: Option<u32>) -> Option<Template>;
        /// Every zero-trust object stored (certificates, newest revocation lists, host key
        /// claims, pending device keys, announced roots).
        fn trust_bundle(&self) -> TrustBundle;
        /// The newest revocation list of each signer.
        fn revocation_lists(&self) -> Vec<RevocationList>;
        /// Every owner root rotation statement, oldest sequence first.
        fn root_rotations(&self) -> Vec<RootRotation>;
        /// A user's notification channels (every user's with `None`).
        fn notify_channels(&self, user: Option<&str>, sealer: &Sealer) -> Vec<NotifyRow>;
    }
}

store_trait! {
    /// Mutations (and, through [`StoreRead`], queries in the same unit of work). The relay
    /// runs them on its one writer.
    trait StoreWrite: StoreRead {
        /// Writes a setting.
        fn set_setting(&self, key: &str, value: &str) -> ();
        /// Adds a user.
        fn add_user(&self, user: &UserId, now_ms: u64) -> ();
        /// Sets a user's password hash.
        fn set_password_hash(&self, user: &UserId, hash: &str) -> ();
        /// Grants a role.
        fn grant(&self, user: &UserId, host: &str, role: Role) -> ();
        /// Stores an invite.
        fn add_invite(&self, user: &UserId, secret_hash: &str, expires_ms: u64) -> ();
        /// Redeems an invite once.
        fn redeem_invite(&self, user: &UserId, secret_hash: &str, now_ms: u64) -> bool;
        /// Enrolls a host.
        fn add_host(&self, host: &HostId, secret: &Key, now_ms: u64) -> ();
        /// Revokes a host.
        fn revoke_host(&self, host: &HostId) -> ();
        /// Issues an operator credential.
        fn add_credential(
            &self,
            cred: &CredId,
            user: &UserId,
            secret: &Key,
            expires_ms: u64,
            label: Option<&str>,
            now_ms: u64,
        ) -> ();
        /// Revokes a credential.
        fn revoke_credential(&self, cred: &CredId) -> bool;
        /// Bumps the revocation epoch.
        fn bump_revocation_epoch(&self) -> u64;
        /// Removes a user.
        fn remove_user(&self, user: &UserId, now_ms: u64) -> ();
        /// Removes a grant.
        fn revoke_grant(&self, user: &UserId, host: &str) -> ();
        /// Revokes a user's live credentials.
        fn revoke_user_credentials(&self, user: &UserId, now_ms: u64) -> usize;
        /// Revokes every credential and host.
        fn revoke_everything(&self, now_ms: u64) -> (usize, usize);
        /// Revokes a host and bumps the epoch.
        fn kill_host(&self, host: &HostId) -> ();
        /// Revokes a credential and bumps the epoch.
        fn kill_credential(&self, cred: &CredId) -> bool;
        /// Records a session's creator (the relay goes through
        /// [`StoreHandle::set_session_owner`](super::StoreHandle::set_session_owner), which keeps
        /// its cache exact).
        fn set_session_owner(&self, host: &HostId, session: &str, owner: &UserId, now_ms: u64) -> ();
        /// Enrolls a TOTP secret.
        fn set_totp_secret(&self, user: &UserId, secret: &[u8]) -> ();
        /// Claims a TOTP step once.
        fn claim_totp_step(&self, user: &UserId, step: u64) -> bool;
        /// Appends an audit row.
        fn audit(&self, ts_ms: u64, e: &AuditEvent) -> ();
        /// Appends audit rows in one transaction.
        fn audit_batch(&self, events: &[(u64, &AuditEvent)]) -> ();
        /// Stores a queue entry.
        fn queue_add(&self, q: &QueueRow) -> ();
        /// Stores a queue entry unless its key was queued already.
        fn queue_add_once(&self, q: &QueueRow) -> Option<QueueRow>;
        /// Refuses entries of revoked credentials and hosts.
        fn queue_refuse_revoked(&self) -> usize;
        /// Moves an entry between states.
        fn queue_transition(
            &self,
            id: &str,
            from: QueueState,
            to: QueueState,
            detail: Option<&str>,
        ) -> bool;
        /// Expires waiting entries.
        fn queue_expire(&self, now_ms: u64) -> Vec<QueueRow>;
        /// Forgets finished entries.
        fn queue_purge(&self, before_ms: u64) -> usize;
        /// Claims a waiting entry for delivery by `relay`.
        fn queue_claim(&self, id: &str, relay: &str, now_ms: u64) -> bool;
        /// Ends `relay`'s delivery of an entry (if it is still its claim).
        fn queue_finish(
            &self,
            id: &str,
            relay: &str,
            to: QueueState,
            detail: Option<&str>,
        ) -> bool;
        /// Re-queues entries left delivering by `relay` itself, by dead or retired relays, or
        /// too long ago.
        fn queue_recover(&self, relay: &str, now_ms: u64, stale_ms: u64, alive_ms: u64) -> usize;
        /// Stores the next version of a template (or finds the latest, when identical).
        fn publish_template(
            &self,
            name: &str,
            author: &str,
            content: &TemplateContent,
            hash: &str,
            now_ms: u64,
        ) -> Published;
        /// Stores a checked certificate under its serial (`false`: stored already).
        fn trust_put_cert(&self, serial: &str, cert: &Cert, now_ms: u64) -> bool;
        /// Stores a checked revocation list if newer than its signer's (`false`: not newer).
        fn trust_put_revocation(&self, body: &RevocationBody, list: &RevocationList) -> bool;
        /// Stores a checked root rotation statement if newer than the one held for its old
        /// root (`false`: not newer).
        fn trust_put_rotation(&self, body: &RotationBody, statement: &RootRotation) -> bool;
        /// Stores a host's key claim (its newest).
        fn trust_put_claim(&self, claim: &HostKeyClaim, now_ms: u64) -> ();
        /// Records a device key seen at login (`false`: seen before; its first sight is kept).
        fn trust_add_pending(&self, pending: &PendingDevice) -> bool;
        /// Records a root announced by its owner (`false`: known).
        fn trust_add_root(&self, root: &Root, now_ms: u64) -> bool;
        /// Stores or replaces a user's notification channel (`true`: new).
        fn notify_put(
            &self,
            user: &str,
            spec: &ChannelSpec,
            sealer: &Sealer,
            max: usize,
            now_ms: u64,
        ) -> bool;
        /// Removes a user's notification channel (`false`: none).
        fn notify_remove(&self, user: &str, name: &str) -> bool;
        /// Records a delivery attempt of a channel (`error`: it failed).
        fn notify_record(&self, user: &str, name: &str, error: Option<&str>, now_ms: u64) -> ();
    }
}
