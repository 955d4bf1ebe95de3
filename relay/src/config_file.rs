//! `relay.toml`: the relay's configuration file. Precedence: command-line flag, then `CM_RELAY_*`
//! environment variable, then this file, then the built-in default. Unknown keys are an error
//! that names the key and the file. Every key is documented in `docs/relay.example.toml`.

use crate::config::{NotifyConfig, StoreConfig};
use crate::fleet_config::{DEFAULT_PEER_PORT, FleetConfig, RelayId};
use crate::notify::targets::{AllowEntry, TargetPolicy};
use crate::store::PgConfig;
use crate::time::parse_duration;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the file is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/codemantle/relay.toml";

/// The file as written. All keys are optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayFile {
    /// State directory.
    pub state_dir: Option<PathBuf>,
    /// UDP listen address.
    pub listen: Option<String>,
    /// TCP listen address (QUIC in TLS over TCP), or `"off"`.
    pub listen_tcp: Option<String>,
    /// Open TCP tunnel connections one client address may hold.
    pub tcp_connections_per_address: Option<usize>,
    /// Offline after this long without a heartbeat.
    pub heartbeat_timeout: Option<String>,
    /// QUIC idle timeout.
    pub idle_timeout: Option<String>,
    /// Handshake deadline.
    pub handshake_timeout: Option<String>,
    /// Default login credential lifetime.
    pub credential_ttl: Option<String>,
    /// Hard maximum login credential lifetime.
    pub max_credential_ttl: Option<String>,
    /// How long shutdown drains connections.
    pub drain_timeout: Option<String>,
    /// How long a prompt for an offline host is kept.
    pub queue_expiry: Option<String>,
    /// Record the full text of prompts in the audit trail instead of their BLAKE3 hash.
    pub audit_prompt_text: Option<bool>,
    /// Cap on concurrent argon2 password checks (each takes 19 MiB).
    pub max_password_checks: Option<usize>,
    /// `[store]`: which backend holds the relay's state.
    pub store: Option<StoreFile>,
    /// `[fleet]`: this relay is one of several sharing one PostgreSQL.
    pub fleet: Option<FleetFile>,
    /// `[notify]`: where notifications may be sent, and the key sealing their secrets.
    pub notify: Option<NotifyFile>,
}

/// `[notify]` of `relay.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFile {
    /// Let notifications reach loopback, private, link-local… addresses (default false).
    pub allow_private_targets: Option<bool>,
    /// Host names or addresses notifications may reach although they are not public.
    pub allow_hosts: Option<Vec<String>>,
    /// The key channel secrets are sealed with (default `<state dir>/notify.key`).
    pub secret_key_file: Option<PathBuf>,
}

/// `[fleet]` of `relay.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    /// This relay's id in the fleet (as registered by `cm-relay cluster add --id`).
    pub id: Option<String>,
    /// UDP address of the relay-to-relay endpoint (default `0.0.0.0:7444`).
    pub peer_listen: Option<String>,
}

/// `[store]` of `relay.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    /// `sqlite` (default) or `postgres`.
    pub backend: Option<String>,
    /// `postgres://…` (backend `postgres`).
    pub url: Option<String>,
    /// PEM certificates the PostgreSQL server's certificate must chain to (TLS).
    pub ca_file: Option<PathBuf>,
}

/// Problems with the file, naming it.
pub use crate::toml_file::TomlFileError as ConfigFileError;

