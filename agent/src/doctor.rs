//! `cm-agent doctor`: checks the agent's setup (config, roots, OpenCode, secret, relay, clock)
//! and says, one line per problem, what to do. It never authenticates, so a running agent's
//! connection is left alone.

use crate::config::ConfigFile;
use crate::enroll;
use crate::opencode::binary::{self, Search};
use cm_relay::client::{self, LinkError};
pub use cm_relay::finding::Finding;
use proto::handshake::MAX_CLOCK_SKEW_MS;
use std::path::Path;

/// Warn well before the handshake's hard ±30 s limit.
const SKEW_WARN_MS: u64 = MAX_CLOCK_SKEW_MS / 3;

/// Runs every check.
pub async fn check(config_path: &Path, state_dir: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    // The configuration `cm-agent run` would use: the file with the CM_AGENT_* overrides.
    let config = match ConfigFile::load_effective(config_path) {
        Ok(c) => {
            out.push(Finding::ok("config", config_path.display().to_string()));
            c
        }
        Err(e) => {
            out.push(Finding::fail("config", e.to_string()));
            return out;
        }
    };
    if config.workspaces.is_empty() {
        out.push(Finding::fail(
            "workspaces",
            format!(
                "none configured; add a [[workspace]] with name and path to {}",
                config_path.display()
            ),
        ));
    }
    for w in &config.workspaces {
        match std::fs::read_dir(&w.root) {
            Ok(_) => out.push(Finding::ok(
                "workspace",
                format!("{} → {}", w.name, w.root.display()),
            )),
            Err(e) => out.push(Finding::fail(
                "workspace",
                format!(
                    "{}: root {} is not readable ({e}); create it or fix its path in the config",
                    w.name,
                    w.root.display()
                ),
            )),
        }
    }
    match Search::from_env(config.opencode.binary.clone()).resolve() {
        Err(e) => out.push(Finding::fail("opencode", e.to_string())),
        Ok(path) => match binary::check_version(&path).await {
            Ok(v) if v == crate::opencode::PINNED_VERSION => {
                out.push(Finding::ok("opencode", format!("{} ({v})", path.display())));
            }
            Ok(v) => out.push(Finding::fail(
                "opencode",
                format!("{} is version {v}, CodeMantle is tested with {}; run scripts/install-opencode.sh", path.display(), crate::opencode::PINNED_VERSION),
            )),
            Err(e) => out.push(Finding::fail("opencode", e.to_string())),
        },
    }
    let (relay, host, choice, state) = (
        config.relay.clone(),
        config.host.clone(),
        config.secret_store,
        state_dir.to_owned(),
    );
    let secret = tokio::task::spawn_blocking(move || {
        enroll::open_secrets(choice, &state).and_then(|(store, _)| {
            let found = enroll::load_secret(&store, &host, &relay)?;
            Ok((found.is_some(), store.describe()))
        })
    })
    .await;
    match secret {
        Ok(Ok((true, location))) => out.push(Finding::ok("secret", format!("in {location}"))),
        Ok(Ok((false, location))) => out.push(Finding::fail(
            "secret",
            format!("no host secret in {location}; run `cm-agent enroll <token>` (from `cm-relay host add {}`)", config.host),
        )),
        Ok(Err(e)) => out.push(Finding::fail("secret", e.to_string())),
        Err(e) => out.push(Finding::fail("secret", e.to_string())),
    }
    match client::clock_skew(&config.relay, &config.pin).await {
        Ok(skew) => {
            out.push(Finding::ok(
                "relay",
                format!("{} reachable, key pin matches", config.relay),
            ));
            if skew.unsigned_abs() > SKEW_WARN_MS {
                out.push(Finding::fail(
                    "clock",
                    format!("this clock differs from the relay's by {skew} ms (handshakes fail beyond ±30 s); enable NTP on both"),
                ));
            } else {
                out.push(Finding::ok("clock", format!("{skew} ms from the relay")));
            }
        }
        Err(e @ LinkError::PinMismatch { .. }) => out.push(Finding::fail(
            "relay",
            format!("{e}. If the relay was re-initialised on purpose, re-enroll with a new token"),
        )),
        Err(e) => out.push(Finding::fail(
            "relay",
            format!("{e}; check the relay address in the config and that its UDP port is open"),
        )),
    }
    out
}
