//! Which process holds a socket, its name and its launch marker: pure parsing of what
//! `/proc/<pid>/fd/*`, `/proc/<pid>/comm` and `/proc/<pid>/environ` hold, plus [`scan`], the
//! thin reader. Only processes this agent may inspect (its own user's) are seen.

use std::collections::{BTreeMap, BTreeSet};

/// The socket inode an fd link names (`socket:[12345]`).
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The value of `name` in an environ block (NUL-separated `KEY=value`).
pub fn env_value(environ: &[u8], name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    environ.split(|b| *b == 0).find_map(|kv| {
        kv.strip_prefix(prefix.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

/// A process holding one of the sockets asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its pid.
    pub pid: u32,
    /// Its name (`comm`).
    pub name: String,
    /// Its launch marker (the value of the variable named by the caller), if it carries one.
    pub marker: Option<String>,
}

/// The owners of the sockets `inodes`, by inode, read from `/proc`, with the value of their
/// `marker_env` variable (OpenCode's launch marker). A socket several processes share (a
/// forked server) is given to the lowest pid.
pub fn scan(inodes: &BTreeSet<u64>, marker_env: &str) -> BTreeMap<u64, Owner> {
    let mut found = BTreeMap::new();
    if inodes.is_empty() {
        return found;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    let mut pids: Vec<u32> = dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let held: Vec<u64> = fds
            .filter_map(Result::ok)
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(|link| socket_inode(link.to_str()?))
            .filter(|inode| inodes.contains(inode) && !found.contains_key(inode))
            .collect();
        if held.is_empty() {
            continue;
        }
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default();
        let marker = std::fs::read(format!("/proc/{pid}/environ"))
            .ok()
            .and_then(|env| env_value(&env, marker_env));
        for inode in held {
            found.insert(
                inode,
                Owner {
                    pid,
                    name: name.clone(),
                    marker: marker.clone(),
                },
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_links_name_socket_inodes_and_nothing_else() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    #[test]
    fn the_marker_is_read_from_the_environ_block() {
        let env = b"HOME=/h\0CM_AGENT_LAUNCHX=no\0CM_AGENT_LAUNCH=abc\0PATH=/bin\0";
        assert_eq!(env_value(env, "CM_AGENT_LAUNCH").as_deref(), Some("abc"));
        assert_eq!(env_value(b"HOME=/h\0", "CM_AGENT_LAUNCH"), None);
    }
}
