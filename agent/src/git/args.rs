//! The sans-IO checks every value from the network passes before it reaches a git command line:
//! branch and revision names, remote names, pathspecs, commit messages, and the URLs of the
//! remotes a pull or push would contact. Values are also placed after `--end-of-options` or
//! `--` on the command line; these checks make the refusal explicit and name the rule.

use super::GitError;
use crate::fs::path::RelPath;
use proto::git::MAX_COMMIT_MESSAGE;

/// Longest accepted branch, revision or remote name.
const MAX_REF_LEN: usize = 255;

fn refuse(rule: &'static str, what: &str, value: &str) -> GitError {
    GitError::Rule {
        rule,
        what: what.to_owned(),
        value: value.chars().take(64).collect(),
    }
}

/// A branch name, revision (branch, tag, `origin/main`, commit id) or start point: the rules of
/// `git check-ref-format`, plus never starting with `-` (an option) or `+` (a forced refspec).
///
/// # Errors
/// [`GitError::Rule`] naming the broken rule.
pub fn ref_name<'a>(what: &str, s: &'a str) -> Result<&'a str, GitError> {
    let bad = |rule| Err(refuse(rule, what, s));
    if s.is_empty() {
        return bad("empty_name");
    }
    if s.starts_with('-') {
        return bad("leading_dash");
    }
    if s.starts_with('+') {
        return bad("leading_plus");
    }
    if s.len() > MAX_REF_LEN {
        return bad("name_too_long");
    }
    if s.chars().any(|c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return bad("ref_format");
    }
    if s.contains("..")
        || s.contains("@{")
        || s.contains("//")
        || s == "@"
        || s.starts_with('/')
        || s.ends_with('/')
        || s.ends_with('.')
        || s.split('/')
            .any(|c| c.starts_with('.') || c.ends_with(".lock"))
    {
        return bad("ref_format");
    }
    Ok(s)
}

/// A remote's name: a ref-like name without `/`, so never a URL or a path.
///
/// # Errors
/// [`GitError::Rule`].
pub fn remote_name(s: &str) -> Result<&str, GitError> {
    ref_name("remote", s)?;
    if s.contains('/') {
        return Err(refuse("remote_not_a_name", "remote", s));
    }
    Ok(s)
}

/// A path for `git add`/`git diff`: the folder rules of containment (relative, no `..`, no NUL,
/// bounded) and no leading `-`. Returned normalized; `.` for the folder itself.
///
/// # Errors
/// [`GitError::Rule`] or the containment rule.
pub fn pathspec(s: &str) -> Result<String, GitError> {
    let p = RelPath::parse(s).map_err(|r| GitError::Path(r.into()))?;
    if p.names().iter().any(|n| n.starts_with('-')) {
        return Err(refuse("leading_dash", "path", s));
    }
    Ok(if p.is_root() {
        ".".into()
    } else {
        p.to_string()
    })
}

/// A commit message: non-empty after trimming, bounded, no NUL.
///
/// # Errors
/// [`GitError::Rule`].
pub fn message(s: &str) -> Result<&str, GitError> {
    if s.trim().is_empty() {
        return Err(refuse("empty_message", "commit message", s));
    }
    if s.len() > MAX_COMMIT_MESSAGE || s.contains('\0') {
        return Err(refuse("message_format", "commit message", s));
    }
    Ok(s)
}

/// How a remote URL would be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `https://`, `http://`, `ssh://`, `git://`, or scp-like `user@host:path`: allowed.
    Network,
    /// `file://` or a plain local path: refused (it would read or write outside the root).
    Local,
    /// `ext::` or another `<helper>::` remote helper: refused (it runs a program).
    Helper,
}

/// Classifies a remote URL the way git would pick its transport.
pub fn transport(url: &str) -> Transport {
    let lower = url.to_ascii_lowercase();
    if let Some((scheme, _)) = lower.split_once("://") {
        return match scheme {
            "https" | "http" | "ssh" | "git" | "git+ssh" | "ssh+git" => Transport::Network,
            "file" => Transport::Local,
            _ => Transport::Helper,
        };
    }
    if lower.contains("::") {
        return Transport::Helper;
    }
    // scp-like syntax: a colon before any slash, with a host before it.
    match url.split_once(':') {
        Some((host, _)) if !host.is_empty() && !host.contains('/') => Transport::Network,
        _ => Transport::Local,
    }
}

