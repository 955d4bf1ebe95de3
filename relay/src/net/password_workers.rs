//! The threads that check passwords. A fixed number of them (see `password_slots`), each
//! owning one argon2 memory area that it reuses for every check: at most that many checks run
//! at once, and the relay's memory for them is that many areas, however many logins arrive.
//!
//! Reusing the memory matters as much as bounding the concurrency: when each check allocated
//! and freed its own 19 MiB, the allocator kept the freed areas resident, and a flood of
//! logins grew the relay by 19 MiB per check even with only two running at a time.

use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::Mutex;
use std::sync::{Arc, mpsc};

/// Largest argon2 memory a stored hash may ask for (64 MiB): a hash with more is refused
/// rather than allocated.
const MAX_BLOCKS: usize = 64 * 1024;

/// Work for one worker: gets the worker's memory area.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The password-check threads. Dropping the handle ends them once their queue is empty.
#[derive(Debug)]
pub(crate) struct PasswordWorkers {
    jobs: mpsc::Sender<Job>,
}

/// The workers are gone (their threads ended).
#[derive(Debug, thiserror::Error)]
#[error("the password-check threads have stopped")]
pub(crate) struct WorkersGone;

impl PasswordWorkers {
    /// Starts `threads` workers (at least one).
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("cm-password-{i}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Self { jobs })
    }

    /// Runs `f` on a worker with its memory area, once one is free.
    ///
    /// # Errors
    /// The workers have stopped, or `f` panicked.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, WorkersGone> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = done.send(f(memory));
        });
        self.jobs.send(job).map_err(|_| WorkersGone)?;
        answer.await.map_err(|_| WorkersGone)
    }
}

fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = queue.lock().recv();
        let Ok(job) = job else { return };
        // A panicking check loses its answer (the caller sees `WorkersGone`), not the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
    }
}

/// Whether `password` matches the PHC string `hash`, computed in `memory` (grown to the hash's
/// memory cost once, then reused). Malformed hashes never match.
pub(crate) fn verify_in(memory: &mut Vec<Block>, password: &[u8], hash: &str) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
        .is_err()
    {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(&out).is_ok_and(|computed| &computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;

    fn phc(password: &str) -> String {
        Argon2::default()
            .hash_password(password.as_bytes())
            .unwrap()
            .to_string()
    }

    #[test]
    fn verifies_like_argon2_and_reuses_its_memory() {
        let hash = phc("correct horse");
        let mut memory = Vec::new();
        assert!(verify_in(&mut memory, b"correct horse", &hash));
        let len = memory.len();
        assert_eq!(len, Params::default().block_count());
        assert!(!verify_in(&mut memory, b"wrong", &hash));
        assert!(!verify_in(&mut memory, b"correct horse", "not a hash"));
        assert!(!verify_in(
            &mut memory,
            b"",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ"
        ));
        assert_eq!(memory.len(), len, "the same area every time");
    }

    #[tokio::test]
    async fn runs_jobs_on_the_workers() {
        let workers = PasswordWorkers::start(2).unwrap();
        let hash = phc("pw-123456");
        let ok = workers
            .run(move |m| verify_in(m, b"pw-123456", &hash))
            .await
            .unwrap();
        assert!(ok);
        let panicked = workers.run(|_| -> bool { panic!("boom") }).await;
        assert!(panicked.is_err(), "a panic is an error, not a hang");
        let after = workers.run(|_| 7).await;
        assert_eq!(after.ok(), Some(7), "the workers survive a panicking job");
    }
}
