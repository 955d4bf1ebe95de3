//! Local actions an agent reports: what the host's own user did at the desk, outside every
//! operation the relay carried. Today one: `cm-agent attach` opened OpenCode's own TUI on a
//! workspace (`Control::LocalAttach`). The relay cannot check such a claim (it never passed
//! through it); it records it in the audit trail as said by the authenticated host (actor
//! `local@HOST`, op `local_attach`), bounded per connection so an agent cannot flood the trail.

use super::Shared;
use crate::audit_event::Audit;
use proto::ids::HostId;

/// Most local-action rows one agent connection writes per minute; the rest are counted and
/// logged.
pub(crate) const ROWS_PER_MINUTE: u32 = 30;
const MINUTE_MS: u64 = 60_000;
/// A notice older than this says how late it came (it waited for a link to a relay).
const LATE_MS: u64 = 10_000;

/// One connection's budget of local-action rows (sans-IO: time is passed in).
#[derive(Debug, Default)]
pub(crate) struct LocalActions {
    window_start_ms: u64,
    in_window: u32,
}

impl LocalActions {
    /// Whether one more row may be written at `now_ms`.
    pub(crate) fn admit(&mut self, now_ms: u64) -> bool {
        if now_ms.saturating_sub(self.window_start_ms) >= MINUTE_MS {
            self.window_start_ms = now_ms;
            self.in_window = 0;
        }
        if self.in_window >= ROWS_PER_MINUTE {
            return false;
        }
        self.in_window += 1;
        true
    }
}

/// The audit row of an attach to `workspace` on `host` that happened at `at_ms`, reported at
/// `now_ms`; `None` for a workspace name no agent could have (logged, not recorded).
pub(crate) fn attach_row(host: &HostId, workspace: &str, at_ms: u64, now_ms: u64) -> Option<Audit> {
    if !proto::ids::is_valid_name(workspace) {
        return None;
    }
    let late = now_ms.saturating_sub(at_ms);
    let when = if late > LATE_MS {
        format!(" ({} s before the relay heard of it)", late / 1000)
    } else {
        String::new()
    };
    Some(Audit::Change {
        actor: format!("local@{host}"),
        op: "local_attach",
        summary: format!(
            "workspace {workspace}: OpenCode's TUI attached at the desk (cm-agent attach){when}"
        ),
        host: Some(host.to_string()),
    })
}

/// Records `Control::LocalAttach` from `host`'s agent.
pub(crate) fn attached(
    shared: &Shared,
    budget: &mut LocalActions,
    host: &HostId,
    workspace: &str,
    at_ms: u64,
) {
    let now = crate::time::now_ms();
    if !budget.admit(now) {
        tracing::warn!(%host, "local action not audited: more than {ROWS_PER_MINUTE} a minute from this agent");
        return;
    }
    match attach_row(host, workspace, at_ms, now) {
        Some(row) => shared.audit_unwaited(row),
        None => tracing::warn!(%host, "ignoring a local attach with a malformed workspace name"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_cannot_flood_the_audit_trail_with_local_actions() {
        let mut budget = LocalActions::default();
        let t = 1_000_000;
        let admitted = (0..100).filter(|_| budget.admit(t)).count();
        assert_eq!(admitted, ROWS_PER_MINUTE as usize);
        assert!(!budget.admit(t + MINUTE_MS - 1));
        assert!(budget.admit(t + MINUTE_MS));
    }

    #[test]
    fn the_row_names_host_and_workspace_and_a_late_notice_says_so() {
        let host = HostId::from("box");
        let row = attach_row(&host, "demo", 1_000, 2_000).unwrap().row();
        assert_eq!(
            (row.actor.as_str(), row.op.as_str(), row.host.as_deref()),
            ("local@box", "local_attach", Some("box"))
        );
        let target = row.target.unwrap();
        assert!(target.starts_with("workspace demo:"), "{target}");
        assert!(!target.contains("heard"), "{target}");
        let late = attach_row(&host, "demo", 0, 95_000).unwrap().row();
        assert!(
            late.target
                .unwrap()
                .contains("95 s before the relay heard of it"),
            "late notice"
        );
        assert!(attach_row(&host, "../etc\npasswd", 0, 0).is_none());
    }
}
