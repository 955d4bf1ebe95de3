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

/// How the relay is reached (the only transport there is).
pub const TRANSPORT: &str = "QUIC (TLS 1.3), relay key pinned";

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
    /// How the relay is reached.
    pub transport: &'static str,
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
        transport: TRANSPORT,
        connection: ConnectionState::Unreachable {
            message: String::new(),
        },
        roles: BTreeMap::new(),
        global_role: None,
    };
    let result = async {
        let session = connect::connect(profile, key).await?;
        let list = connect::host_list(&session.conn).await;
        let rtt = session.conn.rtt();
        session.conn.close(0u32.into(), b"done");
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
    format!(
        "relay:        {}\npin:          {}\nuser:         {}\ncredential:   {}, expires {expiry}\nstored in:    {}\ntransport:    {}\nconnection:   {connection}\nroles:        {roles}\n",
        sanitize(&s.relay),
        sanitize(&s.pin),
        sanitize(&s.user),
        sanitize(&s.credential),
        s.secret_store,
        s.transport,
    )
}
