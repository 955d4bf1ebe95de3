//! The host list on the wire: updates that carry only what changed, split into pages that each
//! fit comfortably in one frame.
//!
//! A whole [`HostList`] of thousands of hosts does not fit in one frame (about 310 bytes per
//! host with a real agent's status, so the 1 MiB limit is reached near 3,350 hosts), and a
//! watcher that gets the whole list again on every heartbeat pays for hosts that did not change.
//! So the relay answers `host_list` with one *reset* update, and `watch_hosts` with a reset
//! update followed by *deltas*: hosts added or changed (`upsert`) and hosts no longer visible
//! (`remove`). Every update may be split into pages; only the page with `more: false` completes
//! it.
//!
//! Both ends are here and free of I/O: [`HostDiffer`] (relay: what changed since the last update
//! it sent), [`pages`] (relay: encode an update as frames under a size budget) and [`HostView`]
//! (client: apply pages, yield the complete list after each update).

use crate::frame::{self, FrameError};
use crate::ids::HostId;
use crate::message::{HostInfo, HostList, Reply};
use crate::rbac::Role;
use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Target size of one page's body: small enough that a page never nears the frame limit and a
/// slow watcher's send buffer holds several, large enough that 10,000 hosts take a dozen pages.
pub const PAGE_BUDGET: usize = 256 * 1024;

/// One page of a host-list update (the body of each `Reply::Ok` frame on `host_list` and
/// `watch_hosts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostUpdate {
    /// Relay clock when the update was made, unix ms (for "last seen N s ago").
    pub now_ms: u64,
    /// This update replaces everything known before (the answer to `host_list` and the first
    /// update of a watch). Set on every page of such an update; honoured on its first.
    #[serde(default)]
    pub reset: bool,
    /// Hosts added or changed, sorted by id.
    #[serde(default)]
    pub upsert: Vec<HostInfo>,
    /// The principal's effective role on each upserted host (absent: none).
    #[serde(default)]
    pub roles: BTreeMap<HostId, Role>,
    /// Hosts the principal no longer sees (revoked, removed, grant gone).
    #[serde(default)]
    pub remove: Vec<HostId>,
    /// The principal's role from its grant on `*` (see [`HostList::global_role`]).
    #[serde(default)]
    pub global_role: Option<Role>,
    /// More pages of this update follow.
    #[serde(default)]
    pub more: bool,
}

impl HostUpdate {
    /// The whole of `list` as one reset update (the `host_list` answer, a watch's first).
    pub fn whole(list: &HostList) -> Self {
        Self {
            now_ms: list.now_ms,
            reset: true,
            upsert: list.hosts.clone(),
            roles: list.roles.clone(),
            remove: Vec::new(),
            global_role: list.global_role,
            more: false,
        }
    }
}

/// One host as last sent: its info and the principal's role on it.
type Sent = (HostInfo, Option<Role>);

/// The relay's side of a watch: remembers what the watcher was last sent.
#[derive(Debug, Default)]
pub struct HostDiffer {
    last: Option<BTreeMap<HostId, Sent>>,
}

/// What [`HostDiffer::diff`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// The update to send (one logical update; split it with [`pages`]).
    pub update: HostUpdate,
    /// A host came, went, or changed between online and offline (what a watcher must learn
    /// quickly; status-only changes may wait).
    pub presence_changed: bool,
}

impl HostDiffer {
    /// A differ that has sent nothing yet: its first [`diff`](Self::diff) is a reset.
    pub fn new() -> Self {
        Self::default()
    }

    /// What changed between the last committed list and `list`; `None` if nothing did.
    /// Nothing is remembered until [`commit`](Self::commit): a caller that decides to wait
    /// diffs the newer list later instead.
    pub fn diff(&self, list: &HostList) -> Option<Delta> {
        let global_role = list.global_role;
        let Some(last) = &self.last else {
            return Some(Delta {
                update: HostUpdate::whole(list),
                presence_changed: true,
            });
        };
        let mut upsert = Vec::new();
        let mut roles = BTreeMap::new();
        let mut presence_changed = false;
        for host in &list.hosts {
            let role = list.roles.get(&host.host).copied();
            match last.get(&host.host) {
                Some((before, before_role)) if before == host && *before_role == role => continue,
                Some((before, _)) => presence_changed |= before.online != host.online,
                None => presence_changed = true,
            }
            upsert.push(host.clone());
            if let Some(role) = role {
                roles.insert(host.host.clone(), role);
            }
        }
        let now: std::collections::BTreeSet<&HostId> = list.hosts.iter().map(|h| &h.host).collect();
        let remove: Vec<HostId> = last
            .keys()
            .filter(|id| !now.contains(id))
            .cloned()
            .collect();
        presence_changed |= !remove.is_empty();
        if upsert.is_empty() && remove.is_empty() {
            return None;
        }
        upsert.sort_by(|a, b| a.host.cmp(&b.host));
        Some(Delta {
            update: HostUpdate {
                now_ms: list.now_ms,
                reset: false,
                upsert,
                roles,
                remove,
                global_role,
                more: false,
            },
            presence_changed,
        })
    }

