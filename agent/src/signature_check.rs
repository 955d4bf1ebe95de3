//! Header signatures verified beside the work they allow (a MAC-checked header on an end-to-end
//! channel: `proto::trust::header_mac`).
//!
//! Only the operator's own device holds the channel key, and the MAC covers the signature, so a
//! signature that fails here was sent by that device: the caller drops the work if it is still
//! running (the stream ends without its fin record, which the operator sees as an error),
//! forgets the channel and logs it (`ops::gate`).
//!
//! **When.** [`IdleVerifier::beside`] gives the work the core first: the check starts when the
//! work ends (after its answer, for the short operations most streams carry) or [`GRACE`] after
//! it started, whichever comes first, so long work (a prompt, a watch) is checked while it runs.
//!
//! **Where.** On one thread of the lowest scheduling class, `SCHED_IDLE`. The check is not
//! needed before the answer, so it should take a core only when nothing on a stream's path
//! wants one: a normal thread waking on a core that runs an idle-class thread takes the core at
//! once, and the scheduler counts such a core as free when it places a woken thread. At the
//! normal class (as on tokio's blocking pool) the check competes for the cores with the answer
//! it runs beside (docs/performance.md §13e measures both).
//!
//! The backlog is bounded: at most [`QUEUE`] checks wait for the idle thread. When the host is
//! so busy that the idle thread falls that far behind, or the class could not be set, further
//! checks run on tokio's blocking pool at the normal class, so no check waits unboundedly and
//! none is skipped.

use proto::trust::{PendingSignature, TrustError};
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::task::{Context, Poll};
use std::time::Duration;
use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Most checks waiting for the idle thread before checks go to the blocking pool.
pub const QUEUE: usize = 32;

/// How long work runs before its signature check starts anyway.
pub const GRACE: Duration = Duration::from_millis(2);

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
    /// The idle thread's queue; `None` where the idle class could not be had.
    jobs: Option<SyncSender<Job>>,
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
                Self { jobs: Some(jobs) }
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "no idle-class thread for signature checks: they run on the blocking pool at \
                     the normal class (an answer and its check then share the cores)"
                );
                Self { jobs: None }
            }
        }
    }

    /// Whether checks run at the idle class (false: all go to the blocking pool).
    pub fn is_idle_class(&self) -> bool {
        self.jobs.is_some()
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

    /// Runs `work` with `signature` checked beside it (see the module docs for when the check
    /// starts); stops the work if the signature fails first. Call from within a tokio runtime.
    pub async fn beside<T>(
        &self,
        signature: PendingSignature,
        work: impl Future<Output = T>,
    ) -> Outcome<'_, T> {
        tokio::pin!(work);
        let grace = tokio::time::sleep(GRACE);
        tokio::pin!(grace);
        tokio::select! {
            biased;
            out = &mut work => return Outcome::WorkDone(out, Unchecked(Owed::NotStarted(self, signature))),
            () = &mut grace => {}
        }
        let mut check = self.check(signature);
        tokio::select! {
            out = &mut work => Outcome::WorkDone(out, Unchecked(Owed::Running(check))),
            verdict = &mut check => match verdict {
                Ok(()) => Outcome::Verified(work.await),
                Err(e) => Outcome::Failed(e),
            },
        }
    }

    /// A verifier whose thread never takes a job (tests: a full queue).
    #[cfg(test)]
    fn stalled() -> (Self, Receiver<Job>) {
        let (jobs, queue) = sync_channel(QUEUE);
        (Self { jobs: Some(jobs) }, queue)
    }
}

/// How work and the check of its signature ended ([`IdleVerifier::beside`]).
#[derive(Debug)]
pub enum Outcome<'a, T> {
    /// The signature verified, then the work ended with this.
    Verified(T),
    /// The work ended with this; its check is still owed (answer first, then await
    /// [`Unchecked::verdict`]).
    WorkDone(T, Unchecked<'a>),
    /// The signature failed before the work ended; the work was dropped unfinished.
    Failed(TrustError),
}

/// The check owed for work that has ended: not started yet, or running.
#[derive(Debug)]
pub struct Unchecked<'a>(Owed<'a>);

#[derive(Debug)]
enum Owed<'a> {
    NotStarted(&'a IdleVerifier, PendingSignature),
    Running(SignatureCheck),
}

