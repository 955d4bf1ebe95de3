//! The selected workspace's details on the workspaces screen: the folders at its root, a git
//! status summary and the standing "always" grants, each read once when the workspace is first
//! selected (again after the list is reloaded) and kept per workspace.

use super::App;
use crate::call::{Call, CallError, Scope};
use crate::effect::Effect;
use proto::fs::{FsListing, FsPath};
use proto::git::{GitScope, GitStatus};
use proto::grant::{GrantRevoke, StandingGrant};
use proto::ids::HostId;
use proto::text::RemoteText;

/// Something read from the host: asked for, arrived, or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loadable<T> {
    /// Asked for; no answer yet.
    Loading,
    /// The answer.
    Ready(T),
    /// Why it could not be read (the peer's words, sanitized).
    Failed(RemoteText),
}

/// One workspace's folders and git status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    /// The root's entries.
    pub folders: Loadable<FsListing>,
    /// The git status of the root.
    pub git: Loadable<GitStatus>,
    /// Standing permission grants ("always" answers the agent keeps until OpenCode restarts).
    pub grants: Loadable<Vec<StandingGrant>>,
}

/// Counts of a git status, as the summary shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GitCounts {
    /// Paths with staged changes.
    pub staged: usize,
    /// Paths changed in the working tree (not untracked).
    pub changed: usize,
    /// Untracked paths.
    pub untracked: usize,
    /// Paths with merge conflicts.
    pub conflicts: usize,
}

/// The counts of `status`.
pub fn git_counts(status: &GitStatus) -> GitCounts {
    let mut c = GitCounts::default();
    for e in &status.entries {
        let (i, w) = (e.index.as_str(), e.worktree.as_str());
        if i == "U" || w == "U" || (i == "A" && w == "A") || (i == "D" && w == "D") {
            c.conflicts += 1;
        } else if i == "?" || w == "?" {
            c.untracked += 1;
        } else {
            if !matches!(i, "." | " " | "") {
                c.staged += 1;
            }
            if !matches!(w, "." | " " | "") {
                c.changed += 1;
            }
        }
    }
    c
}

impl App {
    /// Asks for the selected workspace's folders and git status unless known or asked.
    pub(super) fn fetch_workspace_detail(&mut self, fx: &mut Vec<Effect>) {
        let Some(view) = self.stack.workspaces.as_ref() else {
            return;
        };
        let Some(w) = view.selected().filter(|w| w.available) else {
            return;
        };
        if view.details.contains_key(&w.name) || !self.is_connected() {
            return;
        }
        let (host, name) = (view.host.clone(), w.name.clone());
        let scope = Scope::workspace(&host, &name);
        self.request(scope.clone(), Call::FsList(FsPath::default()), fx);
        self.request(scope.clone(), Call::GitStatus(GitScope::default()), fx);
        self.request(scope, Call::PermissionGrants, fx);
        if let Some(view) = self.stack.workspaces.as_mut() {
            view.details.insert(
                name,
                Detail {
                    folders: Loadable::Loading,
                    git: Loadable::Loading,
                    grants: Loadable::Loading,
                },
            );
        }
    }

    /// `X` on the workspaces screen: revokes every standing grant of the selected workspace
    /// (revoking only takes permission away, so it is not confirmed).
    pub(super) fn revoke_workspace_grants(
        &mut self,
        host: &HostId,
        workspace: &str,
        ids: Vec<String>,
        fx: &mut Vec<Effect>,
    ) {
        if ids.is_empty() {
            self.notify("no standing grants in this workspace", false);
            return;
        }
        let scope = Scope::workspace(host, workspace);
        for id in ids {
            self.act(
                scope.clone(),
                Call::PermissionRevoke(GrantRevoke { id }),
                fx,
            );
        }
    }

    pub(super) fn grants_loaded(&mut self, scope: &Scope, grants: Vec<StandingGrant>) {
        self.detail_replied(scope, DetailReply::Grants(Ok(grants)));
    }

    pub(super) fn grants_failed(&mut self, scope: &Scope, e: &CallError) {
        self.detail_replied(scope, DetailReply::Grants(Err(failure(e))));
    }

    pub(super) fn grant_revoked(&mut self, scope: &Scope, grant: &StandingGrant) {
        self.detail_replied(scope, DetailReply::Revoked(grant.id.clone()));
        self.notify(
            format!(
                "revoked: {}",
                crate::view::text::sanitize(&grant.describe())
            ),
            false,
        );
    }

    pub(super) fn folders_loaded(&mut self, scope: &Scope, listing: FsListing) {
        self.detail_replied(scope, DetailReply::Folders(Ok(listing)));
    }

    pub(super) fn git_loaded(&mut self, scope: &Scope, status: GitStatus) {
        self.detail_replied(scope, DetailReply::Git(Ok(status)));
    }

    pub(super) fn folders_failed(&mut self, scope: &Scope, e: &CallError) {
        self.detail_replied(scope, DetailReply::Folders(Err(failure(e))));
    }

    pub(super) fn git_failed(&mut self, scope: &Scope, e: &CallError) {
        self.detail_replied(scope, DetailReply::Git(Err(failure(e))));
    }

    /// A detail answer for the workspace of `scope`, to the open workspaces view of its host.
    fn detail_replied(&mut self, scope: &Scope, reply: DetailReply) {
        let Some(ws) = scope.workspace.as_deref() else {
            return;
        };
        if let Some(view) = self
            .stack
            .workspaces
            .as_mut()
            .filter(|v| v.host == scope.host)
        {
            view.detail_replied(ws, reply);
        }
    }
}

fn failure(e: &CallError) -> RemoteText {
    RemoteText::from(&e.message)
}

/// An answer (or why there is none) for one part of a workspace's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailReply {
    /// The root's entries.
    Folders(Result<FsListing, RemoteText>),
    /// The root's git status.
    Git(Result<GitStatus, RemoteText>),
    /// The standing grants.
    Grants(Result<Vec<StandingGrant>, RemoteText>),
    /// The standing grant with this id was revoked.
    Revoked(String),
}

impl Detail {
    /// Takes `reply`.
    pub fn replied(&mut self, reply: DetailReply) {
        fn loadable<T>(r: Result<T, RemoteText>) -> Loadable<T> {
            r.map_or_else(Loadable::Failed, Loadable::Ready)
        }
        match reply {
            DetailReply::Folders(r) => self.folders = loadable(r),
            DetailReply::Git(r) => self.git = loadable(r),
            DetailReply::Grants(r) => self.grants = loadable(r),
            DetailReply::Revoked(id) => {
                if let Loadable::Ready(grants) = &mut self.grants {
                    grants.retain(|g| g.id != id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::git::GitStatusEntry;

    fn entry(index: &str, worktree: &str) -> GitStatusEntry {
        GitStatusEntry {
            path: "p".into(),
            index: index.into(),
            worktree: worktree.into(),
            from: None,
        }
    }

    #[test]
    fn counts_follow_the_short_status_letters() {
        let status = GitStatus {
            entries: vec![
                entry("M", "."),
                entry("M", "M"),
                entry(".", "M"),
                entry("?", "?"),
                entry("U", "U"),
                entry("A", "."),
            ],
            ..GitStatus::default()
        };
        assert_eq!(
            git_counts(&status),
            GitCounts {
                staged: 3,
                changed: 2,
                untracked: 1,
                conflicts: 1,
            }
        );
    }
}
