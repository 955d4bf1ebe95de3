//! `/proc/net/tcp` and `/proc/net/tcp6`: the sockets in state LISTEN whose local address is a
//! loopback or wildcard one (pure parsing; the caller reads the files).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kernel's number for TCP state LISTEN.
const LISTEN: &str = "0A";

/// One listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    /// Its local address.
    pub addr: IpAddr,
    /// Its port.
    pub port: u16,
    /// Its socket inode (what `/proc/<pid>/fd/*` links name).
    pub inode: u64,
}

/// Whether a socket on `addr` is reachable from this host's loopback: a loopback address, or
/// a wildcard one (which includes loopback).
pub fn is_local(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_loopback() || a.is_unspecified(),
        IpAddr::V6(a) => {
            a.is_loopback()
                || a.is_unspecified()
                || a.to_ipv4_mapped()
                    .is_some_and(|m| m.is_loopback() || m.is_unspecified())
        }
    }
}

/// The kernel prints each 32-bit word of an address as the hex of its in-memory value.
fn word(hex: &str) -> Option<[u8; 4]> {
    Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
}

fn parse_addr(hex: &str) -> Option<IpAddr> {
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(hex)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(hex.get(i * 8..i * 8 + 8)?)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

fn parse_line(line: &str) -> Option<Listener> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.get(3) != Some(&LISTEN) {
        return None;
    }
    let (addr, port) = fields.get(1)?.split_once(':')?;
    Some(Listener {
        addr: parse_addr(addr)?,
        port: u16::from_str_radix(port, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// The local LISTEN sockets in one table's text (either file; malformed lines are skipped).
pub fn listeners(table: &str) -> Vec<Listener> {
    table
        .lines()
        .skip(1)
        .filter_map(parse_line)
        .filter(|l| is_local(l.addr) && l.port != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 100 0 0 10 0
   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 100 0 0 10 0
   2: 0A00000A:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 100 0 0 10 0
   3: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 444 1 0000000000000000 100 0 0 10 0
   4: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F41 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 555 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:1F42 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 666 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F43 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0
   3: 000080FE00000000FF005452A5A2FE12:1F44 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 888 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn only_listening_sockets_on_loopback_or_wildcard_addresses_are_kept() {
        let v4 = listeners(TCP);
        assert_eq!(
            v4,
            [
                Listener {
                    addr: "127.0.0.1".parse().unwrap(),
                    port: 8080,
                    inode: 111
                },
                Listener {
                    addr: "0.0.0.0".parse().unwrap(),
                    port: 3000,
                    inode: 222
                },
            ],
            "10.0.0.10 (not local) and an established connection are left out"
        );
        let v6 = listeners(TCP6);
        let found: Vec<(String, u16, u64)> = v6
            .iter()
            .map(|l| (l.addr.to_string(), l.port, l.inode))
            .collect();
        assert_eq!(
            found,
            [
                ("::1".to_owned(), 8001, 555),
                ("::".to_owned(), 8002, 666),
                ("::ffff:127.0.0.1".to_owned(), 8003, 777),
            ],
            "a link-local address is not local"
        );
    }

    #[test]
    fn an_empty_or_header_only_table_has_no_listeners() {
        assert!(listeners("").is_empty());
        assert!(listeners(TCP.lines().next().unwrap()).is_empty());
    }
}