impl Unchecked<'_> {
    /// Starts the check if it has not started, and waits for its verdict.
    ///
    /// # Errors
    /// The signature's failure, or a check that did not finish.
    pub async fn verdict(self) -> Verdict {
        match self.0 {
            Owed::NotStarted(verifier, signature) => verifier.check(signature).await,
            Owed::Running(check) => check.await,
        }
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
    #[cfg(test)]
    fn is_idle(&self) -> bool {
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

/// A MAC-checked header's pending signature, good or with one bit flipped (tests).
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The scheduling policy of this process's thread called `name`: field 41 of its `stat`
    /// (5 is `SCHED_IDLE`).
    fn policy_of_thread_named(name: &str) -> Option<u32> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == name {
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                // After the ')' closing the name, field 3 (state) is the first.
                let rest = stat.rsplit_once(')')?.1;
                return rest.split_whitespace().nth(41 - 3)?.parse().ok();
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
        let good = verifier.check(test_signature(false));
        let bad = verifier.check(test_signature(true));
        assert!(good.is_idle() && bad.is_idle());
        assert!(good.await.is_ok());
        assert!(matches!(bad.await, Err(TrustError::BadSignature { .. })));
    }

    #[tokio::test]
    async fn the_thread_runs_in_the_idle_class() {
        let verifier = IdleVerifier::start();
        assert!(verifier.check(test_signature(false)).await.is_ok());
        assert_eq!(policy_of_thread_named(THREAD_NAME), Some(5), "SCHED_IDLE");
    }

    #[tokio::test]
    async fn a_full_queue_sends_checks_to_the_blocking_pool_and_they_still_verify() {
        let (verifier, _queue) = IdleVerifier::stalled();
        let waiting: Vec<_> = (0..QUEUE)
            .map(|_| verifier.check(test_signature(false)))
            .collect();
        assert!(waiting.iter().all(SignatureCheck::is_idle));
        let overflow_good = verifier.check(test_signature(false));
        let overflow_bad = verifier.check(test_signature(true));
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
        let check = verifier.check(test_signature(false));
        drop(queue);
        assert!(
            matches!(check.await, Err(TrustError::Malformed(m)) if m.contains("did not finish"))
        );
        // With the thread gone, checks still run (on the blocking pool).
        let after = verifier.check(test_signature(true));
        assert!(!after.is_idle());
        assert!(matches!(after.await, Err(TrustError::BadSignature { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn short_work_goes_first_and_its_check_starts_when_it_ends() {
        let (verifier, queue) = IdleVerifier::stalled();
        let outcome = verifier.beside(test_signature(true), async { 7 }).await;
        let Outcome::WorkDone(7, unchecked) = outcome else {
            panic!("quick work ends first: {outcome:?}");
        };
        assert!(queue.try_recv().is_err(), "no check before the work ended");
        let verdict = unchecked.verdict();
        tokio::pin!(verdict);
        tokio::select! {
            biased;
            _ = &mut verdict => panic!("the stalled thread took no job"),
            () = tokio::task::yield_now() => {}
        }
        // The owed check was submitted when its verdict was first asked for.
        let job = queue.try_recv().expect("the check is queued now");
        let _ = job.done.send(job.signature.verify());
        assert!(matches!(
            verdict.await,
            Err(TrustError::BadSignature { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn long_work_is_checked_while_it_runs_once_the_grace_is_over() {
        let (verifier, queue) = IdleVerifier::stalled();
        let run = verifier.beside(test_signature(false), std::future::pending::<()>());
        tokio::pin!(run);
        tokio::select! {
            _ = &mut run => panic!("the work never ends"),
            () = tokio::time::sleep(GRACE / 2) => {}
        }
        assert!(queue.try_recv().is_err(), "not checked inside the grace");
        tokio::select! {
            _ = &mut run => panic!("the stalled check never ends"),
            () = tokio::time::sleep(GRACE) => {}
        }
        assert!(queue.try_recv().is_ok(), "checked while the work runs");
    }

    #[tokio::test(start_paused = true)]
    async fn a_bad_signature_drops_work_that_is_still_running() {
        let verifier = IdleVerifier::start();
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        // Work that never ends on its own: only the failed check can stop it.
        let work = async move {
            std::future::pending::<()>().await;
            d.store(true, Ordering::SeqCst);
        };
        let outcome = verifier.beside(test_signature(true), work).await;
        assert!(matches!(
            outcome,
            Outcome::Failed(TrustError::BadSignature { .. })
        ));
        assert!(!done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_good_signature_lets_the_work_finish_and_a_bad_one_is_reported_after_it() {
        let verifier = IdleVerifier::start();
        for (bad, want_ok) in [(false, true), (true, false)] {
            let done = Arc::new(AtomicBool::new(false));
            let d = Arc::clone(&done);
            let outcome = verifier
                .beside(test_signature(bad), async move {
                    d.store(true, Ordering::SeqCst)
                })
                .await;
            assert!(done.load(Ordering::SeqCst));
            let verdict = match outcome {
                Outcome::Verified(()) => Ok(()),
                Outcome::WorkDone((), rest) => rest.verdict().await,
                Outcome::Failed(e) => Err(e),
            };
            assert_eq!(verdict.is_ok(), want_ok, "bad signature: {bad}");
        }
    }

    #[tokio::test]
    async fn without_the_idle_class_every_check_runs_on_the_blocking_pool() {
        let verifier = IdleVerifier { jobs: None };
        assert!(!verifier.is_idle_class());
        let good = verifier.check(test_signature(false));
        let bad = verifier.check(test_signature(true));
        assert!(!good.is_idle() && !bad.is_idle());
        assert!(good.await.is_ok());
        assert!(matches!(bad.await, Err(TrustError::BadSignature { .. })));
    }
}
