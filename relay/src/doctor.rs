//! `cm-relay doctor`: checks a relay's setup and says, one line per problem, what to do.

use crate::config::StoreConfig;
pub use crate::finding::Finding;
use crate::fleet::FleetConfig;
use crate::state::StateDir;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Runs every check. `now_ms` is the wall clock (passed in so the clock check is testable).
pub fn check(dir: &StateDir, listen: SocketAddr, now_ms: u64) -> Vec<Finding> {
    check_member(dir, listen, now_ms, None, Duration::ZERO)
}

/// [`check`], and with `fleet` (`[fleet]` of relay.toml) the fleet's: this relay registered
/// with its peer identity, the other relays alive (liveness from `heartbeat_timeout`).
pub fn check_member(
    dir: &StateDir,
    listen: SocketAddr,
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
    match dir.load_tls() {
        Ok((_, _, pin)) => out.push(Finding::ok("certificate", format!("pin {pin}"))),
        Err(e) => out.push(Finding::fail(
            "certificate",
            format!("{e}; restore relay.crt/relay.key from a backup, or re-initialise (clients must be re-enrolled)"),
        )),
    }
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
    match std::net::UdpSocket::bind(listen) {
        Ok(_) => out.push(Finding::ok("udp port", format!("{listen} is free"))),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => out.push(Finding::ok(
            "udp port",
            format!("{listen} is in use: fine if this relay is running (otherwise stop what holds it)"),
        )),
        Err(e) => out.push(Finding::fail(
            "udp port",
            format!("cannot bind {listen}: {e} (a running relay holds it; otherwise choose another --listen, or grant CAP_NET_BIND_SERVICE for ports below 1024)"),
        )),
    }
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
        assert_eq!(findings.len(), 6);
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