    /// Remembers `list` as sent.
    pub fn commit(&mut self, list: HostList) {
        let mut roles = list.roles;
        self.last = Some(
            list.hosts
                .into_iter()
                .map(|h| {
                    let role = roles.remove(&h.host);
                    (h.host.clone(), (h, role))
                })
                .collect(),
        );
    }
}

/// Splits `update` into pages whose bodies stay near `budget` bytes and encodes each as a
/// `Reply::Ok` frame. Removals go on the first page, upserts are packed in order; an empty
/// update still gives one page (so a `host_list` answer always has a frame).
///
/// # Errors
/// [`FrameError::Oversize`] if a single host does not fit in `max_len` (a status that large
/// is refused by the relay before it gets here), [`FrameError::Malformed`] if encoding fails.
pub fn pages(
    update: HostUpdate,
    budget: usize,
    max_len: usize,
) -> Result<Vec<BytesMut>, FrameError> {
    let HostUpdate {
        now_ms,
        reset,
        upsert,
        mut roles,
        remove,
        global_role,
        more: _,
    } = update;
    let page =
        |upsert: Vec<HostInfo>, roles: BTreeMap<HostId, Role>, remove: Vec<HostId>| HostUpdate {
            now_ms,
            reset,
            upsert,
            roles,
            remove,
            global_role,
            more: true,
        };
    // What a page costs besides its hosts: the removals ride on the first page only.
    let mut current = page(Vec::new(), BTreeMap::new(), remove);
    let mut used = frame::encoded_len(&Reply::Ok(&current))?;
    let empty = frame::encoded_len(&Reply::Ok(page(Vec::new(), BTreeMap::new(), Vec::new())))?;
    let mut out = Vec::new();
    for host in upsert {
        let role = roles.remove(&host.host);
        // The host measured; its role entry bounded (id, quotes, colon, longest role name).
        let cost = frame::encoded_len(&host)? + role.map_or(0, |_| host.host.as_str().len() + 16);
        if !current.upsert.is_empty() && used + cost > budget {
            let full =
                std::mem::replace(&mut current, page(Vec::new(), BTreeMap::new(), Vec::new()));
            out.push(full);
            used = empty;
        }
        if let Some(role) = role {
            current.roles.insert(host.host.clone(), role);
        }
        current.upsert.push(host);
        used += cost;
    }
    current.more = false;
    out.push(current);
    out.iter()
        .map(|p| frame::to_frame(&Reply::Ok(p), max_len))
        .collect()
}

/// The client's side: applies pages and yields the whole list after each complete update.
#[derive(Debug, Default, Clone)]
pub struct HostView {
    hosts: BTreeMap<HostId, HostInfo>,
    roles: BTreeMap<HostId, Role>,
    /// A page with `more: true` was applied and its update is not complete yet.
    mid_update: bool,
}

impl HostView {
    /// An empty view (before the first update).
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one page; returns the complete list when the page ends its update.
    pub fn apply(&mut self, page: HostUpdate) -> Option<HostList> {
        if page.reset && !self.mid_update {
            self.hosts.clear();
            self.roles.clear();
        }
        for id in &page.remove {
            self.hosts.remove(id);
            self.roles.remove(id);
        }
        let mut roles = page.roles;
        for host in page.upsert {
            match roles.remove(&host.host) {
                Some(role) => self.roles.insert(host.host.clone(), role),
                None => self.roles.remove(&host.host),
            };
            self.hosts.insert(host.host.clone(), host);
        }
        self.mid_update = page.more;
        if page.more {
            return None;
        }
        Some(HostList {
            now_ms: page.now_ms,
            hosts: self.hosts.values().cloned().collect(),
            roles: self.roles.clone(),
            global_role: page.global_role,
        })
    }
}

#[cfg(test)]
mod tests;
