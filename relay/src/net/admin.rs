//! The administration operations the relay answers itself (bodies in `proto::admin`). The one
//! authorization point (`requests::serve`) has already decided the header's operation; here the
//! body is read (within the body timeout, `body`), handed to the administration domain
//! (`crate::admin`, which checks the body's own access rules through `crate::authz` and makes
//! and audits the change with the same functions the `cm-relay` CLI uses), and reads and
//! refusals are audited as one row naming what was done.

use super::Shared;
use super::body;
use super::error::RequestError;
use super::principal::Principal;
use crate::admin::{self, AdminChange, AdminError};
use crate::audit_event::Audit;
use crate::framed::FramedRecv;
use crate::state::StateDir;
use crate::store::Store;
use proto::admin::{
    AdminDone, AuditQuery, CredName, CredsQuery, HostAdd, HostEnrolled, HostName, HostRequest,
    KillTarget, UserRequest,
};
use proto::header::Op;
use proto::message::Reply;
use proto::token::EnrollmentToken;
use serde::de::DeserializeOwned;
use std::sync::Arc;

type Answer = Result<serde_json::Value, RequestError>;

fn json<T: serde::Serialize>(v: &T) -> Answer {
    serde_json::to_value(v).map_err(|e| RequestError::Internal(e.to_string()))
}

/// Runs `f` on the store's blocking pool.
async fn with_store<R: Send + 'static, E: Into<RequestError> + Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&Store) -> Result<R, E> + Send + 'static,
) -> Result<R, RequestError> {
    shared
        .store
        .call(move |s| Ok(f(s)))
        .await?
        .map_err(Into::into)
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
    send: quinn::SendStream,
    mut recv: FramedRecv,
) {
    let mut done = Done::default();
    let answer = answer(shared, principal, op, &mut recv, &mut done).await;
    // The body is read (or given up on): nothing more is taken from this stream.
    drop(recv);
    let row = |refusal: Option<String>| Audit::AdminRequest {
        actor: principal.user.clone(),
        role,
        op: done.read.unwrap_or(op.as_str()),
        target: done.target.clone(),
        refusal,
    };
    let reply = match answer {
        Err(e) => {
            tracing::info!(user = %principal.user, op = op.as_str(), error = %e, "administration refused");
            let wire = e.wire();
            shared.audit(row(Some(wire.message.clone()))).await;
            Reply::Error(wire)
        }
        Ok(v) => {
            if done.read.is_some() {
                shared.audit_unwaited(row(None));
            }
            Reply::Ok(v)
        }
    };
    body::send_reply(send, &reply).await;
}

async fn required<T: DeserializeOwned>(
    shared: &Shared,
    recv: &mut FramedRecv,
    op: Op,
) -> Result<T, RequestError> {
    body::required(recv, op, shared.config.handshake_timeout).await
}

async fn optional<T: DeserializeOwned + Default>(
    shared: &Shared,
    recv: &mut FramedRecv,
    op: Op,
) -> Result<T, RequestError> {
    Ok(body::read(recv, op, shared.config.handshake_timeout)
        .await?
        .unwrap_or_default())
}

fn enrolled(token: &EnrollmentToken) -> Answer {
    json(&HostEnrolled {
        name: token.host.0.clone(),
        token: token.encode(),
    })
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
            json(&with_store(shared, admin::user_list).await?)
        }
        Op::UserManage | Op::GrantAdmin => {
            let req: UserRequest = required(shared, recv, op).await?;
            done.target = Some(req.user().to_owned());
            let pin = pin(shared)?;
            json(
                &with_store(shared, move |s| {
                    admin::user_request(s, &pin, &actor, op, &req)
                })
                .await?,
            )
        }
        Op::HostAdd => {
            let req: HostAdd = required(shared, recv, op).await?;
            done.target = Some(req.name.clone());
            let pin = pin(shared)?;
            enrolled(
                &with_store(shared, move |s| {
                    admin::host_enroll(s, &pin, &actor, &req.name, req.relay_addr, false)
                })
                .await?,
            )
        }
        Op::HostRevoke => {
            let req: HostName = required(shared, recv, op).await?;
            done.target = Some(req.name.clone());
            summary(
                with_store(shared, move |s| {
                    admin::apply_change(s, &actor, AdminChange::RevokeHost { host: &req.name })
                })
                .await?,
            )
        }
        Op::HostRotate => match required::<HostRequest>(shared, recv, op).await? {
            HostRequest::List => {
                done.read = Some("host_list");
                json(&with_store(shared, admin::host_entries).await?)
            }
            HostRequest::Rotate { name } => {
                done.target = Some(name.clone());
                let pin = pin(shared)?;
                enrolled(
                    &with_store(shared, move |s| {
                        admin::rotate_host(s, &pin, &actor, &name, None)
                    })
                    .await?,
                )
            }
        },
        Op::CredsList => {
            let q: CredsQuery = optional(shared, recv, op).await?;
            done.read = Some("creds_list");
            done.target.clone_from(&q.user);
            json(&with_store(shared, move |s| admin::creds(s, &q)).await?)
        }
        Op::CredsRevoke => {
            let req: CredName = required(shared, recv, op).await?;
            done.target = Some(req.id.clone());
            summary(
                with_store(shared, move |s| {
                    admin::revoke_credential(s, &actor, op, &req.id)
                })
                .await?,
            )
        }
        Op::Kill => {
            let target: KillTarget = required(shared, recv, op).await?;
            done.target = Some(match &target {
                KillTarget::User { name } => format!("user {name}"),
                KillTarget::Host { name } => format!("host {name}"),
                KillTarget::Cred { id } => format!("credential {id}"),
                KillTarget::All => "everything".to_owned(),
            });
            summary(with_store(shared, move |s| admin::kill(s, &actor, op, &target)).await?)
        }
        Op::AuditRead => {
            let q: AuditQuery = optional(shared, recv, op).await?;
            done.read = Some("audit_read");
            json(&with_store(shared, move |s| admin::audit_page(s, &q)).await?)
        }
        other => Err(RequestError::NotServed(other)),
    }
}

fn summary(summary: String) -> Answer {
    json(&AdminDone {
        summary,
        invite: None,
    })
}

fn pin(shared: &Arc<Shared>) -> Result<String, RequestError> {
    StateDir::new(&shared.config.state_dir)
        .pin()
        .map_err(|e| RequestError::Admin(AdminError::State(e)))
}
