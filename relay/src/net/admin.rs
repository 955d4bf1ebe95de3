//! The administration operations the relay answers itself (bodies in `proto::admin`). The one
//! authorization point (`requests::serve`) has already decided the header's operation and
//! audited it; here the body is read, checked against the header (a change touching admin or
//! owner rights must come as `grant_admin`), carried out through the same functions the
//! `cm-relay` CLI uses (so rules like "the last owner stays" hold on both paths), and audited
//! again as the change itself.

use super::Shared;
use super::conn::Principal;
use crate::authz;
use crate::cli::{self, AdminChange, CliError};
use crate::framed::{FramedRecv, send_frame};
use crate::state::StateDir;
use crate::store::{AuditEvent, Store, StoreError};
use proto::admin::{
    AdminDone, AuditEntry, AuditQuery, CredInfo, CredName, CredsQuery, GrantInfo, HostAdd,
    HostEnrolled, HostEntry, HostName, HostRequest, KillTarget, MAX_AUDIT_ROWS, UserInfo,
    UserRequest,
};
use proto::frame::MAX_FRAME_LEN;
use proto::handshake::PeerKind;
use proto::header::Op;
use proto::ids::{CredId, UserId};
use proto::message::Reply;
use proto::wire_error::{ErrorCode, WireError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Rows returned when the query names no limit.
const AUDIT_DEFAULT: usize = 50;

type Answer = Result<serde_json::Value, WireError>;

fn internal(e: &dyn std::fmt::Display) -> WireError {
    tracing::error!(error = %e, "administration failed");
    WireError::new(ErrorCode::Internal, "relay store failure; see its log")
}

/// What the operator sees for a failed change.
fn public(e: CliError) -> WireError {
    match e {
        CliError::Input(m) => WireError::new(ErrorCode::BadRequest, m),
        CliError::Forbidden(m) => WireError::new(ErrorCode::Forbidden, m),
        CliError::NotFound(m) => WireError::new(ErrorCode::NotFound, m),
        CliError::Store(e @ StoreError::NoGrant { .. }) => WireError::new(
            ErrorCode::NotFound,
            format!("{e}; see `cm-tui admin user list`"),
        ),
        CliError::Store(StoreError::Missing { what, name }) => WireError::new(
            ErrorCode::NotFound,
            format!("no {what} named {name:?}; see the list"),
        ),
        CliError::Store(e @ StoreError::Exists { .. }) => {
            WireError::new(ErrorCode::Conflict, e.to_string())
        }
        CliError::Store(StoreError::Refused(m)) => WireError::new(ErrorCode::Conflict, m),
        other => internal(&other),
    }
}

fn json<T: Serialize>(v: &T) -> Answer {
    serde_json::to_value(v).map_err(|e| internal(&e))
}

async fn body<T: DeserializeOwned>(recv: &mut FramedRecv, op: Op) -> Result<Option<T>, WireError> {
    recv.next::<T>().await.map_err(|e| {
        WireError::new(
            ErrorCode::BadRequest,
            format!("malformed body for {}: {e}", op.as_str()),
        )
    })
}

async fn required<T: DeserializeOwned>(recv: &mut FramedRecv, op: Op) -> Result<T, WireError> {
    body(recv, op).await?.ok_or_else(|| {
        WireError::new(
            ErrorCode::BadRequest,
            format!("{} needs a request body", op.as_str()),
        )
    })
}

/// Runs `f` on the store's blocking pool; its `CliError` becomes the public error.
async fn with_store<R: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&Store) -> Result<R, CliError> + Send + 'static,
) -> Result<R, WireError> {
    shared
        .store
        .call(move |s| Ok(f(s)))
        .await
        .map_err(|e| internal(&e))?
        .map_err(public)
}

/// What one administration request did, for its one audit row: the operation's own name
/// (`host_list`, not the `host_rotate` it travels as) and its target.
#[derive(Debug, Default)]
struct Done {
    /// Set by reads, which the change functions do not audit themselves.
    read: Option<&'static str>,
    target: Option<String>,
}

/// Serves one administration stream whose header `op` was authorized. Audits it as one row:
/// changes are recorded by the functions that make them (shared with the `cm-relay` CLI),
/// reads and refusals here.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    principal: &Principal,
    role: Option<proto::rbac::Role>,
    op: Op,
    mut send: quinn::SendStream,
    mut recv: FramedRecv,
) {
    let mut done = Done::default();
    let answer = answer(shared, principal, op, &mut recv, &mut done).await;
    let event = AuditEvent {
        actor: principal.user.0.clone(),
        role: role.map(|r| r.as_str().to_owned()),
        op: done.read.unwrap_or(op.as_str()).to_owned(),
        target: done.target.clone(),
        ..AuditEvent::default()
    };
    match &answer {
        Err(e) => {
            tracing::info!(user = %principal.user, op = op.as_str(), error = %e, "administration refused");
            shared
                .audit(AuditEvent {
                    decision: "deny".into(),
                    reason: Some(e.message.clone()),
                    ..event
                })
                .await;
        }
        Ok(_) if done.read.is_some() => shared.audit_unwaited(AuditEvent {
            decision: "allow".into(),
            ..event
        }),
        Ok(_) => {}
    }
    let reply = match answer {
        Ok(v) => Reply::Ok(v),
        Err(e) => Reply::Error(e),
    };
    let _ = send_frame(&mut send, &reply, MAX_FRAME_LEN).await;
    let _ = send.finish();
}

