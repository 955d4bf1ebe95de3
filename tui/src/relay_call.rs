//! One request to an operation the relay answers itself (administration, trust objects):
//! unsigned and in plaintext, whatever the profile's trust mode.

use crate::commands::CommandError;
use crate::e2e_channels::HostStreams;
use crate::remote::Remote;
use cm_client::time::random_u64;
use proto::header::StreamHeader;
use proto::ids::ReqId;
use proto::operation::Unary;

/// What holds a relay connection: the CLI's [`Remote`], the app's [`HostStreams`].
pub trait RelayConn: Sync {
    /// The connection to the relay.
    fn relay_conn(&self) -> &quinn::Connection;
}

impl RelayConn for Remote {
    fn relay_conn(&self) -> &quinn::Connection {
        self.conn()
    }
}

impl RelayConn for HostStreams {
    fn relay_conn(&self) -> &quinn::Connection {
        self.conn()
    }
}

/// One relay administration request (no target: the relay answers it itself).
pub(crate) async fn call<O: Unary>(
    remote: &impl RelayConn,
    body: &O::Body,
) -> Result<O::Reply, CommandError> {
    let header = StreamHeader::new(O::OP, ReqId(random_u64()));
    Ok(cm_client::call::<O>(remote.relay_conn(), &header, body).await?)
}
