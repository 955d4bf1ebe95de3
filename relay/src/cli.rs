//! The `cm-relay` command line: its clap types, how `run` options become a configuration,
//! how audit rows print, and thin wrappers that open the state directory and call the
//! administration domain (`crate::admin`), which holds the rules.

use crate::admin;
use crate::config::RelayConfig;
use crate::state::StateDir;
pub use crate::time::{parse_duration, utc};
use clap::{Args, Parser, Subcommand};
use proto::admin::KillTarget;
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
    /// State directory (certificate, key, database) [default: state_dir in relay.toml, else
    /// $STATE_DIRECTORY, else $XDG_STATE_HOME/codemantle/relay, else ~/.local/state/codemantle/relay]
    #[arg(long, global = true, env = "CM_RELAY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Configuration file [default: /etc/codemantle/relay.toml if it exists]
    #[arg(long, global = true, env = "CM_RELAY_CONFIG")]
    pub config: Option<PathBuf>,
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
    /// Manage login credentials.
    #[command(subcommand)]
    Creds(CredsCommand),
    /// Kill switch: revoke credentials and close their live connections at once (audited).
    #[command(
        after_help = "Examples:\n  cm-relay kill --user mallory\n  cm-relay kill --host home-box\n  cm-relay kill --all"
    )]
    Kill(KillArgs),
    /// Read or verify the audit trail.
    #[command(
        after_help = "Examples:\n  cm-relay audit --user bob --limit 20\n  cm-relay audit verify"
    )]
    Audit(AuditArgs),
    /// Manage the fleet: several relays sharing one PostgreSQL.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Check the setup (state dir, certificate and pin, database, UDP and TCP ports, clock; on
    /// PostgreSQL the schema version, and with [fleet] this relay's registration and its peers).
    #[command(after_help = "Example:\n  cm-relay doctor --listen 0.0.0.0:7443")]
    Doctor {
        /// The address `run` will listen on [default: from relay.toml, else 0.0.0.0 on the port of the public address given at init]
        #[arg(long, env = "CM_RELAY_LISTEN")]
        listen: Option<SocketAddr>,
        /// The TCP address `run` will listen on, or "off" [default: from relay.toml, else the IP and port of --listen]
        #[arg(long, env = "CM_RELAY_LISTEN_TCP")]
        listen_tcp: Option<crate::config::ListenTcp>,
    },
    /// Print shell completions.
    #[command(
        after_help = "Example:\n  cm-relay completions bash > /etc/bash_completion.d/cm-relay"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    #[command(after_help = "Example:\n  cm-relay man | man -l -")]
    Man,
}

/// `cluster` subcommands (PostgreSQL only).
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Register this machine's relay in the fleet: creates its peer identity (peer.crt,
    /// peer.key in the state dir) if it has none, and records its id, peer address and pin in
    /// the shared database. Run it on the relay's own machine, with relay.toml's [store]
    /// pointing at the fleet's PostgreSQL and [fleet] id set to the same id.
    #[command(
        after_help = "Examples:\n  cm-relay cluster add --id relay-b --peer-addr relay-b.internal:7444\n\nJoining a second relay to a fleet (instead of `cm-relay init`):\n  1. copy relay.crt and relay.key from the first relay into this state dir\n  2. relay.toml: [store] backend = \"postgres\", url = …; [fleet] id = \"relay-b\"\n  3. cm-relay cluster add --id relay-b --peer-addr relay-b.internal:7444\n  4. cm-relay run"
    )]
    Add {
        /// This relay's id (letters, digits, '-', '_', '.'), as in [fleet] id.
        #[arg(long)]
        id: String,
        /// Where the other relays reach this one (HOST:PORT of [fleet] peer_listen).
        #[arg(long)]
        peer_addr: String,
    },
    /// Retire a relay: the others stop routing to it and refuse its peer connections at once.
    #[command(after_help = "Example:\n  cm-relay cluster remove --id relay-b")]
    Remove {
        /// The relay's id.
        #[arg(long)]
        id: String,
    },
    /// List the relays: peer address, alive (heartbeat within the liveness window), hosts
    /// held, retired.
    #[command(after_help = "Example:\n  cm-relay cluster status --json")]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `kill` targets (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct KillArgs {
    /// Revoke every credential of this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Revoke this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Revoke one credential.
    #[arg(long)]
    pub cred: Option<String>,
    /// Revoke every credential and every host.
    #[arg(long)]
    pub all: bool,
}

