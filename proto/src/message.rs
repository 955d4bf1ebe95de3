//! Messages after the handshake: the control stream (heartbeats, pings, closing notices) and the
//! bodies of relay-answered requests (host list). Every struct ignores unknown fields so newer
//! peers can add them.

use crate::ids::{CredId, HostId};
use crate::wire_error::WireError;
use serde::{Deserialize, Serialize};

/// A message on the control stream (the handshake stream, kept open after h2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// Agent → relay, every heartbeat interval: "still here, and this is how I am".
    Heartbeat {
        /// Increments per heartbeat.
        seq: u64,
        /// Current host status.
        status: HostStatus,
    },
    /// Relay → agent: heartbeat received (lets the agent measure RTT and notice a dead relay).
    HeartbeatAck {
        /// The heartbeat's `seq`.
        seq: u64,
    },
    /// Operator → relay liveness and RTT probe.
    Ping {
        /// Echoed in the pong.
        seq: u64,
    },
    /// Relay → operator answer to a ping.
    Pong {
        /// The ping's `seq`.
        seq: u64,
    },
    /// Either side: the connection is about to close, and why.
    Closing {
        /// Machine-readable reason.
        reason: CloseReason,
    },
    /// Relay → agent: these operator credentials were revoked (logout, `creds revoke`, the
    /// kill switch). The agent stops every OpenCode launch bound to one of them (launch
    /// leases). Sent when revocations happen and, for credentials still within their lifetime,
    /// once after each agent handshake.
    CredsRevoked {
        /// The revoked credentials.
        cred_ids: Vec<CredId>,
    },
    /// Agent → relay: `session` was started from `parent` (a sub-agent's session, OpenCode's
    /// `task` tool). The relay records the parent's owner as the child's, so the child is
    /// driven by the same people as its parent.
    SessionParent {
        /// The new (child) session.
        session: String,
        /// The session it was started from.
        parent: String,
    },
    /// Agent → relay (zero-trust hosts): the host's end-to-end key and its proof, sent after
    /// each handshake; the relay stores it for an owner's laptop to certify.
    HostKeyClaim {
        /// The claim.
        claim: crate::trust::HostKeyClaim,
    },
    /// Relay → agent: the newest revocation list of each signer, after each handshake and
    /// whenever one is published. Agents refuse new work when the newest owner-signed one is
    /// too old, so a relay that withholds them stops the host rather than a revocation.
    Revocations {
        /// The lists.
        lists: Vec<crate::trust::RevocationList>,
        /// Owner root rotation statements (each signed by the root it replaces), sent before
        /// the lists their new roots signed; an agent that pins the old root pins the new one.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rotations: Vec<crate::trust::RootRotation>,
    },
    /// Agent → relay: the host's own user opened OpenCode's TUI on `workspace` at the desk
    /// (`cm-agent attach`), `at_ms` (unix ms, agent's clock; the notice waits for a link when
    /// no relay was reachable then). The relay audits it as a local action (`local_attach`).
    LocalAttach {
        /// The workspace attached to.
        workspace: String,
        /// When it happened.
        at_ms: u64,
    },
    /// Agent → relay: something in a workspace needs a human (metadata only; see
    /// `notify::Attention`). The relay notifies the users subscribed to it.
    Attention {
        /// What and where.
        attention: crate::notify::Attention,
    },
    /// A message type this build does not know (from a newer peer); ignored.
    #[serde(other)]
    Unknown,
}

/// Why a connection is closed; also carried as the QUIC application close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Ordinary close (client exit).
    Normal,
    /// The relay is restarting: reconnect now.
    Restarting,
    /// The credential was revoked or the kill switch hit: do not reconnect with it.
    Revoked,
    /// Authentication failed.
    AuthFailed,
    /// The peer broke the protocol.
    ProtocolError,
    /// Another connection took over this host id.
    Replaced,
}

