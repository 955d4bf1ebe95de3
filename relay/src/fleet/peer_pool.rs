//! This relay's connections to its peers: one QUIC connection per peer relay, dialled on first
//! use from the peer endpoint's socket, reused by every stream, dialled again once closed (or
//! when the peer's registered address or pin changed). A peer that cannot be reached within
//! [`CONNECT_TIMEOUT`] is reported to the [`PeerDirectory`] and the caller moves on; until it
//! is reached again, it is tried after the other relays holding a host ([`PeerPool::order`]),
//! so a partitioned peer does not cost every stream the connect timeout.
//!
//! The pool also knows the connections peers made to this relay, so that
//! [`PeerPool::close_unregistered`] cuts every connection of a retired relay, both ways.

use super::directory::{PeerDirectory, RelayId};
use super::identity::PEER_SERVER_NAME;
use super::peer_stream::{self, PeerAnswer, PeerOpen, PeerStreamError};
use super::peer_tls::{self, PeerIdentity};
use super::send_ahead::SendAhead;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncRead;

/// How long dialling a peer may take (a partitioned peer is skipped after this).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a peer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The relay is not registered, or retired.
    #[error("relay {0} is not a registered peer")]
    NotRegistered(RelayId),
    /// Its registered address does not resolve.
    #[error("relay {id}: peer address {addr:?} does not resolve: {reason}")]
    Address {
        /// The relay.
        id: RelayId,
        /// Its registered address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Dialling failed or took longer than [`CONNECT_TIMEOUT`].
    #[error("relay {id} at {addr}: cannot connect: {reason}")]
    Connect {
        /// The relay.
        id: RelayId,
        /// Its registered address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The connection was made but the stream failed.
    #[error("relay {id}: {source}")]
    Stream {
        /// The relay.
        id: RelayId,
        /// Why.
        source: PeerStreamError,
    },
}

/// A live connection and what it was dialled with.
#[derive(Debug)]
struct Link {
    addr: String,
    pin: String,
    conn: quinn::Connection,
}

/// The connections to every peer.
#[derive(Debug)]
pub struct PeerPool {
    endpoint: quinn::Endpoint,
    identity: PeerIdentity,
    directory: Arc<dyn PeerDirectory>,
    idle_timeout: Duration,
    /// One slot per peer; its async lock makes concurrent first uses share one dial.
    links: Mutex<HashMap<RelayId, Arc<tokio::sync::Mutex<Option<Link>>>>>,
    /// Connections peers made to this relay, with the pin each presented.
    accepted: Mutex<Vec<(String, quinn::Connection)>>,
    /// Peers whose last use failed (until one succeeds).
    failed: Mutex<std::collections::HashSet<RelayId>>,
}

/// Application close code of a connection to or from a relay no longer registered.
pub const RETIRED: u32 = 1;

impl PeerPool {
    /// A pool dialling from `endpoint` (the peer endpoint) as `identity`.
    pub fn new(
        endpoint: quinn::Endpoint,
        identity: PeerIdentity,
        directory: Arc<dyn PeerDirectory>,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            endpoint,
            identity,
            directory,
            idle_timeout,
            links: Mutex::default(),
            accepted: Mutex::default(),
            failed: Mutex::default(),
        }
    }

    /// `holders` in the order to try them: as given, except that peers whose last use failed
    /// come after the others.
    pub fn order(&self, holders: &[RelayId]) -> Vec<RelayId> {
        let failed = self.failed.lock();
        let (later, first): (Vec<RelayId>, Vec<RelayId>) =
            holders.iter().cloned().partition(|id| failed.contains(id));
        first.into_iter().chain(later).collect()
    }

    /// The directory the pool dials from.
    pub fn directory(&self) -> &Arc<dyn PeerDirectory> {
        &self.directory
    }

    /// Remembers a connection a peer made to this relay (see [`Self::close_unregistered`]).
    pub fn accepted(&self, pin: String, conn: quinn::Connection) {
        let mut accepted = self.accepted.lock();
        accepted.retain(|(_, c)| c.close_reason().is_none());
        accepted.push((pin, conn));
    }

    /// Closes every connection, both ways, with a relay whose pin is no longer registered
    /// (call it when the directory changed: a retired relay loses its open streams at once).
    /// Returns how many were closed.
    pub fn close_unregistered(&self) -> usize {
        let registered: Vec<String> = self
            .directory
            .peers()
            .into_iter()
            .map(|p| p.peer_pin)
            .collect();
        let mut closed = 0;
        self.accepted.lock().retain(|(pin, conn)| {
            if conn.close_reason().is_some() {
                return false;
            }
            if registered.contains(pin) {
                return true;
            }
            conn.close(RETIRED.into(), b"relay retired");
            closed += 1;
            false
        });
        let slots: Vec<_> = self.links.lock().values().cloned().collect();
        for slot in slots {
            // A slot being dialled checks the directory itself.
            let Ok(mut link) = slot.try_lock() else {
                continue;
            };
            if link.as_ref().is_some_and(|l| !registered.contains(&l.pin))
                && let Some(l) = link.take()
            {
                l.conn.close(RETIRED.into(), b"relay retired");
                closed += 1;
            }
        }
        closed
    }

    /// Opens a relay-to-relay stream to `id` with `open` and the operator's first bytes
    /// (`ahead`), and returns it with the peer's answer. Any failure is reported as [`PeerDirectory::unreachable`].
    ///
    /// # Errors
    /// The peer is not registered, cannot be reached, or the stream failed.
    pub async fn open<R: AsyncRead + Unpin>(
        &self,
        id: &RelayId,
        open: &PeerOpen,
        ahead: &mut SendAhead<'_, R>,
    ) -> Result<(quinn::SendStream, quinn::RecvStream, PeerAnswer), PeerError> {
        let outcome = async {
            let conn = self.connection(id).await?;
            peer_stream::request(&conn, open, ahead)
                .await
                .map_err(|source| PeerError::Stream {
                    id: id.clone(),
                    source,
                })
        }
        .await;
        match &outcome {
            Ok(_) => {
                self.failed.lock().remove(id);
            }
            Err(e) => {
                tracing::warn!(peer = %id, error = %e, "peer relay unreachable");
                self.failed.lock().insert(id.clone());
                self.directory.unreachable(id);
            }
        }
        outcome
    }

    /// The connection to `id`: the live one, or a new one.
    async fn connection(&self, id: &RelayId) -> Result<quinn::Connection, PeerError> {
        let info = self
            .directory
            .peer(id)
            .ok_or_else(|| PeerError::NotRegistered(id.clone()))?;
        let slot = Arc::clone(self.links.lock().entry(id.clone()).or_default());
        let mut link = slot.lock().await;
        if let Some(l) = link.as_ref()
            && l.conn.close_reason().is_none()
            && l.addr == info.peer_addr
            && l.pin == info.peer_pin
        {
            return Ok(l.conn.clone());
        }
        if let Some(stale) = link.take() {
            stale
                .conn
                .close(0u32.into(), b"peer address or pin changed");
        }
        let connect_error = |reason: String| PeerError::Connect {
            id: id.clone(),
            addr: info.peer_addr.clone(),
            reason,
        };
        let dial = async {
            let address_error = |reason: String| PeerError::Address {
                id: id.clone(),
                addr: info.peer_addr.clone(),
                reason,
            };
            let addr = tokio::net::lookup_host(&info.peer_addr)
                .await
                .map_err(|e| address_error(e.to_string()))?
                .next()
                .ok_or_else(|| address_error("no address".to_owned()))?;
            let config =
                peer_tls::client_config(self.identity.clone(), &info.peer_pin, self.idle_timeout)
                    .map_err(|e| connect_error(e.to_string()))?;
            self.endpoint
                .connect_with(config, addr, PEER_SERVER_NAME)
                .map_err(|e| connect_error(e.to_string()))?
                .await
                .map_err(|e| connect_error(e.to_string()))
        };
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, dial)
            .await
            .map_err(|_| connect_error(format!("no answer within {CONNECT_TIMEOUT:?}")))??;
        tracing::debug!(peer = %id, addr = %info.peer_addr, "connected to peer relay");
        *link = Some(Link {
            addr: info.peer_addr,
            pin: info.peer_pin,
            conn: conn.clone(),
        });
        Ok(conn)
    }
}
