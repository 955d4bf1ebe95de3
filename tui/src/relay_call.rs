//! One request to an operation the relay answers itself (administration, trust objects):
//! unsigned and in plaintext, whatever the profile's trust mode.

use crate::commands::CommandError;
use crate::remote::Remote;
use cm_client::time::random_u64;
use proto::header::StreamHeader;
use proto::ids::ReqId;
use proto::operation::Unary;

/// One relay administration request (no target: the relay answers it itself).
pub(crate) async fn call<O: Unary>(
    remote: &Remote,
    body: &O::Body,
) -> Result<O::Reply, CommandError> {
    let header = StreamHeader::new(O::OP, ReqId(random_u64()));
    Ok(cm_client::call::<O>(remote.conn(), &header, body).await?)
}
