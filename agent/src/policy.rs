//! The host owner's own limits, applied on every forwarded stream whatever the relay allowed
//! (defence in depth): a local lock (`cm-agent lock`), operations disabled in `[policy]`, and
//! roles raised per operation.
//!
//! The decision ([`decide`]) is pure; [`Policy::check`] adds the one piece of I/O, a `stat` of
//! the lock file in the state directory, so a lock made by the CLI takes effect on the next
//! stream of the running agent without a restart, even with the relay unreachable or
//! compromised. An unreadable lock file counts as locked (fail closed).

use proto::header::Op;
use proto::rbac::{Ownership, Role, required_role};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the agent's state directory.
pub const LOCK_FILE: &str = "lock";

/// The validated `[policy]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Operations this host refuses to everyone.
    pub disabled_ops: HashSet<Op>,
    /// Operations that need at least this role on this host (only raises the relay's table).
    pub min_role: HashMap<Op, Role>,
    /// What relay templates may do here (`templates`, `template_*`).
    pub templates: crate::template_policy::TemplatePolicy,
}

/// Why the host's own policy refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyDenied {
    /// The host owner locked the host (`cm-agent lock`).
    #[error(
        "this host is locked by its owner{}; every remote operation is refused until `cm-agent unlock` is run on the host",
        .reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    )]
    Locked {
        /// What the owner wrote when locking, if anything.
        reason: Option<String>,
    },
    /// The operation is listed in `[policy] disabled_ops`.
    #[error("{} is disabled by this host's configuration ([policy] disabled_ops)", .op.as_str())]
    Disabled {
        /// The operation.
        op: Op,
    },
    /// `[policy] min_role` asks more than the principal's role.
    #[error("{} needs role {needed} on this host ([policy] min_role), you have {have}", .op.as_str())]
    RoleTooLow {
        /// The operation.
        op: Op,
        /// The role the host owner requires.
        needed: Role,
        /// The principal's role.
        have: Role,
    },
}

/// Parses operation wire names; unknown names are returned together as the error.
///
/// # Errors
/// The names that are not operations.
pub fn parse_ops<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<Op>, Vec<String>> {
    let mut ops = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match Op::ALL.into_iter().find(|op| op.as_str() == name) {
            Some(op) => ops.push(op),
            None => unknown.push(name.to_owned()),
        }
    }
    if unknown.is_empty() {
        Ok(ops)
    } else {
        Err(unknown)
    }
}

/// The pure decision: `locked` is the lock state (`Some(reason)` when locked).
///
/// # Errors
/// The first rule that refuses: lock, then disabled operation, then raised role.
pub fn decide(
    config: &PolicyConfig,
    locked: Option<Option<String>>,
    op: Op,
    role: Role,
) -> Result<(), PolicyDenied> {
    if let Some(reason) = locked {
        return Err(PolicyDenied::Locked { reason });
    }
    if config.disabled_ops.contains(&op) {
        return Err(PolicyDenied::Disabled { op });
    }
    if let Some(&needed) = config.min_role.get(&op) {
        // The host may only raise the relay's table, never lower it.
        let needed = required_role(op, Ownership::None).map_or(needed, |base| base.max(needed));
        if role < needed {
            return Err(PolicyDenied::RoleTooLow {
                op,
                needed,
                have: role,
            });
        }
    }
    Ok(())
}

/// The policy of a running agent: the `[policy]` settings plus the lock file.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    config: PolicyConfig,
    lock_path: Option<PathBuf>,
}

impl Policy {
    /// A policy with `config`, locked whenever `<state_dir>/lock` exists.
    pub fn new(config: PolicyConfig, state_dir: &Path) -> Self {
        Self {
            config,
            lock_path: Some(lock_path(state_dir)),
        }
    }

    /// The settings.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Whether `op` by a principal with `role` is allowed on this host right now. Cheap: one
    /// `stat` (and a small read only while locked).
    ///
    /// # Errors
    /// The rule that refuses.
    pub fn check(&self, op: Op, role: Role) -> Result<(), PolicyDenied> {
        let locked = self.lock_path.as_deref().and_then(lock_state);
        decide(&self.config, locked, op, role)
    }
}

/// `<state_dir>/lock`.
pub fn lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join(LOCK_FILE)
}

/// `None` when unlocked; `Some(reason)` when the lock file exists or cannot be checked.
fn lock_state(path: &Path) -> Option<Option<String>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot check the lock file; refusing operations");
            Some(Some("the lock file cannot be checked".into()))
        }
        Ok(_) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let reason = text.lines().next().unwrap_or("").trim();
            // Bounded: the reason goes into an error message.
            let reason: String = reason.chars().take(200).collect();
            Some((!reason.is_empty()).then_some(reason))
        }
    }
}

