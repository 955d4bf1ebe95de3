//! What one launch of OpenCode may touch (pure): built by the agent from the workspace's
//! [`SandboxConfig`], written next to the launch's private folders, and applied by the
//! launcher just before `exec` (see `kernel.rs`).

use super::config::{Mode, SandboxConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// System folders readable and executable by every launch (those that exist).
pub const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sys",
];

/// Device files every launch may read and write. Not `/dev/shm`: it is shared by every process
/// of the user (and others), so a tool could read what other programs keep there or leave
/// files for them; a host whose tools need POSIX shared memory lists it in `allow_write`.
pub const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/ptmx",
    "/dev/pts",
];

/// The rules of one launch, as the launcher applies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPlan {
    /// Enforce, warn or off.
    pub mode: Mode,
    /// Testing only: the Landlock ABI to pretend the kernel has.
    pub pretend_abi: Option<u8>,
    /// Readable and executable trees.
    pub read: Vec<PathBuf>,
    /// `/etc`'s entries that stay unreadable (relative to `/etc`).
    pub hide_etc: Vec<String>,
    /// Trees with every file right (read, write, create, remove, execute).
    pub write: Vec<PathBuf>,
    /// Device files readable and writable.
    pub devices: Vec<PathBuf>,
    /// TCP ports that may be connected to.
    pub connect_ports: Vec<u16>,
    /// TCP ports that may be listened on.
    pub bind_ports: Vec<u16>,
    /// Processes and threads of the launch.
    pub pids_max: u64,
    /// Open files per process.
    pub nofile: u64,
    /// Memory of the launch in bytes (cgroup only).
    pub memory_max: Option<u64>,
    /// The private temporary folder (`TMPDIR`).
    pub tmpdir: PathBuf,
    /// The launch's cgroups, made when the launch is prepared (none: rlimits only).
    #[serde(default)]
    pub cgroups: super::cgroup::LaunchCgroups,
    /// Why there are no cgroups, if there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_unavailable: Option<String>,
}

/// The inputs of a launch that the rules depend on.
#[derive(Debug, Clone, Copy)]
pub struct LaunchFacts<'a> {
    /// The workspace root.
    pub workspace: &'a Path,
    /// OpenCode's private folder (`<state>/opencode/<workspace>`): readable, not writable
    /// (its config and home must not change between launches).
    pub private: &'a Path,
    /// The parts of the private folder OpenCode writes (its data, state and cache folders).
    pub private_writable: &'a [PathBuf],
    /// The OpenCode binary.
    pub program: &'a Path,
    /// OpenCode's own server port.
    pub port: u16,
    /// TCP ports of the configured model providers.
    pub provider_ports: &'a [u16],
}

impl SandboxPlan {
    /// The rules for one launch.
    pub fn new(cfg: &SandboxConfig, facts: LaunchFacts<'_>) -> Self {
        let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
        // The OpenCode package (the binary and what ships beside it).
        if let Some(dir) = facts.program.parent() {
            let package = dir.parent().filter(|p| p.join("package.json").exists());
            read.push(package.unwrap_or(dir).to_owned());
        }
        read.extend(cfg.allow_read.iter().cloned());
        // Config, home and opencode.json are read only: a tool must not plant config or
        // plugins that loosen the next launch, nor links the agent would follow.
        read.push(facts.private.to_owned());
        let tmpdir = facts.private.join("tmp");
        let mut write = vec![facts.workspace.to_owned(), tmpdir.clone()];
        write.extend(facts.private_writable.iter().cloned());
        write.extend(cfg.allow_write.iter().cloned());
        // OpenCode's own port is for listening only: a tool that could connect to it could
        // answer its own permission requests through OpenCode's API.
        let mut connect_ports: Vec<u16> = facts.provider_ports.to_vec();
        connect_ports.extend(cfg.allow_connect_ports.iter().copied());
        connect_ports.sort_unstable();
        connect_ports.dedup();
        let mut bind_ports = vec![facts.port];
        bind_ports.extend(cfg.allow_bind_ports.iter().copied());
        bind_ports.sort_unstable();
        bind_ports.dedup();
        Self {
            mode: cfg.mode,
            pretend_abi: cfg.pretend_abi,
            read,
            hide_etc: cfg.hide_etc.clone(),
            write,
            devices: DEVICES.iter().map(PathBuf::from).collect(),
            connect_ports,
            bind_ports,
            pids_max: cfg.pids_max,
            nofile: cfg.nofile,
            memory_max: cfg.memory_max,
            tmpdir,
            cgroups: super::cgroup::LaunchCgroups::default(),
            cgroup_unavailable: None,
        }
    }

    /// Whether `path` (already resolved) is readable under these rules.
    pub fn allows_read(&self, path: &Path) -> bool {
        if self.allows_write(path) || self.read.iter().any(|r| path.starts_with(r)) {
            return true;
        }
        match path.strip_prefix("/etc") {
            Ok(rel) => !self.hide_etc.iter().any(|h| rel.starts_with(h)),
            Err(_) => self.devices.iter().any(|d| path.starts_with(d)),
        }
    }

