//! Reading a TOML configuration file into its typed form, with errors that name the file. Shared
//! by `relay.toml` (the relay) and `tui.toml` (`cm-tui`).

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Problems with a configuration file, naming it.
#[derive(Debug, thiserror::Error)]
pub enum TomlFileError {
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

impl TomlFileError {
    /// An invalid value in `path`.
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Reads and parses `path` (the TOML parser names the key and line of a bad value).
///
/// # Errors
/// An unreadable file or invalid TOML for `T`.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, TomlFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TomlFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| TomlFileError::invalid(path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct F {
        #[allow(dead_code, reason = "parsed only")]
        a: Option<u32>,
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let e = read_toml::<F>(&missing).unwrap_err();
        assert!(matches!(e, TomlFileError::Read { .. }), "{e}");
        assert!(e.to_string().contains("missing.toml"), "{e}");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "b = 1\n").unwrap();
        let e = read_toml::<F>(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains('b'), "{e}");
    }
}
