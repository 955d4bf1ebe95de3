//! `cm-relay doctor`: checks a relay's setup and says, one line per problem, what to do.

use crate::config::StoreConfig;
pub use crate::finding::Finding;
use crate::fleet::FleetConfig;
use crate::state::StateDir;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

mod listeners;
mod notify_key;

pub use notify_key::notify_key;

/// Runs every check, with the TCP listener on `listen`'s address (the default).
/// `now_ms` is the wall clock (passed in so the clock check is testable).
pub fn check(dir: &StateDir, listen: SocketAddr, now_ms: u64) -> Vec<Finding> {
    check_member(dir, listen, Some(listen), now_ms, None, Duration::ZERO)
}

/// [`check`] with the TCP listener on `listen_tcp` (`None`: off), and with `fleet` (`[fleet]`
/// of relay.toml) the fleet's: this relay registered with its peer identity, the other relays
/// alive (liveness from `heartbeat_timeout`).
pub fn check_member(
    dir: &StateDir,
    listen: SocketAddr,
    listen_tcp: Option<SocketAddr>,
    now_ms: u64,
    fleet: Option<&FleetConfig>,
    heartbeat_timeout: Duration,
) -> Vec<Finding> {
    let root = dir.root().display().to_string();
    let mut out = Vec::new();
    match std::fs::metadata(dir.root()) {
        Err(e) => {
            out.push(Finding::fail(
                "state dir",
                format!(
                    "{root}: {e}; run `cm-relay init --state-dir {root} --public-addr HOST:PORT`"
                ),
            ));
            return out;
        }
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.push(Finding::fail(
                    "state dir",
                    format!("{root} has mode {mode:o}: others can read the relay's secrets; run `chmod 700 {root}`"),
                ));
            } else {
                out.push(Finding::ok("state dir", format!("{root} (mode {mode:o})")));
            }
        }
    }
    if let Ok(meta) = std::fs::metadata(dir.key_path()) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            out.push(Finding::fail(
                "private key",
                format!(
                    "{} has mode {mode:o}; run `chmod 600 {}`",
                    dir.key_path().display(),
                    dir.key_path().display()
                ),
            ));
        }
    }
    let pin = match dir.load_tls() {
        Ok((_, _, pin)) => {
            out.push(Finding::ok("certificate", format!("pin {pin}")));
            Some(pin)
        }
        Err(e) => {
            out.push(Finding::fail(
                "certificate",
                format!("{e}; restore relay.crt/relay.key from a backup, or re-initialise (clients must be re-enrolled)"),
            ));
            None
        }
    };
    match dir.store_config() {
        StoreConfig::Postgres(pg) => {
            let (findings, store) = crate::fleet::doctor::database(pg);
            out.extend(findings);
            if let (Some(store), Some(fleet)) = (store, fleet) {
                out.extend(crate::fleet::doctor::fleet(
                    &store,
                    dir,
                    fleet,
                    heartbeat_timeout,
                ));
            }
        }
        StoreConfig::Sqlite => out.push(sqlite_database(dir)),
    }
    out.push(listeners::udp(listen, pin.as_deref()));
    out.push(listeners::tcp(listen_tcp, pin.as_deref()));
    match dir.public_addr() {
        Some(public) if crate::config::port_of(&public) != Some(listen.port()) => {
            out.push(Finding::fail(
                "public address",
                format!(
                    "tokens and invites tell clients to dial {public}, but the relay listens on port {}; \
                     listen on that port (--listen 0.0.0.0:PORT or `listen` in relay.toml, or leave both \
                     unset), or forward it to {} in your firewall",
                    listen.port(),
                    listen.port()
                ),
            ));
        }
        Some(public) => out.push(Finding::ok(
            "public address",
            format!("{public} (the port the relay listens on)"),
        )),
        None => {}
    }
    // 2025-01-01T00:00:00Z: a clock before this is certainly wrong, and handshakes (±30 s) fail.
    const SANE_AFTER_MS: u64 = 1_735_689_600_000;
    if now_ms < SANE_AFTER_MS {
        out.push(Finding::fail(
            "clock",
            "the system clock is in the past; enable NTP (timedatectl set-ntp true)",
        ));
    } else {
        out.push(Finding::ok(
            "clock",
            "plausible (clients must be within 30 s of it)",
        ));
    }
    out
}

