//! `cm-tui status`: who you are logged in as where, until when, where the credential is kept,
//! and whether the relay answers now (with your roles on its hosts).

use crate::connect;
use crate::login::describe_validity;
use crate::profile::Profile;
use crate::view::text::sanitize;
use cm_client::LinkError;
use proto::handshake::Key;
use proto::ids::HostId;
use proto::rbac::Role;
use serde::Serialize;
use std::collections::BTreeMap;

/// What every transport shares: the relay's key is pinned.
pub const PINNED: &str = "TLS 1.3, relay key pinned";

/// What `cm-tui status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Relay address.
    pub relay: String,
    /// The relay key pin trusted.
    pub pin: String,
    /// The user.
    pub user: String,
    /// The credential's id (never its secret).
    pub credential: String,
    /// When the credential expires, unix ms.
    pub expires_at_ms: u64,
    /// Where the credential secret is kept.
    pub secret_store: String,
    /// How the relay is reached: `QUIC`, `TCP` or `TCP via proxy` (with the pinning note), or
    /// `not connected`.
    pub transport: String,
    /// Which transports work from here (QUIC and TCP each tried once), when the relay answered.
    pub reachability: Option<String>,
    /// Whether the relay answers now.
    pub connection: ConnectionState,
    /// Your role on each host you may see (empty when not connected).
    pub roles: BTreeMap<HostId, Role>,
    /// Your role from a grant on every host (`*`), if any.
    pub global_role: Option<Role>,
}

/// The connection as tried just now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Connected and authenticated.
    Connected {
        /// Round-trip time, ms.
        rtt_ms: u64,
    },
    /// The relay refused this login (revoked, expired, or another relay key).
    Refused {
        /// Why.
        message: String,
    },
    /// The relay could not be reached.
    Unreachable {
        /// Why.
        message: String,
    },
}

/// Connects once and reports; the error is returned too, so the exit code can say it.
pub async fn status(
    profile: &Profile,
    key: &Key,
    secret_store: String,
) -> (Status, Option<LinkError>) {
    let mut status = Status {
        relay: profile.relay.clone(),
        pin: profile.pin.clone(),
        user: profile.user.to_string(),
        credential: profile.cred_id.to_string(),
        expires_at_ms: profile.expires_at_ms,
        secret_store,
        transport: "not connected".into(),
        reachability: None,
        connection: ConnectionState::Unreachable {
            message: String::new(),
        },
        roles: BTreeMap::new(),
        global_role: None,
    };
    let result = async {
        let connected = connect::connect_from(profile, key, 0).await?;
        let session = connected.session;
        let list = connect::host_list(&session.conn).await;
        let rtt = session.conn.rtt();
        session.conn.close(0u32.into(), b"done");
        status.transport = format!("{} ({PINNED})", connected.transport);
        let opts = connect::dial_options(profile);
        let reach = cm_client::transport::check::probe_both(
            target_of(profile, connected.addr).await,
            &profile.pin,
            &opts,
        )
        .await;
        let (_, line) = cm_client::transport::check::verdict(&reach, opts.transport.mode);
        status.reachability = Some(line);
        list.map(|l| (l, rtt))
    }
    .await;
    match result {
        Ok((list, rtt)) => {
            status.connection = ConnectionState::Connected {
                rtt_ms: u64::try_from(rtt.as_millis()).unwrap_or(u64::MAX),
            };
            status.roles = list.roles;
            status.global_role = list.global_role;
            (status, None)
        }
        Err(e) => {
            if !e.is_fatal() {
                status.reachability = reachability_unconnected(profile).await;
            }
            let message = e.to_string();
            status.connection = if e.is_fatal() {
                ConnectionState::Refused { message }
            } else {
                ConnectionState::Unreachable { message }
            };
            (status, Some(e))
        }
    }
}

/// Which transports work from here when the connection failed: both tried against the relay's
/// first address, saying what to open.
async fn reachability_unconnected(profile: &Profile) -> Option<String> {
    let target = cm_client::resolve_targets(&profile.relay)
        .await
        .ok()?
        .into_iter()
        .next()?;
    let opts = connect::dial_options(profile);
    let reach = cm_client::transport::check::probe_both(target, &profile.pin, &opts).await;
    Some(cm_client::transport::check::verdict(&reach, opts.transport.mode).1)
}

/// `addr` with the profile's relay name it was resolved from (what a proxy and `NO_PROXY` see,
/// as when the app dials); the bare address when it is not among the relay's.
async fn target_of(profile: &Profile, addr: std::net::SocketAddr) -> cm_client::DialTarget {
    cm_client::resolve_targets(&profile.relay)
        .await
        .ok()
        .and_then(|targets| targets.into_iter().find(|t| t.addr == addr))
        .unwrap_or_else(|| addr.into())
}

/// The status as text, one `name: value` line each (values from the relay sanitized).
pub fn format_status(s: &Status, now_ms: u64) -> String {
    let expiry = match s.expires_at_ms.checked_sub(now_ms) {
        Some(left) if left > 0 => format!(
            "{} (valid for {})",
            cm_client::time::utc(s.expires_at_ms),
            describe_validity(left)
        ),
        _ => format!("{} (expired)", cm_client::time::utc(s.expires_at_ms)),
    };
    let connection = match &s.connection {
        ConnectionState::Connected { rtt_ms } => format!("connected (rtt {rtt_ms} ms)"),
        ConnectionState::Refused { message } => format!("refused: {}", sanitize(message)),
        ConnectionState::Unreachable { message } => format!("unreachable: {}", sanitize(message)),
    };
    let mut roles: Vec<String> = s
        .global_role
        .iter()
        .map(|r| format!("{r} on every host (*)"))
        .collect();
    roles.extend(
        s.roles
            .iter()
            .map(|(h, r)| format!("{r} on {}", sanitize(&h.0))),
    );
    let roles = if roles.is_empty() {
        "(unknown until connected)".to_owned()
    } else {
        roles.join(", ")
    };
    let reachability = s
        .reachability
        .as_deref()
        .map(|r| format!("from here:    {}\n", sanitize(r)))
        .unwrap_or_default();
    format!(
        "relay:        {}\npin:          {}\nuser:         {}\ncredential:   {}, expires {expiry}\nstored in:    {}\ntransport:    {}\n{reachability}connection:   {connection}\nroles:        {roles}\n",
        sanitize(&s.relay),
        sanitize(&s.pin),
        sanitize(&s.user),
        sanitize(&s.credential),
        s.secret_store,
        s.transport,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_the_transport_and_what_works_from_here() {
        let status = Status {
            relay: "r:7443".into(),
            pin: "blake3:00".into(),
            user: "ann".into(),
            credential: "c1".into(),
            expires_at_ms: 10_000_000,
            secret_store: "file".into(),
            transport: format!("TCP via proxy ({PINNED})"),
            reachability: Some("TCP via proxy works, QUIC does not".into()),
            connection: ConnectionState::Connected { rtt_ms: 3 },
            roles: BTreeMap::new(),
            global_role: None,
        };
        let text = format_status(&status, 0);
        assert!(
            text.contains("transport:    TCP via proxy (TLS 1.3, relay key pinned)\n"),
            "{text}"
        );
        assert!(text.contains("from here:    TCP via proxy works"), "{text}");
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json["transport"],
            "TCP via proxy (TLS 1.3, relay key pinned)"
        );
    }
}
