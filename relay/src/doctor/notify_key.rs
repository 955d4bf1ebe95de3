//! `cm-relay doctor`'s check of the notification secret key (`[notify] secret_key_file`): the
//! file is private, is a key, and opens every channel secret in the store. In a fleet every
//! relay must hold the same file; a relay with another one (or none) cannot deliver the
//! channels sealed elsewhere, and before this check that only showed as `BROKEN` rows.

use crate::finding::Finding;
use crate::notify::sealing::{KEY_LEN, SealError, Sealer};
use crate::state::StateDir;
use crate::store::Store;
use ring::rand::{SecureRandom, SystemRandom};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const CHECK: &str = "notify key";

/// How many channels the store holds, and those whose secret `sealer` does not open
/// (`user/name` each).
fn not_opened(store: &Store, sealer: &Sealer) -> Result<(usize, Vec<String>), Finding> {
    let rows = store
        .notify_channels(None, sealer)
        .map_err(|e| Finding::fail(CHECK, format!("reading the channels: {e}")))?;
    let names = rows
        .iter()
        .filter(|r| matches!(&r.spec, Err(why) if SealError::is_wrong_key_text(why)))
        .map(|r| format!("{}/{}", r.user, r.name))
        .collect();
    Ok((rows.len(), names))
}

/// At most the first three of `names`, and how many more.
fn listed(names: &[String]) -> String {
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    match names.len().saturating_sub(3) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// The finding for the key at `path`, checked against the channels in `dir`'s store. Never
/// creates the key (the relay does that at the first channel with a secret).
pub fn notify_key(dir: &StateDir, path: &Path) -> Finding {
    let shown = path.display();
    // Without a store the database check says what is wrong with it.
    let Ok(store) = dir.open_store() else {
        return Finding::ok(CHECK, format!("{shown} (channels not checked: no store)"));
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // With a throwaway key, exactly the rows with a sealed secret fail to open.
            let mut throwaway = [0u8; KEY_LEN];
            if SystemRandom::new().fill(&mut throwaway).is_err() {
                return Finding::fail(CHECK, "the OS random source failed");
            }
            let (_, sealed) = match not_opened(&*store, &Sealer::with_key(throwaway)) {
                Ok(counted) => counted,
                Err(finding) => return finding,
            };
            if sealed.is_empty() {
                Finding::ok(
                    CHECK,
                    format!(
                        "{shown} not created yet: the relay creates it (0600) at the first channel with a secret; in a fleet, copy that one file to every relay"
                    ),
                )
            } else {
                Finding::fail(
                    CHECK,
                    format!(
                        "{shown} is missing, but {} channel secret(s) are sealed ({}): copy notify.key (mode 0600) from the relay that added them, or set [notify] secret_key_file to it",
                        sealed.len(),
                        listed(&sealed)
                    ),
                )
            }
        }
        Err(e) => Finding::fail(
            CHECK,
            format!("{shown}: {e}; check [notify] secret_key_file in relay.toml"),
        ),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Finding::fail(
            CHECK,
            format!(
                "{shown} has mode {:o}: others can read the channels' secrets; run `chmod 600 {shown}`",
                meta.permissions().mode() & 0o777
            ),
        ),
        Ok(_) => {
            let sealer = Sealer::from_file(path);
            if let Err(e) = sealer.check_key() {
                return Finding::fail(CHECK, e.to_string());
            }
            let (channels, sealed) = match not_opened(&*store, &sealer) {
                Ok(counted) => counted,
                Err(finding) => return finding,
            };
            if sealed.is_empty() {
                Finding::ok(
                    CHECK,
                    format!("{shown} opens every stored channel secret ({channels} channels)"),
                )
            } else {
                Finding::fail(
                    CHECK,
                    format!(
                        "{shown} does not open {} channel secret(s) ({}): they were sealed by a relay with another key; copy that relay's notify.key here (every relay of a fleet uses the same file), or add those channels again",
                        sealed.len(),
                        listed(&sealed)
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ids::UserId;
    use proto::notify::{ChannelSpec, ChannelTarget};

    fn spec(name: &str, secret: Option<&str>) -> ChannelSpec {
        ChannelSpec {
            name: name.into(),
            target: ChannelTarget::Webhook {
                url: "https://hooks.example.com/h".into(),
            },
            secret: secret.map(str::to_owned),
            events: vec![],
            quiet: None,
            ignore_presence: false,
        }
    }

    fn relay_with_channels(sealer: &Sealer) -> (tempfile::TempDir, StateDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path().join("s"));
        crate::state::init(&dir, "127.0.0.1:7443", &UserId::from("owner")).unwrap();
        let store = dir.open_store().unwrap();
        store
            .notify_put("owner", &spec("plain", None), sealer, 8, 1)
            .unwrap();
        store
            .notify_put("owner", &spec("signed", Some("whsec_1")), sealer, 8, 1)
            .unwrap();
        (tmp, dir)
    }

    fn write_key(path: &Path, key: [u8; KEY_LEN], mode: u32) {
        std::fs::write(path, key).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_key_that_sealed_the_channels_passes_and_is_never_created_by_the_check() {
        let (_tmp, dir) = relay_with_channels(&Sealer::with_key([5; KEY_LEN]));
        let path = dir.root().join("notify.key");
        write_key(&path, [5; KEY_LEN], 0o600);
        let found = notify_key(&dir, &path);
        assert!(found.problem.is_none(), "{found:?}");
        assert!(found.line().contains("2 channels"), "{found:?}");

        // Without channel secrets and without a file: fine, and still no file afterwards.
        let tmp = tempfile::tempdir().unwrap();
        let empty = StateDir::new(tmp.path().join("s"));
        crate::state::init(&empty, "127.0.0.1:7443", &UserId::from("owner")).unwrap();
        let absent = empty.root().join("notify.key");
        let found = notify_key(&empty, &absent);
        assert!(found.problem.is_none(), "{found:?}");
        assert!(!absent.exists(), "the check must not create the key");
    }

    #[test]
    fn another_relays_key_a_missing_key_and_a_readable_key_each_say_what_to_do() {
        let (_tmp, dir) = relay_with_channels(&Sealer::with_key([5; KEY_LEN]));
        let path = dir.root().join("notify.key");

        let missing = notify_key(&dir, &path).line();
        assert!(
            missing.starts_with("FAIL  notify key")
                && missing.contains("is missing")
                && missing.contains("owner/signed")
                && !missing.contains("owner/plain"),
            "{missing}"
        );
        assert!(!path.exists(), "the check must not create the key");

        write_key(&path, [6; KEY_LEN], 0o600);
        let other = notify_key(&dir, &path).line();
        assert!(
            other.starts_with("FAIL  notify key")
                && other.contains("does not open 1 channel secret")
                && other.contains("owner/signed")
                && other.contains("copy that relay's notify.key"),
            "{other}"
        );

        write_key(&path, [5; KEY_LEN], 0o644);
        let readable = notify_key(&dir, &path).line();
        assert!(readable.contains("chmod 600"), "{readable}");
    }
}
