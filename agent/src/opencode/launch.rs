//! What one launch of `opencode serve` looks like: its private directories, the generated
//! `opencode.json`, the environment and the command line. Building the plan is pure; only
//! [`prepare`] touches the disk.
//!
//! Each workspace gets its own `HOME` and `XDG_*` directories under the agent's state folder,
//! so OpenCode never reads or writes the operator's own OpenCode state, and the global config
//! folder is seeded so OpenCode does not `npm install` its plugin package on first use.

use crate::config::{OpencodeConfig, ToolPermissions, Workspace};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Environment variable that tags every process of one launch (inherited by tool processes),
/// so leftovers can be found after OpenCode is gone.
pub const MARKER_ENV: &str = "CM_AGENT_LAUNCH";

/// Permission rules of a generated config: edits, shell commands and web fetches wait for an
/// operator's answer unless the workspace's config relaxes them; paths outside the workspace are
/// always refused outright.
pub fn permission_rules(p: &ToolPermissions) -> Value {
    json!({
        "edit": p.edit.as_str(),
        "bash": p.bash.as_str(),
        "webfetch": p.webfetch.as_str(),
        "external_directory": "deny",
    })
}

/// The private directories of one workspace's OpenCode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchDirs {
    /// `<state>/opencode/<workspace>`.
    pub base: PathBuf,
    /// `HOME`.
    pub home: PathBuf,
    /// `XDG_CONFIG_HOME`.
    pub config: PathBuf,
    /// `XDG_DATA_HOME` (sessions database, logs, snapshots).
    pub data: PathBuf,
    /// `XDG_STATE_HOME`.
    pub state: PathBuf,
    /// `XDG_CACHE_HOME`.
    pub cache: PathBuf,
    /// The generated config file (`OPENCODE_CONFIG`).
    pub config_file: PathBuf,
}

impl LaunchDirs {
    /// The launch's sandbox plan: `<state>/sandbox/<workspace>.json`, outside every folder the
    /// sandbox lets OpenCode write (and apart from workspace names, so none collides).
    pub fn sandbox_file(&self) -> PathBuf {
        let mut name = self.base.file_name().unwrap_or_default().to_owned();
        name.push(".json");
        let state = self
            .base
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&self.base);
        state.join("sandbox").join(name)
    }

    /// The directories for `workspace` under the agent's `state_dir`.
    pub fn new(state_dir: &Path, workspace: &str) -> Self {
        let base = state_dir.join("opencode").join(workspace);
        let xdg = base.join("xdg");
        Self {
            home: base.join("home"),
            config: xdg.join("config"),
            data: xdg.join("data"),
            state: xdg.join("state"),
            cache: xdg.join("cache"),
            config_file: base.join("opencode.json"),
            base,
        }
    }
}