fn sqlite_database(dir: &StateDir) -> Finding {
    match dir.open_store() {
        Err(e) => Finding::fail("database", format!("{e}; restore relay.db from a backup")),
        Ok(store) => match store.integrity_check() {
            Ok(()) => match store.audit_verify() {
                Ok(None) => Finding::ok("database", "integrity ok, audit chain intact"),
                Ok(Some(row)) => Finding::fail(
                    "database",
                    format!(
                        "audit chain broken at row {row}: the audit trail was edited; investigate, then restore from a backup"
                    ),
                ),
                Err(e) => Finding::fail("database", format!("{e}")),
            },
            Err(e) => Finding::fail(
                "database",
                format!(
                    "integrity check failed ({e}); stop the relay and restore relay.db from a backup"
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ids::UserId;

    /// A state directory whose public address names `listen`'s port.
    fn healthy(listen: SocketAddr) -> (tempfile::TempDir, StateDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path().join("s"));
        crate::state::init(&dir, &listen.to_string(), &UserId::from("owner")).unwrap();
        (tmp, dir)
    }

    fn free() -> SocketAddr {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    }

    #[test]
    fn healthy_setup_passes_every_check() {
        let listen = free();
        let (_tmp, dir) = healthy(listen);
        let findings = check(&dir, listen, crate::time::now_ms());
        assert!(findings.iter().all(|f| f.problem.is_none()), "{findings:?}");
        assert_eq!(findings.len(), 7);
    }

    #[test]
    fn a_listen_port_other_than_the_public_address_port_is_flagged() {
        let public = free();
        let (_tmp, dir) = healthy(public);
        let listen = SocketAddr::from(([127, 0, 0, 1], public.port().wrapping_add(1).max(1)));
        let lines: Vec<String> = check(&dir, listen, crate::time::now_ms())
            .iter()
            .map(Finding::line)
            .collect();
        assert!(
            lines.iter().any(|l| l.starts_with("FAIL  public address")
                && l.contains(&format!("dial {public}"))
                && l.contains(&format!("listens on port {}", listen.port()))),
            "{lines:?}"
        );
    }

    #[test]
    fn the_default_listen_port_is_the_public_address_port() {
        assert_eq!(
            default_listen_for("relay.example.com:443"),
            "0.0.0.0:443".parse().unwrap()
        );
        assert_eq!(
            default_listen_for("[2001:db8::1]:8443"),
            "0.0.0.0:8443".parse().unwrap()
        );
        assert_eq!(
            crate::config::default_listen(None),
            "0.0.0.0:7443".parse().unwrap()
        );
    }

    #[test]
    fn a_running_relay_answers_on_both_listeners_and_another_key_is_named() {
        let (_tmp, dir) = healthy(free());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut config = crate::config::RelayConfig::new(dir.root().to_owned());
        config.listen = "127.0.0.1:0".parse().unwrap();
        let relay = rt.block_on(crate::server::Relay::spawn(config)).unwrap();
        let (udp, tcp) = (relay.local_addr(), relay.tcp_local_addr().unwrap());
        let lines = |dir: &StateDir| -> Vec<String> {
            check_member(
                dir,
                udp,
                Some(tcp),
                crate::time::now_ms(),
                None,
                Duration::ZERO,
            )
            .iter()
            .map(Finding::line)
            .collect()
        };
        let ours = lines(&dir);
        assert!(
            ours.iter()
                .any(|l| l.starts_with("ok    udp port") && l.contains("this relay answers QUIC")),
            "{ours:?}"
        );
        assert!(
            ours.iter()
                .any(|l| l.starts_with("ok    tcp port") && l.contains("answers TLS with its key")),
            "{ours:?}"
        );
        let (_other_tmp, other) = healthy(free());
        let theirs = lines(&other);
        for check in ["udp port", "tcp port"] {
            assert!(
                theirs
                    .iter()
                    .any(|l| l.starts_with(&format!("FAIL  {check}")) && l.contains("another key")),
                "{check}: {theirs:?}"
            );
        }
        rt.block_on(relay.shutdown());
    }

    #[test]
    fn a_tcp_port_held_by_something_else_than_the_relay_says_how_to_find_it() {
        let (_tmp, dir) = healthy(free());
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        // Accepts and hangs up at once, like a service that is not the relay.
        std::thread::spawn(move || {
            for conn in held.incoming() {
                drop(conn);
            }
        });
        let lines: Vec<String> = check_member(
            &dir,
            free(),
            Some(addr),
            crate::time::now_ms(),
            None,
            Duration::ZERO,
        )
        .iter()
        .map(Finding::line)
        .collect();
        assert!(
            lines.iter().any(|l| l.starts_with("FAIL  tcp port")
                && l.contains("ss -tlpn")
                && l.contains("\"off\"")),
            "{lines:?}"
        );
        let off = check_member(
            &dir,
            free(),
            None,
            crate::time::now_ms(),
            None,
            Duration::ZERO,
        );
        assert!(
            off.iter().any(|f| f.check == "tcp port"
                && f.problem.is_none()
                && f.line().contains("networks that drop UDP")),
            "{off:?}"
        );
    }

    fn default_listen_for(public: &str) -> SocketAddr {
        crate::config::default_listen(Some(public))
    }

    #[test]
    fn broken_setups_say_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = check(
            &StateDir::new(tmp.path().join("nope")),
            free(),
            crate::time::now_ms(),
        );
        assert!(
            missing[0].line().contains("run `cm-relay init"),
            "{missing:?}"
        );

        let (_tmp, dir) = healthy(free());
        std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.cert_path(), "not a certificate").unwrap();
        let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let f = check(&dir, held.local_addr().unwrap(), 0);
        let lines: Vec<String> = f.iter().map(Finding::line).collect();
        assert!(
            lines.iter().any(|l| l.contains("run `chmod 700")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("FAIL  certificate")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("is in use: fine if this relay is running")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("enable NTP")), "{lines:?}");
    }
}
