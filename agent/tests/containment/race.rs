//! The time-of-check race: a folder inside the root is swapped for a link to the sentinel and
//! back, as fast as a thread can, while many folder and git operations run on paths through it.
//! None may ever act outside the root.

use super::Fixture;
use proto::header::Op;
use proto::message::Reply;
use proto::wire_error::ErrorCode;
use serde_json::{Value, json};
use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Operations sent while the swapping runs.
const OPS: usize = 400;
/// Operations in flight at once.
const PARALLEL: usize = 8;
/// `stat` calls the swapping thread makes while the folder is real.
const REAL_SPINS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_folder_swapped_for_a_link_mid_operation_never_leads_out() -> anyhow::Result<()> {
    let f = Arc::new(Fixture::new().await?);
    // The swapped folder holds the same names as the sentinel, so every operation below is
    // meaningful in both states.
    let flip = f.root.join("flip");
    let real = f.root.join("flip.real");
    std::fs::create_dir_all(flip.join("empty"))?;
    std::fs::create_dir_all(flip.join("full"))?;
    std::fs::write(flip.join("full/inner.txt"), "inside\n")?;
    std::fs::write(flip.join("secret.txt"), "inside\n")?;

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let flipper = {
        let (stop, swaps, sentinel) = (Arc::clone(&stop), Arc::clone(&swaps), f.sentinel.clone());
        let (flip, real) = (flip.clone(), real.clone());
        std::thread::spawn(move || -> std::io::Result<()> {
            while !stop.load(Ordering::Relaxed) {
                std::fs::rename(&flip, &real)?;
                symlink(&sentinel, &flip)?;
                std::fs::remove_file(&flip)?;
                std::fs::rename(&real, &flip)?;
                swaps.fetch_add(1, Ordering::Relaxed);
                // Stay a real folder for a while (busy, not sleeping), so operations also start
                // in that state and get swapped under them mid-way.
                for _ in 0..REAL_SPINS {
                    let _ = std::fs::symlink_metadata(&flip);
                }
            }
            Ok(())
        })
    };

    let ok = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(AtomicU64::new(0));
    for _ in 0..PARALLEL {
        let (f, ok, refused, next) = (
            Arc::clone(&f),
            Arc::clone(&ok),
            Arc::clone(&refused),
            Arc::clone(&next),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= OPS as u64 {
                    return anyhow::Ok(());
                }
                let (op, body) = match i % 7 {
                    0 => (Op::FsMkdir, json!({ "path": format!("flip/new{i}") })),
                    1 => (Op::FsRmdir, json!({ "path": "flip/empty" })),
                    2 => (Op::FsMkdir, json!({ "path": "flip/empty" })),
                    3 => (
                        Op::FsRename,
                        json!({ "from": "flip/secret.txt", "to": format!("flip/moved{i}") }),
                    ),
                    4 => (
                        Op::FsRename,
                        json!({ "from": "flip/full", "to": format!("taken{i}") }),
                    ),
                    5 => (Op::FsList, json!({ "path": "flip/full" })),
                    _ => (Op::GitAdd, json!({ "paths": ["flip/secret.txt"] })),
                };
                match f.call::<Value>(op, body.clone()).await? {
                    Reply::Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Reply::Error(e) => {
                        // Refused, vanished mid-swap, or already done: never anything else.
                        assert!(
                            matches!(
                                e.code,
                                ErrorCode::Forbidden | ErrorCode::NotFound | ErrorCode::Conflict
                            ),
                            "{} {body}: {e}",
                            op.as_str()
                        );
                        refused.fetch_add(1, Ordering::Relaxed)
                    }
                };
                // Put moved things back so later operations find them again (inside the root).
                for (from, to) in [
                    (format!("flip.real/moved{i}"), "flip.real/secret.txt"),
                    (format!("flip/moved{i}"), "flip/secret.txt"),
                    (format!("taken{i}"), "flip/full"),
                ] {
                    let _ = std::fs::rename(f.root.join(from), f.root.join(to));
                }
            }
        });
    }
    let mut outcome = Ok(());
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.map_err(anyhow::Error::from).and_then(|r| r) {
            outcome = Err(e);
        }
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().expect("flipper thread")?;
    outcome?;
    eprintln!(
        "race: {} swaps, {} operations succeeded inside the root, {} refused or missed",
        swaps.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    assert!(
        swaps.load(Ordering::Relaxed) > 0,
        "the swapping thread never ran"
    );
    f.assert_sentinel_unchanged("after the race");
    // Nothing of the operations landed beside the sentinel either.
    assert!(
        std::fs::read_dir(f.env.tmp.path())?
            .filter_map(Result::ok)
            .all(|e| !e.file_name().to_string_lossy().starts_with("new"))
    );
    Ok(())
}
