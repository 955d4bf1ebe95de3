//! `cm-tui` binary: parse arguments, run the command, map errors to a one-line reason and a
//! non-zero exit code.
//!
//! Over 600 lines because it holds the whole clap command tree (each command's help and
//! examples) next to its one-line dispatch; the commands themselves live in the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cm_client::secrets::StoreChoice;
use cm_client::time::now_ms;
use cm_tui::exit_code::{FailureKind, json_error};
use cm_tui::profile::{Logins, Profile, default_state_dir};
use cm_tui::remote::{Remote, Target};
use cm_tui::view::text::{sanitize, sanitize_text};
use cm_tui::{commands, connect, login};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

/// The CodeMantle operator terminal: see your hosts and drive OpenCode on them.
#[derive(Debug, Parser)]
#[command(
    name = "cm-tui",
    version = concat!(env!("CARGO_PKG_VERSION"), " (protocol codemantle/1)"),
    after_help = concat!(
        "Examples:\n  cm-tui login cm-invite-eyJy…          # first login with the invite from cm-relay init\n  cm-tui login relay.example.com:7443 --user alice --pin blake3:…\n  cm-tui hosts --json\n  cm-tui fs home-box myproject ls src    # HOST WORKSPACE first, then what to do\n  cm-tui                                  # full-screen view\n\n",
        cm_tui::exit_codes_help!()
    )
)]
struct Cli {
    /// State directory (profile, credential fallback file) [default: ~/.local/state/codemantle/tui]
    #[arg(long, global = true, env = "CM_TUI_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Relay profile from tui.toml ([relays.NAME]): its login and state directory
    /// [default: default_relay in tui.toml]
    #[arg(long, global = true, env = "CM_TUI_RELAY")]
    relay: Option<String>,
    /// Where to keep the credential: auto (OS keyring, else a 0600 file), secret-service, file
    /// [default: secret_store in tui.toml, else auto]
    #[arg(long, global = true, env = "CM_SECRET_STORE")]
    secret_store: Option<String>,
    /// Configuration file [default: ~/.config/codemantle/tui.toml if it exists]
    #[arg(long, global = true, env = "CM_TUI_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Your queued prompts (waiting, and recently delivered, expired or cancelled).
    #[command(after_help = "Example:\n  cm-tui queue list")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a waiting prompt so it is never delivered.
    #[command(after_help = "Example:\n  cm-tui queue cancel q_0123456789abcdef")]
    Cancel {
        /// The id `cm-tui send` or `cm-tui queue list` printed.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
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
        /// The current code from your authenticator app (users with a second factor).
        #[arg(long)]
        totp: Option<String>,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// With an invite: also set a password for later logins (prompted, or --password-stdin).
        #[arg(long)]
        set_password: bool,
        /// Credential lifetime (e.g. 8h); the relay caps it.
        #[arg(long, value_parser = cm_client::time::parse_duration)]
        ttl: Option<std::time::Duration>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke the saved credential at the relay and forget it here.
    #[command(after_help = "Example:\n  cm-tui logout")]
    Logout {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Who you are logged in as where, until when, your roles, and whether the relay answers.
    #[command(after_help = "Examples:\n  cm-tui status\n  cm-tui status --json | jq .connection")]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print shell completions.
    #[command(after_help = "Example:\n  cm-tui completions zsh > ~/.zfunc/_cm-tui")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    #[command(after_help = "Example:\n  cm-tui man | man -l -")]
    Man,
    /// List hosts: online or offline, last heartbeat, status.
    #[command(after_help = "Example:\n  cm-tui hosts --json | jq '.hosts[] | select(.online)'")]
    Hosts {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a host's workspaces with their OpenCode state; list, add or remove workspaces made
    /// from folders beneath a root (`candidates`, `add`, `remove`).
    Workspaces(cm_tui::workspaces_cli::WorkspacesArgs),
    /// OpenCode sessions in a workspace: list them (the default), rename or delete one.
    Sessions(cm_tui::sessions_cli::SessionsArgs),
    /// Create an OpenCode session (starts OpenCode on demand).
    #[command(
        after_help = "Example:\n  cm-tui new home-box myproject --title \"fix the flaky test\""
    )]
    New {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// Session title (OpenCode makes one up from the first prompt otherwise).
        #[arg(long)]
        title: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a prompt; with --wait, stream the answer and exit when the turn ends.
    #[command(
        after_help = "Examples:\n  cm-tui send home-box myproject \"explain src/main.rs\" --wait\n  cm-tui send home-box myproject --session ses_… \"now add a test\"\n  cm-tui send home-box myproject \"plan it\" --model anthropic/claude-sonnet-4-5 --agent plan"
    )]
    Send {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// The prompt.
        text: String,
        /// Session id (a new session is created when omitted).
        #[arg(long)]
        session: Option<String>,
        /// Stream the answer and wait for the turn to end.
        #[arg(long)]
        wait: bool,
        /// Print JSON (with --wait: one event per line).
        #[arg(long)]
        json: bool,
        /// The model for this prompt, as provider/model (`cm-tui models` lists them).
        #[arg(long, value_name = "PROVIDER/MODEL")]
        model: Option<String>,
        /// The OpenCode agent for this prompt, e.g. plan or build.
        #[arg(long, value_name = "NAME")]
        agent: Option<String>,
    },
    /// Print a workspace's live events (Ctrl-C stops).
    #[command(after_help = "Example:\n  cm-tui watch home-box myproject --session ses_…")]
    Watch {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// Only this session's events.
        #[arg(long)]
        session: Option<String>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Prompts the relay keeps for offline hosts: list them, or cancel one.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Administration through the relay (admins and owners): users, grants, hosts,
    /// credentials, the kill switch, the audit trail.
    #[command(subcommand)]
    Admin(cm_tui::admin_cli::AdminCommand),
    /// Folders of a workspace (operators): list, create, rename, delete empty ones. Paths are
    /// relative to the workspace root; links are shown, never followed.
    Fs(cm_tui::fs_git_cli::FsArgs),
    /// A host's listening TCP ports: address, process, workspace, and whether the host allows
    /// forwarding them.
    Ports(cm_tui::forward_cli::PortsArgs),
    /// Forward a port of a host's loopback to a local address (operators; the host decides
    /// which ports in its [forward] policy).
    Forward(cm_tui::forward_cli::ForwardArgs),
    /// Git in a workspace: status, diff, log (viewers); add, commit, branch, checkout, pull,
    /// push, init, clone, config (operators; the host may disable any of them).
    Git(cm_tui::fs_git_cli::GitArgs),
    /// List pending permission requests (with each edit's diff and each command) and
    /// questions (their text and choices); or the standing grants "always" answers left (--always), or revoke one.
    #[command(
        after_help = "Examples:\n  cm-tui permissions home-box myproject\n  cm-tui permissions home-box myproject --always\n  cm-tui permissions home-box myproject --revoke grant_1"
    )]
    Permissions {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// List the standing grants instead (they end when OpenCode restarts).
        #[arg(long, conflicts_with = "revoke")]
        always: bool,
        /// Revoke the standing grant with this id (operators).
        #[arg(long, value_name = "GRANT_ID")]
        revoke: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Everything waiting for you on every online host (permission requests, questions, turns
    /// that failed, OpenCode that gave up), each with the exact `cm-tui` commands that answer it.
    #[command(
        after_help = "Examples:\n  cm-tui attention\n  cm-tui attention --json | jq -r '.waiting[0].commands[0]'\n  cm-tui approve home-box myproject per_…   # a command it printed"
    )]
    Attention {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Allow a pending permission request (once, or --always).
    #[command(after_help = "Example:\n  cm-tui approve home-box myproject per_… --always")]
    Approve {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// Request id (per_…).
        request_id: String,
        /// Also allow matching calls of this session until OpenCode restarts; says in words
        /// what that allows and asks first (or pass --yes).
        #[arg(long)]
        always: bool,
        /// With --always: only this file or this exact command, not everything it offers.
        #[arg(long, requires = "always")]
        this_only: bool,
        /// With --always: confirm without asking (for scripts).
        #[arg(long, requires = "always")]
        yes: bool,
        /// Message to the model.
        #[arg(long)]
        message: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reject a pending permission request.
    #[command(
        after_help = "Example:\n  cm-tui reject home-box myproject per_… --message \"not in this repo\""
    )]
    Reject {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// Request id (per_…).
        request_id: String,
        /// Message to the model.
        #[arg(long)]
        message: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Answer a model's question: one ANSWER per question, in order (several choices of one
    /// question comma-separated), or --reject. `cm-tui permissions` shows the questions.
    #[command(
        after_help = "Examples:\n  cm-tui answer home-box myproject que_… \"Yes\"\n  cm-tui answer home-box myproject que_… \"rust,go\" \"tabs\"\n  cm-tui answer home-box myproject que_… --reject"
    )]
    Answer {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// Question id (que_…).
        question_id: String,
        /// The chosen option label(s), one argument per question.
        #[arg(required_unless_present = "reject", conflicts_with = "reject")]
        answers: Vec<String>,
        /// Decline to answer (the model is told).
        #[arg(long)]
        reject: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Abort a session's running turn.
    #[command(after_help = "Example:\n  cm-tui abort home-box myproject ses_…")]
    Abort {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// Session id.
        session: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what a session changed (all its turns, one turn, or the whole working tree).
    #[command(
        after_help = "Examples:\n  cm-tui diff home-box myproject ses_…\n  cm-tui diff home-box myproject ses_… --worktree"
    )]
    Diff {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// Session id.
        session: String,
        /// Only the turn started by this user message.
        #[arg(long)]
        message_id: Option<String>,
        /// Everything uncommitted in the workspace instead.
        #[arg(long)]
        worktree: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a session's message history.
    #[command(after_help = "Example:\n  cm-tui messages home-box myproject ses_…")]
    Messages {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// Session id.
        session: String,
        /// Only the newest N messages.
        #[arg(long)]
        limit: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start, stop or inspect OpenCode in a workspace.
    #[command(
        after_help = "Examples:\n  cm-tui opencode home-box myproject start\n  cm-tui opencode home-box myproject status --json"
    )]
    Opencode {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// start, stop or status.
        #[arg(value_parser = ["start", "stop", "status"])]
        action: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The models and agents a prompt may pick in a workspace (`*` marks the default).
    Models(cm_tui::models_cli::ModelsArgs),
    /// OpenCode config templates kept by the relay: list, show, publish (admins), apply to a
    /// workspace (operators).
    #[command(subcommand)]
    Template(cm_tui::templates_cli::TemplateCommand),
    /// The MCP servers of a workspace's OpenCode (from its applied template) and their status.
    #[command(subcommand)]
    Mcp(cm_tui::mcp_cli::McpCommand),
    /// Notifications the relay sends you (ntfy, webhooks), also with no TUI open.
    #[command(subcommand)]
    Notify(cm_tui::notify_cli::NotifyCommand),
}

