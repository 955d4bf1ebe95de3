//! Connections open now, per forward (one credential forwarding one port) and on the host,
//! bounded by the `[forward]` limits. A [`Slot`] is held for a connection's life.

use super::policy::{ForwardPolicy, Refusal};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Default)]
struct Counts {
    host: u32,
    per_forward: BTreeMap<(String, u16), u32>,
}

/// The live counts.
#[derive(Debug, Default, Clone)]
pub struct Connections {
    counts: Arc<Mutex<Counts>>,
}

/// One open connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    key: (String, u16),
}

impl Connections {
    /// Takes a place for a connection of credential `cred` to `port`.
    ///
    /// # Errors
    /// [`Refusal::Busy`] naming the limit reached.
    pub fn take(&self, policy: &ForwardPolicy, cred: &str, port: u16) -> Result<Slot, Refusal> {
        let mut c = self.counts.lock();
        if c.host >= policy.max_connections_per_host {
            return Err(Refusal::Busy {
                open: c.host,
                max: policy.max_connections_per_host,
                key: "max_connections_per_host",
                scope: "on this host",
            });
        }
        let key = (cred.to_owned(), port);
        let mine = c.per_forward.get(&key).copied().unwrap_or(0);
        if mine >= policy.max_connections {
            return Err(Refusal::Busy {
                open: mine,
                max: policy.max_connections,
                key: "max_connections",
                scope: "through this forward",
            });
        }
        c.host += 1;
        c.per_forward.insert(key.clone(), mine + 1);
        Ok(Slot {
            counts: Arc::clone(&self.counts),
            key,
        })
    }

    /// Connections open on the host now.
    pub fn open(&self) -> u32 {
        self.counts.lock().host
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock();
        c.host = c.host.saturating_sub(1);
        if let Some(n) = c.per_forward.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_forward.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_bounded_per_forward_and_per_host_and_freed_on_drop() {
        let policy = ForwardPolicy {
            max_connections: 2,
            max_connections_per_host: 3,
            ..ForwardPolicy::default()
        };
        let c = Connections::default();
        let a1 = c.take(&policy, "cred_a", 8000).unwrap();
        let _a2 = c.take(&policy, "cred_a", 8000).unwrap();
        let e = c.take(&policy, "cred_a", 8000).unwrap_err();
        assert!(
            e.to_string().contains("[forward] max_connections is 2"),
            "{e}"
        );
        // Another port is another forward.
        let _b = c.take(&policy, "cred_a", 8001).unwrap();
        let e = c.take(&policy, "cred_b", 8000).unwrap_err();
        assert!(
            e.to_string().contains("max_connections_per_host is 3"),
            "{e}"
        );
        drop(a1);
        assert_eq!(c.open(), 2);
        c.take(&policy, "cred_a", 8000).unwrap();
    }
}