impl RelayFile {
    /// Loads `explicit` (which must exist), else [`DEFAULT_PATH`] if it exists, else defaults.
    ///
    /// # Errors
    /// An explicit file that is missing, or any file that is invalid.
    pub fn load(explicit: Option<&Path>) -> Result<(Self, Option<PathBuf>), ConfigFileError> {
        let path = match explicit {
            Some(p) => p.to_owned(),
            None if Path::new(DEFAULT_PATH).exists() => PathBuf::from(DEFAULT_PATH),
            None => return Ok((Self::default(), None)),
        };
        let file: Self = crate::toml_file::read_toml(&path)?;
        file.validate(&path)?;
        Ok((file, Some(path)))
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigFileError> {
        let invalid = |key: &str, e: String| ConfigFileError::Invalid {
            path: path.to_owned(),
            message: format!("{key}: {e}"),
        };
        if let Some(l) = &self.listen {
            l.parse::<SocketAddr>().map_err(|e| {
                invalid(
                    "listen",
                    format!("{l:?} is not an address like 0.0.0.0:7443 ({e})"),
                )
            })?;
        }
        if let Some(l) = &self.listen_tcp {
            l.parse::<crate::config::ListenTcp>()
                .map_err(|e| invalid("listen_tcp", e))?;
        }
        if self.tcp_connections_per_address == Some(0) {
            return Err(invalid(
                "tcp_connections_per_address",
                "must be at least 1 (the default is 64)".into(),
            ));
        }
        for (key, v) in [
            ("heartbeat_timeout", &self.heartbeat_timeout),
            ("idle_timeout", &self.idle_timeout),
            ("handshake_timeout", &self.handshake_timeout),
            ("credential_ttl", &self.credential_ttl),
            ("max_credential_ttl", &self.max_credential_ttl),
            ("drain_timeout", &self.drain_timeout),
            ("queue_expiry", &self.queue_expiry),
        ] {
            if let Some(v) = v {
                parse_duration(v).map_err(|e| invalid(key, e))?;
            }
        }
        self.store_config().map_err(|e| invalid("store", e))?;
        self.fleet_config().map_err(|e| invalid("fleet", e))?;
        self.notify_config().map_err(|e| invalid("notify", e))?;
        Ok(())
    }

    /// What `[notify]` says (public targets only and the default key file when absent).
    ///
    /// # Errors
    /// An `allow_hosts` entry that is neither a host name nor an address.
    pub fn notify_config(&self) -> Result<NotifyConfig, String> {
        let Some(notify) = &self.notify else {
            return Ok(NotifyConfig::default());
        };
        let allow_hosts = notify
            .allow_hosts
            .iter()
            .flatten()
            .map(|h| AllowEntry::parse(h))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NotifyConfig {
            targets: TargetPolicy {
                allow_private: notify.allow_private_targets.unwrap_or(false),
                allow_hosts,
            },
            secret_key_file: notify.secret_key_file.clone(),
        })
    }

    /// The store `[store]` selects (SQLite when the table is absent).
    ///
    /// # Errors
    /// An unknown backend, `postgres` without `url`, or a URL that does not parse.
    pub fn store_config(&self) -> Result<StoreConfig, String> {
        let Some(store) = &self.store else {
            return Ok(StoreConfig::Sqlite);
        };
        match store.backend.as_deref().unwrap_or("sqlite") {
            "sqlite" => Ok(StoreConfig::Sqlite),
            "postgres" => {
                let url = store.url.clone().ok_or(
                    "backend \"postgres\" needs url = \"postgres://user@host:5432/database\"",
                )?;
                let pg = PgConfig {
                    url,
                    ca_file: store.ca_file.clone(),
                };
                pg.check().map_err(|e| e.to_string())?;
                Ok(StoreConfig::Postgres(pg))
            }
            other => Err(format!(
                "backend {other:?} is not known: use \"sqlite\" or \"postgres\""
            )),
        }
    }

    /// The fleet membership `[fleet]` describes (`None` when the table is absent).
    ///
    /// # Errors
    /// A missing or malformed `id`, a bad `peer_listen`, or a fleet on the SQLite backend.
    pub fn fleet_config(&self) -> Result<Option<FleetConfig>, String> {
        let Some(fleet) = &self.fleet else {
            return Ok(None);
        };
        let id = fleet.id.clone().ok_or(
            "needs id = \"<this relay's name>\" (as given to `cm-relay cluster add --id`)",
        )?;
        if !proto::ids::is_valid_name(&id) {
            return Err(format!(
                "id {id:?} is not a plain name: use letters, digits, '-', '_' or '.'"
            ));
        }
        let peer_listen = match &fleet.peer_listen {
            None => SocketAddr::from(([0, 0, 0, 0], DEFAULT_PEER_PORT)),
            Some(l) => l.parse().map_err(|e| {
                format!("peer_listen {l:?} is not an address like 0.0.0.0:7444 ({e})")
            })?,
        };
        if !matches!(self.store_config()?, StoreConfig::Postgres(_)) {
            return Err(
                "a fleet shares one PostgreSQL: set [store] backend = \"postgres\" and url".into(),
            );
        }
        Ok(Some(FleetConfig {
            id: RelayId(id),
            peer_listen,
        }))
    }

    /// The listen address, if set (validated at load).
    pub fn listen(&self) -> Option<SocketAddr> {
        self.listen.as_deref().and_then(|l| l.parse().ok())
    }

    /// The TCP listen setting, if set (validated at load).
    pub fn listen_tcp(&self) -> Option<crate::config::ListenTcp> {
        self.listen_tcp.as_deref().and_then(|l| l.parse().ok())
    }

