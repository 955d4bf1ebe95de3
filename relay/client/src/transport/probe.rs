//! While a connection runs over TCP, QUIC is tried again now and then: when it answers, the
//! owner (agent link, TUI) closes the TCP connection and dials again — the memory then says
//! QUIC won here, so the new race starts with QUIC's head start.

use super::memory::Won;
use super::remember;
use crate::{DIAL_ATTEMPT_TIMEOUT, DialOptions, dial_quic};
use proto::message::CloseReason;
use std::net::SocketAddr;

/// Resolves once a QUIC handshake (with the pinned key) to `remote` succeeds, trying every
/// `opts.transport.quic_probe_interval`. The probe connection is closed at once; the success is
/// remembered for this network. Never resolves while QUIC stays blocked (or answers with
/// another key: moving to it would fail).
pub async fn quic_comes_back(remote: SocketAddr, pin: &str, opts: &DialOptions) {
    let bound = DIAL_ATTEMPT_TIMEOUT.min(opts.idle_timeout);
    loop {
        tokio::time::sleep(opts.transport.quic_probe_interval).await;
        let Ok(Ok((endpoint, conn))) =
            tokio::time::timeout(bound, dial_quic(remote, pin, opts)).await
        else {
            continue;
        };
        conn.close(CloseReason::Normal.code().into(), b"probe");
        drop(endpoint);
        if let Some(key) = remember::network_of(remote) {
            remember::record(&opts.transport, &key, Won::Quic);
        }
        return;
    }
}
