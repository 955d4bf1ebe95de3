//! `cm-relay` binary: parse arguments, set up logging, run the command.

use anyhow::{Context, Result};
use clap::Parser;
use cm_relay::cli::{
    self, AdminChange, Cli, ClusterCommand, Command, CredsCommand, HostCommand, UserCommand,
};
use cm_relay::config::default_state_dir;
use cm_relay::state::{self, StateDir};
use proto::ids::UserId;
use std::io::BufRead;

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // Under systemd, journald adds its own timestamps.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().compact().init();
    } else {
        builder.compact().init();
    }
}

fn read_password(stdin: bool) -> Result<String> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let pw = rpassword::prompt_password("new password: ")?;
    let again = rpassword::prompt_password("repeat: ")?;
    anyhow::ensure!(pw == again, "the passwords differ");
    Ok(pw)
}

fn main() -> std::process::ExitCode {
    cm_relay::pipe::quiet_broken_pipe();
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if cm_relay::pipe::is_broken_pipe(e.as_ref()) => cm_relay::pipe::exit_broken_pipe(),
        Err(e) => {
            eprintln!("cm-relay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let (file, file_path) = cm_relay::config_file::RelayFile::load(cli.config.as_deref())?;
    if let Some(p) = &file_path {
        tracing::debug!(config = %p.display(), "configuration file loaded");
    }
    let state_dir = cli
        .state_dir
        .clone()
        .or_else(|| file.state_dir.clone())
        .unwrap_or_else(default_state_dir);
    let dir = StateDir::new(state_dir).with_store(file.store_config().unwrap_or_default());
    match cli.command {
        Command::Init(args) => {
            let public_addr = args
                .public_addr
                .as_deref()
                .unwrap_or(cli::LOCAL_PUBLIC_ADDR);
            let out = state::init(&dir, public_addr, &UserId::from(args.owner.as_str()))?;
            println!("initialised {}", dir.root().display());
            println!("relay key pin: {}", out.pin);
            println!();
            println!("one-time invite for {} (valid 7 days):", args.owner);
            println!("{}", out.invite.encode());
            println!();
            println!("next: cm-relay run   then on your laptop: cm-tui login <invite>");
            if args.public_addr.is_none() {
                eprintln!(
                    "warning: no --public-addr given: the invite and host tokens name {public_addr}, which only works on this machine; to serve other machines, delete {} and run `cm-relay init --public-addr relay.example.com:7443` (or set CM_RELAY_PUBLIC_ADDR)",
                    dir.root().display()
                );
            }
        }
        Command::Run(args) => {
            let mut config = cli::run_config(dir.root().to_owned(), &args, &file);
            if args.listen.is_none() && file.listen().is_none() {
                config.listen = cm_relay::config::default_listen(dir.public_addr().as_deref());
            }
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(cm_relay::server::run(
                config,
                cm_relay::signal::shutdown_signal(),
            ))?;
        }
        Command::Host(HostCommand::Add { name, relay_addr }) => {
            let token = cli::host_add(&dir, &name, relay_addr)?;
            eprintln!("enrolled host {name}; on that host run:");
            println!("{}", token.encode());
        }
        Command::Host(HostCommand::List { json }) => {
            let hosts = dir.open_store()?.list_hosts()?;
            if json {
                let v: Vec<_> = hosts
                    .iter()
                    .map(|h| serde_json::json!({"host": h.id, "revoked": h.revoked, "created_ms": h.created_ms}))
                    .collect();
                println!("{}", proto::text::json_pretty(&v)?);
            } else {
                println!("{:<24} {:<8}", "HOST", "STATE");
                for h in hosts {
                    println!(
                        "{:<24} {:<8}",
                        h.id,
                        if h.revoked { "revoked" } else { "enrolled" }
                    );
                }
            }
        }
        Command::Host(HostCommand::Rotate { name, relay_addr }) => {
            let token = cli::host_rotate(&dir, &name, relay_addr)?;
            eprintln!("new secret for host {name}; its agent was disconnected. On that host run:");
            println!("{}", token.encode());
        }
        Command::Host(HostCommand::Revoke { name }) => {
            println!(
                "{}",
                cli::admin_change(&dir, AdminChange::RevokeHost { host: &name })?
            );
        }
        Command::Kill(args) => println!("{}", cli::kill(&dir, &args)?),
        Command::Creds(CredsCommand::List { json }) => {
            let creds = dir.open_store()?.list_credentials()?;
            if json {
                println!("{}", proto::text::json_pretty(&creds)?);
            } else {
                let now = cm_relay::time::now_ms();
                println!("{:<20} {:<16} {:<10} LABEL", "CREDENTIAL", "USER", "STATE");
                for c in creds {
                    let state = if c.revoked {
                        "revoked".to_owned()
                    } else if c.expires_ms <= now {
                        "expired".to_owned()
                    } else {
                        format!("{}h left", (c.expires_ms - now) / 3_600_000)
                    };
                    println!(
                        "{:<20} {:<16} {:<10} {}",
                        c.id,
                        c.user,
                        state,
                        c.label.unwrap_or_default()
                    );
                }
            }
        }
        Command::Creds(CredsCommand::Revoke { id }) => {
            println!(
                "{}",
                cli::admin_change(&dir, AdminChange::RevokeCred { id: &id })?
            );
        }
        Command::User(UserCommand::Add { name, role, host }) => {
            let invite = cli::user_add(&dir, &name, &role, &host)?;
            eprintln!("added {name} as {role} on {host}; their one-time invite (valid 7 days):");
            println!("{}", invite.encode());
        }
        Command::User(UserCommand::Totp { name }) => {
            let uri = cli::user_totp(&dir, &name)?;
            eprintln!(
                "scan this into an authenticator app; password logins of {name} now need its code:"
            );
            println!("{uri}");
        }
        Command::User(UserCommand::List { json }) => {
            let users = dir.open_store()?.list_users()?;
            if json {
                println!("{}", proto::text::json_pretty(&users)?);
            } else {
                println!("{:<20} {:<9} GRANTS", "USER", "PASSWORD");
                for u in users {
                    let grants: Vec<String> =
                        u.grants.iter().map(|(h, r)| format!("{r}@{h}")).collect();
                    println!(
                        "{:<20} {:<9} {}",
                        u.name,
                        if u.has_password { "set" } else { "-" },
                        grants.join(", ")
                    );
                }
            }
        }
        Command::User(UserCommand::Remove { name }) => {
            println!(
                "{}",
                cli::admin_change(&dir, AdminChange::RemoveUser { user: &name })?
            );
        }
        Command::User(UserCommand::Grant { name, role, host }) => {
            println!(
                "{}",
                cli::admin_change(
                    &dir,
                    AdminChange::Grant {
                        user: &name,
                        role: &role,
                        host: &host
                    }
                )?
            );
        }
        Command::User(UserCommand::Revoke { name, host }) => {
            println!(
                "{}",
                cli::admin_change(
                    &dir,
                    AdminChange::RevokeGrant {
                        user: &name,
                        host: &host
                    }
                )?
            );
        }
        Command::User(UserCommand::Passwd {
            name,
            password_stdin,
        }) => {
            let pw = read_password(password_stdin)?;
            cli::user_passwd(&dir, &name, &pw)?;
            eprintln!("password set for {name}");
        }
        Command::Cluster(command) => cluster(&dir, &file, command)?,
        Command::Doctor { listen, listen_tcp } => {
            let listen = listen
                .or_else(|| file.listen())
                .unwrap_or_else(|| cm_relay::config::default_listen(dir.public_addr().as_deref()));
            let listen_tcp = listen_tcp
                .or_else(|| file.listen_tcp())
                .unwrap_or_default()
                .resolve(listen);
            let fleet = file.fleet_config().ok().flatten();
            let mut findings = cm_relay::doctor::check_member(
                &dir,
                listen,
                listen_tcp,
                cm_relay::time::now_ms(),
                fleet.as_ref(),
                heartbeat_timeout(&file),
            );
            let notify_key = file
                .notify_config()
                .ok()
                .and_then(|n| n.secret_key_file)
                .unwrap_or_else(|| dir.root().join(cm_relay::config::NOTIFY_KEY_FILE));
            findings.push(cm_relay::doctor::notify_key(&dir, &notify_key));
            let failed = cm_relay::finding::print_report(&findings);
            anyhow::ensure!(failed == 0, "{} found", cli::counted(failed, "problem"));
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into a buffer first: clap_complete panics on a write error (a closed pipe).
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "cm-relay", &mut out);
            std::io::Write::write_all(&mut std::io::stdout(), &out)?;
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        }
        Command::Audit(args) => {
            let store = dir.open_store()?;
            match args.action.as_deref() {
                Some("verify") => match store.audit_verify()? {
                    None => println!("audit chain intact"),
                    Some(id) => anyhow::bail!(
                        "audit chain broken at row {id}: that row or the one before it was edited or deleted"
                    ),
                },
                Some(other) => anyhow::bail!(
                    "unknown audit action {other:?}; use `cm-relay audit` or `cm-relay audit verify`"
                ),
                None => {
                    let rows = store.audit_page(&cm_relay::store::AuditFilter {
                        user: args.user.as_deref(),
                        host: args.host.as_deref(),
                        before_id: None,
                        limit: args.limit,
                    })?;
                    for row in &rows {
                        println!("{}", args.line(row));
                    }
                    if args.follow {
                        // Follow from the newest row of all, not only of the matching ones.
                        let last = store.audit_tail(1)?.first().map_or(0, |r| r.id);
                        follow_audit(&*store, &args, last)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The hosts' heartbeat timeout relay.toml sets (the relays' liveness window follows it).
fn heartbeat_timeout(file: &cm_relay::config_file::RelayFile) -> std::time::Duration {
    cm_relay::config_file::RelayFile::duration(&file.heartbeat_timeout)
        .unwrap_or(cm_relay::config::DEFAULT_HEARTBEAT_TIMEOUT)
}

/// `cluster add|remove|status`.
fn cluster(
    dir: &StateDir,
    file: &cm_relay::config_file::RelayFile,
    command: ClusterCommand,
) -> Result<()> {
    use cm_relay::fleet::cluster;
    let store = cluster::open(dir.store_config())?;
    let now = cm_relay::time::now_ms();
    match command {
        ClusterCommand::Add { id, peer_addr } => {
            let added = cluster::add(dir, &store, &id, &peer_addr, now)?;
            if added.created_identity {
                eprintln!(
                    "created this relay's peer identity in {}",
                    dir.root().display()
                );
            }
            println!(
                "registered relay {id} at {peer_addr}, peer pin {}",
                added.pin
            );
            match file.fleet_config().ok().flatten() {
                Some(f) if f.id.0 == id => {}
                _ => eprintln!(
                    "note: relay.toml must say [fleet] id = \"{id}\" for `cm-relay run` to serve as this relay"
                ),
            }
        }
        ClusterCommand::Remove { id } => {
            cluster::remove(&store, &id, now)?;
            println!("relay {id} retired; the other relays refuse it from now on");
        }
        ClusterCommand::Status { json } => {
            let relays = cluster::status(&store, heartbeat_timeout(file))?;
            if json {
                println!("{}", proto::text::json_pretty(&relays)?);
            } else {
                print!("{}", cluster::table(&relays));
            }
        }
    }
    Ok(())
}

/// Rows read at a time while following the audit trail.
const FOLLOW_PAGE: usize = 1_000;

/// Prints audit rows newer than `after` as they are written, until Ctrl-C or SIGTERM.
fn follow_audit(
    store: &cm_relay::store::Store,
    args: &cli::AuditArgs,
    mut after: i64,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The store is read outside the runtime (the PostgreSQL client blocks on a runtime of
    // its own); the runtime only waits for the next tick or the signal.
    let mut tick =
        rt.block_on(async { tokio::time::interval(std::time::Duration::from_millis(500)) });
    let mut stop = Box::pin(cm_relay::signal::shutdown_signal());
    loop {
        let stopped = rt.block_on(async {
            tokio::select! {
                () = &mut stop => true,
                _ = tick.tick() => false,
            }
        });
        if stopped {
            return Ok(());
        }
        // New rows only, a page at a time, however long the trail is.
        loop {
            let rows = store.audit_after(after, FOLLOW_PAGE)?;
            for row in &rows {
                after = row.id;
                if args.matches(row) {
                    println!("{}", args.line(row));
                }
            }
            if rows.len() < FOLLOW_PAGE {
                break;
            }
        }
    }
}
