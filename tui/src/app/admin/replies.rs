//! The relay's answers to administration calls, shown on the tab they are for.

use super::*;
use proto::text::RemoteText;

impl AdminView {
    /// An administration answer, taken here; true if it reports a change (so the tab shown
    /// is read again).
    pub fn replied(&mut self, response: Response) -> bool {
        let changed = match response {
            Response::Users(list) => {
                self.users = Loadable::Ready(list);
                false
            }
            Response::AdminHosts(list) => {
                self.hosts = Loadable::Ready(list);
                false
            }
            Response::Creds(list) => {
                self.creds = Loadable::Ready(list);
                false
            }
            Response::Trust { bundle, vouched } => {
                let certs = super::certs::certificates(&bundle, vouched.as_deref());
                self.certs = Loadable::Ready(certs);
                false
            }
            Response::Audit(list) => {
                self.selected[AdminTab::Audit.index()] = list.len().saturating_sub(1);
                self.audit = Loadable::Ready(list);
                false
            }
            Response::Enrolled(HostEnrolled { name, token }) => {
                // The net task put this laptop's roots in when it has any (zero-trust).
                let pins_roots = proto::token::EnrollmentToken::decode(&token)
                    .is_ok_and(|t| !t.roots.is_empty());
                let summary = if pins_roots {
                    format!(
                        "zero-trust enrolment token for {name} (shown once; on the host: \
                         cm-agent enroll <token>):"
                    )
                } else {
                    format!(
                        "relay-trusted enrolment token for {name} (no owner root on this \
                         laptop: `cm-tui admin trust init` first for zero-trust; shown once):"
                    )
                };
                self.result = Some(AdminResult {
                    summary,
                    secret: Some(token.to_string()),
                });
                true
            }
            Response::Done(AdminDone { summary, invite }) => {
                self.result = Some(match invite {
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
        let clamp = self.selected();
        self.select(clamp);
        changed
    }

    /// `call` failed: a list's failure is shown on its tab; a change's is handed back for
    /// the app to say.
    pub fn failed(&mut self, call: &AdminCall, e: &CallError) -> Option<RemoteText> {
        let text = if e.code == Some(ErrorCode::Forbidden) {
            format!(
                "the relay refused: {e} (relay administration needs an admin or owner grant on \
                 every host, *)"
            )
        } else {
            e.message.clone()
        };
        let text = RemoteText::from(text);
        match call {
            AdminCall::UserList => self.users = Loadable::Failed(text),
            AdminCall::HostList => self.hosts = Loadable::Failed(text),
            AdminCall::CredsList(_) => self.creds = Loadable::Failed(text),
            AdminCall::AuditRead(_) => self.audit = Loadable::Failed(text),
            AdminCall::TrustFetch => self.certs = Loadable::Failed(text),
            _ => return Some(text),
        }
        None
    }
}

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
        let tab = view.tab;
        if view.replied(response) {
            if matches!(call, AdminCall::Kill(_)) {
                self.notify("kill switch done", false);
            }
            self.load_tab(tab, fx);
        }
    }

    /// An administration call failed.
    pub(in crate::app) fn admin_failed(&mut self, call: &AdminCall, e: &CallError) {
        let Some(view) = self.stack.admin.as_mut() else {
            return;
        };
        if let Some(text) = view.failed(call, e) {
            self.notify(format!("not done: {text}"), true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_view_shows_a_list_failure_on_its_tab_and_hands_back_a_change_failure() {
        let mut v = AdminView::default();
        let refused = CallError::refused(ErrorCode::Forbidden, "not an admin");
        assert_eq!(v.failed(&AdminCall::UserList, &refused), None);
        assert!(
            matches!(&v.users, Loadable::Failed(t) if t.contains("grant on every host")),
            "{:?}",
            v.users
        );
        let text = v.failed(&AdminCall::HostRotate("box".into()), &refused);
        assert!(text.is_some_and(|t| t.contains("the relay refused")));

        assert!(
            !v.replied(Response::Users(Vec::new())),
            "a list is no change"
        );
        assert_eq!(v.users, Loadable::Ready(Vec::new()));
    }

    #[test]
    fn a_token_that_pins_owner_roots_is_shown_as_zero_trust() {
        let token = proto::token::EnrollmentToken {
            relay: "127.0.0.1:7443".into(),
            pin: proto::token::pin_from_spki(b"spki"),
            host: proto::ids::HostId::from("box"),
            secret: proto::handshake::Key::from_bytes([7; 32]),
            roots: vec![proto::trust::Root {
                user: proto::ids::UserId::from("olga"),
                key: proto::trust::DeviceKey::from_seed([1; 32])
                    .unwrap()
                    .public(),
            }],
            bind: Some(proto::handshake::Bytes32([2; 32])),
        };
        let mut v = AdminView::default();
        assert!(v.replied(Response::Enrolled(HostEnrolled {
            name: "box".into(),
            token: token.encode(),
        })));
        let result = v.result.clone().unwrap();
        assert!(result.summary.contains("zero-trust"), "{result:?}");
        assert!(!result.summary.contains("relay-trusted"), "{result:?}");
        assert_eq!(result.secret, Some(token.encode()));
    }
}
