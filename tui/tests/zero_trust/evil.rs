//! The relay's evil twin: a [`Tamper`] whose behaviour the test switches on and off.

use cm_relay::tamper::Tamper;
use proto::header::Op;
use proto::ids::UserId;
use proto::ops::ForwardHeader;
use proto::rbac::Role;
use proto::trust::{Cert, RevocationList, TrustBundle};
use std::sync::Mutex;

/// What the relay does wrong right now.
#[derive(Debug, Default)]
pub struct Plan {
    /// Claim every forwarded request comes from this user with this role.
    pub principal: Option<(UserId, Role)>,
    /// Rewrite the operation of forwarded requests of the first kind into the second.
    pub rewrite_op: Option<(Op, Op)>,
    /// Record the next forwarded header of this operation …
    pub record: Option<Op>,
    /// … and put it in place of every later forwarded header once recorded.
    pub replay: bool,
    /// Push no revocation list to agents.
    pub withhold_revocations: bool,
    /// Certificates to add to every `trust_fetch` answer (forged or old).
    pub extra_certs: Vec<Cert>,
    /// Flip a bit in the first sealed record an operator sends after the header of the next
    /// forwarded request of this operation (its body).
    pub corrupt_body_of: Option<Op>,
}

/// The tamper hooks and what they saw.
#[derive(Debug, Default)]
pub struct EvilRelay {
    pub plan: Mutex<Plan>,
    recorded: Mutex<Option<ForwardHeader>>,
    /// Every byte forwarded, both ways.
    pub seen: Mutex<Vec<u8>>,
    /// How many headers were rewritten or replayed.
    pub tampered: Mutex<u32>,
    /// The next bytes to the agent are to be corrupted (see [`Plan::corrupt_body_of`]).
    corrupt_next: Mutex<bool>,
    /// How many forwarded bodies were corrupted.
    pub corrupted: Mutex<u32>,
}

impl EvilRelay {
    pub fn set(&self, f: impl FnOnce(&mut Plan)) {
        f(&mut self.plan.lock().unwrap());
    }

    pub fn tampered(&self) -> u32 {
        *self.tampered.lock().unwrap()
    }

    /// Whether any forwarded byte sequence contains `needle`.
    pub fn saw(&self, needle: &str) -> bool {
        let seen = self.seen.lock().unwrap();
        seen.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

impl Tamper for EvilRelay {
    fn forward_header(&self, fwd: &mut ForwardHeader) {
        // Headers are metadata the relay may see; record them with the bytes.
        self.seen
            .lock()
            .unwrap()
            .extend_from_slice(&serde_json::to_vec(fwd).unwrap_or_default());
        let plan = self.plan.lock().unwrap();
        let mut recorded = self.recorded.lock().unwrap();
        if plan.record == Some(fwd.header.op) && recorded.is_none() {
            *recorded = Some(fwd.clone());
            return;
        }
        if plan.corrupt_body_of == Some(fwd.header.op) {
            *self.corrupt_next.lock().unwrap() = true;
        }
        let mut tampered = false;
        if plan.replay
            && let Some(old) = recorded.as_ref()
        {
            *fwd = old.clone();
            tampered = true;
        }
        if let Some((user, role)) = &plan.principal {
            fwd.principal = user.clone();
            fwd.role = *role;
            tampered = true;
        }
        if let Some((from, to)) = plan.rewrite_op
            && fwd.header.op == from
        {
            fwd.header.op = to;
            tampered = true;
        }
        if tampered {
            *self.tampered.lock().unwrap() += 1;
        }
    }

    fn forwarded_bytes(&self, _to_agent: bool, bytes: &[u8]) {
        self.seen.lock().unwrap().extend_from_slice(bytes);
    }

    fn alter_bytes(&self, to_agent: bool, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut next = self.corrupt_next.lock().unwrap();
        if !to_agent || !*next || bytes.is_empty() {
            return None;
        }
        *next = false;
        *self.corrupted.lock().unwrap() += 1;
        // Inside the first sealed record (past its 4-byte length), not the fin record that
        // follows it: the host opens the body before it reads any further.
        let mut changed = bytes.to_vec();
        let at = 8.min(changed.len() - 1);
        changed[at] ^= 0x01;
        Some(changed)
    }

    fn revocations(&self, lists: Vec<RevocationList>) -> Vec<RevocationList> {
        if self.plan.lock().unwrap().withhold_revocations {
            Vec::new()
        } else {
            lists
        }
    }

    fn trust_bundle(&self, mut bundle: TrustBundle) -> TrustBundle {
        bundle
            .certs
            .extend(self.plan.lock().unwrap().extra_certs.iter().cloned());
        bundle
    }
}
