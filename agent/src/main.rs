//! `cm-agent` binary: parse arguments, set up logging, run the command.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use cm_agent::config::{ConfigFile, default_config_path, default_state_dir};
use cm_agent::core_tasks::CoreTasks;
use cm_agent::enroll;
use cm_agent::link::{self, LinkConfig};
use cm_agent::opencode::binary::{self, Search};
use cm_agent::supervisor::leftovers;
use cm_agent::workspaces::Workspaces;
use cm_client::secrets::StoreChoice;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The CodeMantle agent: connects this host to a relay so operators can drive OpenCode here.
#[derive(Debug, Parser)]
#[command(
    name = "cm-agent",
    version = concat!(env!("CARGO_PKG_VERSION"), " (protocol codemantle/1)"),
    after_help = "Examples:\n  cm-agent enroll cm-enroll-eyJy…\n  cm-agent run\n  cm-agent trust show\n\nLogs honour RUST_LOG (e.g. RUST_LOG=cm_agent=debug)."
)]
struct Cli {
    /// Configuration file [default: ~/.config/codemantle/agent.toml]
    #[arg(long, global = true, env = "CM_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// State directory (secret fallback file, state) [default: ~/.local/state/codemantle/agent]
    #[arg(long, global = true, env = "CM_AGENT_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Store the host secret from an enrollment token and write the config. A token from
    /// `cm-tui admin host add NAME` pins the owners' keys: the host becomes zero-trust and
    /// verifies every operator itself.
    #[command(
        after_help = "Examples:\n  cm-agent enroll \"$(cat token.txt)\"\n  cm-agent enroll --relay-trusted \"$(cat relay-token.txt)\"   # drops zero-trust"
    )]
    Enroll {
        /// The token printed by `cm-tui admin host add NAME` (zero-trust) or `cm-relay host add
        /// NAME` (relay-trusted).
        token: String,
        /// Where to keep the secret: auto (OS keyring, else a 0600 file), secret-service, file.
        #[arg(long, default_value = "auto", env = "CM_SECRET_STORE")]
        secret_store: String,
        /// Accept a token without owner roots on a zero-trust host: the host then trusts the
        /// relay again (its pinned roots are removed).
        #[arg(long)]
        relay_trusted: bool,
    },
    /// This host's setup: host, relays, lock, and trust mode (zero-trust or relay-trusted).
    #[command(
        after_help = "Examples:\n  cm-agent status\n  cm-agent status --json | jq .trust.mode"
    )]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What this host trusts: zero-trust (pinned owner keys) or relay-trusted.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Check the setup: config, workspace roots, OpenCode, secret, relay reachability and pin,
    /// clock skew against the relay.
    #[command(after_help = "Example:\n  cm-agent doctor")]
    Doctor,
    /// Print shell completions.
    #[command(
        after_help = "Example:\n  cm-agent completions bash > ~/.local/share/bash-completion/completions/cm-agent"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    #[command(after_help = "Example:\n  cm-agent man | man -l -")]
    Man,
    /// Lock this host: the running agent refuses every remote operation (even ones the relay
    /// allowed) until `cm-agent unlock`. Works with the relay unreachable or compromised.
    #[command(after_help = "Example:\n  cm-agent lock --reason \"incident 42\"")]
    Lock {
        /// A note shown to operators whose operations are refused.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift `cm-agent lock`.
    #[command(after_help = "Example:\n  cm-agent unlock")]
    Unlock,
    /// Open OpenCode's own TUI on a workspace of this host, on the OpenCode the running agent
    /// supervises (started if needed): the desk and operators over the relay see and drive the
    /// same sessions. Run as the agent's user: it reaches the agent through the control socket
    /// in the agent's state folder.
    #[command(
        after_help = "Examples:\n  cm-agent attach api\n  sudo -u codemantle -H cm-agent --state-dir /var/lib/codemantle/agent attach api"
    )]
    Attach {
        /// The workspace (its name in agent.toml).
        workspace: String,
    },
    /// Connect to the relay and serve until SIGTERM or Ctrl-C.
    #[command(after_help = "Example:\n  cm-agent run --heartbeat-interval 3s")]
    Run {
        /// Override the heartbeat interval (e.g. 3s, 500ms).
        #[arg(long, value_parser = cm_client::time::parse_duration)]
        heartbeat_interval: Option<std::time::Duration>,
    },
}

