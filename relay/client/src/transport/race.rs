//! The happy-eyeballs race between QUIC and TCP to one relay address, as a decision over two
//! injected dialers: no sockets here, so tests drive it with fakes under paused time.
//!
//! QUIC starts first; TCP starts when QUIC has not completed its pinned handshake after the
//! delay (at once when QUIC fails, or when TCP won last time on this network); the first to
//! complete wins and the other is dropped (a dropped dial closes its socket). A pin mismatch
//! on either path ends the race at once: that relay is not ours, or someone is in the way.

use super::{Transport, TransportMode};
use crate::LinkError;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// When each path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Whether QUIC is tried (it always starts at once).
    pub(crate) quic: bool,
    /// When TCP starts, if it is tried at all.
    pub(crate) tcp_after: Option<Duration>,
}

/// The plan for `mode`: QUIC first, TCP after `tcp_delay` — at once when TCP won last time on
/// this network (`tcp_won_here`).
pub(crate) fn plan(mode: TransportMode, tcp_delay: Duration, tcp_won_here: bool) -> Plan {
    match mode {
        TransportMode::Quic => Plan {
            quic: true,
            tcp_after: None,
        },
        TransportMode::Tcp => Plan {
            quic: false,
            tcp_after: Some(Duration::ZERO),
        },
        TransportMode::Auto => Plan {
            quic: true,
            tcp_after: Some(if tcp_won_here {
                Duration::ZERO
            } else {
                tcp_delay
            }),
        },
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Awaits `f` if there is one; never resolves otherwise (a disabled `select!` arm).
async fn maybe<T>(f: &mut Option<Boxed<'_, T>>) -> T {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Runs the race of `plan`: `quic` is the QUIC dial, `tcp` starts the TCP dial (which says
/// whether it went through a proxy). `addr` names the relay address in the error when both
/// fail.
///
/// # Errors
/// A pin mismatch from either path at once; else, when every path tried failed, the one
/// failure or both joined.
pub(crate) async fn race<'a, T, Q, S, F>(
    addr: &str,
    plan: Plan,
    quic: Q,
    tcp: S,
) -> Result<(T, Transport), LinkError>
where
    T: Send + 'a,
    Q: Future<Output = Result<T, LinkError>> + Send + 'a,
    S: FnOnce() -> F,
    F: Future<Output = Result<(T, Transport), LinkError>> + Send + 'a,
{
    let mut quic: Option<Boxed<'a, _>> = if plan.quic {
        Some(Box::pin(quic))
    } else {
        None
    };
    let mut start_tcp = plan.tcp_after.map(|_| tcp);
    let mut tcp: Option<Boxed<'a, _>> = None;
    let delay = tokio::time::sleep(plan.tcp_after.unwrap_or(Duration::ZERO));
    tokio::pin!(delay);
    let (mut quic_failed, mut tcp_failed) = (None, None);
    loop {
        // TCP starts when its time has come, or at once when QUIC is out of the race.
        let tcp_due = plan.tcp_after == Some(Duration::ZERO) || quic.is_none();
        if tcp_due && let Some(start) = start_tcp.take() {
            tcp = Some(Box::pin(start()));
        }
        if quic.is_none() && tcp.is_none() {
            return Err(joined(addr, quic_failed, tcp_failed));
        }
        tokio::select! {
            r = maybe(&mut quic) => match r {
                Ok(t) => return Ok((t, Transport::Quic)),
                Err(e @ LinkError::PinMismatch { .. }) => return Err(e),
                Err(e) => {
                    quic = None;
                    quic_failed = Some(e);
                }
            },
            r = maybe(&mut tcp) => match r {
                Ok(won) => return Ok(won),
                Err(e @ LinkError::PinMismatch { .. }) => return Err(e),
                Err(e) => {
                    tcp = None;
                    tcp_failed = Some(e);
                }
            },
            () = &mut delay, if start_tcp.is_some() => {
                if let Some(start) = start_tcp.take() {
                    tcp = Some(Box::pin(start()));
                }
            }
        }
    }
}

fn joined(addr: &str, quic: Option<LinkError>, tcp: Option<LinkError>) -> LinkError {
    match (quic, tcp) {
        (Some(q), Some(t)) => LinkError::Connect {
            addr: addr.to_owned(),
            reason: format!("over QUIC: {}; over TCP: {}", reason_of(&q), reason_of(&t)),
        },
        (Some(e), None) | (None, Some(e)) => e,
        (None, None) => LinkError::Connect {
            addr: addr.to_owned(),
            reason: "no transport to try".into(),
        },
    }
}

/// The reason alone of a connect failure (the address is said once, outside).
fn reason_of(e: &LinkError) -> String {
    match e {
        LinkError::Connect { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const DELAY: Duration = Duration::from_millis(250);

    fn refused(what: &str) -> LinkError {
        LinkError::Connect {
            addr: "relay".into(),
            reason: what.into(),
        }
    }

    fn mismatch() -> LinkError {
        LinkError::PinMismatch {
            expected: "blake3:aa".into(),
            presented: "blake3:bb".into(),
        }
    }

    /// A dial that answers `result` after `after`, or never (`None`).
    async fn fake<T>(
        after: Option<Duration>,
        result: Result<T, LinkError>,
    ) -> Result<T, LinkError> {
        match after {
            Some(d) => {
                tokio::time::sleep(d).await;
                result
            }
            None => std::future::pending().await,
        }
    }

    /// A TCP starter that records whether it was started.
    fn tcp_dial(
        started: &Arc<AtomicBool>,
        after: Option<Duration>,
        result: Result<&'static str, LinkError>,
    ) -> impl FnOnce() -> Boxed<'static, Result<(&'static str, Transport), LinkError>> {
        let started = Arc::clone(started);
        move || {
            started.store(true, Ordering::SeqCst);
            Box::pin(async move { fake(after, result.map(|t| (t, Transport::Tcp))).await })
        }
    }

    fn auto(tcp_won_here: bool) -> Plan {
        plan(TransportMode::Auto, DELAY, tcp_won_here)
    }

    #[tokio::test(start_paused = true)]
    async fn quic_answering_before_the_delay_wins_and_tcp_never_starts() {
        let started = Arc::new(AtomicBool::new(false));
        let quic = fake(Some(Duration::from_millis(20)), Ok("quic"));
        let tcp = tcp_dial(&started, Some(Duration::ZERO), Ok("tcp"));
        let won = race("relay", auto(false), quic, tcp).await.unwrap();
        assert_eq!(won, ("quic", Transport::Quic));
        assert!(
            !started.load(Ordering::SeqCst),
            "TCP started although QUIC answered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn quic_still_handshaking_after_the_delay_loses_to_tcp() {
        let started = Arc::new(AtomicBool::new(false));
        let quic = fake(None, Ok("quic"));
        let tcp = tcp_dial(&started, Some(Duration::from_millis(30)), Ok("tcp"));
        let won = race("relay", auto(false), quic, tcp).await.unwrap();
        assert_eq!(won, ("tcp", Transport::Tcp));
    }

    #[tokio::test(start_paused = true)]
    async fn quic_answering_after_tcp_started_still_wins_if_first() {
        let started = Arc::new(AtomicBool::new(false));
        let quic = fake(Some(DELAY + Duration::from_millis(10)), Ok("quic"));
        let tcp = tcp_dial(&started, Some(Duration::from_millis(100)), Ok("tcp"));
        let won = race("relay", auto(false), quic, tcp).await.unwrap();
        assert_eq!(won, ("quic", Transport::Quic));
        assert!(started.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quic_failure_starts_tcp_without_waiting_for_the_delay() {
        let started = Arc::new(AtomicBool::new(false));
        let quic = fake(Some(Duration::ZERO), Err::<&str, _>(refused("udp dropped")));
        let tcp = tcp_dial(&started, Some(Duration::ZERO), Ok("tcp"));
        let before = tokio::time::Instant::now();
        let won = race("relay", auto(false), quic, tcp).await.unwrap();
        assert_eq!(won, ("tcp", Transport::Tcp));
        assert!(before.elapsed() < DELAY, "TCP waited for the delay");
    }

    #[tokio::test(start_paused = true)]
    async fn tcp_that_won_here_last_time_starts_at_once() {
        assert_eq!(auto(true).tcp_after, Some(Duration::ZERO));
        let started = Arc::new(AtomicBool::new(false));
        let quic = fake(None, Ok("quic"));
        let tcp = tcp_dial(&started, Some(Duration::ZERO), Ok("tcp"));
        let before = tokio::time::Instant::now();
        let won = race("relay", auto(true), quic, tcp).await.unwrap();
        assert_eq!(won, ("tcp", Transport::Tcp));
        assert!(before.elapsed() < DELAY);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pin_mismatch_over_quic_stops_the_race_before_tcp() {
        let started = Arc::new(AtomicBool::new(false));
        let quic = fake(Some(Duration::from_millis(5)), Err::<&str, _>(mismatch()));
        let tcp = tcp_dial(&started, Some(Duration::ZERO), Ok("tcp"));
        let err = race("relay", auto(false), quic, tcp).await.unwrap_err();
        assert!(matches!(err, LinkError::PinMismatch { .. }), "{err}");
        assert!(
            !started.load(Ordering::SeqCst),
            "TCP was tried after a pin mismatch"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pin_mismatch_over_tcp_stops_the_race_although_quic_might_answer() {
        let started = Arc::new(AtomicBool::new(false));
        let quic = fake(Some(Duration::from_secs(2)), Ok("quic"));
        let tcp = tcp_dial(&started, Some(Duration::ZERO), Err(mismatch()));
        let err = race("relay", auto(false), quic, tcp).await.unwrap_err();
        assert!(matches!(err, LinkError::PinMismatch { .. }), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn quic_mode_never_tries_tcp() {
        let started = Arc::new(AtomicBool::new(false));
        let quic = fake(
            Some(Duration::from_secs(3)),
            Err::<&str, _>(refused("timed out")),
        );
        let tcp = tcp_dial(&started, Some(Duration::ZERO), Ok("tcp"));
        let p = plan(TransportMode::Quic, DELAY, true);
        let err = race("relay", p, quic, tcp).await.unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(!started.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn tcp_mode_never_tries_quic() {
        let started = Arc::new(AtomicBool::new(false));
        let quic_tried = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&quic_tried);
        let quic = async move {
            flag.store(true, Ordering::SeqCst);
            Ok("quic")
        };
        let tcp = tcp_dial(&started, Some(Duration::from_secs(1)), Ok("tcp"));
        let p = plan(TransportMode::Tcp, DELAY, false);
        let won = race("relay", p, quic, tcp).await.unwrap();
        assert_eq!(won, ("tcp", Transport::Tcp));
        assert!(!quic_tried.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn both_failing_names_both_reasons() {
        let started = Arc::new(AtomicBool::new(false));
        let quic = fake(
            Some(Duration::from_secs(1)),
            Err::<&str, _>(refused("udp dropped")),
        );
        let tcp = tcp_dial(&started, Some(Duration::ZERO), Err(refused("tcp refused")));
        let err = race("relay:7443", auto(false), quic, tcp)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("over QUIC") && err.contains("udp dropped") && err.contains("tcp refused"),
            "{err}"
        );
    }
}
