//! Small synchronisation helpers shared by the network code and the store (a neutral module,
//! so the store does not depend on the network code).

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering from poisoning (the data is still consistent for our uses: each
/// critical section is a single insert/check).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
