//! `tui.toml`: the operator app's configuration file (`~/.config/codemantle/tui.toml`, or
//! `--config` / `CM_TUI_CONFIG`). Precedence per setting: flag or environment variable, then this
//! file, then the default. Unknown keys are an error that names the key and the file. Every key
//! is documented in `docs/tui.example.toml`.

use crate::keymap::{Keymap, KeymapError};
use crate::ui::theme::{COLOR_NAMES, Colors, parse_color};
use serde::Deserialize;
use std::collections::BTreeMap;
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
    /// A program (and its arguments) run on new attention, with the details in environment
    /// variables; never through a shell.
    pub notify_command: Option<Vec<String>>,
    /// The relay profile used when `--relay` is not given.
    pub default_relay: Option<String>,
    /// Named relay profiles, each a login of its own (`:relay NAME` switches).
    pub relays: Option<BTreeMap<String, RelayProfile>>,
    /// Key overrides: action name → a key or a list of keys.
    pub keys: Option<BTreeMap<String, KeysValue>>,
    /// Colours.
    pub theme: Option<ThemeFile>,
    /// `auto` (race QUIC and TCP), `quic` or `tcp` (`CM_TRANSPORT` wins).
    pub transport: Option<String>,
    /// The relay's TCP address(es), `host:port[,…]` (`CM_RELAY_TCP` wins).
    pub relay_tcp: Option<String>,
    /// An HTTP CONNECT proxy, `http://[user:pass@]host:port` or `none` (`CM_PROXY` wins; else
    /// `HTTPS_PROXY` unless `NO_PROXY` matches).
    pub proxy: Option<String>,
    /// QUIC's head start before TCP starts beside it, in ms.
    pub tcp_delay_ms: Option<u64>,
    /// While on TCP, how often QUIC is tried again, in seconds.
    pub quic_probe_secs: Option<u64>,
    /// Without a key press for this long (seconds), the TUI stops telling the relay you watch
    /// the session on screen, so its notifications reach you again.
    pub presence_idle_secs: Option<u64>,
}

/// One relay profile: where its login lives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayProfile {
    /// The state directory of this relay's login (`cm-tui --relay NAME login …` fills it).
    pub state_dir: PathBuf,
}

/// One key or several for an action.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum KeysValue {
    /// `abort = "ctrl-a"`.
    One(String),
    /// `abort = ["ctrl-a", "f"]`.
    Many(Vec<String>),
}

/// `[theme]`: colour names or `#rrggbb`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeFile {
    /// Titles, key names, headings.
    pub accent: Option<String>,
    /// Online, connected, done, added lines.
    pub ok: Option<String>,
    /// Reconnecting, attention, running tools.
    pub warn: Option<String>,
    /// Offline, failures, removed lines.
    pub error: Option<String>,
    /// Borders and secondary text.
    pub muted: Option<String>,
}

