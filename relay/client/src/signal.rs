//! The shutdown signal shared by all three binaries: resolves on SIGTERM (systemd stop) or
//! SIGINT (Ctrl-C).

/// Waits for SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
