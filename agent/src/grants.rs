//! One workspace's standing permission grants (see [`proto::grant`]): the "always" answers the
//! agent keeps instead of OpenCode, so they can be listed and revoked. Pure: no I/O, no clock.
//!
//! A grant covers a request of the same session and permission kind whose every pattern
//! matches one of the grant's patterns with OpenCode's wildcards. Grants live in memory and end
//! when OpenCode restarts (a new launch) or the agent does. While the host owner's lock file
//! exists, no grant allows anything (the one `stat` is the only I/O here).

use parking_lot::{Mutex, MutexGuard};
use proto::grant::StandingGrant;
use proto::ids::UserId;
use proto::ops::PermissionRequest;
use std::path::PathBuf;

/// Most grants a workspace keeps; the oldest goes first (it then asks again: fail-safe).
pub const MAX_GRANTS: usize = 256;

/// The grants of one workspace.
#[derive(Debug, Default)]
pub struct Grants {
    book: Mutex<Book>,
    /// The host owner's lock file (`policy::lock_path`); `None` in unit tests.
    lock_file: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct Book {
    /// The OpenCode launch the grants were made for.
    launch: Option<u64>,
    next_id: u64,
    grants: Vec<StandingGrant>,
}

/// Why a confirmed "always" cannot become a grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// No patterns were confirmed.
    #[error(
        "an `always` answer needs always_patterns: the patterns the operator was shown (the request's `always` list, or its own patterns for just this file or command)"
    )]
    NoPatterns,
    /// A pattern that is neither in the request's `always` list nor one of its patterns.
    #[error(
        "`{0}` is not one of this request's patterns or `always` patterns; answer `always` only with what the request offers"
    )]
    NotOffered(String),
}

impl Grants {
    /// No grants yet; none allows anything while `lock_file` exists.
    pub fn new(lock_file: PathBuf) -> Self {
        Self {
            book: Mutex::default(),
            lock_file: Some(lock_file),
        }
    }

    /// Whether the host is locked (or the lock file cannot be checked: fail closed).
    fn host_locked(&self) -> bool {
        self.lock_file.as_deref().is_some_and(|p| {
            !matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        })
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        self.book.lock()
    }

    /// A new OpenCode launch is being read: grants of an earlier launch end with it.
    pub fn launch_started(&self, launch: u64) {
        let mut book = self.lock();
        if book.launch != Some(launch) {
            if !book.grants.is_empty() {
                tracing::info!(
                    target: "cm_agent::audit",
                    ended = book.grants.len(),
                    "standing permission grants ended: OpenCode restarted"
                );
            }
            book.grants.clear();
            book.launch = Some(launch);
        }
    }

    /// Records that `by` answered `request` "always" for `patterns`, which must be what the
    /// request offers.
    ///
    /// # Errors
    /// No patterns, or a pattern the request does not offer.
    pub fn grant(
        &self,
        request: &PermissionRequest,
        patterns: &[String],
        by: &UserId,
        now_ms: u64,
    ) -> Result<StandingGrant, GrantError> {
        check_offered(request, patterns)?;
        let mut book = self.lock();
        book.next_id += 1;
        let grant = StandingGrant {
            id: format!("grant_{}", book.next_id),
            session: request.session.clone(),
            permission: request.permission.clone(),
            patterns: patterns.to_vec(),
            granted_by: by.clone(),
            granted_at_ms: now_ms,
            uses: 0,
        };
        if book.grants.len() >= MAX_GRANTS {
            book.grants.remove(0);
        }
        book.grants.push(grant.clone());
        Ok(grant)
    }

    /// The grant that covers `request`, counting the use; `None` means a human must answer.
    pub fn allow(&self, request: &PermissionRequest) -> Option<StandingGrant> {
        if self.host_locked() {
            return None;
        }
        let mut book = self.lock();
        let grant = book.grants.iter_mut().find(|g| covers(g, request))?;
        grant.uses += 1;
        Some(grant.clone())
    }

    /// Every grant, oldest first.
    pub fn list(&self) -> Vec<StandingGrant> {
        self.lock().grants.clone()
    }

    /// Ends grant `id`; returns it, or `None` if there is no such grant.
    pub fn revoke(&self, id: &str) -> Option<StandingGrant> {
        let mut book = self.lock();
        let at = book.grants.iter().position(|g| g.id == id)?;
        Some(book.grants.remove(at))
    }
}

/// Every confirmed pattern must be one the request offers.
fn check_offered(request: &PermissionRequest, patterns: &[String]) -> Result<(), GrantError> {
    if patterns.is_empty() {
        return Err(GrantError::NoPatterns);
    }
    match patterns
        .iter()
        .find(|p| !request.always.contains(p) && !request.patterns.contains(p))
    {
        Some(p) => Err(GrantError::NotOffered(p.clone())),
        None => Ok(()),
    }
}

