//! The config keys `git_config` may set, and the check of each value (sans-IO). Any other key
//! is refused with the list, so no setting that names a program, a path, a hook or a
//! transport can be written over the wire.

use super::GitError;
use super::args::{ref_name, remote_name};
use super::policy::GitSettings;

/// The allowed keys, as shown to the operator.
pub const ALLOWED: &str = "user.name, user.email, remote.<name>.url, branch.<name>.remote, \
                           branch.<name>.merge, core.autocrlf";

/// Longest accepted value.
const MAX_VALUE: usize = 1024;

fn refuse(rule: &'static str, what: impl Into<String>, value: &str) -> GitError {
    GitError::Rule {
        rule,
        what: what.into(),
        value: value.chars().take(64).collect(),
    }
}

/// The key as git stores it (section and name lower-case, the subsection as given), after
/// checking it is allowed and its value is acceptable.
///
/// # Errors
/// [`GitError::Rule`]: `config_key` (not on the list, with the list) or the value's rule.
pub fn check(key: &str, value: &str, settings: &GitSettings) -> Result<String, GitError> {
    if value.len() > MAX_VALUE || value.chars().any(char::is_control) {
        return Err(refuse("config_value", format!("value of {key}"), value));
    }
    let not_allowed = || {
        refuse(
            "config_key",
            format!("config key (allowed: {ALLOWED})"),
            key,
        )
    };
    let (section, rest) = key.split_once('.').ok_or_else(not_allowed)?;
    let section = section.to_ascii_lowercase();
    let (sub, name) = match rest.rsplit_once('.') {
        Some((sub, name)) => (Some(sub), name.to_ascii_lowercase()),
        None => (None, rest.to_ascii_lowercase()),
    };
    match (section.as_str(), sub, name.as_str()) {
        ("user", None, "name" | "email") => {
            if value.trim().is_empty() || value.contains(['<', '>']) {
                return Err(refuse("config_value", format!("value of {key}"), value));
            }
        }
        ("core", None, "autocrlf") => {
            if !matches!(value, "true" | "false" | "input") {
                return Err(refuse(
                    "config_value",
                    "core.autocrlf value (use true, false or input)",
                    value,
                ));
            }
        }
        ("remote", Some(remote), "url") => {
            remote_name(remote)?;
            settings.check_url("remote URL", value)?;
        }
        ("branch", Some(branch), "remote") => {
            ref_name("branch", branch)?;
            remote_name(value)?;
        }
        ("branch", Some(branch), "merge") => {
            ref_name("branch", branch)?;
            ref_name("merge ref", value)?;
        }
        _ => return Err(not_allowed()),
    }
    Ok(match sub {
        Some(sub) => format!("{section}.{sub}.{name}"),
        None => format!("{section}.{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(r: Result<String, GitError>) -> &'static str {
        match r {
            Err(GitError::Rule { rule, .. }) => rule,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn only_allowlisted_keys_with_acceptable_values() {
        let s = GitSettings::default();
        for (k, v, stored) in [
            ("user.name", "Ada Lovelace", "user.name"),
            ("User.Email", "ada@example.com", "user.email"),
            ("core.autocrlf", "input", "core.autocrlf"),
            (
                "remote.origin.url",
                "https://github.com/a/b.git",
                "remote.origin.url",
            ),
            (
                "branch.feature/x.remote",
                "origin",
                "branch.feature/x.remote",
            ),
            ("branch.main.merge", "refs/heads/main", "branch.main.merge"),
        ] {
            assert_eq!(check(k, v, &s).unwrap(), stored, "{k}");
        }
        for (k, v, r) in [
            ("core.sshCommand", "touch /tmp/pwned", "config_key"),
            ("core.hooksPath", "/tmp", "config_key"),
            ("core.fsmonitor", "x", "config_key"),
            ("filter.x.clean", "x", "config_key"),
            ("remote.origin.uploadpack", "x", "config_key"),
            ("credential.helper", "x", "config_key"),
            ("include.path", "/etc/x", "config_key"),
            ("user", "x", "config_key"),
            ("user.x.name", "x", "config_key"),
            ("user.name", "a\nb", "config_value"),
            ("user.name", " ", "config_value"),
            ("core.autocrlf", "yes", "config_value"),
            ("remote.origin.url", "file:///tmp/x", "local_remote"),
            ("remote.origin.url", "ext::sh", "remote_helper"),
            ("remote.origin.url", "/srv/x", "local_remote"),
            ("remote.a/b.url", "https://h/x", "remote_not_a_name"),
            ("branch.main.remote", "../x", "ref_format"),
            ("branch.main.merge", "-x", "leading_dash"),
        ] {
            assert_eq!(rule(check(k, v, &s)), r, "{k}={v}");
        }
        let e = check("core.editor", "vim", &s).unwrap_err().to_string();
        assert!(e.contains("user.name, user.email"), "{e}");
    }
}
