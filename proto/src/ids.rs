//! Newtypes for the identifiers that cross module and process boundaries, so a host id can
//! never be passed where a credential id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

string_id!(
    /// A managed host, named at `cm-relay host add NAME`.
    HostId
);
string_id!(
    /// A user of the relay (operator, admin, owner).
    UserId
);
string_id!(
    /// A credential: a host's enrollment secret or a user's short-lived login credential.
    CredId
);
string_id!(
    /// One authenticated connection at the relay, chosen by the relay in `h2`.
    ConnId
);

/// A request id chosen by the client, unique per connection; echoed in responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReqId(pub u64);

impl fmt::Display for ReqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a string is not a valid id: what it was meant to be and what is wrong with it, without
/// the string itself (it came from a peer and may hold anything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {kind}: {problem}; {kind}s are 1 to {MAX_ID_LEN} ASCII letters, digits, '-', '_' or '.', not starting with '-' or '.'"
)]
pub struct InvalidId {
    /// What the id names ("session id", "workspace name", "message id").
    pub kind: &'static str,
    /// What is wrong with it.
    pub problem: IdProblem,
}

/// What is wrong with an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdProblem {
    /// It is empty.
    #[error("it is empty")]
    Empty,
    /// It is longer than [`MAX_ID_LEN`] bytes.
    #[error("it is {0} bytes long")]
    TooLong(usize),
    /// It starts with `-` or `.` (it could be read as an option or a relative path).
    #[error("it starts with '-' or '.'")]
    BadStart,
    /// It holds a path separator (`/` or `\`).
    #[error("it holds a path separator")]
    PathSeparator,
    /// It holds a control character (an escape sequence could hide in it).
    #[error("it holds a control character")]
    Control,
    /// It holds another character outside the allowed set (a space, non-ASCII).
    #[error("it holds a character other than ASCII letters, digits, '-', '_' and '.'")]
    OtherChar,
}

/// Checks `s` against [`is_valid_name`], saying what is wrong.
///
/// # Errors
/// The first problem found, in the order of [`IdProblem`].
pub fn check_name(kind: &'static str, s: &str) -> Result<(), InvalidId> {
    let problem = if s.is_empty() {
        Some(IdProblem::Empty)
    } else if s.len() > MAX_ID_LEN {
        Some(IdProblem::TooLong(s.len()))
    } else if s.starts_with(['-', '.']) {
        Some(IdProblem::BadStart)
    } else if s.contains(['/', '\\']) {
        Some(IdProblem::PathSeparator)
    } else if s.chars().any(char::is_control) {
        Some(IdProblem::Control)
    } else if !is_valid_name(s) {
        Some(IdProblem::OtherChar)
    } else {
        None
    };
    problem.map_or(Ok(()), |problem| Err(InvalidId { kind, problem }))
}

macro_rules! checked_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        ///
        /// Only a valid name ([`is_valid_name`]) can be one: built with `TryFrom`/`parse` and
        /// decoded by serde through the same check, so an invalid one is refused where it
        /// enters (with an [`InvalidId`] saying why) and never reaches a path, a log or a screen.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What this id names, for error messages.
            pub const KIND: &'static str = $kind;

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                check_name($kind, &s)?;
                Ok(Self(s))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidId;
            fn try_from(s: &str) -> Result<Self, InvalidId> {
                check_name($kind, s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::try_from(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

checked_id!(
    /// A workspace's name, as configured in the agent's `[[workspace]]` table (the agent
    /// refuses to start with a name that is not valid, so every existing name decodes).
    WorkspaceName,
    "workspace name"
);
checked_id!(
    /// An OpenCode session id (`ses_…`).
    SessionId,
    "session id"
);
checked_id!(
    /// An OpenCode message id (`msg_…`).
    MessageId,
    "message id"
);

/// Longest id the protocol accepts (bytes); longer ones are refused before any lookup.
pub const MAX_ID_LEN: usize = 128;

/// Whether `s` is acceptable as a host or user name: 1 to [`MAX_ID_LEN`] bytes of ASCII letters,
/// digits, `-`, `_` and `.`, not starting with `-` or `.` (so a name is never an option or a path).
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_options_paths_and_oversize() {
        assert!(is_valid_name("home-box_1.lan"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("-D"));
        assert!(!is_valid_name(".."));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name(&"x".repeat(MAX_ID_LEN + 1)));
        assert!(is_valid_name(&"x".repeat(MAX_ID_LEN)));
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let json = serde_json::to_string(&HostId::from("box")).unwrap();
        assert_eq!(json, "\"box\"");
        assert_eq!(serde_json::to_string(&ReqId(7)).unwrap(), "7");
    }

    #[test]
    fn checked_ids_decode_valid_names_and_refuse_the_rest_with_a_reason() {
        let ws: WorkspaceName = serde_json::from_str("\"home-box_1.lan\"").unwrap();
        assert_eq!(ws.as_str(), "home-box_1.lan");
        assert_eq!(serde_json::to_string(&ws).unwrap(), "\"home-box_1.lan\"");
        let s: SessionId = serde_json::from_str("\"ses_3f9aZ\"").unwrap();
        assert_eq!(s, "ses_3f9aZ");
        let m: MessageId = "msg_01".parse().unwrap();
        assert_eq!(m.to_string(), "msg_01");

        let cases: [(&str, IdProblem); 7] = [
            ("", IdProblem::Empty),
            (
                &"x".repeat(MAX_ID_LEN + 1),
                IdProblem::TooLong(MAX_ID_LEN + 1),
            ),
            ("../etc", IdProblem::BadStart),
            ("-rf", IdProblem::BadStart),
            ("a/b", IdProblem::PathSeparator),
            ("a\\b", IdProblem::PathSeparator),
            ("a\u{1b}[2Jb", IdProblem::Control),
        ];
        for (bad, problem) in cases {
            let err = WorkspaceName::try_from(bad).unwrap_err();
            assert_eq!(err.problem, problem, "{bad:?}");
            assert_eq!(err.kind, "workspace name");
        }
        assert_eq!(
            SessionId::try_from("a b").unwrap_err().problem,
            IdProblem::OtherChar
        );
        assert_eq!(
            MessageId::try_from("é").unwrap_err().problem,
            IdProblem::OtherChar
        );
    }

    #[test]
    fn decoding_a_bad_id_fails_with_a_clear_error_that_does_not_echo_it() {
        let err = serde_json::from_str::<SessionId>("\"\\u001b]0;pwned\\u0007\"").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("invalid session id"), "{text}");
        assert!(text.contains("control character"), "{text}");
        assert!(
            !text.contains("pwned"),
            "the id itself is never echoed: {text}"
        );
        let err = serde_json::from_str::<WorkspaceName>("\"\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid workspace name: it is empty"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn checked_ids_agree_with_is_valid_name(s in "\\PC{0,4}|[a-z./\\\\-]{0,6}") {
            proptest::prop_assert_eq!(SessionId::try_from(s.as_str()).is_ok(), is_valid_name(&s));
        }
    }
}
