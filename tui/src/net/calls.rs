//! The app's calls as the typed operations they are: each [`Call`] goes out as
//! `call::<op::X>` with `X`'s body, and `X`'s reply comes back as the app's [`Response`].

use crate::call::{AdminCall, Call, CallError, NotifyCall, Request, Response};
use crate::e2e_channels::HostStreams;
use cm_client::LinkError;
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use proto::op;
use proto::operation::Unary;
use proto::queue::PromptOutcome;

/// A failed call as the app sees it: a typed refusal keeps its code.
fn call_error(e: LinkError) -> CallError {
    match e {
        LinkError::Refused(w) => CallError::refused(w.code, w.message),
        other => CallError::transport(other.to_string()),
    }
}

/// One typed call: `O`'s body in, `O`'s reply out.
async fn call<O: Unary>(
    streams: &HostStreams,
    header: &StreamHeader,
    body: &O::Body,
) -> Result<O::Reply, CallError> {
    streams.call::<O>(header, body).await.map_err(call_error)
}

/// The app's call as the typed operation it is, its answer as the app's [`Response`].
pub(super) async fn perform_call(
    conn: &HostStreams,
    request: &Request,
) -> Result<Response, CallError> {
    let h = super::header(request.call.op(), ReqId(request.id), &request.scope);
    let c = conn;
    Ok(match &request.call {
        Call::WorkspaceList => Response::Workspaces(call::<op::WorkspaceList>(c, &h, &()).await?),
        Call::SessionList => Response::Sessions(call::<op::SessionList>(c, &h, &()).await?),
        Call::SessionCreate(b) => Response::Created(call::<op::SessionCreate>(c, &h, b).await?),
        Call::SessionRename(b) => Response::Renamed(call::<op::SessionRename>(c, &h, b).await?),
        Call::SessionDelete => {
            call::<op::SessionDelete>(c, &h, &()).await?;
            Response::Deleted
        }
        Call::Prompt(b) => match call::<op::Prompt>(c, &h, b).await? {
            PromptOutcome::Accepted(a) => Response::Accepted(a),
            PromptOutcome::Queued { queued } => Response::Queued(queued),
        },
        Call::Abort => Response::Aborted(call::<op::Abort>(c, &h, &()).await?),
        Call::Messages(b) => Response::Messages(call::<op::Messages>(c, &h, b).await?),
        Call::Diff(b) => Response::Diff(call::<op::Diff>(c, &h, b).await?),
        Call::PermissionList => Response::Pending(call::<op::PermissionList>(c, &h, &()).await?),
        Call::PermissionReply(b) => {
            call::<op::PermissionReply>(c, &h, b).await?;
            Response::Answered
        }
        Call::QuestionReply(b) => {
            call::<op::QuestionReply>(c, &h, b).await?;
            Response::Answered
        }
        Call::OpencodeStart => Response::Opencode(call::<op::OpencodeStart>(c, &h, &()).await?),
        Call::OpencodeStop => Response::Opencode(call::<op::OpencodeStop>(c, &h, &()).await?),
        Call::FsList(b) => Response::Folder(call::<op::FsList>(c, &h, b).await?),
        Call::GitStatus(b) => Response::Git(call::<op::GitStatus>(c, &h, b).await?),
        Call::PermissionGrants => Response::Grants(call::<op::PermissionGrants>(c, &h, &()).await?),
        Call::PermissionRevoke(b) => {
            Response::Revoked(call::<op::PermissionRevoke>(c, &h, b).await?)
        }
        Call::ModelList => Response::Models(call::<op::ModelList>(c, &h, &()).await?),
        Call::TemplateList => {
            // The relay keeps the templates: the call names no host.
            let h = StreamHeader::new(Op::TemplateList, ReqId(request.id));
            Response::Templates(call::<op::TemplateList>(c, &h, &()).await?)
        }
        Call::WorkspaceCandidates => {
            Response::Candidates(call::<op::WorkspaceCandidates>(c, &h, &()).await?)
        }
        Call::WorkspaceAdd(b) => {
            Response::WorkspaceAdded(call::<op::WorkspaceAdd>(c, &h, b).await?)
        }
        Call::WorkspaceRemove => {
            Response::WorkspaceRemoved(call::<op::WorkspaceRemove>(c, &h, &()).await?)
        }
        Call::PortList => Response::Ports(call::<op::PortList>(c, &h, &()).await?),
        Call::NotifyFocus(b) => {
            // The relay keeps presence for its notifications: the call names no host.
            let h = StreamHeader::new(Op::NotifyFocus, ReqId(request.id));
            call::<op::NotifyFocus>(c, &h, b).await?;
            Response::FocusNoted
        }
        Call::Notify(n) => {
            // The caller's own channels at the relay: the call names no host.
            let h = StreamHeader::new(n.op(), ReqId(request.id));
            notify_call(c, &h, n).await?
        }
        Call::Admin(admin) => {
            // Relay administration names no host: the relay answers it itself.
            let h = StreamHeader::new(admin.op(), ReqId(request.id));
            admin_call(c, &h, admin).await?
        }
    })
}