/// Everything needed to spawn one `opencode serve`.
#[derive(Clone)]
pub struct Launch {
    /// The binary.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Working directory: the workspace root.
    pub cwd: PathBuf,
    /// Variables to set (inherited `OPENCODE_*` variables are removed first).
    pub env: Vec<(String, OsString)>,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The HTTP Basic password (user `opencode`).
    pub password: String,
    /// The value of [`MARKER_ENV`].
    pub marker: String,
    /// Private directories.
    pub dirs: LaunchDirs,
    /// Contents of `opencode.json`.
    pub config_json: Value,
    /// The agent's state file (read by the keeper to know whether an agent re-adopted it).
    pub state_file: PathBuf,
    /// The kernel rules of this launch (written to [`LaunchDirs::sandbox_file`]).
    pub sandbox: crate::sandbox::SandboxPlan,
    /// Host variables OpenCode and its tools see (the allow-list, see `sandbox/env.rs`).
    pub host_env_names: Vec<String>,
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password and the environment (which repeats it) stay out of logs.
        f.debug_struct("Launch")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field("port", &self.port)
            .field("marker", &self.marker)
            .field("dirs", &self.dirs)
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

/// The generated `opencode.json` for a workspace with tool permissions `perms`.
pub fn opencode_json(cfg: &OpencodeConfig, perms: &ToolPermissions) -> Value {
    let mut v = json!({
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": false,
        "share": "disabled",
        "permission": permission_rules(perms),
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(m) = &cfg.model {
            obj.insert("model".into(), json!(m));
        }
        if let Some(m) = &cfg.small_model {
            obj.insert("small_model".into(), json!(m));
        }
        if let Some(p) = &cfg.enabled_providers {
            obj.insert("enabled_providers".into(), json!(p));
        }
        if let Some(p) = &cfg.provider {
            obj.insert("provider".into(), Value::Object(p.clone()));
        }
    }
    v
}

/// The launch plan (pure). `template`, the workspace's applied (and checked) relay template,
/// is merged into the generated config, and the host variables it references are passed
/// through.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    program: &Path,
    cfg: &OpencodeConfig,
    workspace: &Workspace,
    state_dir: &Path,
    port: u16,
    password: String,
    marker: String,
    template: Option<&proto::template::TemplateContent>,
) -> Launch {
    let dirs = LaunchDirs::new(state_dir, &workspace.name);
    let os = |p: &Path| p.as_os_str().to_owned();
    let provider = cfg.provider.as_ref();
    let sandbox = crate::sandbox::SandboxPlan::new(
        &workspace.sandbox,
        crate::sandbox::plan::LaunchFacts {
            workspace: &workspace.root,
            private: &dirs.base,
            private_writable: &[dirs.data.clone(), dirs.state.clone(), dirs.cache.clone()],
            // Where the binary really is (an npm or bun shim is a link): Landlock checks the
            // file a path leads to.
            program: &std::fs::canonicalize(program).unwrap_or_else(|_| program.to_owned()),
            port,
            provider_ports: &crate::sandbox::plan::provider_ports(provider),
        },
    );
    let mut host_env_names = workspace.sandbox.env.clone();
    host_env_names.extend(crate::sandbox::plan::provider_env_names(provider));
    let mut config_json = opencode_json(cfg, &workspace.permissions);
    if let Some(t) = template {
        crate::template::merge(&mut config_json, t);
        host_env_names.extend(crate::template::env_names(t));
    }
    let env = vec![
        ("TMPDIR".to_owned(), os(&sandbox.tmpdir)),
        ("HOME".to_owned(), os(&dirs.home)),
        ("XDG_CONFIG_HOME".to_owned(), os(&dirs.config)),
        ("XDG_DATA_HOME".to_owned(), os(&dirs.data)),
        ("XDG_STATE_HOME".to_owned(), os(&dirs.state)),
        ("XDG_CACHE_HOME".to_owned(), os(&dirs.cache)),
        ("OPENCODE_CONFIG".to_owned(), os(&dirs.config_file)),
        ("OPENCODE_DISABLE_MODELS_FETCH".to_owned(), "1".into()),
        ("OPENCODE_DISABLE_AUTOUPDATE".to_owned(), "1".into()),
        ("OPENCODE_DISABLE_LSP_DOWNLOAD".to_owned(), "1".into()),
        ("OPENCODE_DISABLE_SHARE".to_owned(), "1".into()),
        ("OPENCODE_DISABLE_PROJECT_CONFIG".to_owned(), "1".into()),
        (
            "OPENCODE_SERVER_PASSWORD".to_owned(),
            password.clone().into(),
        ),
        (MARKER_ENV.to_owned(), marker.clone().into()),
    ];
    Launch {
        program: program.to_owned(),
        args: vec![
            "serve".into(),
            "--hostname".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
        ],
        cwd: workspace.root.clone(),
        env,
        port,
        password,
        marker,
        config_json,
        state_file: state_dir.join(crate::state_file_name::FILE_NAME),
        dirs,
        sandbox,
        host_env_names,
    }
}

/// Creates the directories (0700), seeds the global config folder so OpenCode skips its
/// `npm install`, and writes `opencode.json` (0600: it may hold provider keys).
///
/// # Errors
/// File system failures.
pub fn prepare(launch: &Launch) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let d = &launch.dirs;
    let seeded = d.config.join("opencode");
    for dir in [
        &d.base,
        &d.home,
        &d.config,
        &d.data,
        &d.state,
        &d.cache,
        &seeded.join("node_modules"),
    ] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::write(
        seeded.join("package-lock.json"),
        r#"{"packages":{"":{"dependencies":{"@opencode-ai/plugin":"*"}}}}"#,
    )?;
    let body = serde_json::to_vec_pretty(&launch.config_json).map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&d.config_file)?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&launch.sandbox.tmpdir)?;
    let mut plan = launch.sandbox.clone();
    if plan.mode == crate::sandbox::Mode::Enforce {
        crate::sandbox::cgroup::remove_for(&launch.marker);
        match crate::sandbox::cgroup::create(&launch.marker, plan.pids_max, plan.memory_max) {
            Ok(c) => plan.cgroups = c,
            Err(why) => {
                tracing::info!(%why, "no cgroup for this launch: process limit by rlimit only, memory_max not enforced");
                plan.cgroup_unavailable = Some(why);
            }
        }
    }
    // Outside the private folder: OpenCode may never write there.
    let plan = serde_json::to_vec_pretty(&plan).map_err(std::io::Error::other)?;
    if let Some(dir) = d.sandbox_file().parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(d.sandbox_file())?;
    f.write_all(&plan)?;
    f.sync_all()
}

