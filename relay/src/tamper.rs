//! Hooks through which a test plays a compromised relay (issue #20's malicious-relay harness):
//! a relay that rewrites forwarded headers, replays them, forges or withholds trust objects and
//! reads every byte it forwards. The production relay runs [`NoTamper`]; nothing in
//! `relay.toml` or the CLI can install another. A test passes its own to
//! `Relay::spawn_with_tamper` and then checks that the agent refuses what it must.

use proto::ops::ForwardHeader;
use proto::trust::{RevocationList, TrustBundle};

/// What a compromised relay could do at each point where it handles trust (every method's
/// default does nothing).
pub trait Tamper: Send + Sync + std::fmt::Debug + 'static {
    /// Whether this tamper does anything; `false` only for [`NoTamper`], so the honest relay
    /// skips the per-chunk hook of forwarded bytes entirely.
    fn is_active(&self) -> bool {
        true
    }

    /// A header about to be sent to an agent: rewrite the principal, the role or the
    /// operator's header, or swap in one recorded earlier (a replay).
    fn forward_header(&self, fwd: &mut ForwardHeader) {
        let _ = fwd;
    }

    /// Bytes the relay copies on a forwarded stream (`to_agent`: operator → agent).
    fn forwarded_bytes(&self, to_agent: bool, bytes: &[u8]) {
        let _ = (to_agent, bytes);
    }

    /// Bytes about to be forwarded (after [`Self::forwarded_bytes`] saw them): the bytes to pass
    /// on instead, to play a relay that changes what it forwards (`None`: unchanged).
    fn alter_bytes(&self, to_agent: bool, bytes: &[u8]) -> Option<Vec<u8>> {
        let _ = (to_agent, bytes);
        None
    }

    /// Revocation lists about to be pushed to an agent: withhold or replace them.
    fn revocations(&self, lists: Vec<RevocationList>) -> Vec<RevocationList> {
        lists
    }

    /// A `trust_fetch` answer about to be sent: add forged or old certificates.
    fn trust_bundle(&self, bundle: TrustBundle) -> TrustBundle {
        bundle
    }
}

/// The honest relay.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTamper;

impl Tamper for NoTamper {
    fn is_active(&self) -> bool {
        false
    }
}