impl CloseReason {
    /// The QUIC application error code for this reason.
    pub fn code(self) -> u32 {
        match self {
            Self::Normal => 0,
            Self::Restarting => 1,
            Self::Revoked => 2,
            Self::AuthFailed => 3,
            Self::ProtocolError => 4,
            Self::Replaced => 5,
        }
    }

    /// The reason for a QUIC application error code (unknown codes read as protocol errors).
    pub fn from_code(code: u64) -> Self {
        match code {
            0 => Self::Normal,
            1 => Self::Restarting,
            2 => Self::Revoked,
            3 => Self::AuthFailed,
            5 => Self::Replaced,
            _ => Self::ProtocolError,
        }
    }
}

/// What an agent reports about its host in each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostStatus {
    /// The host's own name.
    pub hostname: String,
    /// Operating system and kernel, e.g. `linux 6.1.0`.
    pub os: String,
    /// `cm-agent` version.
    pub agent_version: String,
    /// Host uptime in seconds.
    pub uptime_s: u64,
    /// 1-, 5- and 15-minute load averages.
    pub load: [f64; 3],
    /// Total memory in KiB.
    pub mem_total_kib: u64,
    /// Available memory in KiB.
    pub mem_available_kib: u64,
    /// Names of the configured workspaces.
    pub workspaces: Vec<String>,
}

/// Longest text field of a [`HostStatus`] the relay keeps, in bytes.
pub const MAX_STATUS_TEXT: usize = 256;
/// Most workspace names a [`HostStatus`] keeps.
pub const MAX_STATUS_WORKSPACES: usize = 256;

/// Cuts `s` to at most `max` bytes, at a character boundary.
pub fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

impl HostStatus {
    /// This status within the limits above: what one host reports is shown to every operator
    /// who lists hosts, so a huge one must not make the list too large to send.
    pub fn bounded(mut self) -> Self {
        for text in [&mut self.hostname, &mut self.os, &mut self.agent_version] {
            truncate_utf8(text, MAX_STATUS_TEXT);
        }
        self.workspaces.truncate(MAX_STATUS_WORKSPACES);
        for name in &mut self.workspaces {
            truncate_utf8(name, MAX_STATUS_TEXT);
        }
        self
    }
}

/// One host as the relay sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The host's id.
    pub host: HostId,
    /// Connected and heart-beating within the window.
    pub online: bool,
    /// Last heartbeat, unix ms (never, if `None`).
    #[serde(default)]
    pub last_heartbeat_ms: Option<u64>,
    /// Last reported status.
    #[serde(default)]
    pub status: Option<HostStatus>,
}

/// The relay's answer to `host_list`, and each update on `watch_hosts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostList {
    /// Relay clock when the list was made, unix ms (for "last seen N s ago").
    pub now_ms: u64,
    /// Hosts the principal may see, sorted by id.
    pub hosts: Vec<HostInfo>,
    /// The principal's effective role on each listed host.
    #[serde(default)]
    pub roles: std::collections::BTreeMap<HostId, crate::rbac::Role>,
    /// The principal's role from its grant on every host (`*`), the only grant that counts for
    /// administering the relay (users, hosts, credentials, kill switch, audit). `None` without
    /// such a grant, and from relays that predate the field.
    #[serde(default)]
    pub global_role: Option<crate::rbac::Role>,
}

/// A response frame on a request stream: either the body or a typed error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<T> {
    /// Success.
    Ok(T),
    /// Failure.
    Error(WireError),
}

