//! The host's `[git]` settings for the operations that reach out or create repositories
//! (`git_clone`, `git_config remote.<name>.url`), and the sans-IO URL policy: which remote URLs
//! a clone may contact. A URL is refused when it is empty, looks like an option, holds
//! whitespace or control characters, names a local path, `file://` or a `<helper>::` remote
//! (`ext::` runs a program), has a host starting with `-` (an ssh option), or matches none of
//! the host's `clone_from` patterns (default: any `https://` or `ssh://` URL, or scp-like
//! `user@host:path`).

use super::GitError;
use super::args::{Transport, transport};
use std::path::PathBuf;
use std::time::Duration;

/// Default bound on a clone's run time.
pub const DEFAULT_CLONE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default bound on a clone's size on disk.
pub const DEFAULT_CLONE_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Longest accepted URL.
const MAX_URL_LEN: usize = 2048;

/// The validated `[git]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSettings {
    /// URL patterns a clone (and `remote.<name>.url`) may use; empty: the default
    /// (`https://*`, `ssh://*`, scp-like `user@host:path`).
    pub clone_from: Vec<String>,
    /// Whether a clone also fetches submodules.
    pub submodules: bool,
    /// A clone is stopped (and its folder removed) after this long.
    pub clone_timeout: Duration,
    /// A clone is stopped (and its folder removed) when its folder grows past this.
    pub clone_max_bytes: u64,
    /// An SSH private key file for ssh remotes (host-side; never sent over the wire).
    pub ssh_key: Option<PathBuf>,
    /// Where clones are assembled before they are moved into the workspace
    /// (`<state>/clones`, see [`super::staging`]); `None`: in place, without submodules.
    pub clone_staging: Option<PathBuf>,
}

impl Default for GitSettings {
    fn default() -> Self {
        Self {
            clone_from: Vec::new(),
            submodules: false,
            clone_timeout: DEFAULT_CLONE_TIMEOUT,
            clone_max_bytes: DEFAULT_CLONE_MAX_BYTES,
            ssh_key: None,
            clone_staging: None,
        }
    }
}

impl GitSettings {
    /// These settings with clones assembled in `<state_dir>/clones`.
    #[must_use]
    pub fn staged_in(mut self, state_dir: &std::path::Path) -> Self {
        self.clone_staging = Some(state_dir.join("clones"));
        self
    }

    /// The transports git itself may use for a clone (`GIT_ALLOW_PROTOCOL`): the schemes of
    /// the patterns (scp-like is `ssh`), or `https:ssh` by default.
    pub fn allowed_protocols(&self) -> String {
        if self.clone_from.is_empty() {
            return "https:ssh".into();
        }
        let mut schemes: Vec<&str> = self.clone_from.iter().map(|p| scheme(p)).collect();
        schemes.sort_unstable();
        schemes.dedup();
        schemes.join(":")
    }

    /// The patterns, for messages.
    fn allowed_text(&self) -> String {
        if self.clone_from.is_empty() {
            "https://…, ssh://… or user@host:path".into()
        } else {
            self.clone_from.join(", ")
        }
    }