    /// Whether `path` (already resolved) is writable under these rules.
    pub fn allows_write(&self, path: &Path) -> bool {
        self.write.iter().any(|w| path.starts_with(w))
    }
}

/// TCP ports named by the providers' `options.baseURL` (`http` → 80, `https` → 443).
pub fn provider_ports(provider: Option<&serde_json::Map<String, serde_json::Value>>) -> Vec<u16> {
    let mut ports: Vec<u16> = provider
        .into_iter()
        .flat_map(|p| p.values())
        .filter_map(|v| v.pointer("/options/baseURL").and_then(|u| u.as_str()))
        .filter_map(url_port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

fn url_port(url: &str) -> Option<u16> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    // `[::1]:8080` or `host:8080`.
    let port = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => port.parse().ok(),
        _ => None,
    };
    port.or(match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })
}

/// Names of host variables the providers reference as `{env:NAME}` (OpenCode substitutes them),
/// so the sandboxed environment keeps them.
pub fn provider_env_names(
    provider: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Vec<String> {
    let mut names: Vec<String> = provider
        .into_iter()
        .flat_map(|p| p.values())
        .flat_map(crate::env_refs::env_refs_in)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan() -> SandboxPlan {
        SandboxPlan::new(
            &SandboxConfig::default(),
            LaunchFacts {
                workspace: Path::new("/home/me/src/app"),
                private: Path::new("/home/me/.local/state/codemantle/opencode/app"),
                private_writable: &[PathBuf::from(
                    "/home/me/.local/state/codemantle/opencode/app/xdg/data",
                )],
                program: Path::new("/opt/oc/bin/opencode"),
                port: 41000,
                provider_ports: &[8080],
            },
        )
    }

    #[test]
    fn the_workspace_and_private_folders_are_writable_and_nothing_else_of_home() {
        let p = plan();
        assert!(p.allows_write(Path::new("/home/me/src/app/src/main.rs")));
        assert!(p.allows_write(Path::new(
            "/home/me/.local/state/codemantle/opencode/app/tmp/x"
        )));
        assert!(!p.allows_write(Path::new("/home/me/src/other")));
        // The private folder's config and home are readable, not writable.
        assert!(!p.allows_write(Path::new(
            "/home/me/.local/state/codemantle/opencode/app/xdg/config/opencode/opencode.json"
        )));
        assert!(!p.allows_write(Path::new(
            "/home/me/.local/state/codemantle/opencode/app/opencode.json"
        )));
        assert!(p.allows_read(Path::new(
            "/home/me/.local/state/codemantle/opencode/app/opencode.json"
        )));
        assert!(!p.allows_read(Path::new("/home/me/.ssh/id_ed25519")));
        assert!(!p.allows_read(Path::new("/home/me/.local/state/codemantle/host.secret")));
        assert!(!p.allows_read(Path::new("/home/me/src/app-other/x")));
        assert!(p.allows_read(Path::new("/usr/bin/git")));
        assert!(p.allows_read(Path::new("/opt/oc/bin/opencode")));
        assert!(!p.allows_read(Path::new("/dev/shm/other-program")));
        assert!(!p.allows_write(Path::new("/dev/shm/left-for-others")));
    }

    #[test]
    fn secrets_of_etc_stay_hidden() {
        let p = plan();
        assert!(p.allows_read(Path::new("/etc/hosts")));
        assert!(!p.allows_read(Path::new("/etc/shadow")));
        assert!(!p.allows_read(Path::new("/etc/ssh/ssh_host_ed25519_key")));
        assert!(!p.allows_read(Path::new("/etc/codemantle/agent.toml")));
    }

    #[test]
    fn ports_are_the_provider_the_server_and_the_configured_ones() {
        let p = plan();
        assert_eq!(p.connect_ports, vec![8080], "never OpenCode's own API");
        assert_eq!(p.bind_ports, vec![41000]);
    }

    #[test]
    fn provider_urls_give_ports_and_env_names() {
        let providers = json!({
            "a": {"options": {"baseURL": "http://127.0.0.1:9000/v1", "apiKey": "{env:A_KEY}"}},
            "b": {"options": {"baseURL": "https://api.example.com/v1", "headers": {"x": "{env:B_TOKEN} and {env:C}"}}},
            "c": {"options": {"baseURL": "http://[::1]:7000"}},
            "d": {"options": {"baseURL": "http://user:pw@host/v1"}},
        });
        let map = providers.as_object();
        assert_eq!(provider_ports(map), vec![80, 443, 7000, 9000]);
        assert_eq!(provider_env_names(map), vec!["A_KEY", "B_TOKEN", "C"]);
    }
}
