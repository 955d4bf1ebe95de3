//! The administration operations the relay answers itself (bodies in `proto::admin`), one
//! typed handler each (see `local`). The one authorization point (`requests::serve`) has already
//! decided the header's operation; the body is read by the one body reader (`body::of`), handed
//! to the administration domain (`crate::admin`, which checks the body's own access rules
//! through `crate::authz` and makes and audits the change with the same functions the
//! `cm-relay` CLI uses), and reads and refusals are audited as one row naming what was done.

use super::Shared;
use super::body;
use super::error::RequestError;
use super::local::{Cx, LocalHandler};
use crate::admin::{self, AdminChange, AdminError};
use crate::audit_event::Audit;
use crate::state::StateDir;
use crate::store::Store;
use proto::admin::{
    AdminDone, AuditEntry, AuditQuery, CredInfo, CredName, CredsQuery, HostAdd, HostEnrolled,
    HostName, HostRequest, HostRotated, KillTarget, UserInfo, UserRequest,
};
use proto::header::Op;
use proto::message::Reply;
use proto::op;
use proto::operation::Operation;
use proto::token::EnrollmentToken;
use std::sync::Arc;

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

/// Answers one administration stream whose header `op` was authorized with `answer`, audited
/// as one row: changes are recorded by the functions that make them (shared with the
/// `cm-relay` CLI), reads and refusals here. The reply goes out through `serde_json::Value`
/// (objects with sorted keys, as they always have).
pub(crate) async fn answer_audited<T: serde::Serialize>(
    cx: &Cx<'_>,
    op: Op,
    answer: Result<T, RequestError>,
    send: quinn::SendStream,
) {
    let (shared, principal, done) = (cx.shared, cx.principal, &cx.done);
    let answer = answer.and_then(|v| encode(&v));
    let row = |refusal: Option<String>| Audit::AdminRequest {
        actor: principal.user.clone(),
        role: cx.role,
        op: done.read.unwrap_or(op.as_str()),
        target: done.target.clone(),
        refusal,
    };
    let reply = match answer {
        Err(e) => {
            tracing::info!(user = %principal.user, op = op.as_str(), error = %e, "administration refused");
            let wire = e.wire();
            shared.audit_kept(row(Some(wire.message.clone()))).await;
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

/// An administration answer as it goes out: through `serde_json::Value`, so objects have
/// sorted keys (as before the handlers were typed; the wire stays byte-identical).
fn encode<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, RequestError> {
    serde_json::to_value(v).map_err(|e| RequestError::Internal(e.to_string()))
}

fn enrolled(token: &EnrollmentToken) -> HostEnrolled {
    HostEnrolled {
        name: token.host.0.clone(),
        token: token.encode(),
    }
}

fn summary(summary: String) -> AdminDone {
    AdminDone {
        summary,
        invite: None,
    }
}

fn pin(shared: &Arc<Shared>) -> Result<String, RequestError> {
    // With the configured store: on PostgreSQL there is no relay.db, and a state directory
    // without one would read as not initialised.
    StateDir::new(&shared.config.state_dir)
        .with_store(shared.config.store.clone())
        .pin()
        .map_err(|e| RequestError::Admin(AdminError::State(e)))
}

fn actor(cx: &Cx<'_>) -> String {
    cx.principal.user.0.clone()
}

impl LocalHandler for op::UserList {
    async fn handle(cx: &mut Cx<'_>, (): ()) -> Result<Vec<UserInfo>, RequestError> {
        cx.done.read = Some(Self::OP.as_str());
        with_store(cx.shared, admin::user_list).await
    }
}

/// `user_manage` and `grant_admin`: one body type, told apart by the operation.
async fn user_request(
    cx: &mut Cx<'_>,
    op: Op,
    req: UserRequest,
) -> Result<AdminDone, RequestError> {
    cx.done.target = Some(req.user().to_owned());
    let (pin, actor) = (pin(cx.shared)?, actor(cx));
    with_store(cx.shared, move |s| {
        admin::user_request(s, &pin, &actor, op, &req)
    })
    .await
}

impl LocalHandler for op::UserManage {
    async fn handle(cx: &mut Cx<'_>, req: UserRequest) -> Result<AdminDone, RequestError> {
        user_request(cx, Self::OP, req).await
    }
}

impl LocalHandler for op::GrantAdmin {
    async fn handle(cx: &mut Cx<'_>, req: UserRequest) -> Result<AdminDone, RequestError> {
        user_request(cx, Self::OP, req).await
    }
}

impl LocalHandler for op::HostAdd {
    async fn handle(cx: &mut Cx<'_>, req: HostAdd) -> Result<HostEnrolled, RequestError> {
        cx.done.target = Some(req.name.clone());
        let (pin, actor) = (pin(cx.shared)?, actor(cx));
        let token = with_store(cx.shared, move |s| {
            admin::host_enroll(s, &pin, &actor, &req.name, req.relay_addr, false)
        })
        .await?;
        Ok(enrolled(&token))
    }
}

impl LocalHandler for op::HostRevoke {
    async fn handle(cx: &mut Cx<'_>, req: HostName) -> Result<AdminDone, RequestError> {
        cx.done.target = Some(req.name.clone());
        let actor = actor(cx);
        with_store(cx.shared, move |s| {
            admin::apply_change(s, &actor, AdminChange::RevokeHost { host: &req.name })
        })
        .await
        .map(summary)
    }
}

impl LocalHandler for op::HostRotate {
    async fn handle(cx: &mut Cx<'_>, req: HostRequest) -> Result<HostRotated, RequestError> {
        match req {
            HostRequest::List => {
                cx.done.read = Some(op::HostList::OP.as_str());
                let hosts = with_store(cx.shared, admin::host_entries).await?;
                Ok(HostRotated::List(hosts))
            }
            HostRequest::Rotate { name } => {
                cx.done.target = Some(name.clone());
                let (pin, actor) = (pin(cx.shared)?, actor(cx));
                let token = with_store(cx.shared, move |s| {
                    admin::rotate_host(s, &pin, &actor, &name, None)
                })
                .await?;
                Ok(HostRotated::Rotated(enrolled(&token)))
            }
        }
    }
}

impl LocalHandler for op::CredsList {
    async fn handle(cx: &mut Cx<'_>, q: CredsQuery) -> Result<Vec<CredInfo>, RequestError> {
        cx.done.read = Some(Self::OP.as_str());
        cx.done.target.clone_from(&q.user);
        with_store(cx.shared, move |s| admin::creds(s, &q)).await
    }
}

impl LocalHandler for op::CredsRevoke {
    async fn handle(cx: &mut Cx<'_>, req: CredName) -> Result<AdminDone, RequestError> {
        cx.done.target = Some(req.id.clone());
        let actor = actor(cx);
        with_store(cx.shared, move |s| {
            admin::revoke_credential(s, &actor, Self::OP, &req.id)
        })
        .await
        .map(summary)
    }
}

impl LocalHandler for op::Kill {
    async fn handle(cx: &mut Cx<'_>, target: KillTarget) -> Result<AdminDone, RequestError> {
        cx.done.target = Some(match &target {
            KillTarget::User { name } => format!("user {name}"),
            KillTarget::Host { name } => format!("host {name}"),
            KillTarget::Cred { id } => format!("credential {id}"),
            KillTarget::All => "everything".to_owned(),
        });
        let actor = actor(cx);
        with_store(cx.shared, move |s| {
            admin::kill(s, &actor, Self::OP, &target)
        })
        .await
        .map(summary)
    }
}

impl LocalHandler for op::AuditRead {
    async fn handle(cx: &mut Cx<'_>, q: AuditQuery) -> Result<Vec<AuditEntry>, RequestError> {
        cx.done.read = Some(Self::OP.as_str());
        with_store(cx.shared, move |s| admin::audit_page(s, &q)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administration_answers_go_out_with_sorted_keys_as_before_typed_handlers() {
        let done = AdminDone {
            summary: "added ada".into(),
            invite: Some("inv".into()),
        };
        let frame = Reply::Ok(encode(&done).expect("encodes"));
        assert_eq!(
            serde_json::to_string(&frame).expect("encodes"),
            r#"{"ok":{"invite":"inv","summary":"added ada"}}"#
        );
    }
}