    /// Refuses a URL the policy does not allow (see the module docs).
    ///
    /// # Errors
    /// [`GitError::Rule`] naming the rule.
    pub fn check_url<'a>(&self, what: &str, url: &'a str) -> Result<&'a str, GitError> {
        let refuse = |rule: &'static str, what: String| GitError::Rule {
            rule,
            what,
            value: url.chars().take(64).collect(),
        };
        if url.is_empty() {
            return Err(refuse("empty_url", what.into()));
        }
        if url.starts_with('-') {
            return Err(refuse("leading_dash", what.into()));
        }
        // ASCII only: internationalised hosts come punycoded, and the matcher cuts at bytes.
        if url.len() > MAX_URL_LEN
            || !url.is_ascii()
            || url.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(refuse("url_format", what.into()));
        }
        match transport(url) {
            Transport::Network => {}
            Transport::Local => return Err(refuse("local_remote", what.into())),
            Transport::Helper => return Err(refuse("remote_helper", what.into())),
        }
        if !authority_is_plain(url) {
            return Err(refuse("url_host", what.into()));
        }
        if has_dot_segment(url) {
            return Err(refuse("url_path", what.into()));
        }
        let allowed = if self.clone_from.is_empty() {
            let lower = url.to_ascii_lowercase();
            lower.starts_with("https://") || lower.starts_with("ssh://") || !url.contains("://")
        } else {
            self.clone_from.iter().any(|p| glob(p, url))
        };
        if !allowed {
            return Err(refuse(
                "url_not_allowed",
                format!(
                    "{what} (this host's [git] clone_from allows only {})",
                    self.allowed_text()
                ),
            ));
        }
        Ok(url)
    }
}

/// A pattern's or URL's scheme: before `://`, else `ssh` (scp-like).
fn scheme(p: &str) -> &str {
    p.split_once("://").map_or("ssh", |(s, _)| s)
}

/// The authority of a network URL (`user@host:port`) and the path after it.
fn split_authority(url: &str) -> Option<(&str, &str)> {
    match url.split_once("://") {
        Some((_, rest)) => Some(rest.split_once('/').unwrap_or((rest, ""))),
        None => url.split_once(':'),
    }
}

/// Whether the authority has a host and neither it nor the user part could be read as an
/// option by ssh (a leading `-`, also inside brackets or percent-encoded).
fn authority_is_plain(url: &str) -> bool {
    let Some((authority, _)) = split_authority(url) else {
        return false;
    };
    let (user, host) = authority
        .rsplit_once('@')
        .map_or((None, authority), |(u, h)| (Some(u), h));
    let optionish = |part: &str| {
        let part = part.trim_start_matches('[').to_ascii_lowercase();
        part.starts_with('-') || part.starts_with("%2d")
    };
    !host.trim_start_matches('[').is_empty() && !optionish(host) && !user.is_some_and(optionish)
}

/// Whether the path has a `.` or `..` segment (also percent-encoded): curl and ssh servers
/// resolve them, so `allowed/../other` would reach `other` past a path pattern.
fn has_dot_segment(url: &str) -> bool {
    let Some((_, path)) = split_authority(url) else {
        return false;
    };
    let path = path.to_ascii_lowercase().replace("%2e", ".");
    path.split(['/', '?', '#'])
        .any(|segment| segment == "." || segment == "..")
}

/// Whether a `clone_from` pattern is well-formed: a network URL (not `file://`, not a helper).
pub fn valid_pattern(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('-')
        && !p.chars().any(|c| c.is_control() || c.is_whitespace())
        && transport(&p.replace('*', "x")) == Transport::Network
        && matches!(scheme(p), "https" | "http" | "ssh" | "git")
}

