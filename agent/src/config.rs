//! The agent's configuration file (TOML), parsed into validated types. Unknown keys are an error
//! that names the key and the file.

use cm_client::secrets::StoreChoice;
use cm_client::time::parse_duration;
use proto::ids::HostId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Relay address `host:port`.
    pub relay: String,
    /// Relay key pin.
    pub pin: String,
    /// This host's id at the relay.
    pub host: String,
    /// Heartbeat interval, e.g. `3s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval: Option<String>,
    /// Reconnect when the relay has not acknowledged a heartbeat for this long, e.g. `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_timeout: Option<String>,
    /// Where the host secret lives: `auto`, `secret-service` or `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_store: Option<String>,
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
}

/// The `[git]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitSection {
    /// URL patterns clones may use (`*` at the end matches the rest, elsewhere one host or
    /// path segment), e.g. `["https://github.com/*", "ssh://git@host/*"]`. Default: any
    /// `https://` or `ssh://` URL (and scp-like `user@host:path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_from: Option<Vec<String>>,
    /// Fetch submodules when cloning (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submodules: Option<bool>,
    /// Stop a clone after this long, e.g. `10m` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_timeout: Option<String>,
    /// Stop a clone whose folder grows past this, e.g. `2GiB` (the default), `500MiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_max_size: Option<String>,
    /// An SSH private key file (absolute path) used for ssh remotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<PathBuf>,
}

impl GitSection {
    fn validate(self, path: &Path) -> Result<crate::git::policy::GitSettings, ConfigError> {
        use crate::git::policy::{GitSettings, valid_pattern};
        let mut s = GitSettings::default();
        if let Some(patterns) = self.clone_from {
            if let Some(bad) = patterns.iter().find(|p| !valid_pattern(p)) {
                return Err(invalid(
                    path,
                    format!(
                        "[git] clone_from: {bad:?} is not a network URL pattern; use https://, \
                         http://, ssh://, git:// or user@host: patterns (never file:// or a \
                         local path)"
                    ),
                ));
            }
            s.clone_from = patterns;
        }
        s.submodules = self.submodules.unwrap_or(false);
        if let Some(t) = self.clone_timeout.as_deref() {
            s.clone_timeout = parse_duration(t)
                .map_err(|e| invalid(path, format!("[git] clone_timeout: {e}")))?;
            if s.clone_timeout.is_zero() {
                return Err(invalid(path, "[git] clone_timeout must be above zero"));
            }
        }
        if let Some(m) = self.clone_max_size.as_deref() {
            s.clone_max_bytes = parse_size(m).ok_or_else(|| {
                invalid(
                    path,
                    format!("[git] clone_max_size: {m:?}: use a size such as 500MiB or 2GiB"),
                )
            })?;
        }
        if let Some(k) = self.ssh_key {
            if !k.is_absolute() {
                return Err(invalid(
                    path,
                    format!("[git] ssh_key: {} must be an absolute path", k.display()),
                ));
            }
            s.ssh_key = Some(k);
        }
        Ok(s)
    }
}

/// `1024`, `64KiB`, `500MiB`, `2GiB` (also `KB`/`MB`/`GB` as powers of 1000) → bytes; zero
/// is refused.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult).filter(|v| *v > 0)
}

/// The `[policy]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Operation wire names this host refuses, e.g. `["git_push", "fs_rmdir"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_ops: Vec<String>,
    /// Per operation, the least role it needs on this host, e.g. `{ prompt = "admin" }`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub min_role: std::collections::BTreeMap<String, String>,
    /// Must stay `false`: CodeMantle has no shell operation and never proxies OpenCode's
    /// shell or PTY endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_shell: Option<bool>,
    /// How long a launch of OpenCode stays bound to the credential that started it without
    /// being renewed, e.g. `30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_lease: Option<String>,
}

