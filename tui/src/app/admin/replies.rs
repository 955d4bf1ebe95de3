//! The relay's answers to administration calls, shown on the tab they are for.

use super::*;

impl App {
    /// An administration answer.
    pub(in crate::app) fn admin_replied(
        &mut self,
        call: &AdminCall,
        response: Response,
        fx: &mut Vec<Effect>,
    ) {
        let Some(view) = self.stack.admin.as_mut() else {
            return;
        };
        let changed = match response {
            Response::Users(list) => {
                view.users = Loadable::Ready(list);
                false
            }
            Response::AdminHosts(list) => {
                view.hosts = Loadable::Ready(list);
                false
            }
            Response::Creds(list) => {
                view.creds = Loadable::Ready(list);
                false
            }
            Response::Audit(list) => {
                view.selected[AdminTab::Audit.index()] = list.len().saturating_sub(1);
                view.audit = Loadable::Ready(list);
                false
            }
            Response::Enrolled(HostEnrolled { name, token }) => {
                view.result = Some(AdminResult {
                    summary: format!(
                        "enrolment token for {name} (shown once; give it to the host's agent):"
                    ),
                    secret: Some(token.to_string()),
                });
                true
            }
            Response::Done(AdminDone { summary, invite }) => {
                view.result = Some(match invite {
                    Some(invite) => AdminResult {
                        summary: format!("{summary}; their one-time invite (shown once):"),
                        secret: Some(invite.to_string()),
                    },
                    None => AdminResult {
                        summary,
                        secret: None,
                    },
                });
                true
            }
            _ => false,
        };
        let tab = view.tab;
        let clamp = view.selected();
        view.select(clamp);
        if changed {
            if matches!(call, AdminCall::Kill(_)) {
                self.notify("kill switch done", false);
            }
            self.load_tab(tab, fx);
        }
    }

    /// An administration call failed.
    pub(in crate::app) fn admin_failed(&mut self, call: &AdminCall, e: &CallError) {
        let text = if e.code == Some(ErrorCode::Forbidden) {
            format!(
                "the relay refused: {e} (relay administration needs an admin or owner grant on \
                 every host, *)"
            )
        } else {
            e.message.clone()
        };
        let text = proto::text::RemoteText::from(text);
        let Some(view) = self.stack.admin.as_mut() else {
            return;
        };
        match call {
            AdminCall::UserList => view.users = Loadable::Failed(text),
            AdminCall::HostList => view.hosts = Loadable::Failed(text),
            AdminCall::CredsList(_) => view.creds = Loadable::Failed(text),
            AdminCall::AuditRead(_) => view.audit = Loadable::Failed(text),
            _ => self.notify(format!("not done: {text}"), true),
        }
    }
}
