//! Relay configuration with its documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default cap on concurrent argon2 password checks (`max_password_checks`).
pub const DEFAULT_MAX_PASSWORD_CHECKS: usize = 4;

/// Default UDP listen address (design §10).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7443";
/// A host whose last heartbeat is older than this is shown offline (design: within 10 s).
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer must finish the handshake this quickly, or it is dropped (stops idle connection
/// floods from holding slots).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default lifetime of a login credential (design §5: 12 h).
pub const DEFAULT_CREDENTIAL_TTL: Duration = Duration::from_secs(12 * 3600);
/// Hard maximum lifetime of a login credential, whatever a client asks for.
pub const MAX_CREDENTIAL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Lifetime of an invite.
pub const INVITE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a prompt for an offline host is kept before it is dropped (design: 1 h).
pub const DEFAULT_QUEUE_EXPIRY: Duration = Duration::from_secs(3600);
/// How long shutdown waits for connections to close before giving up.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Send and receive buffer size asked of the kernel for the UDP socket (the kernel may double
/// it). Defaults of ~208 KiB drop packets under load (see docs/performance.md).
pub const UDP_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// The port of an address like `host:port` or `[v6]:port`.
pub fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
}

/// Where the relay listens when neither `--listen` nor relay.toml says: every interface, on
/// the port of the public address `init` recorded (what tokens and invites tell clients to
/// dial), else 7443.
pub fn default_listen(public_addr: Option<&str>) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], public_addr.and_then(port_of).unwrap_or(7443)))
}

/// Where the relay's TCP listener (QUIC tunnelled in TLS over TCP, issue #21) listens
/// (`listen_tcp` in relay.toml, `--listen-tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListenTcp {
    /// The IP and port number of `listen` (7443/udp and 7443/tcp). If that TCP port cannot be
    /// bound the relay still starts, without the TCP path, and says so.
    #[default]
    SameAsUdp,
    /// No TCP listener (`"off"`).
    Off,
    /// This address; failing to bind it stops the relay.
    At(SocketAddr),
}

impl std::str::FromStr for ListenTcp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "off" => Ok(Self::Off),
            "same" => Ok(Self::SameAsUdp),
            other => other.parse().map(Self::At).map_err(|e| {
                format!("{other:?} is not an address like 0.0.0.0:443, or \"off\" ({e})")
            }),
        }
    }
}

impl ListenTcp {
    /// The address to bind, given the UDP `listen` address (`None`: off).
    pub fn resolve(self, listen: SocketAddr) -> Option<SocketAddr> {
        match self {
            Self::SameAsUdp => Some(listen),
            Self::Off => None,
            Self::At(addr) => Some(addr),
        }
    }
}

/// Everything `cm-relay run` needs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// UDP address to serve QUIC on.
    pub listen: SocketAddr,
    /// TCP address to serve QUIC-in-TLS on (see [`ListenTcp`]).
    pub listen_tcp: ListenTcp,
    /// Limits of the TCP listener (`tcp_connections_per_address` in relay.toml).
    pub tcp_limits: cm_client::tunnel::config::ListenerLimits,
    /// State directory (certificate, key, database).
    pub state_dir: PathBuf,
    /// Offline after this long without a heartbeat.
    pub heartbeat_timeout: Duration,
    /// QUIC idle timeout.
    pub idle_timeout: Duration,
    /// Time allowed for the handshake.
    pub handshake_timeout: Duration,
    /// Default credential lifetime.
    pub credential_ttl: Duration,
    /// Maximum credential lifetime.
    pub max_credential_ttl: Duration,
    /// Shutdown drain bound.
    pub drain_timeout: Duration,
    /// Lifetime of a queued prompt for an offline host.
    pub queue_expiry: Duration,
    /// Record the full text of prompts in the audit trail (default: only their BLAKE3 hash).
    pub audit_prompt_text: bool,
    /// Cap on concurrent argon2 password checks (see `net::password_slots`).
    pub max_password_checks: usize,
    /// Which backend holds the relay's state (`[store]`).
    pub store: StoreConfig,
    /// `[fleet]`: this relay is one of several on one PostgreSQL (`None`: the single relay).
    pub fleet: Option<crate::fleet_config::FleetConfig>,
    /// `[notify]`: where notifications may go, and the key their secrets are sealed with.
    pub notify: NotifyConfig,
}

/// `[notify]` of `relay.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Which addresses notifications may be sent to (default: public ones only).
    pub targets: crate::notify::targets::TargetPolicy,
    /// The key channel secrets are sealed with (default: [`NOTIFY_KEY_FILE`] in the state
    /// directory). Every relay of a fleet must use the same one.
    pub secret_key_file: Option<PathBuf>,
}

/// The notification secret key's file name in the state directory.
pub const NOTIFY_KEY_FILE: &str = "notify.key";

impl RelayConfig {
    /// The file channel secrets are sealed with.
    pub fn notify_key_path(&self) -> PathBuf {
        self.notify
            .secret_key_file
            .clone()
            .unwrap_or_else(|| self.state_dir.join(NOTIFY_KEY_FILE))
    }
}

/// The store backend (`[store] backend` in `relay.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreConfig {
    /// `relay.db` in the state directory (the default: one relay, embedded).
    #[default]
    Sqlite,
    /// A PostgreSQL database several relays may share.
    Postgres(crate::store::PgConfig),
}

impl RelayConfig {
    /// Defaults for a state directory.
    pub fn new(state_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 7443)),
            listen_tcp: ListenTcp::SameAsUdp,
            tcp_limits: cm_client::tunnel::config::ListenerLimits::default(),
            state_dir,
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            idle_timeout: crate::tls::DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            credential_ttl: DEFAULT_CREDENTIAL_TTL,
            max_credential_ttl: MAX_CREDENTIAL_TTL,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            queue_expiry: DEFAULT_QUEUE_EXPIRY,
            audit_prompt_text: false,
            max_password_checks: DEFAULT_MAX_PASSWORD_CHECKS,
            store: StoreConfig::Sqlite,
            fleet: None,
            notify: NotifyConfig::default(),
        }
    }
}

/// The default state directory: systemd's `$STATE_DIRECTORY` when run as a service, else
/// `$XDG_STATE_HOME/codemantle/relay` (`~/.local/state/codemantle/relay`).
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("codemantle/relay");
    }
    directories::BaseDirs::new()
        .map(|b| b.home_dir().join(".local/state/codemantle/relay"))
        .unwrap_or_else(|| PathBuf::from("codemantle-relay-state"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_tcp_defaults_to_the_udp_address_and_off_turns_it_off() {
        let udp: SocketAddr = "0.0.0.0:7443".parse().unwrap();
        assert_eq!(ListenTcp::default().resolve(udp), Some(udp));
        assert_eq!("off".parse::<ListenTcp>().unwrap().resolve(udp), None);
        let at: SocketAddr = "0.0.0.0:443".parse().unwrap();
        assert_eq!(
            "0.0.0.0:443".parse::<ListenTcp>().unwrap().resolve(udp),
            Some(at)
        );
        let err = "443".parse::<ListenTcp>().unwrap_err();
        assert!(
            err.contains("0.0.0.0:443") && err.contains("\"off\""),
            "{err}"
        );
    }
}
