//! A relay cut from its peers: an nftables table that drops every UDP datagram to or from its
//! peer port on this machine (its relay-to-relay endpoint both listens and dials there), while
//! its operator/agent port and the database stay reachable. The table is deleted on Drop.

use anyhow::{Context, Result};
use std::process::Command;

/// The installed rule; dropped = removed.
pub struct PeerCut {
    table: String,
}

fn nft(args: &[&str]) -> Result<()> {
    let out = Command::new("nft").args(args).output().context("nft")?;
    anyhow::ensure!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Whether this process may install firewall rules (root and `nft` present and working).
fn available() -> bool {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    root && Command::new("nft")
        .args(["list", "tables"])
        .output()
        .is_ok_and(|o| o.status.success())
}

impl PeerCut {
    /// Drops UDP to and from `port` on every interface, or `None` (after a loud message)
    /// when the test cannot change the firewall here.
    pub fn install(port: u16) -> Result<Option<Self>> {
        if !available() {
            eprintln!(
                "\n\n!!!!!!!! SKIPPED: cutting a relay from its peers needs root and a working \
                 `nft` (nftables) !!!!!!!!\n\n"
            );
            return Ok(None);
        }
        let table = format!("cm_fleet_test_{}_{port}", std::process::id());
        nft(&["add", "table", "inet", &table])?;
        let cut = Self { table };
        // On input only: a drop on output would fail the sender's `sendto` (EPERM) instead of
        // losing the datagram as a broken network does.
        nft(&[
            "add",
            "chain",
            "inet",
            &cut.table,
            "input",
            "{ type filter hook input priority 0 ; policy accept ; }",
        ])?;
        for dir in ["dport", "sport"] {
            nft(&[
                "add",
                "rule",
                "inet",
                &cut.table,
                "input",
                "udp",
                dir,
                &port.to_string(),
                "drop",
            ])?;
        }
        Ok(Some(cut))
    }
}

impl Drop for PeerCut {
    fn drop(&mut self) {
        let _ = nft(&["delete", "table", "inet", &self.table]);
    }
}
