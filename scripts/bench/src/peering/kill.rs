//! The kill switch across relays: an operator connected to relay b, `cm-relay kill --user`
//! run with relay a's configuration (straight into the shared database), and the time from
//! starting that command until relay b has closed the operator's connection (b learns of the
//! revocation from the database's notice, not from a's process).

use super::cluster::Cluster;
use crate::netutil;
use anyhow::{Context, Result, ensure};
use cm_client as client;
use proto::handshake::{LoginMethod, LoginRequest, PeerKind};
use std::path::Path;
use std::time::{Duration, Instant};

/// Longest wait for the close (a hang guard; the goal is 1 s).
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// Kills a fresh operator `name` held by relay 1 with relay 0's CLI; the time until the close.
///
/// # Errors
/// Setup failures, a failed kill, or a connection that stays open.
pub(super) fn once(cluster: &Cluster, bin_dir: &Path, name: &str) -> Result<Duration> {
    // Blocking store and process work stays outside the runtime.
    let invite = cm_relay::cli::user_add(&cluster.dir, name, "operator", "*")?;
    let mut kill = cluster.command(bin_dir, 0, &["kill", "--user", name])?;
    let (b, pin) = (cluster.addr(1), cluster.init.pin.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let cred = client::login(
            &b.to_string(),
            &pin,
            LoginRequest {
                v: proto::PROTOCOL_VERSION,
                user: invite.user.clone(),
                method: LoginMethod::Invite {
                    secret: invite.secret,
                    new_password: None,
                },
                ttl_s: None,
                label: Some("cm-bench".into()),
                device_key: None,
            },
        )
        .await?;
        let ep = netutil::client_endpoint(&pin)?;
        let conn = netutil::connect(&ep, b).await?;
        let session =
            client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?;
        let start = Instant::now();
        let killed = tokio::task::spawn_blocking(move || kill.output());
        tokio::time::timeout(CLOSE_WAIT, session.conn.closed())
            .await
            .context("relay b never closed the killed operator's connection")?;
        let took = start.elapsed();
        let out = killed.await??;
        ensure!(
            out.status.success(),
            "cm-relay kill failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ep.close(0u32.into(), b"done");
        Ok(took)
    })
}