/// The `[opencode]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpencodeSection {
    /// The `opencode` binary (absolute path). Else `CM_OPENCODE_BIN`, the project's
    /// `tools/opencode`, then `PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// Model as `provider/model`, e.g. `anthropic/claude-sonnet-4-5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Model for titles and summaries; defaults to `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub small_model: Option<String>,
    /// Providers OpenCode may use; defaults to the keys of `provider` when that is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_providers: Option<Vec<String>>,
    /// Passed verbatim as `provider` in the generated `opencode.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<toml::Table>,
    /// Stop OpenCode after this long without use, e.g. `30m`; `0` never stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_stop: Option<String>,
    /// Give up on a launch that is not ready after this long, e.g. `20s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout: Option<String>,
    /// Models operators may pick per prompt, as `provider/model` patterns where `*` matches
    /// anything, e.g. `["anthropic/*", "mock/mock-model"]`; default: all OpenCode offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
}

/// The validated `[opencode]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OpencodeConfig {
    /// Configured binary, if any.
    pub binary: Option<PathBuf>,
    /// `provider/model`.
    pub model: Option<String>,
    /// `provider/model` for titles.
    pub small_model: Option<String>,
    /// Providers OpenCode may use (`None`: all).
    pub enabled_providers: Option<Vec<String>>,
    /// The `provider` object of `opencode.json`.
    pub provider: Option<serde_json::Map<String, serde_json::Value>>,
    /// Idle time before OpenCode is stopped (`None`: never).
    pub idle_stop: Option<Duration>,
    /// Start-up bound.
    pub ready_timeout: Duration,
    /// Patterns of the models operators may pick per prompt (empty: all OpenCode offers).
    pub allowed_models: Vec<String>,
}

impl Default for OpencodeConfig {
    fn default() -> Self {
        Self {
            binary: None,
            model: None,
            small_model: None,
            enabled_providers: None,
            provider: None,
            idle_stop: Some(DEFAULT_IDLE_STOP),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            allowed_models: Vec::new(),
        }
    }
}

/// One `[[workspace]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceEntry {
    /// Name operators use.
    pub name: String,
    /// Root folder on this host.
    pub path: PathBuf,
    /// Relaxes OpenCode's tool permissions in this workspace, e.g. `{ edit = "allow" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<PermissionEntry>,
    /// This workspace's sandbox settings on top of `[sandbox]`, e.g. `{ allow_bind_ports = [8080] }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<crate::sandbox::SandboxSection>,
}

/// A workspace's `permission` table: `edit`, `bash`, `webfetch`, each `"ask"` (the default:
/// every use waits for an operator's answer), `"allow"` or `"deny"`. Paths outside the
/// workspace (`external_directory`) are always denied and cannot be relaxed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionEntry {
    /// File edits and writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<String>,
    /// Shell commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bash: Option<String>,
    /// Web fetches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webfetch: Option<String>,
}

/// What OpenCode does when a tool is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolPermission {
    /// Ask an operator each time.
    #[default]
    Ask,
    /// Run without asking.
    Allow,
    /// Refuse.
    Deny,
}

impl ToolPermission {
    /// Parses `ask`, `allow` or `deny`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ask" => Some(Self::Ask),
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }

    /// The value in OpenCode's config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ask => "ask",
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// OpenCode's tool permissions in one workspace (all `ask` unless relaxed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ToolPermissions {
    /// File edits and writes.
    pub edit: ToolPermission,
    /// Shell commands.
    pub bash: ToolPermission,
    /// Web fetches.
    pub webfetch: ToolPermission,
}

impl PermissionEntry {
    fn validate(&self, path: &Path, workspace: &str) -> Result<ToolPermissions, ConfigError> {
        let one = |key: &str, v: &Option<String>| {
            match v.as_deref() {
            None => Ok(ToolPermission::Ask),
            Some(s) => ToolPermission::parse(s).ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "workspace {workspace:?}: permission.{key} = {s:?}: use \"ask\", \"allow\" or \"deny\""
                    ),
                )
            }),
        }
        };
        Ok(ToolPermissions {
            edit: one("edit", &self.edit)?,
            bash: one("bash", &self.bash)?,
            webfetch: one("webfetch", &self.webfetch)?,
        })
    }
}