/// A free port on 127.0.0.1: bind port 0, read it, release it. (OpenCode's own `--port 0`
/// binds 4096, so the agent picks.) Another process may take it in between; OpenCode then
/// exits and the supervisor retries with a new port.
///
/// # Errors
/// If no socket can be bound.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// 32 random bytes as hex, for the server password or the launch marker.
///
/// # Errors
/// If the OS random source fails.
pub fn random_hex() -> Result<String, getrandom::Error> {
    cm_client::time::random32().map(hex::encode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OpencodeConfig;

    fn cfg() -> OpencodeConfig {
        let provider = json!({"mock": {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": "http://127.0.0.1:9/v1"}}});
        OpencodeConfig {
            model: Some("mock/mock-model".into()),
            small_model: Some("mock/mock-model".into()),
            enabled_providers: Some(vec!["mock".into()]),
            provider: provider.as_object().cloned(),
            ..OpencodeConfig::default()
        }
    }

    #[test]
    fn config_json_has_the_safety_settings() {
        let v = opencode_json(&cfg(), &ToolPermissions::default());
        assert_eq!(v["autoupdate"], false);
        assert_eq!(v["share"], "disabled");
        assert_eq!(v["model"], "mock/mock-model");
        assert_eq!(v["small_model"], "mock/mock-model");
        assert_eq!(v["enabled_providers"], json!(["mock"]));
        assert_eq!(
            v["provider"]["mock"]["options"]["baseURL"],
            "http://127.0.0.1:9/v1"
        );
        assert_eq!(
            v["permission"],
            json!({"edit":"ask","bash":"ask","webfetch":"ask","external_directory":"deny"})
        );
        let bare = opencode_json(&OpencodeConfig::default(), &ToolPermissions::default());
        assert!(bare.get("model").is_none() && bare.get("provider").is_none());
        // A relaxed workspace: only edit, bash and webfetch change; outside stays denied.
        let relaxed = ToolPermissions {
            edit: crate::config::ToolPermission::Allow,
            bash: crate::config::ToolPermission::Deny,
            ..ToolPermissions::default()
        };
        assert_eq!(
            opencode_json(&cfg(), &relaxed)["permission"],
            json!({"edit":"allow","bash":"deny","webfetch":"ask","external_directory":"deny"})
        );
    }

    #[test]
    fn the_sandbox_allows_the_binary_where_a_link_to_it_leads() {
        let tmp = tempfile::tempdir().unwrap();
        let package = tmp.path().join("lib/node_modules/opencode-linux-x64");
        std::fs::create_dir_all(package.join("bin")).unwrap();
        std::fs::write(package.join("package.json"), "{}").unwrap();
        std::fs::write(package.join("bin/opencode"), "").unwrap();
        std::fs::create_dir(tmp.path().join("shims")).unwrap();
        let shim = tmp.path().join("shims/opencode");
        std::os::unix::fs::symlink(package.join("bin/opencode"), &shim).unwrap();
        let ws = Workspace {
            name: "demo".into(),
            root: tmp.path().join("ws"),
            permissions: ToolPermissions::default(),
            sandbox: Default::default(),
        };
        let l = plan(
            &shim,
            &cfg(),
            &ws,
            &tmp.path().join("state"),
            1,
            "pw".into(),
            "mk".into(),
            None,
        );
        let real = std::fs::canonicalize(&package).unwrap();
        assert!(l.sandbox.read.contains(&real), "{:?}", l.sandbox.read);
        assert!(!l.sandbox.read.contains(&tmp.path().join("shims")));
    }

    #[test]
    fn plan_redirects_all_state_and_prepare_seeds_it() {
        // Long enough that a random temporary path cannot contain it (with "pw" it once did).
        const PASSWORD: &str = "opencode-server-password-0f3a9c";
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace {
            name: "demo".into(),
            root: tmp.path().join("ws"),
            permissions: ToolPermissions::default(),
            sandbox: Default::default(),
        };
        let l = plan(
            Path::new("/bin/opencode"),
            &cfg(),
            &ws,
            &tmp.path().join("state"),
            4567,
            PASSWORD.into(),
            "mk".into(),
            None,
        );
        assert_eq!(
            l.args,
            ["serve", "--hostname", "127.0.0.1", "--port", "4567"]
        );
        assert_eq!(l.cwd, ws.root);
        let env: std::collections::HashMap<_, _> = l.env.iter().cloned().collect();
        let base = tmp.path().join("state/opencode/demo");
        assert_eq!(env["HOME"], base.join("home").into_os_string());
        assert_eq!(
            env["XDG_CONFIG_HOME"],
            base.join("xdg/config").into_os_string()
        );
        assert_eq!(env["XDG_DATA_HOME"], base.join("xdg/data").into_os_string());
        assert_eq!(
            env["XDG_STATE_HOME"],
            base.join("xdg/state").into_os_string()
        );
        assert_eq!(
            env["XDG_CACHE_HOME"],
            base.join("xdg/cache").into_os_string()
        );
        assert_eq!(
            env["OPENCODE_CONFIG"],
            base.join("opencode.json").into_os_string()
        );
        assert_eq!(env["OPENCODE_SERVER_PASSWORD"], PASSWORD);
        assert_eq!(env[MARKER_ENV], "mk");
        for k in [
            "OPENCODE_DISABLE_MODELS_FETCH",
            "OPENCODE_DISABLE_AUTOUPDATE",
            "OPENCODE_DISABLE_LSP_DOWNLOAD",
            "OPENCODE_DISABLE_SHARE",
            "OPENCODE_DISABLE_PROJECT_CONFIG",
        ] {
            assert_eq!(env[k], "1", "{k}");
        }

        prepare(&l).unwrap();
        let lock =
            std::fs::read_to_string(base.join("xdg/config/opencode/package-lock.json")).unwrap();
        let lock: Value = serde_json::from_str(&lock).unwrap();
        assert_eq!(
            lock["packages"][""]["dependencies"]["@opencode-ai/plugin"],
            "*"
        );
        assert!(base.join("xdg/config/opencode/node_modules").is_dir());
        let written: Value =
            serde_json::from_slice(&std::fs::read(base.join("opencode.json")).unwrap()).unwrap();
        assert_eq!(written, l.config_json);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(base.join("opencode.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
        // Preparing again (the next launch) works.
        prepare(&l).unwrap();
        assert!(!format!("{l:?}").contains(PASSWORD));
    }

    #[test]
    fn an_applied_template_is_merged_and_its_env_names_passed_through() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace {
            name: "demo".into(),
            root: tmp.path().join("ws"),
            permissions: ToolPermissions::default(),
            sandbox: Default::default(),
        };
        let t: proto::template::TemplateContent = serde_json::from_value(json!({
            "opencode": {"permission": {"bash": "deny"}},
            "mcp": {"docs": {"type": "remote", "url": "https://mcp.example.com/d",
                             "headers": {"A": "Bearer {env:DOCS_TOKEN}"}}}
        }))
        .unwrap();
        let args = |t| {
            plan(
                Path::new("/bin/opencode"),
                &cfg(),
                &ws,
                &tmp.path().join("state"),
                1,
                "pw".into(),
                "mk".into(),
                t,
            )
        };
        let l = args(Some(&t));
        assert_eq!(l.config_json["permission"]["bash"], "deny");
        assert_eq!(l.config_json["permission"]["external_directory"], "deny");
        assert_eq!(l.config_json["mcp"]["docs"]["type"], "remote");
        assert_eq!(l.config_json["autoupdate"], false);
        assert!(l.host_env_names.contains(&"DOCS_TOKEN".to_owned()));
        let bare = args(None);
        assert!(bare.config_json.get("mcp").is_none());
        assert!(!bare.host_env_names.contains(&"DOCS_TOKEN".to_owned()));
    }

    #[test]
    fn secrets_and_ports() {
        let a = random_hex().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_hex().unwrap());
        assert_ne!(free_port().unwrap(), 0);
    }
}

#[cfg(test)]
#[path = "template_merge_tests.rs"]
mod template_merge_tests;
