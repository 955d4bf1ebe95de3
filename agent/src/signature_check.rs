//! Header signatures verified beside the work they allow (a MAC-checked header on an end-to-end
//! channel: `proto::trust::header_mac`), on one thread of the lowest scheduling class,
//! `SCHED_IDLE`.
//!
//! The verification is not needed before the answer (the channel's MAC already authenticated
//! the header), so it should take a core only when nothing on a stream's path wants one: a
//! normal thread waking on a core that runs an idle-class thread takes the core at once, and the
//! scheduler counts such a core as free when it places a woken thread. At the normal class (as
//! on tokio's blocking pool) the check competes for the cores with the answer it runs beside.
//!
//! The backlog is bounded: at most [`QUEUE`] checks wait for the idle thread. When the host is
//! so busy that the idle thread falls that far behind, or the class could not be set, further
//! checks run on tokio's blocking pool at the normal class, as before, so no check waits
//! unboundedly and none is skipped.

use proto::trust::{PendingSignature, TrustError};
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::task::{Context, Poll};
use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Most checks waiting for the idle thread before checks go to the blocking pool.
pub const QUEUE: usize = 32;

/// The idle thread's name (benches count its CPU as the agent's).
pub const THREAD_NAME: &str = "cm-verify-idle";

type Verdict = Result<(), TrustError>;

struct Job {
    signature: PendingSignature,
    done: oneshot::Sender<Verdict>,
}

/// The idle-class verification thread (see the module docs). Dropping it ends the thread once
/// the checks already queued are done.
#[derive(Debug)]
pub struct IdleVerifier {
    jobs: Option<SyncSender<Job>>,
    idle_class: bool,
}

impl IdleVerifier {
    /// Starts the thread. If it cannot run at the idle class (or cannot start at all), every
    /// check goes to the blocking pool, and this is logged once.
    pub fn start() -> Self {
        let (jobs, queue) = sync_channel(QUEUE);
        let (ready, class) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                let idle = set_thread_priority_and_policy(
                    thread_native_id(),
                    ThreadPriority::Min,
                    ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
                )
                .map_err(|e| format!("{e:?}"));
                let is_idle = idle.is_ok();
                let _ = ready.send(idle);
                if is_idle {
                    serve(&queue);
                }
            });
        let idle = match spawned {
            Ok(_) => class
                .recv()
                .unwrap_or_else(|_| Err("the thread ended at once".into())),
            Err(e) => Err(e.to_string()),
        };
        match idle {
            Ok(()) => {
                tracing::debug!("header signatures on channels are verified at the idle class");
                Self {
                    jobs: Some(jobs),
                    idle_class: true,
                }
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "no idle-class thread for signature checks: they run on the blocking pool at \
                     the normal class (an answer and its check then share the cores)"
                );
                Self {
                    jobs: None,
                    idle_class: false,
                }
            }
        }
    }

    /// Whether checks run at the idle class (false: all go to the blocking pool).
    pub fn is_idle_class(&self) -> bool {
        self.idle_class
    }

    /// Starts verifying `signature`: on the idle thread while fewer than [`QUEUE`] wait for it,
    /// otherwise on the blocking pool. Call from within a tokio runtime.
    pub fn check(&self, signature: PendingSignature) -> SignatureCheck {
        let Some(jobs) = &self.jobs else {
            return SignatureCheck::on_blocking_pool(signature);
        };
        let (done, verdict) = oneshot::channel();
        match jobs.try_send(Job { signature, done }) {
            Ok(()) => SignatureCheck(Check::Idle(verdict)),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                SignatureCheck::on_blocking_pool(job.signature)
            }
        }
    }

    /// A verifier whose thread never takes a job (tests: a full queue).
    #[cfg(test)]
    fn stalled() -> (Self, Receiver<Job>) {
        let (jobs, queue) = sync_channel(QUEUE);
        let me = Self {
            jobs: Some(jobs),
            idle_class: true,
        };
        (me, queue)
    }
}

fn serve(queue: &Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        // The stream may be gone already; its verdict is then not needed.
        let _ = job.done.send(job.signature.verify());
    }
}

/// A running signature check; resolves to its verdict.
#[derive(Debug)]
pub struct SignatureCheck(Check);

#[derive(Debug)]
enum Check {
    Idle(oneshot::Receiver<Verdict>),
    Blocking(JoinHandle<Verdict>),
}

impl SignatureCheck {
    fn on_blocking_pool(signature: PendingSignature) -> Self {
        Self(Check::Blocking(tokio::task::spawn_blocking(move || {
            signature.verify()
        })))
    }

