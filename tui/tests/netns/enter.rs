//! Runs async code inside a network namespace: a dedicated thread moves itself into the
//! namespace (`setns`; the rest of the test process stays where it is) and runs a
//! current-thread runtime there, so every socket that code opens lives in that namespace.

use anyhow::{Context, Result};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use std::future::Future;
use std::os::fd::AsFd;
use tokio::sync::oneshot;

/// A task running in a namespace until this is dropped (then its runtime stops, ending every
/// connection it holds).
pub struct InNamespace {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts `make()`'s future on a thread inside the namespace whose handle is at `ns_path`
/// (`/run/netns/NAME`). `make` runs in the namespace (bind sockets there) and returns what
/// the caller gets back plus the future to keep running.
pub fn spawn_in<T, F, M>(ns_path: &str, make: M) -> Result<(T, InNamespace)>
where
    T: Send + 'static,
    F: Future<Output = ()> + 'static,
    M: FnOnce() -> Result<(T, F)> + Send + 'static,
{
    let handle = std::fs::File::open(ns_path).with_context(|| format!("open {ns_path}"))?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let started = (|| {
            move_into_link_name_space(handle.as_fd(), Some(LinkNameSpaceType::Network))
                .context("setns into the network namespace")?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (value, task) = {
                let _guard = rt.enter();
                make()?
            };
            Ok::<_, anyhow::Error>((rt, value, task))
        })();
        match started {
            Ok((rt, value, task)) => {
                if ready_tx.send(Ok(value)).is_err() {
                    return;
                }
                rt.block_on(async move {
                    tokio::select! {
                        () = task => {}
                        _ = stop_rx => {}
                    }
                });
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        }
    });
    let value = ready_rx
        .recv()
        .context("the namespace thread ended before it started")??;
    Ok((
        value,
        InNamespace {
            stop: Some(stop_tx),
            thread: Some(thread),
        },
    ))
}

impl Drop for InNamespace {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `make()`'s future to completion on a thread inside the namespace at `ns_path`, and
/// returns its output.
pub fn block_in<T, F, M>(ns_path: &str, make: M) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + 'static,
    M: FnOnce() -> F + Send + 'static,
{
    let handle = std::fs::File::open(ns_path).with_context(|| format!("open {ns_path}"))?;
    std::thread::spawn(move || {
        move_into_link_name_space(handle.as_fd(), Some(LinkNameSpaceType::Network))
            .context("setns into the network namespace")?;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(make())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the namespace thread panicked"))?
}
