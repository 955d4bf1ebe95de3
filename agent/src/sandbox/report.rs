//! What the kernel did to a workspace's OpenCode, for operators: the limits its current (or
//! last) launch reached, appended to the workspace's sandbox line (`cm-tui workspaces`).

use std::collections::BTreeMap;
use std::sync::Mutex;

static LIMITS_REACHED: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

fn notes() -> std::sync::MutexGuard<'static, BTreeMap<String, String>> {
    LIMITS_REACHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records what `workspace`'s launch ran into (`None`: a new launch, nothing yet).
pub fn limits_reached(workspace: &str, note: Option<String>) {
    match note {
        Some(n) => notes().insert(workspace.to_owned(), n),
        None => notes().remove(workspace),
    };
}

/// The sandbox state of `workspace` as operators see it: [`super::info`] and the limits its
/// launch reached.
pub fn info_for(workspace: &str, cfg: &super::SandboxConfig) -> proto::ops::SandboxInfo {
    let mut info = super::info(cfg);
    if let Some(n) = notes().get(workspace) {
        info.detail = format!("{}; {n}", info.detail);
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reached_limit_shows_in_the_workspaces_sandbox_line_until_the_next_launch() {
        let cfg = super::super::SandboxConfig::default();
        let ws = "report-test-ws";
        limits_reached(ws, Some("memory limit 512 MiB reached".into()));
        let i = info_for(ws, &cfg);
        assert!(
            i.detail.ends_with("; memory limit 512 MiB reached"),
            "{i:?}"
        );
        assert!(!info_for("other-ws", &cfg).detail.contains("memory"));
        limits_reached(ws, None);
        assert_eq!(info_for(ws, &cfg), super::super::info(&cfg));
    }
}