    /// A duration key, if set (validated at load).
    pub fn duration(value: &Option<String>) -> Option<Duration> {
        value.as_deref().and_then(|v| parse_duration(v).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key documented in docs/relay.example.toml is a real key with a valid example.
    #[test]
    fn documented_example_is_accepted_with_every_key_uncommented() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/relay.example.toml");
        let text = std::fs::read_to_string(&example).unwrap();
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(uncommented.matches(" = ").count() >= 8, "{uncommented}");
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("relay.toml");
        std::fs::write(&p, uncommented).unwrap();
        let (f, _) = RelayFile::load(Some(&p)).unwrap();
        assert_eq!(f.listen(), Some("0.0.0.0:7443".parse().unwrap()));
        assert_eq!(
            f.listen_tcp(),
            Some(crate::config::ListenTcp::At("0.0.0.0:443".parse().unwrap()))
        );
        assert_eq!(
            RelayFile::duration(&f.max_credential_ttl),
            Some(Duration::from_secs(7 * 86_400))
        );
    }

    #[test]
    fn the_store_table_selects_the_backend_and_bad_values_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("relay.toml");
        let load = |text: &str| {
            std::fs::write(&p, text).unwrap();
            RelayFile::load(Some(&p)).map(|(f, _)| f.store_config().unwrap())
        };
        assert_eq!(load("").unwrap(), StoreConfig::Sqlite);
        assert_eq!(
            load("[store]\nbackend = \"sqlite\"\n").unwrap(),
            StoreConfig::Sqlite
        );
        let url = "postgres://cm@db:5432/cm";
        assert_eq!(
            load(&format!(
                "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n"
            ))
            .unwrap(),
            StoreConfig::Postgres(PgConfig {
                url: url.into(),
                ca_file: None
            })
        );
        for (text, says) in [
            ("[store]\nbackend = \"mysql\"\n", "mysql"),
            ("[store]\nbackend = \"postgres\"\n", "needs url"),
            (
                "[store]\nbackend = \"postgres\"\nurl = \"postgres://a@b/c?sslmode=bogus\"\n",
                "url",
            ),
            (
                "[store]\nbackend = \"postgres\"\nurl = \"postgres://a@b/c?sslmode=require\"\n",
                "ca_file",
            ),
            ("[store]\nbakend = \"sqlite\"\n", "bakend"),
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(
                err.contains(says) && err.contains("relay.toml"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn the_notify_table_allows_private_targets_only_when_it_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("relay.toml");
        let load = |text: &str| {
            std::fs::write(&p, text).unwrap();
            RelayFile::load(Some(&p)).map(|(f, _)| f.notify_config().unwrap())
        };
        let default = load("").unwrap();
        assert_eq!(default, NotifyConfig::default());
        assert!(!default.targets.allow_private && default.targets.allow_hosts.is_empty());
        let c = load(
            "[notify]\nallow_hosts = [\"ntfy.lan\", \"10.0.0.5\"]\nsecret_key_file = \"/etc/cm/notify.key\"\n",
        )
        .unwrap();
        assert_eq!(
            c.targets.allow_hosts,
            [
                AllowEntry::Name("ntfy.lan".into()),
                AllowEntry::Addr("10.0.0.5".parse().unwrap())
            ]
        );
        assert_eq!(c.secret_key_file, Some(PathBuf::from("/etc/cm/notify.key")));
        assert!(
            load("[notify]\nallow_private_targets = true\n")
                .unwrap()
                .targets
                .allow_private
        );
        for (text, says) in [
            (
                "[notify]\nallow_hosts = [\"http://x\"]\n",
                "allow_hosts entry",
            ),
            ("[notify]\nallow_private = true\n", "allow_private"),
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(
                err.contains(says) && err.contains("relay.toml"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("relay.toml");
        std::fs::write(&p, "listen = \"0.0.0.0:7443\"\nlisten_port = 7443\n").unwrap();
        let err = RelayFile::load(Some(&p)).unwrap_err().to_string();
        assert!(
            err.contains("listen_port") && err.contains("relay.toml"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_named_and_good_ones_parse() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("relay.toml");
        std::fs::write(&p, "heartbeat_timeout = \"soon\"\n").unwrap();
        let err = RelayFile::load(Some(&p)).unwrap_err().to_string();
        assert!(err.contains("heartbeat_timeout"), "{err}");
        std::fs::write(&p, "listen_tcp = \"everywhere\"\n").unwrap();
        let err = RelayFile::load(Some(&p)).unwrap_err().to_string();
        assert!(
            err.contains("listen_tcp") && err.contains("\"off\""),
            "{err}"
        );
        std::fs::write(&p, "listen_tcp = \"off\"\n").unwrap();
        let (f, _) = RelayFile::load(Some(&p)).unwrap();
        assert_eq!(f.listen_tcp(), Some(crate::config::ListenTcp::Off));
        std::fs::write(&p, "listen = \"127.0.0.1:9000\"\ncredential_ttl = \"8h\"\n").unwrap();
        let (f, path) = RelayFile::load(Some(&p)).unwrap();
        assert_eq!(path.as_deref(), Some(p.as_path()));
        assert_eq!(f.listen(), Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(
            RelayFile::duration(&f.credential_ttl),
            Some(Duration::from_secs(8 * 3600))
        );
        assert!(RelayFile::load(Some(&tmp.path().join("missing.toml"))).is_err());
    }
}
