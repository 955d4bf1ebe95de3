//! The `[sandbox]` table of `agent.toml` (and a workspace's `sandbox` override), validated.
//!
//! ```toml
//! [sandbox]
//! mode = "enforce"                 # "enforce" (default) | "warn" | "off"
//! allow_read = ["~/.cargo", "~/.rustup"]   # toolchains OpenCode's tools may read and run
//! allow_write = []                 # more folders tools may write (beyond the workspace);
//!                                  # "/dev/shm" for tools that need POSIX shared memory
//! allow_connect_ports = [443]      # TCP ports tools may connect to (the model's port is added)
//! allow_bind_ports = [3000, 5173]  # TCP ports dev servers may listen on
//! env = ["RUSTUP_HOME", "CARGO_HOME"]      # host variables OpenCode and its tools may see
//! hide_etc = ["shadow", "gshadow"] # entries of /etc never readable (these defaults are kept)
//! pids_max = 512                   # processes and threads of one launch
//! memory_max = "4GiB"              # memory of one launch (cgroup; not enforced without one)
//! nofile = 8192                    # open files per process
//!
//! [[workspace]]
//! name = "web"
//! path = "/home/me/src/web"
//! sandbox = { allow_bind_ports = [8080], mode = "warn" }
//! ```

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the sandbox does with a launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Apply the kernel rules; refuse to start OpenCode where the kernel cannot.
    #[default]
    Enforce,
    /// Apply nothing, but log what the rules would have refused.
    Warn,
    /// No sandbox (explicit, shown to operators).
    Off,
}

impl Mode {
    /// The word in the config and in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Warn => "warn",
            Self::Off => "off",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "enforce" => Some(Self::Enforce),
            "warn" => Some(Self::Warn),
            "off" => Some(Self::Off),
            _ => None,
        }
    }
}

/// Entries of `/etc` that are never readable, whatever the config adds to `hide_etc`.
pub const DEFAULT_HIDDEN_ETC: &[&str] = &[
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "sudoers",
    "sudoers.d",
    "ssh",
    "ssl/private",
    "security/opasswd",
    "codemantle",
];

/// Host variables OpenCode and its tools see by default (besides the ones the agent sets).
pub const DEFAULT_ENV: &[&str] = &[
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME", "SHELL",
];

/// Default limit on processes (and threads) of one launch.
pub const DEFAULT_PIDS_MAX: u64 = 1024;
/// Default open files per process.
pub const DEFAULT_NOFILE: u64 = 8192;

/// The table as written (host-wide, or a workspace's override where every key is optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    /// `enforce`, `warn` or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// More folders readable (and executable), e.g. toolchains. `~/` is the agent's home.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_read: Vec<String>,
    /// More folders writable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_write: Vec<String>,
    /// TCP ports tools may connect to (the configured model providers' ports are added).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_connect_ports: Vec<u16>,
    /// TCP ports tools may listen on (OpenCode's own server port is added).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_bind_ports: Vec<u16>,
    /// Host environment variables passed through (by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Entries of `/etc` never readable (added to [`DEFAULT_HIDDEN_ETC`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hide_etc: Vec<String>,
    /// Processes and threads of one launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    /// Memory of one launch, e.g. `4GiB` (needs a cgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<String>,
    /// Open files per process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nofile: Option<u64>,
    /// Testing only: behave as if the kernel offered at most this Landlock ABI (0 = none); it
    /// can only lower what the kernel offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretend_abi: Option<u8>,
}

/// The validated sandbox settings of one workspace (host table merged with its override).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// What to do.
    pub mode: Mode,
    /// Extra readable folders (absolute).
    pub allow_read: Vec<PathBuf>,
    /// Extra writable folders (absolute).
    pub allow_write: Vec<PathBuf>,
    /// Extra TCP connect ports.
    pub allow_connect_ports: Vec<u16>,
    /// Extra TCP bind ports.
    pub allow_bind_ports: Vec<u16>,
    /// Passed-through host variables.
    pub env: Vec<String>,
    /// Hidden entries of `/etc` (relative names).
    pub hide_etc: Vec<String>,
    /// Process limit.
    pub pids_max: u64,
    /// Memory limit in bytes.
    pub memory_max: Option<u64>,
    /// Open files limit.
    pub nofile: u64,
    /// Testing only: pretend the kernel offers this Landlock ABI.
    pub pretend_abi: Option<u8>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Enforce,
            allow_read: Vec::new(),
            allow_write: Vec::new(),
            allow_connect_ports: Vec::new(),
            allow_bind_ports: Vec::new(),
            env: Vec::new(),
            hide_etc: DEFAULT_HIDDEN_ETC.iter().map(|s| (*s).to_owned()).collect(),
            pids_max: DEFAULT_PIDS_MAX,
            memory_max: None,
            nofile: DEFAULT_NOFILE,
            pretend_abi: None,
        }
    }
}

impl SandboxConfig {
    /// The host-wide settings from `[sandbox]` (`None`: defaults). `home` expands `~/`.
    ///
    /// # Errors
    /// A message naming the key and what to write instead.
    pub fn from_section(section: Option<&SandboxSection>, home: &Path) -> Result<Self, String> {
        let mut cfg = Self::default();
        if let Some(s) = section {
            cfg.merge(s, home, "[sandbox]")?;
        }
        Ok(cfg)
    }

