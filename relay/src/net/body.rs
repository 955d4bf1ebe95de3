//! The one body reader for request streams: every operation that reads a body after its header
//! reads it here, within the relay's handshake timeout, so a client that sends a header and
//! never the body is answered with an error and its stream is freed. And the one way a request
//! is answered: a value, or a [`RequestError`] through its one wire mapping.

use super::error::RequestError;
use crate::framed::{FramedRecv, StreamError, send_frame};
use bytes::BytesMut;
use proto::frame::MAX_FRAME_LEN;
use proto::header::Op;
use proto::message::Reply;
use proto::operation::{BodyKind, Operation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The body frame of `op`, raw; `None` if the stream ended without one.
///
/// # Errors
/// [`RequestError::BodyTimeout`] when nothing complete came within `timeout`,
/// [`RequestError::BadBody`] for a frame that cannot be read.
pub(crate) async fn read_raw(
    recv: &mut FramedRecv,
    op: Op,
    timeout: Duration,
) -> Result<Option<BytesMut>, RequestError> {
    match tokio::time::timeout(timeout, recv.next_raw()).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(bad_body(op, &e)),
        Err(_) => Err(RequestError::BodyTimeout(op)),
    }
}

fn bad_body(op: Op, e: &dyn std::fmt::Display) -> RequestError {
    RequestError::BadBody {
        op,
        detail: e.to_string(),
    }
}

/// The body of `op` decoded; `None` if the stream ended without one.
///
/// # Errors
/// As [`read_raw`], and [`RequestError::BadBody`] for a body that is not a `T`.
pub(crate) async fn read<T: DeserializeOwned>(
    recv: &mut FramedRecv,
    op: Op,
    timeout: Duration,
) -> Result<Option<T>, RequestError> {
    match read_raw(recv, op, timeout).await? {
        None => Ok(None),
        Some(body) => proto::frame::parse_json(&body)
            .map(Some)
            .map_err(|e| bad_body(op, &StreamError::from(e))),
    }
}

/// The body of operation `O` as the operation list declares it: nothing is read for
/// [`BodyKind::None`], the default stands in for a missing [`BodyKind::Optional`] one, and a
/// [`BodyKind::Required`] one must come.
///
/// # Errors
/// As [`read`], and [`RequestError::NoBody`] when a required body did not come.
pub(crate) async fn of<O: Operation>(
    recv: &mut FramedRecv,
    timeout: Duration,
) -> Result<O::Body, RequestError> {
    let sent = match O::BODY {
        BodyKind::None => None,
        BodyKind::Optional | BodyKind::Required => read(recv, O::OP, timeout).await?,
    };
    sent.or_else(O::absent_body)
        .ok_or(RequestError::NoBody(O::OP))
}

/// Answers a request stream with `answer` (an error through [`RequestError::wire`]) and
/// finishes it.
pub(crate) async fn answer<T: Serialize>(send: quinn::SendStream, answer: Result<T, RequestError>) {
    let reply = match answer {
        Ok(v) => Reply::Ok(v),
        Err(e) => Reply::Error(e.wire()),
    };
    send_reply(send, &reply).await;
}

/// Writes one reply frame (the stream stays open); false if the stream is gone.
pub(crate) async fn reply<T: Serialize>(send: &mut quinn::SendStream, r: &Reply<T>) -> bool {
    send_frame(send, r, MAX_FRAME_LEN).await.is_ok()
}

/// Sends `reply` as the stream's answer and finishes it.
pub(crate) async fn send_reply<T: Serialize>(mut send: quinn::SendStream, reply: &Reply<T>) {
    let _ = send_frame(&mut send, reply, MAX_FRAME_LEN).await;
    let _ = send.finish();
}

/// Answers a request stream with an error and finishes it.
pub(crate) async fn refuse(send: quinn::SendStream, error: RequestError) {
    answer::<()>(send, Err(error)).await;
}
