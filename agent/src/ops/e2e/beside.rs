//! A stream whose header its channel's MAC authenticated (`proto::trust::header_mac`) starts its
//! work at once; the header's Ed25519 signature is verified beside it, at the idle scheduling
//! class ([`crate::signature_check`]).
//!
//! Only the operator's own device holds the channel key, and the MAC covers the signature, so a
//! signature that fails here was sent by that device: the work is dropped if it is still running
//! (the stream ends without its fin record, which the operator sees as an error), the channel is
//! forgotten (its next stream gets `e2e_channel_unknown` and must open a new one with a verified
//! `e2e_open`), and the host logs it on `cm_agent::audit`.

use crate::signature_check::SignatureCheck;
use proto::trust::TrustError;
use std::future::Future;

/// The signature check running beside a stream's work.
#[derive(Debug)]
pub(in crate::ops) struct Beside(SignatureCheck);

/// How the work and the check ended.
#[derive(Debug)]
pub(in crate::ops) enum Outcome {
    /// Both ended well.
    Verified,
    /// The work ended first; the check is still running.
    WorkDone(Beside),
    /// The signature failed before the work ended; the work was dropped unfinished.
    Failed(TrustError),
}

impl Beside {
    /// Beside `check` (started with `HostTrust::verify_beside`).
    pub(in crate::ops) fn start(check: SignatureCheck) -> Self {
        Self(check)
    }

    /// Runs `work` to its end unless the signature fails first.
    pub(in crate::ops) async fn run(mut self, work: impl Future<Output = ()>) -> Outcome {
        tokio::pin!(work);
        tokio::select! {
            () = &mut work => Outcome::WorkDone(self),
            verdict = &mut self.0 => match verdict {
                Ok(()) => {
                    work.await;
                    Outcome::Verified
                }
                Err(e) => Outcome::Failed(e),
            },
        }
    }

    /// The check's verdict.
    ///
    /// # Errors
    /// The signature's failure.
    pub(in crate::ops) async fn verdict(self) -> Result<(), TrustError> {
        self.0.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature_check::{IdleVerifier, test_signature};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn pending(bad_signature: bool) -> SignatureCheck {
        IdleVerifier::start().check(test_signature(bad_signature))
    }

    #[tokio::test]
    async fn good_signature_lets_the_work_finish() {
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let outcome = Beside::start(pending(false))
            .run(async move { d.store(true, Ordering::SeqCst) })
            .await;
        assert!(done.load(Ordering::SeqCst));
        match outcome {
            Outcome::Verified => {}
            Outcome::WorkDone(rest) => assert_eq!(rest.verdict().await, Ok(())),
            Outcome::Failed(e) => panic!("a good signature failed: {e}"),
        }
    }

    #[tokio::test]
    async fn bad_signature_drops_work_that_is_still_running() {
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        // Work that never ends on its own: only the failed check can stop it.
        let work = async move {
            std::future::pending::<()>().await;
            d.store(true, Ordering::SeqCst);
        };
        let outcome = Beside::start(pending(true)).run(work).await;
        assert!(matches!(
            outcome,
            Outcome::Failed(TrustError::BadSignature { .. })
        ));
        assert!(!done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn bad_signature_after_quick_work_is_still_reported() {
        let outcome = Beside::start(pending(true)).run(async {}).await;
        let verdict = match outcome {
            Outcome::WorkDone(rest) => rest.verdict().await,
            Outcome::Failed(e) => Err(e),
            Outcome::Verified => Ok(()),
        };
        assert!(matches!(verdict, Err(TrustError::BadSignature { .. })));
    }
}