impl<T> Reply<T> {
    /// Converts into a `Result`.
    pub fn into_result(self) -> Result<T, WireError> {
        match self {
            Self::Ok(t) => Ok(t),
            Self::Error(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_status_keeps_within_its_limits_at_char_boundaries() {
        let status = HostStatus {
            hostname: "é".repeat(MAX_STATUS_TEXT),
            os: "linux".into(),
            workspaces: vec!["w".repeat(MAX_STATUS_TEXT + 1); MAX_STATUS_WORKSPACES + 1],
            ..HostStatus::default()
        }
        .bounded();
        assert_eq!(status.hostname, "é".repeat(MAX_STATUS_TEXT / 2));
        assert_eq!(status.os, "linux");
        assert_eq!(status.workspaces.len(), MAX_STATUS_WORKSPACES);
        assert!(status.workspaces.iter().all(|w| w.len() == MAX_STATUS_TEXT));
        let mut odd = "aé".to_owned();
        truncate_utf8(&mut odd, 2);
        assert_eq!(odd, "a");
    }
    use crate::wire_error::ErrorCode;

    #[test]
    fn control_golden_json() {
        let hb = Control::HeartbeatAck { seq: 3 };
        assert_eq!(
            serde_json::to_string(&hb).unwrap(),
            r#"{"type":"heartbeat_ack","seq":3}"#
        );
        let closing = Control::Closing {
            reason: CloseReason::Restarting,
        };
        assert_eq!(
            serde_json::to_string(&closing).unwrap(),
            r#"{"type":"closing","reason":"restarting"}"#
        );
        let revoked = Control::CredsRevoked {
            cred_ids: vec![CredId::from("c1")],
        };
        assert_eq!(
            serde_json::to_string(&revoked).unwrap(),
            r#"{"type":"creds_revoked","cred_ids":["c1"]}"#
        );
        let future: Control = serde_json::from_str(r#"{"type":"teleport","to":"mars"}"#).unwrap();
        assert_eq!(future, Control::Unknown);
    }

    #[test]
    fn local_attach_golden_json() {
        let attach = Control::LocalAttach {
            workspace: "demo".into(),
            at_ms: 5,
        };
        let text = r#"{"type":"local_attach","workspace":"demo","at_ms":5}"#;
        assert_eq!(serde_json::to_string(&attach).unwrap(), text);
        assert_eq!(serde_json::from_str::<Control>(text).unwrap(), attach);
    }

    #[test]
    fn close_codes_round_trip() {
        for r in [
            CloseReason::Normal,
            CloseReason::Restarting,
            CloseReason::Revoked,
            CloseReason::AuthFailed,
            CloseReason::ProtocolError,
            CloseReason::Replaced,
        ] {
            assert_eq!(CloseReason::from_code(u64::from(r.code())), r);
        }
        assert_eq!(CloseReason::from_code(999), CloseReason::ProtocolError);
    }

    #[test]
    fn status_tolerates_missing_and_unknown_fields() {
        let s: HostStatus = serde_json::from_str(r#"{"hostname":"h","gpu":"none"}"#).unwrap();
        assert_eq!(s.hostname, "h");
        assert_eq!(s.uptime_s, 0);
    }

    #[test]
    fn host_list_golden_json() {
        let list = HostList {
            now_ms: 7,
            hosts: vec![HostInfo {
                host: HostId::from("box"),
                online: true,
                last_heartbeat_ms: Some(5),
                status: None,
            }],
            roles: [(HostId::from("box"), crate::rbac::Role::Admin)].into(),
            global_role: Some(crate::rbac::Role::Viewer),
        };
        let json = r#"{"now_ms":7,"hosts":[{"host":"box","online":true,"last_heartbeat_ms":5,"status":null}],"roles":{"box":"admin"},"global_role":"viewer"}"#;
        assert_eq!(serde_json::to_string(&list).unwrap(), json);
        assert_eq!(serde_json::from_str::<HostList>(json).unwrap(), list);
        // Older relays send neither `roles` nor `global_role`.
        let old: HostList = serde_json::from_str(r#"{"now_ms":7,"hosts":[]}"#).unwrap();
        assert!(old.roles.is_empty());
        assert_eq!(old.global_role, None);
    }

    #[test]
    fn reply_golden_json() {
        let ok: Reply<u32> = Reply::Ok(5);
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"ok":5}"#);
        let err: Reply<u32> = Reply::Error(WireError::new(ErrorCode::HostOffline, "h is offline"));
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"error":{"code":"host_offline","message":"h is offline"}}"#
        );
    }
}
