//! The administration screen (admins and owners): users and grants, enrolled hosts (enroll,
//! rotate the token, revoke), credentials, the kill switch and the audit trail with filters.
//!
//! The relay decides (its one authorization point) and audits; the app only offers what the
//! role can do. Relay administration counts only the grant on every host (`*`), which the host
//! list carries as `global_role`: the screen opens for admins and owners there (an admin of
//! one host gets no screen); a relay refusal is still shown as such. Changes touching admin or owner rights (`grant_admin`) are shown
//! disabled with the reason for admins and never sent. Destructive changes (remove, revoke,
//! kill) need the target's name typed.

pub mod certs;
mod input;
mod keys;
mod replies;

pub use keys::Outcome;

use super::workspace_detail::Loadable;
use super::{App, Screen};
use crate::action::Action;
use crate::call::{AdminCall, Call, CallError, Response, Scope};
use crate::effect::Effect;
use proto::admin::{
    AdminDone, AuditEntry, AuditQuery, CredInfo, CredsQuery, HostAdd, HostEnrolled, HostEntry,
    KillTarget, UserInfo, UserRequest, required_op,
};
use proto::header::Op;
use proto::ids::HostId;
use proto::rbac::Role;
use proto::wire_error::ErrorCode;

/// Audit rows read at a time.
pub const AUDIT_ROWS: usize = 200;

/// The tabs of the screen, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminTab {
    /// Users and their grants.
    Users,
    /// Enrolled hosts.
    Hosts,
    /// Login credentials.
    Creds,
    /// The audit trail.
    Audit,
    /// Who holds which certificate (zero-trust), and device keys awaiting approval.
    Certs,
}

impl AdminTab {
    /// Every tab, in order.
    pub const ALL: [Self; 5] = [
        Self::Users,
        Self::Hosts,
        Self::Creds,
        Self::Audit,
        Self::Certs,
    ];

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Hosts => "hosts",
            Self::Creds => "credentials",
            Self::Audit => "audit",
            Self::Certs => "certificates",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// What the input line is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// `NAME [ROLE] [HOST]` of a new user.
    AddUser,
    /// `ROLE [HOST]` for a user.
    Grant(String),
    /// `[HOST]` of a user's grant to remove.
    RevokeGrant(String),
    /// The name of a host to enroll.
    EnrollHost,
    /// `user=NAME host=NAME` for the audit trail.
    AuditFilter,
    /// The typed confirmation of a destructive change: it runs when `expect` is typed.
    Confirm {
        /// What runs.
        call: AdminCall,
        /// What must be typed.
        expect: String,
    },
}

/// The input line: its question and what has been typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminInput {
    /// What it is for.
    pub purpose: Purpose,
    /// The question shown before the text.
    pub prompt: String,
    /// What has been typed.
    pub text: String,
}

/// One action of the tab shown, for the hint line: key, what, and why it is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAction {
    /// The action.
    pub action: Action,
    /// Its label.
    pub label: &'static str,
    /// Why the current role cannot do it (shown, never attempted).
    pub disabled: Option<String>,
}

/// The screen's state.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminView {
    /// The tab shown.
    pub tab: AdminTab,
    /// Users.
    pub users: Loadable<Vec<UserInfo>>,
    /// Hosts.
    pub hosts: Loadable<Vec<HostEntry>>,
    /// Credentials.
    pub creds: Loadable<Vec<CredInfo>>,
    /// Audit rows, oldest first.
    pub audit: Loadable<Vec<AuditEntry>>,
    /// The audit filter.
    pub audit_query: AuditQuery,
    /// Certificates and pending device keys.
    pub certs: Loadable<certs::Certificates>,
    /// The selected row per tab.
    pub selected: [usize; 5],
    /// The input line, while typing.
    pub input: Option<AdminInput>,
    /// The last change's outcome (an invite or enrolment token is shown here once, and
    /// forgotten when the screen is left).
    pub result: Option<AdminResult>,
}

/// What the last change did, and the one-time secret it made, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminResult {
    /// One line saying what was done.
    pub summary: String,
    /// An invite or enrolment token: shown on a line of its own, unwrapped, so it can be
    /// selected whole (or copied with `c`).
    pub secret: Option<String>,
}

impl Default for AdminView {
    fn default() -> Self {
        Self {
            tab: AdminTab::Users,
            users: Loadable::Loading,
            hosts: Loadable::Loading,
            creds: Loadable::Loading,
            audit: Loadable::Loading,
            audit_query: AuditQuery {
                limit: AUDIT_ROWS,
                ..AuditQuery::default()
            },
            certs: Loadable::Loading,
            selected: [0; 5],
            input: None,
            result: None,
        }
    }
}

fn len_of<T>(l: &Loadable<Vec<T>>) -> usize {
    match l {
        Loadable::Ready(v) => v.len(),
        _ => 0,
    }
}

impl AdminView {
    /// Rows of the tab shown.
    pub fn rows(&self) -> usize {
        match self.tab {
            AdminTab::Users => len_of(&self.users),
            AdminTab::Hosts => len_of(&self.hosts),
            AdminTab::Creds => len_of(&self.creds),
            AdminTab::Audit => len_of(&self.audit),
            AdminTab::Certs => match &self.certs {
                Loadable::Ready(c) => c.certs.len(),
                _ => 0,
            },
        }
    }

    /// The selected row of the tab shown.
    pub fn selected(&self) -> usize {
        self.selected[self.tab.index()]
    }