/// Credential subcommands.
#[derive(Debug, Subcommand)]
pub enum CredsCommand {
    /// List credentials (never their secrets).
    #[command(after_help = "Example:\n  cm-relay creds list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one credential; its live connection closes within a second.
    #[command(after_help = "Example:\n  cm-relay creds revoke c0123456789abcdef")]
    Revoke {
        /// Credential id.
        id: String,
    },
}

/// The address `init` writes into invites and tokens when `--public-addr` is not given.
pub const LOCAL_PUBLIC_ADDR: &str = "127.0.0.1:7443";

/// `init` options.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The address agents and operators will dial (goes into tokens and invites). Without it,
    /// 127.0.0.1:7443: the invite then only works on this machine.
    #[arg(long, env = "CM_RELAY_PUBLIC_ADDR")]
    pub public_addr: Option<String>,
    /// Name of the owner user.
    #[arg(long, default_value = "owner")]
    pub owner: String,
}

/// `run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// UDP address to listen on [default: from relay.toml, else 0.0.0.0 on the port of the public address given at init]
    #[arg(long, env = "CM_RELAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// TCP address for clients whose network drops UDP (QUIC in TLS over TCP), or "off" [default: from relay.toml, else the IP and port of --listen]
    #[arg(long, env = "CM_RELAY_LISTEN_TCP")]
    pub listen_tcp: Option<crate::config::ListenTcp>,
    /// A host is shown offline this long after its last heartbeat, e.g. 10s, 500ms [default: 10s]
    #[arg(long, env = "CM_RELAY_HEARTBEAT_TIMEOUT", value_parser = parse_duration)]
    pub heartbeat_timeout: Option<Duration>,
    /// QUIC idle timeout [default: 10s]
    #[arg(long, env = "CM_RELAY_IDLE_TIMEOUT", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Time a client has to complete the handshake [default: 5s]
    #[arg(long, env = "CM_RELAY_HANDSHAKE_TIMEOUT", value_parser = parse_duration)]
    pub handshake_timeout: Option<Duration>,
    /// Default lifetime of login credentials [default: 12h]
    #[arg(long, env = "CM_RELAY_CREDENTIAL_TTL", value_parser = parse_duration)]
    pub credential_ttl: Option<Duration>,
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
    #[command(after_help = "Example:\n  cm-relay host list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a host: its agent is disconnected within a second and cannot reconnect.
    #[command(after_help = "Example:\n  cm-relay host revoke home-box")]
    Revoke {
        /// Host name.
        name: String,
    },
    /// Give an enrolled host a new secret: the old one stops working at once (its agent
    /// disconnects); prints the token to re-enroll it with (`cm-agent enroll`).
    #[command(after_help = "Example:\n  cm-relay host rotate home-box")]
    Rotate {
        /// Host name.
        name: String,
        /// Relay address to put in the token [default: the one given at init].
        #[arg(long)]
        relay_addr: Option<String>,
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
    /// Add a user with a grant; prints their one-time invite.
    #[command(after_help = "Example:\n  cm-relay user add bob --role operator --host home-box")]
    Add {
        /// User name.
        name: String,
        /// Role: viewer, operator, admin or owner.
        #[arg(long, default_value = "operator")]
        role: String,
        /// Host the grant is for (`*`: every host).
        #[arg(long, default_value = "*")]
        host: String,
    },
    /// Enroll a TOTP second factor: prints the otpauth:// URI for an authenticator app. From
    /// then on, password logins need the current code (`cm-tui login … --totp CODE`).
    #[command(after_help = "Example:\n  cm-relay user totp alice | qrencode -t ansiutf8")]
    Totp {
        /// User name.
        name: String,
    },
    /// List users and their grants.
    #[command(after_help = "Example:\n  cm-relay user list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user (not the last owner); their connections close.
    #[command(after_help = "Example:\n  cm-relay user remove bob")]
    Remove {
        /// User name.
        name: String,
    },
    /// Grant a role on a host (replaces an earlier grant on that host).
    #[command(after_help = "Example:\n  cm-relay user grant bob viewer --host home-box")]
    Grant {
        /// User name.
        name: String,
        /// Role: viewer, operator, admin or owner.
        role: String,
        /// Host (`*`: every host).
        #[arg(long, default_value = "*")]
        host: String,
    },
    /// Remove a user's grant on a host.
    #[command(after_help = "Example:\n  cm-relay user revoke bob --host home-box")]
    Revoke {
        /// User name.
        name: String,
        /// Host (`*`: the every-host grant).
        #[arg(long, default_value = "*")]
        host: String,
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
    /// Only rows whose actor is this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only rows about this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Keep printing new rows as they are written (Ctrl-C stops).
    #[arg(long)]
    pub follow: bool,
}

impl AuditArgs {
    /// Whether a row passes the `--user`/`--host` filters.
    pub fn matches(&self, row: &crate::store::AuditRow) -> bool {
        let actor_user = row.event.actor.split('@').next().unwrap_or("");
        self.user.as_deref().is_none_or(|u| actor_user == u)
            && self
                .host
                .as_deref()
                .is_none_or(|h| row.event.host.as_deref() == Some(h))
    }

    /// One printed line for a row (JSON with `--json`). Rows quote unauthenticated peers (a
    /// user name, a credential id, a hello's text): every field is sanitized, so no escape
    /// sequence, control character or bidi override reaches the terminal, and JSON has its C1
    /// controls escaped.
    pub fn line(&self, row: &crate::store::AuditRow) -> String {
        if self.json {
            return proto::text::json_line(row).unwrap_or_default();
        }
        let clean = proto::text::sanitize_line;
        let e = &row.event;
        format!(
            "{:>6} {} {:<24} {:<14} {:<6} {}{}{}",
            row.id,
            utc(row.ts_ms),
            clean(&e.actor),
            clean(&e.op),
            clean(&e.decision),
            e.host
                .as_deref()
                .map(|h| format!("host={} ", clean(h)))
                .unwrap_or_default(),
            e.target
                .as_deref()
                .map(|t| format!("target={} ", clean(t)))
                .unwrap_or_default(),
            clean(e.reason.as_deref().unwrap_or(""))
        )
    }
}

/// Builds a relay configuration from `run` options.
///
/// Precedence per setting: flag or `CM_RELAY_*` variable, then `relay.toml`, then the default.
pub fn run_config(
    state_dir: PathBuf,
    args: &RunArgs,
    file: &crate::config_file::RelayFile,
) -> RelayConfig {
    use crate::config_file::RelayFile;
    let mut c = RelayConfig::new(state_dir);
    if let Some(l) = args.listen.or_else(|| file.listen()) {
        c.listen = l;
    }
    c.listen_tcp = args
        .listen_tcp
        .or_else(|| file.listen_tcp())
        .unwrap_or_default();
    if let Some(n) = file.tcp_connections_per_address {
        c.tcp_limits.open_per_address = n;
    }
    let pick = |flag: Option<Duration>, key: &Option<String>, default: Duration| {
        flag.or_else(|| RelayFile::duration(key)).unwrap_or(default)
    };
    c.heartbeat_timeout = pick(
        args.heartbeat_timeout,
        &file.heartbeat_timeout,
        c.heartbeat_timeout,
    );
    c.idle_timeout = pick(args.idle_timeout, &file.idle_timeout, c.idle_timeout);
    c.handshake_timeout = pick(
        args.handshake_timeout,
        &file.handshake_timeout,
        c.handshake_timeout,
    );
    c.max_credential_ttl = pick(None, &file.max_credential_ttl, c.max_credential_ttl);
    c.credential_ttl =
        pick(args.credential_ttl, &file.credential_ttl, c.credential_ttl).min(c.max_credential_ttl);
    c.drain_timeout = pick(None, &file.drain_timeout, c.drain_timeout);
    c.audit_prompt_text = file.audit_prompt_text.unwrap_or(c.audit_prompt_text);
    c.max_password_checks = file.max_password_checks.unwrap_or(c.max_password_checks);
    c.queue_expiry = pick(None, &file.queue_expiry, c.queue_expiry);
    // Checked when the file was loaded.
    c.store = file.store_config().unwrap_or_default();
    c.fleet = file.fleet_config().ok().flatten();
    c.notify = file.notify_config().unwrap_or_default();
    c
}

/// Errors of the one-shot subcommands: the administration domain's.
pub use crate::admin::AdminError as CliError;
pub use crate::admin::{AdminChange, CLI_ACTOR, counted};

/// `host add`: enrolls `name` and returns its token.
///
/// # Errors
/// Invalid or taken name, uninitialised state.
pub fn host_add(
    dir: &StateDir,
    name: &str,
    relay_addr: Option<String>,
) -> Result<EnrollmentToken, CliError> {
    let pin = dir.pin()?;
    let store = dir.open_store()?;
    admin::host_enroll(&*store, &pin, CLI_ACTOR, name, relay_addr, false)
}

/// `host rotate`: a new secret for an enrolled host; returns its new token.
///
/// # Errors
/// Unknown host, uninitialised state.
pub fn host_rotate(
    dir: &StateDir,
    name: &str,
    relay_addr: Option<String>,
) -> Result<EnrollmentToken, CliError> {
    let pin = dir.pin()?;
    let store = dir.open_store()?;
    admin::rotate_host(&*store, &pin, CLI_ACTOR, name, relay_addr)
}

/// `user passwd`: sets a password.
///
/// # Errors
/// Unknown user, short password.
pub fn user_passwd(dir: &StateDir, name: &str, password: &str) -> Result<(), CliError> {
    let store = dir.open_store()?;
    admin::set_password(&*store, CLI_ACTOR, name, password)
}

/// `kill`: revokes and reports what was revoked. The running relay closes the affected
/// connections within a second (it watches the revocation epoch).
///
/// # Errors
/// Unknown targets, store failures.
pub fn kill(dir: &StateDir, args: &KillArgs) -> Result<String, CliError> {
    let store = dir.open_store()?;
    let target = if let Some(user) = &args.user {
        KillTarget::User { name: user.clone() }
    } else if let Some(host) = &args.host {
        KillTarget::Host { name: host.clone() }
    } else if let Some(cred) = &args.cred {
        KillTarget::Cred { id: cred.clone() }
    } else {
        KillTarget::All
    };
    admin::kill_target(&*store, CLI_ACTOR, &target)
}

/// `user add`: creates the user with one grant and returns their invite.
///
/// # Errors
/// Invalid name or role, taken name, store failures.
pub fn user_add(
    dir: &StateDir,
    name: &str,
    role: &str,
    host: &str,
) -> Result<proto::token::Invite, CliError> {
    let role = admin::parse_role(role)?;
    let store = dir.open_store()?;
    let pin = dir.pin()?;
    admin::add_user_with_invite(&*store, &pin, CLI_ACTOR, name, role, host)
}

/// `user grant` / `user revoke` / `user remove` / `host revoke` / `creds revoke`, audited.
///
/// # Errors
/// Unknown targets, last-owner protection, store failures.
pub fn admin_change(dir: &StateDir, change: AdminChange<'_>) -> Result<String, CliError> {
    let store = dir.open_store()?;
    admin::apply_change(&*store, CLI_ACTOR, change)
}

/// `user totp`: enrolls a fresh TOTP secret and returns the otpauth:// URI.
///
/// # Errors
/// Unknown user, randomness or store failures.
pub fn user_totp(dir: &StateDir, name: &str) -> Result<String, CliError> {
    let store = dir.open_store()?;
    admin::enroll_totp(&*store, CLI_ACTOR, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state;
    use proto::ids::{HostId, UserId};

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
        let rotated = host_rotate(&dir, "box", None).unwrap();
        assert_ne!(rotated.secret.to_hex(), token.secret.to_hex());
        assert!(!dir.open_store().unwrap().list_hosts().unwrap()[0].revoked);
        assert!(
            host_rotate(&dir, "nope", None)
                .unwrap_err()
                .to_string()
                .contains("no host named")
        );
        // A revoked host stays revoked: rotating refuses, enrolling again is explicit.
        dir.open_store()
            .unwrap()
            .kill_host(&HostId::from("box"))
            .unwrap();
        let refused = host_rotate(&dir, "box", None).unwrap_err().to_string();
        assert!(
            refused.contains("is revoked") && refused.contains("host add box"),
            "{refused}"
        );
        assert!(dir.open_store().unwrap().list_hosts().unwrap()[0].revoked);
        host_add(&dir, "box", None).unwrap();
        assert!(!dir.open_store().unwrap().list_hosts().unwrap()[0].revoked);
    }

    #[test]
    fn utc_prints_calendar_time() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_795_660_882_220), "2026-11-26 02:41:22Z");
    }
}

#[cfg(test)]
mod help_example_tests {
    use super::Cli;

    #[test]
    fn every_subcommand_shows_an_example_in_its_help() {
        let missing =
            crate::help_examples::leaves_without_example(&<Cli as clap::CommandFactory>::command());
        assert!(missing.is_empty(), "no Example in --help: {missing:#?}");
    }
}
