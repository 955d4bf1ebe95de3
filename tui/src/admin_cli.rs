//! `cm-tui admin …`: administration through the relay for admins and owners (users, grants,
//! hosts, credentials, the kill switch, the audit trail), for scripts (`--json`) and people.
//! The relay authorizes and audits each request; changes that touch admin or owner rights are
//! sent as `grant_admin` (owners only), everything else about users as `user_manage`.

mod text;

pub use text::{audit_text, creds_text, users_text};
use text::{done_text, enrolled_text, print};

use crate::admin_trust_cli::{self as trust_cli, Revoke, TrustCommand};
use crate::commands::CommandError;
use crate::profile::Profile;
use crate::relay_call::{RelayConn, call};
use crate::remote::Remote;
use clap::Subcommand;
use proto::admin::{
    AdminDone, AuditEntry, AuditQuery, CredInfo, CredName, CredsQuery, HostAdd, HostEnrolled,
    HostName, HostRequest, HostRotated, KillTarget, UserInfo, UserRequest,
};
use proto::header::Op;
use proto::op;
use proto::rbac::Role;

/// `cm-tui admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Users and their grants.
    #[command(subcommand)]
    User(UserCommand),
    /// Enrolled hosts.
    #[command(subcommand)]
    Host(HostCommand),
    /// Login credentials.
    #[command(subcommand)]
    Creds(CredsCommand),
    /// Zero-trust: this laptop's root, certificates, revocation lists.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Kill switch: revoke credentials or hosts and close their connections at once; the
    /// affected OpenCode processes stop. For a user or a credential, this laptop (an owner's
    /// or admin's) also revokes the user's certificates and device keys for zero-trust hosts.
    #[command(
        after_help = "Examples:\n  cm-tui admin kill --user mallory\n  cm-tui admin kill --host home-box\n  cm-tui admin kill --all"
    )]
    #[command(group(clap::ArgGroup::new("target").required(true).args(["user", "host", "cred", "all"])))]
    Kill {
        /// Every credential of this user.
        #[arg(long)]
        user: Option<String>,
        /// This host.
        #[arg(long)]
        host: Option<String>,
        /// One credential.
        #[arg(long)]
        cred: Option<String>,
        /// Every operator credential and every host.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read the audit trail (newest last).
    #[command(after_help = "Example:\n  cm-tui admin audit --user bob --limit 20")]
    Audit {
        /// Only rows whose actor is this user.
        #[arg(long)]
        user: Option<String>,
        /// Only rows about this host.
        #[arg(long)]
        host: Option<String>,
        /// How many of the newest matching rows (at most 1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `admin user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List users and their grants.
    #[command(after_help = "Example:\n  cm-tui admin user list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a user with one grant; prints their one-time invite.
    #[command(after_help = "Example:\n  cm-tui admin user add bob --role operator --host home-box")]
    Add {
        /// User name.
        name: String,
        /// viewer, operator, admin or owner (admin and owner: owners only).
        #[arg(long, default_value = "operator", value_parser = role_arg)]
        role: Role,
        /// Host or `*`.
        #[arg(long, default_value = "*")]
        host: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user (never the last owner); their connections close.
    #[command(after_help = "Example:\n  cm-tui admin user remove bob")]
    Remove {
        /// User name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (one line of standard input).
    #[command(after_help = "Example:\n  echo \"$PW\" | cm-tui admin user passwd bob")]
    Passwd {
        /// User name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Grant a role on a host (replaces an earlier grant there).
    #[command(after_help = "Example:\n  cm-tui admin user grant bob viewer --host home-box")]
    Grant {
        /// User name.
        name: String,
        /// viewer, operator, admin or owner.
        #[arg(value_parser = role_arg)]
        role: Role,
        /// Host or `*`.
        #[arg(long, default_value = "*")]
        host: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Certify a user's device keys (after comparing fingerprints): one certificate per grant.
    #[command(
        after_help = "Examples:\n  cm-tui admin user certify bob\n  cm-tui admin user certify bob --grant home-box=operator\n  cm-tui admin user certify bob --key ed25519:1a2b-3c4d-5e6f-7a8b --grant '*=viewer' --yes\n\nWithout --grant the grants to sign are the relay's list for the user, and without --key its\nlist of their pending keys: both are shown for you to check before you confirm; --yes needs\n--key and --grant, so a relay never chooses what you sign."
    )]
    Certify {
        /// User name.
        name: String,
        /// Only this pending device key (fingerprint or hex) [default: all pending keys].
        #[arg(long)]
        key: Option<String>,
        /// Sign exactly this grant, HOST=ROLE (HOST a host name or `*`; repeatable) instead of
        /// the relay's list of the user's grants. Required with --yes (as is --key).
        #[arg(long = "grant", value_name = "HOST=ROLE")]
        grants: Vec<String>,
        /// Do not ask for confirmation (needs --key and --grant).
        #[arg(long)]
        yes: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user's grant on a host.
    #[command(after_help = "Example:\n  cm-tui admin user revoke bob --host home-box")]
    Revoke {
        /// User name.
        name: String,
        /// Host or `*`.
        #[arg(long, default_value = "*")]
        host: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `admin host` subcommands.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Enrolled hosts, revoked ones included.
    #[command(after_help = "Example:\n  cm-tui admin host list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enroll a host: prints the token for `cm-agent enroll` (a secret).
    #[command(
        after_help = "Examples:\n  cm-tui admin host add home-box\n  # then on the host: cm-agent enroll <token>"
    )]
    Add {
        /// Host name.
        name: String,
        /// Relay address to put in the token [default: the relay's public address].
        #[arg(long)]
        relay_addr: Option<String>,
        /// Enroll without this laptop's roots: the host believes the relay about operators.
        #[arg(long)]
        relay_trusted: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Certify the end-to-end key a host this laptop added claimed (it proves the bind secret).
    #[command(after_help = "Example:\n  cm-tui admin host certify home-box")]
    Certify {
        /// Host name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a host: its agent disconnects and stops its OpenCode processes.
    #[command(after_help = "Example:\n  cm-tui admin host revoke home-box")]
    Revoke {
        /// Host name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give a host a new secret: prints the token to re-enroll it with.
    #[command(after_help = "Example:\n  cm-tui admin host rotate home-box")]
    Rotate {
        /// Host name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `admin creds` subcommands.
#[derive(Debug, Subcommand)]
pub enum CredsCommand {
    /// Live credentials (never their secrets).
    #[command(after_help = "Example:\n  cm-tui admin creds list --user bob --all")]
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// Include revoked and expired ones.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one credential; its connection closes within a second.
    #[command(after_help = "Example:\n  cm-tui admin creds revoke c0123456789abcdef")]
    Revoke {
        /// Credential id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A `host_rotate` answer of the other shape than asked for.
fn unexpected(what: &str) -> CommandError {
    CommandError::Link(cm_client::LinkError::Protocol(format!(
        "the relay answered host_rotate without {what}"
    )))
}

/// Parses a role argument; clap puts the flag's name in front of the message.
fn role_arg(name: &str) -> Result<Role, String> {
    Role::parse(name)
        .ok_or_else(|| format!("unknown role {name:?}; use one of viewer, operator, admin, owner"))
}

/// The operation a user change is sent as: `grant_admin` when it gives, takes or touches
/// admin or owner rights (the target's grants are looked up first), else `user_manage`.
async fn user_op(remote: &Remote, req: &UserRequest) -> Result<Op, CommandError> {
    let held = match req {
        UserRequest::Add { .. } => Vec::new(),
        _ => {
            let users: Vec<UserInfo> = call::<op::UserList>(remote, &()).await?;
            users
                .into_iter()
                .find(|u| u.name == req.user())
                .map(|u| u.grants)
                .unwrap_or_default()
        }
    };
    Ok(proto::admin::required_op(req, &held))
}

/// Prints what a revocation did (on stderr: stdout stays the command's answer, JSON too).
fn tell(said: Option<String>) {
    if let Some(said) = said {
        eprintln!("{said}");
    }
}

/// Whose credential `id` is (revoked ones included), for revoking their device keys too.
pub(crate) async fn cred_owner(remote: &impl RelayConn, id: &str) -> Option<String> {
    let query = CredsQuery {
        user: None,
        all: true,
    };
    call::<op::CredsList>(remote, &query)
        .await
        .ok()
        .and_then(|cs: Vec<CredInfo>| cs.into_iter().find(|c| c.id == id))
        .map(|c| c.user)
}

async fn user_change(
    remote: &Remote,
    profile: &Profile,
    req: UserRequest,
    json: bool,
) -> Result<(), CommandError> {
    // Both operations take a user change and answer what was done.
    let mut done: AdminDone = match user_op(remote, &req).await? {
        Op::GrantAdmin => call::<op::GrantAdmin>(remote, &req).await?,
        _ => call::<op::UserManage>(remote, &req).await?,
    };
    // Invites carry this laptop's pinned roots: the new user's laptop pins them at login.
    trust_cli::seal_invite(profile, &mut done)?;
    print(json, &done, done_text)?;
    if let Some((name, which)) = trust_cli::revocation_after(&req) {
        tell(trust_cli::revoke_user(remote, profile, name, which).await?);
    }
    Ok(())
}

/// Runs one `cm-tui admin` command. `password` supplies the password for `user passwd`.
///
/// # Errors
/// Refusals (typed, naming the role needed), transport failures.
pub async fn run(
    remote: &Remote,
    profile: &Profile,
    command: AdminCommand,
    password: impl FnOnce() -> std::io::Result<String>,
) -> Result<(), CommandError> {
    match command {
        AdminCommand::User(c) => match c {
            UserCommand::List { json } => {
                let users: Vec<UserInfo> = call::<op::UserList>(remote, &()).await?;
                print(json, &users, |u| users_text(u))
            }
            UserCommand::Add {
                name,
                role: r,
                host,
                json,
            } => {
                let req = UserRequest::Add {
                    name,
                    role: r,
                    host,
                };
                user_change(remote, profile, req, json).await
            }
            UserCommand::Remove { name, json } => {
                user_change(remote, profile, UserRequest::Remove { name }, json).await
            }
            UserCommand::Passwd { name, json } => {
                let password = password()?;
                user_change(
                    remote,
                    profile,
                    UserRequest::Passwd { name, password },
                    json,
                )
                .await
            }
            UserCommand::Grant {
                name,
                role: r,
                host,
                json,
            } => {
                let req = UserRequest::Grant {
                    name,
                    role: r,
                    host,
                };
                user_change(remote, profile, req, json).await
            }
            UserCommand::Certify {
                name,
                key,
                grants,
                yes,
                json,
            } => {
                let what = trust_cli::Certify {
                    name,
                    key,
                    grants,
                    yes,
                };
                trust_cli::user_certify(remote, profile, what, json, password).await
            }
            UserCommand::Revoke { name, host, json } => {
                user_change(remote, profile, UserRequest::Revoke { name, host }, json).await
            }
        },
        AdminCommand::Host(c) => match c {
            HostCommand::List { json } => {
                let HostRotated::List(hosts) =
                    call::<op::HostRotate>(remote, &HostRequest::List).await?
                else {
                    return Err(unexpected("a host list"));
                };
                print(json, &hosts, |hs| {
                    hs.iter()
                        .map(|h| {
                            format!(
                                "{:<24} {}\n",
                                h.name,
                                if h.revoked { "revoked" } else { "enrolled" }
                            )
                        })
                        .collect()
                })
            }
            HostCommand::Add {
                name,
                relay_addr,
                relay_trusted,
                json,
            } => {
                if !relay_trusted {
                    trust_cli::require_roots(profile)?;
                }
                let mut e: HostEnrolled =
                    call::<op::HostAdd>(remote, &HostAdd { name, relay_addr }).await?;
                if !relay_trusted {
                    trust_cli::seal_enrollment(profile, &mut e)?;
                }
                print(json, &e, enrolled_text)
            }
            HostCommand::Certify { name, json } => {
                trust_cli::host_certify(remote, profile, name, json).await
            }
            HostCommand::Revoke { name, json } => {
                let d: AdminDone = call::<op::HostRevoke>(remote, &HostName { name }).await?;
                print(json, &d, done_text)
            }
            HostCommand::Rotate { name, json } => {
                let HostRotated::Rotated(mut e) =
                    call::<op::HostRotate>(remote, &HostRequest::Rotate { name }).await?
                else {
                    return Err(unexpected("a new token"));
                };
                // A laptop with roots re-enrolls the host zero-trust (new bind secret).
                if trust_cli::has_roots(profile)? {
                    trust_cli::seal_enrollment(profile, &mut e)?;
                }
                print(json, &e, enrolled_text)
            }
        },
        AdminCommand::Creds(c) => match c {
            CredsCommand::List { user, all, json } => {
                let creds: Vec<CredInfo> =
                    call::<op::CredsList>(remote, &CredsQuery { user, all }).await?;
                print(json, &creds, |cs| creds_text(cs))
            }
            CredsCommand::Revoke { id, json } => {
                let owner = cred_owner(remote, &id).await;
                let d: AdminDone = call::<op::CredsRevoke>(remote, &CredName { id }).await?;
                print(json, &d, done_text)?;
                if let Some(user) = owner {
                    let said =
                        trust_cli::revoke_user(remote, profile, &user, Revoke::Everything).await?;
                    tell(said);
                }
                Ok(())
            }
        },
        AdminCommand::Trust(c) => trust_cli::run(remote, profile, c).await,
        AdminCommand::Kill {
            user,
            host,
            cred,
            all,
            json,
        } => {
            let target = match (user, host, cred, all) {
                (Some(name), None, None, false) => KillTarget::User { name },
                (None, Some(name), None, false) => KillTarget::Host { name },
                (None, None, Some(id), false) => KillTarget::Cred { id },
                (None, None, None, true) => KillTarget::All,
                _ => {
                    return Err(CommandError::BadInput(
                        "name exactly one of --user, --host, --cred or --all".into(),
                    ));
                }
            };
            // Whose certificates and device keys zero-trust hosts must stop taking too.
            let whose = match &target {
                KillTarget::User { name } => Some(name.clone()),
                KillTarget::Cred { id } => cred_owner(remote, id).await,
                KillTarget::Host { .. } | KillTarget::All => None,
            };
            let d: AdminDone = call::<op::Kill>(remote, &target).await?;
            print(json, &d, done_text)?;
            if let Some(user) = whose {
                tell(trust_cli::revoke_user(remote, profile, &user, Revoke::Everything).await?);
            }
            Ok(())
        }
        AdminCommand::Audit {
            user,
            host,
            limit,
            json,
        } => {
            let q = AuditQuery {
                user,
                host,
                before_id: None,
                limit,
            };
            let rows: Vec<AuditEntry> = call::<op::AuditRead>(remote, &q).await?;
            print(json, &rows, |r| audit_text(r))
        }
    }
}

#[cfg(test)]
mod tests;