/// Whether `grant` allows `request`: same session and kind, every pattern matched.
pub fn covers(grant: &StandingGrant, request: &PermissionRequest) -> bool {
    grant.session == request.session
        && grant.permission == request.permission
        && !request.patterns.is_empty()
        && request
            .patterns
            .iter()
            .all(|p| grant.patterns.iter().any(|g| wildcard(g, p)))
}

/// OpenCode's wildcard match: `*` any run of characters, `?` one character, the whole text;
/// a pattern ending in " *" also matches the text without that tail (`ls *` matches `ls`).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    if let Some(head) = pattern.strip_suffix(" *")
        && text == head
    {
        return true;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative match with backtracking to the last star: linear in practice, no recursion.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(id: &str, session: &str, file: &str) -> PermissionRequest {
        PermissionRequest {
            id: id.into(),
            session: session.into(),
            permission: "edit".into(),
            patterns: vec![file.into()],
            metadata: serde_json::Value::Null,
            always: vec!["*".into()],
        }
    }

    fn bash(session: &str, command: &str, always: &str) -> PermissionRequest {
        PermissionRequest {
            id: "per_b".into(),
            session: session.into(),
            permission: "bash".into(),
            patterns: vec![command.into()],
            metadata: serde_json::Value::Null,
            always: vec![always.into()],
        }
    }

    fn alice() -> UserId {
        UserId::from("alice")
    }

    #[test]
    fn wildcards_match_like_opencode() {
        assert!(wildcard("*", "src/a.rs"));
        assert!(wildcard("echo *", "echo hi there"));
        assert!(wildcard("echo *", "echo"), "a trailing ` *` is optional");
        assert!(!wildcard("echo *", "echoes"));
        assert!(!wildcard("echo *", "rm -rf / ; echo x"));
        assert!(wildcard("src/?.rs", "src/a.rs"));
        assert!(wildcard("a*b*c", "aXbYbZc"));
        assert!(!wildcard("src/a.rs", "src/a.rsx"));
    }

    #[test]
    fn an_always_for_edits_covers_only_its_own_session() {
        let g = Grants::default();
        g.grant(&edit("per_1", "ses_a", "a.txt"), &["*".into()], &alice(), 1)
            .unwrap();
        assert!(g.allow(&edit("per_2", "ses_a", "b.txt")).is_some());
        assert!(
            g.allow(&edit("per_3", "ses_b", "b.txt")).is_none(),
            "another session (perhaps another operator's) still asks"
        );
        assert_eq!(g.list()[0].uses, 1);
    }

    #[test]
    fn always_for_this_file_covers_only_that_file() {
        let g = Grants::default();
        g.grant(
            &edit("per_1", "ses_a", "a.txt"),
            &["a.txt".into()],
            &alice(),
            1,
        )
        .unwrap();
        assert!(g.allow(&edit("per_2", "ses_a", "a.txt")).is_some());
        assert!(g.allow(&edit("per_3", "ses_a", "b.txt")).is_none());
    }

    #[test]
    fn a_grant_is_never_wider_than_what_the_request_offered() {
        let g = Grants::default();
        let r = bash("ses_a", "echo hi", "echo *");
        assert_eq!(
            g.grant(&r, &["*".into()], &alice(), 1),
            Err(GrantError::NotOffered("*".into()))
        );
        assert_eq!(g.grant(&r, &[], &alice(), 1), Err(GrantError::NoPatterns));
        g.grant(&r, &["echo *".into()], &alice(), 1).unwrap();
        assert!(g.allow(&bash("ses_a", "echo bye", "echo *")).is_some());
        assert!(g.allow(&bash("ses_a", "rm -rf x", "rm *")).is_none());
    }

    #[test]
    fn a_locked_host_allows_nothing_by_grant() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("lock");
        let g = Grants::new(lock.clone());
        g.grant(&edit("per_1", "ses_a", "a.txt"), &["*".into()], &alice(), 1)
            .unwrap();
        std::fs::write(&lock, "incident").unwrap();
        assert!(g.allow(&edit("per_2", "ses_a", "a.txt")).is_none());
        std::fs::remove_file(&lock).unwrap();
        assert!(g.allow(&edit("per_2", "ses_a", "a.txt")).is_some());
    }

    #[test]
    fn revoked_grants_and_grants_of_an_earlier_launch_allow_nothing() {
        let g = Grants::default();
        g.launch_started(1);
        let first = g
            .grant(&edit("per_1", "ses_a", "a.txt"), &["*".into()], &alice(), 1)
            .unwrap();
        assert_eq!(g.revoke(&first.id).map(|x| x.id), Some(first.id.clone()));
        assert!(g.revoke(&first.id).is_none());
        assert!(g.allow(&edit("per_2", "ses_a", "a.txt")).is_none());
        g.grant(&edit("per_1", "ses_a", "a.txt"), &["*".into()], &alice(), 1)
            .unwrap();
        g.launch_started(1);
        assert_eq!(g.list().len(), 1, "the same launch keeps them");
        g.launch_started(2);
        assert!(g.list().is_empty(), "OpenCode restarted");
        assert!(g.allow(&edit("per_2", "ses_a", "a.txt")).is_none());
    }
}
