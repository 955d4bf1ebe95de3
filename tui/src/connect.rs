//! Connecting as an operator and the requests the scripting commands make.

use crate::profile::Profile;
use cm_client::transport::{Transport, TransportMode};
use cm_client::{self as client, DialOptions, LinkError, Session};
use proto::handshake::{Key, PeerKind};
use proto::ids::ReqId;
use proto::message::{HostInfo, HostList};

/// How the profile's login reaches the relay (QUIC, TCP, proxy; the per-network memory).
pub fn dial_options(profile: &Profile) -> DialOptions {
    DialOptions {
        transport: profile.home.transport.clone(),
        ..DialOptions::default()
    }
}

/// An authenticated QUIC session to `relay`, once a connection over `transport` should move
/// back to QUIC: never on QUIC or with a forced transport; on TCP in `auto` mode, once a
/// background QUIC probe answers and the QUIC connection authenticates (the caller then moves
/// new work to it and lets the TCP connection's open streams finish).
pub async fn quic_is_back(
    profile: &Profile,
    key: &Key,
    relay: std::net::SocketAddr,
    transport: Transport,
) -> Session {
    if !transport.is_tcp() || profile.home.transport.mode != TransportMode::Auto {
        return std::future::pending().await;
    }
    let opts = dial_options(profile);
    loop {
        client::transport::quic_comes_back(relay, &profile.pin, &opts).await;
        let session = async {
            let (_endpoint, conn) = client::dial_quic(relay, &profile.pin, &opts).await?;
            client::authenticate(conn, PeerKind::Operator, &profile.cred_id, key).await
        };
        match session.await {
            Ok(session) => return session,
            Err(e) => {
                tracing::debug!(%relay, error = %e, "QUIC answered a probe but the session failed; staying on TCP")
            }
        }
    }
}

/// Dials the relay of `profile` and authenticates with its credential.
///
/// # Errors
/// Dial, pin or authentication failures.
pub async fn connect(profile: &Profile, key: &Key) -> Result<Session, LinkError> {
    connect_endpoint(profile, key).await.map(|(_, s)| s)
}

/// [`connect`], also returning the endpoint (see [`cm_client::dial_endpoint`]).
///
/// # Errors
/// Dial, pin or authentication failures.
pub async fn connect_endpoint(
    profile: &Profile,
    key: &Key,
) -> Result<(quinn::Endpoint, Session), LinkError> {
    let (endpoint, conn) =
        client::dial_endpoint(&profile.relay, &profile.pin, &dial_options(profile)).await?;
    let session = client::authenticate(conn, PeerKind::Operator, &profile.cred_id, key).await?;
    Ok((endpoint, session))
}

/// A connection [`connect_from`] made: which of the profile's relay addresses answered.
#[derive(Debug)]
pub struct Connected {
    /// Index of the answering address in the resolved list.
    pub index: usize,
    /// The answering address.
    pub addr: std::net::SocketAddr,
    /// The authenticated session.
    pub session: Session,
    /// The transport that carries it.
    pub transport: Transport,
}

/// Dials the profile's relay addresses (a comma list or a name with several addresses) in
/// order from `start` (wrapping around) and authenticates on the first that answers. After a
/// lost connection the caller passes the next index, so the reconnect goes to another relay.
///
/// # Errors
/// Resolution, dial, pin or authentication failures.
pub async fn connect_from(
    profile: &Profile,
    key: &Key,
    start: usize,
) -> Result<Connected, LinkError> {
    let targets = client::resolve_targets(&profile.relay).await?;
    let dialed = client::dial_any(&targets, start, &profile.pin, &dial_options(profile)).await?;
    let session =
        client::authenticate(dialed.conn, PeerKind::Operator, &profile.cred_id, key).await?;
    Ok(Connected {
        index: dialed.index,
        addr: dialed.addr,
        session,
        transport: dialed.transport,
    })
}

/// Asks for the host list once.
///
/// # Errors
/// Transport failures or a refusal.
pub async fn host_list(conn: &quinn::Connection) -> Result<HostList, LinkError> {
    client::host_list(conn, ReqId(1)).await
}