    fn select(&mut self, row: usize) {
        let max = self.rows().saturating_sub(1);
        self.selected[self.tab.index()] = row.min(max);
    }

    /// The selected user.
    pub fn selected_user(&self) -> Option<&UserInfo> {
        match (&self.users, self.tab) {
            (Loadable::Ready(v), AdminTab::Users) => v.get(self.selected()),
            _ => None,
        }
    }

    /// The selected host.
    pub fn selected_host(&self) -> Option<&HostEntry> {
        match (&self.hosts, self.tab) {
            (Loadable::Ready(v), AdminTab::Hosts) => v.get(self.selected()),
            _ => None,
        }
    }

    /// The selected credential.
    pub fn selected_cred(&self) -> Option<&CredInfo> {
        match (&self.creds, self.tab) {
            (Loadable::Ready(v), AdminTab::Creds) => v.get(self.selected()),
            _ => None,
        }
    }
}

/// The calls that read each tab.
fn list_call(tab: AdminTab, audit: &AuditQuery) -> AdminCall {
    match tab {
        AdminTab::Users => AdminCall::UserList,
        AdminTab::Hosts => AdminCall::HostList,
        AdminTab::Creds => AdminCall::CredsList(CredsQuery {
            user: None,
            all: true,
        }),
        AdminTab::Audit => AdminCall::AuditRead(audit.clone()),
        AdminTab::Certs => AdminCall::TrustFetch,
    }
}

/// `key=value` words of an audit filter; unknown words are an error naming them.
fn parse_audit_filter(text: &str) -> Result<AuditQuery, String> {
    let mut q = AuditQuery {
        limit: AUDIT_ROWS,
        ..AuditQuery::default()
    };
    for word in text.split_whitespace() {
        match word.split_once('=') {
            Some(("user", v)) if !v.is_empty() => q.user = Some(v.to_owned()),
            Some(("host", v)) if !v.is_empty() => q.host = Some(v.to_owned()),
            _ => return Err(format!("{word:?}: write user=NAME and/or host=NAME")),
        }
    }
    Ok(q)
}

impl App {
    /// The role that counts for administering the relay: the grant on every host (`*`), as
    /// the relay reports it in the host list (`None` before the list, or without such a grant).
    pub fn admin_role(&self) -> Option<Role> {
        self.global_role()
    }

    /// The administration screen's state, while open.
    pub fn admin(&self) -> Option<&AdminView> {
        self.stack.admin.as_ref()
    }

    /// Opens the screen, or says why not.
    pub(super) fn open_admin(&mut self, fx: &mut Vec<Effect>) {
        match self.admin_role() {
            Some(role) if role >= Role::Admin => {}
            role => {
                let you = role.map_or("no role yet".to_owned(), |r| format!("you are {r}"));
                self.notify(
                    format!("administration needs the admin or owner role ({you})"),
                    true,
                );
                return;
            }
        }
        self.screen = Screen::Admin;
        let view = self.stack.admin.get_or_insert_with(AdminView::default);
        let tab = view.tab;
        self.load_tab(tab, fx);
    }

    fn admin_request(&mut self, call: AdminCall, fx: &mut Vec<Effect>) -> Option<u64> {
        // The scope is not sent for relay administration.
        self.act(Scope::host(&HostId::from("")), Call::Admin(call), fx)
    }

    fn load_tab(&mut self, tab: AdminTab, fx: &mut Vec<Effect>) {
        let Some(view) = self.stack.admin.as_ref() else {
            return;
        };
        let call = list_call(tab, &view.audit_query);
        if self.admin_request(call, fx).is_some()
            && let Some(view) = self.stack.admin.as_mut()
        {
            match tab {
                AdminTab::Users => view.users = Loadable::Loading,
                AdminTab::Hosts => view.hosts = Loadable::Loading,
                AdminTab::Creds => view.creds = Loadable::Loading,
                AdminTab::Audit => view.audit = Loadable::Loading,
                AdminTab::Certs => view.certs = Loadable::Loading,
            }
        }
    }

    /// The actions of the tab shown, with what the role cannot do marked.
    pub fn admin_actions(&self) -> Vec<AdminAction> {
        let owner = self.admin_role() == Some(Role::Owner);
        self.stack
            .admin
            .as_ref()
            .map_or_else(Vec::new, |view| view.actions(owner))
    }

    /// Keys on the administration screen.
    pub(super) fn admin_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let page = self.list_page();
        let owner = self.admin_role() == Some(Role::Owner);
        let Some(view) = self.stack.admin.as_mut() else {
            self.screen = Screen::Hosts;
            return;
        };
        match view.update(action, page, owner) {
            Outcome::Stay => {}
            Outcome::Back => self.screen = Screen::Hosts,
            Outcome::Load(tab) => self.load_tab(tab, fx),
            Outcome::Copy(secret) => {
                fx.push(Effect::Copy(secret));
                self.notify("copied to the clipboard (OSC 52)", false);
            }
            Outcome::Notice { text, error } => self.notify(text, error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_filters_parse_or_name_the_bad_word() {
        let q = parse_audit_filter("user=bob host=box").expect("valid");
        assert_eq!(
            (q.user.as_deref(), q.host.as_deref(), q.limit),
            (Some("bob"), Some("box"), AUDIT_ROWS)
        );
        assert_eq!(parse_audit_filter("").map(|q| q.user), Ok(None));
        let e = parse_audit_filter("actor=bob").expect_err("unknown key");
        assert!(e.contains("\"actor=bob\""), "{e}");
    }
}
