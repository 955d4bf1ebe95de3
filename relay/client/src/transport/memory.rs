//! Per-network memory of which transport reached a relay: on a network that drops UDP, the
//! next dial starts TCP at once instead of waiting for QUIC's head start.
//!
//! The network is the local source IP the OS routes to the relay (a laptop's Wi-Fi and its
//! phone hotspot differ) plus the relay address. [`Memory`] is the pure map; [`load`] and
//! [`save`] keep it in a JSON file (0600, written atomically), or in this process only when
//! there is no file.

use super::Transport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// How long a remembered TCP win counts (networks change their rules).
pub const MEMORY_TTL_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// At most this many networks are remembered; the oldest are forgotten first.
pub const MAX_REMEMBERED: usize = 256;

/// Which path won, as remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Won {
    /// QUIC over UDP.
    Quic,
    /// The TCP path (direct or through a proxy).
    Tcp,
}

impl From<Transport> for Won {
    fn from(t: Transport) -> Self {
        if t.is_tcp() { Self::Tcp } else { Self::Quic }
    }
}

/// One remembered outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The path that won.
    pub won: Won,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
}

/// The memory: network key → what won there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    networks: BTreeMap<String, Entry>,
}

/// The key of a network: the local source address toward the relay, and the relay address.
pub fn network_key(local: IpAddr, relay: SocketAddr) -> String {
    format!("{local} -> {relay}")
}

impl Memory {
    /// Whether TCP won last time on `key` (and not longer ago than [`MEMORY_TTL_MS`]).
    pub fn tcp_won(&self, key: &str, now_ms: u64) -> bool {
        self.networks
            .get(key)
            .is_some_and(|e| e.won == Won::Tcp && now_ms.saturating_sub(e.at_ms) <= MEMORY_TTL_MS)
    }

    /// What won on `key`, if remembered.
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.networks.get(key).copied()
    }

    /// Remembers that `won` won on `key` now; true when the outcome changed (worth saving).
    pub fn remember(&mut self, key: &str, won: Won, now_ms: u64) -> bool {
        let changed = self.networks.get(key).is_none_or(|e| e.won != won);
        // The time only matters for a TCP win (its expiry); refresh it at most hourly.
        let stale = self
            .networks
            .get(key)
            .is_some_and(|e| now_ms.saturating_sub(e.at_ms) > 60 * 60 * 1000);
        if changed || stale {
            self.networks
                .insert(key.to_owned(), Entry { won, at_ms: now_ms });
            self.forget_oldest();
        }
        changed || stale
    }

    fn forget_oldest(&mut self) {
        while self.networks.len() > MAX_REMEMBERED {
            let oldest = self
                .networks
                .iter()
                .min_by_key(|(_, e)| e.at_ms)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.networks.remove(&k),
                None => break,
            };
        }
    }
}

/// Why a memory file was not used.
#[derive(Debug, thiserror::Error)]
pub enum MemoryFileError {
    /// Unreadable or unwritable.
    #[error("transport memory {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// Not a memory file.
    #[error("transport memory {path} is not valid (it is ignored and rewritten): {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads the memory file; a missing file is an empty memory.
///
/// # Errors
/// An unreadable or corrupt file (the caller warns and starts from an empty memory).
pub(crate) fn load(path: &Path) -> Result<Memory, MemoryFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Memory::default()),
        Err(source) => {
            return Err(MemoryFileError::Io {
                path: path.display().to_string(),
                source,
            });
        }
    };
    serde_json::from_str(&text).map_err(|e| MemoryFileError::Corrupt {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Writes the memory file: a 0600 temporary file in the same folder, renamed over the old one.
///
/// # Errors
/// The folder or file cannot be written.
pub(crate) fn save(path: &Path, memory: &Memory) -> Result<(), MemoryFileError> {
    use std::io::Write;
    let io = |p: &Path, source| MemoryFileError::Io {
        path: p.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("transport");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let json = serde_json::to_vec_pretty(memory).map_err(|e| {
        io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(&json).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn key(local: &str) -> String {
        network_key(local.parse().unwrap(), "192.0.2.7:7443".parse().unwrap())
    }

    #[test]
    fn a_tcp_win_counts_only_on_the_network_it_happened_on() {
        let mut m = Memory::default();
        assert!(m.remember(&key("10.0.0.5"), Won::Tcp, NOW));
        assert!(m.tcp_won(&key("10.0.0.5"), NOW + 1));
        // The phone hotspot: another source address, no memory yet.
        assert!(!m.tcp_won(&key("172.20.10.2"), NOW + 1));
        // Another relay from the same network.
        let other = network_key(
            "10.0.0.5".parse().unwrap(),
            "192.0.2.8:7443".parse().unwrap(),
        );
        assert!(!m.tcp_won(&other, NOW + 1));
    }

    #[test]
    fn a_later_quic_win_replaces_the_tcp_win() {
        let mut m = Memory::default();
        m.remember(&key("10.0.0.5"), Won::Tcp, NOW);
        assert!(m.remember(&key("10.0.0.5"), Won::Quic, NOW + 5));
        assert!(!m.tcp_won(&key("10.0.0.5"), NOW + 6));
        assert!(
            !m.remember(&key("10.0.0.5"), Won::Quic, NOW + 7),
            "nothing changed"
        );
    }

    #[test]
    fn an_old_tcp_win_expires() {
        let mut m = Memory::default();
        m.remember(&key("10.0.0.5"), Won::Tcp, NOW);
        assert!(!m.tcp_won(&key("10.0.0.5"), NOW + MEMORY_TTL_MS + 1));
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_the_oldest() {
        let mut m = Memory::default();
        for i in 0..=MAX_REMEMBERED as u64 {
            m.remember(&format!("net {i}"), Won::Tcp, NOW + i);
        }
        assert_eq!(m.networks.len(), MAX_REMEMBERED);
        assert!(m.get("net 0").is_none());
        assert!(m.get(&format!("net {MAX_REMEMBERED}")).is_some());
    }

    #[test]
    fn the_file_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("transport.json");
        assert_eq!(
            load(&path).unwrap(),
            Memory::default(),
            "a missing file is empty"
        );
        let mut m = Memory::default();
        m.remember(&key("10.0.0.5"), Won::Tcp, NOW);
        save(&path, &m).unwrap();
        assert_eq!(load(&path).unwrap(), m);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_corrupt_file_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transport.json");
        std::fs::write(&path, "{ not json").unwrap();
        let err = load(&path).unwrap_err();
        assert!(matches!(err, MemoryFileError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("ignored"), "{err}");
    }
}
