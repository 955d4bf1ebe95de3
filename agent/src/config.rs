//! The agent's configuration file (TOML), parsed into validated types. Unknown keys are an error
//! that names the key and the file.

use cm_client::secrets::StoreChoice;
use cm_client::time::parse_duration;
use proto::ids::HostId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod forward;
mod git;
mod opencode;
mod policy;
mod relays;
mod trust;
mod workspaces;

pub use cm_client::transport::TransportKeys;
pub use forward::ForwardSection;
pub use git::GitSection;
pub use opencode::{OpencodeConfig, OpencodeSection};
pub use policy::PolicySection;
pub use relays::{DEFAULT_RELAY_CONNECTIONS, RelaySetting, Relays, relays_of};
pub use trust::{
    DEFAULT_REVOCATION_MAX_AGE_MS, DEFAULT_ROOT_OVERLAP_MS, TrustLimits, TrustSection,
};
pub use workspaces::{PermissionEntry, ToolPermission, ToolPermissions, Workspace, WorkspaceEntry};

/// Default heartbeat interval: three heartbeats fit in the relay's 10 s offline window.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// Without a heartbeat acknowledgement for this long, the relay is presumed gone and the agent
/// reconnects.
pub const DEFAULT_RELAY_TIMEOUT: Duration = Duration::from_secs(10);
/// A workspace's OpenCode is stopped after this long without any operation or event on it: an
/// idle `opencode serve` holds about 0.4-0.7 GB of memory.
pub const DEFAULT_IDLE_STOP: Duration = Duration::from_secs(30 * 60);
/// How long a launch may take to print its listening line and answer health. Measured start-up is
/// about 1.6 s on a 2-core machine; 20 s leaves room for a loaded host.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// A launch of OpenCode lapses this long after its last renewal by an operator-or-above
/// credential (design §5: JIT binding).
pub const DEFAULT_LAUNCH_LEASE: Duration = Duration::from_secs(30 * 60);

/// The file as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Relay address `host:port`, or several: a comma-separated string or an array of strings
    /// (`cm-agent enroll` writes the token's one address as a string).
    pub relay: RelaySetting,
    /// Relay key pin.
    pub pin: String,
    /// This host's id at the relay.
    pub host: String,
    /// How many links to distinct relay addresses to keep (default 2; at most one per address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_connections: Option<usize>,
    /// Heartbeat interval, e.g. `3s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval: Option<String>,
    /// Reconnect when the relay has not acknowledged a heartbeat for this long, e.g. `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_timeout: Option<String>,
    /// Where the host secret lives: `auto`, `secret-service` or `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_store: Option<String>,
    /// `auto` (race QUIC and TCP), `quic` or `tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The relay's TCP address(es), `host:port[,…]`; default: each QUIC address's host and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_tcp: Option<String>,
    /// An HTTP CONNECT proxy for the TCP path, `http://[user:pass@]host:port`, or `none`;
    /// default: `HTTPS_PROXY` unless `NO_PROXY` matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// QUIC's head start before TCP starts beside it, in ms (default 250).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_delay_ms: Option<u64>,
    /// While on TCP, how often QUIC is tried again, in seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic_probe_secs: Option<u64>,
    /// Workspaces operators may use.
    #[serde(default, rename = "workspace", skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<WorkspaceEntry>,
    /// How OpenCode is found and configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opencode: Option<OpencodeSection>,
    /// The host owner's own limits (defence in depth behind the relay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySection>,
    /// The kernel sandbox around OpenCode (see `sandbox/config.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<crate::sandbox::SandboxSection>,
    /// Clone URL policy and limits for `git_clone` and `git_config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSection>,
    /// Which host ports operators may forward (`port_forward`), and the limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<ForwardSection>,
    /// Zero-trust hosts: how fresh the owners' revocation lists must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustSection>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The relays and how many links to keep.
    pub relays: Relays,
    /// Relay key pin.
    pub pin: String,
    /// This host's id.
    pub host: HostId,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Relay silence before reconnecting.
    pub relay_timeout: Duration,
    /// Secret store choice.
    pub secret_store: StoreChoice,
    /// Which transports reach the relay (the memory file is set from the state folder by
    /// [`AgentConfig::transport_in`]).
    pub transport: cm_client::transport::TransportOptions,
    /// Workspaces.
    pub workspaces: Vec<Workspace>,
    /// OpenCode settings.
    pub opencode: OpencodeConfig,
    /// The host owner's limits.
    pub policy: crate::policy::PolicyConfig,
    /// Launch lease length.
    pub launch_lease: Duration,
    /// The `[git]` settings.
    pub git: crate::git::policy::GitSettings,
    /// The workspaces whose immediate subfolders may become workspaces (`subworkspaces = true`).
    pub subworkspace_roots: Vec<String>,
    /// The `[forward]` rules.
    pub forward: crate::forward::ForwardPolicy,
    /// `[trust] revocation_max_age` in milliseconds.
    pub revocation_max_age_ms: u64,
    /// `[trust] root_overlap` in milliseconds.
    pub root_overlap_ms: u64,
}

