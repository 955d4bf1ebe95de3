//! Answers to the app's calls: each successful response goes to the screen or panel it is
//! for (if still open), each failure to where it can be shown or retried.

use super::App;
use crate::call::{Call, CallError, Request, Response, WatchKey};
use crate::effect::Effect;
use proto::wire_error::ErrorCode;

impl App {
    pub(super) fn on_reply(
        &mut self,
        request: Request,
        result: Result<Response, CallError>,
        fx: &mut Vec<Effect>,
    ) {
        let scope = &request.scope;
        let response = match result {
            Ok(r) => r,
            Err(e) => return self.on_call_failed(&request, &e),
        };
        if let Call::Admin(call) = &request.call {
            return self.admin_replied(call, response, fx);
        }
        if let Call::Notify(call) = &request.call {
            return self.notify_replied(request.id, call, response, fx);
        }
        match response {
            Response::Workspaces(list) => self.workspaces_loaded(scope, list, fx),
            Response::Sessions(list) => self.sessions_loaded(scope, list),
            Response::Created(info) => self.session_created(request.id, scope, info, fx),
            Response::Renamed(info) => self.session_renamed(scope, info),
            Response::Deleted => self.session_deleted(scope),
            Response::Accepted(accepted) => self.prompt_accepted(request.id, &accepted),
            Response::Queued(queued) => self.prompt_queued(request.id, &queued),
            Response::Aborted(a) => {
                let n = a.rejected_permissions.len();
                for id in &a.rejected_permissions {
                    self.attention.remove_request(id);
                }
                let rejected = crate::view::text::count(n, "pending permission request");
                self.notify(format!("aborted; {rejected} rejected"), false);
            }
            Response::Messages(list) => self.history_loaded(request.id, list),
            Response::Diff(files) => self.diff_loaded(request.id, files),
            Response::Pending(pending) => {
                if let Some(ws) = &scope.workspace {
                    let watch = WatchKey::new(&scope.host, ws);
                    let before = self.open_session_requests();
                    if self.attention.set_pending(&watch, pending, self.now_ms) {
                        self.rang = true;
                    }
                    self.request_takes_the_keys(before);
                }
            }
            Response::Answered => match &request.call {
                Call::PermissionReply(r) => self.answer_done(&r.request_id),
                Call::QuestionReply(r) => self.answer_done(&r.request_id),
                _ => {}
            },
            Response::Opencode(info) => self.opencode_changed(&scope.host, &info),
            Response::Folder(listing) => self.folders_loaded(scope, listing),
            Response::Git(status) => self.git_loaded(scope, status),
            Response::Grants(grants) => self.grants_loaded(scope, grants),
            Response::Revoked(grant) => self.grant_revoked(scope, &grant),
            Response::Models(catalog) => self.models_loaded(request.id, catalog),
            Response::Templates(list) => self.templates_loaded(request.id, list),
            Response::Candidates(list) => self.candidates_loaded(request.id, Ok(list)),
            Response::Ports(list) => self.ports_loaded(request.id, Ok(list)),
            Response::WorkspaceAdded(info) => self.workspace_added(request.id, scope, &info, fx),
            Response::WorkspaceRemoved(done) => {
                self.workspace_removed(request.id, scope, &done, fx);
            }
            // Administration answers went to the admin screen above.
            Response::Users(_)
            | Response::AdminHosts(_)
            | Response::Enrolled(_)
            | Response::Creds(_)
            | Response::Audit(_)
            | Response::Trust { .. }
            | Response::Done(_) => {}
            // Notification settings answers went to their panel above.
            Response::FocusNoted
            | Response::Channels(_)
            | Response::ChannelTested(_)
            | Response::ChannelRemoved(_) => {}
        }
    }

    fn on_call_failed(&mut self, request: &Request, e: &CallError) {
        let gone = matches!(e.code, Some(ErrorCode::NotFound | ErrorCode::Conflict));
        match &request.call {
            Call::WorkspaceList => self.workspaces_failed(&request.scope, e),
            Call::SessionList => self.sessions_failed(&request.scope, e),
            Call::Messages(_) => self.history_failed(request.id, e),
            Call::Diff(_) => self.diff_failed(request.id, e),
            Call::Prompt(_) => self.prompt_failed(request.id, e),
            Call::PermissionReply(r) => self.answer_failed(&r.request_id, &e.message, gone),
            Call::QuestionReply(r) => self.answer_failed(&r.request_id, &e.message, gone),
            Call::PermissionList => {}
            // A new session's first prompt: it is not sent either (its text comes back).
            Call::SessionCreate(_) if self.is_draft_create(request.id) => {
                self.prompt_failed(request.id, e);
            }
            Call::SessionCreate(_) => self.create_failed(e),
            Call::Abort => self.notify(format!("abort failed: {e}"), true),
            Call::SessionRename(_) => self.manage_failed("rename", e),
            Call::SessionDelete => self.manage_failed("delete", e),
            Call::OpencodeStart => self.notify(format!("OpenCode did not start: {e}"), true),
            Call::OpencodeStop => self.notify(format!("OpenCode did not stop: {e}"), true),
            Call::FsList(_) => self.folders_failed(&request.scope, e),
            Call::GitStatus(_) => self.git_failed(&request.scope, e),
            Call::PermissionGrants => self.grants_failed(&request.scope, e),
            Call::PermissionRevoke(r) => {
                self.notify(format!("standing grant {} not revoked: {e}", r.id), true);
            }
            Call::ModelList => self.models_failed(request.id, e),
            Call::TemplateList => self.templates_failed(request.id, e),
            Call::WorkspaceCandidates => self.candidates_loaded(request.id, Err(e)),
            Call::PortList => self.ports_loaded(request.id, Err(e)),
            Call::WorkspaceAdd(b) => {
                let what = format!("{} not added as a workspace", b.folder);
                self.folders_call_failed(request.id, &what, e);
            }
            Call::WorkspaceRemove => {
                let name = request.scope.workspace.as_deref().unwrap_or_default();
                let what = format!("workspace {name} not removed");
                self.folders_call_failed(request.id, &what, e);
            }
            Call::Admin(call) => self.admin_failed(call, e),
            Call::Notify(call) => self.notify_call_failed(request.id, call, e),
            // Best effort (an older relay does not know it): the next tick sends it again.
            Call::NotifyFocus(_) => {}
        }
    }
}
