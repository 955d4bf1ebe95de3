//! The stream header: the first frame of every request stream after the handshake.
//!
//! The relay parses only this header (never OpenCode payloads), authorizes it once, and then
//! either answers itself or forwards the stream to the target host's agent.

use crate::ids::{HostId, ReqId};
use serde::{Deserialize, Serialize};

pub use crate::opcode::Op;

/// The first frame of a request stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHeader {
    /// What the stream is for.
    pub op: Op,
    /// Client-chosen id, echoed in logs and replies.
    pub req_id: ReqId,
    /// Target host, for forwarded operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostId>,
    /// Target workspace on that host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Target OpenCode session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The operator's signature (zero-trust hosts verify it themselves; see
    /// [`crate::trust::header`]). The relay passes it to the agent untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::trust::HeaderAuth>,
    /// On a stream sealed with an end-to-end channel: the MAC under the channel's key over the
    /// signature above (see [`crate::trust::header_mac`]). The host authenticates the header by
    /// it and checks the signature beside the work. The relay passes it untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl crate::trust::header::HeaderFields for StreamHeader {
    fn op(&self) -> Op {
        self.op
    }
    fn req_id(&self) -> ReqId {
        self.req_id
    }
    fn host(&self) -> Option<&HostId> {
        self.host.as_ref()
    }
    fn workspace(&self) -> Option<&String> {
        self.workspace.as_ref()
    }
    fn session(&self) -> Option<&String> {
        self.session.as_ref()
    }
    fn auth(&self) -> Option<&crate::trust::HeaderAuth> {
        self.auth.as_ref()
    }
    fn mac(&self) -> Option<&str> {
        self.mac.as_deref()
    }
    fn set_mac(&mut self, mac: String) {
        self.mac = Some(mac);
    }
    fn set_auth(&mut self, auth: crate::trust::HeaderAuth) {
        self.auth = Some(auth);
    }
}

impl StreamHeader {
    /// A header for `op` with no target.
    pub fn new(op: Op, req_id: ReqId) -> Self {
        Self {
            op,
            req_id,
            host: None,
            workspace: None,
            session: None,
            auth: None,
            mac: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for op in Op::ALL {
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(json, format!("\"{}\"", op.as_str()));
            assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
        }
    }

    #[test]
    fn unknown_ops_and_fields_are_tolerated() {
        let h: StreamHeader =
            serde_json::from_str(r#"{"op":"teleport","req_id":9,"future_field":true}"#).unwrap();
        assert_eq!(h.op, Op::Unknown);
        assert_eq!(h.req_id, ReqId(9));
    }

    #[test]
    fn header_golden_json() {
        let mut h = StreamHeader::new(Op::HostList, ReqId(1));
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"op":"host_list","req_id":1}"#
        );
        h.host = Some(HostId::from("box"));
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"op":"host_list","req_id":1,"host":"box"}"#
        );
    }
}