/// Configuration problems, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}; run `cm-agent enroll <token>` first, or pass --config")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid (syntax, unknown key, wrong type).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (the TOML parser names the key and line).
        message: String,
    },
    /// The file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn invalid(path: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

impl ConfigFile {
    /// Reads the file.
    ///
    /// # Errors
    /// Unreadable or invalid file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| invalid(path, e.to_string()))
    }

    /// The configuration `cm-agent run` uses: the file, the process environment over it
    /// ([`Self::apply_env`]), validated.
    ///
    /// # Errors
    /// Unreadable or invalid file, or an invalid value from the environment.
    pub fn load_effective(path: &Path) -> Result<AgentConfig, ConfigError> {
        let mut file = Self::load(path)?;
        file.apply_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        file.validate(path)
    }

    /// Applies `CM_AGENT_RELAY`, `CM_AGENT_PIN`, `CM_AGENT_HOST`, `CM_AGENT_HEARTBEAT_INTERVAL`,
    /// `CM_AGENT_RELAY_TIMEOUT` and `CM_SECRET_STORE` over the file's values (environment wins;
    /// flags win over both), and the transport's `CM_TRANSPORT`, `CM_RELAY_TCP`, `CM_PROXY`.
    /// `lookup` reads a variable (`std::env::var` in the binary).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        if let Some(v) = lookup("CM_AGENT_RELAY") {
            self.relay = RelaySetting::One(v);
        }
        if let Some(v) = lookup("CM_AGENT_PIN") {
            self.pin = v;
        }
        if let Some(v) = lookup("CM_AGENT_HOST") {
            self.host = v;
        }
        if let Some(v) = lookup("CM_AGENT_HEARTBEAT_INTERVAL") {
            self.heartbeat_interval = Some(v);
        }
        if let Some(v) = lookup("CM_AGENT_RELAY_TIMEOUT") {
            self.relay_timeout = Some(v);
        }
        if let Some(v) = lookup("CM_SECRET_STORE") {
            self.secret_store = Some(v);
        }
        let mut keys = self.transport_keys();
        keys.apply_env(&lookup);
        self.transport = keys.transport;
        self.relay_tcp = keys.relay_tcp;
        self.proxy = keys.proxy;
    }

    fn transport_keys(&self) -> TransportKeys {
        TransportKeys {
            transport: self.transport.clone(),
            relay_tcp: self.relay_tcp.clone(),
            proxy: self.proxy.clone(),
            tcp_delay_ms: self.tcp_delay_ms,
            quic_probe_secs: self.quic_probe_secs,
        }
    }

    /// Writes the file (creating its folder).
    ///
    /// # Errors
    /// I/O failures.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let write_err = |source| ConfigError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let body = toml::to_string_pretty(self).map_err(|e| invalid(path, e.to_string()))?;
        let text = format!(
            "# cm-agent configuration; see docs/deployment.md for every option.\n\
             # Add workspaces operators may use:\n\
             # [[workspace]]\n# name = \"myproject\"\n# path = \"/home/me/src/myproject\"\n\n{body}"
        );
        std::fs::write(path, text).map_err(write_err)
    }

    /// Validates into an [`AgentConfig`].
    ///
    /// # Errors
    /// Invalid values, named with the file.
    pub fn validate(self, path: &Path) -> Result<AgentConfig, ConfigError> {
        let relays =
            relays::validate(&self.relay, self.relay_connections).map_err(|m| invalid(path, m))?;
        let transport = self
            .transport_keys()
            .validate()
            .map_err(|m| invalid(path, m))?;
        if !proto::ids::is_valid_name(&self.host) {
            return Err(invalid(
                path,
                format!("host {:?} is not a valid host name", self.host),
            ));
        }
        if !self.pin.starts_with(proto::token::PIN_PREFIX) {
            return Err(invalid(
                path,
                format!(
                    "pin {:?} must start with {}",
                    self.pin,
                    proto::token::PIN_PREFIX
                ),
            ));
        }
        let duration = |key: &str, v: Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(s) => parse_duration(&s).map_err(|e| invalid(path, format!("{key}: {e}"))),
        };
        let heartbeat_interval = duration(
            "heartbeat_interval",
            self.heartbeat_interval,
            DEFAULT_HEARTBEAT_INTERVAL,
        )?;
        let relay_timeout = duration("relay_timeout", self.relay_timeout, DEFAULT_RELAY_TIMEOUT)?;
        if heartbeat_interval.is_zero() {
            return Err(invalid(path, "heartbeat_interval must be above zero"));
        }
        let secret_store = match self.secret_store.as_deref() {
            None => StoreChoice::Auto,
            Some(s) => StoreChoice::parse(s).ok_or_else(|| {
                invalid(
                    path,
                    format!("secret_store {s:?}: use auto, secret-service or file"),
                )
            })?,
        };
        let home = directories::BaseDirs::new()
            .map(|d| d.home_dir().to_owned())
            .unwrap_or_default();
        let sandbox = crate::sandbox::SandboxConfig::from_section(self.sandbox.as_ref(), &home)
            .map_err(|m| invalid(path, m))?;
        let mut workspaces = Vec::new();
        let mut subworkspace_roots = Vec::new();
        for w in self.workspaces {
            if !proto::ids::is_valid_name(&w.name) {
                return Err(invalid(
                    path,
                    format!("workspace name {:?} is not valid", w.name),
                ));
            }
            if workspaces.iter().any(|x: &Workspace| x.name == w.name) {
                return Err(invalid(
                    path,
                    format!("workspace {:?} is listed twice", w.name),
                ));
            }
            if !w.path.is_absolute() {
                return Err(invalid(
                    path,
                    format!(
                        "workspace {:?}: path {} must be absolute",
                        w.name,
                        w.path.display()
                    ),
                ));
            }
            // Canonical at load; a root that is missing now stays as written and is reported by
            // operations on it (and by `cm-agent doctor`), without stopping the other workspaces.
            let root = std::fs::canonicalize(&w.path).unwrap_or_else(|e| {
                tracing::warn!(workspace = %w.name, path = %w.path.display(), error = %e, "workspace root is not accessible");
                w.path.clone()
            });
            let permissions = match &w.permission {
                None => ToolPermissions::default(),
                Some(p) => p.validate(path, &w.name)?,
            };
            let sandbox = match &w.sandbox {
                None => sandbox.clone(),
                Some(o) => sandbox
                    .with_override(o, &home, &w.name)
                    .map_err(|m| invalid(path, m))?,
            };
            if w.subworkspaces == Some(true) {
                subworkspace_roots.push(w.name.clone());
            }
            workspaces.push(Workspace {
                name: w.name,
                root,
                permissions,
                sandbox,
            });
        }
        let opencode = match self.opencode {
            None => OpencodeConfig::default(),
            Some(section) => section.validate(path)?,
        };
        let (policy, launch_lease) = self.policy.unwrap_or_default().validate(path)?;
        let git = self.git.unwrap_or_default().validate(path)?;
        let forward = self.forward.unwrap_or_default().validate(path)?;
        let TrustLimits {
            revocation_max_age_ms,
            root_overlap_ms,
        } = self.trust.unwrap_or_default().validate(path)?;
        Ok(AgentConfig {
            relays,
            pin: self.pin,
            host: HostId(self.host),
            heartbeat_interval,
            relay_timeout,
            secret_store,
            transport,
            workspaces,
            opencode,
            policy,
            launch_lease,
            git,
            subworkspace_roots,
            forward,
            revocation_max_age_ms,
            root_overlap_ms,
        })
    }
}

impl AgentConfig {
    /// The transport settings with the per-network memory kept in `state_dir`.
    pub fn transport_in(&self, state_dir: &Path) -> cm_client::transport::TransportOptions {
        cm_client::transport::TransportOptions {
            memory_file: Some(state_dir.join(cm_client::transport::MEMORY_FILE_NAME)),
            ..self.transport.clone()
        }
    }
}

/// The default configuration file: `$XDG_CONFIG_HOME/codemantle/agent.toml`.
pub fn default_config_path() -> PathBuf {
    directories::BaseDirs::new()
        .map(|b| b.config_dir().join("codemantle/agent.toml"))
        .unwrap_or_else(|| PathBuf::from("agent.toml"))
}

/// The default state directory: `$XDG_STATE_HOME/codemantle/agent`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("codemantle/agent");
    }
    directories::BaseDirs::new()
        .map(|b| b.home_dir().join(".local/state/codemantle/agent"))
        .unwrap_or_else(|| PathBuf::from("codemantle-agent-state"))
}

#[cfg(test)]
mod tests;
