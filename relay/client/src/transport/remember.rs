//! The dialer's side of the per-network memory ([`super::memory`]): which network a dial is on
//! (the local source address the OS routes to the relay), and the memory itself, kept in the
//! configured file or in this process.

use super::memory::{self, Memory, Won};
use super::{TransportMode, TransportOptions};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{LazyLock, Mutex, PoisonError};

/// The memory without a file; also serialises the file's read-modify-write in this process.
static PROCESS_MEMORY: LazyLock<Mutex<Memory>> = LazyLock::new(|| Mutex::new(Memory::default()));

/// The local address the OS would send from to reach `remote`: a UDP socket connected to it
/// (connecting a UDP socket sends nothing). `None` when there is no route.
pub fn local_source_ip(remote: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if remote.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(remote).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// The memory key of the network toward `remote`, if it has a route.
pub(crate) fn network_of(remote: SocketAddr) -> Option<String> {
    local_source_ip(remote).map(|local| memory::network_key(local, remote))
}

/// Whether TCP won last time on network `key`.
pub(crate) fn tcp_won_here(opts: &TransportOptions, key: &str) -> bool {
    let now = crate::time::now_ms();
    let process = PROCESS_MEMORY
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match &opts.memory_file {
        Some(path) => load_or_warn(path).tcp_won(key, now),
        None => process.tcp_won(key, now),
    }
}

/// Remembers that `won` won on network `key` (only in `auto` mode: a forced transport says
/// nothing about the network).
pub(crate) fn record(opts: &TransportOptions, key: &str, won: Won) {
    if opts.mode != TransportMode::Auto {
        return;
    }
    let now = crate::time::now_ms();
    let mut process = PROCESS_MEMORY
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match &opts.memory_file {
        Some(path) => {
            let mut m = load_or_warn(path);
            if m.remember(key, won, now)
                && let Err(e) = memory::save(path, &m)
            {
                tracing::warn!(error = %e, "cannot keep which transport worked on this network");
            }
        }
        None => {
            process.remember(key, won, now);
        }
    }
}

fn load_or_warn(path: &std::path::Path) -> Memory {
    memory::load(path).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "starting with an empty transport memory");
        Memory::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn with_file(path: &std::path::Path) -> TransportOptions {
        TransportOptions {
            memory_file: Some(path.to_owned()),
            ..TransportOptions::default()
        }
    }

    #[test]
    fn the_source_address_toward_loopback_is_loopback() {
        let ip = local_source_ip("127.0.0.1:7443".parse().unwrap()).unwrap();
        assert!(ip.is_loopback(), "{ip}");
    }

    #[test]
    fn a_tcp_win_recorded_in_the_file_is_recalled_by_the_next_dial() {
        let dir = tempfile::tempdir().unwrap();
        let opts = with_file(&dir.path().join("transport.json"));
        let key = network_of("127.0.0.1:7443".parse().unwrap()).unwrap();
        assert!(!tcp_won_here(&opts, &key));
        record(&opts, &key, Won::Tcp);
        assert!(tcp_won_here(&opts, &key));
        record(&opts, &key, Won::Quic);
        assert!(!tcp_won_here(&opts, &key));
    }

    #[test]
    fn a_corrupt_memory_file_is_ignored_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transport.json");
        std::fs::write(&path, "]] garbage").unwrap();
        let opts = with_file(&path);
        assert!(!tcp_won_here(&opts, "net"));
        record(&opts, "net", Won::Tcp);
        assert!(tcp_won_here(&opts, "net"));
        assert!(memory::load(&path).is_ok(), "the file was not rewritten");
    }

    #[test]
    fn a_forced_transport_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let opts = TransportOptions {
            mode: TransportMode::Tcp,
            tcp_delay: Duration::ZERO,
            ..with_file(&dir.path().join("transport.json"))
        };
        record(&opts, "net", Won::Tcp);
        assert!(!tcp_won_here(
            &TransportOptions {
                mode: TransportMode::Auto,
                ..opts
            },
            "net"
        ));
    }
}