    /// This config with a workspace's override applied: lists are added, scalars replaced.
    ///
    /// # Errors
    /// As [`SandboxConfig::from_section`].
    pub fn with_override(
        &self,
        section: &SandboxSection,
        home: &Path,
        workspace: &str,
    ) -> Result<Self, String> {
        let mut cfg = self.clone();
        cfg.merge(section, home, &format!("workspace {workspace:?}: sandbox"))?;
        Ok(cfg)
    }

    fn merge(&mut self, s: &SandboxSection, home: &Path, at: &str) -> Result<(), String> {
        if let Some(m) = &s.mode {
            self.mode = Mode::parse(m).ok_or_else(|| {
                format!("{at}: mode = {m:?}: use \"enforce\", \"warn\" or \"off\"")
            })?;
        }
        for (key, from, to) in [
            ("allow_read", &s.allow_read, &mut self.allow_read),
            ("allow_write", &s.allow_write, &mut self.allow_write),
        ] {
            for p in from {
                to.push(expand_home(p, home).ok_or_else(|| {
                    format!("{at}: {key}: {p:?} must be an absolute path or start with ~/")
                })?);
            }
        }
        self.allow_connect_ports
            .extend(s.allow_connect_ports.iter().copied());
        self.allow_bind_ports
            .extend(s.allow_bind_ports.iter().copied());
        for name in &s.env {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(format!("{at}: env: {name:?} is not a variable name"));
            }
            self.env.push(name.clone());
        }
        for e in &s.hide_etc {
            let rel = e.trim_start_matches("/etc/");
            if rel.is_empty() || rel.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(format!(
                    "{at}: hide_etc: {e:?} must name an entry of /etc, e.g. \"shadow\""
                ));
            }
            self.hide_etc.push(rel.to_owned());
        }
        if let Some(n) = s.pids_max {
            if n < 16 {
                return Err(format!(
                    "{at}: pids_max = {n} is too low for OpenCode (it needs about 16 threads)"
                ));
            }
            self.pids_max = n;
        }
        if let Some(n) = s.nofile {
            if n < 256 {
                return Err(format!("{at}: nofile = {n} is too low (at least 256)"));
            }
            self.nofile = n;
        }
        if let Some(m) = &s.memory_max {
            self.memory_max = Some(parse_bytes(m).ok_or_else(|| {
                format!("{at}: memory_max = {m:?}: write a size such as \"4GiB\" or \"512MiB\"")
            })?);
        }
        if let Some(abi) = s.pretend_abi {
            self.pretend_abi = Some(abi);
        }
        Ok(())
    }
}

/// `~/x` → `<home>/x`; an absolute path as is; anything else `None`.
fn expand_home(p: &str, home: &Path) -> Option<PathBuf> {
    if let Some(rest) = p.strip_prefix("~/") {
        return Some(home.join(rest));
    }
    let path = PathBuf::from(p);
    path.is_absolute().then_some(path)
}

/// `4GiB`, `512MiB`, `100KiB`, `1G`, or plain bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult).filter(|b| *b > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_enforce_and_hide_secrets_of_etc() {
        let c = SandboxConfig::from_section(None, Path::new("/home/me")).unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        assert!(c.hide_etc.iter().any(|e| e == "shadow"));
        assert_eq!(c.pids_max, DEFAULT_PIDS_MAX);
    }

    #[test]
    fn a_workspace_override_adds_lists_and_replaces_the_mode() {
        let home = Path::new("/home/me");
        let host = SandboxSection {
            allow_read: vec!["~/.cargo".into()],
            allow_bind_ports: vec![3000],
            hide_etc: vec!["/etc/secret.conf".into()],
            ..SandboxSection::default()
        };
        let c = SandboxConfig::from_section(Some(&host), home).unwrap();
        let ws = SandboxSection {
            mode: Some("warn".into()),
            allow_bind_ports: vec![8080],
            memory_max: Some("2GiB".into()),
            ..SandboxSection::default()
        };
        let w = c.with_override(&ws, home, "web").unwrap();
        assert_eq!(w.mode, Mode::Warn);
        assert_eq!(w.allow_bind_ports, vec![3000, 8080]);
        assert_eq!(w.allow_read, vec![PathBuf::from("/home/me/.cargo")]);
        assert_eq!(w.memory_max, Some(2 << 30));
        assert!(w.hide_etc.iter().any(|e| e == "secret.conf"));
        assert_eq!(c.mode, Mode::Enforce, "the host table is unchanged");
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        let home = Path::new("/h");
        for (section, needle) in [
            (
                SandboxSection {
                    mode: Some("strict".into()),
                    ..SandboxSection::default()
                },
                "mode",
            ),
            (
                SandboxSection {
                    allow_read: vec!["relative/dir".into()],
                    ..SandboxSection::default()
                },
                "allow_read",
            ),
            (
                SandboxSection {
                    hide_etc: vec!["../home".into()],
                    ..SandboxSection::default()
                },
                "hide_etc",
            ),
            (
                SandboxSection {
                    memory_max: Some("lots".into()),
                    ..SandboxSection::default()
                },
                "memory_max",
            ),
            (
                SandboxSection {
                    pids_max: Some(3),
                    ..SandboxSection::default()
                },
                "pids_max",
            ),
            (
                SandboxSection {
                    env: vec!["A=B".into()],
                    ..SandboxSection::default()
                },
                "env",
            ),
        ] {
            let e = SandboxConfig::from_section(Some(&section), home).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("4G"), Some(4 << 30));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("1TB"), None);
    }
}