/// Performs one notification settings call (the operations `cm-tui notify` makes).
async fn notify_call(
    c: &HostStreams,
    h: &StreamHeader,
    n: &NotifyCall,
) -> Result<Response, CallError> {
    use proto::notify::ChannelName;
    let named = |name: &String| ChannelName { name: name.clone() };
    Ok(match n {
        NotifyCall::List => Response::Channels(call::<op::NotifyList>(c, h, &()).await?),
        NotifyCall::Test(name) => {
            Response::ChannelTested(call::<op::NotifyTest>(c, h, &named(name)).await?)
        }
        NotifyCall::Remove(name) => {
            Response::ChannelRemoved(call::<op::NotifyRemove>(c, h, &named(name)).await?)
        }
    })
}

/// Performs one administration call.
async fn admin_call(
    c: &HostStreams,
    h: &StreamHeader,
    admin: &AdminCall,
) -> Result<Response, CallError> {
    use proto::admin::{CredName, HostName, HostRequest, HostRotated};
    let rotated = |r: HostRotated| match r {
        HostRotated::List(hosts) => Response::AdminHosts(hosts),
        HostRotated::Rotated(token) => Response::Enrolled(token),
    };
    Ok(match admin {
        AdminCall::UserList => Response::Users(call::<op::UserList>(c, h, &()).await?),
        AdminCall::User(Op::GrantAdmin, b) => {
            Response::Done(call::<op::GrantAdmin>(c, h, b).await?)
        }
        AdminCall::User(_, b) => Response::Done(call::<op::UserManage>(c, h, b).await?),
        AdminCall::HostList => rotated(call::<op::HostRotate>(c, h, &HostRequest::List).await?),
        AdminCall::HostAdd(b) => Response::Enrolled(call::<op::HostAdd>(c, h, b).await?),
        AdminCall::HostRotate(name) => {
            let body = HostRequest::Rotate { name: name.clone() };
            rotated(call::<op::HostRotate>(c, h, &body).await?)
        }
        AdminCall::HostRevoke(name) => {
            let body = HostName { name: name.clone() };
            Response::Done(call::<op::HostRevoke>(c, h, &body).await?)
        }
        AdminCall::CredsList(b) => Response::Creds(call::<op::CredsList>(c, h, b).await?),
        AdminCall::CredsRevoke(id) => {
            let body = CredName { id: id.clone() };
            Response::Done(call::<op::CredsRevoke>(c, h, &body).await?)
        }
        AdminCall::Kill(b) => Response::Done(call::<op::Kill>(c, h, b).await?),
        AdminCall::AuditRead(b) => Response::Audit(call::<op::AuditRead>(c, h, b).await?),
        AdminCall::TrustFetch => {
            let all = proto::trust::TrustQuery::default();
            let bundle = call::<op::TrustFetch>(c, h, &all).await?;
            // Checked here against this laptop's roots, never taken on the relay's word.
            let vouched = c.vouched(&bundle, cm_client::time::now_ms());
            Response::Trust { bundle, vouched }
        }
    })
}
