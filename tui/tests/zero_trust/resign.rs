//! The owner's running app keeps its hosts' revocation list fresh: with a host that wants a
//! list younger than 3 s, the host keeps working for as long as the full-screen app runs (in a
//! real terminal: tmux), with no `admin trust refresh` by hand.

use crate::harness::{WAIT, bin};
use crate::world::ZtWorld;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A tmux server of its own running the owner's full-screen `cm-tui`; killed on Drop.
struct App {
    socket: PathBuf,
}

impl App {
    fn start(w: &ZtWorld) -> Result<Self> {
        let socket = w.tmp.path().join("tmux.sock");
        let app = bin("cm-tui")?;
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .env_remove("TMUX")
            .args(["new-session", "-d", "-x", "120", "-y", "35", "-s", "owner"])
            .arg("-e")
            .arg(format!("CM_TUI_STATE_DIR={}", w.owner.state.display()))
            .args(["-e", "CM_SECRET_STORE=file", "-e", "CM_TUI_RESIGN_SECS=1"])
            .arg(format!("exec {}", app.display()))
            .status()?;
        anyhow::ensure!(status.success(), "tmux did not start the app");
        Ok(Self { socket })
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}

/// The sequence number of the owner laptop's own revocation list (at least its signing time).
fn own_list_seq(state: &Path) -> Result<u64> {
    for entry in std::fs::read_dir(state)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("trust-") && name.ends_with(".json") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
            return v["own_list"]["seq"]
                .as_u64()
                .context("no own_list.seq in the trust file");
        }
    }
    bail!("no trust file in {}", state.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_running_app_keeps_its_hosts_revocation_list_fresh() -> Result<()> {
    let w = ZtWorld::start_with("3s").await?;
    let started = cm_client::time::now_ms();
    let _app = App::start(&w)?;
    // Wait until the app has signed a list at a time when the world's own list (signed before
    // `started`) is already too old for the host.
    let deadline = Instant::now() + WAIT;
    while own_list_seq(&w.owner.state)? <= started + 3_000 {
        if Instant::now() > deadline {
            bail!("the running app never re-signed the revocation list");
        }
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
    // Without the app nothing would sign again and the host would refuse for good.
    let listing = w.until_ok(&w.owner, &["workspaces", "box"], false)?;
    assert!(listing.contains("demo"), "{listing}");
    Ok(())
}
