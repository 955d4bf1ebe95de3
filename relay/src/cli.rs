//! The `cm-relay` command line: `init`, `run`, `host add|list`, `user passwd`, `audit`.

use crate::config::{self, RelayConfig};
use crate::state::{self, SETTING_PUBLIC_ADDR, StateDir};
use crate::store::AuditEvent;
pub use crate::time::parse_duration;
use crate::time::{now_ms, random32};
use clap::{Args, Parser, Subcommand};
use proto::handshake::Key;
use proto::ids::{HostId, UserId};
use proto::token::EnrollmentToken;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The CodeMantle relay: a small QUIC server that agents and operators both dial out to.
#[derive(Debug, Parser)]
#[command(
    name = "cm-relay",
    version = concat!(env!("CARGO_PKG_VERSION"), " (protocol ", "codemantle/1", ")"),
    after_help = "Examples:\n  cm-relay init --public-addr relay.example.com:7443\n  cm-relay run\n  cm-relay host add home-box\n  cm-relay host list\n\nLogs honour RUST_LOG (e.g. RUST_LOG=cm_relay=debug)."
)]
pub struct Cli {
    /// State directory (certificate, key, database) [default: $STATE_DIRECTORY, else ~/.local/state/codemantle/relay]
    #[arg(long, global = true, env = "CM_RELAY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the state directory: certificate and pin, database, owner user and their invite.
    #[command(
        after_help = "Example:\n  cm-relay init --public-addr relay.example.com:7443 --owner alice"
    )]
    Init(InitArgs),
    /// Serve QUIC until SIGTERM or Ctrl-C.
    #[command(after_help = "Example:\n  cm-relay run --listen 0.0.0.0:7443")]
    Run(RunArgs),
    /// Manage hosts.
    #[command(subcommand)]
    Host(HostCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Read or verify the audit trail.
    Audit(AuditArgs),
}

/// `init` options.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The address agents and operators will dial (goes into tokens and invites).
    #[arg(long, default_value = "127.0.0.1:7443", env = "CM_RELAY_PUBLIC_ADDR")]
    pub public_addr: String,
    /// Name of the owner user.
    #[arg(long, default_value = "owner")]
    pub owner: String,
}

/// `run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// UDP address to listen on.
    #[arg(long, default_value = config::DEFAULT_LISTEN, env = "CM_RELAY_LISTEN")]
    pub listen: SocketAddr,
    /// A host is shown offline this long after its last heartbeat (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub heartbeat_timeout: Duration,
    /// QUIC idle timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Time a client has to complete the handshake.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// Default lifetime of login credentials.
    #[arg(long, default_value = "12h", value_parser = parse_duration)]
    pub credential_ttl: Duration,
}

/// Host subcommands.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Enroll a host: prints the token to give to `cm-agent enroll`.
    #[command(
        after_help = "Example:\n  cm-relay host add home-box\n  # then on the host: cm-agent enroll <token>"
    )]
    Add {
        /// Host name (letters, digits, '-', '_', '.').
        name: String,
        /// Relay address to put in the token [default: the one given at init].
        #[arg(long)]
        relay_addr: Option<String>,
    },
    /// List enrolled hosts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// User subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Set a user's password (read from the terminal, or one line of stdin with --password-stdin).
    #[command(after_help = "Example:\n  cm-relay user passwd owner")]
    Passwd {
        /// User name.
        name: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `audit` options.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// `verify` checks the hash chain and names the first broken row.
    pub action: Option<String>,
    /// How many of the newest rows to show.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// Builds a relay configuration from `run` options.
pub fn run_config(state_dir: PathBuf, args: &RunArgs) -> RelayConfig {
    let mut c = RelayConfig::new(state_dir);
    c.listen = args.listen;
    c.heartbeat_timeout = args.heartbeat_timeout;
    c.idle_timeout = args.idle_timeout;
    c.handshake_timeout = args.handshake_timeout;
    c.credential_ttl = args.credential_ttl.min(config::MAX_CREDENTIAL_TTL);
    c
}

/// Errors of the one-shot subcommands.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// State directory problems.
    #[error(transparent)]
    State(#[from] state::StateError),
    /// Database problems.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Invalid input.
    #[error("{0}")]
    Input(String),
}

/// `host add`: enrolls `name` and returns its token.
///
/// # Errors
/// Invalid or taken name, uninitialised state.
pub fn host_add(
    dir: &StateDir,
    name: &str,
    relay_addr: Option<String>,
) -> Result<EnrollmentToken, CliError> {
    if !proto::ids::is_valid_name(name) {
        return Err(CliError::Input(format!(
            "invalid host name {name:?}: use letters, digits, '-', '_' or '.'"
        )));
    }
    let pin = dir.pin()?;
    let store = dir.open_store()?;
    let relay = match relay_addr {
        Some(a) => a,
        None => store.setting(SETTING_PUBLIC_ADDR)?.ok_or_else(|| {
            CliError::Input("no public address recorded; pass --relay-addr".into())
        })?,
    };
    let secret = Key::from_bytes(random32().map_err(|e| CliError::Input(e.to_string()))?);
    let host = HostId::from(name);
    let now = now_ms();
    store.add_host(&host, &secret, now)?;
    store.audit(
        now,
        &AuditEvent {
            actor: "cm-relay cli".into(),
            host: Some(name.into()),
            op: "host_add".into(),
            decision: "allow".into(),
            ..AuditEvent::default()
        },
    )?;
    Ok(EnrollmentToken {
        relay,
        pin,
        host,
        secret,
    })
}

/// `user passwd`: sets a password.
///
/// # Errors
/// Unknown user, short password.
pub fn user_passwd(dir: &StateDir, name: &str, password: &str) -> Result<(), CliError> {
    if password.chars().count() < crate::net::login::MIN_PASSWORD_LEN {
        return Err(CliError::Input(format!(
            "choose a password of at least {} characters",
            crate::net::login::MIN_PASSWORD_LEN
        )));
    }
    let store = dir.open_store()?;
    let hash = crate::net::login::hash_password(password).map_err(CliError::Input)?;
    let user = UserId::from(name);
    store.set_password_hash(&user, &hash)?;
    store.audit(
        now_ms(),
        &AuditEvent {
            actor: "cm-relay cli".into(),
            op: "user_passwd".into(),
            target: Some(name.into()),
            decision: "allow".into(),
            ..AuditEvent::default()
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_add_issues_a_usable_token_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path().join("s"));
        let out = state::init(&dir, "relay.example:7443", &UserId::from("owner")).unwrap();
        let token = host_add(&dir, "box", None).unwrap();
        assert_eq!(token.relay, "relay.example:7443");
        assert_eq!(token.pin, out.pin);
        let decoded = EnrollmentToken::decode(&token.encode()).unwrap();
        assert_eq!(decoded, token);
        assert!(
            host_add(&dir, "box", None)
                .unwrap_err()
                .to_string()
                .contains("already exists")
        );
        assert!(
            host_add(&dir, "-D", None)
                .unwrap_err()
                .to_string()
                .contains("invalid host name")
        );
    }
}
