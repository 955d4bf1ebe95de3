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
}
