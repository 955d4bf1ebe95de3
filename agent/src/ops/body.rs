//! Reading an operation's request body as its list entry says: none, optional (the default
//! when the operator's send side ends without one) or required, within [`BODY_TIMEOUT`].

use super::error::OpError;
use super::frames::{FrameIoError, FrameReader};
use proto::header::Op;
use proto::operation::{BodyKind, Operation};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio::io::AsyncRead;

/// How long a stream's body may take to arrive after its header: a stream left without one
/// would otherwise hold one of the agent's streams for as long as its sender likes.
pub(super) const BODY_TIMEOUT: Duration = Duration::from_secs(10);

fn body_error(op: Op, e: &FrameIoError) -> OpError {
    // A sealed record that does not open (altered or cut on its way) says so.
    if let FrameIoError::Read(io) = e
        && let Some(e2e) = io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<cm_client::e2e::E2eError>())
    {
        return OpError::E2e(e2e.clone());
    }
    OpError::BadRequest(format!("malformed body for {}: {e}", op.as_str()))
}

/// The next body frame (`None` at the end of the stream), within `within`.
pub(super) async fn next_body<T: DeserializeOwned, R: AsyncRead + Unpin>(
    op: Op,
    body: &mut FrameReader<R>,
    within: Duration,
) -> Result<Option<T>, OpError> {
    match tokio::time::timeout(within, body.next()).await {
        Ok(read) => read.map_err(|e| body_error(op, &e)),
        Err(_) => Err(OpError::BadRequest(format!(
            "no complete body for {} within {within:?}; send it right after the header",
            op.as_str()
        ))),
    }
}

/// The next body frame's bytes exactly as they arrived (for checking a signed hash), `None`
/// at the end of the stream, within [`BODY_TIMEOUT`].
pub(super) async fn next_raw_body<R: AsyncRead + Unpin>(
    op: Op,
    body: &mut FrameReader<R>,
) -> Result<Option<bytes::BytesMut>, OpError> {
    match tokio::time::timeout(BODY_TIMEOUT, body.next_raw()).await {
        Ok(read) => read.map_err(|e| body_error(op, &e)),
        Err(_) => Err(OpError::BadRequest(format!(
            "no complete body for {} within {BODY_TIMEOUT:?}; send it right after the header",
            op.as_str()
        ))),
    }
}

/// `O`'s body: nothing is read for a body-less operation; an optional body defaults when the
/// stream ends without one; a required one must come.
pub(super) async fn read_body<O: Operation, R: AsyncRead + Unpin>(
    body: &mut FrameReader<R>,
) -> Result<O::Body, OpError> {
    let missing = || OpError::BadRequest(format!("{} needs a request body", O::OP.as_str()));
    match O::BODY {
        BodyKind::None => O::absent_body().ok_or_else(missing),
        BodyKind::Optional => Ok(next_body(O::OP, body, BODY_TIMEOUT)
            .await?
            .or_else(O::absent_body)
            .ok_or_else(missing)?),
        BodyKind::Required => next_body(O::OP, body, BODY_TIMEOUT)
            .await?
            .ok_or_else(missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::op;
    use serde_json::Value;

    #[tokio::test]
    async fn a_body_that_never_comes_ends_the_stream() {
        // The sender keeps its side open and sends nothing (a header-only stream).
        let (quiet, _held_open) = tokio::io::duplex(64);
        let mut body = FrameReader::new(quiet, 1024);
        let e = next_body::<Value, _>(Op::Messages, &mut body, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("no complete body for messages"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn bodies_are_read_as_the_list_says() {
        // The operator's send side ended without a body.
        let (ended, writer) = tokio::io::duplex(64);
        drop(writer);
        let mut body = FrameReader::new(ended, 1024);
        let q = read_body::<op::Messages, _>(&mut body).await.unwrap();
        assert_eq!(q.limit, None, "an optional body defaults");
        let e = read_body::<op::Prompt, _>(&mut body).await.unwrap_err();
        assert!(e.to_string().contains("prompt needs a request body"), "{e}");
        // Nothing is read for a body-less operation, even from a stream that never ends.
        let (quiet, _held_open) = tokio::io::duplex(64);
        let mut body = FrameReader::new(quiet, 1024);
        read_body::<op::Abort, _>(&mut body).await.unwrap();
    }
}
