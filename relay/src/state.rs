//! The relay's state directory: creating it at `cm-relay init` (certificate, key, pin,
//! database, owner, invite) and loading it at `cm-relay run`.

use crate::config::INVITE_TTL;
use crate::config::StoreConfig;
use crate::store::{
    AuditSpool, Backend, PgBackend, PgStore, SqliteBackend, SqliteStore, Store, StoreError,
};
use crate::time::{now_ms, random32};
use crate::tls::{self, RELAY_SERVER_NAME, TlsError};
use proto::handshake::Bytes32;
use proto::ids::UserId;
use proto::rbac::Role;
use proto::token::Invite;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Setting key for the address put into tokens.
pub const SETTING_PUBLIC_ADDR: &str = "public_addr";

/// State directory failures.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Already initialised.
    #[error("{0} is already initialised; use another --state-dir, or remove it to start over")]
    AlreadyInitialised(PathBuf),
    /// The PostgreSQL database already serves a relay (or a fleet): this one joins it instead.
    #[error(
        "the PostgreSQL database already holds a relay's users: to make this machine another relay of that fleet, do not run init; copy relay.crt and relay.key from the first relay into {0}, set [fleet] id = \"NAME\" in relay.toml, then run `cm-relay cluster add --id NAME --peer-addr HOST:7444` and `cm-relay run` (docs/deployment.md, \"A fleet of relays\")"
    )]
    JoinFleet(PathBuf),
    /// Not initialised.
    #[error("{0} is not initialised; run `cm-relay init --state-dir {0}` first")]
    NotInitialised(PathBuf),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Certificate(String),
    /// TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Randomness unavailable.
    #[error("OS random source: {0}")]
    Random(String),
    /// Invalid name.
    #[error("invalid name {0:?}: use letters, digits, '-', '_' or '.'")]
    BadName(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Paths inside a state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    store: StoreConfig,
}

impl StateDir {
    /// The state directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            store: StoreConfig::Sqlite,
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The certificate (PEM).
    pub fn cert_path(&self) -> PathBuf {
        self.root.join("relay.crt")
    }

    /// The private key (PEM, mode 0600).
    pub fn key_path(&self) -> PathBuf {
        self.root.join("relay.key")
    }

    /// This relay's certificate among its fleet peers (PEM; see `fleet::identity`).
    pub fn peer_cert_path(&self) -> PathBuf {
        self.root.join("peer.crt")
    }

    /// The private key of [`Self::peer_cert_path`] (PEM, mode 0600).
    pub fn peer_key_path(&self) -> PathBuf {
        self.root.join("peer.key")
    }

    /// The SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("relay.db")
    }

    /// Where audit rows nobody waits for are kept while the database is away (see
    /// `store/audit_spool.rs`).
    pub fn audit_spool_path(&self) -> PathBuf {
        self.root.join(crate::store::SPOOL_FILE)
    }

    /// The same directory with its state kept in `store` (`[store]` of `relay.toml`).
    #[must_use]
    pub fn with_store(mut self, store: StoreConfig) -> Self {
        self.store = store;
        self
    }

    /// Where this directory's state is kept (`[store]`).
    pub fn store_config(&self) -> &StoreConfig {
        &self.store
    }

    fn has_database(&self) -> bool {
        match self.store {
            StoreConfig::Sqlite => self.db_path().exists(),
            // The database is elsewhere; `init` checks that it is empty.
            StoreConfig::Postgres(_) => true,
        }
    }

    /// Whether `init` has run here.
    pub fn is_initialised(&self) -> bool {
        self.cert_path().exists() && self.key_path().exists() && self.has_database()
    }

    /// Opens the store on a connection of its own (the CLI). Blocking: not for async code.
    ///
    /// # Errors
    /// Not initialised, or database failures.
    pub fn open_store(&self) -> Result<Box<Store>, StateError> {
        match &self.store {
            StoreConfig::Sqlite => {
                if !self.db_path().exists() {
                    return Err(StateError::NotInitialised(self.root.clone()));
                }
                Ok(Box::new(SqliteStore::open(&self.db_path())?))
            }
            StoreConfig::Postgres(pg) => Ok(Box::new(PgStore::open(pg)?)),
        }
    }

    /// Opens the store as the running relay uses it: its writer thread and read pool.
    /// Blocking (it connects and migrates): call it off the async runtime's threads.
    ///
    /// # Errors
    /// Not initialised, or database failures.
    pub fn open_backend(&self) -> Result<Arc<dyn Backend>, StateError> {
        Ok(match &self.store {
            StoreConfig::Sqlite => {
                if !self.db_path().exists() {
                    return Err(StateError::NotInitialised(self.root.clone()));
                }
                let store = SqliteStore::open(&self.db_path())?;
                Arc::new(SqliteBackend::start(store, Some(self.open_spool()?))?)
            }
            StoreConfig::Postgres(pg) => Arc::new(PgBackend::start(pg, Some(self.open_spool()?))?),
        })
    }

    fn open_spool(&self) -> Result<AuditSpool, StateError> {
        Ok(AuditSpool::open(&self.audit_spool_path())?)
    }

    /// The public address `init` recorded (what tokens and invites name), if readable.
    pub fn public_addr(&self) -> Option<String> {
        self.open_store()
            .ok()?
            .setting(SETTING_PUBLIC_ADDR)
            .ok()
            .flatten()
    }

    /// Loads the certificate chain, key and pin.
    ///
    /// # Errors
    /// Missing or unparseable files.
    pub fn load_tls(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String), StateError> {
        if !self.is_initialised() {
            return Err(StateError::NotInitialised(self.root.clone()));
        }
        let cert_path = self.cert_path();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
            .map_err(|e| StateError::Certificate(format!("{}: {e}", cert_path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| StateError::Certificate(format!("{}: {e}", cert_path.display())))?;
        let first = certs.first().ok_or_else(|| {
            StateError::Certificate(format!("{}: no certificate", cert_path.display()))
        })?;
        let pin = tls::pin_of_certificate(first)?;
        let key_path = self.key_path();
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|e| StateError::Certificate(format!("{}: {e}", key_path.display())))?;
        Ok((certs, key, pin))
    }

    /// The relay's pin (from its certificate).
    ///
    /// # Errors
    /// As [`Self::load_tls`].
    pub fn pin(&self) -> Result<String, StateError> {
        Ok(self.load_tls()?.2)
    }
}