/// Problems with the file, naming it.
pub use cm_client::toml_file::TomlFileError as TuiConfigError;

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
        let file: Self = cm_client::toml_file::read_toml(&path)?;
        if let Some(c) = &file.color
            && !matches!(c.as_str(), "auto" | "always" | "never")
        {
            return Err(TuiConfigError::Invalid {
                path,
                message: format!("color = {c:?}: use auto, always or never"),
            });
        }
        let invalid = |message: String| TuiConfigError::Invalid {
            path: path.clone(),
            message,
        };
        file.keymap().map_err(|e| invalid(e.to_string()))?;
        file.transport_keys().validate().map_err(invalid)?;
        file.colors().map_err(invalid)?;
        if file.notify_command.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid(
                "notify_command = []: give the program and its arguments, e.g. \
                 [\"notify-send\", \"CodeMantle\"], or leave it out"
                    .into(),
            ));
        }
        if file.presence_idle_secs == Some(0) {
            return Err(invalid(
                "presence_idle_secs = 0: give the seconds without a key press after which \
                 nobody counts as watching, e.g. 300, or leave it out"
                    .into(),
            ));
        }
        if let Some(name) = &file.default_relay
            && !file.relay_names().contains(name)
        {
            return Err(invalid(format!(
                "default_relay = {name:?}: no [relays.{name}] in this file"
            )));
        }
        Ok(file)
    }

    /// The transport keys as written (the environment is applied by
    /// [`crate::profile::Logins::use_transport`]).
    pub fn transport_keys(&self) -> cm_client::transport::TransportKeys {
        cm_client::transport::TransportKeys {
            transport: self.transport.clone(),
            relay_tcp: self.relay_tcp.clone(),
            proxy: self.proxy.clone(),
            tcp_delay_ms: self.tcp_delay_ms,
            quic_probe_secs: self.quic_probe_secs,
        }
    }

    /// The keymap: the defaults with `[keys]` applied.
    ///
    /// # Errors
    /// An unknown action, an unreadable key, or a key bound twice (naming the key).
    pub fn keymap(&self) -> Result<Keymap, KeymapError> {
        let pairs: Vec<(String, Vec<String>)> = self
            .keys
            .iter()
            .flatten()
            .map(|(action, keys)| {
                let keys = match keys {
                    KeysValue::One(k) => vec![k.clone()],
                    KeysValue::Many(ks) => ks.clone(),
                };
                (action.clone(), keys)
            })
            .collect();
        Keymap::with_overrides(&pairs)
    }

    /// The colours: the defaults with `[theme]` applied.
    ///
    /// # Errors
    /// A colour that is neither a known name nor `#rrggbb`, naming the key.
    pub fn colors(&self) -> Result<Colors, String> {
        let mut colors = Colors::default();
        let Some(theme) = &self.theme else {
            return Ok(colors);
        };
        let slots = [
            ("accent", &theme.accent, &mut colors.accent),
            ("ok", &theme.ok, &mut colors.ok),
            ("warn", &theme.warn, &mut colors.warn),
            ("error", &theme.error, &mut colors.error),
            ("muted", &theme.muted, &mut colors.muted),
        ];
        for (key, value, slot) in slots {
            if let Some(text) = value {
                *slot = parse_color(text).ok_or_else(|| {
                    format!(
                        "theme.{key} = {text:?}: use #rrggbb or one of {}",
                        COLOR_NAMES.join(", ")
                    )
                })?;
            }
        }
        Ok(colors)
    }

    /// The relay profile names, sorted.
    pub fn relay_names(&self) -> Vec<String> {
        self.relays
            .iter()
            .flatten()
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The state directory of relay profile `name`.
    ///
    /// # Errors
    /// No such profile (the message lists the known ones).
    pub fn relay_state_dir(&self, name: &str) -> Result<PathBuf, String> {
        match self.relays.as_ref().and_then(|r| r.get(name)) {
            Some(p) => Ok(p.state_dir.clone()),
            None if self.relay_names().is_empty() => Err(format!(
                "no relay profile {name:?}: add [relays.{name}] with a state_dir to tui.toml"
            )),
            None => Err(format!(
                "no relay profile {name:?} in tui.toml; known: {}",
                self.relay_names().join(", ")
            )),
        }
    }

    /// How long without a key press before nobody counts as watching: the file, else
    /// [`crate::notify_focus::IDLE_AFTER_MS`].
    pub fn presence_idle(&self) -> std::time::Duration {
        self.presence_idle_secs.map_or(
            std::time::Duration::from_millis(crate::notify_focus::IDLE_AFTER_MS),
            std::time::Duration::from_secs,
        )
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
                Some(rest)
                    if (rest.contains(" = ") || rest.starts_with('['))
                        && !rest.starts_with(' ') =>
                {
                    rest
                }
                _ => l,
            })
            .collect();
        assert!(uncommented.iter().filter(|l| l.contains(" = ")).count() >= 10);
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("tui.toml");
        std::fs::write(&p, uncommented.join("\n")).unwrap();
        let f = TuiFile::load(Some(&p)).unwrap();
        assert_eq!(f.bell, Some(true));
        assert_eq!(f.presence_idle_secs, Some(300));
        let transport = f.transport_keys().validate().unwrap();
        assert_eq!(
            transport.relay_tcp.as_deref(),
            Some("relay.example.com:443")
        );
        assert!(f.notify_command.is_some());
        assert!(f.relay_state_dir("work").is_ok());
        assert!(f.default_relay.is_some());
        let keymap = f.keymap().unwrap();
        assert_ne!(keymap, Keymap::default(), "[keys] example applies");
        assert!(f.theme.is_some());
        assert_eq!(
            f.colors().unwrap(),
            Colors::default(),
            "the example shows the defaults"
        );
    }

    fn load(text: &str) -> Result<TuiFile, String> {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let p = tmp.path().join("tui.toml");
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        TuiFile::load(Some(&p)).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_theme_relays_and_hook_are_checked_naming_the_key() {
        let err = load("[keys]\nabortt = \"x\"\n").unwrap_err();
        assert!(err.contains("keys.abortt: no such action"), "{err}");
        let err = load("[keys]\nabort = \"q\"\n").unwrap_err();
        assert!(
            err.contains("keys.abort = \"q\": q is already bound to quit"),
            "{err}"
        );
        let err = load("[theme]\naccent = \"pinkish\"\n").unwrap_err();
        assert!(err.contains("theme.accent = \"pinkish\""), "{err}");
        let err = load("notify_command = []\n").unwrap_err();
        assert!(err.contains("notify_command"), "{err}");
        let err = load("presence_idle_secs = 0\n").unwrap_err();
        assert!(err.contains("presence_idle_secs = 0"), "{err}");
        assert_eq!(
            load("presence_idle_secs = 90\n").unwrap().presence_idle(),
            std::time::Duration::from_secs(90)
        );
        assert_eq!(
            TuiFile::default().presence_idle(),
            std::time::Duration::from_secs(300)
        );
        let err = load("default_relay = \"work\"\n").unwrap_err();
        assert!(err.contains("no [relays.work]"), "{err}");
        let f =
            load("[relays.a]\nstate_dir = \"/x\"\n[keys]\nabort = [\"ctrl-a\", \"F\"]\n").unwrap();
        assert_eq!(f.relay_names(), ["a"]);
        let err = f.relay_state_dir("b").unwrap_err();
        assert!(err.contains("known: a"), "{err}");
        assert_eq!(
            f.keymap().unwrap().keys_of(
                crate::keymap::Context::Session,
                crate::action::Action::Abort
            ),
            "Ctrl-A/F"
        );
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
