//! The compact form of the other relays' presence rows: what routing and the host list need
//! per remote host and no more. Every relay keeps one of these for every host of the fleet
//! held elsewhere (two thirds of the fleet with three relays), so its size per host is the
//! fleet's memory per agent: the relay as a small index into the view's names (not a string
//! per row), the connection's epoch, and the status with the texts many hosts share (OS,
//! agent version, workspace names) held once.

use proto::message::HostStatus;
use std::collections::HashSet;
use std::sync::Arc;

/// A relay named by the view: an index into its list of relay names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RelayIx(pub(super) u16);

/// One relay's hold on a host's agent.
#[derive(Debug, Clone)]
pub(super) struct Hold {
    /// The relay.
    pub(super) relay: RelayIx,
    /// When the connection authenticated (that relay's clock): the connection's epoch.
    pub(super) connected_ms: u64,
    /// The host's status, once it heart-beat on that connection.
    pub(super) status: Option<Box<RemoteStatus>>,
}

/// Every hold on one host: the first inline (a host is held by one relay most of the time),
/// the others in a slice of exactly their number (none allocates nothing).
#[derive(Debug, Clone)]
pub(super) struct Holds {
    first: Hold,
    rest: Box<[Hold]>,
}

impl Holds {
    /// Just `first`.
    pub(super) fn one(first: Hold) -> Self {
        Self {
            first,
            rest: Box::default(),
        }
    }

    /// Adds a hold (rare: a second relay, or a host moving).
    pub(super) fn push(&mut self, hold: Hold) {
        let mut rest = std::mem::take(&mut self.rest).into_vec();
        rest.reserve_exact(1);
        rest.push(hold);
        self.rest = rest.into_boxed_slice();
    }

    /// The holds, in the order they were added.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Hold> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    /// How many.
    pub(super) fn len(&self) -> usize {
        1 + self.rest.len()
    }
}

/// A remote host's last reported status, as [`HostStatus`] holds it (already bounded), with
/// the texts hosts share interned.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteStatus {
    hostname: Box<str>,
    os: Arc<str>,
    agent_version: Arc<str>,
    uptime_s: u64,
    load: [f64; 3],
    mem_total_kib: u64,
    mem_available_kib: u64,
    workspaces: Box<[Arc<str>]>,
}

impl RemoteStatus {
    /// `status` (bounded first), sharing texts through `strings`.
    pub(super) fn new(status: HostStatus, strings: &mut Strings) -> Self {
        let s = status.bounded();
        Self {
            hostname: s.hostname.into_boxed_str(),
            os: strings.intern(s.os),
            agent_version: strings.intern(s.agent_version),
            uptime_s: s.uptime_s,
            load: s.load,
            mem_total_kib: s.mem_total_kib,
            mem_available_kib: s.mem_available_kib,
            workspaces: s
                .workspaces
                .into_iter()
                .map(|w| strings.intern(w))
                .collect(),
        }
    }

    /// The status as the host list shows it.
    pub fn to_host_status(&self) -> HostStatus {
        HostStatus {
            hostname: self.hostname.to_string(),
            os: self.os.to_string(),
            agent_version: self.agent_version.to_string(),
            uptime_s: self.uptime_s,
            load: self.load,
            mem_total_kib: self.mem_total_kib,
            mem_available_kib: self.mem_available_kib,
            workspaces: self.workspaces.iter().map(|w| w.to_string()).collect(),
        }
    }
}

/// Texts many remote hosts report alike, each held once. A full read of the fleet starts a
/// new set, so texts no host reports any more go with the old view.
#[derive(Debug, Clone, Default)]
pub(super) struct Strings(HashSet<Arc<str>>);

impl Strings {
    /// The shared copy of `s`.
    pub(super) fn intern(&mut self, s: String) -> Arc<str> {
        if let Some(known) = self.0.get(s.as_str()) {
            return Arc::clone(known);
        }
        let shared: Arc<str> = Arc::from(s);
        self.0.insert(Arc::clone(&shared));
        shared
    }

    /// How many distinct texts are held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}