/// What `init` produced.
#[derive(Debug)]
pub struct InitOutput {
    /// The relay key pin.
    pub pin: String,
    /// The owner's one-time invite.
    pub invite: Invite,
}

fn write_private(path: &Path, data: &[u8], mode: u32) -> Result<(), StateError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(data).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Creates a state directory: a self-signed certificate, the database, the owner and an invite.
///
/// # Errors
/// Already initialised, invalid owner name, or I/O failures.
pub fn init(dir: &StateDir, public_addr: &str, owner: &UserId) -> Result<InitOutput, StateError> {
    if !proto::ids::is_valid_name(owner.as_str()) {
        return Err(StateError::BadName(owner.0.clone()));
    }
    if dir.cert_path().exists() || (dir.store == StoreConfig::Sqlite && dir.db_path().exists()) {
        return Err(StateError::AlreadyInitialised(dir.root.clone()));
    }
    if let StoreConfig::Postgres(pg) = &dir.store
        && !PgStore::open(pg)?.list_users()?.is_empty()
    {
        return Err(StateError::JoinFleet(dir.root.clone()));
    }
    fs::create_dir_all(&dir.root).map_err(io_err(&dir.root))?;
    fs::set_permissions(&dir.root, fs::Permissions::from_mode(0o700)).map_err(io_err(&dir.root))?;

    let mut names = vec![RELAY_SERVER_NAME.to_owned()];
    if let Some(host) = public_addr
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']))
        && !host.is_empty()
        && host != RELAY_SERVER_NAME
    {
        names.push(host.to_owned());
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| StateError::Certificate(e.to_string()))?;
    let pin = tls::pin_of_certificate(certified.cert.der())?;
    write_private(
        &dir.key_path(),
        certified.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_private(&dir.cert_path(), certified.cert.pem().as_bytes(), 0o644)?;

    let store = match &dir.store {
        StoreConfig::Sqlite => Box::new(SqliteStore::open(&dir.db_path())?) as Box<Store>,
        StoreConfig::Postgres(pg) => Box::new(PgStore::open(pg)?),
    };
    let now = now_ms();
    store.set_setting(SETTING_PUBLIC_ADDR, public_addr)?;
    store.add_user(owner, now)?;
    store.grant(owner, "*", Role::Owner)?;
    let invite = new_invite(&*store, public_addr, &pin, owner, now)?;
    let row = crate::audit_event::Audit::Change {
        actor: "cm-relay init".into(),
        op: "init",
        summary: owner.0.clone(),
        host: None,
    }
    .row();
    store.audit(now, &row)?;
    Ok(InitOutput { pin, invite })
}

/// Creates a one-time invite for `user` (stored by hash only).
///
/// # Errors
/// Randomness or SQLite failures.
pub fn new_invite(
    store: &Store,
    public_addr: &str,
    pin: &str,
    user: &UserId,
    now_ms: u64,
) -> Result<Invite, StateError> {
    let secret = random32().map_err(|e| StateError::Random(e.to_string()))?;
    let expires = now_ms.saturating_add(u64::try_from(INVITE_TTL.as_millis()).unwrap_or(u64::MAX));
    store.add_invite(user, &invite_hash(&secret), expires)?;
    Ok(Invite {
        relay: public_addr.to_owned(),
        pin: pin.to_owned(),
        user: user.clone(),
        secret: Bytes32(secret),
        roots: Vec::new(),
    })
}

/// How an invite secret is stored: its BLAKE3 hash, so a database leak does not leak invites.
pub fn invite_hash(secret: &[u8; 32]) -> String {
    blake3::hash(secret).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_private_state_and_a_matching_pin() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path().join("state"));
        let out = init(&dir, "127.0.0.1:7443", &UserId::from("owner")).unwrap();
        assert!(dir.is_initialised());
        // The pin printed at init is the pin a client computes from the served certificate.
        assert_eq!(dir.pin().unwrap(), out.pin);
        let key_mode = fs::metadata(dir.key_path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(key_mode, 0o600);
        let dir_mode = fs::metadata(dir.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(out.invite.relay, "127.0.0.1:7443");
        let store = dir.open_store().unwrap();
        assert_eq!(
            store.grants(&UserId::from("owner")).unwrap(),
            vec![("*".into(), Role::Owner)]
        );
        assert!(
            store
                .redeem_invite(
                    &UserId::from("owner"),
                    &invite_hash(&out.invite.secret.0),
                    now_ms()
                )
                .unwrap()
        );
        assert!(matches!(
            init(&dir, "127.0.0.1:7443", &UserId::from("owner")),
            Err(StateError::AlreadyInitialised(_))
        ));
    }

    #[test]
    fn uninitialised_dir_says_what_to_run() {
        let tmp = tempfile::tempdir().unwrap();
        let err = StateDir::new(tmp.path()).load_tls().unwrap_err();
        assert!(err.to_string().contains("cm-relay init"), "{err}");
    }
}
