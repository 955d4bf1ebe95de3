//! The raw-quinn baseline for the fleet scenario, as its own process (`cm-bench raw-server`):
//! accepts QUIC connections with the relay's TLS and socket settings and just holds them, so
//! its RSS and CPU per connection are what quinn alone costs.

use crate::netutil;
use anyhow::Result;
use std::path::Path;

/// The log line the parent waits for (it carries `local_addr=`).
pub const READY: &str = "raw quinn server listening";

/// Serves until killed.
///
/// # Errors
/// Missing TLS material or socket failures.
pub fn run(state_dir: &Path) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let dir = cm_relay::state::StateDir::new(state_dir);
        let ep = netutil::server_endpoint(&dir)?;
        eprintln!("{READY} local_addr={}", ep.local_addr()?);
        while let Some(incoming) = ep.accept().await {
            tokio::spawn(async move {
                if let Ok(conn) = incoming.await {
                    conn.closed().await;
                }
            });
        }
        Ok(())
    })
}