/// A validated workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// Name operators use.
    pub name: String,
    /// Canonical root (symlinks resolved at load).
    pub root: PathBuf,
    /// OpenCode's tool permissions here.
    pub permissions: ToolPermissions,
    /// The kernel sandbox of this workspace's OpenCode (`[sandbox]` plus the override).
    pub sandbox: crate::sandbox::SandboxConfig,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Relay address.
    pub relay: String,
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
    /// flags win over both). `lookup` reads a variable (`std::env::var` in the binary).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        if let Some(v) = lookup("CM_AGENT_RELAY") {
            self.relay = v;
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
        Ok(AgentConfig {
            relay: self.relay,
            pin: self.pin,
            host: HostId(self.host),
            heartbeat_interval,
            relay_timeout,
            secret_store,
            workspaces,
            opencode,
            policy,
            launch_lease,
            git,
        })
    }
}

impl PolicySection {
    fn validate(self, path: &Path) -> Result<(crate::policy::PolicyConfig, Duration), ConfigError> {
        use crate::policy::parse_ops;
        let disabled_ops = parse_ops(self.disabled_ops.iter().map(String::as_str))
            .map_err(|unknown| {
                invalid(
                    path,
                    format!(
                        "[policy] disabled_ops: unknown operation(s) {}; see docs/protocol.md for the names",
                        unknown.join(", ")
                    ),
                )
            })?
            .into_iter()
            .collect();
        let ops = parse_ops(self.min_role.keys().map(String::as_str)).map_err(|unknown| {
            invalid(
                path,
                format!(
                    "[policy] min_role: unknown operation(s) {}; see docs/protocol.md for the names",
                    unknown.join(", ")
                ),
            )
        })?;
        let mut min_role = std::collections::HashMap::new();
        for (op, role) in ops.into_iter().zip(self.min_role.values()) {
            let role = proto::rbac::Role::parse(role).ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "[policy] min_role.{}: unknown role {role:?}; use viewer, operator, admin or owner",
                        op.as_str()
                    ),
                )
            })?;
            min_role.insert(op, role);
        }
        if self.allow_shell == Some(true) {
            return Err(invalid(
                path,
                "[policy] allow_shell = true is not supported: CodeMantle has no shell operation \
                 and never proxies OpenCode's shell or terminal endpoints; remove the key",
            ));
        }
        let launch_lease = match self.launch_lease.as_deref() {
            None => DEFAULT_LAUNCH_LEASE,
            Some(s) => parse_duration(s)
                .map_err(|e| invalid(path, format!("[policy] launch_lease: {e}")))?,
        };
        if launch_lease.is_zero() {
            return Err(invalid(path, "[policy] launch_lease must be above zero"));
        }
        Ok((
            crate::policy::PolicyConfig {
                disabled_ops,
                min_role,
            },
            launch_lease,
        ))
    }
}

impl OpencodeSection {
    fn validate(self, path: &Path) -> Result<OpencodeConfig, ConfigError> {
        let key = |k: &str| format!("[opencode] {k}");
        if let Some(b) = &self.binary
            && !b.is_absolute()
        {
            return Err(invalid(
                path,
                format!(
                    "{}: {} must be an absolute path",
                    key("binary"),
                    b.display()
                ),
            ));
        }
        for (k, v) in [("model", &self.model), ("small_model", &self.small_model)] {
            if let Some(m) = v
                && !is_model_ref(m)
            {
                return Err(invalid(
                    path,
                    format!("{}: {m:?} must look like provider/model", key(k)),
                ));
            }
        }
        let idle_stop = match self.idle_stop.as_deref() {
            None => Some(DEFAULT_IDLE_STOP),
            Some(s) => {
                let d = parse_duration(s)
                    .map_err(|e| invalid(path, format!("{}: {e}", key("idle_stop"))))?;
                (!d.is_zero()).then_some(d)
            }
        };
        let ready_timeout = match self.ready_timeout.as_deref() {
            None => DEFAULT_READY_TIMEOUT,
            Some(s) => parse_duration(s)
                .map_err(|e| invalid(path, format!("{}: {e}", key("ready_timeout"))))?,
        };
        if ready_timeout.is_zero() {
            return Err(invalid(
                path,
                format!("{} must be above zero", key("ready_timeout")),
            ));
        }
        let provider = match self.provider {
            None => None,
            Some(table) => match serde_json::to_value(&table) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                Ok(_) | Err(_) => {
                    return Err(invalid(
                        path,
                        format!("{}: cannot be expressed as JSON", key("provider")),
                    ));
                }
            },
        };
        let enabled_providers = self
            .enabled_providers
            .or_else(|| provider.as_ref().map(|p| p.keys().cloned().collect()));
        let small_model = self.small_model.or_else(|| self.model.clone());
        let allowed_models = self.allowed_models.unwrap_or_default();
        if let Some(bad) = allowed_models.iter().find(|p| !is_model_ref(p)) {
            return Err(invalid(
                path,
                format!(
                    "{}: {bad:?} must look like provider/model (`*` matches anything, e.g. \"mock/*\")",
                    key("allowed_models")
                ),
            ));
        }
        Ok(OpencodeConfig {
            binary: self.binary,
            model: self.model,
            small_model,
            enabled_providers,
            provider,
            idle_stop,
            ready_timeout,
            allowed_models,
        })
    }
}

