//! Finding the `opencode` binary and checking its version. Resolution order: the configured
//! path, `CM_OPENCODE_BIN`, the project's `tools/opencode` install found by walking up from the
//! agent's own executable, then `PATH`.

use super::PINNED_VERSION;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable naming the binary.
pub const BIN_ENV: &str = "CM_OPENCODE_BIN";

/// How long `opencode --version` may take (it measures about 0.8 s; the Bun binary is 185 MB
/// and the first run after boot reads it from disk).
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(15);

/// Why no usable binary was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// Nothing found anywhere.
    #[error("OpenCode not found: run scripts/install-opencode.sh or set [opencode] binary")]
    NotFound,
    /// The configured or `CM_OPENCODE_BIN` path does not exist or is not executable. (The
    /// path is kept for the log, not put in the message operators see.)
    #[error(
        "OpenCode not found at the path {source_name} names: run scripts/install-opencode.sh or set [opencode] binary"
    )]
    Missing {
        /// The path.
        path: PathBuf,
        /// Where the path came from.
        source_name: &'static str,
    },
    /// `--version` failed.
    #[error("{path} --version failed: {reason}")]
    Version {
        /// The binary.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
}

/// What resolution looks at; injected so tests do not depend on the machine.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// `[opencode] binary`.
    pub configured: Option<PathBuf>,
    /// `CM_OPENCODE_BIN`.
    pub env: Option<OsString>,
    /// The running executable.
    pub current_exe: Option<PathBuf>,
    /// `PATH`.
    pub path: Option<OsString>,
}

impl Search {
    /// The real environment.
    pub fn from_env(configured: Option<PathBuf>) -> Self {
        Self {
            configured,
            env: std::env::var_os(BIN_ENV).filter(|v| !v.is_empty()),
            current_exe: std::env::current_exe().ok(),
            path: std::env::var_os("PATH"),
        }
    }

    /// Finds the binary.
    ///
    /// # Errors
    /// [`BinaryError::Missing`] when an explicit path is wrong, else [`BinaryError::NotFound`].
    pub fn resolve(&self) -> Result<PathBuf, BinaryError> {
        if let Some(p) = &self.configured {
            return explicit(p, "[opencode] binary");
        }
        if let Some(p) = &self.env {
            return explicit(Path::new(p), BIN_ENV);
        }
        if let Some(found) = self
            .current_exe
            .as_deref()
            .and_then(Path::parent)
            .and_then(find_project_install)
        {
            return Ok(found);
        }
        self.path
            .as_ref()
            .and_then(|p| {
                std::env::split_paths(p)
                    .map(|d| d.join("opencode"))
                    .find(|c| is_executable(c))
            })
            .ok_or(BinaryError::NotFound)
    }
}

fn explicit(p: &Path, source_name: &'static str) -> Result<PathBuf, BinaryError> {
    if is_executable(p) {
        Ok(p.to_owned())
    } else {
        Err(BinaryError::Missing {
            path: p.to_owned(),
            source_name,
        })
    }
}

/// Walks up from `start` looking for `tools/opencode/node_modules/opencode-*/bin/opencode`.
fn find_project_install(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let modules = dir.join("tools/opencode/node_modules");
        let mut candidates: Vec<PathBuf> = std::fs::read_dir(&modules)
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("opencode-"))
            .map(|e| e.path().join("bin/opencode"))
            .filter(|p| is_executable(p))
            .collect();
        candidates.sort();
        candidates.into_iter().next()
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `binary --version` and returns the trimmed output; logs a warning when it is not the
/// pinned release.
///
/// # Errors
/// [`BinaryError::Version`] when it cannot run, fails or times out.
pub async fn check_version(binary: &Path) -> Result<String, BinaryError> {
    let fail = |reason: String| BinaryError::Version {
        path: binary.to_owned(),
        reason,
    };
    let out = tokio::time::timeout(
        VERSION_TIMEOUT,
        tokio::process::Command::new(binary)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| fail(format!("no answer within {VERSION_TIMEOUT:?}")))?
    .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!("exit status {}", out.status)));
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if version != PINNED_VERSION {
        tracing::warn!(binary = %binary.display(), %version, pinned = PINNED_VERSION, "OpenCode version differs from the tested release; run scripts/install-opencode.sh");
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn exe(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\necho 1.18.33\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn resolution_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let project = root.join("repo/tools/opencode/node_modules/opencode-linux-x64/bin/opencode");
        exe(&project);
        let on_path = root.join("bin/opencode");
        exe(&on_path);
        let configured = root.join("cfg/opencode");
        exe(&configured);
        let search = Search {
            configured: None,
            env: None,
            current_exe: Some(root.join("repo/target/debug/deps/cm_agent-123")),
            path: Some(std::env::join_paths([root.join("nothing"), root.join("bin")]).unwrap()),
        };
        assert_eq!(search.resolve().unwrap(), project);
        let outside = Search {
            current_exe: Some(root.join("elsewhere/cm-agent")),
            ..search.clone()
        };
        assert_eq!(outside.resolve().unwrap(), on_path);
        let env = Search {
            env: Some(configured.clone().into_os_string()),
            ..search.clone()
        };
        assert_eq!(env.resolve().unwrap(), configured);
        let cfg = Search {
            configured: Some(configured.clone()),
            env: Some(root.join("missing").into_os_string()),
            ..search.clone()
        };
        assert_eq!(cfg.resolve().unwrap(), configured);
    }

    #[test]
    fn missing_binary_says_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let none = Search {
            current_exe: Some(tmp.path().join("cm-agent")),
            path: Some(tmp.path().as_os_str().to_owned()),
            ..Search::default()
        };
        let err = none.resolve().unwrap_err().to_string();
        assert_eq!(
            err,
            "OpenCode not found: run scripts/install-opencode.sh or set [opencode] binary"
        );
        let wrong = Search {
            configured: Some(tmp.path().join("nope")),
            ..none
        };
        let err = wrong.resolve().unwrap_err().to_string();
        assert!(
            err.contains("install-opencode.sh") && err.contains("[opencode] binary"),
            "{err}"
        );
        assert!(!err.contains(&tmp.path().display().to_string()), "{err}");
    }

    #[tokio::test]
    async fn version_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("opencode");
        exe(&p);
        assert_eq!(check_version(&p).await.unwrap(), "1.18.33");
    }
}
