//! `cm-tui notify add|list|test|remove`: the caller's notification channels at the relay
//! (ntfy topics and signed webhooks). The relay sends the notifications, so they arrive with
//! no TUI open; secrets are read from an environment variable here (never a flag: flags end up
//! in shell history) and are never shown again.

use crate::command_error::CommandError;
use crate::remote::Remote;
use crate::view::text::sanitize;
use clap::{Args, Subcommand};
use proto::notify::{
    ChannelInfo, ChannelName, ChannelSpec, ChannelTarget, Focus, NotifyEvent, NotifyTested,
    QuietHours,
};
use proto::op;

/// What every `notify add` takes besides the target.
#[derive(Debug, Args)]
pub struct ChannelOptions {
    /// The channel's name [default: the kind, `ntfy` or `webhook`].
    #[arg(long)]
    pub name: Option<String>,
    /// Events to notify, comma-separated: permission, question, finished, failed, crashed,
    /// offline [default: all but finished].
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
    /// Quiet hours, HH:MM-HH:MM (e.g. 22:00-07:00): nothing is sent then.
    #[arg(long)]
    pub quiet: Option<String>,
    /// Your clock's offset from UTC for --quiet, e.g. +02:00 [default: UTC].
    #[arg(long, allow_hyphen_values = true, default_value = "+00:00")]
    pub utc_offset: String,
    /// Notify even while a TUI of yours shows the session.
    #[arg(long)]
    pub ignore_presence: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cm-tui notify …`.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Subscribe a notification channel.
    #[command(subcommand)]
    Add(AddCommand),
    /// Your channels, their last delivery and failures.
    #[command(after_help = "Examples:\n  cm-tui notify list\n  cm-tui notify list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a test notification to a channel now.
    #[command(after_help = "Example:\n  cm-tui notify test phone")]
    Test {
        /// The channel's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Say a session is on your screen, as the TUI does every few seconds while it shows one:
    /// no notification about it for the next 30 s (unless a channel ignores presence).
    #[command(after_help = "Example:\n  cm-tui notify focus home-box myproject ses_…")]
    Focus {
        /// Host id.
        host: String,
        /// Workspace name.
        workspace: String,
        /// Session id.
        session: String,
    },
    /// Remove a channel.
    #[command(after_help = "Example:\n  cm-tui notify remove phone")]
    Remove {
        /// The channel's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `cm-tui notify add …`.
#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// An ntfy topic (https://ntfy.sh or your own server): the ntfy app on your phone shows
    /// each notification with the `cm-tui` command that answers it.
    #[command(
        after_help = "Examples:\n  cm-tui notify add ntfy --server https://ntfy.sh --topic cm-alice-7f3k --name phone\n  NTFY_TOKEN=tk_… cm-tui notify add ntfy --server https://ntfy.example.org --topic cm --token-env NTFY_TOKEN --events permission,question --quiet 22:00-07:00 --utc-offset +01:00"
    )]
    Ntfy {
        /// The ntfy server.
        #[arg(long)]
        server: String,
        /// The topic (anyone who knows a public server's topic can read it: pick a long one).
        #[arg(long)]
        topic: String,
        /// The environment variable holding an ntfy access token.
        #[arg(long, value_name = "VAR")]
        token_env: Option<String>,
        #[command(flatten)]
        options: ChannelOptions,
    },
    /// A webhook: a JSON POST signed with HMAC-SHA256 of the body under your secret, in the
    /// header `X-CodeMantle-Signature: sha256=<hex>`.
    #[command(
        after_help = "Example:\n  HOOK_SECRET=$(openssl rand -hex 32) cm-tui notify add webhook --url https://hooks.example.org/cm --secret-env HOOK_SECRET --events permission,failed"
    )]
    Webhook {
        /// The URL.
        #[arg(long)]
        url: String,
        /// The environment variable holding the signing secret.
        #[arg(long, value_name = "VAR")]
        secret_env: String,
        #[command(flatten)]
        options: ChannelOptions,
    },
}

fn from_env(var: &str) -> Result<String, CommandError> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(CommandError::BadInput(format!(
            "environment variable {var} is not set or empty; export it with the secret first"
        ))),
    }
}

/// `+HH:MM` / `-HH:MM` as minutes.
///
/// # Errors
/// Anything else, with what to write.
pub fn parse_offset(s: &str) -> Result<i16, CommandError> {
    let bad = || CommandError::BadInput(format!("--utc-offset {s:?}: write +HH:MM or -HH:MM"));
    let (sign, rest) = match s.split_at_checked(1) {
        Some(("+", r)) => (1, r),
        Some(("-", r)) => (-1, r),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i16, i16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m))
}

/// The spec `notify add` sends.
///
/// # Errors
/// Bad events, quiet hours or offset; an unset secret variable.
pub fn spec_of(command: AddCommand) -> Result<(ChannelSpec, bool), CommandError> {
    let (target, secret, options, default_name) = match command {
        AddCommand::Ntfy {
            server,
            topic,
            token_env,
            options,
        } => (
            ChannelTarget::Ntfy { server, topic },
            token_env.as_deref().map(from_env).transpose()?,
            options,
            "ntfy",
        ),
        AddCommand::Webhook {
            url,
            secret_env,
            options,
        } => (
            ChannelTarget::Webhook { url },
            Some(from_env(&secret_env)?),
            options,
            "webhook",
        ),
    };
    let events = options
        .events
        .iter()
        .map(|e| NotifyEvent::parse(e.trim()).map_err(CommandError::BadInput))
        .collect::<Result<Vec<_>, _>>()?;
    let offset = parse_offset(&options.utc_offset)?;
    let quiet = options
        .quiet
        .as_deref()
        .map(|q| QuietHours::parse(q, offset).map_err(CommandError::BadInput))
        .transpose()?;
    let spec = ChannelSpec {
        name: options.name.unwrap_or_else(|| default_name.into()),
        target,
        secret,
        events,
        quiet,
        ignore_presence: options.ignore_presence,
    };
    proto::notify::check_spec(&spec).map_err(CommandError::BadInput)?;
    Ok((spec, options.json))
}

/// How long ago `then_ms` was, in words.
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    let s = now_ms.saturating_sub(then_ms) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// One channel's delivery state in words (`ok, last 3 min ago`, `FAILING: …`, `BROKEN: …`
/// for a channel the relay cannot use).
pub fn health(c: &ChannelInfo, now_ms: u64) -> String {
    if c.target == ChannelTarget::Unknown {
        return format!(
            "BROKEN (nothing is sent to it): {}",
            sanitize(c.last_error.as_deref().unwrap_or("the relay cannot use it"))
        );
    }
    if c.failures > 0 {
        let when = c.last_error_ms.map(|t| ago(now_ms, t)).unwrap_or_default();
        return format!(
            "FAILING ({} failed attempts, last {when}: {})",
            c.failures,
            sanitize(c.last_error.as_deref().unwrap_or("?"))
        );
    }
    match c.last_ok_ms {
        Some(t) => format!("ok ({} delivered, last {})", c.delivered, ago(now_ms, t)),
        None => "nothing sent yet".into(),
    }
}

/// What a `notify_test` came to, in words: what was sent, or why not and what to do.
///
/// # Errors
/// The failure's text when the receiver did not take it.
pub fn tested_text(name: &str, tested: &NotifyTested) -> Result<String, String> {
    if tested.delivered {
        return Ok(format!("sent a test notification to {}", sanitize(name)));
    }
    Err(format!(
        "the test notification to {} failed: {}; fix the channel (cm-tui notify add … replaces it) and try again",
        sanitize(name),
        sanitize(tested.error.as_deref().unwrap_or("?"))
    ))
}

/// The channels as `notify list` prints them.
pub fn render_list(list: &[ChannelInfo], now_ms: u64) -> String {
    if list.is_empty() {
        return "no notification channels; add one: cm-tui notify add ntfy --server https://ntfy.sh --topic YOUR-TOPIC\n".into();
    }
    let mut out = String::new();
    for c in list {
        let events: Vec<&str> = c.events.iter().map(|e| e.as_str()).collect();
        out.push_str(&format!(
            "{}  {}  {}{}\n  events: {}{}{}\n  {}\n",
            sanitize(&c.name),
            c.target.kind(),
            sanitize(&c.target.describe()),
            if c.has_secret { "  (secret set)" } else { "" },
            events.join(","),
            c.quiet.map(|q| format!("  quiet: {q}")).unwrap_or_default(),
            if c.ignore_presence {
                "  (also while on screen)"
            } else {
                ""
            },
            health(c, now_ms)
        ));
    }
    out
}

/// Runs `cm-tui notify …`.
///
/// # Errors
/// Bad input, refusals and transport failures.
pub async fn run(remote: &Remote, command: NotifyCommand) -> Result<(), CommandError> {
    let now = cm_client::time::now_ms();
    match command {
        NotifyCommand::Add(add) => {
            let (spec, json) = spec_of(add)?;
            let info = remote.call_relay::<op::NotifyAdd>(&spec).await?;
            if json {
                println!("{}", proto::text::json_pretty(&info)?);
            } else {
                println!(
                    "added {} ({} → {}); try it: cm-tui notify test {}",
                    sanitize(&info.name),
                    info.target.kind(),
                    sanitize(&info.target.describe()),
                    sanitize(&info.name)
                );
            }
        }
        NotifyCommand::List { json } => {
            let list = remote.call_relay::<op::NotifyList>(&()).await?;
            if json {
                println!("{}", proto::text::json_pretty(&list)?);
            } else {
                print!("{}", render_list(&list, now));
            }
        }
        NotifyCommand::Test { name, json } => {
            let tested: NotifyTested = remote
                .call_relay::<op::NotifyTest>(&ChannelName { name: name.clone() })
                .await?;
            if json {
                println!("{}", proto::text::json_pretty(&tested)?);
            } else {
                println!(
                    "{}",
                    tested_text(&name, &tested).map_err(CommandError::Ended)?
                );
            }
        }
        NotifyCommand::Focus {
            host,
            workspace,
            session,
        } => {
            remote
                .call_relay::<op::NotifyFocus>(&Focus {
                    host,
                    workspace,
                    session,
                })
                .await?;
        }
        NotifyCommand::Remove { name, json } => {
            let removed = remote
                .call_relay::<op::NotifyRemove>(&ChannelName { name: name.clone() })
                .await?;
            if json {
                println!("{}", proto::text::json_pretty(&removed)?);
            } else {
                println!("removed {}", sanitize(&name));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ChannelInfo {
        ChannelInfo {
            name: "phone".into(),
            target: ChannelTarget::Ntfy {
                server: "https://ntfy.sh".into(),
                topic: "cm".into(),
            },
            has_secret: true,
            events: vec![NotifyEvent::Permission],
            quiet: Some(QuietHours::parse("22:00-07:00", 60).unwrap()),
            ignore_presence: false,
            delivered: 3,
            last_ok_ms: Some(0),
            last_error_ms: None,
            last_error: None,
            failures: 0,
        }
    }

    #[test]
    fn a_list_shows_where_what_when_and_failures_never_a_secret() {
        let mut c = info();
        let text = render_list(std::slice::from_ref(&c), 180_000);
        assert!(
            text.contains("phone  ntfy  https://ntfy.sh/cm  (secret set)"),
            "{text}"
        );
        assert!(text.contains("quiet: 22:00-07:00 UTC+01:00"), "{text}");
        assert!(text.contains("ok (3 delivered, last 3 min ago)"), "{text}");
        c.failures = 2;
        c.last_error = Some("the receiver answered HTTP 500".into());
        c.last_error_ms = Some(170_000);
        let text = render_list(&[c], 180_000);
        assert!(
            text.contains(
                "FAILING (2 failed attempts, last 10 s ago: the receiver answered HTTP 500)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_channel_the_relay_cannot_use_is_shown_broken_with_why() {
        let mut c = info();
        c.target = ChannelTarget::Unknown;
        c.has_secret = false;
        c.failures = 1;
        c.last_error = Some("its stored secret does not open with this relay's key".into());
        let text = render_list(&[c], 0);
        assert!(
            text.contains("phone  unknown  (unreadable by this relay)"),
            "{text}"
        );
        assert!(
            text.contains("BROKEN (nothing is sent to it): its stored secret does not open"),
            "{text}"
        );
    }

    #[test]
    fn offsets_and_events_are_checked_before_sending() {
        assert_eq!(parse_offset("+01:30").unwrap(), 90);
        assert_eq!(parse_offset("-05:00").unwrap(), -300);
        assert!(parse_offset("1").is_err());
        let add = AddCommand::Ntfy {
            server: "https://ntfy.sh".into(),
            topic: "t".into(),
            token_env: None,
            options: ChannelOptions {
                name: None,
                events: vec!["permission".into(), "nope".into()],
                quiet: None,
                utc_offset: "+00:00".into(),
                ignore_presence: false,
                json: false,
            },
        };
        let err = spec_of(add).unwrap_err().to_string();
        assert!(err.contains("unknown event \"nope\""), "{err}");
        let add = AddCommand::Webhook {
            url: "https://h.example/x".into(),
            secret_env: "CM_TEST_SURELY_UNSET_VAR".into(),
            options: ChannelOptions {
                name: None,
                events: vec![],
                quiet: Some("22:00-07:00".into()),
                utc_offset: "+00:00".into(),
                ignore_presence: false,
                json: false,
            },
        };
        let err = spec_of(add).unwrap_err().to_string();
        assert!(err.contains("CM_TEST_SURELY_UNSET_VAR is not set"), "{err}");
    }
}
