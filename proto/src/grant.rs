//! Standing permission grants: what an "always" answer allows, in data and in words.
//!
//! OpenCode keeps its own "always" approvals in memory for every session of the project and
//! has no API to list or revoke them, so the agent never sends it "always". It keeps the grant
//! itself (this type), answers matching requests of the same session "once" on the operator's
//! behalf, and serves `permission_grants` / `permission_revoke`. Grants live in the agent's
//! memory and end when OpenCode (or the agent) restarts.

use crate::ids::UserId;
use serde::{Deserialize, Serialize};

/// How long a grant lasts, in the words the operator is shown.
pub const LIFETIME: &str = "until OpenCode restarts";

/// One standing grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingGrant {
    /// Grant id (`grant_…`), for revoking.
    pub id: String,
    /// The session it applies to (the one whose request was answered "always").
    pub session: String,
    /// The permission kind (`edit`, `bash`, …).
    pub permission: String,
    /// The patterns it allows (`*`, a file path, `echo *`); OpenCode's wildcards.
    pub patterns: Vec<String>,
    /// Who answered "always".
    pub granted_by: UserId,
    /// When, unix ms.
    pub granted_at_ms: u64,
    /// Requests the agent has allowed with it so far.
    #[serde(default)]
    pub uses: u64,
}

impl StandingGrant {
    /// What it allows, in words (see [`describe`]).
    pub fn describe(&self) -> String {
        describe(&self.permission, &self.patterns)
    }
}

/// Body of `permission_revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRevoke {
    /// The grant to end.
    pub id: String,
}

/// What a grant of `patterns` for `permission` allows, in words: "every edit in this session
/// until OpenCode restarts", "`echo *` commands in this session until OpenCode restarts".
/// The patterns are quoted as given; callers that print to a terminal sanitize the result.
pub fn describe(permission: &str, patterns: &[String]) -> String {
    let every = patterns.iter().any(|p| p == "*");
    let quoted = patterns
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let what = match (permission, every) {
        ("edit", true) => "every edit of any file".to_owned(),
        ("edit", false) => format!("edits of {quoted}"),
        ("bash", true) => "every command".to_owned(),
        ("bash", false) => format!("{quoted} commands"),
        (other, true) => format!("every `{other}` request"),
        (other, false) => format!("`{other}` requests for {quoted}"),
    };
    format!("{what} in this session {LIFETIME}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn grants_are_described_in_words_that_say_how_wide_they_are() {
        assert_eq!(
            describe("edit", &v(&["*"])),
            "every edit of any file in this session until OpenCode restarts"
        );
        assert_eq!(
            describe("edit", &v(&["src/main.rs"])),
            "edits of `src/main.rs` in this session until OpenCode restarts"
        );
        assert_eq!(
            describe("bash", &v(&["echo *"])),
            "`echo *` commands in this session until OpenCode restarts"
        );
        assert_eq!(
            describe("webfetch", &v(&["*"])),
            "every `webfetch` request in this session until OpenCode restarts"
        );
    }

    #[test]
    fn a_grant_round_trips_as_json() {
        let g = StandingGrant {
            id: "grant_1".into(),
            session: "ses_1".into(),
            permission: "edit".into(),
            patterns: v(&["*"]),
            granted_by: UserId::from("alice"),
            granted_at_ms: 5,
            uses: 0,
        };
        let back: StandingGrant =
            serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(back, g);
    }
}
