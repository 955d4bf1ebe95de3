//! The sans-IO half of containment: a path from the network becomes a [`RelPath`] (a list of
//! plain names beneath a workspace root) or is refused with the [`PathRule`] it breaks and the
//! offending component. No file system access happens here.
//!
//! Rules, checked in this order:
//! 1. no NUL byte anywhere ([`PathRule::Nul`]);
//! 2. at most [`MAX_PATH_LEN`] bytes ([`PathRule::TooLong`]);
//! 3. relative: no leading `/` ([`PathRule::Absolute`]);
//! 4. no `..` component at all, not even one that would stay inside the root: resolution never
//!    goes up, so a chain like `a/../../etc` cannot mean anything ([`PathRule::ParentRef`]);
//! 5. every name at most [`MAX_NAME_LEN`] bytes ([`PathRule::NameTooLong`]).
//!
//! Empty components and `.` are dropped, so `""`, `"."` and `"./"` all name the root.

use proto::fs::{MAX_NAME_LEN, MAX_PATH_LEN};
use std::fmt;

/// A rule a requested path breaks. The wire name (`as_str`) appears in refusals and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRule {
    /// The path contains a NUL byte.
    #[error("the path contains a NUL byte")]
    Nul,
    /// The path is longer than [`MAX_PATH_LEN`] bytes.
    #[error("the path is {len} bytes, over the {MAX_PATH_LEN}-byte limit")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The path starts with `/`.
    #[error("the path is absolute; give it relative to the workspace root")]
    Absolute,
    /// The path has a `..` component.
    #[error("`..` is not accepted in paths (component {index})")]
    ParentRef {
        /// Zero-based index of the component.
        index: usize,
    },
    /// A name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("the name {name:?} is {len} bytes, over the {MAX_NAME_LEN}-byte limit")]
    NameTooLong {
        /// The first 32 characters of the name.
        name: String,
        /// Its length.
        len: usize,
    },
}

impl PathRule {
    /// Stable short name of the rule.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Nul => "nul_byte",
            Self::TooLong { .. } => "path_too_long",
            Self::Absolute => "absolute_path",
            Self::ParentRef { .. } => "parent_reference",
            Self::NameTooLong { .. } => "name_too_long",
        }
    }
}

/// A validated path beneath a workspace root: plain names only (no `/`, `.`, `..`, NUL, none
/// longer than [`MAX_NAME_LEN`]). Empty is the root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelPath {
    names: Vec<String>,
}

impl RelPath {
    /// Validates `raw` against every rule of the module.
    ///
    /// # Errors
    /// The first rule `raw` breaks.
    pub fn parse(raw: &str) -> Result<Self, PathRule> {
        if raw.contains('\0') {
            return Err(PathRule::Nul);
        }
        if raw.len() > MAX_PATH_LEN {
            return Err(PathRule::TooLong { len: raw.len() });
        }
        if raw.starts_with('/') {
            return Err(PathRule::Absolute);
        }
        let mut names = Vec::new();
        for (index, part) in raw.split('/').enumerate() {
            match part {
                "" | "." => {}
                ".." => return Err(PathRule::ParentRef { index }),
                name if name.len() > MAX_NAME_LEN => {
                    return Err(PathRule::NameTooLong {
                        name: name.chars().take(32).collect(),
                        len: name.len(),
                    });
                }
                name => names.push(name.to_owned()),
            }
        }
        Ok(Self { names })
    }

    /// Whether this is the root itself.
    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    /// The names, outermost first.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The parent's names and the last name; `None` for the root.
    pub fn split_last(&self) -> Option<(&[String], &str)> {
        self.names
            .split_last()
            .map(|(last, parent)| (parent, last.as_str()))
    }

