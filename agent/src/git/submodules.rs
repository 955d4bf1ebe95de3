//! Submodules of a fresh clone, fetched only when every URL passes the host's `[git]
//! clone_from` policy. The clone itself never recurses; then the URLs in `.gitmodules` are read
//! with `git config --file` (no includes, the fixed environment of [`super::run`]), relative
//! ones resolved against the clone URL, and each checked with [`GitSettings::check_url`];
//! `git submodule init` records them in the repository's config, and the recorded URLs (git's
//! own resolution, what `git submodule update` will contact) are checked again. A refused URL
//! fails the clone naming the submodule and the URL. Nested submodules are not fetched.

use super::GitError;
use super::policy::GitSettings;
use super::run::{Git, GitDir};

/// The key pattern of submodule URLs.
const URL_KEYS: &str = r"^submodule\..*\.url$";
/// Most bytes of submodule URL listing read (a few thousand submodules).
const MAX_LISTING: usize = 256 * 1024;

/// Checks the submodules of the clone in `d` (from `clone_url`) and records them for
/// `git submodule update`. `false` when there are none.
///
/// # Errors
/// [`GitError::Rule`] naming the submodule whose URL is refused; git failures.
pub async fn checked(
    d: &GitDir,
    clone_url: &str,
    settings: &GitSettings,
) -> Result<bool, GitError> {
    let declared = declared_urls(d).await?;
    if declared.is_empty() {
        return Ok(false);
    }
    for (name, url) in &declared {
        let resolved = resolve(clone_url, url).ok_or_else(|| GitError::Rule {
            rule: "submodule_url",
            what: format!("submodule {name:?}: the relative URL leaves the clone URL's host; URL"),
            value: url.chars().take(64).collect(),
        })?;
        let what = if &resolved == url {
            format!("submodule {name:?} URL")
        } else {
            format!("submodule {name:?} URL {url:?}, resolved against the clone URL to")
        };
        settings.check_url(&what, &resolved)?;
    }
    Git::new(d, ["submodule", "init"]).run().await?;
    // What git recorded is what `update` contacts: checked as well, whatever git's resolution.
    for (name, url) in urls(d, &["--local"]).await? {
        settings.check_url(&format!("submodule {name:?} URL"), &url)?;
    }
    Ok(true)
}

/// Whether the clone in `d` declares any submodule.
///
/// # Errors
/// A `.gitmodules` that is not a regular file; git failures.
pub async fn declared(d: &GitDir) -> Result<bool, GitError> {
    Ok(!declared_urls(d).await?.is_empty())
}

/// The submodules `.gitmodules` declares (name, URL as written).
async fn declared_urls(d: &GitDir) -> Result<Vec<(String, String)>, GitError> {
    if !has_gitmodules(d)? {
        return Ok(Vec::new());
    }
    urls(d, &["--file", ".gitmodules"]).await
}

/// Whether the folder has a `.gitmodules` (a regular file; a link or other kind is refused).
fn has_gitmodules(d: &GitDir) -> Result<bool, GitError> {
    use rustix::fs::{AtFlags, FileType, statat};
    match statat(&d.fd, ".gitmodules", AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => Ok(true),
        Ok(_) => Err(GitError::Rule {
            rule: "submodule_file",
            what: format!("{:?}/.gitmodules is not a regular file;", d.rel),
            value: ".gitmodules".into(),
        }),
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(e) => Err(GitError::failed(
            "clone",
            &format!("cannot read .gitmodules: {e}"),
        )),
    }
}

/// The submodule URLs (name, URL) in the config file `source` selects.
async fn urls(d: &GitDir, source: &[&str]) -> Result<Vec<(String, String)>, GitError> {
    let out = Git::new(d, ["config", "--no-includes", "--null"])
        .args(source)
        .args(["--get-regexp", URL_KEYS])
        .limit(MAX_LISTING)
        .output()
        .await?;
    if out.truncated {
        return Err(GitError::failed(
            "clone",
            "the repository declares too many submodules; its folder was removed",
        ));
    }
    if !out.ok {
        // Exit status 1 and no message: no submodule URL at all.
        if out.stderr.is_empty() {
            return Ok(Vec::new());
        }
        return Err(GitError::failed("config", &out.stderr));
    }
    Ok(parse(&out.stdout))
}

/// Parses `git config --null --get-regexp` output: entries `key\nvalue\0` (a key without a
/// value has no `\n`; its URL is empty, which the policy refuses).
pub fn parse(out: &[u8]) -> Vec<(String, String)> {
    out.split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let e = String::from_utf8_lossy(e);
            let (key, value) = e.split_once('\n').unwrap_or((&e, ""));
            let name = key
                .strip_prefix("submodule.")
                .and_then(|k| k.strip_suffix(".url"))
                .unwrap_or(key);
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// A submodule URL resolved as git does for a superproject cloned from `base`: `./x` and
/// `../x` are relative to the base's path (each `../` drops one segment); anything else is
/// taken as it is. `None` when `../` would climb past the path into the host.
pub fn resolve(base: &str, url: &str) -> Option<String> {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return Some(url.to_owned());
    }
    let base = base.trim_end_matches('/');
    let (prefix, path) = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            (format!("{scheme}://{authority}/"), path)
        }
        None => {
            let (authority, path) = base.split_once(':')?;
            (format!("{authority}:"), path)
        }
    };
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            segments.pop()?;
            rest = r;
        } else {
            break;
        }
    }
    segments.push(rest);
    Some(format!("{prefix}{}", segments.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls_resolve_against_the_clone_url_and_never_climb_into_the_host() {
        let base = "git://127.0.0.1:9418/team/super.git";
        assert_eq!(
            resolve(base, "../sub.git").as_deref(),
            Some("git://127.0.0.1:9418/team/sub.git")
        );
        assert_eq!(
            resolve(base, "./sub.git").as_deref(),
            Some("git://127.0.0.1:9418/team/super.git/sub.git")
        );
        assert_eq!(
            resolve(&format!("{base}/"), "../../x.git").as_deref(),
            Some("git://127.0.0.1:9418/x.git")
        );
        assert_eq!(resolve(base, "../../../evil.com/x"), None);
        assert_eq!(
            resolve("git@host:org/super.git", "../sub.git").as_deref(),
            Some("git@host:org/sub.git")
        );
        assert_eq!(resolve("git@host:super.git", "../../x"), None);
        for absolute in ["https://other/x", "file:///etc", "/srv/x", "ext::sh"] {
            assert_eq!(resolve(base, absolute).as_deref(), Some(absolute));
        }
        // What is left after the prefixes still goes through the policy's dot-segment rule.
        assert_eq!(
            resolve(base, "../a/../../b").as_deref(),
            Some("git://127.0.0.1:9418/team/a/../../b")
        );
    }

    #[test]
    fn listing_entries_keep_names_with_dots_and_flag_missing_values() {
        let out = b"submodule.a.b.url\nhttps://h/x\0submodule.c.url\0";
        assert_eq!(
            parse(out),
            vec![
                ("a.b".to_owned(), "https://h/x".to_owned()),
                ("c".to_owned(), String::new())
            ]
        );
    }
}