/// `provider/model`, both parts non-empty.
fn is_model_ref(s: &str) -> bool {
    s.split_once('/')
        .is_some_and(|(p, m)| !p.is_empty() && !m.is_empty())
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
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("agent.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn valid_file_with_workspaces() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        let p = write(
            tmp.path(),
            &format!(
                "relay = \"127.0.0.1:7443\"\npin = \"blake3:00\"\nhost = \"box\"\nheartbeat_interval = \"500ms\"\n\n[[workspace]]\nname = \"demo\"\npath = \"{}\"\n",
                ws.display()
            ),
        );
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        assert_eq!(c.host, HostId::from("box"));
        assert_eq!(c.heartbeat_interval, Duration::from_millis(500));
        assert_eq!(c.relay_timeout, DEFAULT_RELAY_TIMEOUT);
        assert_eq!(c.workspaces[0].root, std::fs::canonicalize(&ws).unwrap());
    }

    #[test]
    fn unknown_key_names_the_key_and_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = write(
            tmp.path(),
            "relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\nallow_shel = true\n",
        );
        let err = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(err.contains("allow_shel"), "{err}");
        assert!(err.contains(&p.display().to_string()), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let p = write(
            tmp.path(),
            "relay = \"a:1\"\npin = \"sha1:00\"\nhost = \"box\"\n",
        );
        let err = ConfigFile::load(&p)
            .unwrap()
            .validate(&p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pin"), "{err}");
        let p = write(
            tmp.path(),
            "relay = \"a:1\"\npin = \"blake3:0\"\nhost = \"box\"\n[[workspace]]\nname = \"w\"\npath = \"rel\"\n",
        );
        let err = ConfigFile::load(&p)
            .unwrap()
            .validate(&p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be absolute"), "{err}");
        let missing = ConfigFile::load(&tmp.path().join("none.toml"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cm-agent enroll"), "{missing}");
    }

    #[test]
    fn opencode_table_is_validated() {
        let tmp = tempfile::tempdir().unwrap();
        let base = "relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\n";
        let p = write(
            tmp.path(),
            &format!(
                "{base}[opencode]\nbinary = \"/opt/oc/opencode\"\nmodel = \"mock/mock-model\"\nidle_stop = \"0\"\nready_timeout = \"5s\"\n\n[opencode.provider.mock]\nnpm = \"@ai-sdk/openai-compatible\"\noptions = {{ baseURL = \"http://127.0.0.1:1/v1\", apiKey = \"k\" }}\nmodels = {{ mock-model = {{ name = \"Mock\", tool_call = true, limit = {{ context = 128000, output = 4096 }} }} }}\n"
            ),
        );
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        let oc = c.opencode;
        assert_eq!(oc.binary.as_deref(), Some(Path::new("/opt/oc/opencode")));
        assert_eq!(oc.small_model.as_deref(), Some("mock/mock-model"));
        assert_eq!(oc.idle_stop, None);
        assert_eq!(oc.ready_timeout, Duration::from_secs(5));
        assert_eq!(oc.enabled_providers, Some(vec!["mock".to_owned()]));
        let provider = serde_json::Value::Object(oc.provider.unwrap());
        assert_eq!(
            provider["mock"]["models"]["mock-model"]["limit"]["context"],
            128000
        );
        assert_eq!(
            provider["mock"]["options"]["baseURL"],
            "http://127.0.0.1:1/v1"
        );

        let p = write(
            tmp.path(),
            &format!("{base}[opencode]\nallowed_models = [\"mock/*\", \"paid/big\"]\n"),
        );
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        assert_eq!(c.opencode.allowed_models, ["mock/*", "paid/big"]);

        // Defaults without the table.
        let p = write(tmp.path(), base);
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        assert_eq!(c.opencode, OpencodeConfig::default());
        assert_eq!(c.opencode.idle_stop, Some(DEFAULT_IDLE_STOP));

        for (bad, needle) in [
            ("[opencode]\nbinary = \"rel/opencode\"\n", "absolute"),
            ("[opencode]\nmodel = \"nomodel\"\n", "provider/model"),
            ("[opencode]\nready_timeout = \"0s\"\n", "ready_timeout"),
            ("[opencode]\nidle_stop = \"soon\"\n", "idle_stop"),
            (
                "[opencode]\nallowed_models = [\"mock\"]\n",
                "allowed_models: \"mock\" must look like provider/model",
            ),
        ] {
            let p = write(tmp.path(), &format!("{base}{bad}"));
            let err = ConfigFile::load(&p)
                .unwrap()
                .validate(&p)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
        let p = write(tmp.path(), &format!("{base}[opencode]\nbinry = \"/x\"\n"));
        let err = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(err.contains("binry"), "{err}");
    }

    #[test]
    fn workspace_permissions_can_be_relaxed_but_not_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let base = format!(
            "relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\n[[workspace]]\nname = \"w\"\npath = \"{}\"\n",
            tmp.path().display()
        );
        let p = write(tmp.path(), &base);
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        assert_eq!(c.workspaces[0].permissions, ToolPermissions::default());
        let p = write(
            tmp.path(),
            &format!("{base}permission = {{ edit = \"allow\", bash = \"deny\" }}\n"),
        );
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        let perms = c.workspaces[0].permissions;
        assert_eq!(perms.edit, ToolPermission::Allow);
        assert_eq!(perms.bash, ToolPermission::Deny);
        assert_eq!(perms.webfetch, ToolPermission::Ask);
        let p = write(
            tmp.path(),
            &format!("{base}permission = {{ edit = \"yes\" }}\n"),
        );
        let err = ConfigFile::load(&p)
            .unwrap()
            .validate(&p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("permission.edit"), "{err}");
        let p = write(
            tmp.path(),
            &format!("{base}permission = {{ external_directory = \"allow\" }}\n"),
        );
        let err = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(err.contains("external_directory"), "{err}");
    }

    /// The documented example (docs/agent.example.toml) stays loadable as the options change.
    #[test]
    fn documented_example_loads() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/agent.example.toml");
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        assert_eq!(c.workspaces.len(), 1);
        assert_eq!(c.opencode, OpencodeConfig::default());
        assert_eq!(
            c.policy.disabled_ops,
            [proto::header::Op::GitPush].into_iter().collect()
        );
        assert_eq!(
            c.policy.min_role.get(&proto::header::Op::SessionDelete),
            Some(&proto::rbac::Role::Admin)
        );
        assert_eq!(c.launch_lease, DEFAULT_LAUNCH_LEASE);
    }

    #[test]
    fn git_table_is_validated() {
        use crate::git::policy::GitSettings;
        let tmp = tempfile::tempdir().unwrap();
        let base = "relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\n";
        let p = write(tmp.path(), base);
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        assert_eq!(c.git, GitSettings::default());
        let p = write(
            tmp.path(),
            &format!(
                "{base}[git]\nclone_from = [\"https://github.com/*\"]\nsubmodules = true\nclone_timeout = \"30s\"\nclone_max_size = \"500MiB\"\nssh_key = \"/etc/cm/key\"\n"
            ),
        );
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        assert_eq!(c.git.clone_from, ["https://github.com/*"]);
        assert!(c.git.submodules);
        assert_eq!(c.git.clone_timeout, Duration::from_secs(30));
        assert_eq!(c.git.clone_max_bytes, 500 << 20);
        assert_eq!(c.git.ssh_key.as_deref(), Some(Path::new("/etc/cm/key")));
        for (bad, needle) in [
            ("clone_from = [\"file:///srv/*\"]\n", "clone_from"),
            ("clone_from = [\"/srv/*\"]\n", "clone_from"),
            ("clone_from = [\"ext::*\"]\n", "clone_from"),
            ("clone_max_size = \"lots\"\n", "clone_max_size"),
            ("clone_max_size = \"0\"\n", "clone_max_size"),
            ("clone_timeout = \"0s\"\n", "clone_timeout"),
            ("ssh_key = \"key\"\n", "ssh_key"),
            ("credential_helper = \"x\"\n", "credential_helper"),
        ] {
            let p = write(tmp.path(), &format!("{base}[git]\n{bad}"));
            let e = ConfigFile::load(&p)
                .map_err(|e| e.to_string())
                .and_then(|f| f.validate(&p).map_err(|e| e.to_string()))
                .unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn policy_table_is_validated() {
        use proto::header::Op;
        use proto::rbac::Role;
        let tmp = tempfile::tempdir().unwrap();
        let base = "relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\n";
        let p = write(
            tmp.path(),
            &format!(
                "{base}[policy]\ndisabled_ops = [\"git_push\", \"fs_rmdir\"]\nmin_role = {{ prompt = \"admin\" }}\nallow_shell = false\nlaunch_lease = \"2s\"\n"
            ),
        );
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        assert!(c.policy.disabled_ops.contains(&Op::GitPush));
        assert!(c.policy.disabled_ops.contains(&Op::FsRmdir));
        assert_eq!(c.policy.min_role.get(&Op::Prompt), Some(&Role::Admin));
        assert_eq!(c.launch_lease, Duration::from_secs(2));
        let p = write(tmp.path(), base);
        let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
        assert!(c.policy.disabled_ops.is_empty());
        assert_eq!(c.launch_lease, DEFAULT_LAUNCH_LEASE);
        for (bad, needles) in [
            (
                "disabled_ops = [\"git_push\", \"shell\", \"rm_rf\"]\n",
                &["disabled_ops", "shell, rm_rf"][..],
            ),
            (
                "min_role = { teleport = \"admin\" }\n",
                &["min_role", "teleport"][..],
            ),
            (
                "min_role = { prompt = \"root\" }\n",
                &["min_role.prompt", "root"][..],
            ),
            (
                "allow_shell = true\n",
                &["allow_shell", "no shell operation"][..],
            ),
            ("launch_lease = \"0s\"\n", &["launch_lease"][..]),
        ] {
            let p = write(tmp.path(), &format!("{base}[policy]\n{bad}"));
            let err = ConfigFile::load(&p)
                .unwrap()
                .validate(&p)
                .unwrap_err()
                .to_string();
            for n in needles {
                assert!(err.contains(n), "{n}: {err}");
            }
        }
    }

    #[test]
    fn save_then_load_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("sub/agent.toml");
        let f = ConfigFile {
            relay: "r:1".into(),
            pin: "blake3:ab".into(),
            host: "h".into(),
            workspaces: vec![WorkspaceEntry {
                name: "w".into(),
                path: "/tmp".into(),
                permission: Some(PermissionEntry {
                    edit: Some("allow".into()),
                    ..PermissionEntry::default()
                }),
                sandbox: None,
            }],
            opencode: Some(OpencodeSection {
                model: Some("mock/m".into()),
                ..OpencodeSection::default()
            }),
            ..ConfigFile::default()
        };
        f.save(&p).unwrap();
        let back = ConfigFile::load(&p).unwrap();
        assert_eq!(back.relay, "r:1");
        assert_eq!(back.workspaces, f.workspaces);
        assert_eq!(back.opencode, f.opencode);
    }

    #[test]
    fn environment_overrides_the_file_and_is_validated_like_it() {
        let mut f = ConfigFile {
            relay: "file:1".into(),
            pin: "blake3:00".into(),
            host: "box".into(),
            heartbeat_interval: Some("3s".into()),
            ..ConfigFile::default()
        };
        f.apply_env(|k| match k {
            "CM_AGENT_RELAY" => Some("env:2".into()),
            "CM_AGENT_HEARTBEAT_INTERVAL" => Some("soon".into()),
            _ => None,
        });
        assert_eq!(f.relay, "env:2");
        assert_eq!(f.host, "box");
        let err = f.validate(Path::new("agent.toml")).unwrap_err().to_string();
        assert!(err.contains("heartbeat_interval"), "{err}");
    }
}