async fn answer(
    shared: &Arc<Shared>,
    principal: &Principal,
    op: Op,
    recv: &mut FramedRecv,
    done: &mut Done,
) -> Answer {
    let actor = principal.user.0.clone();
    match op {
        Op::UserList => {
            done.read = Some("user_list");
            json(&with_store(shared, |s| Ok(user_list(s)?)).await?)
        }
        Op::UserManage | Op::GrantAdmin => {
            let req: UserRequest = required(recv, op).await?;
            done.target = Some(req.user().to_owned());
            let pin = pin(shared)?;
            json(&with_store(shared, move |s| user_change(s, &pin, &actor, op, &req)).await?)
        }
        Op::HostAdd => {
            let req: HostAdd = required(recv, op).await?;
            done.target = Some(req.name.clone());
            let pin = pin(shared)?;
            let token = with_store(shared, move |s| {
                cli::host_enroll(s, &pin, &actor, &req.name, req.relay_addr, false)
            })
            .await?;
            json(&HostEnrolled {
                name: token.host.0.clone(),
                token: token.encode(),
            })
        }
        Op::HostRevoke => {
            let req: HostName = required(recv, op).await?;
            done.target = Some(req.name.clone());
            summary(
                with_store(shared, move |s| {
                    cli::apply_change(s, &actor, AdminChange::RevokeHost { host: &req.name })
                })
                .await?,
            )
        }
        Op::HostRotate => match required::<HostRequest>(recv, op).await? {
            HostRequest::List => {
                done.read = Some("host_list");
                json(&with_store(shared, |s| Ok(host_entries(s)?)).await?)
            }
            HostRequest::Rotate { name } => {
                done.target = Some(name.clone());
                let pin = pin(shared)?;
                let token = with_store(shared, move |s| {
                    cli::rotate_host(s, &pin, &actor, &name, None)
                })
                .await?;
                json(&HostEnrolled {
                    name: token.host.0.clone(),
                    token: token.encode(),
                })
            }
        },
        Op::CredsList => {
            let q: CredsQuery = body(recv, op).await?.unwrap_or_default();
            done.read = Some("creds_list");
            done.target.clone_from(&q.user);
            json(&with_store(shared, move |s| Ok(creds(s, &q)?)).await?)
        }
        Op::CredsRevoke => {
            let req: CredName = required(recv, op).await?;
            done.target = Some(req.id.clone());
            summary(
                with_store(shared, move |s| {
                    may_manage_cred(s, &actor, op, &req.id)?;
                    cli::apply_change(s, &actor, AdminChange::RevokeCred { id: &req.id })
                })
                .await?,
            )
        }
        Op::Kill => {
            let target: KillTarget = required(recv, op).await?;
            done.target = Some(match &target {
                KillTarget::User { name } => format!("user {name}"),
                KillTarget::Host { name } => format!("host {name}"),
                KillTarget::Cred { id } => format!("credential {id}"),
                KillTarget::All => "everything".to_owned(),
            });
            summary(
                with_store(shared, move |s| {
                    match &target {
                        KillTarget::User { name } => {
                            may_manage(s, &actor, op, &UserId::from(name.as_str()))?;
                        }
                        KillTarget::Cred { id } => may_manage_cred(s, &actor, op, id)?,
                        KillTarget::Host { .. } | KillTarget::All => {}
                    }
                    cli::kill_target(s, &actor, &target)
                })
                .await?,
            )
        }
        Op::AuditRead => {
            let q: AuditQuery = body(recv, op).await?.unwrap_or_default();
            done.read = Some("audit_read");
            json(&with_store(shared, move |s| Ok(audit(s, &q)?)).await?)
        }
        other => Err(WireError::new(
            ErrorCode::UnknownOp,
            format!(
                "{} is not served through the relay; change it in relay.toml on the relay host",
                other.as_str()
            ),
        )),
    }
}

