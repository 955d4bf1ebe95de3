//! The ports operators see: local listening sockets with their process and workspace, never
//! OpenCode's own server (nor anything else its server process listens on) and never the
//! agent's own sockets. [`attribute`] is pure; [`scan`] reads `/proc`.

use super::owners::{self, Owner};
use super::proc_net::{self, Listener};
use proto::forward::ListeningPort;
use std::collections::{BTreeMap, BTreeSet};

/// One running OpenCode launch of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The workspace.
    pub workspace: String,
    /// The marker its processes carry.
    pub marker: String,
    /// OpenCode's server port.
    pub port: u16,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detected {
    /// The ports to show, sorted by port then address.
    pub ports: Vec<ListeningPort>,
    /// Ports never forwarded: OpenCode's servers and everything their processes or the agent
    /// listen on.
    pub reserved: BTreeSet<u16>,
}

/// The listening ports to show and the reserved ones. `me` is the agent's pid.
pub fn attribute(
    listeners: &[Listener],
    owners: &BTreeMap<u64, Owner>,
    launches: &[Launch],
    me: u32,
) -> Detected {
    let server_ports: BTreeSet<u16> = launches.iter().map(|l| l.port).collect();
    // The processes serving OpenCode's API: whatever else they listen on is OpenCode's too.
    let mut hidden: BTreeSet<u32> = listeners
        .iter()
        .filter(|l| server_ports.contains(&l.port))
        .filter_map(|l| owners.get(&l.inode).map(|o| o.pid))
        .collect();
    hidden.insert(me);
    let mut reserved = server_ports.clone();
    reserved.extend(
        listeners
            .iter()
            .filter(|l| {
                owners
                    .get(&l.inode)
                    .is_some_and(|o| hidden.contains(&o.pid))
            })
            .map(|l| l.port),
    );
    let mut seen = BTreeSet::new();
    let mut out: Vec<ListeningPort> = listeners
        .iter()
        .filter(|l| !server_ports.contains(&l.port))
        .filter(|l| {
            owners
                .get(&l.inode)
                .is_none_or(|o| !hidden.contains(&o.pid))
        })
        .filter(|l| seen.insert((l.port, l.addr)))
        .map(|l| {
            let owner = owners.get(&l.inode);
            let workspace = owner
                .and_then(|o| o.marker.as_deref())
                .and_then(|m| launches.iter().find(|launch| launch.marker == m))
                .map(|launch| launch.workspace.clone());
            ListeningPort {
                port: l.port,
                addr: l.addr.to_string(),
                pid: owner.map(|o| o.pid),
                process: owner.map(|o| o.name.clone()),
                workspace,
                forwardable: false,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.port, &a.addr).cmp(&(b.port, &b.addr)));
    Detected {
        ports: out,
        reserved,
    }
}

/// Reads `/proc` now (blocking: run it off the async threads). `marker_env` names the
/// variable carrying the launch marker.
pub fn scan(launches: &[Launch], marker_env: &str) -> Detected {
    let mut listeners = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            listeners.extend(proc_net::listeners(&text));
        }
    }
    let inodes = listeners.iter().map(|l| l.inode).collect();
    let owners = owners::scan(&inodes, marker_env);
    attribute(&listeners, &owners, launches, std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(addr: &str, port: u16, inode: u64) -> Listener {
        Listener {
            addr: addr.parse().unwrap(),
            port,
            inode,
        }
    }

    fn owner(pid: u32, name: &str, marker: Option<&str>) -> Owner {
        Owner {
            pid,
            name: name.into(),
            marker: marker.map(str::to_owned),
        }
    }

    #[test]
    fn workspace_ports_are_named_and_opencode_and_the_agent_are_never_listed() {
        let listeners = [
            listener("127.0.0.1", 4096, 1), // OpenCode's server
            listener("127.0.0.1", 4097, 2), // something else OpenCode itself listens on
            listener("0.0.0.0", 8000, 3),   // a dev server its bash tool started
            listener("::", 8000, 4),        // the same server on IPv6
            listener("127.0.0.1", 9000, 5), // the agent's own
            listener("127.0.0.1", 5432, 6), // a host service, no workspace
            listener("127.0.0.1", 7000, 7), // a socket whose owner is not visible
        ];
        let owners = BTreeMap::from([
            (1, owner(10, "opencode", Some("mk"))),
            (2, owner(10, "opencode", Some("mk"))),
            (3, owner(11, "python3", Some("mk"))),
            (4, owner(11, "python3", Some("mk"))),
            (5, owner(99, "cm-agent", None)),
            (6, owner(12, "postgres", None)),
        ]);
        let launches = [Launch {
            workspace: "demo".into(),
            marker: "mk".into(),
            port: 4096,
        }];
        let found = attribute(&listeners, &owners, &launches, 99);
        assert_eq!(found.reserved, BTreeSet::from([4096, 4097, 9000]));
        let ports = found.ports;
        let shown: Vec<(u16, &str, Option<&str>, Option<&str>)> = ports
            .iter()
            .map(|p| {
                (
                    p.port,
                    p.addr.as_str(),
                    p.process.as_deref(),
                    p.workspace.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (5432, "127.0.0.1", Some("postgres"), None),
                (7000, "127.0.0.1", None, None),
                (8000, "0.0.0.0", Some("python3"), Some("demo")),
                (8000, "::", Some("python3"), Some("demo")),
            ]
        );
    }

    #[test]
    fn a_marker_of_another_launch_names_no_workspace() {
        let owners = BTreeMap::from([(3, owner(11, "node", Some("old")))]);
        let launches = [Launch {
            workspace: "demo".into(),
            marker: "mk".into(),
            port: 4096,
        }];
        let ports = attribute(&[listener("127.0.0.1", 3000, 3)], &owners, &launches, 1).ports;
        assert_eq!(ports[0].workspace, None);
    }
}
