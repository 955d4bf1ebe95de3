//! Which transport each link is connected over right now, kept in a small file in the state
//! folder (`links.json`) so `cm-agent status` (which reads files, never asks the running agent)
//! can show it. Best effort: a failed write is logged, never stops a link.

use super::picker::LinkId;
use crate::status::links::{LINKS_FILE_NAME, LinkNow};
use cm_client::transport::Transport;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The links' current transports, and the file that shows them.
#[derive(Debug)]
pub(super) struct Transports {
    path: PathBuf,
    now: Mutex<BTreeMap<LinkId, LinkNow>>,
}

impl Transports {
    pub(super) fn new(state_dir: &Path) -> Self {
        let t = Self {
            path: state_dir.join(LINKS_FILE_NAME),
            now: Mutex::new(BTreeMap::new()),
        };
        t.write(&BTreeMap::new());
        t
    }

    /// Link `id` is connected to `relay` over `transport`.
    pub(super) fn connected(&self, id: LinkId, relay: SocketAddr, transport: Transport) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        now.insert(
            id,
            LinkNow {
                relay: relay.to_string(),
                transport: transport.label().to_owned(),
                since_ms: cm_client::time::now_ms(),
                pid: Some(std::process::id()),
            },
        );
        self.write(&now);
    }

    /// Link `id` is not connected.
    pub(super) fn disconnected(&self, id: LinkId) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.remove(&id).is_some() {
            self.write(&now);
        }
    }

    /// Whether link `id` tells the relays what needs a human: the connected link with the
    /// lowest id does, so an agent on several relays notifies once, and when that link is
    /// down the next connected one takes over.
    pub(super) fn tells(&self, id: LinkId) -> bool {
        let now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        now.keys().next() == Some(&id)
    }

    fn write(&self, now: &BTreeMap<LinkId, LinkNow>) {
        let links: Vec<&LinkNow> = now.values().collect();
        let result = serde_json::to_vec_pretty(&links)
            .map_err(std::io::Error::other)
            .and_then(|json| crate::private_file::write_atomic(&self.path, &json));
        if let Err(e) = result {
            tracing::debug!(path = %self.path.display(), error = %e, "cannot note the links' transports");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // As written: the links' writer here is this test process, not a running cm-agent.
    use crate::status::links::read_as_written as read;

    #[test]
    fn the_file_follows_connects_and_disconnects() {
        let dir = tempfile::tempdir().unwrap();
        let t = Transports::new(dir.path());
        assert!(read(dir.path()).is_empty());
        t.connected(0, "192.0.2.1:7443".parse().unwrap(), Transport::Tcp);
        t.connected(1, "192.0.2.2:7443".parse().unwrap(), Transport::Quic);
        let links = read(dir.path());
        assert_eq!(links.len(), 2);
        assert_eq!(
            links[0].pid,
            Some(std::process::id()),
            "the writer names itself"
        );
        assert_eq!(
            (links[0].relay.as_str(), links[0].transport.as_str()),
            ("192.0.2.1:7443", "TCP")
        );
        t.disconnected(0);
        let links = read(dir.path());
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].transport, "QUIC");
    }

    #[test]
    fn the_lowest_connected_link_tells_and_the_next_takes_over_when_it_drops() {
        let dir = tempfile::tempdir().unwrap();
        let t = Transports::new(dir.path());
        assert!(!t.tells(0), "nobody tells before a link is connected");
        t.connected(1, "192.0.2.2:7443".parse().unwrap(), Transport::Quic);
        assert!(t.tells(1));
        t.connected(0, "192.0.2.1:7443".parse().unwrap(), Transport::Quic);
        assert!(t.tells(0) && !t.tells(1), "exactly one link tells");
        t.disconnected(0);
        assert!(t.tells(1), "the other link takes over");
    }
}
