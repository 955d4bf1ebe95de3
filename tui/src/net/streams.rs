//! The app's streaming calls (`git_clone`, `template_apply`): each runs as `O`'s typed stream
//! on its own QUIC stream and task, every frame reported as a [`NetEvent::StreamItem`], the end
//! as one [`NetEvent::StreamEnded`]. Cancelling the task's token (the app closed the stream, or
//! the connection ended) stops reading, which tells the host the operator is gone: it stops
//! what it runs (an aborted clone's folder is removed).

use crate::call::{CallError, StreamCall, StreamItem, StreamRequest};
use crate::e2e_channels::{self, HostRecv, HostStreams, OpenOptions};
use crate::event::NetEvent;
use cm_client::LinkError;
use proto::ids::ReqId;
use proto::message::Reply;
use proto::op;
use proto::operation::{BodyKind, Streaming};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Runs one stream until its end, its cancellation or the app's departure.
pub(super) async fn run(
    hosts: Arc<HostStreams>,
    request: StreamRequest,
    events: mpsc::Sender<NetEvent>,
    cancel: CancellationToken,
) {
    let id = request.id;
    let h = super::header(request.call.op(), ReqId(id), &request.scope);
    let out = Out {
        id,
        events: &events,
    };
    let ended = tokio::select! {
        () = cancel.cancelled() => return,
        r = perform(&hosts, &h, &request.call, &out, &cancel) => r,
    };
    cancel.cancel();
    if let Some(error) = ended {
        let _ = events
            .send(NetEvent::StreamEnded {
                id,
                error: error.err(),
            })
            .await;
    }
}

/// Where a stream's frames go.
struct Out<'a> {
    id: u64,
    events: &'a mpsc::Sender<NetEvent>,
}

impl Out<'_> {
    /// Reports one frame; false when the app is gone.
    async fn item(&self, item: StreamItem) -> bool {
        let event = NetEvent::StreamItem { id: self.id, item };
        self.events.send(event).await.is_ok()
    }
}

/// The stream as `O`: `None` when the app went away, else how it ended.
async fn perform(
    conn: &HostStreams,
    h: &proto::header::StreamHeader,
    call: &StreamCall,
    out: &Out<'_>,
    cancel: &CancellationToken,
) -> Option<Result<(), CallError>> {
    match call {
        StreamCall::GitClone(body) => {
            typed::<op::GitClone>(
                conn,
                h,
                body,
                out,
                cancel,
                StreamItem::CloneStarted,
                StreamItem::Clone,
            )
            .await
        }
        StreamCall::TemplateApply(body) => {
            typed::<op::TemplateApply>(
                conn,
                h,
                body,
                out,
                cancel,
                StreamItem::Applied,
                StreamItem::Apply,
            )
            .await
        }
    }
}

fn call_error(e: impl Into<LinkError>) -> CallError {
    match e.into() {
        LinkError::Refused(w) => CallError::refused(w.code, w.message),
        other => CallError::transport(other.to_string()),
    }
}

/// One typed stream: `O`'s body out, its first answer and items in, as app items.
async fn typed<O: Streaming>(
    conn: &HostStreams,
    h: &proto::header::StreamHeader,
    body: &O::Body,
    out: &Out<'_>,
    cancel: &CancellationToken,
    first: fn(O::Reply) -> StreamItem,
    each: fn(O::Item) -> StreamItem,
) -> Option<Result<(), CallError>> {
    let opened = async {
        let body = (O::BODY != BodyKind::None).then_some(body);
        let e2e_channels::HostStream { send, mut recv } = conn
            .open(h, body, OpenOptions::FINISH)
            .await
            .map_err(call_error)?;
        let reply: Reply<O::Reply> = recv.expect().await.map_err(call_error)?;
        let reply = reply
            .into_result()
            .map_err(|w| CallError::refused(w.code, w.message))?;
        Ok::<_, CallError>((send, recv, reply))
    };
    let (_send, mut recv, reply) = match opened.await {
        Ok(o) => o,
        Err(e) => return Some(Err(e)),
    };
    if !out.item(first(reply)).await {
        return None;
    }
    let result = tokio::select! {
        () = cancel.cancelled() => {
            stop(&mut recv);
            return None;
        }
        r = items::<O>(&mut recv, out, each) => r,
    };
    result
}

/// Reads items until the stream ends.
async fn items<O: Streaming>(
    recv: &mut HostRecv,
    out: &Out<'_>,
    each: fn(O::Item) -> StreamItem,
) -> Option<Result<(), CallError>> {
    loop {
        match recv.next::<O::Item>().await {
            Ok(Some(item)) => {
                if !out.item(each(item)).await {
                    return None;
                }
            }
            Ok(None) => return Some(Ok(())),
            Err(e) => return Some(Err(call_error(e))),
        }
    }
}

/// Tells the host the operator stopped reading.
fn stop(recv: &mut HostRecv) {
    e2e_channels::stop(recv, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::operation::Operation;

    #[test]
    fn both_streaming_calls_are_typed_as_their_operations() {
        let clone = StreamCall::GitClone(proto::git::GitClone {
            url: "https://example.com/a.git".into(),
            dir: "a".into(),
        });
        assert_eq!(clone.op(), <op::GitClone as Operation>::OP);
        let apply = StreamCall::TemplateApply(proto::template::TemplateApply {
            name: "team".into(),
            version: None,
            resolved: None,
        });
        assert_eq!(apply.op(), <op::TemplateApply as Operation>::OP);
    }
}
