//! `tui.toml`: the operator app's configuration file (`~/.config/codemantle/tui.toml`, or
//! `--config` / `CM_TUI_CONFIG`). Precedence per setting: flag or environment variable, then this
//! file, then the default. Unknown keys are an error that names the key and the file. Every key
//! is documented in `docs/tui.example.toml`.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file as written. All keys are optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuiFile {
    /// Where the login profile (and the credential fallback file) live.
    pub state_dir: Option<PathBuf>,
    /// `auto`, `secret-service` or `file`.
    pub secret_store: Option<String>,
    /// Ring the terminal bell when something new needs you.
    pub bell: Option<bool>,
    /// `auto` (colour unless `NO_COLOR`), `always` or `never`.
    pub color: Option<String>,
}

/// Problems with the file, naming it.
#[derive(Debug, thiserror::Error)]
pub enum TuiConfigError {
    /// Unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Invalid (syntax, unknown key, bad value).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The default location: `$XDG_CONFIG_HOME/codemantle/tui.toml`.
pub fn default_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.config_dir().join("codemantle/tui.toml"))
}

impl TuiFile {
    /// Loads `explicit` (which must exist), else the default path if it exists, else defaults.
    ///
    /// # Errors
    /// An explicit file that is missing, or any file that is invalid.
    pub fn load(explicit: Option<&Path>) -> Result<Self, TuiConfigError> {
        let path = match explicit {
            Some(p) => p.to_owned(),
            None => match default_path().filter(|p| p.exists()) {
                Some(p) => p,
                None => return Ok(Self::default()),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| TuiConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file: Self = toml::from_str(&text).map_err(|e| TuiConfigError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if let Some(c) = &file.color
            && !matches!(c.as_str(), "auto" | "always" | "never")
        {
            return Err(TuiConfigError::Invalid {
                path,
                message: format!("color = {c:?}: use auto, always or never"),
            });
        }
        Ok(file)
    }

    /// Whether to ring the bell: `CM_TUI_BELL` (0/off/false/no), then the file, then yes.
    pub fn bell(&self, env: Option<&str>) -> bool {
        match env {
            Some(v) => !matches!(v, "0" | "off" | "false" | "no"),
            None => self.bell.unwrap_or(true),
        }
    }

    /// Whether to use colour: `NO_COLOR` (non-empty) wins, then the file, then yes.
    pub fn color(&self, no_color: Option<&str>) -> bool {
        if no_color.is_some_and(|v| !v.is_empty()) {
            return false;
        }
        !matches!(self.color.as_deref(), Some("never"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key documented in docs/tui.example.toml is real and valid when uncommented.
    #[test]
    fn documented_example_is_accepted_with_every_key_uncommented() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/tui.example.toml");
        let text = std::fs::read_to_string(example).unwrap();
        let uncommented: Vec<&str> = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .collect();
        assert!(uncommented.iter().filter(|l| l.contains(" = ")).count() >= 4);
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("tui.toml");
        std::fs::write(&p, uncommented.join("\n")).unwrap();
        let f = TuiFile::load(Some(&p)).unwrap();
        assert_eq!(f.bell, Some(true));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("tui.toml");
        std::fs::write(&p, "bel = false\n").unwrap();
        let err = TuiFile::load(Some(&p)).unwrap_err().to_string();
        assert!(err.contains("bel") && err.contains("tui.toml"), "{err}");
        std::fs::write(&p, "color = \"pink\"\n").unwrap();
        let err = TuiFile::load(Some(&p)).unwrap_err().to_string();
        assert!(err.contains("use auto, always or never"), "{err}");
    }

    #[test]
    fn precedence_env_then_file_then_default() {
        let f = TuiFile {
            bell: Some(false),
            color: Some("never".into()),
            ..TuiFile::default()
        };
        assert!(!f.bell(None));
        assert!(f.bell(Some("1")));
        assert!(!TuiFile::default().bell(Some("off")));
        assert!(TuiFile::default().bell(None));
        assert!(!f.color(None));
        assert!(!TuiFile::default().color(Some("1")));
        assert!(TuiFile::default().color(Some("")));
    }
}