    /// Whether this check runs on the idle thread.
    pub fn is_idle(&self) -> bool {
        matches!(self.0, Check::Idle(_))
    }
}

fn unfinished(e: impl std::fmt::Display) -> TrustError {
    TrustError::Malformed(format!("the signature check did not finish: {e}"))
}

impl Future for SignatureCheck {
    type Output = Verdict;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Verdict> {
        match &mut self.get_mut().0 {
            Check::Idle(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or_else(|e| Err(unfinished(e)))),
            Check::Blocking(handle) => Pin::new(handle)
                .poll(cx)
                .map(|r| r.unwrap_or_else(|e| Err(unfinished(e)))),
        }
    }
}

/// A MAC-checked header's pending signature, good or with one bit flipped (tests here and in
/// `ops::e2e::beside`).
#[cfg(test)]
pub(crate) fn test_signature(bad: bool) -> PendingSignature {
    use proto::header::{Op, StreamHeader};
    use proto::ids::{HostId, ReqId, UserId};
    use proto::trust::DeviceKey;
    use proto::trust::header::{self, SignInput};
    use proto::trust::header_mac::{attach_mac, read_unverified};
    const NOW: u64 = 1_800_000_000_000;
    const MAC_KEY: [u8; 32] = [7; 32];
    let mut h = StreamHeader::new(Op::Prompt, ReqId(1));
    h.host = Some(HostId::from("box"));
    let key = DeviceKey::from_seed([4; 32]).unwrap();
    header::sign(
        &mut h,
        SignInput {
            user: &UserId::from("ana"),
            key: &key,
            nonce: [2; 16],
            now_ms: NOW,
            body: None,
            channel: None,
            template: None,
        },
    )
    .unwrap();
    if bad {
        h.auth.as_mut().unwrap().sig.0[9] ^= 1;
    }
    attach_mac(&mut h, &MAC_KEY).unwrap();
    read_unverified(&h)
        .unwrap()
        .check_mac(&h, &HostId::from("box"), NOW, &MAC_KEY)
        .unwrap()
        .1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(bad_signature: bool) -> PendingSignature {
        test_signature(bad_signature)
    }

    fn policy_of_thread_named(name: &str) -> Option<String> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == name {
                let sched = std::fs::read_to_string(task.path().join("sched")).ok()?;
                return sched
                    .lines()
                    .find(|l| l.starts_with("policy"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned());
            }
        }
        None
    }

    #[tokio::test]
    async fn the_idle_thread_verifies_good_and_refuses_bad_signatures() {
        let verifier = IdleVerifier::start();
        assert!(
            verifier.is_idle_class(),
            "Linux lets any thread take SCHED_IDLE"
        );
        let good = verifier.check(pending(false));
        let bad = verifier.check(pending(true));
        assert!(good.is_idle() && bad.is_idle());
        assert!(good.await.is_ok());
        assert!(matches!(bad.await, Err(TrustError::BadSignature { .. })));
    }

    #[tokio::test]
    async fn the_thread_runs_in_the_idle_class() {
        let verifier = IdleVerifier::start();
        assert!(verifier.check(pending(false)).await.is_ok());
        // SCHED_IDLE is policy 5 in /proc/<pid>/task/<tid>/sched.
        assert_eq!(policy_of_thread_named(THREAD_NAME).as_deref(), Some("5"));
    }

    #[tokio::test]
    async fn a_full_queue_sends_checks_to_the_blocking_pool_and_they_still_verify() {
        let (verifier, _queue) = IdleVerifier::stalled();
        let waiting: Vec<_> = (0..QUEUE).map(|_| verifier.check(pending(false))).collect();
        assert!(waiting.iter().all(SignatureCheck::is_idle));
        let overflow_good = verifier.check(pending(false));
        let overflow_bad = verifier.check(pending(true));
        assert!(!overflow_good.is_idle() && !overflow_bad.is_idle());
        assert!(overflow_good.await.is_ok());
        assert!(matches!(
            overflow_bad.await,
            Err(TrustError::BadSignature { .. })
        ));
    }

    #[tokio::test]
    async fn a_check_the_thread_dropped_reports_that_it_did_not_finish() {
        let (verifier, queue) = IdleVerifier::stalled();
        let check = verifier.check(pending(false));
        drop(queue);
        assert!(
            matches!(check.await, Err(TrustError::Malformed(m)) if m.contains("did not finish"))
        );
        // With the thread gone, checks still run (on the blocking pool).
        let after = verifier.check(pending(true));
        assert!(!after.is_idle());
        assert!(matches!(after.await, Err(TrustError::BadSignature { .. })));
    }
}