/// "3s ago", "5m ago", "never".
pub fn ago(now_ms: u64, then_ms: Option<u64>) -> String {
    let Some(then) = then_ms else {
        return "never".into();
    };
    let s = now_ms.saturating_sub(then) / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

fn mem(h: &HostInfo) -> String {
    match &h.status {
        Some(s) if s.mem_total_kib > 0 => format!(
            "{:.1}/{:.1} GiB",
            (s.mem_total_kib.saturating_sub(s.mem_available_kib)) as f64 / 1_048_576.0,
            s.mem_total_kib as f64 / 1_048_576.0
        ),
        _ => "-".into(),
    }
}

/// The host list as a plain table.
pub fn format_hosts(list: &HostList) -> String {
    let mut out = format!(
        "{:<20} {:<8} {:<10} {:<22} {:<6} {:<16} {}\n",
        "HOST", "STATE", "HEARTBEAT", "OS", "LOAD", "MEMORY", "WORKSPACES"
    );
    for h in &list.hosts {
        let (os, load, ws) = match &h.status {
            Some(s) => (
                s.os.clone(),
                format!("{:.2}", s.load[0]),
                s.workspaces.join(","),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        out.push_str(&format!(
            "{:<20} {:<8} {:<10} {:<22} {:<6} {:<16} {}\n",
            h.host,
            if h.online { "online" } else { "offline" },
            ago(list.now_ms, h.last_heartbeat_ms),
            os,
            load,
            mem(h),
            ws
        ));
    }
    if list.hosts.is_empty() {
        out.push_str(empty_hint(list.global_role));
    }
    out
}

/// What an empty host list means: an admin on `*` sees every enrolled host (revoked ones are
/// not listed), anyone else only the hosts they hold a grant on.
fn empty_hint(global_role: Option<proto::rbac::Role>) -> &'static str {
    if global_role.is_some_and(|r| r >= proto::rbac::Role::Admin) {
        "(no enrolled hosts: enroll one with `cm-tui admin host add NAME` or `cm-relay host add NAME`)\n"
    } else {
        "(no hosts you can see; ask an admin for a grant)\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ids::HostId;
    use proto::message::HostStatus;
    use proto::rbac::Role;

    #[test]
    fn ago_buckets() {
        assert_eq!(ago(10_000, None), "never");
        assert_eq!(ago(10_000, Some(7_000)), "3s ago");
        assert_eq!(ago(200_000, Some(0)), "3m ago");
        assert_eq!(ago(7_200_000, Some(0)), "2h ago");
        assert_eq!(ago(0, Some(5_000)), "0s ago");
    }

    #[test]
    fn table_shows_state_and_status() {
        let list = HostList {
            now_ms: 10_000,
            hosts: vec![
                HostInfo {
                    host: HostId::from("box"),
                    online: true,
                    last_heartbeat_ms: Some(9_000),
                    status: Some(HostStatus {
                        os: "linux 6.1".into(),
                        load: [0.5, 0.0, 0.0],
                        mem_total_kib: 2 * 1_048_576,
                        mem_available_kib: 1_048_576,
                        workspaces: vec!["demo".into()],
                        ..HostStatus::default()
                    }),
                },
                HostInfo {
                    host: HostId::from("old"),
                    online: false,
                    last_heartbeat_ms: None,
                    status: None,
                },
            ],
            roles: Default::default(),
            global_role: None,
        };
        let t = format_hosts(&list);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].starts_with("box"), "{t}");
        assert!(
            lines[1].contains("online")
                && lines[1].contains("1s ago")
                && lines[1].contains("1.0/2.0 GiB")
        );
        assert!(lines[1].ends_with("demo"));
        assert!(lines[2].contains("offline") && lines[2].contains("never"));
    }

    #[test]
    fn an_empty_list_tells_admins_to_enroll_and_others_to_ask() {
        let list = |global_role| HostList {
            now_ms: 0,
            hosts: Vec::new(),
            roles: Default::default(),
            global_role,
        };
        let admin = format_hosts(&list(Some(Role::Admin)));
        assert!(
            admin.contains("(no enrolled hosts: enroll one with `cm-tui admin host add NAME`"),
            "{admin}"
        );
        for role in [None, Some(Role::Viewer), Some(Role::Operator)] {
            let t = format_hosts(&list(role));
            assert!(
                t.ends_with("(no hosts you can see; ask an admin for a grant)\n"),
                "{t}"
            );
            assert!(!t.contains("host add"), "{t}");
        }
    }
}
