//! The administration screen's keys: moving between rows and tabs, and which change a key
//! starts (an input line to fill in, or a typed confirmation), as far as the role allows.

use super::*;

/// What the administration view asks of the app after a key (the app owns the screens, the
/// notices and the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled here (or nothing to do).
    Stay,
    /// Go back to the hosts (the one-time secret is forgotten already).
    Back,
    /// Read this tab.
    Load(AdminTab),
    /// Copy this one-time secret to the clipboard.
    Copy(String),
    /// Say this.
    Notice {
        /// The text.
        text: String,
        /// Whether it reports a refusal.
        error: bool,
    },
}

impl Outcome {
    fn notice(text: impl Into<String>, error: bool) -> Self {
        Self::Notice {
            text: text.into(),
            error,
        }
    }
}

impl AdminView {
    /// A key on the screen with pages of `page` rows (`owner`: the role is owner on every
    /// host): moves, switches tabs and opens the input line here, says what the app must do
    /// for the rest. No IO.
    pub fn update(&mut self, action: Action, page: usize, owner: bool) -> Outcome {
        let row = self.selected();
        match action {
            Action::SelectPrev => self.select(row.saturating_sub(1)),
            Action::SelectNext => self.select(row + 1),
            Action::PageUp => self.select(row.saturating_sub(page)),
            Action::PageDown => self.select(row + page),
            Action::SelectFirst => self.select(0),
            Action::SelectLast => self.select(usize::MAX),
            Action::Back => {
                // A one-time invite or token is not kept once the screen is left.
                self.result = None;
                return Outcome::Back;
            }
            Action::CopySecret => {
                return match self.result.as_ref().and_then(|r| r.secret.clone()) {
                    Some(secret) => Outcome::Copy(secret),
                    None => Outcome::notice("no invite or token to copy", false),
                };
            }
            Action::PrevFile | Action::NextFile => {
                let i = self.tab.index();
                let n = AdminTab::ALL.len();
                let next = if action == Action::NextFile {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.tab = AdminTab::ALL[next];
                return Outcome::Load(self.tab);
            }
            Action::Refresh => return Outcome::Load(self.tab),
            _ => return self.start_change(action, owner),
        }
        Outcome::Stay
    }

    /// A key that starts a change: the input line it needs, or why it cannot start.
    fn start_change(&mut self, action: Action, owner: bool) -> Outcome {
        let allowed = self.actions(owner).into_iter().find(|a| a.action == action);
        match allowed {
            None if action == Action::KillAll => {}
            None => return Outcome::Stay,
            Some(AdminAction {
                disabled: Some(why),
                ..
            }) => return Outcome::notice(why, true),
            Some(_) => {}
        }
        let user = self.selected_user().map(|u| u.name.clone());
        let host = self.selected_host().map(|h| h.name.clone());
        let cred = self.selected_cred().map(|c| c.id.clone());
        // Removing a user holding admin or owner rights is a grant_admin change.
        let remove_user = user.as_ref().and_then(|u| {
            self.user_call(UserRequest::Remove { name: u.clone() }, owner)
                .ok()
                .map(|call| (u.clone(), call))
        });
        let input = |purpose, prompt: String| {
            Some(AdminInput {
                purpose,
                prompt,
                text: String::new(),
            })
        };
        let confirm = |call, what: String, expect: &str| {
            input(
                Purpose::Confirm {
                    call,
                    expect: expect.to_owned(),
                },
                format!("{what}: type {expect} to confirm"),
            )
        };
        let next = match (self.tab, action) {
            (AdminTab::Users, Action::AddItem) => {
                input(Purpose::AddUser, "new user: NAME [ROLE] [HOST]".into())
            }
            (AdminTab::Users, Action::Grant) => user.map(|u| {
                let prompt = format!("grant {u}: ROLE [HOST]");
                AdminInput {
                    purpose: Purpose::Grant(u),
                    prompt,
                    text: String::new(),
                }
            }),
            (AdminTab::Users, Action::RevokeGrant) => user.map(|u| {
                let prompt = format!("revoke {u}'s grant on HOST (default *)");
                AdminInput {
                    purpose: Purpose::RevokeGrant(u),
                    prompt,
                    text: String::new(),
                }
            }),
            (AdminTab::Users, Action::Remove) => {
                remove_user.and_then(|(u, call)| confirm(call, format!("remove user {u}"), &u))
            }
            (AdminTab::Users, Action::Kill) => user.and_then(|u| {
                let call = AdminCall::Kill(KillTarget::User { name: u.clone() });
                confirm(call, format!("kill every credential of {u}"), &u)
            }),
            (AdminTab::Hosts, Action::AddItem) => {
                input(Purpose::EnrollHost, "enroll host: NAME".into())
            }
            (AdminTab::Hosts, Action::RotateToken) => host.and_then(|h| {
                confirm(
                    AdminCall::HostRotate(h.clone()),
                    format!("new enrolment token for {h} (its agent must enroll again)"),
                    &h,
                )
            }),
            (AdminTab::Hosts, Action::Remove) => host.and_then(|h| {
                confirm(
                    AdminCall::HostRevoke(h.clone()),
                    format!("revoke host {h}"),
                    &h,
                )
            }),
            (AdminTab::Hosts, Action::Kill) => host.and_then(|h| {
                let call = AdminCall::Kill(KillTarget::Host { name: h.clone() });
                confirm(call, format!("kill host {h} now"), &h)
            }),
            (AdminTab::Creds, Action::Remove) => cred.and_then(|c| {
                confirm(
                    AdminCall::CredsRevoke(c.clone()),
                    format!("revoke credential {c}"),
                    &c,
                )
            }),
            (AdminTab::Creds, Action::Kill) => cred.and_then(|c| {
                let call = AdminCall::Kill(KillTarget::Cred { id: c.clone() });
                confirm(call, format!("kill credential {c} now"), &c)
            }),
            (AdminTab::Audit, Action::Filter) => input(
                Purpose::AuditFilter,
                "filter: user=NAME host=NAME (empty: everything)".into(),
            ),
            (_, Action::KillAll) => confirm(
                AdminCall::Kill(KillTarget::All),
                "KILL SWITCH: revoke every operator credential and every host".into(),
                "all",
            ),
            _ => None,
        };
        let nothing_selected = next.is_none() && action != Action::AddItem;
        self.input = next;
        if nothing_selected {
            return Outcome::notice("select a row first", false);
        }
        Outcome::Stay
    }

    /// The actions of the tab shown (`owner`: the role is owner on every host), with what the
    /// role cannot do marked.
    pub fn actions(&self, owner: bool) -> Vec<AdminAction> {
        let act = |action, label| AdminAction {
            action,
            label,
            disabled: None,
        };
        match self.tab {
            AdminTab::Users => {
                let mut list = vec![
                    act(Action::AddItem, "add"),
                    act(Action::Grant, "grant"),
                    act(Action::RevokeGrant, "revoke grant"),
                    act(Action::Remove, "remove"),
                    act(Action::Kill, "kill"),
                ];
                if !owner
                    && let Some(u) = self.selected_user()
                    && u.grants.iter().any(|g| g.role > Role::Operator)
                {
                    let why = format!("{} holds admin or owner rights: owners only", u.name);
                    for a in &mut list {
                        if matches!(a.action, Action::RevokeGrant | Action::Remove) {
                            a.disabled = Some(why.clone());
                        }
                    }
                }
                list
            }
            AdminTab::Hosts => vec![
                act(Action::AddItem, "enroll"),
                act(Action::RotateToken, "rotate token"),
                act(Action::Remove, "revoke"),
                act(Action::Kill, "kill"),
            ],
            AdminTab::Creds => vec![act(Action::Remove, "revoke"), act(Action::Kill, "kill")],
            AdminTab::Audit => vec![act(Action::Filter, "filter")],
            // Certifying signs with this laptop's device key: `cm-tui admin user certify`.
            AdminTab::Certs => Vec::new(),
        }
    }

    /// A user change as the operation it needs (`owner`: the role is owner on every host); an
    /// error when the role cannot send it.
    pub fn user_call(&self, request: UserRequest, owner: bool) -> Result<AdminCall, String> {
        let grants = match &self.users {
            Loadable::Ready(users) => users
                .iter()
                .find(|u| u.name == request.user())
                .map(|u| u.grants.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let op = required_op(&request, &grants);
        if op == Op::GrantAdmin && !owner {
            return Err(
                "that touches admin or owner rights, which only owners change; nothing was sent"
                    .to_owned(),
            );
        }
        Ok(AdminCall::User(op, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_view_opens_its_input_line_and_hands_the_rest_to_the_app() {
        let mut v = AdminView::default();
        assert_eq!(
            v.update(Action::NextFile, 10, false),
            Outcome::Load(AdminTab::Hosts)
        );
        assert_eq!(
            v.update(Action::Remove, 10, false),
            Outcome::notice("select a row first", false),
            "nothing to revoke while the list is loading"
        );
        assert_eq!(v.update(Action::AddItem, 10, false), Outcome::Stay);
        assert_eq!(
            v.input.as_ref().map(|i| &i.purpose),
            Some(&Purpose::EnrollHost)
        );
        assert_eq!(v.update(Action::KillAll, 10, false), Outcome::Stay);
        assert!(matches!(
            v.input.as_ref().map(|i| &i.purpose),
            Some(Purpose::Confirm { expect, .. }) if expect == "all"
        ));

        v.result = Some(AdminResult {
            summary: "enrolled".into(),
            secret: Some("tok".into()),
        });
        assert_eq!(
            v.update(Action::CopySecret, 10, false),
            Outcome::Copy("tok".into())
        );
        assert_eq!(v.update(Action::Back, 10, false), Outcome::Back);
        assert_eq!(v.result, None, "a one-time secret is forgotten on leaving");
    }
}
