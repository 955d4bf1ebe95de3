//! `cm-tui` binary: parse arguments, run the command, map errors to a one-line reason and a
//! non-zero exit code.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cm_relay::secrets::StoreChoice;
use cm_relay::time::now_ms;
use cm_tui::profile::{Logins, default_state_dir};
use cm_tui::{connect, login};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

/// The CodeMantle operator terminal: see your hosts and drive OpenCode on them.
#[derive(Debug, Parser)]
#[command(
    name = "cm-tui",
    version = concat!(env!("CARGO_PKG_VERSION"), " (protocol codemantle/1)"),
    after_help = "Examples:\n  cm-tui login cm-invite-eyJy…          # first login with the invite from cm-relay init\n  cm-tui login relay.example.com:7443 --user alice --pin blake3:…\n  cm-tui hosts --json\n  cm-tui                                  # full-screen view"
)]
struct Cli {
    /// State directory (profile, credential fallback file) [default: ~/.local/state/codemantle/tui]
    #[arg(long, global = true, env = "CM_TUI_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Where to keep the credential: auto (OS keyring, else a 0600 file), secret-service, file.
    #[arg(long, global = true, default_value = "auto", env = "CM_SECRET_STORE")]
    secret_store: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in with an invite, or with a password at a relay.
    #[command(
        after_help = "Examples:\n  cm-tui login cm-invite-eyJy… --set-password\n  echo \"$PW\" | cm-tui login 127.0.0.1:7443 --user alice --pin blake3:… --password-stdin"
    )]
    Login {
        /// An invite (cm-invite-…) or a relay address (host:port).
        target: String,
        /// User name (with a relay address).
        #[arg(long)]
        user: Option<String>,
        /// Relay key pin (with a relay address).
        #[arg(long)]
        pin: Option<String>,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// With an invite: also set a password for later logins (prompted, or --password-stdin).
        #[arg(long)]
        set_password: bool,
        /// Credential lifetime (e.g. 8h); the relay caps it.
        #[arg(long, value_parser = cm_relay::time::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// List hosts: online or offline, last heartbeat, status.
    #[command(after_help = "Example:\n  cm-tui hosts --json | jq '.hosts[] | select(.online)'")]
    Hosts {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn read_password(from_stdin: bool, prompt: &str) -> Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    Ok(rpassword::prompt_password(prompt)?)
}

fn init_tracing(full_screen: bool) {
    let default = if full_screen { "off" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .compact()
        .init();
}

fn run(cli: Cli) -> Result<()> {
    let dir = cli.state_dir.clone().unwrap_or_else(default_state_dir);
    let choice = StoreChoice::parse(&cli.secret_store).with_context(|| {
        format!(
            "--secret-store {:?}: use auto, secret-service or file",
            cli.secret_store
        )
    })?;
    // Secret Service calls block on D-Bus: open the store before the async runtime starts.
    let logins = Logins::open(&dir, choice)?;
    if let Some(w) = &logins.warning {
        eprintln!("warning: {w}");
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command {
        Some(Command::Login {
            target,
            user,
            pin,
            password_stdin,
            set_password,
            ttl,
        }) => {
            let target = login::parse_target(&target, user, pin)?;
            let (password, new_password) = match &target {
                login::LoginTarget::Invite(_) if set_password => (
                    None,
                    Some(read_password(password_stdin, "choose a password: ")?),
                ),
                login::LoginTarget::Invite(_) => (None, None),
                login::LoginTarget::Password { .. } => {
                    (Some(read_password(password_stdin, "password: ")?), None)
                }
            };
            let profile = rt.block_on(login::login(
                &logins,
                target,
                password,
                new_password,
                ttl.map(|d| d.as_secs()),
            ))?;
            let hours = profile.expires_at_ms.saturating_sub(now_ms()) / 3_600_000;
            println!(
                "logged in as {} at {}; credential valid for {hours} h, stored in {}",
                profile.user,
                profile.relay,
                logins.secret_location()
            );
        }
        Some(Command::Hosts { json }) => {
            let (profile, key) = logins.load(now_ms())?;
            let list = rt.block_on(async {
                let session = connect::connect(&profile, &key).await?;
                let list = connect::host_list(&session.conn).await;
                session.conn.close(0u32.into(), b"done");
                list
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", connect::format_hosts(&list));
            }
        }
        None => {
            let (profile, key) = logins.load(now_ms())?;
            rt.block_on(cm_tui::runtime::run(profile, key))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.command.is_none());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cm-tui: {e:#}");
            ExitCode::FAILURE
        }
    }
}
