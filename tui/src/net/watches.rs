//! Workspace watches on the connection: each on its own stream and task, said to the app as
//! it starts, as its frames come and when it ends.

use super::header;
use crate::call::WatchKey;
use crate::e2e_channels::{self, HostStreams, OpenOptions};
use crate::event::NetEvent;
use proto::ids::ReqId;
use proto::message::Reply;
use proto::op;
use proto::operation::{Operation, Streaming};
use proto::ops::WatchQuery;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One watch to open.
#[derive(Debug)]
pub(super) struct WatchJob {
    pub(super) watch: WatchKey,
    pub(super) after_seq: Option<u64>,
    pub(super) req_id: ReqId,
}

/// Runs one workspace watch until it ends, then says why (unless it was cancelled).
pub(super) async fn watch_task(
    hosts: Arc<HostStreams>,
    job: WatchJob,
    events: mpsc::Sender<NetEvent>,
    cancel: CancellationToken,
) {
    let result = tokio::select! {
        () = cancel.cancelled() => return,
        r = run_watch(&hosts, &job, &events) => r,
    };
    let reason = match result {
        Ok(()) => "the agent ended the event stream".to_owned(),
        Err(reason) => reason,
    };
    let watch = job.watch;
    let _ = events.send(NetEvent::WatchEnded { watch, reason }).await;
}

async fn run_watch(
    hosts: &HostStreams,
    job: &WatchJob,
    events: &mpsc::Sender<NetEvent>,
) -> Result<(), String> {
    type Watch = op::WatchEvents;
    let h = header(Watch::OP, job.req_id, &job.watch.scope());
    let query: <Watch as Operation>::Body = WatchQuery {
        after_seq: job.after_seq,
    };
    // The send half stays open for the life of the watch; dropping it would end the request.
    let e2e_channels::HostStream {
        send: _send,
        mut recv,
    } = hosts
        .open(&h, Some(&query), OpenOptions::FINISH)
        .await
        .map_err(|e| e.to_string())?;
    let first: Reply<<Watch as Operation>::Reply> =
        recv.expect().await.map_err(|e| e.to_string())?;
    let next_seq = first.into_result().map_err(|e| e.message)?;
    let gone = || "the app stopped".to_owned();
    let started = NetEvent::WatchStarted {
        watch: job.watch.clone(),
        next_seq,
    };
    events.send(started).await.map_err(|_| gone())?;
    loop {
        match recv.next::<<Watch as Streaming>::Item>().await {
            Ok(Some(frame)) => {
                let event = NetEvent::WatchFrame {
                    watch: job.watch.clone(),
                    frame,
                };
                events.send(event).await.map_err(|_| gone())?;
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}