fn read_password(from_stdin: bool, prompt: &str) -> Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    rpassword::prompt_password(prompt).map_err(|e| {
        anyhow::anyhow!(
            "cannot ask for the password: there is no terminal to prompt on ({e}); pipe it in with --password-stdin, e.g. echo \"$PW\" | cm-tui login … --password-stdin"
        )
    })
}

fn init_tracing(full_screen: bool) {
    let default = if full_screen { "off" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .compact()
        .init();
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into a buffer first: clap_complete panics on a write error (a closed pipe).
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "cm-tui", &mut out);
            std::io::Write::write_all(&mut std::io::stdout(), &out)?;
            return Ok(());
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut std::io::stdout())?;
            return Ok(());
        }
        _ => {}
    }
    let file = cm_tui::config::TuiFile::load(cli.config.as_deref())?;
    // An explicit relay profile wins, then --state-dir, then default_relay, then the file.
    let relay = cli.relay.clone().or_else(|| {
        cli.state_dir
            .is_none()
            .then(|| file.default_relay.clone())
            .flatten()
    });
    let relay_dir = match &relay {
        Some(name) => Some(file.relay_state_dir(name).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let dir = relay_dir
        .or_else(|| cli.state_dir.clone())
        .or_else(|| file.state_dir.clone())
        .unwrap_or_else(default_state_dir);
    let store_name = cli
        .secret_store
        .clone()
        .or_else(|| file.secret_store.clone())
        .unwrap_or_else(|| "auto".to_owned());
    let choice = StoreChoice::parse(&store_name).with_context(|| {
        format!("secret store {store_name:?}: use auto, secret-service or file")
    })?;
    // Secret Service calls block on D-Bus: open the store before the async runtime starts.
    let transport_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut logins = Logins::open(&dir, choice)?;
    logins
        .use_transport(file.transport_keys(), transport_env)
        .map_err(anyhow::Error::msg)?;
    if let Some(w) = &logins.warning {
        eprintln!("warning: {w}");
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command {
        Some(Command::Login {
            target,
            user,
            pin,
            totp,
            password_stdin,
            set_password,
            ttl,
            json,
        }) => {
            let target = login::parse_target(&target, user, pin, totp)?;
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
            let done = rt.block_on(login::login_device(
                &logins,
                target,
                password,
                new_password,
                ttl.map(|d| d.as_secs()),
            ))?;
            let profile = &done.profile;
            if json {
                let mut v = serde_json::to_value(profile)?;
                v["device_key"] = serde_json::json!(done.device_key);
                v["device_key_fingerprint"] = serde_json::json!(done.device_key.fingerprint());
                v["pinned_roots"] = serde_json::json!(done.pinned);
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let valid = login::describe_validity(profile.expires_at_ms.saturating_sub(now_ms()));
            println!(
                "logged in as {} at {}; credential valid for {valid}, stored in {}",
                sanitize(&profile.user.to_string()),
                profile.relay,
                logins.secret_location()
            );
            for r in &done.pinned {
                println!(
                    "pinned owner root {} {}",
                    sanitize(&r.user.to_string()),
                    r.key.fingerprint()
                );
            }
            let made = if done.device_key_created {
                "new device key"
            } else {
                "device key"
            };
            println!(
                "this laptop's {made}: {fp} (stored in {}); ask an admin to certify it: they will see {fp}",
                logins.secret_location(),
                fp = done.device_key.fingerprint()
            );
        }
        Some(Command::Status { json }) => {
            let (profile, key) = logins.load(now_ms())?;
            let (status, failure) = rt.block_on(cm_tui::status_cli::status(
                &profile,
                &key,
                logins.secret_location(),
            ));
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", cm_tui::status_cli::format_status(&status, now_ms()));
            }
            // The exit code says whether the relay answers (a script's health check).
            if let Some(e) = failure {
                return Err(e.into());
            }
        }
        Some(Command::Logout { json }) => {
            let (profile, key) = logins.load(now_ms())?;
            let revoked = rt.block_on(async {
                let remote = Remote::connect(&profile, &key).await?;
                let r = remote.call_relay::<proto::op::Logout>(&()).await;
                remote.close();
                r
            });
            logins.remove()?;
            if json {
                let v = serde_json::json!({
                    "credential": profile.cred_id,
                    "revoked_at_relay": revoked.is_ok(),
                    "removed_here": true,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            match revoked {
                Ok(_) if json => {}
                Err(e) if json => {
                    eprintln!(
                        "warning: could not revoke the credential at the relay ({}); ask an admin to run `cm-relay creds revoke {}`",
                        sanitize(&e.to_string()),
                        profile.cred_id
                    );
                }
                Ok(_) => println!(
                    "logged out: credential {} revoked at {} and removed here",
                    profile.cred_id, profile.relay
                ),
                Err(e) => {
                    eprintln!(
                        "warning: could not revoke the credential at the relay ({}); ask an admin to run `cm-relay creds revoke {}`",
                        sanitize(&e.to_string()),
                        profile.cred_id
                    );
                    println!("logged out locally");
                }
            }
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
                println!("{}", proto::text::json_pretty(&list)?);
            } else {
                print!("{}", sanitize_text(&connect::format_hosts(&list)));
            }
        }
        None => {
            let (mut profile, mut key) = logins.load(now_ms())?;
            let mut options = cm_tui::runtime::Options {
                bell: file.bell(std::env::var("CM_TUI_BELL").ok().as_deref()),
                color: file.color(std::env::var("NO_COLOR").ok().as_deref()),
                colors: file.colors().map_err(anyhow::Error::msg)?,
                keymap: file.keymap()?,
                notify_command: file.notify_command.clone().unwrap_or_default(),
                relays: file.relay_names(),
                relay,
                presence_idle: file.presence_idle(),
            };
            // `:relay NAME` ends the app with the name: log in there and start again.
            while let cm_tui::runtime::Exit::SwitchRelay(name) =
                rt.block_on(cm_tui::runtime::run(profile, key, options.clone()))?
            {
                let dir = file.relay_state_dir(&name).map_err(anyhow::Error::msg)?;
                let mut there = Logins::open(&dir, choice)?;
                there
                    .use_transport(file.transport_keys(), transport_env)
                    .map_err(anyhow::Error::msg)?;
                (profile, key) = there.load(now_ms()).with_context(|| {
                    format!(
                        "relay profile {name:?}: log in there first with \
                             `cm-tui --relay {name} login …`"
                    )
                })?;
                options.relay = Some(name);
            }
        }
        Some(Command::Watch {
            host,
            workspace,
            session,
            json,
        }) => {
            // On the TUI's connection task: the watch survives network changes.
            let (profile, key) = logins.load(now_ms())?;
            let target = Target::workspace(&host, &workspace).with_session(session);
            rt.block_on(async {
                tokio::select! {
                    r = cm_tui::watch_cli::follow(profile, key, &target, json) => r,
                    () = cm_client::signal::shutdown_signal() => Ok(()),
                }
            })?;
        }
        Some(command) => {
            let (profile, key) = logins.load(now_ms())?;
            rt.block_on(async {
                let remote = Remote::connect(&profile, &key).await?;
                let result = remote_command(&remote, &profile, command).await;
                remote.close();
                result
            })?;
        }
    }
    Ok(())
}

async fn remote_command(remote: &Remote, profile: &Profile, command: Command) -> Result<()> {
    use proto::header::Op;
    use proto::ops::{DiffQuery, PermissionAnswer};
    match command {
        Command::Workspaces(args) => cm_tui::workspaces_cli::run(remote, args).await?,
        Command::Sessions(args) => cm_tui::sessions_cli::run(remote, args).await?,
        Command::New {
            host,
            workspace,
            title,
            json,
        } => {
            let s =
                commands::new_session(remote, &Target::workspace(&host, &workspace), title).await?;
            if json {
                println!("{}", proto::text::json_pretty(&s)?);
            } else {
                println!("{}", sanitize(&s.id));
            }
        }
        Command::Send {
            host,
            workspace,
            text,
            session,
            wait,
            json,
            model,
            agent,
        } => {
            let target = Target::workspace(&host, &workspace).with_session(session);
            let pick = commands::PromptPick { model, agent };
            commands::send(remote, &target, text, &pick, wait, json).await?;
        }
        Command::Attention { json } => cm_tui::attention_cli::run(remote, json).await?,
        Command::Queue(QueueCommand::List { json }) => {
            cm_tui::queue_cli::list(remote, json).await?;
        }
        Command::Queue(QueueCommand::Cancel { id, json }) => {
            cm_tui::queue_cli::cancel(remote, id, json).await?;
        }
        Command::Permissions {
            host,
            workspace,
            always,
            revoke,
            json,
        } => {
            let target = Target::workspace(&host, &workspace);
            match revoke {
                Some(id) => cm_tui::grants_cli::revoke(remote, &target, id, json).await?,
                None if always => cm_tui::grants_cli::list(remote, &target, json).await?,
                None => commands::permissions(remote, &target, json).await?,
            }
        }
        Command::Approve {
            host,
            workspace,
            request_id,
            always,
            this_only,
            yes,
            message,
            json,
        } => {
            let target = Target::workspace(&host, &workspace);
            if always {
                let scope = if this_only {
                    cm_tui::grants_cli::AlwaysScope::ThisOnly
                } else {
                    cm_tui::grants_cli::AlwaysScope::Offered
                };
                cm_tui::grants_cli::approve_always(
                    remote, &target, request_id, scope, yes, message,
                )
                .await?;
            } else {
                commands::answer(
                    remote,
                    &target,
                    request_id,
                    PermissionAnswer::Once,
                    message,
                    json,
                )
                .await?;
            }
        }
        Command::Reject {
            host,
            workspace,
            request_id,
            message,
            json,
        } => {
            let target = Target::workspace(&host, &workspace);
            commands::answer(
                remote,
                &target,
                request_id,
                PermissionAnswer::Reject,
                message,
                json,
            )
            .await?;
        }
        Command::Answer {
            host,
            workspace,
            question_id,
            answers,
            reject,
            json,
        } => {
            let target = Target::workspace(&host, &workspace);
            cm_tui::sessions_cli::answer(remote, &target, question_id, answers, reject, json)
                .await?;
        }
        Command::Abort {
            host,
            workspace,
            session,
            json,
        } => {
            let target = Target::workspace(&host, &workspace).with_session(Some(session));
            commands::abort(remote, &target, json).await?;
        }
        Command::Diff {
            host,
            workspace,
            session,
            message_id,
            worktree,
            json,
        } => {
            let target = Target::workspace(&host, &workspace).with_session(Some(session));
            let query = if worktree {
                DiffQuery::Worktree
            } else {
                DiffQuery::Session { message_id }
            };
            commands::diff(remote, &target, query, json).await?;
        }
        Command::Messages {
            host,
            workspace,
            session,
            limit,
            json,
        } => {
            let target = Target::workspace(&host, &workspace).with_session(Some(session));
            commands::messages(remote, &target, limit, json).await?;
        }
        Command::Opencode {
            host,
            workspace,
            action,
            json,
        } => {
            let op = match action.as_str() {
                "start" => Op::OpencodeStart,
                "stop" => Op::OpencodeStop,
                _ => Op::OpencodeStatus,
            };
            commands::opencode(remote, &Target::workspace(&host, &workspace), op, json).await?;
        }
        Command::Fs(a) => cm_tui::fs_git_cli::run_fs(remote, a).await?,
        Command::Ports(a) => cm_tui::forward_cli::run_ports(remote, a).await?,
        Command::Forward(a) => cm_tui::forward_cli::run_forward(remote, a).await?,
        Command::Git(a) => cm_tui::fs_git_cli::run_git(remote, a).await?,
        Command::Models(a) => cm_tui::models_cli::run(remote, a).await?,
        Command::Template(c) => cm_tui::templates_cli::run(remote, c).await?,
        Command::Mcp(c) => cm_tui::mcp_cli::run(remote, c).await?,
        Command::Notify(c) => cm_tui::notify_cli::run(remote, c).await?,
        Command::Admin(c) => {
            cm_tui::admin_cli::run(remote, profile, c, || {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                Ok(line.trim_end_matches(['\r', '\n']).to_owned())
            })
            .await?;
        }
        Command::Login { .. }
        | Command::Logout { .. }
        | Command::Status { .. }
        | Command::Watch { .. }
        | Command::Hosts { .. }
        | Command::Completions { .. }
        | Command::Man => {}
    }
    Ok(())
}

/// Whether `--json` was given (before a `--`): failures are then one JSON object on stderr.
fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// Reports a failure: one line, or under `--json` one JSON object; the exit code says its kind.
fn fail(kind: FailureKind, message: &str, json: bool) -> ExitCode {
    // Errors carry the relay's and the agent's messages: no escape sequences.
    let message = sanitize_text(message);
    if json {
        eprintln!("{}", json_error(kind, &message));
    } else {
        eprintln!("cm-tui: {message}");
    }
    ExitCode::from(kind.exit_code())
}

fn main() -> ExitCode {
    cm_client::pipe::quiet_broken_pipe();
    let json = json_requested();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version are "errors" to clap; so are usage mistakes (exit 2 either way).
        Err(e) if json && e.use_stderr() => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            let message = first.strip_prefix("error: ").unwrap_or(first);
            return fail(FailureKind::Usage, message, true);
        }
        Err(e) => e.exit(),
    };
    init_tracing(cli.command.is_none());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cm_client::pipe::is_broken_pipe(e.as_ref()) => {
            cm_client::pipe::exit_broken_pipe()
        }
        Err(e) => fail(FailureKind::of(&e), &format!("{e:#}"), json),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;

    #[test]
    fn every_subcommand_shows_an_example_in_its_help() {
        let missing = cm_relay::help_examples::leaves_without_example(
            &<Cli as clap::CommandFactory>::command(),
        );
        assert!(missing.is_empty(), "no Example in --help: {missing:#?}");
    }
}