#[derive(Debug, Subcommand)]
enum TrustCommand {
    /// Print the mode, the pinned owner roots, the host's end-to-end key fingerprint and the
    /// revocation lists held with their age.
    #[command(
        after_help = "Examples:\n  cm-agent trust show\n  cm-agent trust show --json | jq .freshness"
    )]
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Recovery for a lost owner key: forget the pinned roots and revocation lists (the host
    /// secret stays). The host is relay-trusted until re-enrolled with a token from a new owner.
    #[command(after_help = "Example:\n  sudo -u codemantle cm-agent trust reset --yes")]
    Reset {
        /// Confirm: the host stops verifying operators itself until re-enrolled.
        #[arg(long)]
        yes: bool,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().compact().init();
    } else {
        builder.compact().init();
    }
}

fn main() -> std::process::ExitCode {
    cm_client::pipe::quiet_broken_pipe();
    // Hidden subcommands that launch OpenCode (no orphans; see supervisor/keeper.rs).
    if let Some(code) = cm_agent::supervisor::keeper::dispatch() {
        return code;
    }
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if cm_client::pipe::is_broken_pipe(e.as_ref()) => {
            cm_client::pipe::exit_broken_pipe()
        }
        Err(e) => {
            eprintln!("cm-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Finds OpenCode and checks its version once at start, so a missing or unexpected binary is
/// in the log before any operator needs it. Not fatal: the agent still links and reports.
async fn check_opencode(configured: Option<PathBuf>) {
    match Search::from_env(configured).resolve() {
        Ok(path) => match binary::check_version(&path).await {
            Ok(version) => {
                tracing::info!(binary = %path.display(), %version, "OpenCode found");
            }
            Err(e) => tracing::warn!(error = %e, "OpenCode does not run"),
        },
        Err(e) => tracing::warn!("{e}"),
    }
}

fn run(cli: Cli) -> Result<()> {
    let config_path = cli.config.clone().unwrap_or_else(default_config_path);
    let state_dir = cli.state_dir.clone().unwrap_or_else(default_state_dir);
    match cli.command {
        Command::Doctor => {
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let findings = rt.block_on(cm_agent::doctor::check(&config_path, &state_dir));
            let failed = cm_client::finding::print_report(&findings);
            anyhow::ensure!(
                failed == 0,
                "{failed} {} found",
                if failed == 1 { "problem" } else { "problems" }
            );
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into a buffer first: clap_complete panics on a write error (a closed pipe).
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "cm-agent", &mut out);
            std::io::Write::write_all(&mut std::io::stdout(), &out)?;
        }
        Command::Man => {
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut std::io::stdout())?;
        }
        Command::Lock { reason } => {
            let was = cm_agent::policy::lock(&state_dir, reason.as_deref())?;
            let path = cm_agent::policy::lock_path(&state_dir);
            if was {
                println!(
                    "host was already locked; lock note updated ({})",
                    path.display()
                );
            } else {
                println!(
                    "host locked: the agent refuses every remote operation until `cm-agent unlock` ({})",
                    path.display()
                );
            }
        }
        Command::Attach { workspace } => {
            let status = cm_agent::attach::client::run(&state_dir, &workspace)?;
            anyhow::ensure!(status.success(), "OpenCode's TUI exited with {status}");
        }
        Command::Unlock => {
            if cm_agent::policy::unlock(&state_dir)? {
                println!("host unlocked: remote operations are served again");
            } else {
                println!("host was not locked");
            }
        }
        Command::Trust(TrustCommand::Show { json }) => {
            let report = trust_report(&config_path, &state_dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
        }
        Command::Status { json } => {
            let config = ConfigFile::load_effective(&config_path).ok();
            let status = cm_agent::status::local::LocalStatus {
                host: config.as_ref().map(|c| c.host.to_string()),
                relays: config.as_ref().map(|c| c.relays.list()),
                locked: cm_agent::policy::lock_path(&state_dir).exists(),
                trust: trust_report(&config_path, &state_dir)?,
                links: cm_agent::status::links::read(&state_dir),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render());
            }
        }
        Command::Trust(TrustCommand::Reset { yes }) => trust_reset(&state_dir, yes)?,
        Command::Enroll {
            token,
            secret_store,
            relay_trusted,
        } => {
            let choice = StoreChoice::parse(&secret_store).with_context(|| {
                format!("--secret-store {secret_store:?}: use auto, secret-service or file")
            })?;
            let options = enroll::EnrollOptions {
                store: choice,
                relay_trusted,
            };
            let out = enroll::enroll_with(&token, &config_path, &state_dir, options)?;
            if let Some(w) = &out.warning {
                eprintln!("warning: {w}");
            }
            println!(
                "enrolled host {}; secret stored in {}",
                out.host, out.secret_location
            );
            if out.roots > 0 {
                println!(
                    "zero-trust: {} owner key(s) pinned; this host verifies every operator itself ({})",
                    out.roots,
                    cm_agent::trust::trust_path(&state_dir).display()
                );
            } else if out.dropped_zero_trust {
                eprintln!(
                    "WARNING: this host is now relay-trusted: its pinned owner keys were removed and it believes the relay about who operators are"
                );
            } else {
                println!("{}", cm_agent::trust::RELAY_TRUSTED_HINT);
            }
            println!("config written to {}", config_path.display());
            // A re-enrollment keeps the workspaces already configured.
            let has_workspaces = ConfigFile::load(&config_path)
                .map(|f| !f.workspaces.is_empty())
                .unwrap_or(false);
            if has_workspaces {
                println!("next: `cm-agent run` (restart it if it is running)");
            } else {
                println!("next: add [[workspace]] entries there, then run `cm-agent run`");
            }
        }
        Command::Run { heartbeat_interval } => {
            // Held until the process ends: one agent per state folder.
            let _run_lock = cm_agent::runlock::acquire(&state_dir)?;
            let mut config = ConfigFile::load_effective(&config_path)?;
            if let Some(i) = heartbeat_interval {
                config.heartbeat_interval = i;
            }
            let (store, warning) = enroll::open_secrets(config.secret_store, &state_dir)?;
            if let Some(w) = warning {
                tracing::warn!("{w}");
            }
            let relays = &config.relays;
            let Some(key) = enroll::load_secret_any(&store, &config.host, &relays.secret_accounts)?
            else {
                bail!(
                    "no secret for host {} at {} in {}; run `cm-agent enroll <token>`",
                    config.host,
                    relays.list(),
                    store.describe()
                );
            };
            let trust = cm_agent::trust::load(
                &state_dir,
                &config.host,
                &store,
                &relays.secret_accounts,
                cm_agent::config::TrustLimits {
                    revocation_max_age_ms: config.revocation_max_age_ms,
                    root_overlap_ms: config.root_overlap_ms,
                },
                cm_client::time::now_ms(),
            )?;
            if trust.is_none() {
                tracing::warn!("{}", cm_agent::trust::RELAY_TRUSTED_HINT);
            }
            let link_config = LinkConfig {
                relays: relays.list(),
                connections: relays.connections,
                pin: config.pin.clone(),
                host: config.host.clone(),
                key,
                heartbeat_interval: config.heartbeat_interval,
                relay_timeout: config.relay_timeout,
                transport: config.transport_in(&state_dir),
                state_dir: state_dir.clone(),
            };
            // Orphaned tool processes of OpenCode come to us, so they can be killed and reaped.
            if let Err(e) = leftovers::become_subreaper() {
                tracing::warn!(error = %e, "cannot become a child subreaper; tool processes left by a crashed OpenCode may survive it");
            }
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(async {
                tokio::spawn(check_opencode(config.opencode.binary.clone()));
                let policy = cm_agent::policy::Policy::new(config.policy.clone(), &state_dir);
                if cm_agent::policy::lock_path(&state_dir).exists() {
                    tracing::warn!("this host is locked (cm-agent lock): remote operations are refused until `cm-agent unlock`");
                }
                let workspaces = Workspaces::start(cm_agent::workspaces::Setup {
                    workspaces: &config.workspaces,
                    config: config.opencode.clone(),
                    state_dir: &state_dir,
                    policy,
                    lease: config.launch_lease,
                    git: config.git.clone().staged_in(&state_dir),
                    subworkspace_roots: config.subworkspace_roots.clone(),
                });
                workspaces.forwarding().set_policy(config.forward.clone());
                if let Some(trust) = trust {
                    workspaces.set_trust(Arc::new(trust));
                }
                let cancel = CancellationToken::new();
                cm_agent::attach::server::start(&state_dir, Arc::clone(&workspaces), cancel.clone());
                // The link and the workspaces' supervisors (which also enforce the launch
                // leases) are core tasks: one that ends before shutdown stops the agent.
                let mut core = CoreTasks::new(cancel.clone());
                core.spawn(
                    "link",
                    link::run(link_config, Arc::clone(&workspaces), cancel.clone()),
                );
                let watched = Arc::clone(&workspaces);
                core.spawn("workspace supervisor", async move {
                    let name = watched.supervisor_ended().await;
                    tracing::error!(workspace = %name, "the supervisor of a workspace ended");
                });
                tracing::info!(host = %config.host, relay = %config.relays.list(), "agent started");
                let ended = tokio::select! {
                    () = cm_client::signal::shutdown_signal() => None,
                    ended = core.ended_unexpectedly() => Some(ended),
                };
                tracing::info!("stopping");
                cancel.cancel();
                // Bounded: a supervisor that does not end within the shutdown bound would
                // keep its watcher waiting.
                let drain = tokio::time::timeout(
                    cm_agent::workspaces::SHUTDOWN_BOUND,
                    core.drain(),
                );
                let (_, ()) = tokio::join!(drain, workspaces.shutdown());
                match ended {
                    Some(e) => Err(anyhow::Error::new(e)),
                    None => {
                        tracing::info!("stopped");
                        Ok(())
                    }
                }
            })?;
        }
    }
    Ok(())
}

/// `cm-agent trust show`'s report: works without a valid configuration (then without the host
/// key).
fn trust_report(
    config_path: &std::path::Path,
    state_dir: &std::path::Path,
) -> Result<cm_agent::trust::TrustReport> {
    let config = ConfigFile::load_effective(config_path);
    let max_age = config
        .as_ref()
        .map_or(cm_agent::trust::DEFAULT_REVOCATION_MAX_AGE_MS, |c| {
            c.revocation_max_age_ms
        });
    let host_key = match (&config, cm_agent::trust::TrustFile::load(state_dir)?) {
        (Ok(c), Some(file)) => {
            let (store, _) = enroll::open_secrets(c.secret_store, state_dir)?;
            let accounts: Vec<String> = std::iter::once(file.relay)
                .chain(c.relays.secret_accounts.iter().cloned())
                .collect();
            enroll::load_e2e_secret_any(&store, &c.host, &accounts)?.map(cm_agent::trust::public_of)
        }
        _ => None,
    };
    Ok(cm_agent::trust::report(
        state_dir,
        host_key,
        max_age,
        cm_client::time::now_ms(),
    )?)
}

/// `cm-agent trust reset`: the recovery for a lost owner key.
fn trust_reset(state_dir: &std::path::Path, yes: bool) -> Result<()> {
    if !yes {
        bail!(
            "this forgets the owner keys this host pinned and the revocation lists it holds: until it is re-enrolled the host believes the relay about who operators are. Run again with --yes to do it"
        );
    }
    if cm_agent::trust::remove(state_dir)? {
        println!(
            "pinned owner keys and revocation lists removed from {}; the host secret is kept",
            state_dir.display()
        );
    } else {
        println!("this host pinned no owner keys (it was relay-trusted); nothing removed");
    }
    println!(
        "the host is relay-trusted now (restart a running agent: it keeps the old pins until then)."
    );
    println!(
        "next: on the new owner's laptop run `cm-tui admin trust init`, then `cm-tui admin host add NAME` (or `cm-tui admin host rotate NAME`), and here `cm-agent enroll <token>`"
    );
    Ok(())
}

#[cfg(test)]
mod help_example_tests {
    use super::Cli;

    #[test]
    fn every_subcommand_shows_an_example_in_its_help() {
        let missing = cm_relay::help_examples::leaves_without_example(
            &<Cli as clap::CommandFactory>::command(),
        );
        assert!(missing.is_empty(), "no Example in --help: {missing:#?}");
    }
}
