//! The request streams of one operator connection (`net::conn`), and the streams of one peer
//! relay's connection (`fleet::peer_endpoint`), driven inside the connection's own task rather
//! than one spawned task each. A new stream is polled at once, on the task (and worker thread)
//! that accepted it, so it is read, authorized and forwarded without first waiting for a worker
//! to pick up a new task; afterwards each request is polled only when its own waker fires. On
//! 2 cores this halved the relay's time from accepting a stream to forwarding it and cut its
//! CPU per request by about a quarter (scripts/bench/findings.md).
//!
//! Requests still in flight when the connection's task ends (the operator left, the relay is
//! draining) are handed to the relay's task tracker, so they finish as spawned tasks would
//! have. A request that panics is dropped alone; the connection and its other requests go on.

use futures::future::{CatchUnwind, FutureExt as _, Map};
use futures::stream::{FuturesUnordered, StreamExt as _};
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_util::task::TaskTracker;

/// One request's future.
pub(crate) type Request = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A request whose panic is caught and logged instead of unwinding into the connection task.
type Guarded = Map<CatchUnwind<AssertUnwindSafe<Request>>, fn(std::thread::Result<()>)>;

fn guard(request: Request) -> Guarded {
    AssertUnwindSafe(request)
        .catch_unwind()
        .map(log_panic as fn(std::thread::Result<()>))
}

fn log_panic(outcome: std::thread::Result<()>) {
    if outcome.is_err() {
        tracing::error!("a request stream handler panicked; dropped that stream");
    }
}

/// The set; see the module documentation.
pub(crate) struct InFlight {
    requests: FuturesUnordered<Guarded>,
    tracker: TaskTracker,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("len", &self.requests.len())
            .finish()
    }
}

impl InFlight {
    /// An empty set whose leftovers go to `tracker` when it is dropped.
    pub(crate) fn new(tracker: TaskTracker) -> Self {
        Self {
            requests: FuturesUnordered::new(),
            tracker,
        }
    }

    /// Requests not finished yet.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.requests.len()
    }

    /// Adds a request; the next turn of [`InFlight::run`] polls it first time.
    pub(crate) fn push(&mut self, request: Request) {
        self.requests.push(guard(request));
    }

    /// Drives the requests; never completes (use it as one branch of a `select!`). The owning
    /// task must keep it polled whenever it awaits anything else, or the requests stall.
    pub(crate) fn run(&mut self) -> impl Future<Output = Infallible> + '_ {
        std::future::poll_fn(|cx| self.poll_run(cx))
    }

    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<Infallible> {
        // `Ready(None)` (empty) is fine to see again: a pushed request is polled on the next
        // turn, which the owning task's loop makes after every push.
        while let Poll::Ready(Some(())) = self.requests.poll_next_unpin(cx) {}
        Poll::Pending
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return; // the runtime is going away: so are its tasks
        };
        for request in std::mem::take(&mut self.requests) {
            self.tracker.spawn_on(request, &handle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::sync::oneshot;

    /// Drives `set` until `until` resolves (bounded, so a bug fails instead of hanging).
    async fn drive<T>(set: &mut InFlight, until: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(30), async {
            tokio::select! {
                never = set.run() => match never {},
                out = until => out,
            }
        })
        .await
        .expect("the request set made no progress")
    }

    #[tokio::test]
    async fn a_new_request_runs_on_the_next_turn_and_others_when_woken() {
        let mut set = InFlight::new(TaskTracker::new());
        let polls = Arc::new(AtomicUsize::new(0));
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let p = Arc::clone(&polls);
        set.push(Box::pin(async move {
            p.fetch_add(1, Ordering::SeqCst);
            let _ = go_rx.await;
            let _ = done_tx.send(());
        }));
        let (quick_tx, quick_rx) = oneshot::channel::<()>();
        set.push(Box::pin(async move {
            let _ = quick_tx.send(());
        }));
        drive(&mut set, quick_rx).await.unwrap();
        assert_eq!(
            set.len(),
            1,
            "the quick request is done, the waiting one is not"
        );
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        go_tx.send(()).unwrap();
        drive(&mut set, done_rx).await.unwrap();
        assert_eq!(set.len(), 0);
        // The set takes new requests after it ran empty.
        let (tx, rx) = oneshot::channel::<()>();
        set.push(Box::pin(async move {
            let _ = tx.send(());
        }));
        drive(&mut set, rx).await.unwrap();
        assert_eq!(set.len(), 0);
    }

    #[tokio::test]
    async fn many_requests_waiting_on_each_other_all_finish() {
        let mut set = InFlight::new(TaskTracker::new());
        let (first_tx, mut rx) = oneshot::channel::<u32>();
        // A chain: each request waits for the previous one's value and passes it on.
        for _ in 0..200 {
            let (tx, next_rx) = oneshot::channel::<u32>();
            set.push(Box::pin(async move {
                if let Ok(v) = rx.await {
                    let _ = tx.send(v + 1);
                }
            }));
            rx = next_rx;
        }
        first_tx.send(0).unwrap();
        assert_eq!(drive(&mut set, rx).await.unwrap(), 200);
        assert_eq!(set.len(), 0);
    }

    #[tokio::test]
    async fn a_panicking_request_is_dropped_alone() {
        let mut set = InFlight::new(TaskTracker::new());
        let (go_tx, go_rx) = oneshot::channel::<()>();
        set.push(Box::pin(async move {
            let _ = go_rx.await;
            panic!("handler bug");
        }));
        let (tx, rx) = oneshot::channel::<()>();
        let (later_tx, later_rx) = oneshot::channel::<()>();
        set.push(Box::pin(async move {
            let _ = later_rx.await;
            let _ = tx.send(());
        }));
        go_tx.send(()).unwrap();
        later_tx.send(()).unwrap();
        drive(&mut set, rx).await.unwrap();
        assert_eq!(set.len(), 0);
    }

    #[tokio::test]
    async fn requests_left_when_the_set_is_dropped_finish_on_the_tracker() {
        let tracker = TaskTracker::new();
        let mut set = InFlight::new(tracker.clone());
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        set.push(Box::pin(async move {
            let _ = go_rx.await;
            let _ = done_tx.send(());
        }));
        drive(&mut set, tokio::task::yield_now()).await;
        assert_eq!(set.len(), 1);
        drop(set);
        assert_eq!(tracker.len(), 1, "handed to the tracker");
        go_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), done_rx)
            .await
            .expect("the handed-over request never finished")
            .unwrap();
        tracker.close();
        tokio::time::timeout(Duration::from_secs(30), tracker.wait())
            .await
            .expect("the tracker never drained");
    }
}