    /// The first `n` names as a path (for naming the component an error is about).
    pub fn prefix(&self, n: usize) -> String {
        self.names[..n.min(self.names.len())].join("/")
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_rule_has_a_case() {
        assert_eq!(RelPath::parse("a\0b"), Err(PathRule::Nul));
        assert_eq!(RelPath::parse("\0"), Err(PathRule::Nul));
        assert_eq!(RelPath::parse("/etc"), Err(PathRule::Absolute));
        assert_eq!(RelPath::parse("//etc"), Err(PathRule::Absolute));
        assert_eq!(RelPath::parse(".."), Err(PathRule::ParentRef { index: 0 }));
        assert_eq!(
            RelPath::parse("a/../b"),
            Err(PathRule::ParentRef { index: 1 })
        );
        assert_eq!(
            RelPath::parse("a/b/../../../etc"),
            Err(PathRule::ParentRef { index: 2 })
        );
        assert_eq!(
            RelPath::parse("./.."),
            Err(PathRule::ParentRef { index: 1 })
        );
        let long = "x".repeat(MAX_PATH_LEN + 1);
        assert_eq!(
            RelPath::parse(&long),
            Err(PathRule::TooLong {
                len: MAX_PATH_LEN + 1
            })
        );
        let name = "n".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            RelPath::parse(&format!("a/{name}")),
            Err(PathRule::NameTooLong { len, .. }) if len == MAX_NAME_LEN + 1
        ));
        // At the limits: accepted.
        assert!(RelPath::parse(&"n".repeat(MAX_NAME_LEN)).is_ok());
        let at_limit = vec!["d".repeat(100); 40].join("/");
        assert!(at_limit.len() <= MAX_PATH_LEN);
        assert!(RelPath::parse(&at_limit).is_ok());
    }

    #[test]
    fn roots_and_normal_forms() {
        for root in ["", ".", "./", ".//.", "./././"] {
            assert!(RelPath::parse(root).unwrap().is_root(), "{root:?}");
        }
        let p = RelPath::parse("./a//b/./c/").unwrap();
        assert_eq!(p.to_string(), "a/b/c");
        assert_eq!(p.split_last(), Some((&p.names()[..2], "c")));
        assert_eq!(p.prefix(2), "a/b");
        // Names that merely contain dots, dashes or backslashes are ordinary names.
        let p = RelPath::parse("...a/..b/-x/a\\..\\b/.hidden").unwrap();
        assert_eq!(p.names().len(), 5);
    }

    /// One of a few interesting path pieces, so generated paths hit every rule often.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("...".to_owned()),
            Just("\0".to_owned()),
            Just("a\0".to_owned()),
            Just("-rf".to_owned()),
            "[a-z.]{1,8}",
            Just("n".repeat(MAX_NAME_LEN)),
            Just("n".repeat(MAX_NAME_LEN + 1)),
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever is accepted consists of plain names only, and re-parses to itself; whatever
        /// is refused breaks a rule that can be seen in the input.
        #[test]
        fn accepted_paths_are_plain_names(pieces in prop::collection::vec(piece(), 0..40), lead in any::<bool>()) {
            let raw = format!("{}{}", if lead { "/" } else { "" }, pieces.join("/"));
            match RelPath::parse(&raw) {
                Ok(p) => {
                    prop_assert!(!raw.contains('\0') && !raw.starts_with('/') && raw.len() <= MAX_PATH_LEN);
                    for n in p.names() {
                        prop_assert!(!n.is_empty() && n != "." && n != "..");
                        prop_assert!(!n.contains('/') && !n.contains('\0'));
                        prop_assert!(n.len() <= MAX_NAME_LEN);
                    }
                    prop_assert_eq!(RelPath::parse(&p.to_string()).unwrap(), p);
                }
                Err(PathRule::Nul) => prop_assert!(raw.contains('\0')),
                Err(PathRule::TooLong { len }) => prop_assert!(len > MAX_PATH_LEN),
                Err(PathRule::Absolute) => prop_assert!(raw.starts_with('/')),
                Err(PathRule::ParentRef { index }) => {
                    prop_assert_eq!(raw.split('/').nth(index), Some(".."));
                }
                Err(PathRule::NameTooLong { len, .. }) => prop_assert!(len > MAX_NAME_LEN),
            }
        }
    }
}