/// Refuses a remote whose URLs are not all network URLs.
///
/// # Errors
/// [`GitError::Rule`] naming the remote (not the URL, which may carry credentials).
pub fn remote_urls<S: AsRef<str>>(remote: &str, urls: &[S]) -> Result<(), GitError> {
    if urls.is_empty() {
        return Err(refuse("remote_url", "remote", remote));
    }
    for u in urls {
        match transport(u.as_ref()) {
            Transport::Network => {}
            Transport::Local => return Err(refuse("local_remote", "remote", remote)),
            Transport::Helper => return Err(refuse("remote_helper", "remote", remote)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(r: Result<impl std::fmt::Debug, GitError>) -> &'static str {
        match r {
            Err(GitError::Rule { rule, .. }) => rule,
            Err(GitError::Path(e)) => e.rule().unwrap_or("path"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn ref_names_follow_check_ref_format_and_never_look_like_options() {
        for ok in [
            "main",
            "feature/x",
            "v1.2",
            "origin/main",
            "a+b",
            "0123abcd",
            "HEAD",
        ] {
            assert_eq!(ref_name("branch", ok).unwrap(), ok);
        }
        for (bad, r) in [
            ("", "empty_name"),
            ("-D", "leading_dash"),
            ("--upload-pack=touch /tmp/x", "leading_dash"),
            ("-c", "leading_dash"),
            ("+main", "leading_plus"),
            ("a b", "ref_format"),
            ("a..b", "ref_format"),
            ("a:b", "ref_format"),
            (":main", "ref_format"),
            ("a~1", "ref_format"),
            ("a^", "ref_format"),
            ("a\\b", "ref_format"),
            ("a\nb", "ref_format"),
            ("a\0b", "ref_format"),
            ("@", "ref_format"),
            ("a@{1}", "ref_format"),
            ("/a", "ref_format"),
            ("a/", "ref_format"),
            ("a.", "ref_format"),
            (".a", "ref_format"),
            ("a/.b", "ref_format"),
            ("a.lock", "ref_format"),
            ("a//b", "ref_format"),
        ] {
            assert_eq!(rule(ref_name("branch", bad)), r, "{bad:?}");
        }
        assert_eq!(rule(ref_name("branch", &"b".repeat(300))), "name_too_long");
    }

    #[test]
    fn remotes_are_names_not_urls_or_paths() {
        assert_eq!(remote_name("origin").unwrap(), "origin");
        assert_eq!(rule(remote_name("../sentinel")), "ref_format");
        assert_eq!(rule(remote_name("/tmp/sentinel")), "ref_format");
        assert_eq!(rule(remote_name("tmp/x")), "remote_not_a_name");
        assert_eq!(rule(remote_name("file:///tmp/x")), "ref_format");
        assert_eq!(rule(remote_name("--upload-pack=sh")), "leading_dash");
    }

    #[test]
    fn transports() {
        use Transport::*;
        for (url, t) in [
            ("https://github.com/a/b.git", Network),
            ("HTTP://h/x", Network),
            ("ssh://git@h/x", Network),
            ("git://h/x", Network),
            ("git@github.com:a/b.git", Network),
            ("host:path", Network),
            ("file:///tmp/x", Local),
            ("FILE:///tmp/x", Local),
            ("/tmp/x", Local),
            ("../x", Local),
            ("./a:b", Local),
            ("x", Local),
            ("ext::sh -c touch% /tmp/pwned", Helper),
            ("fd::3", Helper),
            ("foo://x", Helper),
        ] {
            assert_eq!(transport(url), t, "{url}");
        }
        assert!(remote_urls("o", &["https://h/x", "git@h:x"]).is_ok());
        assert_eq!(
            rule(remote_urls("o", &["https://h/x", "/tmp/x"])),
            "local_remote"
        );
        assert_eq!(rule(remote_urls("o", &["ext::sh"])), "remote_helper");
        assert_eq!(rule(remote_urls::<&str>("o", &[])), "remote_url");
    }

    #[test]
    fn pathspecs_and_messages() {
        assert_eq!(pathspec("").unwrap(), ".");
        assert_eq!(pathspec("./src//a.rs").unwrap(), "src/a.rs");
        assert_eq!(rule(pathspec("-rf")), "leading_dash");
        assert_eq!(rule(pathspec("a/--exec=x")), "leading_dash");
        assert_eq!(rule(pathspec("/etc/passwd")), "absolute_path");
        assert_eq!(rule(pathspec("../x")), "parent_reference");
        assert_eq!(rule(pathspec("a\0")), "nul_byte");
        assert_eq!(message("fix: x\n\nbody").unwrap(), "fix: x\n\nbody");
        assert_eq!(rule(message("  \n")), "empty_message");
        assert_eq!(rule(message("a\0b")), "message_format");
    }
}
