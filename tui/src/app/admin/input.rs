//! The administration screen's input line: typing, and what a submitted line does (a name,
//! a grant, a filter, a confirmation typed out).

use super::*;

impl App {
    /// Keys while the input line is open.
    pub(in crate::app) fn admin_input_key(
        &mut self,
        action: Option<Action>,
        typed: Option<char>,
        fx: &mut Vec<Effect>,
    ) {
        let Some(input) = self.stack.admin.as_mut().and_then(|v| v.input.as_mut()) else {
            return;
        };
        if let Some(c) = typed {
            input.text.push(c);
            return;
        }
        match action {
            Some(Action::DeleteBack) => {
                input.text.pop();
            }
            Some(Action::ClearLine) => input.text.clear(),
            Some(Action::LeaveInput) => {
                if let Some(v) = self.stack.admin.as_mut() {
                    v.input = None;
                }
            }
            Some(Action::Quit) => fx.push(Effect::Quit),
            Some(Action::Send) => self.submit_admin_input(fx),
            _ => {}
        }
    }

    fn submit_admin_input(&mut self, fx: &mut Vec<Effect>) {
        let Some(input) = self.stack.admin.as_mut().and_then(|v| v.input.take()) else {
            return;
        };
        let text = input.text.trim().to_owned();
        let words: Vec<&str> = text.split_whitespace().collect();
        let role_word = |w: Option<&&str>| -> Result<Role, String> {
            let w = w.copied().unwrap_or("operator");
            Role::parse(w)
                .ok_or_else(|| format!("{w:?} is no role: viewer, operator, admin, owner"))
        };
        let call = match &input.purpose {
            Purpose::AddUser => match words.first() {
                None => Err("type the new user's name".to_owned()),
                Some(name) => role_word(words.get(1)).map(|role| UserRequest::Add {
                    name: (*name).to_owned(),
                    role,
                    host: words.get(2).copied().unwrap_or("*").to_owned(),
                }),
            }
            .and_then(|r| self.user_call(r)),
            Purpose::Grant(name) => match words.first() {
                None => Err("type a role: viewer, operator, admin or owner".to_owned()),
                Some(_) => role_word(words.first()).map(|role| UserRequest::Grant {
                    name: name.clone(),
                    role,
                    host: words.get(1).copied().unwrap_or("*").to_owned(),
                }),
            }
            .and_then(|r| self.user_call(r)),
            Purpose::RevokeGrant(name) => self.user_call(UserRequest::Revoke {
                name: name.clone(),
                host: words.first().copied().unwrap_or("*").to_owned(),
            }),
            Purpose::EnrollHost => match words.as_slice() {
                [name] => Ok(AdminCall::HostAdd(HostAdd {
                    name: (*name).to_owned(),
                    relay_addr: None,
                })),
                _ => Err("type one host name".to_owned()),
            },
            Purpose::AuditFilter => match parse_audit_filter(&text) {
                Ok(q) => {
                    if let Some(v) = self.stack.admin.as_mut() {
                        v.audit_query = q;
                    }
                    self.load_tab(AdminTab::Audit, fx);
                    return;
                }
                Err(e) => Err(e),
            },
            Purpose::Confirm { call, expect } if &text == expect => Ok(call.clone()),
            Purpose::Confirm { expect, .. } => Err(format!(
                "not confirmed: type {expect} exactly; nothing was changed"
            )),
        };
        match call {
            Ok(call) => {
                if self.admin_request(call, fx).is_some() {
                    self.notify("sent to the relay…", false);
                }
            }
            Err(e) => self.notify(e, true),
        }
    }

    /// A user change as the operation it needs; an error when the role cannot send it.
    pub(super) fn user_call(&self, request: UserRequest) -> Result<AdminCall, String> {
        let owner = self.admin_role() == Some(Role::Owner);
        match self.stack.admin.as_ref() {
            Some(view) => view.user_call(request, owner),
            None => AdminView::default().user_call(request, owner),
        }
    }
}