/// Refuses acting on `target`'s credentials unless the one authorization point allows it.
fn may_manage(s: &Store, actor: &str, op: Op, target: &UserId) -> Result<(), CliError> {
    let actor = UserId::from(actor);
    if authz::may_manage_user(&actor, &s.grants(&actor)?, target, &s.grants(target)?) {
        return Ok(());
    }
    Err(CliError::Forbidden(format!(
        "{}: {target} holds admin or owner rights; only an owner (on every host) may act on them",
        op.as_str()
    )))
}

/// [`may_manage`] for the user a credential belongs to (an unknown one is left to the change,
/// which says it is not found).
fn may_manage_cred(s: &Store, actor: &str, op: Op, id: &str) -> Result<(), CliError> {
    match s.find_credential(PeerKind::Operator, &CredId::from(id))? {
        Some(found) => may_manage(s, actor, op, &UserId(found.owner)),
        None => Ok(()),
    }
}

fn summary(summary: String) -> Answer {
    json(&AdminDone {
        summary,
        invite: None,
    })
}

fn pin(shared: &Arc<Shared>) -> Result<String, WireError> {
    StateDir::new(&shared.config.state_dir)
        .pin()
        .map_err(|e| internal(&e))
}

fn user_change(
    s: &Store,
    pin: &str,
    actor: &str,
    op: Op,
    req: &UserRequest,
) -> Result<AdminDone, CliError> {
    let target = UserId::from(req.user());
    let held: Vec<GrantInfo> = s
        .grants(&target)?
        .into_iter()
        .map(|(host, role)| GrantInfo { host, role })
        .collect();
    let needed = proto::admin::required_op(req, &held);
    if needed != op {
        return Err(match needed {
            Op::GrantAdmin => CliError::Forbidden(format!(
                "user_manage: needs role owner: this change touches admin or owner rights of {}; \
                 an owner sends it as grant_admin",
                req.user()
            )),
            _ => CliError::Input(format!(
                "this change to {} does not touch admin or owner rights; send it as user_manage",
                req.user()
            )),
        });
    }
    let mut invite = None;
    let summary = match req {
        UserRequest::Add { name, role, host } => {
            let i = cli::add_user_with_invite(s, pin, actor, name, *role, host)?;
            invite = Some(i.encode());
            format!("added {name} as {role} on {host}")
        }
        UserRequest::Remove { name } => {
            cli::apply_change(s, actor, AdminChange::RemoveUser { user: name })?
        }
        UserRequest::Passwd { name, password } => {
            cli::set_password(s, actor, name, password)?;
            format!("password of {name} changed")
        }
        UserRequest::Grant { name, role, host } => cli::apply_change(
            s,
            actor,
            AdminChange::Grant {
                user: name,
                role: role.as_str(),
                host,
            },
        )?,
        UserRequest::Revoke { name, host } => {
            cli::apply_change(s, actor, AdminChange::RevokeGrant { user: name, host })?
        }
    };
    Ok(AdminDone { summary, invite })
}

fn user_list(s: &Store) -> Result<Vec<UserInfo>, StoreError> {
    Ok(s.list_users()?
        .into_iter()
        .map(|u| UserInfo {
            name: u.name.0,
            has_password: u.has_password,
            grants: u
                .grants
                .into_iter()
                .map(|(host, role)| GrantInfo { host, role })
                .collect(),
        })
        .collect())
}

fn host_entries(s: &Store) -> Result<Vec<HostEntry>, StoreError> {
    Ok(s.list_hosts()?
        .into_iter()
        .map(|h| HostEntry {
            name: h.id.0,
            revoked: h.revoked,
            created_ms: h.created_ms,
        })
        .collect())
}

fn creds(s: &Store, q: &CredsQuery) -> Result<Vec<CredInfo>, StoreError> {
    let now = crate::time::now_ms();
    Ok(s.list_credentials()?
        .into_iter()
        .filter(|c| q.user.as_deref().is_none_or(|u| c.user.as_str() == u))
        .filter(|c| q.all || (!c.revoked && c.expires_ms > now))
        .map(|c| CredInfo {
            id: c.id.0,
            user: c.user.0,
            created_ms: c.created_ms,
            expires_ms: c.expires_ms,
            revoked: c.revoked,
            label: c.label,
        })
        .collect())
}

fn audit(s: &Store, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = match q.limit {
        0 => AUDIT_DEFAULT,
        n => n.min(MAX_AUDIT_ROWS),
    };
    // Filtered and paged in the database: only the rows answered are read.
    let rows = s.audit_page(&crate::store::AuditFilter {
        user: q.user.as_deref(),
        host: q.host.as_deref(),
        before_id: q.before_id,
        limit,
    })?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            ts_ms: r.ts_ms,
            actor: r.event.actor,
            role: r.event.role,
            host: r.event.host,
            op: r.event.op,
            target: r.event.target,
            decision: r.event.decision,
            reason: r.event.reason,
            hash: r.hash,
        })
        .collect())
}
