//! `cm-agent doctor`: checks the agent's setup (config, roots, OpenCode, model and provider,
//! secret, relay, clock) and says, one line per problem, what to do. It never authenticates, so a
//! running agent's connection is left alone.

use crate::config::{ConfigFile, OpencodeConfig};
use crate::enroll;
use crate::opencode::binary::{self, Search};
use crate::opencode::provider;
pub use cm_client::finding::Finding;
use cm_client::{self as client, LinkError};
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
    check_model(&config.opencode, config_path, &mut out).await;
    check_sandbox(&config.workspaces, &mut out);
    let (accounts, host, choice, state) = (
        config.relays.secret_accounts.clone(),
        config.host.clone(),
        config.secret_store,
        state_dir.to_owned(),
    );
    let secret = tokio::task::spawn_blocking(move || {
        enroll::open_secrets(choice, &state).and_then(|(store, _)| {
            let found = enroll::load_secret_any(&store, &host, &accounts)?;
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
    check_trust(&config, state_dir, &mut out).await;
    let dial = client::DialOptions {
        transport: config.transport_in(state_dir),
        ..client::DialOptions::default()
    };
    check_relays(&config.relays.list(), &config.pin, &dial, &mut out).await;
    check_transports(&config, &mut out).await;
    out
}

/// Which transports reach each relay address from here (QUIC, TCP, through the proxy).
async fn check_transports(config: &crate::config::AgentConfig, out: &mut Vec<Finding>) {
    use cm_client::transport::check;
    // Targets keep the configured name: a proxy and NO_PROXY see it, as when the agent dials.
    let Ok(targets) = client::resolve_targets(&config.relays.list()).await else {
        return; // `check_relays` said why.
    };
    let opts = client::DialOptions {
        idle_timeout: config.relay_timeout,
        transport: config.transport.clone(),
    };
    for target in targets {
        let addr = target.addr;
        let reach = check::probe_both(target, &config.pin, &opts).await;
        let (usable, line) = check::verdict(&reach, config.transport.mode);
        let line = format!("{addr}: {line}");
        out.push(if usable {
            Finding::ok("transport", line)
        } else {
            Finding::fail("transport", line)
        });
    }
}

/// The trust mode and, for a zero-trust host, its end-to-end key and revocation freshness.
async fn check_trust(
    config: &crate::config::AgentConfig,
    state_dir: &Path,
    out: &mut Vec<Finding>,
) {
    let (host, choice, state, max_age) = (
        config.host.clone(),
        config.secret_store,
        state_dir.to_owned(),
        config.revocation_max_age_ms,
    );
    let accounts = config.relays.secret_accounts.clone();
    let found = tokio::task::spawn_blocking(move || {
        let file = crate::trust::TrustFile::load(&state).ok().flatten()?;
        let accounts: Vec<String> = std::iter::once(file.relay).chain(accounts).collect();
        let found = enroll::open_secrets(choice, &state)
            .and_then(|(store, _)| enroll::load_e2e_secret_any(&store, &host, &accounts));
        Some(matches!(found, Ok(Some(_))))
    })
    .await
    .ok()
    .flatten();
    out.extend(crate::trust::doctor::findings(
        state_dir,
        found,
        max_age,
        cm_client::time::now_ms(),
    ));
}

/// Every address of the relay list: reachable with the pin (with the configured transports),
/// and the clock against it.
async fn check_relays(relays: &str, pin: &str, dial: &client::DialOptions, out: &mut Vec<Finding>) {
    let addrs = match client::resolve_all(relays).await {
        Ok(addrs) => addrs,
        Err(e) => {
            out.push(Finding::fail(
                "relay",
                format!("{e}; check the relay address in the config"),
            ));
            return;
        }
    };
    let several = addrs.len() > 1;
    for addr in addrs {
        // One relay: as written; several: each address, with the list it came from.
        let name = if several {
            format!("{addr} (of {relays})")
        } else {
            relays.to_owned()
        };
        match client::clock_skew_at(addr, pin, dial).await {
            Ok(skew) => {
                out.push(Finding::ok(
                    "relay",
                    format!("{name} reachable, key pin matches"),
                ));
                if skew.unsigned_abs() > SKEW_WARN_MS {
                    out.push(Finding::fail(
                        "clock",
                        format!("this clock differs from relay {addr}'s by {skew} ms (handshakes fail beyond ±30 s); enable NTP on both"),
                    ));
                } else {
                    out.push(Finding::ok("clock", format!("{skew} ms from relay {addr}")));
                }
            }
            Err(e @ LinkError::PinMismatch { .. }) => out.push(Finding::fail(
                "relay",
                format!("{name}: {e}. If the relay was re-initialised on purpose, re-enroll with a new token"),
            )),
            Err(e) => out.push(Finding::fail(
                "relay",
                format!("{name}: {e}; check the relay address in the config and that its UDP port is open"),
            )),
        }
    }
}

/// The kernel sandbox each workspace's OpenCode gets here: the kernel's Landlock ABI, the mode,
/// and whether per-launch cgroups can be made (else process limits by rlimit, no memory limit).
fn check_sandbox(workspaces: &[crate::config::Workspace], out: &mut Vec<Finding>) {
    let cgroups = match crate::sandbox::cgroup::create("doctor-probe", 64, Some(64 << 20)) {
        Ok(made) => {
            made.remove();
            "per-launch cgroups (pids, memory)".to_owned()
        }
        Err(why) => format!(
            "no cgroups ({why}): processes limited by RLIMIT_NPROC, memory_max not enforced"
        ),
    };
    for w in workspaces {
        let info = crate::sandbox::info(&w.sandbox);
        let line = format!("{}: {}; {cgroups}", w.name, info.detail);
        out.push(match info.state.as_str() {
            "refused" => Finding::fail(
                "sandbox",
                format!(
                    "{line}; set [sandbox] mode = \"warn\" or \"off\" to run OpenCode without it"
                ),
            ),
            _ => Finding::ok("sandbox", line),
        });
    }
}

/// The model prompts go to (`[opencode] model` and its provider's table), every `{env:NAME}`
/// the provider's table uses, and whether the provider's base URL accepts connections.
async fn check_model(cfg: &OpencodeConfig, config_path: &Path, out: &mut Vec<Finding>) {
    let env = |k: &str| std::env::var(k).ok();
    let target = match provider::target(cfg, env) {
        Ok(t) => t,
        Err(e) => {
            out.push(Finding::fail(
                "model",
                format!("{e} ({})", config_path.display()),
            ));
            return;
        }
    };
    out.push(Finding::ok(
        "model",
        format!("{}/{}", target.provider, target.model),
    ));
    let table = cfg.provider.as_ref().and_then(|p| p.get(&target.provider));
    let mut missing: Vec<String> = table
        .map(crate::env_refs::env_refs_in)
        .unwrap_or_default()
        .into_iter()
        .filter(|name| std::env::var_os(name).is_none_or(|v| v.is_empty()))
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        out.push(Finding::fail(
            "provider",
            format!(
                "{}: [opencode.provider.{}] uses {} but {} not set in this environment; export {} where `cm-agent run` starts (systemd: Environment= or EnvironmentFile=)",
                target.provider,
                target.provider,
                missing.iter().map(|m| format!("{{env:{m}}}")).collect::<Vec<_>>().join(", "),
                if missing.len() == 1 { "it is" } else { "they are" },
                missing.join(", ")
            ),
        ));
    }
    let Some(url) = target.base_url else {
        out.push(Finding::ok(
            "provider",
            format!(
                "{}: OpenCode's built-in endpoint (no options.baseURL; not checked)",
                target.provider
            ),
        ));
        return;
    };
    if provider::proxy_configured(env) {
        out.push(Finding::ok(
            "provider",
            format!(
                "{} at {url} (not checked: a proxy is configured)",
                target.provider
            ),
        ));
        return;
    }
    match provider::probe(&url, provider::PROBE_TIMEOUT).await {
        Ok(()) => out.push(Finding::ok(
            "provider",
            format!("{} at {url} accepts connections", target.provider),
        )),
        Err(e) => out.push(Finding::fail(
            "provider",
            format!(
                "{} at {url} cannot be reached: {e}; start it, or fix options.baseURL in [opencode.provider.{}] of {} (prompts fail until then)",
                target.provider,
                target.provider,
                config_path.display()
            ),
        )),
    }
}