/// Glob match: a `*` at the end matches the rest; elsewhere one or more characters other than
/// `/`, `@`, `:`, `?` and `#` (so a host wildcard cannot swallow a path or a user).
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((pre, "")) => s.starts_with(pre),
        Some((pre, post)) => {
            let Some(rest) = s.strip_prefix(pre) else {
                return false;
            };
            let span = rest.find(['/', '@', ':', '?', '#']).unwrap_or(rest.len());
            (1..=span).any(|n| glob(post, &rest[n..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(r: Result<&str, GitError>) -> &'static str {
        match r {
            Err(GitError::Rule { rule, .. }) => rule,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn default_policy_allows_https_and_ssh_only() {
        let s = GitSettings::default();
        for ok in [
            "https://github.com/a/b.git",
            "ssh://git@host/x",
            "git@github.com:a/b.git",
        ] {
            assert_eq!(s.check_url("url", ok).unwrap(), ok);
        }
        for (bad, r) in [
            ("", "empty_url"),
            ("-u", "leading_dash"),
            ("--upload-pack=touch /tmp/x", "leading_dash"),
            ("file:///tmp/x", "local_remote"),
            ("/tmp/x", "local_remote"),
            ("../x", "local_remote"),
            ("ext::sh -c touch% /tmp/pwned", "url_format"),
            ("ext::sh", "remote_helper"),
            ("fd::3", "remote_helper"),
            ("https://h/a b", "url_format"),
            ("https://h/a\n", "url_format"),
            ("ssh://-oProxyCommand=x/y", "url_host"),
            ("-oProxyCommand=x:y", "leading_dash"),
            ("git@-oProxyCommand=x:y", "url_host"),
            ("http://h/x", "url_not_allowed"),
            ("git://h/x", "url_not_allowed"),
        ] {
            assert_eq!(rule(s.check_url("url", bad)), r, "{bad:?}");
        }
        assert_eq!(s.allowed_protocols(), "https:ssh");
    }

    #[test]
    fn patterns_are_glob_prefixes_whose_inner_stars_stay_in_one_segment() {
        let s = GitSettings {
            clone_from: vec![
                "https://github.com/*".into(),
                "https://*.example.com/*".into(),
                "git://127.0.0.1:9418/*".into(),
            ],
            ..GitSettings::default()
        };
        for ok in [
            "https://github.com/a/b.git",
            "https://git.example.com/x.git",
            "git://127.0.0.1:9418/repo.git",
        ] {
            assert!(s.check_url("url", ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://github.com.evil.com/a",
            "https://github.com@evil.com/a",
            "https://evil.com/.example.com/x",
            "https://evil.com@x.example.com/y",
            "https://example.com/x",
            "git://127.0.0.1:9419/repo.git",
            "ssh://git@github.com/a/b",
        ] {
            assert_eq!(rule(s.check_url("url", bad)), "url_not_allowed", "{bad}");
        }
        assert_eq!(s.allowed_protocols(), "git:https");
    }

    #[test]
    fn urls_that_could_leave_a_pattern_or_pass_options_are_refused() {
        let s = GitSettings {
            clone_from: vec![
                "https://github.com/myorg/*".into(),
                "https://*.example.com/*".into(),
            ],
            ..GitSettings::default()
        };
        // Non-ASCII never reaches the matcher (it cut strings at byte offsets).
        assert_eq!(
            rule(s.check_url("url", "https://\u{e9}.example.com/x")),
            "url_format"
        );
        // Dot segments: curl removes them, so `myorg/../other` would fetch `other`.
        for bad in [
            "https://github.com/myorg/../other/repo.git",
            "https://github.com/myorg/./x/../../other",
            "https://github.com/myorg/%2e%2e/other",
            "https://github.com/myorg/%2E%2e/other",
            "https://github.com/myorg/..",
        ] {
            assert_eq!(rule(s.check_url("url", bad)), "url_path", "{bad}");
        }
        assert!(
            s.check_url("url", "https://github.com/myorg/a..b.git")
                .is_ok()
        );
        // Options hidden in the user part or in brackets, under the default policy too.
        let d = GitSettings::default();
        for bad in [
            "ssh://-oProxyCommand=x@github.com/a",
            "-oProxyCommand=x@github.com:a",
            "[-oProxyCommand=x]:p",
            "ssh://[-oProxyCommand=x]/p",
        ] {
            let r = rule(d.check_url("url", bad));
            assert!(matches!(r, "url_host" | "leading_dash"), "{bad}: {r}");
        }
    }

    #[test]
    fn patterns_must_be_network_urls() {
        for ok in ["https://github.com/*", "ssh://git@h/*", "git@h:*"] {
            assert!(valid_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "file:///*",
            "ext::*",
            "/srv/*",
            "-u",
            "foo://h/*",
            "https://a b/",
        ] {
            assert!(!valid_pattern(bad), "{bad}");
        }
    }
}