/// Lock file problems.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct LockError {
    action: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// Locks the host: creates the lock file with `reason` as its first line. Returns whether it
/// was already locked.
///
/// # Errors
/// The file cannot be written.
pub fn lock(state_dir: &Path, reason: Option<&str>) -> Result<bool, LockError> {
    let path = lock_path(state_dir);
    let err = |action, source| LockError {
        action,
        path: path.clone(),
        source,
    };
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let was = std::fs::symlink_metadata(&path).is_ok();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|e| err("cannot create the folder of", e))?;
    let line = reason
        .map(|r| r.replace(['\n', '\r'], " "))
        .unwrap_or_default();
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
        .map_err(|e| err("cannot write", e))?;
    Ok(was)
}

/// Unlocks the host. Returns whether it was locked.
///
/// # Errors
/// The file exists but cannot be removed.
pub fn unlock(state_dir: &Path) -> Result<bool, LockError> {
    let path = lock_path(state_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(LockError {
            action: "cannot remove",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PolicyConfig {
        PolicyConfig {
            disabled_ops: [Op::GitPush, Op::FsRmdir].into(),
            min_role: [(Op::Prompt, Role::Admin), (Op::SessionList, Role::Viewer)].into(),
            ..PolicyConfig::default()
        }
    }

    #[test]
    fn lock_refuses_everything_even_for_owners() {
        for op in [Op::WorkspaceList, Op::Prompt, Op::OpencodeStatus] {
            assert_eq!(
                decide(&config(), Some(None), op, Role::Owner),
                Err(PolicyDenied::Locked { reason: None })
            );
        }
        let msg = decide(
            &config(),
            Some(Some("incident".into())),
            Op::Abort,
            Role::Owner,
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("locked") && msg.contains("incident") && msg.contains("cm-agent unlock"),
            "{msg}"
        );
    }

    #[test]
    fn disabled_ops_and_raised_roles() {
        let c = config();
        assert_eq!(
            decide(&c, None, Op::GitPush, Role::Owner),
            Err(PolicyDenied::Disabled { op: Op::GitPush })
        );
        assert_eq!(
            decide(&c, None, Op::Prompt, Role::Operator),
            Err(PolicyDenied::RoleTooLow {
                op: Op::Prompt,
                needed: Role::Admin,
                have: Role::Operator
            })
        );
        assert_eq!(decide(&c, None, Op::Prompt, Role::Admin), Ok(()));
        // A lower min_role never lowers the relay's table.
        assert_eq!(decide(&c, None, Op::SessionList, Role::Viewer), Ok(()));
        let lowered = PolicyConfig {
            min_role: [(Op::Abort, Role::Viewer)].into(),
            ..PolicyConfig::default()
        };
        assert!(matches!(
            decide(&lowered, None, Op::Abort, Role::Viewer),
            Err(PolicyDenied::RoleTooLow {
                needed: Role::Operator,
                ..
            })
        ));
        assert_eq!(
            decide(&PolicyConfig::default(), None, Op::GitPush, Role::Operator),
            Ok(())
        );
        let msg = decide(&c, None, Op::GitPush, Role::Owner)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("git_push") && msg.contains("disabled_ops"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_op_names_are_all_named() {
        assert_eq!(
            parse_ops(["git_push", "fs_rmdir"]),
            Ok(vec![Op::GitPush, Op::FsRmdir])
        );
        assert_eq!(
            parse_ops(["git_push", "shell", "rm_rf"]),
            Err(vec!["shell".to_owned(), "rm_rf".to_owned()])
        );
    }

    #[test]
    fn the_lock_file_is_seen_without_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let policy = Policy::new(PolicyConfig::default(), &state);
        assert_eq!(policy.check(Op::Prompt, Role::Owner), Ok(()));
        assert!(!lock(&state, Some("going on holiday\nsecond line")).unwrap());
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&lock_path(&state)), 0o600);
            assert_eq!(mode(&state), 0o700);
        }
        assert_eq!(
            policy.check(Op::Prompt, Role::Owner),
            Err(PolicyDenied::Locked {
                reason: Some("going on holiday second line".into())
            })
        );
        assert!(lock(&state, None).unwrap());
        assert_eq!(
            policy.check(Op::Prompt, Role::Owner),
            Err(PolicyDenied::Locked { reason: None })
        );
        assert!(unlock(&state).unwrap());
        assert!(!unlock(&state).unwrap());
        assert_eq!(policy.check(Op::Prompt, Role::Owner), Ok(()));
    }
}
